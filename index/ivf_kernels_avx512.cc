// AVX-512 paths of index/ivf_kernels.h (ISA flags set for this file in CMakeLists.txt; only
// called when the CPU has AVX-512 F/BW/VL).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <limits>

#include "index/ivf_kernels_impl.h"

namespace chamferdb::ivf_avx512 {
namespace {

// acc[a][b] = <x_a, y_b> for BX rows of x and BY rows of y (d floats each, 16 at a time,
// the tail masked).
template <int BX, int BY>
inline void DotBlock(const float* const* xr, const float* const* yr, size_t d, float* out /* BX × BY */) {
  __m512 acc[BX][BY];
  for (int a = 0; a < BX; ++a)
    for (int b = 0; b < BY; ++b) acc[a][b] = _mm512_setzero_ps();
  size_t t = 0;
  for (; t + 16 <= d; t += 16) {
    __m512 xv[BX], yv[BY];
    for (int a = 0; a < BX; ++a) xv[a] = _mm512_loadu_ps(xr[a] + t);
    for (int b = 0; b < BY; ++b) yv[b] = _mm512_loadu_ps(yr[b] + t);
    for (int a = 0; a < BX; ++a)
      for (int b = 0; b < BY; ++b) acc[a][b] = _mm512_fmadd_ps(xv[a], yv[b], acc[a][b]);
  }
  if (t < d) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (d - t)) - 1);
    __m512 xv[BX], yv[BY];
    for (int a = 0; a < BX; ++a) xv[a] = _mm512_maskz_loadu_ps(mask, xr[a] + t);
    for (int b = 0; b < BY; ++b) yv[b] = _mm512_maskz_loadu_ps(mask, yr[b] + t);
    for (int a = 0; a < BX; ++a)
      for (int b = 0; b < BY; ++b) acc[a][b] = _mm512_fmadd_ps(xv[a], yv[b], acc[a][b]);
  }
  for (int a = 0; a < BX; ++a)
    for (int b = 0; b < BY; ++b) out[a * BY + b] = _mm512_reduce_add_ps(acc[a][b]);
}

template <int BX, int BY>
inline void Update(const float* dots, size_t j, int64_t* best, float* score) {
  for (int a = 0; a < BX; ++a)
    for (int b = 0; b < BY; ++b) {
      if (dots[a * BY + b] > score[a] || best[a] < 0) {
        score[a] = dots[a * BY + b];
        best[a] = static_cast<int64_t>(j + b);
      }
    }
}

}  // namespace

// Loop order: y in blocks of 4 rows outside, x rows inside, so each block of y (the
// centroids, usually larger than L2) is read once per call while the x rows (at most a few
// dozen, see ArgmaxInnerProduct) stay in L2.
void ArgmaxIP(const float* x, size_t nx, const float* y, size_t ny, size_t d, int64_t* best, float* score) {
  for (size_t i = 0; i < nx; ++i) {
    best[i] = -1;
    score[i] = -std::numeric_limits<float>::infinity();
  }
  float dots[16];
  size_t j = 0;
  for (; j + 4 <= ny; j += 4) {
    const float* yr[4] = {y + j * d, y + (j + 1) * d, y + (j + 2) * d, y + (j + 3) * d};
    size_t i = 0;
    for (; i + 4 <= nx; i += 4) {
      const float* xr[4] = {x + i * d, x + (i + 1) * d, x + (i + 2) * d, x + (i + 3) * d};
      DotBlock<4, 4>(xr, yr, d, dots);
      Update<4, 4>(dots, j, best + i, score + i);
    }
    for (; i < nx; ++i) {
      const float* xr[1] = {x + i * d};
      DotBlock<1, 4>(xr, yr, d, dots);
      Update<1, 4>(dots, j, best + i, score + i);
    }
  }
  for (; j < ny; ++j) {
    const float* yr[1] = {y + j * d};
    for (size_t i = 0; i < nx; ++i) {
      const float* xr[1] = {x + i * d};
      DotBlock<1, 1>(xr, yr, d, dots);
      Update<1, 1>(dots, j, best + i, score + i);
    }
  }
}

void NearestL2(const float* x, const float* ct, size_t m, size_t ksub, size_t dsub, uint32_t* index,
               float* distance) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  constexpr size_t kGroup = 16;  // blocks of 16 centroids held in registers at once
  for (size_t s = 0; s < m; ++s) {
    const float* xs = x + s * dsub;
    const float* cs = ct + s * (dsub + 1) * ksub;
    const float* norms = cs + dsub * ksub;
    __m512 vmin = _mm512_set1_ps(std::numeric_limits<float>::infinity());
    __m512i vidx = _mm512_setzero_si512();
    for (size_t g = 0; g < ksub; g += kGroup * 16) {
      const size_t blocks = std::min(kGroup, (ksub - g) / 16);
      __m512 acc[kGroup];
      // ‖c‖² − 2⟨x, c⟩, accumulated over t in order.
      for (size_t b = 0; b < kGroup; ++b) acc[b] = b < blocks ? _mm512_loadu_ps(norms + g + 16 * b) : _mm512_setzero_ps();
      for (size_t t = 0; t < dsub; ++t) {
        const __m512 xv = _mm512_set1_ps(-2.0f * xs[t]);
        const float* row = cs + t * ksub + g;
        if (blocks == kGroup) {
          for (size_t b = 0; b < kGroup; ++b) acc[b] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(row + 16 * b), acc[b]);
        } else {
          for (size_t b = 0; b < blocks; ++b) acc[b] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(row + 16 * b), acc[b]);
        }
      }
      // Lanes keep their first minimum (strict <, blocks in increasing index order).
      for (size_t b = 0; b < blocks; ++b) {
        const __mmask16 lt = _mm512_cmp_ps_mask(acc[b], vmin, _CMP_LT_OQ);
        vmin = _mm512_mask_mov_ps(vmin, lt, acc[b]);
        vidx = _mm512_mask_mov_epi32(vidx, lt, _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(g + 16 * b))));
      }
    }
    const float best = _mm512_reduce_min_ps(vmin);
    const __mmask16 eq = _mm512_cmp_ps_mask(vmin, _mm512_set1_ps(best), _CMP_EQ_OQ);
    index[s] = static_cast<uint32_t>(_mm512_mask_reduce_min_epi32(eq, vidx));
    if (distance) {
      float xx = 0;
      for (size_t t = 0; t < dsub; ++t) xx += xs[t] * xs[t];
      distance[s] = std::max(0.0f, best + xx);
    }
  }
}

}  // namespace chamferdb::ivf_avx512
