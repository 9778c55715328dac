#include "kernels/lie/lie.h"

#include <Eigen/Dense>
#include <cmath>
#include <numbers>
#include <vector>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chamferdb::lie {
namespace {

using ::chamferdb::testing::StatusIs;
using Mat = Eigen::MatrixXd;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr double kPi = std::numbers::pi;

Mat Load(int n, const double* p) { return Eigen::Map<const RowMat>(p, n, n); }

// Random g with det > 0 (det 1 for SL).
std::vector<double> RandomGroup(Group group, int n, int64_t batch, uint64_t seed,
                                double spread = 1.0) {
  Rng rng(seed);
  std::vector<double> out(batch * n * n);
  for (int64_t b = 0; b < batch; ++b) {
    Mat g(n, n);
    do {
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) g(i, j) = spread * rng.Normal() + (i == j ? 1.5 : 0.0);
    } while (g.determinant() <= 0.05);
    if (group == Group::kSL) g /= std::pow(g.determinant(), 1.0 / n);
    Eigen::Map<RowMat>(&out[b * n * n], n, n) = g;
  }
  return out;
}

struct Dec {
  std::vector<double> p, r, x, w, theta, xi, lh;
};

Dec RunDecompose(Group group, int n, const std::vector<double>& g, DecomposeMethod m, double alpha = 1.0) {
  const int64_t batch = static_cast<int64_t>(g.size()) / (n * n);
  Dec d{std::vector<double>(g.size()), std::vector<double>(g.size()), std::vector<double>(g.size()),
        std::vector<double>(g.size()), std::vector<double>(batch),
        std::vector<double>(batch * AlgebraDim(group, n)), std::vector<double>(batch)};
  const absl::Status s = Decompose(group, n, batch, g.data(), m, alpha, 1e-9, 2,
                                   {d.p.data(), d.r.data(), d.x.data(), d.w.data(),
                                    d.theta.data(), d.xi.data(), d.lh.data()});
  EXPECT_TRUE(s.ok()) << s;
  return d;
}

TEST(LieDecompose, ReconstructsWithSpdAndRotationFactors) {
  for (Group group : {Group::kGLPlus, Group::kSL})
    for (int n : {2, 3})
      for (DecomposeMethod m : {DecomposeMethod::kAuto, DecomposeMethod::kSvd, DecomposeMethod::kEigh}) {
        const auto g = RandomGroup(group, n, 20, 1 + n);
        const Dec d = RunDecompose(group, n, g, m);
        for (int b = 0; b < 20; ++b) {
          const Mat gb = Load(n, &g[b * n * n]), p = Load(n, &d.p[b * n * n]),
                    r = Load(n, &d.r[b * n * n]), x = Load(n, &d.x[b * n * n]);
          EXPECT_LE((p * r - gb).norm(), 1e-13 * gb.norm());
          EXPECT_LE((p - p.transpose()).norm(), 1e-14 * p.norm());
          EXPECT_GT(Eigen::SelfAdjointEigenSolver<Mat>(p).eigenvalues().minCoeff(), 0);
          // eigh(g gᵀ) squares the condition number: R = P⁻¹g is orthogonal only to κ²·ε.
          const double tol = m == DecomposeMethod::kEigh ? 1e-11 : 1e-14;
          EXPECT_LE((r.transpose() * r - Mat::Identity(n, n)).norm(), tol);
          EXPECT_NEAR(r.determinant(), 1.0, tol);
          // X = log P: exp(X) = P.
          Eigen::SelfAdjointEigenSolver<Mat> es(x);
          const Mat ex = es.eigenvectors() * es.eigenvalues().array().exp().matrix().asDiagonal() *
                         es.eigenvectors().transpose();
          EXPECT_LE((ex - p).norm(), 1e-13 * p.norm());
          if (group == Group::kSL) {
            EXPECT_NEAR(x.trace(), 0.0, 1e-14);
            EXPECT_NEAR(p.determinant(), 1.0, 1e-13);
          }
        }
      }
}

