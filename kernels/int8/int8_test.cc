#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "common/rng.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/int8/gemm.h"
#include "kernels/int8/maxsim.h"
#include "kernels/int8/mixed_linear.h"
#include "kernels/int8/quantize.h"

namespace chamferdb::int8 {
namespace {

std::vector<float> Gaussian(size_t n, uint64_t seed, double sigma = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(sigma * rng.Normal());
  return v;
}

std::vector<int8_t> RandomCodes(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(rng.UniformInt(256)) - 128);
  return v;
}

// Independent reference: int64 triple loop.
std::vector<int64_t> NaiveGemm64(const std::vector<int8_t>& a, const std::vector<int8_t>& b,
                                 size_t m, size_t n, size_t k) {
  std::vector<int64_t> c(m * n, 0);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j)
      for (size_t l = 0; l < k; ++l) c[i * n + j] += int64_t{a[i * k + l]} * b[j * k + l];
  return c;
}

TEST(Quantize, RoundsHalfToEvenAndStaysInSymmetricRange) {
  // With c = 127 the code is round(x) exactly, so ties are visible.
  const std::vector<float> x = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 127.0f, -127.0f, 3.49f};
  std::vector<int8_t> codes(x.size());
  QuantizeRowWithScale(x.data(), x.size(), 127.0f, codes.data());
  EXPECT_THAT(codes, ::testing::ElementsAre(0, 2, 2, 0, -2, -2, 127, -127, 3));
}

// The row quantizer (SIMD path where the CPU has one) against QuantizeValue's std::nearbyint
// formula, value by value: lengths around the 8/16-lane blocks, exact halves (x = k + 0.5
// with c = 127), values at ±c, and a scale below the absmax (the clamp path).
TEST(Quantize, RowCodesEqualQuantizeValueOnEveryLengthTiesAndClamp) {
  Rng rng(77);
  for (size_t d : {1, 7, 8, 9, 15, 16, 17, 31, 33, 128, 2048, 2051}) {
    for (int rep = 0; rep < 4; ++rep) {
      std::vector<float> x(d);
      for (float& v : x) v = static_cast<float>(rng.Normal());
      if (rep == 1) {  // ties: with c = 127 every code is x rounded half to even
        for (float& v : x) v = static_cast<float>(static_cast<int>(rng.UniformInt(254)) - 127) + 0.5f;
        x[0] = 127.0f;
      }
      if (rep == 2) x[rng.UniformInt(d)] = -std::fabs(x[0]) - 3.0f;  // a negative absmax
      std::vector<int8_t> codes(d), fixed(d);
      const float c = QuantizeRow(x.data(), d, codes.data());
      float absmax = 0;
      for (float v : x) absmax = std::max(absmax, std::fabs(v));
      ASSERT_EQ(c, absmax) << "d=" << d;
      for (size_t j = 0; j < d; ++j) ASSERT_EQ(codes[j], QuantizeValue(x[j], c)) << "d=" << d << " j=" << j;
      const float small = 0.3f * absmax;  // rep 3: most values clamp to ±127
      QuantizeRowWithScale(x.data(), d, small, fixed.data());
      for (size_t j = 0; j < d; ++j) ASSERT_EQ(fixed[j], QuantizeValue(x[j], small)) << "d=" << d << " j=" << j;
    }
  }
}

TEST(Quantize, DequantizationErrorWithinHalfStep) {
  const size_t n = 17, d = 127;
  auto x = Gaussian(n * d, 1);
  std::vector<int8_t> codes(n * d);
  std::vector<float> scales(n), back(n * d);
  QuantizeRows(x.data(), n, d, codes.data(), scales.data());
  DequantizeRows(codes.data(), scales.data(), n, d, back.data());
  for (size_t i = 0; i < n; ++i) {
    float absmax = 0;
    for (size_t j = 0; j < d; ++j) absmax = std::max(absmax, std::fabs(x[i * d + j]));
    EXPECT_EQ(scales[i], absmax);
    for (size_t j = 0; j < d; ++j) {
      EXPECT_GE(codes[i * d + j], -127);
      EXPECT_LE(std::fabs(x[i * d + j] - back[i * d + j]), absmax / 254.0 * (1 + 1e-6));
      // Per-element nearbyint reproduces the code exactly.
      EXPECT_EQ(codes[i * d + j],
                static_cast<int8_t>(std::nearbyint(127.0 * x[i * d + j] / absmax)));
    }
  }
}

