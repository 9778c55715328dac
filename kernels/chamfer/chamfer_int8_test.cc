#include "kernels/chamfer/chamfer_int8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/cpu_features.h"
#include "common/rng.h"
#include "kernels/chamfer/chamfer.h"
#include "kernels/chamfer/chamfer_int8_paths.h"
#include "kernels/int8/quantize.h"

namespace chamferdb {
namespace {

std::vector<float> RandomTokens(Rng& rng, size_t n, size_t dim, bool unit) {
  std::vector<float> v(n * dim);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < dim; ++j) {
      v[i * dim + j] = static_cast<float>(rng.Normal());
      s += double(v[i * dim + j]) * v[i * dim + j];
    }
    if (unit) {
      for (size_t j = 0; j < dim; ++j) v[i * dim + j] = static_cast<float>(v[i * dim + j] / std::sqrt(s));
    }
  }
  return v;
}

struct QuantizedDoc {
  std::vector<int8_t> codes;
  std::vector<float> scales;
  std::vector<uint8_t> packed;
  std::vector<float> dequantized;
};

QuantizedDoc Quantize(const std::vector<float>& p, size_t n, size_t dim) {
  QuantizedDoc d;
  d.codes.resize(n * dim);
  d.scales.resize(n);
  int8::QuantizeRows(p.data(), n, dim, d.codes.data(), d.scales.data());
  d.packed.resize(PackedI8Bytes(n, dim));
  PackTokensI8(d.codes.data(), d.scales.data(), n, dim, d.packed.data());
  d.dequantized.resize(n * dim);
  int8::DequantizeRows(d.codes.data(), d.scales.data(), n, dim, d.dequantized.data());
  return d;
}

const size_t kSizes[] = {1, 3, 15, 16, 17, 127};

TEST(ChamferI8, DotsEqualTheIntegerProductsOfTheCodesOnAwkwardSizes) {
  Rng rng(21);
  for (size_t nq : kSizes) {
    for (size_t np : kSizes) {
      for (size_t dim : kSizes) {
        auto q = RandomTokens(rng, nq, dim, false);
        auto p = RandomTokens(rng, np, dim, false);
        const QuantizedDoc d = Quantize(p, np, dim);
        const QueryI8 qq = QuantizeQueryI8(q.data(), nq, dim);
        std::vector<int32_t> got(nq * np);
        ChamferPackedI8Dots(qq, d.packed.data(), np, got.data());
        for (size_t i = 0; i < nq; ++i) {
          for (size_t t = 0; t < np; ++t) {
            int64_t want = 0;  // independent: the row-major codes, not the packed layout
            for (size_t j = 0; j < dim; ++j) want += int64_t{qq.codes[i * qq.dim4 + j]} * d.codes[t * dim + j];
            ASSERT_EQ(got[i * np + t], want) << "nq=" << nq << " np=" << np << " dim=" << dim << " i=" << i << " t=" << t;
          }
        }
      }
    }
  }
}

TEST(ChamferI8, ExtremeCodesAccumulateExactlyInInt32) {
  // Every code ±127: |⟨a, b⟩| = 127²·dim, the largest an int8 product can reach.
  const size_t dim = 1027, nq = 5, np = 19;
  std::vector<float> q(nq * dim, 1.0f), p(np * dim, -2.0f);
  const QuantizedDoc d = Quantize(p, np, dim);
  const QueryI8 qq = QuantizeQueryI8(q.data(), nq, dim);
  std::vector<int32_t> got(nq * np);
  ChamferPackedI8Dots(qq, d.packed.data(), np, got.data());
  for (int32_t v : got) ASSERT_EQ(v, -127 * 127 * int32_t{dim});
  // Each ŝ = 1 · 2 · (−127²·dim) / 127² = −2·dim exactly representable.
  EXPECT_EQ(ChamferPackedI8(qq, d.packed.data(), np), -2.0f * dim * nq);
}

TEST(ChamferI8, ScoreIsTheChamferScoreOfTheDequantizedVectors) {
  Rng rng(22);
  for (size_t nq : kSizes) {
    for (size_t np : kSizes) {
      for (size_t dim : {size_t{3}, size_t{17}, size_t{128}}) {
        auto q = RandomTokens(rng, nq, dim, true);
        auto p = RandomTokens(rng, np, dim, true);
        const QuantizedDoc d = Quantize(p, np, dim);
        const QueryI8 qq = QuantizeQueryI8(q.data(), nq, dim);
        std::vector<float> q_hat(nq * dim);
        for (size_t i = 0; i < nq; ++i) {
          for (size_t j = 0; j < dim; ++j) {
            q_hat[i * dim + j] = static_cast<float>(qq.codes[i * qq.dim4 + j]) * (qq.scales[i] / 127.0f);
          }
        }
        const double want = ChamferReference(q_hat.data(), nq, d.dequantized.data(), np, dim);
        const float got = ChamferPackedI8(qq, d.packed.data(), np);
        // Only float32 rounding separates them: the dequantized values (one rounding each),
        // the per-pair scaling and the nq-term sum; scores of unit tokens are ≤ ~1 each.
        ASSERT_NEAR(got, want, 1e-6 * (nq + dim) * 4) << "nq=" << nq << " np=" << np << " dim=" << dim;
      }
    }
  }
}

