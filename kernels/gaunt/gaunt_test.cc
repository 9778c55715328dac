#include "kernels/gaunt/gaunt.h"

#include <cmath>
#include <numbers>
#include <thread>
#include <vector>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/sphere/sphere.h"

namespace chamferdb::gaunt {
namespace {

using ::chamferdb::testing::StatusIs;
using sphere::NumSh;
using sphere::ShIndex;
constexpr double kPi = std::numbers::pi;

std::vector<double> Gaussian(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = rng.Normal();
  return v;
}

double MaxAbs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

double RelErr(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d / std::max(MaxAbs(b), 1e-300);
}

std::vector<double> RunGtp(const GauntTPShape& s, const std::vector<double>& x,
                        const std::vector<double>& y, GauntMethod method,
                        const GauntTPWeights& w = {}, int threads = 1, int nb = 0, int na = 0) {
  std::vector<double> z(s.batch * s.channels * NumSh(s.lout), -1.0);
  GauntTPOptions o;
  o.method = method;
  o.threads = threads;
  o.n_beta = nb;
  o.n_alpha = na;
  const absl::Status st = GauntTensorProduct(s, x.data(), y.data(), w, o, z.data());
  EXPECT_TRUE(st.ok()) << st;
  return z;
}

GauntTPShape Shape(int l1, int l2, int lout, int64_t b = 1, int64_t c = 1, int64_t yc = -1) {
  GauntTPShape s;
  s.batch = b;
  s.channels = c;
  s.y_channels = yc < 0 ? c : yc;
  s.l1 = l1;
  s.l2 = l2;
  s.lout = lout;
  return s;
}

double Eval(int lmax, const double* c, const double* r) {
  std::vector<double> y(NumSh(lmax));
  sphere::RealSh(lmax, r, y.data());
  double s = 0;
  for (int i = 0; i < NumSh(lmax); ++i) s += c[i] * y[i];
  return s;
}

const GauntMethod kFastMethods[] = {GauntMethod::kFourier, GauntMethod::kFourierDirectConv,
                                    GauntMethod::kGrid};

TEST(GauntCoefficient, KnownValues) {
  const double c = 1.0 / (2.0 * std::sqrt(kPi));
  EXPECT_NEAR(GauntCoefficient(0, 0, 0, 0, 0, 0), 0.282094791774, 1e-12);
  for (int m = -1; m <= 1; ++m) EXPECT_NEAR(GauntCoefficient(1, m, 1, m, 0, 0), c, 1e-14);
  for (int a = -1; a <= 1; ++a)
    for (int b = -1; b <= 1; ++b)
      for (int d = -1; d <= 1; ++d) EXPECT_NEAR(GauntCoefficient(1, a, 1, b, 1, d), 0.0, 1e-15);
  // By hand: (3/4π)·¼√(5/π)·∫(3z⁴ − z²)dΩ = (3/4π)·¼√(5/π)·16π/15 = 1/√(5π).
  EXPECT_NEAR(GauntCoefficient(1, 0, 1, 0, 2, 0), 1.0 / std::sqrt(5.0 * kPi), 1e-14);
}

// T5: with Lout = L1 + L2 the output is exactly the SH expansion of f·g.
TEST(GauntTP, EveryMethodReproducesThePointwiseProduct) {
  for (auto [l1, l2] : {std::pair{0, 0}, {1, 2}, {3, 4}, {5, 3}, {8, 8}}) {
    const GauntTPShape s = Shape(l1, l2, l1 + l2);
    const auto x = Gaussian(NumSh(l1), 10 + l1), y = Gaussian(NumSh(l2), 20 + l2);
    for (GauntMethod m : {GauntMethod::kDirect, GauntMethod::kFourier,
                          GauntMethod::kFourierDirectConv, GauntMethod::kGrid}) {
      const auto z = RunGtp(s, x, y, m);
      Rng rng(99);
      for (int t = 0; t < 100; ++t) {
        double r[3] = {rng.Normal(), rng.Normal(), rng.Normal()};
        const double n = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
        for (double& v : r) v /= n;
        const double fg = Eval(l1, x.data(), r) * Eval(l2, y.data(), r);
        EXPECT_NEAR(Eval(l1 + l2, z.data(), r), fg, 1e-12 * (1 + std::abs(fg)))
            << "l1=" << l1 << " l2=" << l2 << " method=" << static_cast<int>(m);
      }
    }
  }
}

// T3: the fast methods equal the Gaunt contraction, including L1 ≠ L2, Lout < L1 + L2,
// weights, batch > 1 and a broadcast y.
TEST(GauntTP, FastMethodsMatchDirectContraction) {
  struct Case {
    int l1, l2, lout, b, c, yc;
    bool weights;
  };
  const Case cases[] = {{0, 0, 0, 1, 1, 1, false}, {1, 1, 2, 2, 3, 3, true},
                        {2, 5, 4, 1, 2, 1, true},  {4, 4, 8, 2, 2, 2, false},
                        {6, 3, 2, 1, 3, 3, true},  {8, 8, 16, 1, 2, 2, true},
                        {8, 7, 9, 2, 1, 1, false}, {3, 8, 11, 1, 2, 1, true}};
  for (const Case& k : cases) {
    const GauntTPShape s = Shape(k.l1, k.l2, k.lout, k.b, k.c, k.yc);
    const auto x = Gaussian(k.b * k.c * NumSh(k.l1), 1 + k.l1);
    const auto y = Gaussian(k.b * k.yc * NumSh(k.l2), 2 + k.l2);
    const auto w1 = Gaussian(k.c * (k.l1 + 1), 3), w2 = Gaussian(k.c * (k.l2 + 1), 4),
               wo = Gaussian(k.c * (k.lout + 1), 5);
    GauntTPWeights w;
    if (k.weights) w = {w1.data(), w2.data(), wo.data()};
    const auto ref = RunGtp(s, x, y, GauntMethod::kDirect, w);
    for (GauntMethod m : kFastMethods) {
      EXPECT_LE(RelErr(RunGtp(s, x, y, m, w), ref), 1e-12)
          << "l1=" << k.l1 << " l2=" << k.l2 << " lout=" << k.lout
          << " method=" << static_cast<int>(m);
    }
  }
}

// The dense contraction (full quadrature tensor, no selection rule) equals the sparse list.
TEST(GauntTP, DenseQuadratureTensorEqualsSparseGauntList) {
  for (auto [l1, l2, lout] : {std::tuple{2, 3, 4}, {4, 4, 8}, {5, 2, 3}}) {
    const GauntTPShape s = Shape(l1, l2, lout, 2, 2);
    const auto x = Gaussian(4 * NumSh(l1), 101), y = Gaussian(4 * NumSh(l2), 102);
    EXPECT_LE(RelErr(RunGtp(s, x, y, GauntMethod::kDense), RunGtp(s, x, y, GauntMethod::kDirect)),
              1e-13);
  }
}

// ν-body product on the grid equals repeated two-input direct contractions and the
// pointwise power f(r)^ν.
TEST(GauntManyBody, EqualsRepeatedDirectProductsAndPointwisePower) {
  const int l1 = 3, nu = 3;
  const auto x = Gaussian(2 * NumSh(l1), 111);
  const auto w1 = Gaussian(2 * (l1 + 1), 112), wo = Gaussian(2 * (nu * l1 + 1), 113);
  std::vector<double> z(2 * NumSh(nu * l1));
  GauntTPShape s = Shape(l1, 0, nu * l1, 1, 2);
  ASSERT_OK(GauntManyBody(s, nu, x.data(), w1.data(), wo.data(), 2, z.data()));
  for (int c = 0; c < 2; ++c) {
    std::vector<double> xc(NumSh(l1));
    for (int l = 0; l <= l1; ++l)
      for (int m = -l; m <= l; ++m) xc[ShIndex(l, m)] = x[c * NumSh(l1) + ShIndex(l, m)] * w1[c * (l1 + 1) + l];
    const auto sq = RunGtp(Shape(l1, l1, 2 * l1), xc, xc, GauntMethod::kDirect);
    auto cube = RunGtp(Shape(2 * l1, l1, 3 * l1), sq, xc, GauntMethod::kDirect);
    for (int l = 0; l <= 3 * l1; ++l)
      for (int m = -l; m <= l; ++m) cube[ShIndex(l, m)] *= wo[c * (3 * l1 + 1) + l];
    const std::vector<double> zc(z.begin() + c * NumSh(9), z.begin() + (c + 1) * NumSh(9));
    EXPECT_LE(RelErr(zc, cube), 1e-13);
  }
  // Unweighted: pointwise power at random points, truncated output (lout < ν·l1) too.
  std::vector<double> z2(NumSh(9)), z3(NumSh(5));
  ASSERT_OK(GauntManyBody(Shape(l1, 0, 9), 3, x.data(), nullptr, nullptr, 1, z2.data()));
  ASSERT_OK(GauntManyBody(Shape(l1, 0, 5), 3, x.data(), nullptr, nullptr, 1, z3.data()));
  Rng rng(5);
  for (int t = 0; t < 30; ++t) {
    double r[3] = {rng.Normal(), rng.Normal(), rng.Normal()};
    const double n = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    for (double& v : r) v /= n;
    const double f = Eval(l1, x.data(), r);
    EXPECT_NEAR(Eval(9, z2.data(), r), f * f * f, 1e-12 * (1 + std::abs(f * f * f)));
  }
  for (int i = 0; i < NumSh(5); ++i) EXPECT_NEAR(z3[i], z2[i], 1e-13);
  EXPECT_THAT(GauntManyBody(Shape(l1, 0, 10), 3, x.data(), nullptr, nullptr, 1, z2.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("lout")));
  EXPECT_THAT(GauntManyBody(Shape(l1, 0, 3), 9, x.data(), nullptr, nullptr, 1, z2.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("nu")));
}

// Weights are per degree and per channel: compare with scaling the inputs by hand.
TEST(GauntTP, WeightsEqualPreScaledInputs) {
  const GauntTPShape s = Shape(3, 2, 4, 1, 2);
  const auto x = Gaussian(2 * NumSh(3), 7), y = Gaussian(2 * NumSh(2), 8);
  const auto w1 = Gaussian(2 * 4, 9), w2 = Gaussian(2 * 3, 10), wo = Gaussian(2 * 5, 11);
  auto xs = x, ys = y;
  for (int c = 0; c < 2; ++c) {
    for (int l = 0; l <= 3; ++l)
      for (int m = -l; m <= l; ++m) xs[c * NumSh(3) + ShIndex(l, m)] *= w1[c * 4 + l];
    for (int l = 0; l <= 2; ++l)
      for (int m = -l; m <= l; ++m) ys[c * NumSh(2) + ShIndex(l, m)] *= w2[c * 3 + l];
  }
  auto expect = RunGtp(s, xs, ys, GauntMethod::kDirect);
  for (int c = 0; c < 2; ++c)
    for (int l = 0; l <= 4; ++l)
      for (int m = -l; m <= l; ++m) expect[c * NumSh(4) + ShIndex(l, m)] *= wo[c * 5 + l];
  const GauntTPWeights w{w1.data(), w2.data(), wo.data()};
  for (GauntMethod m : {GauntMethod::kDirect, GauntMethod::kFourier, GauntMethod::kGrid})
    EXPECT_LE(RelErr(RunGtp(s, x, y, m, w), expect), 1e-13);
}

// T6: y = √(4π)·e00 is the constant function 1.
TEST(GauntTP, ConstantOneIsTheIdentityTruncatedToLout) {
  const int l1 = 6;
  const auto x = Gaussian(NumSh(l1), 31);
  std::vector<double> y(NumSh(2), 0.0);
  y[0] = std::sqrt(4 * kPi);
  for (int lout : {6, 4}) {
    for (GauntMethod m : {GauntMethod::kDirect, GauntMethod::kFourier, GauntMethod::kGrid}) {
      const auto z = RunGtp(Shape(l1, 2, lout), x, y, m);
      for (int i = 0; i < NumSh(lout); ++i) EXPECT_NEAR(z[i], x[i], 1e-13);
    }
  }
}

// T7: GTP(D1·x, D2·y) = D3·GTP(x, y) with D built by quadrature projection.
TEST(GauntTP, IsRotationEquivariant) {
  const int l1 = 5, l2 = 4, lout = 7;
  double rot[9];
  sphere::RandomRotation(1234, rot);
  const int lm = std::max({l1, l2, lout});
  const std::vector<double> d = sphere::WignerD(lm, rot);
  const int nd = NumSh(lm);
  auto apply = [&](int lmax, const std::vector<double>& c) {
    std::vector<double> out(NumSh(lmax), 0.0);
    for (int i = 0; i < NumSh(lmax); ++i)
      for (int j = 0; j < NumSh(lmax); ++j) out[i] += d[i * nd + j] * c[j];
    return out;
  };
  const auto x = Gaussian(NumSh(l1), 41), y = Gaussian(NumSh(l2), 42);
  const GauntTPShape s = Shape(l1, l2, lout);
  for (GauntMethod m : {GauntMethod::kDirect, GauntMethod::kFourier, GauntMethod::kGrid}) {
    const auto lhs = RunGtp(s, apply(l1, x), apply(l2, y), m);
    const auto rhs = apply(lout, RunGtp(s, x, y, m));
    EXPECT_LE(RelErr(lhs, rhs), 1e-13) << static_cast<int>(m);
  }
}

// T8: symmetry, and the selection rule (pure l = 1 inputs give zero l = 1 output).
TEST(GauntTP, IsSymmetricAndObeysParitySelection) {
  const int l = 4;
  const auto x = Gaussian(NumSh(l), 51), y = Gaussian(NumSh(l), 52);
  const GauntTPShape s = Shape(l, l, 2 * l);
  for (GauntMethod m : {GauntMethod::kFourier, GauntMethod::kGrid}) {
    EXPECT_LE(RelErr(RunGtp(s, x, y, m), RunGtp(s, y, x, m)), 1e-14);
  }
  std::vector<double> p(NumSh(1), 0.0), q(NumSh(1), 0.0);
  p[1] = 0.3, p[2] = -1.2, p[3] = 0.7;
  q[1] = 1.1, q[2] = 0.4, q[3] = -0.5;
  for (GauntMethod m : {GauntMethod::kDirect, GauntMethod::kFourier, GauntMethod::kGrid}) {
    const auto z = RunGtp(Shape(1, 1, 2), p, q, m);
    for (int mm = -1; mm <= 1; ++mm) EXPECT_NEAR(z[ShIndex(1, mm)], 0.0, 1e-15);
    EXPECT_GT(std::abs(z[0]), 1e-3);  // l = 0 (dot product) survives
  }
}

// Spec 2.4: the exact default grid is needed; one ring short aliases visibly, and the
// PriceofFreedom grid (2L+1, 4L+2) is exact for MIMO.
TEST(GauntTP, GridTruncationAliasesAndPriceOfFreedomGridIsExact) {
  const int l = 6;
  const auto x = Gaussian(NumSh(l), 61), y = Gaussian(NumSh(l), 62);
  const GauntTPShape s = Shape(l, l, 2 * l);
  const auto ref = RunGtp(s, x, y, GauntMethod::kDirect);
  const int n_total = 4 * l;
  EXPECT_GT(RelErr(RunGtp(s, x, y, GauntMethod::kGrid, {}, 1, n_total / 2, 0), ref), 1e-4);
  EXPECT_LE(RelErr(RunGtp(s, x, y, GauntMethod::kGrid, {}, 1, 2 * l + 1, 4 * l + 2), ref), 1e-13);
}

// Grid aliasing property: analysis(synthesis(x)) = x (g = 1, Lout = L1).
TEST(GauntTP, GridRoundTripIsExact) {
  const int l1 = 9;
  const auto x = Gaussian(NumSh(l1), 71);
  const std::vector<double> one = {std::sqrt(4 * kPi)};
  EXPECT_LE(RelErr(RunGtp(Shape(l1, 0, l1), x, one, GauntMethod::kGrid), x), 1e-14);
}

TEST(GauntTP, ResultIsBitwiseIndependentOfThreadCount) {
  const GauntTPShape s = Shape(5, 5, 10, 3, 5);
  const auto x = Gaussian(15 * NumSh(5), 81), y = Gaussian(15 * NumSh(5), 82);
  for (GauntMethod m : {GauntMethod::kDirect, GauntMethod::kFourier, GauntMethod::kGrid}) {
    EXPECT_EQ(RunGtp(s, x, y, m, {}, 1), RunGtp(s, x, y, m, {}, 2));
  }
}

TEST(GauntTP, ConcurrentCallsShareOneTableBuild) {
  const GauntTPShape s = Shape(7, 6, 11, 1, 2);
  const auto x = Gaussian(2 * NumSh(7), 91), y = Gaussian(2 * NumSh(6), 92);
  const auto expect = RunGtp(Shape(7, 6, 11, 1, 2), x, y, GauntMethod::kDirect);
  for (GauntMethod m : {GauntMethod::kFourier, GauntMethod::kGrid}) {
    std::vector<std::vector<double>> out(4, std::vector<double>(2 * NumSh(11)));
    std::vector<GauntTPStats> stats(4);
    std::vector<std::thread> th;
    GauntTPOptions o;
    o.method = m;
    for (int i = 0; i < 4; ++i)
      th.emplace_back([&, i] {
        ASSERT_OK(GauntTensorProduct(s, x.data(), y.data(), {}, o, out[i].data(), &stats[i]));
      });
    for (auto& t : th) t.join();
    int builds = 0;
    for (int i = 0; i < 4; ++i) {
      builds += stats[i].cache_hit ? 0 : 1;
      EXPECT_LE(RelErr(out[i], expect), 1e-12);
    }
    EXPECT_EQ(builds, 1);
  }
}

TEST(GauntTP, RejectsBadShapesAndOptions) {
  const std::vector<double> x(64), y(64);
  std::vector<double> z(64);
  GauntTPOptions o;
  auto call = [&](GauntTPShape s) {
    return GauntTensorProduct(s, x.data(), y.data(), {}, o, z.data());
  };
  using ::testing::HasSubstr;
  EXPECT_THAT(call(Shape(2, 2, 5)), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lout")));
  EXPECT_THAT(call(Shape(-1, 2, 1)), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("l1")));
  EXPECT_THAT(call(Shape(1, 1, 1, 1, 3, 2)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("y_channels")));
  o.method = GauntMethod::kDirect;
  EXPECT_THAT(call(Shape(20, 20, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("direct")));
  o.method = GauntMethod::kGrid;
  o.n_alpha = 3;
  EXPECT_THAT(call(Shape(2, 2, 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_alpha")));
  o.n_alpha = 0;
  o.threads = 0;
  EXPECT_THAT(call(Shape(1, 1, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("threads")));
}

}  // namespace
}  // namespace chamferdb::gaunt
