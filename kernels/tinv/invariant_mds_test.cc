#include "kernels/tinv/invariant_mds.h"

#include <Eigen/Dense>
#include <cmath>
#include <numbers>
#include <vector>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/sphere/sphere.h"

namespace chamferdb::tinv {
namespace {

using ::chamferdb::testing::StatusIs;

struct Result {
  std::vector<double> y, eig, stress;
  std::vector<int32_t> flags;
};

Result FromPoints(int64_t n, int d, const std::vector<double>& p, MdsMethod m,
                  MdsOptions o = {}, int64_t batch = 1) {
  const int k = o.k == 0 ? d : o.k;
  Result r{std::vector<double>(batch * n * k), std::vector<double>(batch * k),
           std::vector<double>(batch), std::vector<int32_t>(batch * k)};
  const absl::Status s = InvariantMdsFromPoints(
      batch, n, d, p.data(), o, m, {r.y.data(), r.eig.data(), r.flags.data(), r.stress.data()});
  EXPECT_TRUE(s.ok()) << s;
  return r;
}

// An anisotropic Gaussian cloud (distinct variances 9, 4, 1 along rotated axes).
std::vector<double> Cloud(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> p(n * 3);
  for (int64_t i = 0; i < n; ++i) {
    p[i * 3] = 3 * rng.Normal() + 0.3 * rng.Normal() * rng.Normal();
    p[i * 3 + 1] = 2 * rng.Normal();
    p[i * 3 + 2] = rng.Normal() + 0.5 * std::abs(rng.Normal());
  }
  return p;
}

double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST(InvariantMds, PreservesPairwiseDistancesWhenKEqualsD) {
  const int64_t n = 120;
  const auto p = Cloud(n, 1);
  for (MdsMethod m : {MdsMethod::kCoordinates, MdsMethod::kDistance}) {
    const Result r = FromPoints(n, 3, p, m);
    double worst = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double dx = 0, dy = 0;
        for (int a = 0; a < 3; ++a) {
          dx += std::pow(p[i * 3 + a] - p[j * 3 + a], 2);
          dy += std::pow(r.y[i * 3 + a] - r.y[j * 3 + a], 2);
        }
        worst = std::max(worst, std::abs(std::sqrt(dx) - std::sqrt(dy)));
      }
    EXPECT_LE(worst, 1e-12);
    for (int32_t f : r.flags) EXPECT_EQ(f, 0);
  }
}

// Invariance to O(3) (with a reflection), translation and permutation; with kRms also to
// scaling.
TEST(InvariantMds, IsInvariantToRigidMotionsReflectionsAndPermutations) {
  const int64_t n = 200;
  const auto p = Cloud(n, 2);
  double rot[9];
  sphere::RandomRotation(5, rot);
  Rng rng(6);
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng.UniformInt(i + 1)]);
  for (ScaleNorm scale : {ScaleNorm::kNone, ScaleNorm::kRms}) {
    const double s = scale == ScaleNorm::kRms ? 3.7 : 1.0;
    // q[perm[i]] = s·(−R·p[i]) + t   (−R has determinant −1: a reflection)
    std::vector<double> q(n * 3);
    const double t[3] = {4.0, -2.5, 10.0};
    for (int64_t i = 0; i < n; ++i)
      for (int a = 0; a < 3; ++a) {
        double v = 0;
        for (int b = 0; b < 3; ++b) v += rot[a * 3 + b] * p[i * 3 + b];
        q[perm[i] * 3 + a] = -s * v + t[a];
      }
    MdsOptions o;
    o.scale = scale;
    for (MdsMethod m : {MdsMethod::kCoordinates, MdsMethod::kDistance}) {
      const Result r0 = FromPoints(n, 3, p, m, o), r1 = FromPoints(n, 3, q, m, o);
      double worst = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int a = 0; a < 3; ++a) {
          worst = std::max(worst, std::abs(r1.y[perm[i] * 3 + a] - r0.y[i * 3 + a]));
          mag = std::max(mag, std::abs(r0.y[i * 3 + a]));
        }
      EXPECT_LE(worst, 1e-12 * mag) << "method " << static_cast<int>(m);
    }
  }
}

// The linear-time route equals classical MDS (full N×N eigendecomposition).
TEST(InvariantMds, CoordinateRouteEqualsClassicalMds) {
  for (int64_t n : {1, 3, 17, 400}) {
    const auto p = Cloud(n, 10 + n);
    const Result fast = FromPoints(n, 3, p, MdsMethod::kCoordinates);
    const Result slow = FromPoints(n, 3, p, MdsMethod::kDistance);
    if (n >= 4) {
      EXPECT_LE(MaxAbsDiff(fast.y, slow.y), 1e-12 * 10) << n;
      EXPECT_LE(MaxAbsDiff(fast.eig, slow.eig), 1e-12 * fast.eig[0]) << n;
    }
    EXPECT_EQ(fast.flags, slow.flags) << n;
  }
}

// Eigenvalues are the squared singular values of the centred cloud (an independent route).
TEST(InvariantMds, EigenvaluesAreSquaredSingularValues) {
  const int64_t n = 50;
  const auto p = Cloud(n, 3);
  Eigen::MatrixXd x(n, 3);
  for (int64_t i = 0; i < n; ++i)
    for (int a = 0; a < 3; ++a) x(i, a) = p[i * 3 + a];
  x.rowwise() -= x.colwise().mean();
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(x);
  const Result r = FromPoints(n, 3, p, MdsMethod::kCoordinates);
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(r.eig[a], svd.singularValues()(a) * svd.singularValues()(a), 1e-10);
}