TEST(Quantize, ZeroRowGivesZeroCodesAndScale) {
  std::vector<float> x(5, 0.0f);
  std::vector<int8_t> codes(5, 9);
  float scale = -1;
  QuantizeRows(x.data(), 1, 5, codes.data(), &scale);
  EXPECT_EQ(scale, 0.0f);
  EXPECT_THAT(codes, ::testing::Each(0));
}

class GemmPaths : public ::testing::TestWithParam<GemmPath> {};

TEST_P(GemmPaths, BitExactAgainstInt64TripleLoopOnAwkwardSizes) {
  if (!GemmPathAvailable(GetParam())) GTEST_SKIP() << "path not available on this CPU";
  const size_t sizes[] = {1, 3, 15, 17, 33, 127};
  uint64_t seed = 10;
  for (size_t m : sizes) {
    for (size_t n : sizes) {
      for (size_t k : {size_t{1}, size_t{3}, size_t{17}, size_t{130}}) {
        auto a = RandomCodes(m * k, ++seed);
        auto b = RandomCodes(n * k, ++seed);
        std::vector<int32_t> c(m * n, -1);
        Int8GemmNT(a.data(), b.data(), c.data(), m, n, k, GetParam(), 2);
        auto ref = NaiveGemm64(a, b, m, n, k);
        for (size_t i = 0; i < m * n; ++i) {
          ASSERT_EQ(c[i], ref[i]) << "m=" << m << " n=" << n << " k=" << k << " at " << i;
        }
      }
    }
  }
}

TEST_P(GemmPaths, ExtremeCodesLongKNoOverflow) {
  if (!GemmPathAvailable(GetParam())) GTEST_SKIP();
  const size_t m = 3, n = 35, k = 4099;
  std::vector<int8_t> a(m * k, -128), b(n * k, -128);
  b[5] = 127;
  std::vector<int32_t> c(m * n);
  Int8GemmNT(a.data(), b.data(), c.data(), m, n, k, GetParam(), 1);
  auto ref = NaiveGemm64(a, b, m, n, k);
  for (size_t i = 0; i < m * n; ++i) ASSERT_EQ(c[i], ref[i]);
}

INSTANTIATE_TEST_SUITE_P(AllPaths, GemmPaths,
                         ::testing::Values(GemmPath::kScalar, GemmPath::kAvx2,
                                           GemmPath::kAvx512Vnni, GemmPath::kAuto),
                         [](const auto& info) { return std::string(GemmPathName(info.param)); });

// ---------------------------------------------------------------- Int8MixedLinear
struct LinearCase {
  size_t s, h, o;
  std::vector<float> x, w, bias;
};

LinearCase MakeLinear(size_t s, size_t h, size_t o, uint64_t seed, std::vector<size_t> outliers) {
  LinearCase c{s, h, o, Gaussian(s * h, seed), Gaussian(o * h, seed + 1, 0.02),
               Gaussian(o, seed + 2, 0.1)};
  Rng rng(seed + 3);
  for (size_t j : outliers)
    for (size_t i = 0; i < s; ++i) c.x[i * h + j] *= 15.0f;
  return c;
}

std::vector<double> DoubleLinear(const LinearCase& c) {
  std::vector<double> y(c.s * c.o);
  for (size_t i = 0; i < c.s; ++i)
    for (size_t o = 0; o < c.o; ++o) {
      double v = c.bias[o];
      for (size_t j = 0; j < c.h; ++j) v += double{c.x[i * c.h + j]} * c.w[o * c.h + j];
      y[i * c.o + o] = v;
    }
  return y;
}

