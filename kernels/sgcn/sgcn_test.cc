#include "kernels/sgcn/sgcn.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/sphere/sphere.h"

namespace chamferdb::sgcn {
namespace {

using ::chamferdb::testing::StatusIs;
using sphere::NumSh;
using sphere::ShIndex;
constexpr double kPi = std::numbers::pi;

// A random-walk chain: CA steps of 3.8 Å, N and C placed randomly around each CA.
std::vector<double> Chain(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> bb(n * 9);
  double ca[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    double step[3] = {rng.Normal(), rng.Normal(), rng.Normal()};
    const double s = std::sqrt(step[0] * step[0] + step[1] * step[1] + step[2] * step[2]);
    for (int a = 0; a < 3; ++a) {
      ca[a] += 3.8 * step[a] / s;
      bb[i * 9 + a] = ca[a] + 0.8 * rng.Normal();
      bb[i * 9 + 3 + a] = ca[a];
      bb[i * 9 + 6 + a] = ca[a] + 0.8 * rng.Normal();
    }
  }
  return bb;
}

GraphFeatures Features(int64_t n, const std::vector<double>& bb, FeatureOptions o, SgcnMethod m) {
  GraphFeatures g;
  const absl::Status s = SphericalGraphFeatures(n, bb.data(), o, m, &g);
  EXPECT_TRUE(s.ok()) << s;
  return g;
}

double MaxDiff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST(SphericalGraphFeatures, KnownGeometry) {
  // Residue 0 with the identity frame: CA at 0, C on −x, N in the +y half-plane.
  std::vector<double> bb = {0.3, 1.0, 0, 0, 0, 0, -1.5, 0, 0,     // residue 0
                            1, 0, 5, 0, 0, 5, 0, 1, 5,            // CA on +e3
                            4, 1, 0, 4, 0, 0, 4, 0, 1};           // CA on +e1
  FeatureOptions o;
  o.lmax = 6;
  const std::vector<int64_t> edges = {0, 1, 0, 2};
  o.edges = edges.data();
  o.e = 2;
  for (SgcnMethod m : {SgcnMethod::kFast, SgcnMethod::kNaive}) {
    const GraphFeatures g = Features(3, bb, o, m);
    const int ns = NumSh(6);
    for (int l = 0; l <= 6; ++l) {
      EXPECT_NEAR(g.y[ShIndex(l, 0)], std::sqrt((2 * l + 1) / (4 * kPi)), 1e-14);
      for (int k = 1; k <= l; ++k) {
        EXPECT_NEAR(g.y[ShIndex(l, k)], 0, 1e-14);
        EXPECT_NEAR(g.y[ShIndex(l, -k)], 0, 1e-14);
        EXPECT_NEAR(g.y[ns + ShIndex(l, -k)], 0, 1e-14);  // φ = 0: sin terms vanish
      }
    }
    EXPECT_NEAR(g.sph[0], 5.0, 1e-14);
    EXPECT_NEAR(g.sph[3 + 1], kPi / 2, 1e-14);
  }
}

TEST(SphericalGraphFeatures, AdditionTheoremPerEdge) {
  const int64_t n = 40;
  FeatureOptions o;
  o.lmax = 9;
  o.cutoff = 10;
  const GraphFeatures g = Features(n, Chain(n, 1), o, SgcnMethod::kFast);
  ASSERT_GT(g.num_edges(), 40);
  for (int64_t x = 0; x < g.num_edges(); ++x)
    for (int l = 0; l <= 9; ++l) {
      double s = 0;
      for (int m = -l; m <= l; ++m) s += std::pow(g.y[x * NumSh(9) + ShIndex(l, m)], 2);
      EXPECT_NEAR(s, (2 * l + 1) / (4 * kPi), 1e-12);
    }
}

// Rigid motions leave everything but the frames unchanged; a reflection flips the local z:
// Y[l,m] → (−1)^{l+|m|} Y[l,m].
TEST(SphericalGraphFeatures, RigidMotionInvarianceAndChirality) {
  const int64_t n = 30;
  const auto bb = Chain(n, 2);
  double q[9];
  sphere::RandomRotation(3, q);
  FeatureOptions o;
  o.lmax = 5;
  o.cutoff = 9;
  const GraphFeatures g = Features(n, bb, o, SgcnMethod::kFast);
  for (double sign : {1.0, -1.0}) {
    std::vector<double> moved(bb.size());
    for (int64_t a = 0; a < n * 3; ++a)
      for (int r = 0; r < 3; ++r)
        moved[a * 3 + r] = sign * (q[r * 3] * bb[a * 3] + q[r * 3 + 1] * bb[a * 3 + 1] +
                                   q[r * 3 + 2] * bb[a * 3 + 2]) + 7.0 * r - 3.0;
    const GraphFeatures h = Features(n, moved, o, SgcnMethod::kFast);
    ASSERT_EQ(g.edges, h.edges);
    std::vector<double> expect = g.y;
    if (sign < 0)
      for (int64_t x = 0; x < g.num_edges(); ++x)
        for (int l = 0; l <= 5; ++l)
          for (int m = -l; m <= l; ++m)
            if ((l + std::abs(m)) % 2) expect[x * NumSh(5) + ShIndex(l, m)] *= -1;
    EXPECT_LE(MaxDiff(h.y, expect), 1e-12) << "sign " << sign;
    double rdiff = 0;
    for (int64_t x = 0; x < g.num_edges(); ++x) rdiff = std::max(rdiff, std::abs(g.sph[3 * x] - h.sph[3 * x]));
    EXPECT_LE(rdiff, 1e-12);
  }
}

ConvParams RandomConv(const GraphFeatures& g, int f, int fp, std::vector<double>* store) {
  Rng rng(77);
  const int nt = NumSh(g.lmax) * g.kr;
  store->resize(g.n * f + f * fp + static_cast<size_t>(nt) * f * fp + fp);
  for (double& v : *store) v = rng.Normal() * 0.3;
  ConvParams p;
  p.f = f;
  p.fp = fp;
  p.x = store->data();
  p.w0 = p.x + g.n * f;
  p.w = p.w0 + f * fp;
  p.bias = p.w + static_cast<size_t>(nt) * f * fp;
  return p;
}

// The fast route (cell list, recurrence SH, CSR, aggregate first) equals the naive one
// (all pairs, explicit Legendre sums, dense S_t matrices).
TEST(SphericalGraph, FastEqualsNaive) {
  const int64_t n = 60;
  const auto bb = Chain(n, 4);
  for (int lmax : {4, 9}) {
    FeatureOptions o;
    o.lmax = lmax;
    o.cutoff = 10;
    o.radial = lmax == 4 ? Radial::kRbf : Radial::kNone;
    o.rbf_centres = {4.0, 7.0, 10.0};
    o.rbf_width = 2.0;
    o.threads = 2;
    const GraphFeatures fast = Features(n, bb, o, SgcnMethod::kFast);
    const GraphFeatures naive = Features(n, bb, o, SgcnMethod::kNaive);
    ASSERT_EQ(fast.edges, naive.edges);
    EXPECT_LE(MaxDiff(fast.y, naive.y), 1e-12);
    EXPECT_LE(MaxDiff(fast.rad, naive.rad), 1e-14);
    std::vector<double> store;
    ConvParams p = RandomConv(fast, 5, 4, &store);
    p.normalize_rows = lmax == 4;
    p.activation = lmax == 4 ? Activation::kElu : Activation::kRelu;
    p.threads = 2;
    std::vector<double> h1(n * 4), h2(n * 4);
    ASSERT_OK(SphericalGraphConv(fast, p, SgcnMethod::kFast, h1.data()));
    ASSERT_OK(SphericalGraphConv(naive, p, SgcnMethod::kNaive, h2.data()));
    EXPECT_LE(MaxDiff(h1, h2), 1e-12);
  }
}

TEST(SphericalGraph, PermutingResiduesPermutesOutputs) {
  const int64_t n = 25;
  const auto bb = Chain(n, 5);
  Rng rng(6);
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng.UniformInt(i + 1)]);
  std::vector<double> pb(bb.size());
  for (int64_t i = 0; i < n; ++i)
    for (int a = 0; a < 9; ++a) pb[perm[i] * 9 + a] = bb[i * 9 + a];
  FeatureOptions o;
  o.lmax = 3;
  o.cutoff = 9;
  const GraphFeatures g = Features(n, bb, o, SgcnMethod::kFast);
  const GraphFeatures gp = Features(n, pb, o, SgcnMethod::kFast);
  std::vector<double> store;
  ConvParams p = RandomConv(g, 3, 2, &store);
  std::vector<double> xp(n * 3);
  for (int64_t i = 0; i < n; ++i)
    for (int a = 0; a < 3; ++a) xp[perm[i] * 3 + a] = p.x[i * 3 + a];
  std::vector<double> h(n * 2), hp(n * 2);
  ASSERT_OK(SphericalGraphConv(g, p, SgcnMethod::kFast, h.data()));
  p.x = xp.data();
  ASSERT_OK(SphericalGraphConv(gp, p, SgcnMethod::kFast, hp.data()));
  for (int64_t i = 0; i < n; ++i)
    for (int b = 0; b < 2; ++b) EXPECT_NEAR(hp[perm[i] * 2 + b], h[i * 2 + b], 1e-12);
}

