#include "kernels/ebv/ebv.h"

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"

namespace chamferdb::ebv {
namespace {

std::vector<double> UnitRows(size_t n, size_t d, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> e(n * d);
  for (auto& x : e) x = rng.Normal();
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < d; ++j) s += e[i * d + j] * e[i * d + j];
    for (size_t j = 0; j < d; ++j) e[i * d + j] /= std::sqrt(s);
  }
  return e;
}

TEST(Ebv, BlockedGradientMatchesNaiveTripleLoops) {
  const size_t n = 37, d = 8;
  auto e = UnitRows(n, d, 1);
  std::vector<double> g1(n * d), g2(n * d);
  const double l1 = NaiveLossAndGradient(e.data(), n, d, 0.2, g1.data());
  CosStats st;
  const double l2 = BlockedLossAndGradient(e.data(), n, d, 0.2, 5, g2.data(), &st);
  EXPECT_NEAR(l1, l2, 1e-12 * l1);
  for (size_t t = 0; t < g1.size(); ++t) EXPECT_NEAR(g1[t], g2[t], 1e-12);
  const CosStats bf = BruteForceCosStats(e.data(), n, d);
  EXPECT_NEAR(st.max_abs, bf.max_abs, 1e-15);
  EXPECT_NEAR(st.mean_abs, bf.mean_abs, 1e-15);
  EXPECT_NEAR(st.min_abs, bf.min_abs, 1e-15);
}

TEST(Ebv, GradientMatchesCentralFiniteDifferences) {
  const size_t n = 12, d = 5;
  auto e = UnitRows(n, d, 2);
  std::vector<double> g(n * d), dummy(n * d), dir(n * d);
  NaiveLossAndGradient(e.data(), n, d, 0.3, g.data());
  Rng rng(3);
  for (auto& x : dir) x = rng.Normal();
  const double h = 1e-7;
  auto loss_at = [&](double s) {
    std::vector<double> x(e);
    for (size_t t = 0; t < x.size(); ++t) x[t] += s * dir[t];
    return NaiveLossAndGradient(x.data(), n, d, 0.3, dummy.data());
  };
  const double fd = (loss_at(h) - loss_at(-h)) / (2 * h);
  double an = 0;
  for (size_t t = 0; t < g.size(); ++t) an += g[t] * dir[t];
  EXPECT_NEAR(fd, an, 1e-5 * std::max(1.0, std::fabs(an)));
}

TEST(Ebv, QrPathIsExactlyOrthonormalWhenNAtMostD) {
  GenerateParams p;
  p.n = 60;
  p.d = 64;
  auto r = Generate(p);
  EXPECT_TRUE(r.used_qr);
  EXPECT_TRUE(r.converged);
  EXPECT_LT(r.stats.max_abs, 1e-12);
  EXPECT_EQ(r.welch_bound, 0.0);
  for (size_t i = 0; i < p.n; ++i) {
    double s = 0;
    for (size_t j = 0; j < p.d; ++j) s += r.e[i * p.d + j] * r.e[i * p.d + j];
    EXPECT_NEAR(s, 1.0, 1e-12);
  }
}

TEST(Ebv, OfficialSgdConvergesAboveWelchAndReportsHonestStatistics) {
  GenerateParams p;
  p.n = 200;
  p.d = 50;
  p.tau = 0.2;
  p.optimizer = Optimizer::kOfficialSgd;
  p.max_steps = 5000;
  auto r = Generate(p);
  EXPECT_TRUE(r.converged);
  EXPECT_GT(r.steps, 0);
  EXPECT_LE(r.stats.max_abs, p.tau + 1e-4);
  const CosStats bf = BruteForceCosStats(r.e.data(), p.n, p.d);
  EXPECT_NEAR(r.stats.max_abs, bf.max_abs, 1e-12);
  EXPECT_GE(bf.max_abs, r.welch_bound);
  EXPECT_NEAR(r.welch_bound, 0.1228, 1e-4);
}

TEST(Ebv, NonConvergenceIsReported) {
  GenerateParams p;
  p.n = 200;
  p.d = 50;
  p.tau = 0.12;  // below the practical frontier (~1.2× Welch)
  p.optimizer = Optimizer::kOfficialSgd;
  p.max_steps = 100;
  auto r = Generate(p);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.steps, 100);
  EXPECT_GT(r.stats.max_abs, p.tau + 1e-4);
}

TEST(Ebv, WelchAndLevenshteinBounds) {
  EXPECT_NEAR(WelchBound(1000, 100), 0.0949, 1e-4);
  EXPECT_NEAR(WelchBound(1000, 500), 0.0316, 1e-4);
  EXPECT_EQ(LowerBound(1000, 100), WelchBound(1000, 100));
  // N = 10 > d(d+1)/2 = 6 for d = 3: Levenshtein is larger than Welch.
  EXPECT_GT(LowerBound(10, 3), WelchBound(10, 3));
}

TEST(Ebv, ClassifyEqualsBruteForceArgmaxWithIndexTieBreak) {
  const size_t n = 30, d = 7, b = 11;
  auto e = UnitRows(n, d, 5);
  for (size_t j = 0; j < d; ++j) e[9 * d + j] = e[4 * d + j];  // classes 4 and 9 tie
  Rng rng(6);
  std::vector<double> f(b * d);
  for (auto& x : f) x = rng.Normal();
  for (size_t j = 0; j < d; ++j) f[j] = 3.0 * e[4 * d + j];  // sample 0 sits on class 4 = 9
  auto fast = Classify(f.data(), b, e.data(), n, d, 3);
  auto naive = Classify(f.data(), b, e.data(), n, d, 3, true);
  EXPECT_EQ(fast.ids, naive.ids);
  EXPECT_EQ(fast.ids[0], 4);
  EXPECT_EQ(fast.ids[1], 9);
  for (size_t i = 0; i < b; ++i) {
    double best = -2;
    int64_t arg = -1;
    double norm = 0;
    for (size_t j = 0; j < d; ++j) norm += f[i * d + j] * f[i * d + j];
    for (size_t c = 0; c < n; ++c) {
      double s = 0;
      for (size_t j = 0; j < d; ++j) s += f[i * d + j] * e[c * d + j];
      s /= std::sqrt(norm);
      if (s > best + 1e-12) {
        best = s;
        arg = static_cast<int64_t>(c);
      }
    }
    EXPECT_EQ(fast.ids[i * 3], arg);
    EXPECT_NEAR(fast.cosines[i * 3], best, 1e-12);
  }
  // Scaling a feature does not change its classes.
  for (size_t j = 0; j < d; ++j) f[5 * d + j] *= 7.5;
  auto scaled = Classify(f.data(), b, e.data(), n, d, 3);
  for (int t = 0; t < 3; ++t) EXPECT_EQ(scaled.ids[15 + t], fast.ids[15 + t]);
}

}  // namespace
}  // namespace chamferdb::ebv
