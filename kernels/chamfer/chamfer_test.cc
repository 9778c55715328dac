#include "kernels/chamfer/chamfer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/cpu_features.h"
#include "common/half.h"
#include "common/rng.h"
#include "kernels/chamfer/chamfer_paths.h"
#include "kernels/chamfer/dot.h"

namespace chamferdb {
namespace {

std::vector<float> RandomTokens(Rng& rng, size_t n, size_t dim) {
  std::vector<float> v(n * dim);
  for (float& x : v) x = static_cast<float>(rng.Normal());
  return v;
}

// Bound on float32 summation error against the double reference: every query token's dot
// product has dim terms, the total nq terms.
double Tolerance(const std::vector<float>& q, const std::vector<float>& p, size_t nq,
                 size_t dim) {
  double mq = 0, mp = 0;
  for (float x : q) mq = std::max(mq, double(std::fabs(x)));
  for (float x : p) mp = std::max(mp, double(std::fabs(x)));
  return 4.0 * (dim + nq) * 1.2e-7 * mq * mp * dim * nq + 1e-6;
}

TEST(ChamferPacked, MatchesReferenceOnAwkwardSizes) {
  Rng rng(11);
  const size_t sizes[] = {1, 3, 15, 16, 17, 127};
  for (size_t nq : sizes) {
    for (size_t np : sizes) {
      for (size_t dim : sizes) {
        auto q = RandomTokens(rng, nq, dim);
        auto p = RandomTokens(rng, np, dim);
        std::vector<float> packed(dim * PackedColumns(np));
        PackTokensF32(p.data(), np, dim, packed.data());
        const double want = ChamferReference(q.data(), nq, p.data(), np, dim);
        const float got = ChamferPackedF32(q.data(), nq, packed.data(), PackedColumns(np), dim);
        ASSERT_NEAR(got, want, Tolerance(q, p, nq, dim))
            << "nq=" << nq << " np=" << np << " dim=" << dim;
      }
    }
  }
}

TEST(ChamferPacked, HalfStorageScoresTheRoundedDocumentExactlyAsFloat) {
  Rng rng(12);
  for (size_t np : {1, 5, 33}) {
    const size_t nq = 7, dim = 17;
    auto q = RandomTokens(rng, nq, dim);
    auto p = RandomTokens(rng, np, dim);
    std::vector<float> rounded(p.size());
    for (size_t i = 0; i < p.size(); ++i) rounded[i] = HalfToFloat(FloatToHalf(p[i]));
    std::vector<uint16_t> packed(dim * PackedColumns(np));
    PackTokensF16(p.data(), np, dim, packed.data());
    const double want = ChamferReference(q.data(), nq, rounded.data(), np, dim);
    const float got = ChamferPackedF16(q.data(), nq, packed.data(), PackedColumns(np), dim);
    EXPECT_NEAR(got, want, Tolerance(q, rounded, nq, dim));
  }
}

TEST(ChamferPacked, SimdPathsAgreeBitForBitAndWithBaselineToRounding) {
  const CpuFeatures& f = GetCpuFeatures();
  Rng rng(13);
  const size_t nq = 32, np = 45, dim = 128;
  auto q = RandomTokens(rng, nq, dim);
  auto p = RandomTokens(rng, np, dim);
  const size_t n_pad = PackedColumns(np);
  std::vector<float> packed(dim * n_pad);
  PackTokensF32(p.data(), np, dim, packed.data());
  const float base = chamfer_baseline::ChamferPackedF32(q.data(), nq, packed.data(), n_pad, dim);
  std::vector<float> dots_base(np), dots(np);
  chamfer_baseline::DotMany(q.data(), p.data(), np, dim, dots_base.data());
  const double tol = Tolerance(q, p, nq, dim);
  float avx2 = 0;
  std::vector<float> dots_avx2(np);
  if (f.avx2_fma) {
    avx2 = chamfer_avx2::ChamferPackedF32(q.data(), nq, packed.data(), n_pad, dim);
    EXPECT_NEAR(base, avx2, tol);
    chamfer_avx2::DotMany(q.data(), p.data(), np, dim, dots_avx2.data());
    for (size_t i = 0; i < np; ++i) EXPECT_NEAR(dots_avx2[i], dots_base[i], 1e-4);
  }
  if (f.avx512) {
    const float avx512 = chamfer_avx512::ChamferPackedF32(q.data(), nq, packed.data(), n_pad, dim);
    EXPECT_EQ(avx512, avx2);
    chamfer_avx512::DotMany(q.data(), p.data(), np, dim, dots.data());
    EXPECT_EQ(dots, dots_avx2);
  }
  if (!f.avx2_fma) GTEST_SKIP() << "no SIMD path on this CPU; baseline covered elsewhere";
}

TEST(ChamferPacked, IdenticalSetsScoreTheirSquaredNorms) {
  // For unit tokens that are mutually orthogonal, Chamfer(Q, Q) = |Q| exactly.
  const size_t dim = 8, n = 5;
  std::vector<float> q(n * dim, 0.0f);
  for (size_t i = 0; i < n; ++i) q[i * dim + i] = 1.0f;
  std::vector<float> packed(dim * PackedColumns(n));
  PackTokensF32(q.data(), n, dim, packed.data());
  EXPECT_EQ(ChamferPackedF32(q.data(), n, packed.data(), PackedColumns(n), dim), 5.0f);
}

TEST(DotMany, MatchesDoubleDotProducts) {
  Rng rng(14);
  for (size_t dim : {1, 3, 15, 17, 127, 128}) {
    auto x = RandomTokens(rng, 1, dim);
    auto rows = RandomTokens(rng, 9, dim);
    std::vector<float> out(9);
    DotMany(x.data(), rows.data(), 9, dim, out.data());
    for (size_t r = 0; r < 9; ++r) {
      double want = 0;
      for (size_t j = 0; j < dim; ++j) want += double(x[j]) * rows[r * dim + j];
      EXPECT_NEAR(out[r], want, 1e-5 * dim) << dim;
    }
  }
}

}  // namespace
}  // namespace chamferdb