TEST(LieDecompose, MethodsAgreeAndSvdHandlesIllConditioning) {
  const auto g = RandomGroup(Group::kGLPlus, 2, 30, 5);
  const Dec a = RunDecompose(Group::kGLPlus, 2, g, DecomposeMethod::kClosedForm);
  for (DecomposeMethod m : {DecomposeMethod::kSvd, DecomposeMethod::kEigh}) {
    const Dec b = RunDecompose(Group::kGLPlus, 2, g, m);
    for (size_t i = 0; i < a.xi.size(); ++i) EXPECT_NEAR(a.xi[i], b.xi[i], 1e-12);
  }
  // κ = 1e8: SVD and the closed form keep the reconstruction; eigh(g gᵀ) squares κ.
  std::vector<double> ill = {1e4, 0.3, 0.0, 1e-4};
  for (DecomposeMethod m : {DecomposeMethod::kClosedForm, DecomposeMethod::kSvd}) {
    const Dec d = RunDecompose(Group::kGLPlus, 2, ill, m);
    const Mat rec = Load(2, d.p.data()) * Load(2, d.r.data());
    EXPECT_LE((rec - Load(2, ill.data())).norm(), 1e-12 * 1e4);
  }
}

TEST(LieDecompose, IsEquivariantUnderRotations) {
  for (int n : {2, 3}) {
    const auto g = RandomGroup(Group::kGLPlus, n, 1, 9);
    const auto kk = RandomGroup(Group::kGLPlus, n, 1, 10);
    const Dec dk = RunDecompose(Group::kGLPlus, n, kk, DecomposeMethod::kSvd);
    const Mat k = Load(n, dk.r.data());  // a rotation
    const Mat gm = Load(n, g.data());
    const Dec d = RunDecompose(Group::kGLPlus, n, g, DecomposeMethod::kAuto);
    std::vector<double> kg(n * n), gk(n * n);
    Eigen::Map<RowMat>(kg.data(), n, n) = k * gm;
    Eigen::Map<RowMat>(gk.data(), n, n) = gm * k;
    const Dec a = RunDecompose(Group::kGLPlus, n, kg, DecomposeMethod::kAuto);
    const Dec b = RunDecompose(Group::kGLPlus, n, gk, DecomposeMethod::kAuto);
    const Mat p = Load(n, d.p.data()), r = Load(n, d.r.data());
    EXPECT_LE((Load(n, a.p.data()) - k * p * k.transpose()).norm(), 1e-13);
    EXPECT_LE((Load(n, a.r.data()) - k * r).norm(), 1e-13);
    EXPECT_LE((Load(n, b.p.data()) - p).norm(), 1e-13);
    EXPECT_LE((Load(n, b.r.data()) - r * k).norm(), 1e-13);
  }
}

TEST(LieCompose, InvertsDecomposeBothWays) {
  for (Group group : {Group::kGLPlus, Group::kSL})
    for (int n : {2, 3}) {
      const auto g = RandomGroup(group, n, 10, 20 + n);
      const Dec d = RunDecompose(group, n, g, DecomposeMethod::kAuto, 0.7);
      std::vector<double> g1(g.size()), g2(g.size());
      ASSERT_OK(Compose(group, n, 10, nullptr, d.x.data(), d.w.data(), 0.7, g1.data()));
      ASSERT_OK(Compose(group, n, 10, d.xi.data(), nullptr, nullptr, 0.7, g2.data()));
      for (size_t i = 0; i < g.size(); ++i) {
        EXPECT_NEAR(g1[i], g[i], 1e-12);
        EXPECT_NEAR(g2[i], g[i], 1e-12);
      }
      // decompose(compose(X, Ω)) = (X, Ω) for angles < π.
      const Dec d2 = RunDecompose(group, n, g1, DecomposeMethod::kAuto, 0.7);
      for (size_t i = 0; i < g.size(); ++i) {
        EXPECT_NEAR(d2.x[i], d.x[i], 1e-12);
        EXPECT_NEAR(d2.w[i], d.w[i], 1e-12);
      }
    }
}

