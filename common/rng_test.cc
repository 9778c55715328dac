#include "common/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

namespace chamferdb {
namespace {

TEST(SplitMix64, MatchesPublishedReferenceSequence) {
  // Reference outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
  uint64_t state = 0;
  EXPECT_EQ(SplitMix64(&state), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(SplitMix64(&state), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(SplitMix64(&state), 0x06c45d188009454fULL);
}

TEST(Rng, SameSeedSameStreamDifferentSeedsDiffer) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.NextU64();
    EXPECT_EQ(x, b.NextU64());
    EXPECT_NE(x, c.NextU64());
  }
}

TEST(Rng, DerivedStreamsAreDistinct) {
  std::set<uint64_t> seeds;
  for (uint64_t a = 0; a < 50; ++a)
    for (uint64_t b = 0; b < 4; ++b) seeds.insert(DeriveSeed(7, a, b));
  EXPECT_EQ(seeds.size(), 200u);
  EXPECT_NE(DeriveSeed(7, 1, 2), DeriveSeed(7, 2, 1));
}

TEST(Rng, NormalHasStandardMoments) {
  Rng rng(1);
  const int n = 400000;
  double s1 = 0, s2 = 0, s4 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = rng.Normal();
    s1 += x;
    s2 += x * x;
    s4 += x * x * x * x;
  }
  EXPECT_NEAR(s1 / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
  EXPECT_NEAR(s4 / n, 3.0, 0.05);  // Gaussian kurtosis
}

TEST(Rng, UniformIntIsInRangeAndUnbiased) {
  Rng rng(3);
  const uint64_t n = 7;
  std::vector<int> counts(n, 0);
  const int draws = 700000;
  for (int i = 0; i < draws; ++i) {
    const uint64_t v = rng.UniformInt(n);
    ASSERT_LT(v, n);
    ++counts[v];
  }
  double chi2 = 0;
  for (int c : counts) chi2 += (c - draws / 7.0) * (c - draws / 7.0) / (draws / 7.0);
  EXPECT_LT(chi2, 22.46);  // chi-square, 6 dof, p = 0.001
}

TEST(Rng, SignIsBalanced) {
  Rng rng(9);
  int sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const int s = rng.Sign();
    ASSERT_TRUE(s == 1 || s == -1);
    sum += s;
  }
  EXPECT_LT(std::abs(sum), 1500);
}

}  // namespace
}  // namespace chamferdb
