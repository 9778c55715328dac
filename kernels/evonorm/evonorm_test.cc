#include "kernels/evonorm/evonorm.h"

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"

namespace chamferdb::evonorm {
namespace {

struct Data {
  Shape s;
  std::vector<float> x, gamma, beta, v, rv;
};

Data Make(Shape s, uint64_t seed) {
  Data d{s, {}, {}, {}, {}, {}};
  Rng rng(seed);
  d.x.resize(s.n * s.c * s.h * s.w);
  for (auto& a : d.x) a = static_cast<float>(2.0 * rng.Normal() + 0.5);
  for (size_t c = 0; c < s.c; ++c) {
    d.gamma.push_back(static_cast<float>(1.0 + 0.3 * rng.Normal()));
    d.beta.push_back(static_cast<float>(0.2 * rng.Normal()));
    d.v.push_back(static_cast<float>(1.0 + 0.5 * rng.Normal()));
    d.rv.push_back(static_cast<float>(0.5 + rng.Uniform()));
  }
  return d;
}

void ExpectClose(const std::vector<float>& a, const std::vector<float>& b, double rel) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], rel * std::max(1.0f, std::fabs(b[i]))) << i;
}

TEST(EvoNorm, FastMatchesLongDoubleReferenceInEveryConfiguration) {
  for (Shape s : {Shape{3, 6, 5, 7}, Shape{1, 4, 1, 3}, Shape{2, 64, 3, 3}}) {
    for (Variant var : {Variant::kB0, Variant::kS0})
      for (Convention conv : {Convention::kTfOfficial, Convention::kTimm})
        for (Mode mode : {Mode::kTrain, Mode::kEval})
          for (bool nonlin : {true, false}) {
            Data d = Make(s, 1);
            Params p;
            p.variant = var;
            p.convention = conv;
            p.mode = mode;
            p.nonlinearity = nonlin;
            if (var == Variant::kS0 && conv == Convention::kTimm) p.groups = s.c % 2 == 0 ? 2 : 1;
            ASSERT_TRUE(ResolveParams(s, &p).ok());
            std::vector<float> y(d.x.size()), yr(d.x.size());
            auto rv = d.rv, rvr = d.rv;
            EvoNorm(s, p, d.x.data(), d.gamma.data(), d.beta.data(), d.v.data(), rv.data(), y.data(), 2);
            EvoNormReference(s, p, d.x.data(), d.gamma.data(), d.beta.data(), d.v.data(), rvr.data(), yr.data());
            ExpectClose(y, yr, 1e-6);
            ExpectClose(rv, rvr, 1e-6);
          }
  }
}

TEST(EvoNorm, ConventionDefaults) {
  Shape s{2, 48, 4, 4};
  Params tf, timm_b0, timm_s0;
  tf.variant = Variant::kS0;
  timm_b0.convention = Convention::kTimm;
  timm_s0.convention = Convention::kTimm;
  timm_s0.variant = Variant::kS0;
  ASSERT_TRUE(ResolveParams(s, &tf).ok());
  EXPECT_EQ(tf.eps, 1e-5);
  EXPECT_EQ(tf.groups, 24);  // 32 decremented until it divides 48
  ASSERT_TRUE(ResolveParams(s, &timm_b0).ok());
  EXPECT_EQ(timm_b0.eps, 1e-3);
  EXPECT_FALSE(ResolveParams(s, &timm_s0).ok());  // 32 does not divide 48
  timm_s0.groups = 16;
  ASSERT_TRUE(ResolveParams(s, &timm_s0).ok());
  EXPECT_EQ(timm_s0.eps, 1e-5);
}

TEST(EvoNorm, S0IsBatchIndependentAndB0EvalToo) {
  Data d = Make({4, 8, 5, 5}, 2);
  const size_t per = 8 * 25;
  for (Variant var : {Variant::kS0, Variant::kB0}) {
    Params p;
    p.variant = var;
    p.mode = Mode::kEval;
    ASSERT_TRUE(ResolveParams(d.s, &p).ok());
    std::vector<float> all(d.x.size()), one(per);
    auto rv = d.rv;
    EvoNorm(d.s, p, d.x.data(), d.gamma.data(), d.beta.data(), d.v.data(), rv.data(), all.data());
    EvoNorm({1, 8, 5, 5}, p, d.x.data() + 2 * per, d.gamma.data(), d.beta.data(), d.v.data(), rv.data(), one.data());
    for (size_t t = 0; t < per; ++t) EXPECT_EQ(one[t], all[2 * per + t]);
  }
}

