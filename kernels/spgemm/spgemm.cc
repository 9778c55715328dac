#include "kernels/spgemm/spgemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif

namespace chamferdb::spgemm {
namespace {

constexpr int64_t kRowChunk = 64;          // rows per OpenMP work item
constexpr int64_t kWindowProducts = 1 << 16;  // SMASH window: partial products per table
// Row_hash writes rows at upper-bound offsets in one fused pass when Σ min(ub_i, n) is at
// most this many entries (12 bytes each); above it, a symbolic pass sizes C exactly first.
constexpr int64_t kFusedMaxEntries = int64_t{1} << 27;
// ... and when a sample of rows shows Σ min(ub_i, n) ≤ kFusedMaxSlack · nnz(C).
constexpr int64_t kSampleStride = 31;
constexpr double kFusedMaxSlack = 1.125;
// Look-ahead of the B-row prefetches, in nonzeros of A: row_ptr, then the row's data.
constexpr int64_t kPrefetchRowPtr = 64;
constexpr int64_t kPrefetchData = 16;

// Sizes v to n elements, asking Linux for transparent huge pages first when the buffer is
// large: the output of a big product is written once into fresh memory, and with 4 KiB
// pages its page faults cost ~20% of the whole product on ER-like inputs.
template <typename T>
void ResizeOutput(std::vector<T>& v, size_t n) {
#ifdef __linux__
  constexpr size_t kHuge = size_t{2} << 20;
  if (n * sizeof(T) >= 4 * kHuge && v.capacity() < n) {
    v.reserve(n);
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(v.data()) + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(v.data() + n)) & ~(kHuge - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // a hint
  }
#endif
  v.resize(n);
}

uint32_t HashSlot(uint32_t key, int log2_size) {
  return (key * 0x9E3779B1u) >> (32 - log2_size);
}

// Rows of B are visited in A's (random) column order: fetch ahead to hide the latency.
// always_inline: as an ordinary function GCC finds it side-effect free and deletes the call.
__attribute__((always_inline)) inline void PrefetchBRow(const int32_t* __restrict a_col, const int64_t* __restrict b_row_ptr,
                         const int32_t* __restrict b_col, const double* __restrict b_val,
                         int64_t t, int64_t nnz_a) {
  if (t + kPrefetchRowPtr < nnz_a) __builtin_prefetch(b_row_ptr + a_col[t + kPrefetchRowPtr]);
  if (t + kPrefetchData < nnz_a) {
    const int32_t k = a_col[t + kPrefetchData];
    const int64_t start = b_row_ptr[k];
    // The first 32 entries (2 lines of columns, 4 of values); longer rows stream anyway.
    const int64_t end = std::min(b_row_ptr[k + 1], start + 32);
    for (int64_t u = start; u < end; u += 16) __builtin_prefetch(b_col + u);
    for (int64_t u = start; u < end; u += 8) __builtin_prefetch(b_val + u);
  }
}

int64_t RowUb(const CsrView& a, const CsrView& b, int64_t i) {
  int64_t ub = 0;
  for (int64_t t = a.row_ptr[i]; t < a.row_ptr[i + 1]; ++t) {
    const int32_t k = a.col[t];
    ub += b.row_ptr[k + 1] - b.row_ptr[k];
  }
  return ub;
}

// Per-thread accumulator of one output row at a time: open addressing (linear probing,
// load ≤ 1/2, sized from the row's upper bound or, after a symbolic pass, its exact nnz)
// or, for rows with ub ≥ max(n/256, 128) (and every row with ub > n/4, the spec's rule), a
// dense value array with a two-level bitmap of occupied columns, emitted in column order
// by a bitmap scan instead of a sort. The first contribution to a column is stored, later
// ones added, in call order: the same arithmetic as the map reference.
class RowAccumulator {
 public:
  explicit RowAccumulator(int64_t n) : n_(n) {}

