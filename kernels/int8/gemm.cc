#include "kernels/int8/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/cpu_features.h"

namespace chamferdb::int8 {
namespace {

size_t RoundUp(size_t x, size_t m) { return (x + m - 1) / m * m; }

// ---------------------------------------------------------------- scalar
void GemmScalar(const int8_t* a, const int8_t* b, int32_t* c, size_t m, size_t n, size_t k,
                int threads) {
  const long long panels = static_cast<long long>((n + 3) / 4);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long long p = 0; p < panels; ++p) {
    const size_t j0 = static_cast<size_t>(p) * 4;
    const size_t nj = std::min<size_t>(4, n - j0);
    for (size_t i = 0; i < m; ++i) {
      const int8_t* ai = a + i * k;
      int32_t acc[4] = {0, 0, 0, 0};
      for (size_t jj = 0; jj < nj; ++jj) {
        const int8_t* bj = b + (j0 + jj) * k;
        int32_t s = 0;
        for (size_t l = 0; l < k; ++l) s += int32_t{ai[l]} * int32_t{bj[l]};
        acc[jj] = s;
      }
      for (size_t jj = 0; jj < nj; ++jj) c[i * n + j0 + jj] = acc[jj];
    }
  }
}

// ---------------------------------------------------------------- AVX-512 VNNI
constexpr size_t kVnniNR = 32;  // columns per panel (2 zmm of 16 int32 lanes)
constexpr size_t kVnniMR = 8;   // rows per micro-tile

// C[r, lane] = Σ_t a_u8[r, 4t..4t+3] · bp[t][lane][0..3] − colsum128[lane], t < k4.
template <int MR>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void VnniMicro(
    const uint8_t* a, size_t lda, const uint8_t* bp, size_t k4, const int32_t* colsum128,
    int32_t* c, size_t ldc, size_t nvalid) {
  __m512i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
  for (size_t t = 0; t < k4; ++t) {
    const __m512i b0 = _mm512_loadu_si512(bp + t * 128);
    const __m512i b1 = _mm512_loadu_si512(bp + t * 128 + 64);
    for (int r = 0; r < MR; ++r) {
      int32_t word;
      std::memcpy(&word, a + r * lda + 4 * t, 4);
      const __m512i av = _mm512_set1_epi32(word);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
    }
  }
  const __m512i corr0 = _mm512_loadu_si512(colsum128);
  const __m512i corr1 = _mm512_loadu_si512(colsum128 + 16);
  alignas(64) int32_t tmp[32];
  for (int r = 0; r < MR; ++r) {
    _mm512_store_si512(tmp, _mm512_sub_epi32(acc[r][0], corr0));
    _mm512_store_si512(tmp + 16, _mm512_sub_epi32(acc[r][1], corr1));
    std::memcpy(c + r * ldc, tmp, nvalid * sizeof(int32_t));
  }
}

using VnniFn = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, const int32_t*,
                        int32_t*, size_t, size_t);
constexpr VnniFn kVnniKernels[kVnniMR + 1] = {nullptr,      VnniMicro<1>, VnniMicro<2>,
                                              VnniMicro<3>, VnniMicro<4>, VnniMicro<5>,
                                              VnniMicro<6>, VnniMicro<7>, VnniMicro<8>};

void GemmVnni(const int8_t* a, const int8_t* b, int32_t* c, size_t m, size_t n, size_t k,
              int threads) {
  const size_t kp = RoundUp(k, 4);
  const size_t k4 = kp / 4;
  const size_t panels = (n + kVnniNR - 1) / kVnniNR;
  // A offset to unsigned: (a + 128) as u8 == a XOR 0x80. Padding columns are arbitrary
  // because the matching B padding is zero.
  std::vector<uint8_t> au(m * kp, 0x80);
  // B panels: [panel][t][32 columns][4 bytes], zero padded in k and in columns.
  std::vector<uint8_t> bp(panels * k4 * 128, 0);
  std::vector<int32_t> colsum(panels * kVnniNR, 0);
  const long long mm = static_cast<long long>(m);
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (long long i = 0; i < mm; ++i) {
      for (size_t l = 0; l < k; ++l) au[i * kp + l] = static_cast<uint8_t>(a[i * k + l]) ^ 0x80;
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < static_cast<long long>(panels); ++p) {
      uint8_t* dst = bp.data() + p * k4 * 128;
      for (size_t jj = 0; jj < kVnniNR; ++jj) {
        const size_t j = p * kVnniNR + jj;
        if (j >= n) break;
        const int8_t* bj = b + j * k;
        int32_t s = 0;
        for (size_t l = 0; l < k; ++l) s += bj[l];
        const size_t full = k / 4;
        for (size_t t = 0; t < full; ++t) std::memcpy(dst + t * 128 + jj * 4, bj + 4 * t, 4);
        for (size_t l = 4 * full; l < k; ++l) dst[full * 128 + jj * 4 + (l - 4 * full)] = static_cast<uint8_t>(bj[l]);
        colsum[j] = 128 * s;  // the correction for the +128 offset of A
      }
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < static_cast<long long>(panels); ++p) {
      const size_t j0 = p * kVnniNR;
      const size_t nvalid = std::min(kVnniNR, n - j0);
      const uint8_t* panel = bp.data() + p * k4 * 128;
      for (size_t i0 = 0; i0 < m; i0 += kVnniMR) {
        const size_t mr = std::min(kVnniMR, m - i0);
        kVnniKernels[mr](au.data() + i0 * kp, kp, panel, k4, colsum.data() + j0, c + i0 * n + j0,
                         n, nvalid);
      }
    }
  }
}