TEST(LieDecompose, XiMatchesTheRgennBasisForGl2) {
  // g = exp(X)·rot(θ) with known X, θ: xi = (√α X00, √(2α) X01, √α X11, θ mod 2π).
  const double alpha = 0.5, t = -2.0;
  Mat x(2, 2);
  x << 0.3, -0.2, -0.2, 0.1;
  Eigen::SelfAdjointEigenSolver<Mat> es(x);
  const Mat p = es.eigenvectors() * es.eigenvalues().array().exp().matrix().asDiagonal() *
                es.eigenvectors().transpose();
  Mat r(2, 2);
  r << std::cos(t), -std::sin(t), std::sin(t), std::cos(t);
  std::vector<double> g(4);
  Eigen::Map<RowMat>(g.data(), 2, 2) = p * r;
  const Dec d = RunDecompose(Group::kGLPlus, 2, g, DecomposeMethod::kAuto, alpha);
  EXPECT_NEAR(d.xi[0], std::sqrt(alpha) * 0.3, 1e-14);
  EXPECT_NEAR(d.xi[1], std::sqrt(2 * alpha) * -0.2, 1e-14);
  EXPECT_NEAR(d.xi[2], std::sqrt(alpha) * 0.1, 1e-14);
  EXPECT_NEAR(d.xi[3], t + 2 * kPi, 1e-14);
  EXPECT_NEAR(d.theta[0], t, 1e-14);
}

// |det g|^{−n}·|∂g/∂(x, ω)| / J(X) is the same constant at every point (2 for n = 2, 8 for
// n = 3, off-diagonal coordinates unscaled), by a finite-difference Jacobian of
// (x, ω) ↦ exp(X)·R0·exp(Ω(ω)) at ω = 0.
TEST(LieMeasure, HaarDensityInCartanCoordinates) {
  for (int n : {2, 3}) {
    const int ns = n * (n + 1) / 2, nw = n * (n - 1) / 2, dim = ns + nw;
    Rng rng(30 + n);
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<double> base(dim);
      for (int c = 0; c < ns; ++c) base[c] = 0.8 * rng.Normal();
      const auto r0v = RandomGroup(Group::kGLPlus, n, 1, 100 + trial);
      const Dec dr = RunDecompose(Group::kGLPlus, n, r0v, DecomposeMethod::kSvd);
      const Mat r0 = Load(n, dr.r.data());
      auto eval = [&](const std::vector<double>& c) {
        Mat x = Mat::Zero(n, n), w = Mat::Zero(n, n);
        int t = 0;
        for (int i = 0; i < n; ++i)
          for (int j = i; j < n; ++j, ++t) x(i, j) = x(j, i) = c[t];
        std::vector<double> xs(n * n), ws(n * n), g(n * n);
        if (n == 2) {
          w(1, 0) = c[ns], w(0, 1) = -c[ns];
        } else {
          w(2, 1) = c[ns], w(1, 2) = -c[ns], w(0, 2) = c[ns + 1], w(2, 0) = -c[ns + 1];
          w(1, 0) = c[ns + 2], w(0, 1) = -c[ns + 2];
        }
        Eigen::Map<RowMat>(xs.data(), n, n) = x;
        Eigen::Map<RowMat>(ws.data(), n, n) = w;
        EXPECT_OK(Compose(Group::kGLPlus, n, 1, nullptr, xs.data(), ws.data(), 1.0, g.data()));
        // exp(X)·R0·exp(Ω) = (exp(X)·exp(Ω'))·… ; build it directly from the composed parts.
        const Mat e = Load(n, g.data());                 // exp(X)·exp(Ω)
        Mat ex = Mat::Zero(n, n);
        std::vector<double> zero(n * n, 0.0), gx(n * n);
        EXPECT_OK(Compose(Group::kGLPlus, n, 1, nullptr, xs.data(), zero.data(), 1.0, gx.data()));
        ex = Load(n, gx.data());                          // exp(X)
        return Mat(ex * r0 * ex.inverse() * e);           // exp(X)·R0·exp(Ω)
      };
      Mat jac(n * n, dim);
      const double h = 1e-6;
      for (int c = 0; c < dim; ++c) {
        auto up = base, dn = base;
        up[c] += h, dn[c] -= h;
        const Mat d = (eval(up) - eval(dn)) / (2 * h);
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j) jac(i * n + j, c) = d(i, j);
      }
      const Mat g = eval(base);
      Mat x = Mat::Zero(n, n);
      int t = 0;
      for (int i = 0; i < n; ++i)
        for (int j = i; j < n; ++j, ++t) x(i, j) = x(j, i) = base[t];
      Eigen::SelfAdjointEigenSolver<Mat> es(x);
      const double ratio = std::pow(std::abs(g.determinant()), -n) * std::abs(jac.determinant()) /
                           std::exp(LogHaarDensity(n, es.eigenvalues().data()));
      EXPECT_NEAR(ratio, n == 2 ? 2.0 : 8.0, 1e-6) << "n=" << n << " trial " << trial;
    }
  }
}

