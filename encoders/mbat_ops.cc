#include "encoders/mbat_ops.h"

#include <immintrin.h>

#include <Eigen/Dense>
#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstring>

#include "common/cpu_features.h"
#include "common/rng.h"

namespace chamferdb::mbat {
namespace {

// Stream ids for DeriveSeed(op seed, stream, 0).
constexpr uint64_t kStreamSign0 = 1;  // S₁ (S₂, S₃ follow as 2, 3)
constexpr uint64_t kStreamPerm = 10;
constexpr uint64_t kStreamDense = 11;

void FwhtPortable(float* x, size_t n) {
  for (size_t h = 1; h < n; h <<= 1) {
    for (size_t i = 0; i < n; i += 2 * h) {
      float* a = x + i;
      float* b = x + i + h;
      for (size_t j = 0; j < h; ++j) {
        const float u = a[j];
        const float v = b[j];
        a[j] = u + v;
        b[j] = u - v;
      }
    }
  }
}

// The fast path keeps blocks of 8 registers live across three butterfly stages (radix 8),
// so each pass over the array does three stages. Stages h = 1, 2, 4 run inside each 8-lane
// register. Lane values are computed with exactly the reference's operations, stage by
// stage: u + v for the lower partner (v + u is the same IEEE value), u − v for the upper.
__attribute__((target("avx2"), always_inline)) inline __m256 InRegisterStages(__m256 v) {
  // Per stage: p = partner lanes; lower lanes get p + v, upper lanes p + (−v) = p − v:
  // the reference's u + v and u − v exactly (negation is exact, IEEE + commutes).
  const __m256 n1 = _mm256_castsi256_ps(_mm256_setr_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN));
  const __m256 n2 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MIN));
  const __m256 n4 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, 0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN));
  v = _mm256_add_ps(_mm256_permute_ps(v, 0xB1), _mm256_xor_ps(v, n1));  // [1,0,3,2]
  v = _mm256_add_ps(_mm256_permute_ps(v, 0x4E), _mm256_xor_ps(v, n2));  // [2,3,0,1]
  return _mm256_add_ps(_mm256_permute2f128_ps(v, v, 0x01), _mm256_xor_ps(v, n4));
}

__attribute__((target("avx2"), always_inline)) inline void Butterfly(__m256& a, __m256& b) {
  const __m256 u = a;
  a = _mm256_add_ps(u, b);
  b = _mm256_sub_ps(u, b);
}

// kLog2 stages h = s, 2s, …, 2^{kLog2−1}·s on every block of 2^kLog2·s floats (s ≥ 8),
// reading `in` and writing `x` (in == x allowed), with 2^kLog2 registers live. With
// `first`, each loaded vector is multiplied by `scale` (if not null) and goes through the
// in-register stages h = 1, 2, 4 first (then s must be 8).
template <int kLog2>
__attribute__((target("avx2"))) void RadixPass(const float* in, const float* scale, float* x,
                                               size_t n, size_t s, bool first) {
  constexpr int kR = 1 << kLog2;
  for (size_t base = 0; base < n; base += kR * s) {
    for (size_t j = 0; j < s; j += 8) {
      float* p = x + base + j;
      const float* q = in + base + j;
      __m256 v[kR];
#pragma GCC unroll 16
      for (int t = 0; t < kR; ++t) {
        v[t] = _mm256_loadu_ps(q + t * s);
        if (scale != nullptr) v[t] = _mm256_mul_ps(v[t], _mm256_loadu_ps(scale + base + j + t * s));
        if (first) v[t] = InRegisterStages(v[t]);
      }
#pragma GCC unroll 16
      for (int h = 1; h < kR; h <<= 1) {
        // The kR/2 butterflies of stage h: pairs (u, u + h) with bit h of u clear.
#pragma GCC unroll 16
        for (int i = 0; i < kR / 2; ++i) {
          const int u = (i / h) * 2 * h + i % h;
          Butterfly(v[u], v[u + h]);
        }
      }
#pragma GCC unroll 16
      for (int t = 0; t < kR; ++t) _mm256_storeu_ps(p + t * s, v[t]);
    }
  }
}