// kernels_fuzz finding: floor(coordinate / cutoff) overflowed int64 for a tiny cutoff (UB);
// such a cutoff is rejected. And cell keys are exact: residue pairs placed 2^21 cells apart
// (where the old packed 21-bit key aliased every pair into one bucket) give the same edges
// as the all-pairs naive route.
TEST(SphericalGraph, CutoffCellsAreExactAndBounded) {
  std::vector<double> bb = Chain(6, 3);
  FeatureOptions o;
  o.cutoff = 1e-60;
  GraphFeatures g;
  EXPECT_THAT(SphericalGraphFeatures(6, bb.data(), o, SgcnMethod::kFast, &g),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("cutoff")));
  const int pairs = 12;
  std::vector<double> spread;
  for (int k = 0; k < pairs; ++k) {
    for (int r = 0; r < 2; ++r) {
      const double x = 2097152.0 * k + 2.5 * r, z = 0.7 * r;
      const double res[9] = {x - 0.5, 1.2, z + 0.3, x, 0, z, x + 1.1, -0.4, z + 0.6};
      spread.insert(spread.end(), res, res + 9);
    }
  }
  o.cutoff = 3.0;
  const GraphFeatures fast = Features(2 * pairs, spread, o, SgcnMethod::kFast);
  const GraphFeatures naive = Features(2 * pairs, spread, o, SgcnMethod::kNaive);
  EXPECT_EQ(fast.edges, naive.edges);
  EXPECT_EQ(fast.num_edges(), 2 * pairs);  // each close pair, both directions
}

TEST(SphericalGraph, RejectsBadInput) {
  const auto bb = Chain(4, 7);
  GraphFeatures g;
  FeatureOptions o;
  EXPECT_THAT(SphericalGraphFeatures(4, bb.data(), o, SgcnMethod::kFast, &g),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("cutoff")));
  const std::vector<int64_t> self = {1, 1};
  o.edges = self.data();
  o.e = 1;
  EXPECT_THAT(SphericalGraphFeatures(4, bb.data(), o, SgcnMethod::kFast, &g),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("self-loop")));
  o.lmax = 17;
  EXPECT_THAT(SphericalGraphFeatures(4, bb.data(), o, SgcnMethod::kFast, &g),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("lmax")));
}

}  // namespace
}  // namespace chamferdb::sgcn
