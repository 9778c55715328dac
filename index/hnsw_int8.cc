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
#include "common/parallel_for.h"
#include "common/rng.h"
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

// One query against n rows: out[k] = Σ_{j<u} qb_j · row_k[j] with qb = query codes qc XOR 0x80
// (= code + 128, unsigned; formed in registers) and signed rows base + ids[k]·stride; the caller subtracts
// 128·Σ_{j<u} row_k[j]. Four rows per pass share each query load. Tails are masked
// (zeroed) loads of both operands, so bytes past u contribute nothing. Per int32 lane each
// step adds at most 4·255·127: no overflow for u ≤ 131,072.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void BiasedDotManyVnni(const int8_t* qc, const int8_t* base,
                                                                                size_t stride, const int32_t* ids,
                                                                                size_t n, size_t u, int32_t* out) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  const size_t full = u / 64 * 64;
  const __mmask64 tail = u % 64 != 0 ? (__mmask64{1} << (u % 64)) - 1 : 0;
  size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const int8_t* r0 = base + static_cast<size_t>(ids[k]) * stride;
    const int8_t* r1 = base + static_cast<size_t>(ids[k + 1]) * stride;
    const int8_t* r2 = base + static_cast<size_t>(ids[k + 2]) * stride;
    const int8_t* r3 = base + static_cast<size_t>(ids[k + 3]) * stride;
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    __m512i a2 = _mm512_setzero_si512(), a3 = _mm512_setzero_si512();
    for (size_t j = 0; j < full; j += 64) {
      const __m512i q = _mm512_xor_si512(_mm512_loadu_si512(qc + j), bias);
      a0 = _mm512_dpbusd_epi32(a0, q, _mm512_loadu_si512(r0 + j));
      a1 = _mm512_dpbusd_epi32(a1, q, _mm512_loadu_si512(r1 + j));
      a2 = _mm512_dpbusd_epi32(a2, q, _mm512_loadu_si512(r2 + j));
      a3 = _mm512_dpbusd_epi32(a3, q, _mm512_loadu_si512(r3 + j));
    }
    if (tail != 0) {
      const __m512i q = _mm512_maskz_mov_epi8(tail, _mm512_xor_si512(_mm512_maskz_loadu_epi8(tail, qc + full), bias));
      a0 = _mm512_dpbusd_epi32(a0, q, _mm512_maskz_loadu_epi8(tail, r0 + full));
      a1 = _mm512_dpbusd_epi32(a1, q, _mm512_maskz_loadu_epi8(tail, r1 + full));
      a2 = _mm512_dpbusd_epi32(a2, q, _mm512_maskz_loadu_epi8(tail, r2 + full));
      a3 = _mm512_dpbusd_epi32(a3, q, _mm512_maskz_loadu_epi8(tail, r3 + full));
    }
    out[k] = _mm512_reduce_add_epi32(a0);
    out[k + 1] = _mm512_reduce_add_epi32(a1);
    out[k + 2] = _mm512_reduce_add_epi32(a2);
    out[k + 3] = _mm512_reduce_add_epi32(a3);
  }
  for (; k < n; ++k) {
    const int8_t* r = base + static_cast<size_t>(ids[k]) * stride;
    __m512i a = _mm512_setzero_si512();
    for (size_t j = 0; j < full; j += 64) {
      a = _mm512_dpbusd_epi32(a, _mm512_xor_si512(_mm512_loadu_si512(qc + j), bias), _mm512_loadu_si512(r + j));
    }
    if (tail != 0) {
      const __m512i q = _mm512_maskz_mov_epi8(tail, _mm512_xor_si512(_mm512_maskz_loadu_epi8(tail, qc + full), bias));
      a = _mm512_dpbusd_epi32(a, q, _mm512_maskz_loadu_epi8(tail, r + full));
    }
    out[k] = _mm512_reduce_add_epi32(a);
  }
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
  graph_sums_.resize(old + m);
  int8::QuantizeRows(x, m, dim, codes_ + old * dim, scales_.data() + old);
  for (size_t i = old; i < old + m; ++i) {
    const int8_t* row = codes_ + i * dim;
    int32_t sum = 0;
    for (size_t j = 0; j < graph_dims_; ++j) sum += row[j];
    graph_sums_[i] = sum;
  }
  ntotal += n;
}