// Runs the remaining stages h = s..n/2 with as few passes as possible (radix 16 / 8 / 4 / 2).
__attribute__((target("avx2"))) void RemainingStages(float* x, size_t n, size_t s) {
  while (s < n) {
    const size_t left = static_cast<size_t>(std::countr_zero(n / s));
    if (left == 4 || left == 8) {  // 4 = one radix-16 pass; 8 = two of them
      RadixPass<4>(x, nullptr, x, n, s, false);
      s *= 16;
    } else if (left >= 3) {
      RadixPass<3>(x, nullptr, x, n, s, false);
      s *= 8;
    } else if (left == 2) {
      RadixPass<2>(x, nullptr, x, n, s, false);
      s *= 4;
    } else {
      RadixPass<1>(x, nullptr, x, n, s, false);
      s *= 2;
    }
  }
}

// x = H (scale ⊙ in) (scale may be null; in may equal x).
__attribute__((target("avx2"))) void FwhtScaledAvx2(const float* in, const float* scale, float* x,
                                                    size_t n) {
  if (n >= 64) {
    RadixPass<3>(in, scale, x, n, 8, /*first=*/true);
    RemainingStages(x, n, 64);
    return;
  }
  for (size_t i = 0; i < n; i += 8) {
    __m256 v = _mm256_loadu_ps(in + i);
    if (scale != nullptr) v = _mm256_mul_ps(v, _mm256_loadu_ps(scale + i));
    _mm256_storeu_ps(x + i, InRegisterStages(v));
  }
  RemainingStages(x, n, 8);
}

void FwhtAvx2(float* x, size_t n) { FwhtScaledAvx2(x, nullptr, x, n); }

// ---------------------------------------------------------------------------------------
// AVX-512 (F + BW): the same butterflies on 16-lane registers. Stages h = 1, 2, 4, 8 run
// inside each register (lower lanes p + v, upper lanes p + (−v): the reference's u + v and
// u − v exactly), the rest as radix passes with up to 16 registers live.
// GCC 12's avx512fintrin.h seeds permutes and gathers with _mm512_undefined_ps(), which
// -Wmaybe-uninitialized misreports once inlined; the values are fully defined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512 Xor512(__m512 a, __m512i m) {
  return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), m));
}

__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512 InRegisterStages512(__m512 v) {
  const __m512i n1 = _mm512_set_epi32(INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0,
                                      INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0);
  const __m512i n2 = _mm512_set_epi32(INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MIN, 0, 0,
                                      INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MIN, 0, 0);
  const __m512i n4 = _mm512_set_epi32(INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, 0, 0, 0, 0,
                                      INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, 0, 0, 0, 0);
  const __m512i n8 = _mm512_set_epi32(INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN,
                                      INT32_MIN, INT32_MIN, INT32_MIN, 0, 0, 0, 0, 0, 0, 0, 0);
  v = _mm512_add_ps(_mm512_permute_ps(v, 0xB1), Xor512(v, n1));          // lanes [1,0,3,2]
  v = _mm512_add_ps(_mm512_permute_ps(v, 0x4E), Xor512(v, n2));          // lanes [2,3,0,1]
  v = _mm512_add_ps(_mm512_shuffle_f32x4(v, v, 0xB1), Xor512(v, n4));    // 128-bit [1,0,3,2]
  return _mm512_add_ps(_mm512_shuffle_f32x4(v, v, 0x4E), Xor512(v, n8));  // 128-bit [2,3,0,1]
}

template <int kLog2>
__attribute__((target("avx512f,avx512bw"))) void RadixPass512(const float* in, const float* scale,
                                                              float* x, size_t n, size_t s,
                                                              bool first) {
  constexpr int kR = 1 << kLog2;
  for (size_t base = 0; base < n; base += kR * s) {
    for (size_t j = 0; j < s; j += 16) {
      float* p = x + base + j;
      const float* q = in + base + j;
      __m512 v[kR];
#pragma GCC unroll 16
      for (int t = 0; t < kR; ++t) {
        v[t] = _mm512_loadu_ps(q + t * s);
        if (scale != nullptr) v[t] = _mm512_mul_ps(v[t], _mm512_loadu_ps(scale + base + j + t * s));
        if (first) v[t] = InRegisterStages512(v[t]);
      }
#pragma GCC unroll 16
      for (int h = 1; h < kR; h <<= 1) {
#pragma GCC unroll 16
        for (int i = 0; i < kR / 2; ++i) {
          const int u = (i / h) * 2 * h + i % h;
          const __m512 a = v[u];
          v[u] = _mm512_add_ps(a, v[u + h]);
          v[u + h] = _mm512_sub_ps(a, v[u + h]);
        }
      }
#pragma GCC unroll 16
      for (int t = 0; t < kR; ++t) _mm512_storeu_ps(p + t * s, v[t]);
    }
  }
}

