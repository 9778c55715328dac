#include "kernels/int8/quantize.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/cpu_features.h"

namespace chamferdb::int8 {

// The row loops below give exactly QuantizeValue's results in a form the compiler can
// vectorize (the int8 token-storage ingest spent ~15% of its time in libm's fmaxf and
// nearbyint calls): std::max instead of std::fmax (equal for the finite inputs this header
// requires), and round-half-even by adding and subtracting 1.5 * 2^52, which rounds any
// |v| < 2^51 to the nearest integer, ties to even, exactly as nearbyint under FE_TONEAREST.
namespace {

inline double RoundHalfEven(double v) {
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52
  return (v + kMagic) - kMagic;
}

float AbsMaxPortable(const float* x, size_t d) {
  float c = 0.0f;
  for (size_t j = 0; j < d; ++j) c = std::max(c, std::fabs(x[j]));
  return c;
}

void QuantizeScaledPortable(const float* x, size_t d, double cd, int8_t* codes) {
  for (size_t j = 0; j < d; ++j) {
    const double q = RoundHalfEven(127.0 * static_cast<double>(x[j]) / cd);
    codes[j] = static_cast<int8_t>(std::min(127.0, std::max(-127.0, q)));
  }
}

// AVX-512 twins (the baseline build vectorizes the loops above 2 doubles at a time; the
// ingest quantizes ~8k values per document: tokens and the HNSW graph's FDE row). Same
// operations in the same order on every lane, so the same codes: |x| and max are exact,
// 127·x and the division are IEEE double operations as in the scalar code, and
// roundscale(nearest) rounds half to even as RoundHalfEven does for |v| < 2^51 (larger
// values clamp to ±127 either way).
__attribute__((target("avx512f,avx512vl"))) float AbsMaxAvx512(const float* x, size_t d) {
  __m512 m = _mm512_setzero_ps();
  size_t j = 0;
  for (; j + 16 <= d; j += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
  float c = _mm512_reduce_max_ps(m);
  for (; j < d; ++j) c = std::max(c, std::fabs(x[j]));
  return c;
}

__attribute__((target("avx512f,avx512vl"))) void QuantizeScaledAvx512(const float* x, size_t d, double cd,
                                                                     int8_t* codes) {
  const __m512d k127 = _mm512_set1_pd(127.0), c = _mm512_set1_pd(cd);
  const __m512d hi = _mm512_set1_pd(127.0), lo = _mm512_set1_pd(-127.0);
  size_t j = 0;
  for (; j + 8 <= d; j += 8) {
    __m512d v = _mm512_div_pd(_mm512_mul_pd(k127, _mm512_cvtps_pd(_mm256_loadu_ps(x + j))), c);
    v = _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_pd(hi, _mm512_max_pd(lo, v));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + j), _mm256_cvtepi32_epi8(_mm512_cvtpd_epi32(v)));
  }
  QuantizeScaledPortable(x + j, d - j, cd, codes + j);
}

bool UseAvx512() {
  static const bool use = GetCpuFeatures().avx512;
  return use;
}

}  // namespace

float QuantizeRow(const float* x, size_t d, int8_t* codes) {
  const float c = UseAvx512() ? AbsMaxAvx512(x, d) : AbsMaxPortable(x, d);
  QuantizeRowWithScale(x, d, c, codes);
  return c;
}

void QuantizeRowWithScale(const float* x, size_t d, float c, int8_t* codes) {
  if (!(c > 0.0f)) {
    for (size_t j = 0; j < d; ++j) codes[j] = 0;
    return;
  }
  if (UseAvx512()) {
    QuantizeScaledAvx512(x, d, static_cast<double>(c), codes);
  } else {
    QuantizeScaledPortable(x, d, static_cast<double>(c), codes);
  }
}

void QuantizeRows(const float* x, size_t n, size_t d, int8_t* codes, float* scales) {
  for (size_t i = 0; i < n; ++i) scales[i] = QuantizeRow(x + i * d, d, codes + i * d);
}

void DequantizeRows(const int8_t* codes, const float* scales, size_t n, size_t d, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const float f = scales[i] / 127.0f;
    for (size_t j = 0; j < d; ++j) out[i * d + j] = static_cast<float>(codes[i * d + j]) * f;
  }
}

int64_t L1NormCodes(const int8_t* codes, size_t d) {
  int64_t s = 0;
  for (size_t j = 0; j < d; ++j) s += std::abs(static_cast<int>(codes[j]));
  return s;
}

}  // namespace chamferdb::int8