TEST(LieSample, PairsAreInversesAndFactorsAreValid) {
  for (Group group : {Group::kGLPlus, Group::kSL})
    for (auto [n, sampler] : {std::pair{2, SoSampler::kEquidistant}, {2, SoSampler::kUniformAngle},
                              {2, SoSampler::kHaar}, {3, SoSampler::kHaar}}) {
      const int64_t count = 11;
      std::vector<double> g(count * n * n), gi(g.size()), x(g.size()), r(g.size()), lw(count);
      ASSERT_OK(Sample(group, n, count, 7, 0.1, sampler, 1.0,
                       {g.data(), gi.data(), x.data(), r.data(), lw.data()}));
      for (int64_t c = 0; c < count; ++c) {
        const Mat gm = Load(n, &g[c * n * n]);
        EXPECT_LE((gm * Load(n, &gi[c * n * n]) - Mat::Identity(n, n)).norm(), 1e-13);
        EXPECT_NEAR(Load(n, &r[c * n * n]).determinant(), 1.0, 1e-13);
        if (group == Group::kSL) {
          EXPECT_NEAR(gm.determinant(), 1.0, 1e-13);
        }
        EXPECT_TRUE(std::isfinite(lw[c]));
      }
      if (sampler == SoSampler::kEquidistant) {  // linspace(−π, π): both endpoints
        EXPECT_NEAR(r[0], -1.0, 1e-15);                    // θ_0 = −π
        EXPECT_NEAR(r[(count - 1) * 4], -1.0, 1e-15);      // θ_last = +π
        EXPECT_NEAR(r[(count / 2) * 4], 1.0, 1e-15);       // θ_mid = 0
      }
    }
}

// Monte Carlo invariance: with the importance weights, ∫ f(h·g) dμ = ∫ f(g) dμ within 4σ.
TEST(LieSample, WeightedMonteCarloIsLeftInvariant) {
  const int64_t count = 100000;
  const int n = 2;
  std::vector<double> g(count * 4), gi(g.size()), x(g.size()), r(g.size()), lw(count);
  ASSERT_OK(Sample(Group::kGLPlus, n, count, 11, 0.6, SoSampler::kUniformAngle, 1.0,
                   {g.data(), gi.data(), x.data(), r.data(), lw.data()}));
  Mat h(2, 2);
  h << 1.1, 0.2, -0.1, 0.9;
  auto f = [](const Mat& m) {
    Eigen::SelfAdjointEigenSolver<Mat> es(m * m.transpose());
    const double l = es.eigenvalues().array().log().matrix().squaredNorm();
    const double t = std::atan2(m(1, 0) - m(0, 1), m(0, 0) + m(1, 1));
    return std::exp(-l) * (1.0 + 0.5 * std::cos(t));
  };
  double mean = 0, sq = 0, base = 0;
  for (int64_t c = 0; c < count; ++c) {
    const Mat gm = Load(2, &g[c * 4]);
    const double w = std::exp(lw[c]);
    const double d = w * (f(h * gm) - f(gm));
    mean += d;
    sq += d * d;
    base += w * f(gm);
  }
  mean /= count;
  base /= count;
  const double sd = std::sqrt((sq / count - mean * mean) / count);
  EXPECT_LE(std::abs(mean), 4 * sd) << "mean diff " << mean << " sd " << sd << " base " << base;
  EXPECT_GT(base, 10 * sd);
}