// x = H (scale ⊙ in) for n ≥ 128 (scale may be null; in may equal x).
__attribute__((target("avx512f,avx512bw"))) void FwhtScaledAvx512(const float* in, const float* scale,
                                                                  float* x, size_t n) {
  RadixPass512<3>(in, scale, x, n, 16, /*first=*/true);  // stages 1..64
  size_t s = 128;
  while (s < n) {
    const size_t left = static_cast<size_t>(std::countr_zero(n / s));
    if (left == 4 || left == 8) {
      RadixPass512<4>(x, nullptr, x, n, s, false);
      s *= 16;
    } else if (left >= 3) {
      RadixPass512<3>(x, nullptr, x, n, s, false);
      s *= 8;
    } else if (left == 2) {
      RadixPass512<2>(x, nullptr, x, n, s, false);
      s *= 4;
    } else {
      RadixPass512<1>(x, nullptr, x, n, s, false);
      s *= 2;
    }
  }
}

// acc[i] += y[perm[i]], 16 lanes.
__attribute__((target("avx512f,avx512bw"))) void GatherAddAvx512(const float* y, const uint32_t* perm,
                                                                 float* acc, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __m512i idx = _mm512_loadu_si512(perm + i);
    const __m512 g = _mm512_i32gather_ps(idx, y, 4);
    _mm512_storeu_ps(acc + i, _mm512_add_ps(_mm512_loadu_ps(acc + i), g));
  }
}

// y[i] = x[perm[i]], 16 lanes.
__attribute__((target("avx512f,avx512bw"))) void GatherAvx512(const float* x, const uint32_t* perm,
                                                              float* y, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __m512i idx = _mm512_loadu_si512(perm + i);
    _mm512_storeu_ps(y + i, _mm512_i32gather_ps(idx, x, 4));
  }
}

#pragma GCC diagnostic pop

bool HasAvx512() {
  static const bool avx512 = GetCpuFeatures().avx512;
  return avx512;
}

// acc[i] += y[perm[i]].
__attribute__((target("avx2"))) void GatherAddAvx2(const float* y, const uint32_t* perm,
                                                   float* acc, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(perm + i));
    const __m256 g = _mm256_i32gather_ps(y, idx, 4);
    _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), g));
  }
}

bool HasAvx2() {
  static const bool avx2 = GetCpuFeatures().avx2_fma;
  return avx2;
}

// x = H (scale ⊙ in), same bits on every path.
void FwhtScaled(const float* in, const float* scale, float* x, size_t n) {
  if (n >= 128 && HasAvx512()) {
    FwhtScaledAvx512(in, scale, x, n);
    return;
  }
  if (n >= 8 && HasAvx2()) {
    FwhtScaledAvx2(in, scale, x, n);
    return;
  }
  for (size_t i = 0; i < n; ++i) x[i] = in[i] * scale[i];
  FwhtPortable(x, n);
}

// y[i] = sign[i] · x[perm[i]] (sign may be null: plain gather). x and y must not alias.
__attribute__((target("avx2"))) void GatherAvx2(const float* x, const uint32_t* perm,
                                                const float* sign, float* y, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(perm + i));
    __m256 g = _mm256_i32gather_ps(x, idx, 4);
    if (sign != nullptr) g = _mm256_mul_ps(g, _mm256_loadu_ps(sign + i));
    _mm256_storeu_ps(y + i, g);
  }
}

void Gather(const float* x, const std::vector<uint32_t>& perm, const float* sign, float* y,
            size_t n) {
  if (sign == nullptr && n >= 16 && HasAvx512()) {
    GatherAvx512(x, perm.data(), y, n);
    return;
  }
  if (n >= 8 && HasAvx2()) {
    GatherAvx2(x, perm.data(), sign, y, n);
    return;
  }
  for (size_t i = 0; i < n; ++i) y[i] = sign != nullptr ? sign[i] * x[perm[i]] : x[perm[i]];
}

