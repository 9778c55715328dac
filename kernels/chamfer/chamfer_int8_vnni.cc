// The AVX-512 VNNI int8 Chamfer path (compiled with -mavx512vnni; selected only when the CPU
// has it). vpdpbusd multiplies unsigned bytes by signed bytes, so the query is fed biased
// (a + 128 ∈ [1, 255]) and 128·Σ_j b_tj is subtracted per document token afterwards: the
// int32 result is exactly ⟨a, b⟩.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/chamfer/chamfer_int8_paths.h"

namespace chamferdb::chamfer_i8_vnni {
namespace {

inline int32_t Load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// acc[k] = ⟨a_{i0+k}, b_t⟩ for the 16 tokens of chunk c, k < 4 (rows past the query's end
// repeat its last token; the caller ignores them).
inline void Block4(const QueryI8& q, size_t i0, const uint8_t* packed, size_t n_pad, size_t c, __m512i acc[4]) {
  const uint8_t* a[4];
  for (size_t k = 0; k < 4; ++k) a[k] = q.biased.data() + std::min(i0 + k, q.n - 1) * q.dim4;
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  const uint8_t* col = packed + c * 64;
  const size_t stride = n_pad * 4;
  for (size_t g = 0; g < q.dim4 / 4; ++g) {
    const __m512i row = _mm512_loadu_si512(col + g * stride);
    a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32(Load32(a[0] + 4 * g)), row);
    a1 = _mm512_dpbusd_epi32(a1, _mm512_set1_epi32(Load32(a[1] + 4 * g)), row);
    a2 = _mm512_dpbusd_epi32(a2, _mm512_set1_epi32(Load32(a[2] + 4 * g)), row);
    a3 = _mm512_dpbusd_epi32(a3, _mm512_set1_epi32(Load32(a[3] + 4 * g)), row);
  }
  const __m512i bias = _mm512_loadu_si512(packed + i8_layout::BiasOffset(q.dim4, n_pad) + c * 64);
  acc[0] = _mm512_sub_epi32(a0, bias);
  acc[1] = _mm512_sub_epi32(a1, bias);
  acc[2] = _mm512_sub_epi32(a2, bias);
  acc[3] = _mm512_sub_epi32(a3, bias);
}

}  // namespace

float ScoreI8(const QueryI8& q, const uint8_t* packed, size_t n_pad) {
  float total = 0.0f;
  const float* scales = reinterpret_cast<const float*>(packed + i8_layout::ScalesOffset(q.dim4, n_pad));
  for (size_t i0 = 0; i0 < q.n; i0 += 4) {
    __m512 m[4];
    for (auto& v : m) v = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (size_t c = 0; c < n_pad / 16; ++c) {
      __m512i acc[4];
      Block4(q, i0, packed, n_pad, c, acc);
      const __m512 s = _mm512_loadu_ps(scales + c * 16);
      for (size_t k = 0; k < 4; ++k) m[k] = _mm512_max_ps(m[k], _mm512_mul_ps(_mm512_cvtepi32_ps(acc[k]), s));
    }
    for (size_t k = 0; k < 4 && i0 + k < q.n; ++k) {
      total += _mm512_reduce_max_ps(m[k]) * (q.scales[i0 + k] / 16129.0f);
    }
  }
  return total;
}

void DotsI8(const QueryI8& q, const uint8_t* packed, size_t n_pad, int32_t* out) {
  for (size_t i0 = 0; i0 < q.n; i0 += 4) {
    for (size_t c = 0; c < n_pad / 16; ++c) {
      __m512i acc[4];
      Block4(q, i0, packed, n_pad, c, acc);
      for (size_t k = 0; k < 4 && i0 + k < q.n; ++k) {
        _mm512_storeu_si512(out + (i0 + k) * n_pad + c * 16, acc[k]);
      }
    }
  }
}

}  // namespace chamferdb::chamfer_i8_vnni
