#include "index/refine_dot.h"

#include <immintrin.h>

#include "common/cpu_features.h"

namespace chamferdb {
namespace {

float DotPortable(const float* q, const int8_t* c, size_t dim) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t j = 0;
  for (; j + 8 <= dim; j += 8) {
    for (size_t l = 0; l < 8; ++l) acc[l] += q[j + l] * static_cast<float>(c[j + l]);
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < dim; ++j) s += q[j] * static_cast<float>(c[j]);
  return s;
}

__attribute__((target("avx2,fma"))) float DotAvx2(const float* q, const int8_t* c, size_t dim) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 16 <= dim; j += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j));
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
    const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), lo, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), hi, a1);
  }
  __m256 a = _mm256_add_ps(a0, a1);
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
  float s = _mm_cvtss_f32(s4);
  for (; j < dim; ++j) s += q[j] * static_cast<float>(c[j]);
  return s;
}

// GCC 12 reports its own _mm512_undefined_* placeholders inside the conversion intrinsics
// as uninitialized when they are inlined through a target attribute (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f,avx512bw"))) float DotAvx512(const float* q, const int8_t* c, size_t dim) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  size_t j = 0;
  for (; j + 32 <= dim; j += 32) {
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j))));
    const __m512 hi =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j + 16))));
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), lo, a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j + 16), hi, a1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  for (; j < dim; ++j) s += q[j] * static_cast<float>(c[j]);
  return s;
}
#pragma GCC diagnostic pop

using DotFn = float (*)(const float*, const int8_t*, size_t);

DotFn Chosen() {
  static const DotFn fn = [] {
    const CpuFeatures& f = GetCpuFeatures();
    if (f.avx512) return &DotAvx512;
    if (f.avx2_fma) return &DotAvx2;
    return &DotPortable;
  }();
  return fn;
}

}  // namespace

float DotI8Row(const float* q, const int8_t* codes, float scale, size_t dim) {
  return Chosen()(q, codes, dim) * (scale / 127.0f);
}

}  // namespace chamferdb