  // Accumulates row i of A·B (values only if kNumeric); returns the row's nnz. `entries`
  // bounds the row's nnz (ub, or the exact count from a symbolic pass) and sizes the table.
  template <bool kNumeric>
  int64_t Accumulate(const CsrView& a, const CsrView& b, int64_t i, int64_t ub, int64_t entries) {
    const int32_t* __restrict a_col = a.col;
    const double* __restrict a_val = a.val;
    const int64_t* __restrict b_row_ptr = b.row_ptr;
    const int32_t* __restrict b_col = b.col;
    const double* __restrict b_val = b.val;
    const int64_t nnz_a = a.row_ptr[a.rows];
    const int64_t t0 = a.row_ptr[i], t1 = a.row_ptr[i + 1];
    // Dense when the bitmap scan (n/64 words) is cheaper than sorting the row: ub ≥ n/256
    // (and ub ≥ 128, below which the L1-resident table always wins).
    dense_ = ub >= std::max<int64_t>(n_ / 256, 128) || ub > n_ / 4;
    count_ = 0;
    if (dense_) {
      if (dbits_.empty()) {
        dbits_.assign((n_ + 63) / 64, 0);
        dsummary_.assign((dbits_.size() + 63) / 64, 0);
        dval_.assign(n_, 0.0);
      }
      uint64_t* __restrict bits = dbits_.data();
      uint64_t* __restrict summary = dsummary_.data();
      double* __restrict vals = dval_.data();
      int64_t count = 0;
      for (int64_t t = t0; t < t1; ++t) {
        PrefetchBRow(a_col, b_row_ptr, b_col, b_val, t, nnz_a);
        const int32_t k = a_col[t];
        const double av = kNumeric ? a_val[t] : 0.0;
        for (int64_t u = b_row_ptr[k]; u < b_row_ptr[k + 1]; ++u) {
          const int32_t c = b_col[u];
          const uint64_t m = uint64_t{1} << (c & 63);
          uint64_t& w = bits[c >> 6];
          if (w & m) {
            if (kNumeric) vals[c] += av * b_val[u];
          } else {
            w |= m;
            summary[c >> 12] |= uint64_t{1} << ((c >> 6) & 63);
            if (kNumeric) vals[c] = av * b_val[u];
            ++count;
          }
        }
      }
      count_ = count;
      return count;
    }
    const int64_t want = std::max<int64_t>(2, std::bit_ceil(static_cast<uint64_t>(2 * std::min(entries, n_))));
    log2_ = std::countr_zero(static_cast<uint64_t>(want));
    if (static_cast<int64_t>(keys_.size()) < want) {
      keys_.assign(want, -1);
      vals_.assign(want, 0.0);
      touched_.resize(want / 2 + 1);
    }
    const uint32_t mask = static_cast<uint32_t>(want - 1);
    const int shift = 32 - log2_;
    int32_t* __restrict keys = keys_.data();
    double* __restrict vals = vals_.data();
    int32_t* __restrict touched = touched_.data();
    int64_t count = 0;
    for (int64_t t = t0; t < t1; ++t) {
      PrefetchBRow(a_col, b_row_ptr, b_col, b_val, t, nnz_a);
      const int32_t k = a_col[t];
      const double av = kNumeric ? a_val[t] : 0.0;
      for (int64_t u = b_row_ptr[k]; u < b_row_ptr[k + 1]; ++u) {
        const int32_t c = b_col[u];
        uint32_t s = (static_cast<uint32_t>(c) * 0x9E3779B1u) >> shift;
        while (true) {
          const int32_t key = keys[s];
          if (key == c) {
            if (kNumeric) vals[s] += av * b_val[u];
            break;
          }
          if (key == -1) {
            keys[s] = c;
            if (kNumeric) vals[s] = av * b_val[u];
            touched[count++] = static_cast<int32_t>(s);
            break;
          }
          s = (s + 1) & mask;
        }
      }
    }
    count_ = count;
    return count;
  }

