// The AVX2 int8 Chamfer path (compiled with -mavx2). vpmaddubsw multiplies unsigned by
// signed bytes into saturating int16 pairs; feeding |a| and sign(b, a) keeps every pair sum
// within 2·127² = 32258 < 32767, so nothing saturates and vpmaddwd by 1 widens exactly.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/chamfer/chamfer_int8_paths.h"

namespace chamferdb::chamfer_i8_avx2 {
namespace {

inline int32_t Load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// acc[k] = ⟨a_{i0+k}, b_t⟩ for the 8 tokens of half-chunk h (tokens 8h..8h+7), k < 4.
inline void Block4(const QueryI8& q, size_t i0, const uint8_t* packed, size_t n_pad, size_t h, __m256i acc[4]) {
  const int8_t* s[4];
  const uint8_t* u[4];
  for (size_t k = 0; k < 4; ++k) {
    const size_t i = std::min(i0 + k, q.n - 1);
    s[k] = q.codes.data() + i * q.dim4;
    u[k] = q.abs.data() + i * q.dim4;
  }
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  const uint8_t* col = packed + h * 32;
  const size_t stride = n_pad * 4;
  for (size_t g = 0; g < q.dim4 / 4; ++g) {
    const __m256i row = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col + g * stride));
    for (size_t k = 0; k < 4; ++k) {
      const __m256i sign = _mm256_set1_epi32(Load32(s[k] + 4 * g));
      const __m256i mag = _mm256_set1_epi32(Load32(u[k] + 4 * g));
      const __m256i pairs = _mm256_maddubs_epi16(mag, _mm256_sign_epi8(row, sign));
      a[k] = _mm256_add_epi32(a[k], _mm256_madd_epi16(pairs, ones));
    }
  }
  for (size_t k = 0; k < 4; ++k) acc[k] = a[k];
}

float HMax(__m256 v) {
  float f[8];
  _mm256_storeu_ps(f, v);
  float m = f[0];
  for (int i = 1; i < 8; ++i) m = f[i] > m ? f[i] : m;
  return m;
}

}  // namespace

float ScoreI8(const QueryI8& q, const uint8_t* packed, size_t n_pad) {
  float total = 0.0f;
  const float* scales = reinterpret_cast<const float*>(packed + i8_layout::ScalesOffset(q.dim4, n_pad));
  for (size_t i0 = 0; i0 < q.n; i0 += 4) {
    __m256 m[4];
    for (auto& v : m) v = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    for (size_t h = 0; h < n_pad / 8; ++h) {
      __m256i acc[4];
      Block4(q, i0, packed, n_pad, h, acc);
      const __m256 s = _mm256_loadu_ps(scales + h * 8);
      for (size_t k = 0; k < 4; ++k) m[k] = _mm256_max_ps(m[k], _mm256_mul_ps(_mm256_cvtepi32_ps(acc[k]), s));
    }
    for (size_t k = 0; k < 4 && i0 + k < q.n; ++k) total += HMax(m[k]) * (q.scales[i0 + k] / 16129.0f);
  }
  return total;
}

void DotsI8(const QueryI8& q, const uint8_t* packed, size_t n_pad, int32_t* out) {
  for (size_t i0 = 0; i0 < q.n; i0 += 4) {
    for (size_t h = 0; h < n_pad / 8; ++h) {
      __m256i acc[4];
      Block4(q, i0, packed, n_pad, h, acc);
      for (size_t k = 0; k < 4 && i0 + k < q.n; ++k) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (i0 + k) * n_pad + h * 8), acc[k]);
      }
    }
  }
}

}  // namespace chamferdb::chamfer_i8_avx2