TEST(ChamferI8, ErrorAgainstTheFloatScoreIsWithinTheAnalyticBound) {
  Rng rng(23);
  for (size_t nq : {size_t{1}, size_t{8}, size_t{32}}) {
    for (size_t np : {size_t{1}, size_t{17}, size_t{32}, size_t{128}}) {
      for (size_t dim : {size_t{16}, size_t{128}}) {
        for (bool unit : {true, false}) {
          auto q = RandomTokens(rng, nq, dim, unit);
          auto p = RandomTokens(rng, np, dim, unit);
          const QuantizedDoc d = Quantize(p, np, dim);
          const QueryI8 qq = QuantizeQueryI8(q.data(), nq, dim);
          const double exact = ChamferReference(q.data(), nq, p.data(), np, dim);
          const float got = ChamferPackedI8(qq, d.packed.data(), np);
          const double bound = ChamferI8Bound(q.data(), qq, d.packed.data(), np);
          ASSERT_LE(std::fabs(got - exact), bound) << "nq=" << nq << " np=" << np << " dim=" << dim;
          if (unit && dim == 128) {
            // Not vacuous: for unit tokens in 128 dims the bound is a few percent of a token
            // score (absmax ≈ 0.3, ‖q‖₁ ≈ 9: ε ≈ 0.3·9/254 + 0.3·9/254 ≈ 0.02 per token).
            EXPECT_LT(bound, 0.05 * nq);
          }
        }
      }
    }
  }
}

TEST(ChamferI8, EveryPathAgreesBitForBit) {
  Rng rng(24);
  const CpuFeatures& f = GetCpuFeatures();
  for (size_t nq : kSizes) {
    for (size_t np : kSizes) {
      const size_t dim = 127;
      auto q = RandomTokens(rng, nq, dim, true);
      auto p = RandomTokens(rng, np, dim, true);
      const QuantizedDoc d = Quantize(p, np, dim);
      const QueryI8 qq = QuantizeQueryI8(q.data(), nq, dim);
      const size_t n_pad = PackedColumns(np);
      const float base = chamfer_i8_baseline::ScoreI8(qq, d.packed.data(), n_pad);
      std::vector<int32_t> base_dots(nq * n_pad), dots(nq * n_pad);
      chamfer_i8_baseline::DotsI8(qq, d.packed.data(), n_pad, base_dots.data());
      if (f.avx2_fma) {
        EXPECT_EQ(chamfer_i8_avx2::ScoreI8(qq, d.packed.data(), n_pad), base);
        chamfer_i8_avx2::DotsI8(qq, d.packed.data(), n_pad, dots.data());
        EXPECT_EQ(dots, base_dots);
      }
      if (f.avx512_vnni) {
        EXPECT_EQ(chamfer_i8_vnni::ScoreI8(qq, d.packed.data(), n_pad), base);
        chamfer_i8_vnni::DotsI8(qq, d.packed.data(), n_pad, dots.data());
        EXPECT_EQ(dots, base_dots);
      }
      EXPECT_EQ(ChamferPackedI8(qq, d.packed.data(), np), base);
    }
  }
}

TEST(ChamferI8, PaddingColumnsDoNotChangeTheMaximum) {
  // A document whose only token scores lowest must still win nothing from padding: with
  // n = 1 every padding column repeats token 0, so the score equals the single dot.
  Rng rng(25);
  const size_t dim = 20;
  auto q = RandomTokens(rng, 3, dim, true);
  auto p = RandomTokens(rng, 1, dim, true);
  for (float& v : p) v = -std::fabs(v);
  for (float& v : q) v = std::fabs(v);  // every dot negative: a zero padding column would win
  const QuantizedDoc d = Quantize(p, 1, dim);
  const QueryI8 qq = QuantizeQueryI8(q.data(), 3, dim);
  EXPECT_LT(ChamferPackedI8(qq, d.packed.data(), 1), -0.1f);
}

}  // namespace
}  // namespace chamferdb
