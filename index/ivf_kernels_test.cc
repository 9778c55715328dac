#include "index/ivf_kernels.h"

#include <faiss/impl/ProductQuantizer.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/cpu_features.h"
#include "common/rng.h"
#include "index/ivf_kernels_impl.h"

namespace chamferdb {
namespace {

std::vector<float> Random(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.Normal());
  return v;
}

double DotD(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t t = 0; t < d; ++t) s += double(a[t]) * b[t];
  return s;
}

double L2D(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t t = 0; t < d; ++t) s += (double(a[t]) - b[t]) * (double(a[t]) - b[t]);
  return s;
}

using ArgmaxFn = void (*)(const float*, size_t, const float*, size_t, size_t, int64_t*, float*);

// Every path against a double-precision brute force: the chosen row is a maximum up to float
// rounding, the score is its inner product, and where the maximum is clear (no second row
// within the rounding tolerance) it is exactly the brute-force row.
void CheckArgmax(ArgmaxFn fn, const char* path) {
  Rng rng(7);
  for (size_t d : {1, 7, 16, 17, 64, 2048}) {
    for (size_t ny : {1, 3, 4, 7, 61}) {
      for (size_t nx : {1, 3, 4, 5, 17}) {
        const auto x = Random(rng, nx * d), y = Random(rng, ny * d);
        std::vector<int64_t> best(nx, -7);
        std::vector<float> score(nx);
        fn(x.data(), nx, y.data(), ny, d, best.data(), score.data());
        for (size_t i = 0; i < nx; ++i) {
          SCOPED_TRACE(::testing::Message() << path << " d=" << d << " ny=" << ny << " nx=" << nx << " i=" << i);
          ASSERT_GE(best[i], 0);
          ASSERT_LT(best[i], static_cast<int64_t>(ny));
          double top = -1e300, second = -1e300;
          int64_t arg = -1;
          for (size_t j = 0; j < ny; ++j) {
            const double s = DotD(x.data() + i * d, y.data() + j * d, d);
            if (s > top) second = top, top = s, arg = static_cast<int64_t>(j);
            else if (s > second) second = s;
          }
          const double tol = 1e-5 * (1 + std::sqrt(double(d))) * 4;
          const double got = DotD(x.data() + i * d, y.data() + best[i] * d, d);
          EXPECT_GE(got, top - tol);
          EXPECT_NEAR(score[i], got, tol);
          if (top - second > 2 * tol) EXPECT_EQ(best[i], arg);
        }
      }
    }
  }
}

TEST(IvfKernels, ArgmaxInnerProductMatchesBruteForceOnEveryPath) {
  CheckArgmax(ivf_portable::ArgmaxIP, "portable");
  if (GetCpuFeatures().avx512) CheckArgmax(ivf_avx512::ArgmaxIP, "avx512");
  CheckArgmax(ArgmaxInnerProduct, "dispatched");
}

TEST(IvfKernels, ArgmaxTiesResolveToTheLowestRow) {
  const size_t d = 33, ny = 40;
  Rng rng(3);
  auto y = Random(rng, ny * d);
  const auto x = Random(rng, 2 * d);
  // Rows 9, 21 and 38 are the same, and the best for both queries.
  for (size_t t = 0; t < d; ++t) y[9 * d + t] = y[21 * d + t] = y[38 * d + t] = 10.0f * x[t] + 10.0f * x[d + t];
  for (ArgmaxFn fn : {ivf_portable::ArgmaxIP, GetCpuFeatures().avx512 ? ivf_avx512::ArgmaxIP : ivf_portable::ArgmaxIP}) {
    int64_t best[2];
    float score[2];
    fn(x.data(), 2, y.data(), ny, d, best, score);
    EXPECT_EQ(best[0], 9);
    EXPECT_EQ(best[1], 9);
  }
}

using NearestFn = void (*)(const float*, const float*, size_t, size_t, size_t, uint32_t*, float*);

// The kernels' layout: per sub-quantizer dsub × ksub coordinates, then ksub squared norms.
std::vector<float> Transpose(const std::vector<float>& c, size_t m, size_t ksub, size_t dsub) {
  std::vector<float> t(m * (dsub + 1) * ksub, 0.0f);
  for (size_t s = 0; s < m; ++s)
    for (size_t k = 0; k < ksub; ++k)
      for (size_t j = 0; j < dsub; ++j) {
        const float v = c[(s * ksub + k) * dsub + j];
        t[(s * (dsub + 1) + j) * ksub + k] = v;
        t[(s * (dsub + 1) + dsub) * ksub + k] += v * v;
      }
  return t;
}