TEST(AffineLiftCoords, AlgebraPartIsLeftInvariant) {
  const int64_t no = 3, ni = 4;
  const auto go = RandomGroup(Group::kGLPlus, 2, no, 40), gin = RandomGroup(Group::kGLPlus, 2, ni, 41);
  const auto hv = RandomGroup(Group::kGLPlus, 2, 1, 42);
  const Mat h = Load(2, hv.data());
  std::vector<double> go_inv(no * 4), go_inv_h(no * 4), gin_h(ni * 4);
  for (int64_t o = 0; o < no; ++o) {
    Eigen::Map<RowMat>(&go_inv[o * 4], 2, 2) = Load(2, &go[o * 4]).inverse();
    Eigen::Map<RowMat>(&go_inv_h[o * 4], 2, 2) = (h * Load(2, &go[o * 4])).inverse();
  }
  for (int64_t i = 0; i < ni; ++i) Eigen::Map<RowMat>(&gin_h[i * 4], 2, 2) = h * Load(2, &gin[i * 4]);
  const int k = 5, dim = 4;
  std::vector<double> c1(no * ni * k * k * (2 + dim)), c2(c1.size()), m1(no * ni * k * k),
      m2(m1.size()), v1(ni), v2(ni);
  ASSERT_OK(AffineLiftCoords(Group::kGLPlus, no, go_inv.data(), ni, gin.data(), k, 1.0, c1.data(),
                             m1.data(), v1.data()));
  ASSERT_OK(AffineLiftCoords(Group::kGLPlus, no, go_inv_h.data(), ni, gin_h.data(), k, 1.0,
                             c2.data(), m2.data(), v2.data()));
  for (size_t cell = 0; cell < m1.size(); ++cell)
    for (int d = 0; d < dim; ++d)
      EXPECT_NEAR(c1[cell * (2 + dim) + 2 + d], c2[cell * (2 + dim) + 2 + d], 1e-11);
  for (int64_t i = 0; i < ni; ++i)
    EXPECT_NEAR(v1[i], 1.0 / Load(2, &gin[i * 4]).determinant(), 1e-14);
  // Spatial part: g_o⁻¹·x_uv; the centre of an odd grid maps to the origin, inside the mask.
  const int64_t centre = (0 * k + 2) * k + 2;
  EXPECT_EQ(c1[centre * (2 + dim)], 0.0);
  EXPECT_EQ(m1[centre], 1.0);
}

TEST(Lie, RejectsBadInput) {
  std::vector<double> neg = {1, 0, 0, -1};
  std::vector<double> out(16);
  const Decomposition d{out.data()};
  EXPECT_THAT(Decompose(Group::kGLPlus, 2, 1, neg.data(), DecomposeMethod::kAuto, 1, 1e-9, 1, d),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("det")));
  std::vector<double> two = {2, 0, 0, 1};
  EXPECT_THAT(Decompose(Group::kSL, 2, 1, two.data(), DecomposeMethod::kAuto, 1, 1e-9, 1, d),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("sl_tol")));
  EXPECT_THAT(Decompose(Group::kGLPlus, 4, 1, two.data(), DecomposeMethod::kAuto, 1, 1e-9, 1, d),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("n must")));
  EXPECT_THAT(Decompose(Group::kGLPlus, 3, 0, two.data(), DecomposeMethod::kClosedForm, 1, 1e-9, 1, d),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("closed_form")));
}

}  // namespace
}  // namespace chamferdb::lie
