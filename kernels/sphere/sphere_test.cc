#include "kernels/sphere/sphere.h"

#include "kernels/sphere/frames.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"

namespace chamferdb::sphere {
namespace {

constexpr double kPi = std::numbers::pi;

void RandomUnit(Rng& rng, double* r) {
  double n = 0;
  for (int i = 0; i < 3; ++i) {
    r[i] = rng.Normal();
    n += r[i] * r[i];
  }
  n = std::sqrt(n);
  for (int i = 0; i < 3; ++i) r[i] /= n;
}

TEST(RealSh, MatchesClosedFormsForDegreesOneAndTwo) {
  Rng rng(1);
  const double c1 = std::sqrt(3.0 / (4 * kPi));
  const double c2 = 0.5 * std::sqrt(15.0 / kPi);
  for (int t = 0; t < 50; ++t) {
    double r[3];
    RandomUnit(rng, r);
    const double x = r[0], y = r[1], z = r[2];
    std::vector<double> v(NumSh(2));
    RealSh(2, r, v.data());
    EXPECT_NEAR(v[ShIndex(0, 0)], 0.5 / std::sqrt(kPi), 1e-15);
    EXPECT_NEAR(v[ShIndex(1, -1)], c1 * y, 1e-15);
    EXPECT_NEAR(v[ShIndex(1, 0)], c1 * z, 1e-15);
    EXPECT_NEAR(v[ShIndex(1, 1)], c1 * x, 1e-15);
    EXPECT_NEAR(v[ShIndex(2, -2)], c2 * x * y, 1e-14);
    EXPECT_NEAR(v[ShIndex(2, -1)], c2 * y * z, 1e-14);
    EXPECT_NEAR(v[ShIndex(2, 0)], 0.25 * std::sqrt(5 / kPi) * (3 * z * z - 1), 1e-14);
    EXPECT_NEAR(v[ShIndex(2, 1)], c2 * x * z, 1e-14);
    EXPECT_NEAR(v[ShIndex(2, 2)], 0.5 * c2 * (x * x - y * y), 1e-14);
  }
}

TEST(RealSh, AdditionTheoremHoldsAtRandomPoints) {
  const int lmax = 20;
  Rng rng(2);
  std::vector<double> v(NumSh(lmax));
  for (int t = 0; t < 20; ++t) {
    double r[3];
    RandomUnit(rng, r);
    RealSh(lmax, r, v.data());
    for (int l = 0; l <= lmax; ++l) {
      double s = 0;
      for (int m = -l; m <= l; ++m) s += v[ShIndex(l, m)] * v[ShIndex(l, m)];
      EXPECT_NEAR(s, (2 * l + 1) / (4 * kPi), 1e-12) << "l=" << l;
    }
  }
}

TEST(RealSh, PolarFormAgreesWithCartesianForm) {
  // Nbar with explicit sinθ times cos/sin(kφ) versus the (x+iy)^k route.
  const int lmax = 12;
  const double theta = 1.1, phi = 2.3;
  const double r[3] = {std::sin(theta) * std::cos(phi), std::sin(theta) * std::sin(phi),
                       std::cos(theta)};
  std::vector<double> v(NumSh(lmax)), p(NumTri(lmax));
  RealSh(lmax, r, v.data());
  LegendreNbar(lmax, std::cos(theta), std::sin(theta), p.data());
  for (int l = 0; l <= lmax; ++l) {
    EXPECT_NEAR(v[ShIndex(l, 0)], p[TriIndex(l, 0)], 1e-13);
    for (int k = 1; k <= l; ++k) {
      EXPECT_NEAR(v[ShIndex(l, k)], std::sqrt(2.0) * p[TriIndex(l, k)] * std::cos(k * phi), 1e-13);
      EXPECT_NEAR(v[ShIndex(l, -k)], std::sqrt(2.0) * p[TriIndex(l, k)] * std::sin(k * phi),
                  1e-13);
    }
  }
}

TEST(GaussLegendre, IntegratesPolynomialsOfDegreeUpTo2nMinus1) {
  for (int n : {1, 2, 3, 7, 16, 33}) {
    std::vector<double> x, w;
    GaussLegendre(n, &x, &w);
    for (int d = 0; d <= 2 * n - 1; ++d) {
      double s = 0;
      for (int i = 0; i < n; ++i) s += w[i] * std::pow(x[i], d);
      const double exact = (d % 2 == 1) ? 0.0 : 2.0 / (d + 1);
      EXPECT_NEAR(s, exact, 1e-14) << "n=" << n << " d=" << d;
    }
  }
}

TEST(SphereGrid, GramMatrixOfRealShIsIdentity) {
  const int lmax = 10;
  const int n = NumSh(lmax);
  const SphereGrid g = MakeSphereGrid(2 * lmax);
  std::vector<double> gram(n * n, 0.0), v(n);
  for (int j = 0; j < g.n_beta; ++j) {
    const double s = std::sqrt(1 - g.x[j] * g.x[j]);
    for (int q = 0; q < g.n_alpha; ++q) {
      const double a = 2 * kPi * q / g.n_alpha;
      const double r[3] = {s * std::cos(a), s * std::sin(a), g.x[j]};
      RealSh(lmax, r, v.data());
      const double wq = g.weight[j] * 2 * kPi / g.n_alpha;
      for (int i = 0; i < n; ++i)
        for (int k = 0; k < n; ++k) gram[i * n + k] += wq * v[i] * v[k];
    }
  }
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) EXPECT_NEAR(gram[i * n + k], i == k ? 1.0 : 0.0, 1e-13);
}

TEST(WignerD, DegreeOneBlockIsThePermutedRotation) {
  double rot[9];
  RandomRotation(7, rot);
  const std::vector<double> d = WignerD(1, rot);
  // Y_1 ∝ (y, z, x), so D1 = P R Pᵀ with P mapping (x, y, z) -> (y, z, x).
  const int perm[3] = {1, 2, 0};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      EXPECT_NEAR(d[(1 + a) * 4 + (1 + b)], rot[perm[a] * 3 + perm[b]], 1e-14);
  EXPECT_NEAR(d[0], 1.0, 1e-14);
}

TEST(WignerD, IsOrthogonalAndAHomomorphism) {
  const int lmax = 6, n = NumSh(lmax);
  double r1[9], r2[9], r12[9];
  RandomRotation(11, r1);
  RandomRotation(12, r2);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      r12[i * 3 + j] = 0;
      for (int k = 0; k < 3; ++k) r12[i * 3 + j] += r1[i * 3 + k] * r2[k * 3 + j];
    }
  const auto d1 = WignerD(lmax, r1), d2 = WignerD(lmax, r2), d12 = WignerD(lmax, r12);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double prod = 0, gram = 0;
      for (int k = 0; k < n; ++k) {
        prod += d1[i * n + k] * d2[k * n + j];
        gram += d1[k * n + i] * d1[k * n + j];
      }
      EXPECT_NEAR(prod, d12[i * n + j], 1e-13);
      EXPECT_NEAR(gram, i == j ? 1.0 : 0.0, 1e-13);
    }
}