  // Writes the accumulated row (count() entries) to col/val — ascending columns if
  // `sorted`, else in the table's insertion order (dense rows are always ascending) — and
  // clears the table.
  void Emit(int32_t* __restrict col, double* __restrict val, bool sorted) {
    if (dense_) {
      // Visit only the bitmap words the summary marks as non-empty, in column order.
      uint64_t* bits = dbits_.data();
      uint64_t* summary = dsummary_.data();
      const double* vals = dval_.data();
      int64_t o = 0;
      for (int64_t sw = 0, swords = static_cast<int64_t>(dsummary_.size()); sw < swords; ++sw) {
        uint64_t ws = summary[sw];
        if (ws == 0) continue;
        summary[sw] = 0;
        while (ws != 0) {
          const int64_t w = sw * 64 + std::countr_zero(ws);
          ws &= ws - 1;
          uint64_t x = bits[w];
          bits[w] = 0;
          while (x != 0) {
            const int32_t c = static_cast<int32_t>(w * 64 + std::countr_zero(x));
            col[o] = c;
            val[o] = vals[c];
            ++o;
            x &= x - 1;
          }
        }
      }
      return;
    }
    int32_t* keys = keys_.data();
    const double* vals = vals_.data();
    const int32_t* touched = touched_.data();
    if (!sorted) {
      for (int64_t o = 0; o < count_; ++o) {
        const int32_t s = touched[o];
        col[o] = keys[s];
        val[o] = vals[s];
        keys[s] = -1;
      }
      return;
    }
    // Sort as packed 64-bit words (column << 32 | slot), cheaper to move than pairs.
    packed_.resize(count_);
    uint64_t* p = packed_.data();
    for (int64_t o = 0; o < count_; ++o) {
      const int32_t s = touched[o];
      p[o] = (static_cast<uint64_t>(static_cast<uint32_t>(keys[s])) << 32) | static_cast<uint32_t>(s);
    }
    if (count_ < 32) {
      for (int64_t x = 1; x < count_; ++x) {
        const uint64_t v = p[x];
        int64_t y = x;
        for (; y > 0 && p[y - 1] > v; --y) p[y] = p[y - 1];
        p[y] = v;
      }
    } else if (count_ < 64) {
      std::sort(p, p + count_);
    } else {
      RadixSortByColumn();
      p = packed_.data();
    }
    for (int64_t o = 0; o < count_; ++o) {
      const uint32_t s = static_cast<uint32_t>(p[o]);
      col[o] = static_cast<int32_t>(p[o] >> 32);
      val[o] = vals[s];
      keys[s] = -1;
    }
  }

  int64_t count() const { return count_; }

  // Clears the table without emitting (after a symbolic pass).
  void Reset() {
    if (dense_) {
      for (size_t sw = 0; sw < dsummary_.size(); ++sw) {
        for (uint64_t ws = dsummary_[sw]; ws != 0; ws &= ws - 1) dbits_[sw * 64 + std::countr_zero(ws)] = 0;
        dsummary_[sw] = 0;
      }
    } else {
      for (int64_t o = 0; o < count_; ++o) keys_[touched_[o]] = -1;
    }
    count_ = 0;
  }

 private:
  // LSD radix sort of packed_ on the column bits (8 bits per pass, as many passes as the
  // column count needs).
  void RadixSortByColumn() {
    const int bits = static_cast<int>(std::bit_width(static_cast<uint64_t>(std::max<int64_t>(n_ - 1, 1))));
    radix_tmp_.resize(packed_.size());
    for (int shift = 32; shift < 32 + bits; shift += 8) {
      uint32_t count[257] = {0};
      for (uint64_t x : packed_) ++count[((x >> shift) & 0xff) + 1];
      for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
      for (uint64_t x : packed_) radix_tmp_[count[(x >> shift) & 0xff]++] = x;
      packed_.swap(radix_tmp_);
    }
  }