void ExpectWithinAnalyticBound(const LinearCase& c, const MixedLinearOptions& opt) {
  auto wq = QuantizeWeight(c.w.data(), c.o, c.h);
  auto r = Int8MixedLinear(c.x.data(), c.s, c.h, wq, c.w.data(), c.bias.data(), opt);
  auto ref = DoubleLinear(c);
  std::set<int32_t> outl(r.outlier_cols.begin(), r.outlier_cols.end());
  int violations = 0;
  for (size_t i = 0; i < c.s; ++i)
    for (size_t o = 0; o < c.o; ++o) {
      double sx = 0, sw = 0, sxo = 0;
      for (size_t j = 0; j < c.h; ++j) {
        const double what = static_cast<double>(wq.codes[o * c.h + j]) * wq.scales[o] / 127.0;
        if (outl.count(static_cast<int32_t>(j))) {
          sxo += std::fabs(c.x[i * c.h + j]);
        } else {
          sx += std::fabs(c.x[i * c.h + j]);
          sw += std::fabs(what);
        }
      }
      double bound = (wq.scales[o] * sx + r.cx[i] * sw) / 254.0;
      if (opt.outlier_weight == OutlierWeight::kDequant) bound += wq.scales[o] * sxo / 254.0;
      const double slack = 1e-6 * (std::fabs(ref[i * c.o + o]) + 1e-3);
      if (std::fabs(r.y[i * c.o + o] - ref[i * c.o + o]) > bound + slack) ++violations;
    }
  EXPECT_EQ(violations, 0);
}

TEST(Int8MixedLinear, AnalyticErrorBoundHoldsInEveryModeAndPath) {
  auto c = MakeLinear(33, 130, 17, 100, {7, 90});
  for (StatsMode sm : {StatsMode::kPaper, StatsMode::kBnb})
    for (OutlierWeight ow : {OutlierWeight::kFull, OutlierWeight::kDequant})
      for (GemmPath p : {GemmPath::kScalar, GemmPath::kAvx2, GemmPath::kAvx512Vnni}) {
        if (!GemmPathAvailable(p)) continue;
        MixedLinearOptions opt;
        opt.stats = sm;
        opt.outlier_weight = ow;
        opt.path = p;
        ExpectWithinAnalyticBound(c, opt);
      }
}

TEST(Int8MixedLinear, FindsPlantedOutlierColumnsAndReportsFraction) {
  auto c = MakeLinear(64, 512, 96, 200, {3, 400});
  auto wq = QuantizeWeight(c.w.data(), c.o, c.h);
  MixedLinearOptions opt;
  opt.threshold = 20.0f;  // plain N(0,1) entries never reach 20; ×15 columns do
  auto r = Int8MixedLinear(c.x.data(), c.s, c.h, wq, c.w.data(), c.bias.data(), opt);
  EXPECT_THAT(r.outlier_cols, ::testing::ElementsAre(3, 400));
  EXPECT_DOUBLE_EQ(r.int8_fraction, 1.0 - 2.0 / 512.0);
  // Decomposition beats plain vector-wise quantization on planted outliers.
  opt.threshold = 0.0f;
  auto plain = Int8MixedLinear(c.x.data(), c.s, c.h, wq, c.w.data(), c.bias.data(), opt);
  EXPECT_TRUE(plain.outlier_cols.empty());
  auto ref = DoubleLinear(c);
  double e_dec = 0, e_plain = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    e_dec += std::fabs(r.y[i] - ref[i]);
    e_plain += std::fabs(plain.y[i] - ref[i]);
  }
  EXPECT_LT(e_dec * 2, e_plain);
}

TEST(Int8MixedLinear, InfiniteThresholdHasNoOutliers) {
  auto c = MakeLinear(5, 40, 3, 300, {1});
  auto wq = QuantizeWeight(c.w.data(), c.o, c.h);
  MixedLinearOptions opt;
  opt.threshold = std::numeric_limits<float>::infinity();
  auto r = Int8MixedLinear(c.x.data(), c.s, c.h, wq, c.w.data(), nullptr, opt);
  EXPECT_TRUE(r.outlier_cols.empty());
  EXPECT_EQ(r.int8_fraction, 1.0);
}

TEST(Int8MixedLinear, AllColumnsOutliersGivesFloatGemm) {
  auto c = MakeLinear(7, 19, 5, 400, {});
  auto wq = QuantizeWeight(c.w.data(), c.o, c.h);
  MixedLinearOptions opt;
  opt.threshold = 1e-30f;
  auto r = Int8MixedLinear(c.x.data(), c.s, c.h, wq, c.w.data(), c.bias.data(), opt);
  EXPECT_EQ(r.outlier_cols.size(), c.h);
  EXPECT_THAT(r.cx, ::testing::Each(0.0f));
  EXPECT_THAT(r.c, ::testing::Each(0));
  auto ref = DoubleLinear(c);
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(r.y[i], ref[i], 1e-6 * (1 + std::fabs(ref[i])));
}