void GatherAdd(const float* y, const std::vector<uint32_t>& perm, float* acc, size_t n) {
  if (n >= 16 && HasAvx512()) {
    GatherAddAvx512(y, perm.data(), acc, n);
    return;
  }
  if (n >= 8 && HasAvx2()) {
    GatherAddAvx2(y, perm.data(), acc, n);
    return;
  }
  for (size_t i = 0; i < n; ++i) acc[i] += y[perm[i]];
}

using FwhtFn = void (*)(float*, size_t);

void FwhtAvx512OrAvx2(float* x, size_t n) {
  if (n >= 128) {
    FwhtScaledAvx512(x, nullptr, x, n);
  } else {
    FwhtAvx2(x, n);
  }
}

FwhtFn ChooseFwht() {
  const CpuFeatures& f = GetCpuFeatures();
  if (f.avx512 && f.avx2_fma) return FwhtAvx512OrAvx2;
  return f.avx2_fma ? FwhtAvx2 : FwhtPortable;
}


}  // namespace

void FwhtReference(float* x, size_t n) {
  for (size_t h = 1; h < n; h *= 2) {
    for (size_t i = 0; i < n; i += 2 * h) {
      for (size_t j = i; j < i + h; ++j) {
        const float u = x[j];
        const float v = x[j + h];
        x[j] = u + v;
        x[j + h] = u - v;
      }
    }
  }
}

void Fwht(float* x, size_t n) {
  static const FwhtFn fn = ChooseFwht();
  if (n < 8) {
    FwhtPortable(x, n);
    return;
  }
  fn(x, n);
}

void RandomSigns(uint64_t seed, size_t n, float* sign) {
  Rng rng(seed);
  for (size_t w = 0; w < n; w += 64) {
    const uint64_t u = rng.NextU64();
    const size_t m = std::min<size_t>(64, n - w);
    for (size_t b = 0; b < m; ++b) sign[w + b] = ((u >> b) & 1) ? 1.0f : -1.0f;
  }
}

std::vector<uint32_t> RandomPermutation(uint64_t seed, size_t n) {
  std::vector<uint32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint32_t>(i);
  Rng rng(seed);
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.UniformInt(i));
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

std::unique_ptr<OrthoOp> OrthoOp::Create(OpKind kind, size_t dim, uint64_t seed) {
  std::unique_ptr<OrthoOp> op(new OrthoOp(kind, dim));
  switch (kind) {
    case OpKind::kSrht: {
      op->signs_.resize(3 * dim);
      for (int r = 0; r < 3; ++r) {
        RandomSigns(DeriveSeed(seed, kStreamSign0 + r, 0), dim, op->signs_.data() + r * dim);
      }
      // D^{-3/2} folded into S₃ (exact for D a power of 4).
      const float scale = static_cast<float>(1.0 / (static_cast<double>(dim) *
                                                    std::sqrt(static_cast<double>(dim))));
      op->srht_s3_scaled_.assign(op->signs_.begin() + 2 * dim, op->signs_.end());
      for (float& s : op->srht_s3_scaled_) s *= scale;
      op->perm_ = RandomPermutation(DeriveSeed(seed, kStreamPerm, 0), dim);
      break;
    }
    case OpKind::kSignedPerm:
      op->signs_.resize(dim);
      RandomSigns(DeriveSeed(seed, kStreamSign0, 0), dim, op->signs_.data());
      op->perm_ = RandomPermutation(DeriveSeed(seed, kStreamPerm, 0), dim);
      break;
    case OpKind::kDiagonal:
      op->signs_.resize(dim);
      RandomSigns(DeriveSeed(seed, kStreamSign0, 0), dim, op->signs_.data());
      break;
    case OpKind::kDenseHaar: {
      const Eigen::Index d = static_cast<Eigen::Index>(dim);
      Eigen::MatrixXd a(d, d);
      Rng rng(DeriveSeed(seed, kStreamDense, 0));
      for (Eigen::Index i = 0; i < d; ++i) {
        for (Eigen::Index j = 0; j < d; ++j) a(i, j) = rng.Normal();
      }
      Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
      Eigen::MatrixXd q = qr.householderQ();
      const Eigen::MatrixXd& r = qr.matrixQR();
      for (Eigen::Index j = 0; j < d; ++j) {
        if (r(j, j) < 0) q.col(j) = -q.col(j);
      }
      op->dense_.resize(dim * dim);
      for (Eigen::Index i = 0; i < d; ++i) {
        for (Eigen::Index j = 0; j < d; ++j) op->dense_[static_cast<size_t>(i * d + j)] = q(i, j);
      }
      break;
    }
  }
  return op;
}