TEST(NextSmoothSize, PadsPrimesToSevenSmooth) {
  EXPECT_EQ(NextSmoothSize(1), 1);
  EXPECT_EQ(NextSmoothSize(41), 42);
  EXPECT_EQ(NextSmoothSize(11), 12);
  EXPECT_EQ(NextSmoothSize(64), 64);
  EXPECT_EQ(NextSmoothSize(65), 70);
}

TEST(Frames, GramSchmidtFrameIsRightHandedAndPutsNInThePlane) {
  Rng rng(21);
  const int n = 10;
  std::vector<double> bb(n * 9), rot(n * 9), t(n * 3);
  for (double& v : bb) v = 3 * rng.Normal();
  ASSERT_TRUE(FramesFromBackbone(n, bb.data(), rot.data(), t.data()).ok());
  for (int i = 0; i < n; ++i) {
    const double* r = &rot[i * 9];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) {
        double dot = 0;
        for (int k = 0; k < 3; ++k) dot += r[k * 3 + a] * r[k * 3 + b];
        EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-14);
      }
    const double det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) +
                       r[2] * (r[3] * r[7] - r[4] * r[6]);
    EXPECT_NEAR(det, 1.0, 1e-14);
    double c_local[3], n_local[3], ca_local[3];
    ToLocal(r, &t[i * 3], &bb[i * 9 + 6], c_local);
    ToLocal(r, &t[i * 3], &bb[i * 9], n_local);
    ToLocal(r, &t[i * 3], &bb[i * 9 + 3], ca_local);
    // C on the −e1 axis, N in the e1–e2 half-plane with e2 > 0, CA at the origin.
    EXPECT_LT(c_local[0], 0);
    EXPECT_NEAR(c_local[1], 0, 1e-12);
    EXPECT_NEAR(c_local[2], 0, 1e-12);
    EXPECT_GT(n_local[1], 0);
    EXPECT_NEAR(n_local[2], 0, 1e-12);
    for (double v : ca_local) EXPECT_NEAR(v, 0, 1e-15);
  }
  bb[0] = bb[3] + 1, bb[1] = bb[4], bb[2] = bb[5];        // N = CA + x̂
  bb[6] = bb[3] - 2, bb[7] = bb[4], bb[8] = bb[5];        // C = CA − 2x̂: collinear
  EXPECT_FALSE(FramesFromBackbone(n, bb.data(), rot.data(), t.data()).ok());
}

}  // namespace
}  // namespace chamferdb::sphere