TEST(Int8MixedLinear, GridValuedInputsAreExact) {
  // Entries that are exact multiples of absmax/127 quantize without error.
  const size_t s = 4, h = 9, o = 3;
  Rng rng(7);
  std::vector<float> x(s * h), w(o * h);
  for (size_t i = 0; i < s; ++i) {
    for (size_t j = 0; j < h; ++j) x[i * h + j] = static_cast<float>(static_cast<int>(rng.UniformInt(255)) - 127) / 64.0f;
    x[i * h] = 127.0f / 64.0f;  // absmax = 127/64 so the grid step is 1/64
  }
  for (size_t q = 0; q < o; ++q) {
    for (size_t j = 0; j < h; ++j) w[q * h + j] = static_cast<float>(static_cast<int>(rng.UniformInt(255)) - 127) / 128.0f;
    w[q * h + 1] = -127.0f / 128.0f;
  }
  LinearCase c{s, h, o, x, w, std::vector<float>(o, 0.0f)};
  auto wq = QuantizeWeight(w.data(), o, h);
  MixedLinearOptions opt;
  opt.threshold = 0;
  auto r = Int8MixedLinear(x.data(), s, h, wq, w.data(), nullptr, opt);
  auto ref = DoubleLinear(c);
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_FLOAT_EQ(r.y[i], static_cast<float>(ref[i]));
}

TEST(Int8MixedLinear, ScalingARowScalesItsOutputAndKeepsCodes) {
  auto c = MakeLinear(6, 50, 4, 500, {});
  auto wq = QuantizeWeight(c.w.data(), c.o, c.h);
  MixedLinearOptions opt;
  opt.threshold = 100.0f;
  auto r1 = Int8MixedLinear(c.x.data(), c.s, c.h, wq, nullptr, nullptr, opt);
  for (size_t j = 0; j < c.h; ++j) c.x[2 * c.h + j] *= 4.0f;  // power of two: exact
  auto r2 = Int8MixedLinear(c.x.data(), c.s, c.h, wq, nullptr, nullptr, opt);
  for (size_t o = 0; o < c.o; ++o) {
    EXPECT_EQ(r1.c[2 * c.o + o], r2.c[2 * c.o + o]);
    EXPECT_FLOAT_EQ(r2.y[2 * c.o + o], 4.0f * r1.y[2 * c.o + o]);
  }
}

TEST(Int8MixedLinear, NaiveAndFastGemmGiveIdenticalBits) {
  auto c = MakeLinear(31, 77, 45, 600, {5});
  auto wq = QuantizeWeight(c.w.data(), c.o, c.h);
  MixedLinearOptions fast, naive;
  naive.naive_gemm = true;
  fast.threads = 2;
  auto a = Int8MixedLinear(c.x.data(), c.s, c.h, wq, c.w.data(), c.bias.data(), fast);
  auto b = Int8MixedLinear(c.x.data(), c.s, c.h, wq, c.w.data(), c.bias.data(), naive);
  EXPECT_EQ(a.c, b.c);
  EXPECT_EQ(a.y, b.y);
}

// ---------------------------------------------------------------- Int8MaxSim
struct Corpus {
  std::vector<int64_t> offsets;
  std::vector<float> tokens;  // original float tokens
  std::vector<int8_t> codes;
  std::vector<float> scales;
  size_t dim;
  TokenCorpusView view() const {
    return {offsets.data(), offsets.size() - 1, codes.data(), scales.data(), dim};
  }
};

Corpus MakeCorpus(size_t docs, size_t max_tokens, size_t dim, uint64_t seed) {
  Corpus c;
  c.dim = dim;
  Rng rng(seed);
  c.offsets.push_back(0);
  for (size_t d = 0; d < docs; ++d) c.offsets.push_back(c.offsets.back() + 1 + rng.UniformInt(max_tokens));
  const size_t t = c.offsets.back();
  c.tokens.resize(t * dim);
  for (size_t i = 0; i < t; ++i) {
    double n2 = 0;
    for (size_t l = 0; l < dim; ++l) {
      c.tokens[i * dim + l] = static_cast<float>(rng.Normal());
      n2 += double{c.tokens[i * dim + l]} * c.tokens[i * dim + l];
    }
    for (size_t l = 0; l < dim; ++l) c.tokens[i * dim + l] /= static_cast<float>(std::sqrt(n2));
  }
  c.codes.resize(t * dim);
  c.scales.resize(t);
  QuantizeRows(c.tokens.data(), t, dim, c.codes.data(), c.scales.data());
  return c;
}