size_t OrthoOp::bytes() const {
  return sizeof(*this) + signs_.size() * sizeof(float) + srht_s3_scaled_.size() * sizeof(float) +
         perm_.size() * sizeof(uint32_t) + dense_.size() * sizeof(double);
}

void OrthoOp::Apply(const float* x, float* y, float* scratch) const {
  const size_t n = dim_;
  switch (kind_) {
    case OpKind::kSrht:
      FwhtScaled(x, signs_.data(), scratch, n);
      FwhtScaled(scratch, signs_.data() + n, scratch, n);
      FwhtScaled(scratch, srht_s3_scaled_.data(), scratch, n);
      Gather(scratch, perm_, nullptr, y, n);
      return;
    case OpKind::kSignedPerm:
      std::memcpy(scratch, x, n * sizeof(float));
      Gather(scratch, perm_, signs_.data(), y, n);
      return;
    case OpKind::kDiagonal:
      for (size_t i = 0; i < n; ++i) y[i] = signs_[i] * x[i];
      return;
    case OpKind::kDenseHaar:
      std::memcpy(scratch, x, n * sizeof(float));
      for (size_t i = 0; i < n; ++i) {
        const double* row = dense_.data() + i * n;
        double s = 0;
        for (size_t j = 0; j < n; ++j) s += row[j] * scratch[j];
        y[i] = static_cast<float>(s);
      }
      return;
  }
}

void OrthoOp::ApplyAdd(const float* x, float* acc, float* scratch) const {
  const size_t n = dim_;
  switch (kind_) {
    case OpKind::kSrht:
      FwhtScaled(x, signs_.data(), scratch, n);
      FwhtScaled(scratch, signs_.data() + n, scratch, n);
      FwhtScaled(scratch, srht_s3_scaled_.data(), scratch, n);
      GatherAdd(scratch, perm_, acc, n);
      return;
    case OpKind::kSignedPerm:
      for (size_t i = 0; i < n; ++i) acc[i] += signs_[i] * x[perm_[i]];
      return;
    case OpKind::kDiagonal:
      for (size_t i = 0; i < n; ++i) acc[i] += signs_[i] * x[i];
      return;
    case OpKind::kDenseHaar:
      for (size_t i = 0; i < n; ++i) {
        const double* row = dense_.data() + i * n;
        double s = 0;
        for (size_t j = 0; j < n; ++j) s += row[j] * x[j];
        acc[i] += static_cast<float>(s);
      }
      return;
  }
}

void OrthoOp::ApplyTranspose(const float* x, float* y, float* scratch) const {
  const size_t n = dim_;
  switch (kind_) {
    case OpKind::kSrht:
      for (size_t i = 0; i < n; ++i) scratch[perm_[i]] = x[i];
      Fwht(scratch, n);
      FwhtScaled(scratch, srht_s3_scaled_.data(), scratch, n);
      FwhtScaled(scratch, signs_.data() + n, scratch, n);
      for (size_t i = 0; i < n; ++i) y[i] = scratch[i] * signs_[i];
      return;
    case OpKind::kSignedPerm:
      for (size_t i = 0; i < n; ++i) scratch[perm_[i]] = signs_[i] * x[i];
      std::memcpy(y, scratch, n * sizeof(float));
      return;
    case OpKind::kDiagonal:
      for (size_t i = 0; i < n; ++i) y[i] = signs_[i] * x[i];
      return;
    case OpKind::kDenseHaar: {
      std::vector<double> s(n, 0.0);
      for (size_t i = 0; i < n; ++i) {
        const double* row = dense_.data() + i * n;
        const double xi = x[i];
        for (size_t j = 0; j < n; ++j) s[j] += row[j] * xi;
      }
      for (size_t j = 0; j < n; ++j) y[j] = static_cast<float>(s[j]);
      return;
    }
  }
}

}  // namespace chamferdb::mbat