void CheckNearest(NearestFn fn, const char* path, bool simd) {
  Rng rng(11);
  for (size_t dsub : {1, 3, 8, 16}) {
    for (size_t ksub : {16, 32, 256, 512}) {
      const size_t m = 5, n = 9;
      const auto c = Random(rng, m * ksub * dsub);
      const auto ct = Transpose(c, m, ksub, dsub);
      const auto x = Random(rng, n * m * dsub);
      for (size_t i = 0; i < n; ++i) {
        std::vector<uint32_t> index(m, 99999);
        std::vector<float> dist(m);
        fn(x.data() + i * m * dsub, ct.data(), m, ksub, dsub, index.data(), dist.data());
        for (size_t s = 0; s < m; ++s) {
          SCOPED_TRACE(::testing::Message() << path << " dsub=" << dsub << " ksub=" << ksub << " i=" << i << " s=" << s);
          ASSERT_LT(index[s], ksub);
          const float* xs = x.data() + (i * m + s) * dsub;
          double top = 1e300, second = 1e300;
          uint32_t arg = 0;
          for (size_t k = 0; k < ksub; ++k) {
            const double v = L2D(xs, c.data() + (s * ksub + k) * dsub, dsub);
            if (v < top) second = top, top = v, arg = static_cast<uint32_t>(k);
            else if (v < second) second = v;
          }
          const double tol = 1e-5 * (1 + top) * dsub;
          const double got = L2D(xs, c.data() + (s * ksub + index[s]) * dsub, dsub);
          EXPECT_LE(got, top + tol);
          EXPECT_NEAR(dist[s], got, tol);
          if (second - top > 2 * tol) EXPECT_EQ(index[s], arg);
        }
      }
    }
  }
  (void)simd;
}

TEST(IvfKernels, NearestL2MatchesBruteForceOnEveryPath) {
  CheckNearest(ivf_portable::NearestL2, "portable", false);
  if (GetCpuFeatures().avx512) CheckNearest(ivf_avx512::NearestL2, "avx512", true);
}

TEST(IvfKernels, NearestL2TiesResolveToTheLowestCentroid) {
  const size_t dsub = 8, ksub = 256;
  Rng rng(5);
  auto c = Random(rng, ksub * dsub);
  const auto x = Random(rng, dsub);
  // Centroids 40, 41, 200 and 255 are equal and sit on x.
  for (size_t k : {40, 41, 200, 255})
    for (size_t j = 0; j < dsub; ++j) c[k * dsub + j] = x[j];
  const auto ct = Transpose(c, 1, ksub, dsub);
  uint32_t index = 0;
  float dist = -1;
  ivf_portable::NearestL2(x.data(), ct.data(), 1, ksub, dsub, &index, &dist);
  EXPECT_EQ(index, 40u);
  EXPECT_NEAR(dist, 0.0f, 1e-5);
  if (GetCpuFeatures().avx512) {
    ivf_avx512::NearestL2(x.data(), ct.data(), 1, ksub, dsub, &index, &dist);
    EXPECT_EQ(index, 40u);
    EXPECT_NEAR(dist, 0.0f, 1e-5);
  }
}

// Codes decode (with FAISS's own decoder) to the nearest centroids, for byte-sized and
// bit-packed codes: the packing is FAISS's.
TEST(IvfKernels, PqEncoderCodesDecodeWithFaissToTheNearestCentroids) {
  Rng rng(13);
  for (size_t nbits : {8, 5, 4, 10}) {
    const size_t m = 6, dsub = 8, d = m * dsub, n = 70, ksub = size_t{1} << nbits;
    faiss::ProductQuantizer pq(d, m, nbits);
    const auto c = Random(rng, m * ksub * dsub);
    pq.centroids = c;
    const auto x = Random(rng, n * d);
    PqEncoder enc(c.data(), m, ksub, dsub);
    std::vector<uint8_t> codes(n * pq.code_size);
    enc.Encode(x.data(), n, nbits, codes.data());
    std::vector<uint32_t> index(n * m);
    enc.Assign(x.data(), n, index.data(), nullptr);
    std::vector<float> decoded(n * d);
    pq.decode(codes.data(), decoded.data(), n);
    for (size_t i = 0; i < n; ++i)
      for (size_t s = 0; s < m; ++s)
        for (size_t j = 0; j < dsub; ++j)
          ASSERT_EQ(decoded[i * d + s * dsub + j], c[(s * ksub + index[i * m + s]) * dsub + j])
              << "nbits=" << nbits << " i=" << i << " s=" << s;
    // And FAISS's own encoder picks the same centroids (no near-ties in random data at this size).
    std::vector<uint8_t> faiss_codes(n * pq.code_size);
    pq.compute_codes(x.data(), faiss_codes.data(), n);
    EXPECT_EQ(codes, faiss_codes) << "nbits=" << nbits;
  }
}

}  // namespace
}  // namespace chamferdb