std::vector<double> ExactMaxSim(const std::vector<float>& q, size_t nq, const Corpus& c) {
  std::vector<double> s(c.offsets.size() - 1, 0.0);
  for (size_t d = 0; d + 1 < c.offsets.size(); ++d) {
    for (size_t i = 0; i < nq; ++i) {
      double best = -1e300;
      for (int64_t j = c.offsets[d]; j < c.offsets[d + 1]; ++j) {
        double v = 0;
        for (size_t l = 0; l < c.dim; ++l) v += double{q[i * c.dim + l]} * c.tokens[j * c.dim + l];
        best = std::max(best, v);
      }
      s[d] += best;
    }
  }
  return s;
}

TEST(Int8MaxSim, BoundNeverViolatedSymmetricAsymmetricAndCodeOnly) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    auto corpus = MakeCorpus(70, 9, 33, seed);
    const size_t nq = 5;
    auto q = Gaussian(nq * 33, seed + 100, 0.2);
    auto exact = ExactMaxSim(q, nq, corpus);
    std::vector<int8_t> qc(nq * 33);
    std::vector<float> qs(nq);
    QuantizeRows(q.data(), nq, 33, qc.data(), qs.data());
    MaxSimQuery sym{nq, q.data(), true, nullptr, nullptr};
    MaxSimQuery asym{nq, q.data(), false, nullptr, nullptr};
    MaxSimQuery codes{nq, nullptr, true, qc.data(), qs.data()};
    for (const MaxSimQuery& query : {sym, asym, codes}) {
      MaxSimOptions opt;
      opt.k = 5;
      opt.threads = 2;
      auto r = Int8MaxSim(query, corpus.view(), opt);
      ASSERT_EQ(r.all_scores.size(), exact.size());
      for (size_t d = 0; d < exact.size(); ++d) {
        EXPECT_LE(std::fabs(r.all_scores[d] - exact[d]), r.all_bounds[d]) << "doc " << d;
      }
    }
  }
}

TEST(Int8MaxSim, FastMatchesNaiveLoopsBitForBitAndTopKIsOrdered) {
  auto corpus = MakeCorpus(200, 17, 64, 9);
  auto q = Gaussian(7 * 64, 10);
  MaxSimQuery query{7, q.data(), true, nullptr, nullptr};
  MaxSimOptions fast, naive;
  fast.k = naive.k = 10;
  fast.threads = 2;
  naive.naive = true;
  auto a = Int8MaxSim(query, corpus.view(), fast);
  auto b = Int8MaxSim(query, corpus.view(), naive);
  EXPECT_EQ(a.all_scores, b.all_scores);
  EXPECT_EQ(a.doc_ids, b.doc_ids);
  for (size_t i = 1; i < a.scores.size(); ++i) EXPECT_GE(a.scores[i - 1], a.scores[i]);
}

TEST(Int8MaxSim, RecallAtTenAgainstExactScoring) {
  auto corpus = MakeCorpus(1000, 16, 128, 11);
  double hits = 0;
  const int queries = 10;
  for (int t = 0; t < queries; ++t) {
    auto q = Gaussian(8 * 128, 1000 + t);
    auto exact = ExactMaxSim(q, 8, corpus);
    std::vector<float> ef(exact.begin(), exact.end());
    auto truth = TopKIndices(ef, 10);
    MaxSimOptions opt;
    opt.k = 10;
    auto r = Int8MaxSim({8, q.data(), true, nullptr, nullptr}, corpus.view(), opt);
    std::set<int64_t> ts(truth.begin(), truth.end());
    for (int64_t id : r.doc_ids) hits += ts.count(id);
  }
  const double recall = hits / (10.0 * queries);
  RecordProperty("recall_at_10", std::to_string(recall));
  EXPECT_GE(recall, 0.95);
}

TEST(TopKIndices, TiesGoToTheSmallerIndex) {
  EXPECT_THAT(TopKIndices({1, 3, 3, 2, 3}, 3), ::testing::ElementsAre(1, 2, 4));
}

}  // namespace
}  // namespace chamferdb::int8