TEST(EvoNorm, ZeroVGivesHalfXOverGroupStdAndZeroGammaGivesBeta) {
  Data d = Make({2, 4, 3, 3}, 3);
  std::fill(d.v.begin(), d.v.end(), 0.0f);
  Params p;
  p.variant = Variant::kS0;
  p.groups = 2;
  ASSERT_TRUE(ResolveParams(d.s, &p).ok());
  std::vector<float> y(d.x.size());
  EvoNorm(d.s, p, d.x.data(), d.gamma.data(), d.beta.data(), d.v.data(), nullptr, y.data());
  for (size_t n = 0; n < 2; ++n)
    for (size_t g = 0; g < 2; ++g) {
      const float* xb = d.x.data() + (n * 4 + 2 * g) * 9;
      double m = 0, q = 0;
      for (int t = 0; t < 18; ++t) m += xb[t];
      m /= 18;
      for (int t = 0; t < 18; ++t) q += (xb[t] - m) * (xb[t] - m);
      const double sd = std::sqrt(q / 18 + 1e-5);
      for (int t = 0; t < 18; ++t) {
        const size_t c = 2 * g + t / 9;
        EXPECT_NEAR(y[(n * 4 + 2 * g) * 9 + t], 0.5 * xb[t] / sd * d.gamma[c] + d.beta[c], 1e-5);
      }
    }
  std::fill(d.gamma.begin(), d.gamma.end(), 0.0f);
  for (Variant var : {Variant::kS0, Variant::kB0}) {
    p.variant = var;
    auto rv = d.rv;
    EvoNorm(d.s, p, d.x.data(), d.gamma.data(), d.beta.data(), d.v.data(), rv.data(), y.data());
    for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], d.beta[(i / 9) % 4]);
  }
}

TEST(EvoNorm, ConstantPlanesStayFinite) {
  Shape s{2, 2, 4, 4};
  std::vector<float> x(64, 3.0f), g(2, 1.0f), b(2, 0.0f), v(2, 1.0f), rv(2, 1.0f), y(64);
  for (Variant var : {Variant::kB0, Variant::kS0}) {
    Params p;
    p.variant = var;
    ASSERT_TRUE(ResolveParams(s, &p).ok());
    EvoNorm(s, p, x.data(), g.data(), b.data(), v.data(), rv.data(), y.data());
    for (float a : y) EXPECT_TRUE(std::isfinite(a));
  }
}

TEST(EvoNorm, RunningVarianceFollowsEachConventionsClosedForm) {
  Data d = Make({2, 3, 4, 5}, 4);
  for (Convention conv : {Convention::kTfOfficial, Convention::kTimm}) {
    Params p;
    p.convention = conv;
    p.momentum = 0.1;
    ASSERT_TRUE(ResolveParams(d.s, &p).ok());
    auto rv = d.rv;
    std::vector<float> y(d.x.size()), bv(3);
    const int k = 5;
    for (int step = 0; step < k; ++step) {
      EvoNorm(d.s, p, d.x.data(), d.gamma.data(), d.beta.data(), d.v.data(), rv.data(), y.data(), 1, bv.data());
    }
    const double n = 2 * 4 * 5, decay = std::pow(0.9, k);
    for (size_t c = 0; c < 3; ++c) {
      const double target = conv == Convention::kTimm ? bv[c] * n / (n - 1) : bv[c];
      EXPECT_NEAR(rv[c], decay * d.rv[c] + (1 - decay) * target, 1e-5);
    }
  }
}

TEST(EvoNorm, BitIdenticalForAnyThreadCount) {
  Data d = Make({3, 8, 9, 11}, 5);
  for (Variant var : {Variant::kB0, Variant::kS0}) {
    Params p;
    p.variant = var;
    ASSERT_TRUE(ResolveParams(d.s, &p).ok());
    auto rv1 = d.rv, rv2 = d.rv;
    std::vector<float> y1(d.x.size()), y2(d.x.size());
    EvoNorm(d.s, p, d.x.data(), d.gamma.data(), d.beta.data(), d.v.data(), rv1.data(), y1.data(), 1);
    EvoNorm(d.s, p, d.x.data(), d.gamma.data(), d.beta.data(), d.v.data(), rv2.data(), y2.data(), 2);
    EXPECT_EQ(y1, y2);
    EXPECT_EQ(rv1, rv2);
  }
}

}  // namespace
}  // namespace chamferdb::evonorm
