#include "kernels/mfac/mfac.h"

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"

namespace chamferdb::mfac {
namespace {

std::vector<double> Gaussian(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = rng.Normal();
  return v;
}

double RelErr(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

// F·y computed directly (the definition), for the residual check.
std::vector<double> ApplyF(const std::vector<double>& g, size_t m, size_t d, double damp,
                           const std::vector<double>& y) {
  std::vector<double> out(d);
  for (size_t k = 0; k < d; ++k) out[k] = damp * y[k];
  for (size_t i = 0; i < m; ++i) {
    double s = 0;
    for (size_t k = 0; k < d; ++k) s += g[i * d + k] * y[k];
    for (size_t k = 0; k < d; ++k) out[k] += g[i * d + k] * s / m;
  }
  return out;
}

class MFacDamp : public ::testing::TestWithParam<double> {};

TEST_P(MFacDamp, StaticAgreesWithDenseSolveWoodburyAndResidual) {
  const double damp = GetParam();
  const size_t m = 16, d = 300, r = 3;
  auto g = Gaussian(m * d, 1), x = Gaussian(r * d, 2);
  auto f = StaticPrecompute(g.data(), m, d, damp, 5);
  std::vector<double> fast(r * d), dense(r * d), wood(r * d);
  StaticApply(f, x.data(), r, fast.data());
  DenseApply(g.data(), m, d, damp, x.data(), r, dense.data());
  WoodburyApply(g.data(), m, d, damp, x.data(), r, wood.data());
  const double tol = damp >= 1e-3 ? 1e-11 : 1e-8;
  EXPECT_LT(RelErr(fast, dense), tol);
  EXPECT_LT(RelErr(wood, dense), tol);
  std::vector<double> y0(fast.begin(), fast.begin() + d), x0(x.begin(), x.begin() + d);
  EXPECT_LT(RelErr(ApplyF(g, m, d, damp, y0), x0), tol);
}

TEST_P(MFacDamp, DiagonalAndEntriesMatchTheDenseInverse) {
  const double damp = GetParam();
  const size_t m = 8, d = 60;
  auto g = Gaussian(m * d, 3);
  auto f = StaticPrecompute(g.data(), m, d, damp);
  std::vector<double> diag(d), ref(d);
  StaticDiag(f, diag.data());
  DenseDiag(g.data(), m, d, damp, ref.data());
  EXPECT_LT(RelErr(diag, ref), damp >= 1e-3 ? 1e-11 : 1e-8);
  for (size_t k = 0; k < d; ++k) EXPECT_NEAR(StaticEntry(f, k, k), ref[k], 1e-9 / damp);
  // Off-diagonal entry (3, 7) = e_3ᵀ F⁻¹ e_7.
  std::vector<double> e7(d, 0.0), col(d);
  e7[7] = 1.0;
  DenseApply(g.data(), m, d, damp, e7.data(), 1, col.data());
  EXPECT_NEAR(StaticEntry(f, 3, 7), col[3], 1e-9 * std::fabs(1.0 / damp));
  EXPECT_NEAR(StaticEntry(f, 3, 3), ref[3], 1e-9 * std::fabs(1.0 / damp));
}

INSTANTIATE_TEST_SUITE_P(Damping, MFacDamp, ::testing::Values(1e-1, 1e-3, 1e-5));

TEST(MFac, BlockingDoesNotChangeTheFactorBeyondRounding) {
  const size_t m = 23, d = 40;
  auto g = Gaussian(m * d, 4);
  auto a = StaticPrecompute(g.data(), m, d, 0.05, 1), b = StaticPrecompute(g.data(), m, d, 0.05, 7);
  EXPECT_LT(RelErr(b.v, a.v), 1e-12);
  EXPECT_LT(RelErr(b.q, a.q), 1e-12);
}

TEST(MFac, SymmetricAndInvariantToGradientOrder) {
  const size_t m = 10, d = 50;
  auto g = Gaussian(m * d, 5), x = Gaussian(d, 6), y = Gaussian(d, 7);
  auto f = StaticPrecompute(g.data(), m, d, 0.1);
  std::vector<double> fx(d), fy(d);
  StaticApply(f, x.data(), 1, fx.data());
  StaticApply(f, y.data(), 1, fy.data());
  double a = 0, b = 0;
  for (size_t k = 0; k < d; ++k) {
    a += y[k] * fx[k];
    b += x[k] * fy[k];
  }
  EXPECT_NEAR(a, b, 1e-10 * std::fabs(a));
  std::vector<double> perm(m * d);
  for (size_t i = 0; i < m; ++i)
    for (size_t k = 0; k < d; ++k) perm[i * d + k] = g[((i * 7) % m) * d + k];
  auto fp = StaticPrecompute(perm.data(), m, d, 0.1);
  std::vector<double> px(d);
  StaticApply(fp, x.data(), 1, px.data());
  EXPECT_LT(RelErr(px, fx), 1e-12);
}

TEST(MFac, SingleGradientClosedForm) {
  const size_t d = 9;
  auto g = Gaussian(d, 8), x = Gaussian(d, 9);
  const double damp = 0.3;
  auto f = StaticPrecompute(g.data(), 1, d, damp);
  std::vector<double> out(d);
  StaticApply(f, x.data(), 1, out.data());
  double gx = 0, gg = 0;
  for (size_t k = 0; k < d; ++k) {
    gx += g[k] * x[k];
    gg += g[k] * g[k];
  }
  for (size_t k = 0; k < d; ++k) {
    EXPECT_NEAR(out[k], x[k] / damp - g[k] * gx / (damp * (damp + gg)), 1e-12);
  }
}

TEST(MFacWindow, EqualsStaticOnTheSameAndOnTheLastMGradients) {
  const size_t m = 6, d = 80, extra = 9;
  auto g = Gaussian((m + extra) * d, 10), x = Gaussian(2 * d, 11);
  const double damp = 0.05;
  Window w(g.data(), m, d, damp);
  auto f = StaticPrecompute(g.data(), m, d, damp);
  std::vector<double> a(2 * d), b(2 * d);
  w.Apply(x.data(), 2, a.data());
  StaticApply(f, x.data(), 2, b.data());
  EXPECT_LT(RelErr(a, b), 1e-11);
  // The LU pivots are the static denominators.
  for (size_t i = 0; i < m; ++i) EXPECT_NEAR(w.pivots()[i], f.q[i], 1e-10 * f.q[i]);
  for (size_t t = 0; t < extra; ++t) w.Update(g.data() + (m + t) * d);
  auto last = StaticPrecompute(g.data() + extra * d, m, d, damp);
  w.Apply(x.data(), 2, a.data());
  StaticApply(last, x.data(), 2, b.data());
  EXPECT_LT(RelErr(a, b), 1e-10);
  std::vector<double> dense(2 * d);
  DenseApply(g.data() + extra * d, m, d, damp, x.data(), 2, dense.data());
  EXPECT_LT(RelErr(a, dense), 1e-10);
}

}  // namespace
}  // namespace chamferdb::mfac