TEST(InvariantMds, FlagsSymmetricShapes) {
  // Regular hexagon in 2D: λ1 = λ2.
  std::vector<double> hex;
  for (int i = 0; i < 6; ++i) {
    hex.push_back(std::cos(2 * std::numbers::pi * i / 6));
    hex.push_back(std::sin(2 * std::numbers::pi * i / 6));
  }
  for (MdsMethod m : {MdsMethod::kCoordinates, MdsMethod::kDistance}) {
    const Result r = FromPoints(6, 2, hex, m);
    EXPECT_TRUE(r.flags[0] & kFlagDegenerate);
    EXPECT_TRUE(r.flags[1] & kFlagDegenerate);
  }
  // Cube vertices: all three eigenvalues equal.
  std::vector<double> cube;
  for (int i = 0; i < 8; ++i)
    for (int a = 0; a < 3; ++a) cube.push_back((i >> a) & 1 ? 1.0 : -1.0);
  const Result rc = FromPoints(8, 3, cube, MdsMethod::kCoordinates);
  for (int a = 0; a < 3; ++a) EXPECT_TRUE(rc.flags[a] & kFlagDegenerate);
  // A cloud symmetric under x ↦ −x (x the dominant axis): sign of that axis unresolved.
  std::vector<double> sym;
  Rng rng(4);
  for (int i = 0; i < 20; ++i) {
    const double x = 5 * rng.Normal(), y = rng.Normal(), z = 0.3 * rng.Normal();
    sym.insert(sym.end(), {x, y + 2 * z * z, z});
    sym.insert(sym.end(), {-x, y + 2 * z * z, z});
  }
  const Result rs = FromPoints(40, 3, sym, MdsMethod::kCoordinates);
  EXPECT_TRUE(rs.flags[0] & kFlagSignUnresolved);
  EXPECT_FALSE(rs.flags[0] & kFlagDegenerate);
}

// Graph shortest-path distances of a cycle are not Euclidean: B has negative eigenvalues;
// those columns are zeroed and flagged, and the stress is reported.
TEST(InvariantMds, NonEuclideanDistancesKeepOnlyPositiveEigenvalues) {
  const int64_t n = 9;
  std::vector<double> d(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const int64_t h = std::abs(i - j);
      d[i * n + j] = static_cast<double>(std::min(h, n - h));
    }
  MdsOptions o;
  o.k = static_cast<int>(n);
  Result r{std::vector<double>(n * n), std::vector<double>(n), std::vector<double>(1),
           std::vector<int32_t>(n)};
  ASSERT_OK(InvariantMdsFromDistances(1, n, d.data(), o,
                                      {r.y.data(), r.eig.data(), r.flags.data(), r.stress.data()}));
  bool any_negative = false;
  for (int a = 0; a < n; ++a) {
    if (r.eig[a] < -1e-9) {
      any_negative = true;
      EXPECT_TRUE(r.flags[a] & kFlagNonPositive);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(r.y[i * n + a], 0.0);
    }
  }
  EXPECT_TRUE(any_negative);
  EXPECT_GT(r.stress[0], 1e-3);
  // Stress by hand from the returned embedding.
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double e = 0;
      for (int a = 0; a < n; ++a) e += std::pow(r.y[i * n + a] - r.y[j * n + a], 2);
      s += std::pow(d[i * n + j] - std::sqrt(e), 2);
    }
  EXPECT_NEAR(r.stress[0], std::sqrt(s), 1e-12);
}

TEST(InvariantMds, BatchAndThreadsGiveIdenticalBits) {
  const int64_t n = 64, batch = 5;
  std::vector<double> p;
  for (int b = 0; b < batch; ++b) {
    const auto c = Cloud(n, 100 + b);
    p.insert(p.end(), c.begin(), c.end());
  }
  MdsOptions o1, o2;
  o2.threads = 2;
  for (MdsMethod m : {MdsMethod::kCoordinates, MdsMethod::kDistance}) {
    const Result a = FromPoints(n, 3, p, m, o1, batch), b = FromPoints(n, 3, p, m, o2, batch);
    EXPECT_EQ(a.y, b.y);
    const Result single = FromPoints(n, 3, std::vector<double>(p.begin() + 2 * n * 3,
                                                               p.begin() + 3 * n * 3), m);
    EXPECT_EQ(std::vector<double>(a.y.begin() + 2 * n * 3, a.y.begin() + 3 * n * 3), single.y);
  }
}

TEST(InvariantMds, RejectsBadInput) {
  std::vector<double> p(30, 1.0), y(30), e(3);
  std::vector<int32_t> f(3);
  const MdsOutput out{y.data(), e.data(), f.data(), nullptr};
  MdsOptions o;
  o.k = 4;
  EXPECT_THAT(InvariantMdsFromPoints(1, 10, 3, p.data(), o, MdsMethod::kCoordinates, out),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("k")));
  o.k = 0;
  o.tol = 0;
  EXPECT_THAT(InvariantMdsFromPoints(1, 10, 3, p.data(), o, MdsMethod::kCoordinates, out),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("tol")));
  o.tol = 1e-8;
  p[4] = std::nan("");
  EXPECT_THAT(InvariantMdsFromPoints(1, 10, 3, p.data(), o, MdsMethod::kCoordinates, out),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("points")));
  std::vector<double> d = {0, 1, 2, 1, 0, 1, 2, 1.5, 0};
  o.k = 2;
  EXPECT_THAT(InvariantMdsFromDistances(1, 3, d.data(), o, out),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("symmetric")));
}

}  // namespace
}  // namespace chamferdb::tinv
