#include "kernels/spgemm/spgemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <map>
#include <numeric>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace chamferdb::spgemm {
namespace {

constexpr int64_t kRowChunk = 64;          // rows per OpenMP work item
constexpr int64_t kWindowProducts = 1 << 16;  // SMASH window: partial products per table

uint32_t HashSlot(uint32_t key, int log2_size) {
  return (key * 0x9E3779B1u) >> (32 - log2_size);
}

// Rows of B are visited in A's (random) column order: fetch ahead to hide the latency.
inline void PrefetchBRow(const CsrView& a, const CsrView& b, int64_t t) {
  const int64_t nnz_a = a.row_ptr[a.rows];
  if (t + 8 < nnz_a) __builtin_prefetch(b.row_ptr + a.col[t + 8]);
  if (t + 2 < nnz_a) {
    const int64_t start = b.row_ptr[a.col[t + 2]];
    __builtin_prefetch(b.col + start);
    __builtin_prefetch(b.val + start);
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

// Per-thread accumulator: open addressing (linear probing) or a dense array for long rows.
class RowAccumulator {
 public:
  explicit RowAccumulator(int64_t n) : n_(n) {}

  // Prepares for a row with `ub` partial products.
  void Begin(int64_t ub) {
    dense_ = ub > n_ / 4;
    if (dense_) {
      if (dflag_.empty()) {
        dflag_.assign(n_, 0);
        dval_.assign(n_, 0.0);
      }
    } else {
      const int64_t want = std::max<int64_t>(2, std::bit_ceil(static_cast<uint64_t>(2 * std::min(ub, n_))));
      log2_ = std::countr_zero(static_cast<uint64_t>(want));
      if (static_cast<int64_t>(keys_.size()) < want) {
        keys_.assign(want, -1);
        vals_.assign(want, 0.0);
      }
      mask_ = want - 1;
    }
    touched_.clear();
  }

  void Add(int32_t c, double v) {
    if (dense_) {
      if (!dflag_[c]) {
        dflag_[c] = 1;
        dval_[c] = v;
        touched_.push_back(c);
      } else {
        dval_[c] += v;
      }
      return;
    }
    uint32_t s = HashSlot(static_cast<uint32_t>(c), log2_);
    while (true) {
      if (keys_[s] == c) {
        vals_[s] += v;
        return;
      }
      if (keys_[s] == -1) {
        keys_[s] = c;
        vals_[s] = v;
        touched_.push_back(static_cast<int32_t>(s));
        return;
      }
      s = (s + 1) & static_cast<uint32_t>(mask_);
    }
  }

  // Symbolic insert: value ignored.
  void Touch(int32_t c) { Add(c, 0.0); }

  int64_t count() const { return static_cast<int64_t>(touched_.size()); }

  // Writes the row sorted by column and resets the table. Entries are sorted as packed
  // 64-bit words (column << 32 | slot), cheaper to compare than (column, value) pairs.
  void Emit(int32_t* col, double* val) {
    packed_.clear();
    for (int32_t t : touched_) {
      const int32_t c = dense_ ? t : keys_[t];
      packed_.push_back((static_cast<uint64_t>(c) << 32) | static_cast<uint32_t>(t));
    }
    if (packed_.size() < 32) {
      for (size_t i = 1; i < packed_.size(); ++i) {
        const uint64_t x = packed_[i];
        size_t j = i;
        for (; j > 0 && packed_[j - 1] > x; --j) packed_[j] = packed_[j - 1];
        packed_[j] = x;
      }
    } else if (packed_.size() < 64) {
      std::sort(packed_.begin(), packed_.end());
    } else {
      RadixSortByColumn();
    }
    for (size_t i = 0; i < packed_.size(); ++i) {
      const int32_t c = static_cast<int32_t>(packed_[i] >> 32);
      const uint32_t slot = static_cast<uint32_t>(packed_[i]);
      col[i] = c;
      if (dense_) {
        val[i] = dval_[c];
        dflag_[c] = 0;
      } else {
        val[i] = vals_[slot];
        keys_[slot] = -1;
      }
    }
    touched_.clear();
  }

  // LSD radix sort of packed_ on the column bits (8 bits per pass, as many passes as the
  // column count needs). Stable, so equal columns (impossible here) would keep their order.
  void RadixSortByColumn() {
    const int bits = static_cast<int>(std::bit_width(static_cast<uint64_t>(std::max<int64_t>(n_ - 1, 1))));
    radix_tmp_.resize(packed_.size());
    for (int shift = 32; shift < 32 + bits; shift += 8) {
      size_t count[257] = {0};
      for (uint64_t x : packed_) ++count[((x >> shift) & 0xff) + 1];
      for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
      for (uint64_t x : packed_) radix_tmp_[count[(x >> shift) & 0xff]++] = x;
      packed_.swap(radix_tmp_);
    }
  }

  // Resets without emitting (after a symbolic pass).
  void Reset() {
    if (dense_) {
      for (int32_t c : touched_) dflag_[c] = 0;
    } else {
      for (int32_t s : touched_) keys_[s] = -1;
    }
    touched_.clear();
  }

 private:
  int64_t n_;
  bool dense_ = false;
  int log2_ = 1;
  int64_t mask_ = 1;
  std::vector<int32_t> keys_;
  std::vector<double> vals_;
  std::vector<char> dflag_;
  std::vector<double> dval_;
  std::vector<int32_t> touched_;  // slots (hash) or columns (dense)
  std::vector<uint64_t> packed_;
  std::vector<uint64_t> radix_tmp_;
};

CsrMatrix RowHash(const CsrView& a, const CsrView& b, const std::vector<int64_t>& ub, int threads) {
  CsrMatrix c;
  c.rows = a.rows;
  c.cols = b.cols;
  c.row_ptr.assign(a.rows + 1, 0);
  const int64_t chunks = (a.rows + kRowChunk - 1) / kRowChunk;
#pragma omp parallel num_threads(threads)
  {
    RowAccumulator acc(b.cols);
    // Symbolic: count nnz per row.
#pragma omp for schedule(dynamic, 1)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      for (int64_t i = ch * kRowChunk; i < std::min(a.rows, (ch + 1) * kRowChunk); ++i) {
        acc.Begin(ub[i]);
        for (int64_t t = a.row_ptr[i]; t < a.row_ptr[i + 1]; ++t) {
          PrefetchBRow(a, b, t);
          const int32_t k = a.col[t];
          for (int64_t u = b.row_ptr[k]; u < b.row_ptr[k + 1]; ++u) acc.Touch(b.col[u]);
        }
        c.row_ptr[i + 1] = acc.count();
        acc.Reset();
      }
    }
#pragma omp single
    {
      for (int64_t i = 0; i < a.rows; ++i) c.row_ptr[i + 1] += c.row_ptr[i];
      c.col.resize(c.row_ptr[a.rows]);
      c.val.resize(c.row_ptr[a.rows]);
    }
    // Numeric.
#pragma omp for schedule(dynamic, 1)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      for (int64_t i = ch * kRowChunk; i < std::min(a.rows, (ch + 1) * kRowChunk); ++i) {
        acc.Begin(ub[i]);
        for (int64_t t = a.row_ptr[i]; t < a.row_ptr[i + 1]; ++t) {
          PrefetchBRow(a, b, t);
          const int32_t k = a.col[t];
          const double av = a.val[t];
          for (int64_t u = b.row_ptr[k]; u < b.row_ptr[k + 1]; ++u) acc.Add(b.col[u], av * b.val[u]);
        }
        acc.Emit(c.col.data() + c.row_ptr[i], c.val.data() + c.row_ptr[i]);
      }
    }
  }
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
    case Method::kRowHash: c = RowHash(a, b, ub, threads); break;
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