// ---------------------------------------------------------------- AVX2 (int16 madd)
constexpr size_t kAvx2NR = 16;  // 2 ymm of 8 int32 lanes
constexpr size_t kAvx2MR = 4;

template <int MR>
__attribute__((target("avx2"))) void Avx2Micro(const int16_t* a, size_t lda, const int16_t* bp,
                                               size_t k2, int32_t* c, size_t ldc,
                                               size_t nvalid) {
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (size_t t = 0; t < k2; ++t) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + t * 32));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + t * 32 + 16));
    for (int r = 0; r < MR; ++r) {
      int32_t word;
      std::memcpy(&word, a + r * lda + 2 * t, 4);
      const __m256i av = _mm256_set1_epi32(word);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
    }
  }
  alignas(32) int32_t tmp[16];
  for (int r = 0; r < MR; ++r) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc[r][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), acc[r][1]);
    std::memcpy(c + r * ldc, tmp, nvalid * sizeof(int32_t));
  }
}

using Avx2Fn = void (*)(const int16_t*, size_t, const int16_t*, size_t, int32_t*, size_t,
                        size_t);
constexpr Avx2Fn kAvx2Kernels[kAvx2MR + 1] = {nullptr, Avx2Micro<1>, Avx2Micro<2>, Avx2Micro<3>,
                                              Avx2Micro<4>};

void GemmAvx2(const int8_t* a, const int8_t* b, int32_t* c, size_t m, size_t n, size_t k,
              int threads) {
  const size_t kp = RoundUp(k, 2);
  const size_t k2 = kp / 2;
  const size_t panels = (n + kAvx2NR - 1) / kAvx2NR;
  std::vector<int16_t> aw(m * kp, 0);
  std::vector<int16_t> bp(panels * k2 * 32, 0);  // [panel][t][16 columns][2 int16]
  const long long mm = static_cast<long long>(m);
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (long long i = 0; i < mm; ++i) {
      for (size_t l = 0; l < k; ++l) aw[i * kp + l] = a[i * k + l];
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < static_cast<long long>(panels); ++p) {
      int16_t* dst = bp.data() + p * k2 * 32;
      for (size_t jj = 0; jj < kAvx2NR; ++jj) {
        const size_t j = p * kAvx2NR + jj;
        if (j >= n) break;
        for (size_t l = 0; l < k; ++l) dst[(l / 2) * 32 + jj * 2 + (l % 2)] = b[j * k + l];
      }
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < static_cast<long long>(panels); ++p) {
      const size_t j0 = p * kAvx2NR;
      const size_t nvalid = std::min(kAvx2NR, n - j0);
      const int16_t* panel = bp.data() + p * k2 * 32;
      for (size_t i0 = 0; i0 < m; i0 += kAvx2MR) {
        const size_t mr = std::min(kAvx2MR, m - i0);
        kAvx2Kernels[mr](aw.data() + i0 * kp, kp, panel, k2, c + i0 * n + j0, n, nvalid);
      }
    }
  }
}

}  // namespace

bool GemmPathAvailable(GemmPath path) {
  const CpuFeatures& f = GetCpuFeatures();
  switch (path) {
    case GemmPath::kAuto:
    case GemmPath::kScalar:
      return true;
    case GemmPath::kAvx2:
      return f.avx2_fma;
    case GemmPath::kAvx512Vnni:
      return f.avx512_vnni;
  }
  return false;
}

GemmPath ResolveGemmPath(GemmPath path) {
  if (path != GemmPath::kAuto) return path;
  if (GemmPathAvailable(GemmPath::kAvx512Vnni)) return GemmPath::kAvx512Vnni;
  if (GemmPathAvailable(GemmPath::kAvx2)) return GemmPath::kAvx2;
  return GemmPath::kScalar;
}

std::string_view GemmPathName(GemmPath path) {
  switch (path) {
    case GemmPath::kAuto:
      return "auto";
    case GemmPath::kScalar:
      return "scalar";
    case GemmPath::kAvx2:
      return "avx2";
    case GemmPath::kAvx512Vnni:
      return "avx512_vnni";
  }
  return "unknown";
}

void Int8GemmNT(const int8_t* a, const int8_t* b, int32_t* c, size_t m, size_t n, size_t k,
                GemmPath path, int threads) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(c, c + m * n, 0);
    return;
  }
  threads = std::max(1, threads);
  switch (ResolveGemmPath(path)) {
    case GemmPath::kAvx512Vnni:
      GemmVnni(a, b, c, m, n, k, threads);
      return;
    case GemmPath::kAvx2:
      GemmAvx2(a, b, c, m, n, k, threads);
      return;
    default:
      GemmScalar(a, b, c, m, n, k, threads);
      return;
  }
}

void Int8GemmNTNaive(const int8_t* a, const int8_t* b, int32_t* c, size_t m, size_t n,
                     size_t k) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      int32_t s = 0;
      for (size_t l = 0; l < k; ++l) s += int32_t{a[i * k + l]} * int32_t{b[j * k + l]};
      c[i * n + j] = s;
    }
  }
}

}  // namespace chamferdb::int8