  int64_t n_;
  bool dense_ = false;
  int log2_ = 1;
  int64_t count_ = 0;
  std::vector<int32_t> keys_;
  std::vector<double> vals_;
  std::vector<int32_t> touched_;  // occupied slots in insertion order
  std::vector<uint64_t> dbits_;     // dense rows: occupied columns
  std::vector<uint64_t> dsummary_;  // bit w: dbits_[w] != 0
  std::vector<double> dval_;
  std::vector<uint64_t> packed_;
  std::vector<uint64_t> radix_tmp_;
};

// Runs body(chunk, accumulator) for every chunk of kRowChunk rows, dynamically scheduled;
// the first exception is rethrown after the parallel region.
template <typename Body>
void ForEachChunk(int64_t chunks, int threads, int64_t n, Body body) {
  std::exception_ptr error;
  std::mutex error_mu;
#pragma omp parallel num_threads(threads)
  {
    try {
      RowAccumulator acc(n);
#pragma omp for schedule(dynamic, 1)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        try {
          body(ch, acc);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (!error) error = std::current_exception();
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// Every row is accumulated by one thread in A's column order, then B's, whatever the thread
// count, so the values are bit-identical for any `threads`.
CsrMatrix RowHash(const CsrView& a, const CsrView& b, const std::vector<int64_t>& ub,
                  bool sorted, int threads) {
  CsrMatrix c;
  c.rows = a.rows;
  c.cols = b.cols;
  c.row_ptr.assign(a.rows + 1, 0);
  const int64_t n = b.cols;
  const int64_t chunks = (a.rows + kRowChunk - 1) / kRowChunk;
  auto rows_of = [&](int64_t ch) {
    return std::pair<int64_t, int64_t>{ch * kRowChunk, std::min(a.rows, (ch + 1) * kRowChunk)};
  };
  // Upper-bound offset of every chunk: Σ min(ub_i, n) over the rows before it.
  std::vector<int64_t> cap(chunks + 1, 0);
  for (int64_t ch = 0; ch < chunks; ++ch) {
    auto [r0, r1] = rows_of(ch);
    int64_t s = 0;
    for (int64_t i = r0; i < r1; ++i) s += std::min(ub[i], n);
    cap[ch + 1] = cap[ch] + s;
  }
  // The fused pass touches cap[chunks] entries of memory (page faults dominate on light
  // rows); it pays off only when C is nearly as large as its upper bound. Estimate
  // Σ min(ub_i, n) / nnz(C) with a symbolic pass over every kSampleStride-th row.
  bool fused = cap[chunks] <= kFusedMaxEntries;
  if (fused) {
    RowAccumulator acc(n);
    int64_t sample_cap = 0, sample_nnz = 0;
    for (int64_t i = 0; i < a.rows; i += kSampleStride) {
      sample_cap += std::min(ub[i], n);
      sample_nnz += acc.Accumulate<false>(a, b, i, ub[i], ub[i]);
      acc.Reset();
    }
    fused = sample_cap <= kFusedMaxSlack * static_cast<double>(sample_nnz);
  }
  if (fused) {
    // One numeric pass: each chunk's rows are written back to back from the chunk's
    // upper-bound offset, then the chunks are moved down to their exact offsets.
    ResizeOutput(c.col, cap[chunks]);
    ResizeOutput(c.val, cap[chunks]);
    if (threads == 1) {  // rows in order: write at the exact offsets, nothing to move
      RowAccumulator acc(n);
      int64_t pos = 0;
      for (int64_t i = 0; i < a.rows; ++i) {
        acc.Accumulate<true>(a, b, i, ub[i], ub[i]);
        acc.Emit(c.col.data() + pos, c.val.data() + pos, sorted);
        pos += acc.count();
        c.row_ptr[i + 1] = pos;
      }
      c.col.resize(pos);
      c.val.resize(pos);
      return c;
    }
    ForEachChunk(chunks, threads, n, [&](int64_t ch, RowAccumulator& acc) {
      auto [r0, r1] = rows_of(ch);
      int64_t pos = cap[ch];
      for (int64_t i = r0; i < r1; ++i) {
        const int64_t cnt = acc.Accumulate<true>(a, b, i, ub[i], ub[i]);
        acc.Emit(c.col.data() + pos, c.val.data() + pos, sorted);
        c.row_ptr[i + 1] = cnt;
        pos += cnt;
      }
    });
    for (int64_t i = 0; i < a.rows; ++i) c.row_ptr[i + 1] += c.row_ptr[i];
    // Left to right: a chunk's destination never overlaps a later chunk's source.
    for (int64_t ch = 0; ch < chunks; ++ch) {
      auto [r0, r1] = rows_of(ch);
      const int64_t dst = c.row_ptr[r0], len = c.row_ptr[r1] - dst;
      if (dst != cap[ch] && len > 0) {
        std::memmove(c.col.data() + dst, c.col.data() + cap[ch], len * sizeof(int32_t));
        std::memmove(c.val.data() + dst, c.val.data() + cap[ch], len * sizeof(double));
      }
    }
    const int64_t nnz = c.row_ptr[a.rows];
    c.col.resize(nnz);
    c.val.resize(nnz);
    return c;
  }
  // Symbolic pass (exact row sizes), then the numeric pass into exactly sized arrays.
  ForEachChunk(chunks, threads, n, [&](int64_t ch, RowAccumulator& acc) {
    auto [r0, r1] = rows_of(ch);
    for (int64_t i = r0; i < r1; ++i) {
      c.row_ptr[i + 1] = acc.Accumulate<false>(a, b, i, ub[i], ub[i]);
      acc.Reset();
    }
  });
  for (int64_t i = 0; i < a.rows; ++i) c.row_ptr[i + 1] += c.row_ptr[i];
  ResizeOutput(c.col, c.row_ptr[a.rows]);
  ResizeOutput(c.val, c.row_ptr[a.rows]);
  ForEachChunk(chunks, threads, n, [&](int64_t ch, RowAccumulator& acc) {
    auto [r0, r1] = rows_of(ch);
    for (int64_t i = r0; i < r1; ++i) {
      // The table is sized by the row's exact nnz (load ≤ 1/2) rather than its ub.
      acc.Accumulate<true>(a, b, i, ub[i], c.row_ptr[i + 1] - c.row_ptr[i]);
      acc.Emit(c.col.data() + c.row_ptr[i], c.val.data() + c.row_ptr[i], sorted);
    }
  });
  return c;
}

CsrMatrix SmashAtomic(const CsrView& a, const CsrView& b, const std::vector<int64_t>& ub,
                      int threads) {
  CsrMatrix c;
  c.rows = a.rows;
  c.cols = b.cols;
  c.row_ptr.assign(a.rows + 1, 0);
  constexpr uint64_t kEmpty = ~uint64_t{0};
  std::vector<uint64_t> keys;
  std::vector<double> vals;
  std::vector<int64_t> weight_prefix;  // partial products before each A nonzero of the window
  std::vector<int64_t> row_count, row_start;
  std::vector<std::pair<int32_t, double>> staged;
  int64_t w0 = 0;
  while (w0 < a.rows) {
    // Window [w0, w1): rows until the products reach kWindowProducts (at least one row).
    int64_t w1 = w0, products = 0, table_need = 0;
    while (w1 < a.rows && (w1 == w0 || products + ub[w1] <= kWindowProducts)) {
      products += ub[w1];
      table_need += std::min<int64_t>(ub[w1], b.cols);
      ++w1;
    }
    const int64_t size = std::max<int64_t>(2, std::bit_ceil(static_cast<uint64_t>(2 * std::max<int64_t>(table_need, 1))));
    const int log2 = std::countr_zero(static_cast<uint64_t>(size));
    keys.assign(size, kEmpty);
    vals.assign(size, 0.0);
    const int64_t t0 = a.row_ptr[w0], t1 = a.row_ptr[w1];
    weight_prefix.assign(t1 - t0 + 1, 0);
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t k = a.col[t];
      weight_prefix[t - t0 + 1] = weight_prefix[t - t0] + (b.row_ptr[k + 1] - b.row_ptr[k]);
    }
#pragma omp parallel num_threads(threads)
    {
      int nth = 1, me = 0;
#ifdef _OPENMP
      nth = omp_get_num_threads();
      me = omp_get_thread_num();
#endif
      // Even split of the window's partial products, ignoring row boundaries.
      const int64_t lo_w = products * me / nth, hi_w = products * (me + 1) / nth;
      int64_t t = std::upper_bound(weight_prefix.begin(), weight_prefix.end(), lo_w) - weight_prefix.begin() - 1;
      int64_t row = std::upper_bound(a.row_ptr + w0, a.row_ptr + w1 + 1, t0 + t) - a.row_ptr - 1;
      for (; t < t1 - t0 && weight_prefix[t] < hi_w; ++t) {
        while (a.row_ptr[row + 1] <= t0 + t) ++row;
        const int32_t k = a.col[t0 + t];
        const double av = a.val[t0 + t];
        // Products of this nonzero that belong to this thread's range.
        const int64_t first = std::max<int64_t>(0, lo_w - weight_prefix[t]);
        const int64_t last = std::min<int64_t>(weight_prefix[t + 1], hi_w) - weight_prefix[t];
        for (int64_t u = b.row_ptr[k] + first; u < b.row_ptr[k] + last; ++u) {
          const uint64_t key = (static_cast<uint64_t>(row - w0) << 32) | static_cast<uint32_t>(b.col[u]);
          uint32_t s = HashSlot(static_cast<uint32_t>(key ^ (key >> 29)), log2);
          while (true) {
            std::atomic_ref<uint64_t> slot(keys[s]);
            uint64_t cur = slot.load(std::memory_order_acquire);
            if (cur == kEmpty) {
              if (slot.compare_exchange_strong(cur, key, std::memory_order_acq_rel)) cur = key;
            }
            if (cur == key) {
              std::atomic_ref<double>(vals[s]).fetch_add(av * b.val[u], std::memory_order_relaxed);
              break;
            }
            s = (s + 1) & static_cast<uint32_t>(size - 1);
          }
        }
      }
    }
    // Compact the window per row (count, prefix, scatter), sort, emit.
    const int64_t nrows = w1 - w0;
    row_count.assign(nrows + 1, 0);
    for (int64_t s = 0; s < size; ++s) {
      if (keys[s] != kEmpty) ++row_count[(keys[s] >> 32) + 1];
    }
    for (int64_t r = 0; r < nrows; ++r) row_count[r + 1] += row_count[r];
    row_start = row_count;
    staged.resize(row_count[nrows]);
    for (int64_t s = 0; s < size; ++s) {
      if (keys[s] != kEmpty) {
        staged[row_start[keys[s] >> 32]++] = {static_cast<int32_t>(keys[s] & 0xffffffffu), vals[s]};
      }
    }
    const int64_t base = static_cast<int64_t>(c.col.size());
    for (int64_t r = 0; r < nrows; ++r) {
      std::sort(staged.begin() + row_count[r], staged.begin() + row_count[r + 1],
                [](const auto& x, const auto& y) { return x.first < y.first; });
      c.row_ptr[w0 + r + 1] = base + row_count[r + 1];
    }
    for (const auto& [col, v] : staged) {
      c.col.push_back(col);
      c.val.push_back(v);
    }
    w0 = w1;
  }
  return c;
}

CsrMatrix DenseSpa(const CsrView& a, const CsrView& b) {
  CsrMatrix c;
  c.rows = a.rows;
  c.cols = b.cols;
  c.row_ptr.assign(a.rows + 1, 0);
  std::vector<char> mask(b.cols, 0);
  std::vector<double> values(b.cols, 0.0);
  std::vector<int32_t> indices;
  for (int64_t i = 0; i < a.rows; ++i) {
    indices.clear();
    for (int64_t t = a.row_ptr[i]; t < a.row_ptr[i + 1]; ++t) {
      const int32_t k = a.col[t];
      const double av = a.val[t];
      for (int64_t u = b.row_ptr[k]; u < b.row_ptr[k + 1]; ++u) {
        const int32_t j = b.col[u];
        if (!mask[j]) {
          mask[j] = 1;
          values[j] = av * b.val[u];
          indices.push_back(j);
        } else {
          values[j] += av * b.val[u];
        }
      }
    }
    std::sort(indices.begin(), indices.end());
    for (int32_t j : indices) {
      c.col.push_back(j);
      c.val.push_back(values[j]);
      mask[j] = 0;
    }
    c.row_ptr[i + 1] = static_cast<int64_t>(c.col.size());
  }
  return c;
}

CsrMatrix MapReference(const CsrView& a, const CsrView& b) {
  CsrMatrix c;
  c.rows = a.rows;
  c.cols = b.cols;
  c.row_ptr.assign(a.rows + 1, 0);
  for (int64_t i = 0; i < a.rows; ++i) {
    std::map<int32_t, double> row;
    for (int64_t t = a.row_ptr[i]; t < a.row_ptr[i + 1]; ++t) {
      const int32_t k = a.col[t];
      for (int64_t u = b.row_ptr[k]; u < b.row_ptr[k + 1]; ++u) {
        auto [it, inserted] = row.try_emplace(b.col[u], 0.0);
        if (inserted) {
          it->second = a.val[t] * b.val[u];
        } else {
          it->second += a.val[t] * b.val[u];
        }
      }
    }
    for (const auto& [j, v] : row) {
      c.col.push_back(j);
      c.val.push_back(v);
    }
    c.row_ptr[i + 1] = static_cast<int64_t>(c.col.size());
  }
  return c;
}

void PruneZeros(CsrMatrix* c) {
  int64_t w = 0, start = 0;
  for (int64_t i = 0; i < c->rows; ++i) {
    const int64_t end = c->row_ptr[i + 1];
    for (int64_t t = start; t < end; ++t) {
      if (c->val[t] != 0.0) {
        c->col[w] = c->col[t];
        c->val[w] = c->val[t];
        ++w;
      }
    }
    start = end;
    c->row_ptr[i + 1] = w;
  }
  c->col.resize(w);
  c->val.resize(w);
}

}  // namespace

absl::Status ValidateCsr(const CsrView& m, std::string_view name) {
  if (m.rows < 0 || m.cols < 0) {
    return absl::InvalidArgumentError(fmt::format("{} has negative dimensions", name));
  }
  if (m.cols > (int64_t{1} << 31) - 1) {
    return absl::InvalidArgumentError(fmt::format("{} has more than 2^31 - 1 columns", name));
  }
  if (m.row_ptr[0] != 0) {
    return absl::InvalidArgumentError(fmt::format("{}.row_ptr[0] must be 0", name));
  }
  for (int64_t i = 0; i < m.rows; ++i) {
    const int64_t s = m.row_ptr[i], e = m.row_ptr[i + 1];
    if (e < s) {
      return absl::InvalidArgumentError(fmt::format("{}.row_ptr decreases at row {}", name, i));
    }
    for (int64_t t = s; t < e; ++t) {
      if (m.col[t] < 0 || m.col[t] >= m.cols) {
        return absl::InvalidArgumentError(fmt::format(
            "{}.col[{}] = {} is out of range [0, {})", name, t, m.col[t], m.cols));
      }
      if (t > s && m.col[t] <= m.col[t - 1]) {
        return absl::InvalidArgumentError(fmt::format(
            "{} row {} has unsorted or duplicate columns at col[{}]", name, i, t));
      }
    }
  }
  return absl::OkStatus();
}

Stats ComputeUpperBounds(const CsrView& a, const CsrView& b) {
  Stats s;
  for (int64_t i = 0; i < a.rows; ++i) {
    const int64_t ub = RowUb(a, b, i);
    s.flops += ub;
    s.max_row_ub = std::max(s.max_row_ub, ub);
    s.nnz_upper += std::min(ub, b.cols);
  }
  s.mean_row_ub = a.rows > 0 ? static_cast<double>(s.flops) / static_cast<double>(a.rows) : 0.0;
  return s;
}

CsrMatrix SpGemm(const CsrView& a, const CsrView& b, const Options& options, Stats* stats) {
  const int threads = std::max(1, options.threads);
  std::vector<int64_t> ub(a.rows);
  for (int64_t i = 0; i < a.rows; ++i) ub[i] = RowUb(a, b, i);
  CsrMatrix c;
  switch (options.method) {
    case Method::kRowHash: c = RowHash(a, b, ub, options.sort_columns, threads); break;
    case Method::kSmashAtomic: c = SmashAtomic(a, b, ub, threads); break;
    case Method::kDenseSpa: c = DenseSpa(a, b); break;
    case Method::kReference: c = MapReference(a, b); break;
  }
  if (stats != nullptr) {
    *stats = Stats{};
    for (int64_t u : ub) {
      stats->flops += u;
      stats->max_row_ub = std::max(stats->max_row_ub, u);
      stats->nnz_upper += std::min(u, b.cols);
    }
    stats->mean_row_ub = a.rows > 0 ? static_cast<double>(stats->flops) / a.rows : 0.0;
    stats->nnz = static_cast<int64_t>(c.col.size());
    stats->compression = stats->nnz > 0 ? static_cast<double>(stats->flops) / stats->nnz : 0.0;
  }
  if (options.prune_zeros) PruneZeros(&c);
  return c;
}

}  // namespace chamferdb::spgemm
