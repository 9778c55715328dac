#include "index/hnsw_int8.h"

#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include "common/cpu_features.h"
#include "index/refine_dot.h"
#include "kernels/int8/quantize.h"

namespace chamferdb {
namespace {

int32_t DotPortable(const int8_t* a, const int8_t* b, size_t dim) {
  int32_t s = 0;
  for (size_t j = 0; j < dim; ++j) s += static_cast<int32_t>(a[j]) * static_cast<int32_t>(b[j]);
  return s;
}

__attribute__((target("avx2"))) int32_t DotAvx2(const int8_t* a, const int8_t* b, size_t dim) {
  __m256i acc = _mm256_setzero_si256();
  size_t j = 0;
  for (; j + 16 <= dim; j += 16) {
    const __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + j)));
    const __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + j)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
  }
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  int32_t out = _mm_cvtsi128_si32(s);
  for (; j < dim; ++j) out += static_cast<int32_t>(a[j]) * static_cast<int32_t>(b[j]);
  return out;
}

// GCC 12 reports its own _mm512_undefined_* placeholders inside some intrinsics as
// uninitialized when they are inlined through a target attribute (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f,avx512bw"))) int32_t DotAvx512(const int8_t* a, const int8_t* b, size_t dim) {
  __m512i acc = _mm512_setzero_si512();
  size_t j = 0;
  for (; j + 32 <= dim; j += 32) {
    const __m512i x = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + j)));
    const __m512i y = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j)));
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
  }
  int32_t out = _mm512_reduce_add_epi32(acc);
  for (; j < dim; ++j) out += static_cast<int32_t>(a[j]) * static_cast<int32_t>(b[j]);
  return out;
}

// vpdpbusd multiplies unsigned by signed bytes: with u = a XOR 0x80 = a + 128 (as unsigned),
// Σ a·b = Σ u·b − 128·Σ b, and 128·Σ b is a second vpdpbusd of the constant 0x80 bytes
// with b. Per int32 lane each step adds at most 4·255·128 in magnitude: no overflow for any
// dim allowed above. Tails use masked (zeroing) loads: zero b bytes contribute nothing.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t DotVnni(const int8_t* a, const int8_t* b,
                                                                          size_t dim) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc = _mm512_setzero_si512(), corr = _mm512_setzero_si512();
  __m512i acc2 = _mm512_setzero_si512(), corr2 = _mm512_setzero_si512();
  size_t j = 0;
  for (; j + 128 <= dim; j += 128) {
    const __m512i x0 = _mm512_loadu_si512(a + j), y0 = _mm512_loadu_si512(b + j);
    const __m512i x1 = _mm512_loadu_si512(a + j + 64), y1 = _mm512_loadu_si512(b + j + 64);
    acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(x0, bias), y0);
    corr = _mm512_dpbusd_epi32(corr, bias, y0);
    acc2 = _mm512_dpbusd_epi32(acc2, _mm512_xor_si512(x1, bias), y1);
    corr2 = _mm512_dpbusd_epi32(corr2, bias, y1);
  }
  for (; j < dim; j += 64) {
    const __mmask64 m = dim - j >= 64 ? ~__mmask64{0} : (__mmask64{1} << (dim - j)) - 1;
    const __m512i x = _mm512_maskz_loadu_epi8(m, a + j), y = _mm512_maskz_loadu_epi8(m, b + j);
    acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(x, bias), y);
    corr = _mm512_dpbusd_epi32(corr, bias, y);
  }
  return _mm512_reduce_add_epi32(_mm512_sub_epi32(_mm512_add_epi32(acc, acc2), _mm512_add_epi32(corr, corr2)));
}
#pragma GCC diagnostic pop

using DotFn = int32_t (*)(const int8_t*, const int8_t*, size_t);

DotFn Chosen() {
  static const DotFn fn = [] {
    const CpuFeatures& f = GetCpuFeatures();
    if (f.avx512 && f.avx512_vnni) return &DotVnni;
    if (f.avx512) return &DotAvx512;
    if (f.avx2_fma) return &DotAvx2;
    return &DotPortable;
  }();
  return fn;
}

constexpr float kInv127 = 1.0f / 127.0f;

// ⟨q̂, x̂_i⟩ over the first `used` coordinates, for a query quantized once (on all of its
// coordinates, so the scale is the same as the full score's) in set_query.
class Int8IpDistance final : public faiss::DistanceComputer {
 public:
  Int8IpDistance(const Int8IpStorage& s, size_t used) : s_(s), d_(static_cast<size_t>(s.d)), u_(used), q_(d_) {}
  void set_query(const float* x) override { q_scale_ = int8::QuantizeRow(x, d_, q_.data()) * kInv127 * kInv127; }
  float operator()(idx_t i) override {
    const size_t r = static_cast<size_t>(i);
    return static_cast<float>(DotCodesI8(q_.data(), s_.codes() + r * d_, u_)) * (q_scale_ * s_.scales()[r]);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    const size_t a = static_cast<size_t>(i), b = static_cast<size_t>(j);
    return static_cast<float>(DotCodesI8(s_.codes() + a * d_, s_.codes() + b * d_, u_)) *
           (s_.scales()[a] * kInv127 * kInv127 * s_.scales()[b]);
  }

 private:
  const Int8IpStorage& s_;
  size_t d_;
  size_t u_;
  std::vector<int8_t> q_;
  float q_scale_ = 0.0f;  // c_q / 127²
};