void Int8IpStorage::reset() {
  if (codes_ != nullptr) munmap(codes_, codes_capacity_);
  codes_ = nullptr;
  codes_capacity_ = 0;
  scales_.clear();
  graph_sums_.clear();
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

float GraphSimilarity(const Int8IpStorage& s, int64_t a, int64_t b) {
  const size_t d = static_cast<size_t>(s.d);
  const int32_t dot = DotCodesI8(s.codes() + static_cast<size_t>(a) * d, s.codes() + static_cast<size_t>(b) * d,
                                 s.graph_dims());
  return static_cast<float>(dot) * ((s.scales()[a] * kInv127) * (s.scales()[b] * kInv127));
}

namespace {

using Cand = std::pair<float, int32_t>;  // (graph similarity, row)

// Decreasing similarity, ties by row: the order neighbour candidates are considered in.
bool Better(const Cand& a, const Cand& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; }

// Graph similarities of one base row against many rows (GraphSimilarity's values exactly).
class GraphScorer {
 public:
  explicit GraphScorer(const Int8IpStorage& s)
      : s_(s),
        d_(static_cast<size_t>(s.d)),
        u_(s.graph_dims()),
        vnni_(GetCpuFeatures().avx512 && GetCpuFeatures().avx512_vnni) {}

  void SetRow(int32_t row) {
    row_ = row;
    qc_ = s_.codes() + static_cast<size_t>(row) * d_;
    qscale_ = s_.scales()[row] * kInv127;
  }
  int32_t row() const { return row_; }

  // Starts loading the graph prefix of each row (one expanded node's neighbours are
  // scored together, so their cache misses overlap).
  void Prefetch(const int32_t* ids, size_t n) const {
    for (size_t k = 0; k < n; ++k) {
      const int8_t* r = s_.codes() + static_cast<size_t>(ids[k]) * d_;
      for (size_t off = 0; off < u_; off += 64) __builtin_prefetch(r + off);
      __builtin_prefetch(r + u_ - 1);
    }
  }

  // out[k] = GraphSimilarity(row(), ids[k]).
  void Score(const int32_t* ids, size_t n, float* out) {
    const int8_t* codes = s_.codes();
    const float* scales = s_.scales();
    if (vnni_) {
      if (dots_.size() < n) dots_.resize(n);
      BiasedDotManyVnni(qc_, codes, d_, ids, n, u_, dots_.data());
      const int32_t* sums = s_.graph_sums();
      for (size_t k = 0; k < n; ++k) {
        const int32_t dot = dots_[k] - 128 * sums[ids[k]];
        out[k] = static_cast<float>(dot) * (qscale_ * (scales[ids[k]] * kInv127));
      }
      return;
    }
    for (size_t k = 0; k < n; ++k) {
      const int32_t dot = DotCodesI8(qc_, codes + static_cast<size_t>(ids[k]) * d_, u_);
      out[k] = static_cast<float>(dot) * (qscale_ * (scales[ids[k]] * kInv127));
    }
  }

 private:
  const Int8IpStorage& s_;
  size_t d_;
  size_t u_;
  bool vnni_;
  std::vector<int32_t> dots_;
  const int8_t* qc_ = nullptr;
  float qscale_ = 0.0f;  // c_row / 127
  int32_t row_ = -1;
};

// SelectNeighbors with a caller's scorer; *kept must not alias cands.
void Heuristic(GraphScorer& sc, const std::vector<Cand>& cands, size_t max_keep, std::vector<Cand>* kept,
               std::vector<int32_t>* kept_ids) {
  kept->clear();
  kept_ids->clear();
  if (cands.size() < max_keep) {
    *kept = cands;
    return;
  }
  constexpr size_t kGroup = 4;  // kept rows scored per kernel call (stops at the first closer one)
  float sims[kGroup];
  for (const Cand& c : cands) {
    bool good = true;
    if (!kept_ids->empty()) {
      sc.SetRow(c.second);
      for (size_t g = 0; g < kept_ids->size() && good; g += kGroup) {
        const size_t m = std::min(kGroup, kept_ids->size() - g);
        sc.Score(kept_ids->data() + g, m, sims);
        for (size_t k = 0; k < m; ++k) good = good && !(sims[k] > c.first);
      }
    }
    if (good) {
      kept->push_back(c);
      kept_ids->push_back(c.second);
      if (kept->size() >= max_keep) return;
    }
  }
}

}  // namespace

std::vector<std::pair<float, int32_t>> SelectNeighbors(const Int8IpStorage& s,
                                                       const std::vector<std::pair<float, int32_t>>& cands,
                                                       size_t max_keep) {
  GraphScorer sc(s);
  std::vector<Cand> kept;
  std::vector<int32_t> ids;
  Heuristic(sc, cands, max_keep, &kept, &ids);
  return kept;
}

// Per-thread state of the graph builder.
struct Int8Hnsw::Scratch {
  explicit Scratch(const Int8IpStorage& s) : sc(s) {}
  GraphScorer sc;
  std::vector<uint8_t> visit;  // visit[row] == epoch: seen in this search (1 byte: stays in L2)
  uint8_t epoch = 0;
  std::vector<Cand> frontier, results, sorted, kept, pruned, links;
  std::vector<int32_t> ids, kept_ids;
  std::vector<float> sims;
};

namespace {

constexpr size_t kLockStripes = 4096;

}  // namespace

Int8Hnsw::Int8Hnsw(Int8IpStorage* storage, int M)
    : faiss::IndexHNSW(storage, M), locks_(new std::mutex[kLockStripes]) {
  own_fields = true;
}

Int8Hnsw::~Int8Hnsw() = default;

void Int8Hnsw::add(idx_t n, const float* x) {
  FAISS_THROW_IF_NOT(is_trained);
  auto* s = static_cast<Int8IpStorage*>(storage);
  const idx_t n0 = ntotal;
  s->add(n, x);
  ntotal = s->ntotal;
  if (n > 0) InsertBatch(n0, n);
}

std::mutex& Int8Hnsw::Lock(int32_t row) const { return locks_[static_cast<size_t>(row) % kLockStripes]; }


namespace {

// Advises the 2 MiB-aligned part of [p, p + bytes) for transparent huge pages (advisory).
void AdviseHugePages(void* p, size_t bytes) {
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(uintptr_t{kHugePage} - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace

void Int8Hnsw::InsertBatch(int64_t n0, int64_t n) {
  faiss::HNSW& g = hnsw;
  // The neighbour lists are read at random during every insert (25 MB at 100k points): with
  // 4 KiB pages nearly every list read also missed the TLB. Grow the vector ourselves, with
  // room for this batch (bound: levels 0..4 for every point; a rarer higher level just makes
  // FAISS's resize reallocate as before) in memory advised for huge pages before first use.
  const size_t top = std::min<size_t>(5, g.cum_nneighbor_per_level.size() - 1);
  const size_t need = g.neighbors.size() + static_cast<size_t>(n) * static_cast<size_t>(g.cum_nneighbor_per_level[top]);
  if (g.neighbors.capacity() < need) {
    std::vector<faiss::HNSW::storage_idx_t> fresh;
    fresh.reserve(std::max(need, 2 * g.neighbors.capacity()));
    AdviseHugePages(fresh.data(), fresh.capacity() * sizeof(faiss::HNSW::storage_idx_t));
    fresh.insert(fresh.end(), g.neighbors.begin(), g.neighbors.end());
    g.neighbors.swap(fresh);
  }
  g.prepare_level_tab(static_cast<size_t>(n), g.levels.size() == static_cast<size_t>(ntotal));
  // Points grouped by level, highest first (as FAISS's hnsw_add_vertices), each group in a
  // fixed pseudo-random order.
  std::vector<std::vector<int32_t>> by_level;
  for (int64_t i = n0; i < n0 + n; ++i) {
    const size_t lv = static_cast<size_t>(g.levels[static_cast<size_t>(i)] - 1);
    if (by_level.size() <= lv) by_level.resize(lv + 1);
    by_level[lv].push_back(static_cast<int32_t>(i));
  }
  Rng rng(789);
  const int threads = build_threads_ > 0 ? build_threads_ : BulkThreads();
  while (scratch_.size() < static_cast<size_t>(threads)) {
    scratch_.push_back(std::make_unique<Scratch>(*static_cast<const Int8IpStorage*>(storage)));
  }
  for (size_t lv = by_level.size(); lv-- > 0;) {
    std::vector<int32_t>& pts = by_level[lv];
    for (size_t j = 0; j + 1 < pts.size(); ++j) std::swap(pts[j], pts[j + rng.UniformInt(pts.size() - j)]);
    const int team = pts.size() > 100 ? threads : 1;
    ParallelFor(static_cast<int64_t>(pts.size()), team, [&](int64_t k) {
      InsertPoint(pts[static_cast<size_t>(k)], static_cast<int>(lv), *scratch_[static_cast<size_t>(omp_get_thread_num())]);
    });
  }
}

Cand Int8Hnsw::Greedy(Scratch& t, Cand nearest, int level) const {
  const faiss::HNSW& g = hnsw;
  for (;;) {
    const int32_t prev = nearest.second;
    size_t begin, end;
    NeighborRange(prev, level, &begin, &end);
    t.ids.clear();
    for (size_t i = begin; i < end; ++i) {
      const int32_t v = g.neighbors[i];
      if (v < 0) break;
      t.ids.push_back(v);
    }
    t.sims.resize(t.ids.size());
    t.sc.Prefetch(t.ids.data(), t.ids.size());
    t.sc.Score(t.ids.data(), t.ids.size(), t.sims.data());
    for (size_t k = 0; k < t.ids.size(); ++k) {
      if (t.sims[k] > nearest.first) nearest = {t.sims[k], t.ids[k]};
    }
    if (nearest.second == prev) return nearest;
  }
}

void Int8Hnsw::SearchLayer(Scratch& t, Cand entry, int level, size_t ef) const {
  const faiss::HNSW& g = hnsw;
  if (t.visit.size() < static_cast<size_t>(ntotal)) t.visit.resize(static_cast<size_t>(ntotal), 0);
  if (++t.epoch == 0) {
    std::fill(t.visit.begin(), t.visit.end(), 0);
    t.epoch = 1;
  }
  // frontier: max-heap by similarity; results: min-heap (worst on top), at most ef.
  auto max_first = [](const Cand& a, const Cand& b) { return a.first < b.first; };
  auto min_first = [](const Cand& a, const Cand& b) { return a.first > b.first; };
  t.frontier.assign(1, entry);
  t.results.assign(1, entry);
  t.visit[static_cast<size_t>(entry.second)] = t.epoch;
  while (!t.frontier.empty()) {
    const Cand c = t.frontier.front();
    if (c.first < t.results.front().first) break;
    std::pop_heap(t.frontier.begin(), t.frontier.end(), max_first);
    t.frontier.pop_back();
    if (!t.frontier.empty()) {  // the next node to expand, most likely: start loading its list
      size_t b, e;
      NeighborRange(t.frontier.front().second, level, &b, &e);
      for (size_t i = b; i < e; i += 16) __builtin_prefetch(&g.neighbors[i]);
    }
    size_t begin, end;
    NeighborRange(c.second, level, &begin, &end);
    t.ids.clear();
    for (size_t i = begin; i < end; ++i) {
      const int32_t v = g.neighbors[i];
      if (v < 0) break;
      if (t.visit[static_cast<size_t>(v)] == t.epoch) continue;
      t.visit[static_cast<size_t>(v)] = t.epoch;
      t.ids.push_back(v);
    }
    if (t.ids.empty()) continue;
    t.sims.resize(t.ids.size());
    t.sc.Prefetch(t.ids.data(), t.ids.size());
    t.sc.Score(t.ids.data(), t.ids.size(), t.sims.data());
    for (size_t k = 0; k < t.ids.size(); ++k) {
      const float sv = t.sims[k];
      if (t.results.size() < ef || t.results.front().first < sv) {
        t.results.push_back({sv, t.ids[k]});
        std::push_heap(t.results.begin(), t.results.end(), min_first);
        t.frontier.push_back({sv, t.ids[k]});
        std::push_heap(t.frontier.begin(), t.frontier.end(), max_first);
        if (t.results.size() > ef) {
          std::pop_heap(t.results.begin(), t.results.end(), min_first);
          t.results.pop_back();
        }
      }
    }
  }
}

void Int8Hnsw::AddLink(Scratch& t, int32_t src, int32_t dest, float sim, int level) {
  faiss::HNSW& g = hnsw;
  size_t begin, end;
  NeighborRange(src, level, &begin, &end);
  if (g.neighbors[end - 1] == -1) {
    size_t i = end;
    while (i > begin && g.neighbors[i - 1] == -1) --i;
    g.neighbors[i] = dest;
    return;
  }
  // Full: the new link and the old ones compete under the heuristic.
  t.ids.assign(g.neighbors.begin() + static_cast<std::ptrdiff_t>(begin),
               g.neighbors.begin() + static_cast<std::ptrdiff_t>(end));
  t.sims.resize(t.ids.size());
  t.sc.SetRow(src);
  t.sc.Prefetch(t.ids.data(), t.ids.size());
  t.sc.Score(t.ids.data(), t.ids.size(), t.sims.data());
  t.sorted.clear();
  t.sorted.push_back({sim, dest});
  for (size_t k = 0; k < t.ids.size(); ++k) t.sorted.push_back({t.sims[k], t.ids[k]});
  std::sort(t.sorted.begin(), t.sorted.end(), Better);
  Heuristic(t.sc, t.sorted, end - begin, &t.pruned, &t.kept_ids);
  size_t i = begin;
  for (const Cand& c : t.pruned) g.neighbors[i++] = c.second;
  while (i < end) g.neighbors[i++] = -1;
}

void Int8Hnsw::InsertPoint(int32_t pt, int pt_level, Scratch& t) {
  faiss::HNSW& g = hnsw;
  int32_t entry;
  int top;
  {
    std::lock_guard<std::mutex> lock(entry_mu_);
    entry = g.entry_point;
    top = g.max_level;
    if (entry < 0) {
      g.max_level = pt_level;
      g.entry_point = pt;
      return;
    }
  }
  std::unique_lock<std::mutex> own(Lock(pt));
  t.sc.SetRow(pt);
  float s0;
  t.sc.Score(&entry, 1, &s0);
  Cand nearest{s0, entry};
  int level = top;
  for (; level > pt_level; --level) nearest = Greedy(t, nearest, level);
  for (; level >= 0; --level) {
    t.sc.SetRow(pt);
    SearchLayer(t, nearest, level, static_cast<size_t>(std::max(g.efConstruction, 1)));
    t.sorted.assign(t.results.begin(), t.results.end());
    std::sort(t.sorted.begin(), t.sorted.end(), Better);
    nearest = t.sorted.front();  // the next level's search starts from the best found here
    Heuristic(t.sc, t.sorted, static_cast<size_t>(g.nb_neighbors(level)), &t.kept, &t.kept_ids);
    // The point's own list (empty until now: nobody links to pt on this level before).
    for (const Cand& c : t.kept) {
      if (c.second != pt) AddLink(t, pt, c.second, c.first, level);
    }
    own.unlock();
    // Reverse links (AddLink reuses t.sorted, t.pruned and t.kept_ids, not t.links).
    t.links.swap(t.kept);
    for (const Cand& c : t.links) {
      if (c.second == pt) continue;
      std::lock_guard<std::mutex> other(Lock(c.second));
      AddLink(t, c.second, pt, c.first, level);
    }
    own.lock();
  }
  own.unlock();
  if (pt_level > top) {
    std::lock_guard<std::mutex> lock(entry_mu_);
    if (pt_level > g.max_level) {
      g.max_level = pt_level;
      g.entry_point = pt;
    }
  }
}

}  // namespace chamferdb
