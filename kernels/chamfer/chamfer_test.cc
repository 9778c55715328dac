#include "kernels/chamfer/chamfer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
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
    // Packing binary16 values directly lays out the same bits as packing and rounding floats.
    std::vector<uint16_t> halves(p.size()), packed_halves(packed.size());
    for (size_t i = 0; i < p.size(); ++i) halves[i] = FloatToHalf(p[i]);
    PackHalvesF16(halves.data(), np, dim, packed_halves.data());
    EXPECT_EQ(packed_halves, packed);
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

TEST(ProjectPacked, GroupedAndScatteredAgreeBitForBitWithAScalarLoop) {
  Rng rng(41);
  for (size_t n_pad : {16, 32, 48}) {
    for (size_t dim : {1, 3, 17, 128}) {
      for (size_t width : {1, 5, 16}) {
        auto xt = RandomTokens(rng, dim, n_pad);
        std::vector<uint32_t> slot(dim);
        std::vector<int8_t> sign(dim);
        for (size_t j = 0; j < dim; ++j) {
          slot[j] = static_cast<uint32_t>(rng.UniformInt(width));
          sign[j] = static_cast<int8_t>(rng.Sign());
        }
        // Scalar oracle: rows start at +0 and add ±x in ascending j.
        std::vector<float> want(width * n_pad, 0.0f);
        for (size_t j = 0; j < dim; ++j) {
          for (size_t t = 0; t < n_pad; ++t) {
            float& w = want[slot[j] * n_pad + t];
            w = sign[j] > 0 ? w + xt[j * n_pad + t] : w - xt[j * n_pad + t];
          }
        }
        std::vector<uint32_t> order, start(width + 1, 0);
        std::vector<int8_t> osign;
        for (size_t s = 0; s < width; ++s) {
          for (size_t j = 0; j < dim; ++j) {
            if (slot[j] == s) {
              order.push_back(static_cast<uint32_t>(j));
              osign.push_back(sign[j]);
            }
          }
          start[s + 1] = static_cast<uint32_t>(order.size());
        }
        std::vector<float> scattered(width * n_pad, 1.0f), grouped(width * n_pad, 1.0f);
        ProjectPacked(xt.data(), n_pad, dim, slot.data(), sign.data(), width, scattered.data());
        ProjectPackedGrouped(xt.data(), n_pad, order.data(), osign.data(), start.data(), width, grouped.data());
        ASSERT_EQ(0, std::memcmp(scattered.data(), want.data(), want.size() * 4)) << n_pad << " " << dim << " " << width;
        ASSERT_EQ(0, std::memcmp(grouped.data(), want.data(), want.size() * 4)) << n_pad << " " << dim << " " << width;
      }
    }
  }
}

TEST(SketchPacked, EveryPlaneCountMatchesTheOnePlaneLoop) {
  // Planes are processed eight at a time with a one-plane tail; both must give the same
  // bits as sketching each plane alone (nplanes = 1).
  Rng rng(42);
  const size_t n_pad = 32;
  for (size_t dim : {1, 17, 128}) {
    for (size_t nplanes : {1, 7, 8, 9, 17, 100}) {
      auto xt = RandomTokens(rng, dim, n_pad);
      auto planes = RandomTokens(rng, nplanes, dim);
      std::vector<float> all(nplanes * n_pad), one(n_pad);
      SketchPacked(xt.data(), n_pad, dim, planes.data(), nplanes, all.data());
      for (size_t c = 0; c < nplanes; ++c) {
        SketchPacked(xt.data(), n_pad, dim, planes.data() + c * dim, 1, one.data());
        ASSERT_EQ(0, std::memcmp(one.data(), all.data() + c * n_pad, n_pad * 4)) << dim << " " << nplanes << " " << c;
        double ref = 0;  // and near the double-precision dot product
        for (size_t j = 0; j < dim; ++j) ref += double(planes[c * dim + j]) * xt[j * n_pad + 3];
        ASSERT_NEAR(one[3], ref, 1e-4 * dim);
      }
    }
  }
}

}  // namespace
}  // namespace chamferdb