// ⟨q, x̂_i⟩ for a float query kept as is (searches): int8 rows converted to float in the
// kernel (index/refine_dot.h); stored-row pairs (symmetric_dis) as in Int8IpDistance.
class FloatQueryDistance final : public faiss::DistanceComputer {
 public:
  explicit FloatQueryDistance(const Int8IpStorage& s) : s_(s), d_(static_cast<size_t>(s.d)) {}
  void set_query(const float* x) override { q_ = x; }
  float operator()(idx_t i) override {
    const size_t r = static_cast<size_t>(i);
    return DotI8Row(q_, s_.codes() + r * d_, s_.scales()[r], d_);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    const size_t a = static_cast<size_t>(i), b = static_cast<size_t>(j);
    return static_cast<float>(DotCodesI8(s_.codes() + a * d_, s_.codes() + b * d_, d_)) *
           (s_.scales()[a] * kInv127 * kInv127 * s_.scales()[b]);
  }

 private:
  const Int8IpStorage& s_;
  size_t d_;
  const float* q_ = nullptr;
};

}  // namespace

int32_t DotCodesI8(const int8_t* a, const int8_t* b, size_t dim) { return Chosen()(a, b, dim); }

Int8IpStorage::Int8IpStorage(idx_t d, size_t graph_dims)
    : faiss::Index(d, faiss::METRIC_INNER_PRODUCT), graph_dims_(graph_dims == 0 ? static_cast<size_t>(d) : std::min<size_t>(graph_dims, static_cast<size_t>(d))) {
  FAISS_THROW_IF_NOT_MSG(d > 0 && d <= 131072, "Int8IpStorage: dimension must be in 1..131072");
}

constexpr size_t kHugePage = size_t{2} << 20;

Int8IpStorage::~Int8IpStorage() {
  if (codes_ != nullptr) munmap(codes_, codes_capacity_);
}

void Int8IpStorage::Reserve(size_t bytes) {
  if (bytes <= codes_capacity_) return;
  size_t cap = std::max(kHugePage, codes_capacity_);
  while (cap < bytes) cap *= 2;
  // Map one huge page more than needed and trim, so the kept range is 2 MiB aligned.
  const size_t span = cap + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (base + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  if (aligned > base) munmap(raw, aligned - base);
  const size_t tail = (base + span) - (aligned + cap);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + cap), tail);
  auto* fresh = reinterpret_cast<int8_t*>(aligned);
  madvise(fresh, cap, MADV_HUGEPAGE);  // advisory: without THP the storage still works
  const size_t used = static_cast<size_t>(ntotal) * static_cast<size_t>(d);
  if (used > 0) std::memcpy(fresh, codes_, used);
  if (codes_ != nullptr) munmap(codes_, codes_capacity_);
  codes_ = fresh;
  codes_capacity_ = cap;
}

void Int8IpStorage::add(idx_t n, const float* x) {
  const size_t old = static_cast<size_t>(ntotal), m = static_cast<size_t>(n), dim = static_cast<size_t>(d);
  Reserve((old + m) * dim);
  scales_.resize(old + m);
  int8::QuantizeRows(x, m, dim, codes_ + old * dim, scales_.data() + old);
  ntotal += n;
}

void Int8IpStorage::reset() {
  if (codes_ != nullptr) munmap(codes_, codes_capacity_);
  codes_ = nullptr;
  codes_capacity_ = 0;
  scales_.clear();
  ntotal = 0;
}

void Int8IpStorage::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                           const faiss::SearchParameters* params) const {
  FAISS_THROW_IF_NOT(k > 0);
  const faiss::IDSelector* sel = params != nullptr ? params->sel : nullptr;
  std::unique_ptr<faiss::DistanceComputer> owned(NewInnerProductComputer());
  faiss::DistanceComputer& dis = *owned;
  std::vector<std::pair<float, idx_t>> scored;
  for (idx_t q = 0; q < n; ++q) {
    dis.set_query(x + q * d);
    scored.clear();
    for (idx_t i = 0; i < ntotal; ++i) {
      if (sel == nullptr || sel->is_member(i)) scored.emplace_back(dis(i), i);
    }
    const size_t keep = std::min(scored.size(), static_cast<size_t>(k));
    std::partial_sort(scored.begin(), scored.begin() + keep, scored.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (idx_t j = 0; j < k; ++j) {
      const bool have = static_cast<size_t>(j) < keep;
      distances[q * k + j] = have ? scored[j].first : -std::numeric_limits<float>::infinity();
      labels[q * k + j] = have ? scored[j].second : -1;
    }
  }
}

void Int8IpStorage::reconstruct(idx_t key, float* recons) const {
  FAISS_THROW_IF_NOT_MSG(key >= 0 && key < ntotal, "Int8IpStorage::reconstruct: id out of range");
  int8::DequantizeRows(codes_ + static_cast<size_t>(key) * static_cast<size_t>(d), &scales_[key], 1,
                       static_cast<size_t>(d), recons);
}

faiss::DistanceComputer* Int8IpStorage::get_distance_computer() const {
  return new Int8IpDistance(*this, graph_dims_);
}

faiss::DistanceComputer* Int8IpStorage::NewInnerProductComputer() const {
  return new FloatQueryDistance(*this);
}

}  // namespace chamferdb
