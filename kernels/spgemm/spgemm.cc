#include "kernels/spgemm/spgemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace chamferdb::spgemm {
namespace {

constexpr int64_t kRowChunk = 64;          // rows per OpenMP work item
constexpr int64_t kWindowProducts = 1 << 16;  // SMASH window: partial products per table
// Row_hash's single pass (see Options::single_pass_max_entries) on several threads writes
// 64-row chunks at upper-bound offsets ("fused", dynamically scheduled) when a symbolic
// pass over a sample of rows (about kSampleRows evenly spaced rows, every row of smaller
// matrices) shows Σ min(ub_i, n) ≤ kFusedMaxSlack · nnz(C); otherwise one contiguous range
// of chunks per thread. The row sample also decides the window and shifted-row plans.
constexpr int64_t kSampleRows = 1024;
// The window check runs only if at least 1 in kMinWindowShare sampled rows (with products)
// is a window row: on ER (none) and R-MAT s16 (0.2%) its dependent loads cost 2–8%.
constexpr int64_t kMinWindowShare = 32;
constexpr double kFusedMaxSlack = 1.125;
// Look-ahead of the B-row prefetches, in nonzeros of A: row_ptr, then the row's data.
constexpr int64_t kPrefetchRowPtr = 64;
constexpr int64_t kPrefetchData = 16;
// Rows whose products all fall in a window of kWindow columns starting at a multiple of 64
// use the window accumulator (kWindow / 64 = 64 groups of 64 columns: a one-word summary).
constexpr int64_t kWindow = 4096;
// Shifted-row plans (stencils): rows of at most kShiftedMaxA nonzeros and
// kShiftedMaxProducts products; used when at least 1 in kMinShiftedShare sampled rows has
// the structure of the row before it, shifted.
constexpr int kShiftedMaxA = 16;
constexpr int kShiftedMaxProducts = 128;
constexpr int64_t kMinShiftedShare = 2;

// Sizes v to n elements, asking Linux for transparent huge pages first when the buffer is
// large: the output of a big product is written once into fresh memory, and with 4 KiB
// pages its page faults cost ~20% of the whole product on ER-like inputs.
template <typename Vector>
void ReserveOutput(Vector& v, size_t n) {
  using T = typename Vector::value_type;
#ifdef __linux__
  constexpr size_t kHuge = size_t{2} << 20;
  if (n * sizeof(T) >= 4 * kHuge && v.capacity() < n) {
    v.reserve(n);
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(v.data()) + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(v.data() + n)) & ~(kHuge - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // a hint
  }
#endif
  v.reserve(n);
}

template <typename Vector>
void ResizeOutput(Vector& v, size_t n) {
  ReserveOutput(v, n);
  v.resize(n);
}

// ResizeOutput for arrays that will be written in full (exactly sized C): their pages are
// faulted in (and zeroed by the kernel) up front, in one go, rather than one by one in the
// middle of the numeric pass, where each 2 MiB page clear evicts the accumulators from L2
// (Linux ≥ 5.14; elsewhere, or if refused, the pages fault in on first write as before).
template <typename Vector>
void ResizeOutputPopulated(Vector& v, size_t n) {
  ResizeOutput(v, n);
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  using T = typename Vector::value_type;
  constexpr size_t kPage = 4096;
  if (n * sizeof(T) >= 4 * kPage) {
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(v.data()) + kPage - 1) & ~(kPage - 1);
    const uintptr_t end = reinterpret_cast<uintptr_t>(v.data() + n) & ~(kPage - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);  // a hint
  }
#endif
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
    // Every cache line they touch: rows rarely start on a line boundary (a row of 16
    // spans 2 lines of columns and 3 of values from most starts).
    const int64_t end = std::min(b_row_ptr[k + 1], start + 32);
    if (start < end) {
      const uintptr_t c_last = reinterpret_cast<uintptr_t>(b_col + end - 1);
      for (uintptr_t p = reinterpret_cast<uintptr_t>(b_col + start) & ~uintptr_t{63}; p <= c_last; p += 64)
        __builtin_prefetch(reinterpret_cast<const void*>(p));
      const uintptr_t v_last = reinterpret_cast<uintptr_t>(b_val + end - 1);
      for (uintptr_t p = reinterpret_cast<uintptr_t>(b_val + start) & ~uintptr_t{63}; p <= v_last; p += 64)
        __builtin_prefetch(reinterpret_cast<const void*>(p));
    }
  }
}

// Bit j set iff occ[j] != 0, for the 64 bytes at occ (each 0 or 0xff).
inline uint64_t OccupancyMask(const uint8_t* occ) {
#ifdef __SSE2__
  uint64_t m = 0;
  for (int q = 0; q < 4; ++q) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(occ + 16 * q));
    m |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(v)) & 0xffffu) << (16 * q);
  }
  return m;
#else
  uint64_t m = 0;
  for (int j = 0; j < 64; ++j) m |= static_cast<uint64_t>(occ[j] >> 7) << j;
  return m;
#endif
}

// word |= 1 << bit, for bit < 64: one bts on x86-64 (GCC otherwise spends a mov, a shift
// through cl and an or on it, in the hottest loop of window rows).
__attribute__((always_inline)) inline void SetBit(uint64_t& word, uint64_t bit) {
#if defined(__x86_64__) && defined(__GNUC__)
  asm("btsq %1, %0" : "+r"(word) : "r"(bit) : "cc");
#else
  word |= uint64_t{1} << (bit & 63);
#endif
}

// Set bits of x (SWAR: no libgcc call without -mpopcnt).
inline int64_t PopCount(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555u);
  x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
  return static_cast<int64_t>((x * 0x0101010101010101u) >> 56);
}

// ub[i] = RowUb(a, b, i) for every row (one pass over A's columns). Not vectorized: GCC's
// SSE2 version emulates the gathers and spills (13 instructions per nonzero of A, vs 5).
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
void RowUbs(const CsrView& a, const CsrView& b, int64_t* __restrict ub) {
  const int64_t* __restrict a_row_ptr = a.row_ptr;
  const int32_t* __restrict a_col = a.col;
  const int64_t* __restrict b_row_ptr = b.row_ptr;
  int64_t t = 0;
  for (int64_t i = 0; i < a.rows; ++i) {
    const int64_t end = a_row_ptr[i + 1];
    int64_t s = 0;
    for (; t < end; ++t) {
      const int32_t k = a_col[t];
      s += b_row_ptr[k + 1] - b_row_ptr[k];
    }
    ub[i] = s;
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

// x[i] = x[0] + … + x[i] (the running sum stays in a register: written as
// x[i + 1] += x[i], every step waits for the store before it).
void PrefixSum(int64_t* __restrict x, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += x[i];
    x[i] = sum;
  }
}

// flags[k] = 1 iff row k of B is row k − 1 with every column plus one (same length);
// flags[0] = 0. One pass over B (shifted-row plans check each B row they read with it).
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))  // rows are short: the SSE2 loop's set-up costs more
#endif
void ShiftFlags(const CsrView& b, uint8_t* __restrict flags) {
  const int64_t* __restrict row_ptr = b.row_ptr;
  const int32_t* __restrict col = b.col;
  if (b.rows > 0) flags[0] = 0;
  const int64_t nnz = row_ptr[b.rows];
  for (int64_t k = 1; k < b.rows; ++k) {
    const int64_t s0 = row_ptr[k - 1], s1 = row_ptr[k], len = row_ptr[k + 1] - s1;
    if (s1 - s0 != len) {
      flags[k] = 0;
      continue;
    }
#ifdef __SSE2__
    if (len <= 8 && s1 + 8 <= nnz) {  // rows of up to 8: two 4-lane compares, lanes ≥ len ignored
      const __m128i one = _mm_set1_epi32(1);
      const __m128i* p0 = reinterpret_cast<const __m128i*>(col + s0);
      const __m128i* p1 = reinterpret_cast<const __m128i*>(col + s1);
      const __m128i lo = _mm_cmpeq_epi32(_mm_sub_epi32(_mm_loadu_si128(p1), _mm_loadu_si128(p0)), one);
      const __m128i hi = _mm_cmpeq_epi32(_mm_sub_epi32(_mm_loadu_si128(p1 + 1), _mm_loadu_si128(p0 + 1)), one);
      const uint32_t equal = static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(lo))) |
                             static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(hi))) << 4;
      const uint32_t want = (1u << len) - 1;
      flags[k] = (equal & want) == want;
      continue;
    }
#endif
    uint32_t diff = 0;
    for (int64_t q = 0; q < len; ++q) diff |= static_cast<uint32_t>(col[s1 + q] - col[s0 + q]) ^ 1u;
    flags[k] = diff == 0;
  }
}

// Which rows try the window accumulator and how (see RowHash).
struct WindowPlan {
  bool use = true;       // false: never (no window rows in the sample)
  // Non-null: try the previous short row's structure on the next row (see ShiftedRow);
  // b_shifted[k] != 0 iff row k of B is row k − 1 with every column plus one.
  const uint8_t* b_shifted = nullptr;
  std::atomic<int64_t>* shifted_rows = nullptr;  // non-null: accumulators add their count
  bool prefetch = true;  // fetch B rows ahead for window rows; false when A is banded and
                         // its rows advance steadily (B is then read in a sliding window
                         // the hardware prefetcher follows)
};

// Per-thread accumulator of one output row at a time, one of three kinds per row:
//  * window: every product of the row falls in kWindow consecutive columns (checked from
//    the first and last column of each B row it reads; banded, stencil and mesh matrices,
//    and any product with n ≤ kWindow): a value array over the window preset to -0.0, an
//    occupancy byte per column and a one-word summary of the non-empty 64-column groups,
//    emitted in column order by scanning the groups — no hashing, no sort, no branch per
//    product. The cheapest path for short rows (e.g. ≤ 25 products on the 2-D Laplacian).
//  * dense, for rows with ub ≥ max(n/256, 128) (and every row with ub > n/4, the spec's
//    rule): a value array of length n with a two-level bitmap of occupied columns, emitted
//    by a bitmap scan.
//  * hash: open addressing (linear probing, load ≤ 1/2, sized from the row's upper bound
//    or, after a symbolic pass, its exact nnz), then a sort of the occupied slots.
// Every kind sums each column's products in call order (A's column order, then B's)
// starting from the first product: the same arithmetic as the map reference.
class RowAccumulator {
 public:
  // plan.use = false: never the window accumulator (for products where a row sample
  // found no window rows: the check's dependent loads then only delay the row).
  RowAccumulator(int64_t n, WindowPlan plan)
      : n_(n), use_window_(plan.use), prefetch_window_(plan.prefetch), use_shifted_(plan.b_shifted != nullptr),
        b_shifted_(plan.b_shifted), shifted_rows_total_(plan.shifted_rows) {}
  ~RowAccumulator() {
    if (shifted_rows_total_ != nullptr) shifted_rows_total_->fetch_add(shifted_rows_, std::memory_order_relaxed);
  }
  RowAccumulator(const RowAccumulator&) = delete;
  RowAccumulator& operator=(const RowAccumulator&) = delete;


  // Accumulates row i of A·B (values only if kNumeric). Symbolic (!kNumeric): returns the
  // row's nnz; numeric: the return value is meaningless, Emit returns the nnz. `entries`
  // bounds the row's nnz (ub, or the exact count from a symbolic pass) and sizes the table.
  template <bool kNumeric>
  int64_t Accumulate(const CsrView& a, const CsrView& b, int64_t i, int64_t ub, int64_t entries) {
    const int64_t t0 = a.row_ptr[i], t1 = a.row_ptr[i + 1];
    if (use_window_ && WindowRow<kNumeric>(a, b, t0, t1)) return count_;
    return AccumulateWide<kNumeric>(a, b, t0, t1, ub, entries);
  }

  // Numeric pass over rows [r0, r1): the rows' entries go to col/val back to back (room
  // for `capacity` entries), row i's nnz to nnz_out[i - r0]; returns the total. ub_of(i) is
  // row i's ub, entries(i) bounds its nnz (sizes the hash table). Accumulate<true> + Emit row by row, with the
  // window path inlined; with the shifted-row plan, rows that repeat the previous short
  // row's structure take ApplyShifted instead.
  template <typename UbOf, typename Entries>
  int64_t NumericRows(const CsrView& a, const CsrView& b, int64_t r0, int64_t r1, UbOf ub_of,
                      Entries entries, bool sorted, int32_t* col, double* val, int64_t capacity,
                      int64_t* nnz_out) {
    const int64_t* __restrict a_row_ptr = a.row_ptr;
    int64_t pos = 0;
    for (int64_t i = r0; i < r1; ++i) {
      const int64_t t0 = a_row_ptr[i], t1 = a_row_ptr[i + 1];
      int64_t cnt;
      if (use_shifted_ && pos + shifted_.nout <= capacity &&
          ApplyShifted(a, b, i, t0, t1, col + pos, val + pos)) {
        cnt = shifted_.nout;
        ++shifted_rows_;
      } else {
        bool row_sorted = true;
        if (use_window_ && WindowRow<true>(a, b, t0, t1)) {
          cnt = EmitWindow(col + pos, val + pos);
        } else {
          AccumulateWide<true>(a, b, t0, t1, ub_of(i), entries(i));
          row_sorted = sorted || mode_ == Mode::kDense;
          cnt = EmitWide(col + pos, val + pos, sorted);
        }
        if (use_shifted_ && row_sorted) BuildShifted(a, b, i, t0, t1, col + pos, cnt);
      }
      nnz_out[i - r0] = cnt;
      pos += cnt;
    }
    return pos;
  }

  // Whether row i has row r's structure shifted by i − r: as many nonzeros in A, A's
  // columns and every B row's columns (relative to the row index) equal, with at most
  // kShiftedMaxProducts products (the sample's test for WindowPlan::shifted).
  static bool SameShiftedStructure(const CsrView& a, const CsrView& b, int64_t r, int64_t i) {
    const int64_t r0 = a.row_ptr[r], i0 = a.row_ptr[i], len = a.row_ptr[r + 1] - r0;
    if (a.row_ptr[i + 1] - i0 != len || len > kShiftedMaxA) return false;
    int64_t products = 0;
    for (int64_t t = 0; t < len; ++t) {
      const int64_t kr = a.col[r0 + t], ki = a.col[i0 + t];
      if (ki - i != kr - r) return false;
      const int64_t sr = b.row_ptr[kr], si = b.row_ptr[ki], n = b.row_ptr[kr + 1] - sr;
      if (b.row_ptr[ki + 1] - si != n) return false;
      products += n;
      if (products > kShiftedMaxProducts) return false;
      for (int64_t q = 0; q < n; ++q)
        if (b.col[si + q] - i != b.col[sr + q] - r) return false;
    }
    return true;
  }

  enum class Mode { kHash, kDense, kWindow };

  // First column of the kWindow-column window (a multiple of 64) that holds every product
  // of row [t0, t1) of A, or -1 if none does (the row's span, from the first and last
  // column of each B row, stops being tracked once it exceeds the window). Rows without
  // products get window 0.
  __attribute__((always_inline)) static int64_t WindowBase(const int32_t* __restrict a_col, const int64_t* __restrict b_row_ptr,
                                                           const int32_t* __restrict b_col, int64_t t0, int64_t t1) {
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t k = a_col[t];
      const int64_t s = b_row_ptr[k], e = b_row_ptr[k + 1];
      if (s == e) continue;
      lo = std::min<int64_t>(lo, b_col[s]);
      hi = std::max<int64_t>(hi, b_col[e - 1]);
      if (hi - (lo & ~int64_t{63}) >= kWindow) return -1;
    }
    return hi < 0 ? 0 : lo & ~int64_t{63};
  }

  // Hash or dense accumulation of row [t0, t1) of A (see Accumulate).
  template <bool kNumeric>
  int64_t AccumulateWide(const CsrView& a, const CsrView& b, int64_t t0, int64_t t1, int64_t ub, int64_t entries) {
    const int32_t* __restrict a_col = a.col;
    const double* __restrict a_val = a.val;
    const int64_t* __restrict b_row_ptr = b.row_ptr;
    const int32_t* __restrict b_col = b.col;
    const double* __restrict b_val = b.val;
    const int64_t nnz_a = a.row_ptr[a.rows];
    count_ = 0;
    // Dense when the bitmap scan (n/64 words) is cheaper than sorting the row: ub ≥ n/256
    // (and ub ≥ 128, below which the L1-resident table always wins).
    mode_ = ub >= std::max<int64_t>(n_ / 256, 128) || ub > n_ / 4 ? Mode::kDense : Mode::kHash;
    if (mode_ == Mode::kDense) {
      if (dbits_.empty()) {
        dbits_.assign((n_ + 63) / 64, 0);
        dsummary_.assign((dbits_.size() + 63) / 64, 0);
        dval_.assign(n_, 0.0);
      }
      uint64_t* __restrict bits = dbits_.data();
      uint64_t* __restrict summary = dsummary_.data();
      double* __restrict vals = dval_.data();
      int64_t count = 0;  // symbolic only (the numeric pass counts while emitting)
      for (int64_t t = t0; t < t1; ++t) {
        PrefetchBRow(a_col, b_row_ptr, b_col, b_val, t, nnz_a);
        const int32_t k = a_col[t];
        const double av = kNumeric ? a_val[t] : 0.0;
        // The B row's bounds and base pointers in registers (not reloaded after each store).
        const int64_t s = b_row_ptr[k], len = b_row_ptr[k + 1] - s;
        const int32_t* __restrict bc = b_col + s;
        const double* __restrict bv = b_val + s;
        for (int64_t u = 0; u < len; ++u) {
          const uint32_t c = static_cast<uint32_t>(bc[u]);  // unsigned: no sign extensions
          uint64_t& w = bits[c >> 6];
          uint64_t word = w;
          // A repeated column is the exception in most dense rows: the new-entry path is
          // the straight one (one bt / bts each instead of building masks through cl).
          if ((word >> (c & 63)) & 1) [[unlikely]] {
            if (kNumeric) vals[c] += av * bv[u];
          } else {
            SetBit(word, c & 63);
            w = word;
            uint64_t& sw = summary[c >> 12];
            uint64_t sword = sw;
            SetBit(sword, (c >> 6) & 63);
            sw = sword;
            if (kNumeric) vals[c] = av * bv[u];
            if (!kNumeric) ++count;
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

  // Writes the accumulated row to col/val — ascending columns if `sorted`, else in the
  // table's insertion order (dense and window rows are always ascending) — clears the
  // table and returns the row's nnz. Only after a numeric Accumulate.
  int64_t Emit(int32_t* __restrict col, double* __restrict val, bool sorted) {
    if (mode_ == Mode::kWindow) return EmitWindow(col, val);
    return EmitWide(col, val, sorted);
  }

  // Emit for window rows.
  __attribute__((always_inline)) int64_t EmitWindow(int32_t* __restrict col, double* __restrict val) {
    Window& win = win_;
    {
      // Non-empty 64-column groups in column order; every visited value goes back to -0.0
      // and every visited occupancy byte to 0.
      uint8_t* __restrict occ = win.occ.data();
      double* __restrict vals = win.val.data();
      const int32_t base = static_cast<int32_t>(win.base);
      int64_t o = 0;
      for (uint64_t ws = win.summary; ws != 0; ws &= ws - 1) {
        const int w = std::countr_zero(ws);
        uint64_t x = OccupancyMask(occ + 64 * w);
        std::memset(occ + 64 * w, 0, 64);
        double* __restrict wv = vals + 64 * w;
        const int32_t wc = base + 64 * w;
        do {
          const int bit = std::countr_zero(x);
          col[o] = wc + bit;
          val[o] = wv[bit];
          wv[bit] = -0.0;
          ++o;
          x &= x - 1;
        } while (x != 0);
      }
      win.summary = 0;
      count_ = o;
      return o;
    }
  }

  // One output entry, with non-temporal stores if stream_ (C's lines are then neither read
  // for ownership nor kept in the caches: the output of a large product is written once and
  // not read back by this pass, and each line read would evict an accumulator or B line).
  __attribute__((always_inline)) void StoreEntry(int32_t* col, double* val, int32_t c, double v) const {
#if defined(__SSE2__) && defined(__x86_64__)
    if (stream_) {
      _mm_stream_si32(col, c);
      _mm_stream_si64(reinterpret_cast<long long*>(val), std::bit_cast<long long>(v));
      return;
    }
#endif
    *col = c;
    *val = v;
  }

  // Emit for hash and dense rows.
  int64_t EmitWide(int32_t* __restrict col, double* __restrict val, bool sorted) {
    if (mode_ == Mode::kDense) {
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
            StoreEntry(col + o, val + o, c, vals[c]);
            ++o;
            x &= x - 1;
          }
        }
      }
      count_ = o;
      return o;
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
      return count_;
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
      StoreEntry(col + o, val + o, static_cast<int32_t>(p[o] >> 32), vals[s]);
      keys[s] = -1;
    }
    return count_;
  }

  // Whether dense and sorted hash rows are written to C with non-temporal stores (see
  // Options::stream_min_entries); the caller then calls StreamFence() before C is read
  // elsewhere. Window rows and shifted-row plans always use ordinary stores (plans add
  // into C in place).
  void set_stream(bool stream) { stream_ = stream; }
  static void StreamFence() {
#if defined(__SSE2__) && defined(__x86_64__)
    _mm_sfence();
#endif
  }

  // Scratch row counts of the caller's current chunk (symbolic + numeric).
  std::vector<int64_t> stage_nnz;

  // Clears the table without emitting (after a symbolic pass).
  void Reset() {
    if (mode_ == Mode::kWindow) {
      Window& win = win_;
      for (uint64_t ws = win.summary; ws != 0; ws &= ws - 1) std::memset(win.occ.data() + 64 * std::countr_zero(ws), 0, 64);
      win.summary = 0;
    } else if (mode_ == Mode::kDense) {
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
  // Window accumulator for row [t0, t1) of A whose products all fall in columns
  // [base, base + kWindow): values start at -0.0 and every product is added (-0.0 + p is
  // p bit for bit, ±0, ±inf and NaN included, so this is the reference's "store the
  // first, add the rest" without a branch), an occupancy byte per column (a plain store,
  // no read-modify-write chain), the non-empty 64-column groups in the summary word.
  // Window accumulation of row [t0, t1) of A if all its products fall in one window:
  // first tried at the window starting with the first B row's first column (the row's
  // smallest on banded matrices, where A's columns and B's rows both ascend), checking
  // each B row's first and last column as it goes (no separate span pass); if a B row
  // falls outside, the window is cleared and the exact span (WindowBase) decides. Returns
  // false (window clean) for rows that fit no window. count_ = entries (symbolic only).
  template <bool kNumeric>
  __attribute__((always_inline)) bool WindowRow(const CsrView& a, const CsrView& b, int64_t t0, int64_t t1) {
    if (t0 < t1) {
      const int64_t s = b.row_ptr[a.col[t0]];
      if (s < b.row_ptr[a.col[t0] + 1] && AccumulateWindow<kNumeric, true>(a, b, t0, t1, b.col[s] & ~int64_t{63})) return true;
    }
    const int64_t base = WindowBase(a.col, b.row_ptr, b.col, t0, t1);
    if (base < 0) return false;
    AccumulateWindow<kNumeric, false>(a, b, t0, t1, base);
    return true;
  }

  // Accumulates row [t0, t1) of A into the window at `base`; kChecked: returns false
  // (window cleared) at the first B row that does not fit, else every product must fit.
  template <bool kNumeric, bool kChecked>
  __attribute__((always_inline)) bool AccumulateWindow(const CsrView& a, const CsrView& b, int64_t t0, int64_t t1, int64_t base) {
    Window& win = win_;
    if (win.occ.empty()) {
      win.occ.assign(kWindow, 0);
      win.val.assign(kWindow, -0.0);
    }
    const int32_t* __restrict a_col = a.col;
    const double* __restrict a_val = a.val;
    const int64_t* __restrict b_row_ptr = b.row_ptr;
    const int32_t* __restrict b_col = b.col;
    const double* __restrict b_val = b.val;
    const int64_t nnz_a = a.row_ptr[a.rows];
    uint8_t* __restrict occ = win.occ.data();
    double* __restrict vals = win.val.data();
    const int32_t b32 = static_cast<int32_t>(base);
    mode_ = Mode::kWindow;
    uint64_t summary = 0;
    for (int64_t t = t0; t < t1; ++t) {
      // Window rows are short on average (their B rows fit a window): fetch ahead only the
      // first line of each B row (WindowBase reads the first and last column anyway).
      if (prefetch_window_) {
        if (t + kPrefetchRowPtr < nnz_a) __builtin_prefetch(b_row_ptr + a_col[t + kPrefetchRowPtr]);
        if (t + kPrefetchData < nnz_a) {
          const int64_t start = b_row_ptr[a_col[t + kPrefetchData]];
          __builtin_prefetch(b_col + start);
          __builtin_prefetch(b_val + start);
        }
      }
      const int32_t k = a_col[t];
      const double av = kNumeric ? a_val[t] : 0.0;
      const int64_t s = b_row_ptr[k], e = b_row_ptr[k + 1];
      if (kChecked && s < e &&
          (static_cast<uint32_t>(b_col[s] - b32) | static_cast<uint32_t>(b_col[e - 1] - b32)) >= static_cast<uint32_t>(kWindow)) [[unlikely]] {
        win.base = base;
        win.summary = summary;
        ClearWindow<kNumeric>();
        return false;
      }
      for (int64_t u = s; u < e; ++u) {
        const uint32_t x = static_cast<uint32_t>(b_col[u] - b32);
        if (kNumeric) vals[x] += av * b_val[u];
        occ[x] = 0xff;
        SetBit(summary, x >> 6);  // x < kWindow = 4096
      }
    }
    win.base = base;
    win.summary = summary;
    int64_t count = 0;
    if (!kNumeric) {  // the numeric pass counts while emitting
      for (uint64_t ws = summary; ws != 0; ws &= ws - 1) count += PopCount(OccupancyMask(occ + 64 * std::countr_zero(ws)));
    }
    count_ = count;
    return true;
  }

  // Empties the window without emitting (values back to -0.0 if kNumeric wrote them).
  template <bool kNumeric>
  void ClearWindow() {
    Window& win = win_;
    for (uint64_t ws = win.summary; ws != 0; ws &= ws - 1) {
      const int w = std::countr_zero(ws);
      uint8_t* occ = win.occ.data() + 64 * w;
      if (kNumeric) {
        for (uint64_t x = OccupancyMask(occ); x != 0; x &= x - 1) win.val[64 * w + std::countr_zero(x)] = -0.0;
      }
      std::memset(occ, 0, 64);
    }
    win.summary = 0;
    count_ = 0;
  }

  // Row i = [t0, t1) of A, if the plan was built or used on row i − 1 and row i has the
  // same structure shifted by one: A's columns (relative to the row index, compared mod
  // 2^32, which is exact for int32 columns) equal to the plan's and every B row it reads
  // flagged as the B row before it shifted by one (b_shifted_), so each product lands in
  // the output position it had in row i − 1. Then: its values, summed in A's then B's
  // order from -0.0 straight in val (the caller guarantees room for nout entries), the
  // plan's columns shifted into col, true. Else false (col/val partly overwritten; the
  // caller emits the row the ordinary way).
  __attribute__((always_inline)) bool ApplyShifted(const CsrView& a, const CsrView& b, int64_t i, int64_t t0,
                                                   int64_t t1, int32_t* __restrict col, double* __restrict val) {
    ShiftedRow& s = shifted_;
    if (s.row != i - 1 || t1 - t0 != s.na) return false;
    const int32_t* __restrict a_col = a.col + t0;
    const double* __restrict a_val = a.val + t0;
    const int64_t* __restrict b_row_ptr = b.row_ptr;
    const double* __restrict b_val = b.val;
    const uint8_t* __restrict b_shifted = b_shifted_;
    const uint32_t ii = static_cast<uint32_t>(i);
    const int32_t nout = s.nout;
    for (int32_t j = 0; j < nout; ++j) val[j] = -0.0;
    const uint8_t* __restrict slot = s.slot;
    for (int32_t t = 0; t < s.na; ++t) {
      const int32_t k = a_col[t];
      if (((static_cast<uint32_t>(k) - ii) ^ s.a_rel[t]) != 0 || b_shifted[k] == 0) return false;
      const double av = a_val[t];
      const double* __restrict bv = b_val + b_row_ptr[k];
      const uint32_t len = s.b_len[t];
      // The columns of one B row are distinct, so its products may go in any order: short
      // rows fully unrolled (no loop counter; one jump on the plan's fixed lengths).
      switch (len) {
        case 8: val[slot[7]] += av * bv[7]; [[fallthrough]];
        case 7: val[slot[6]] += av * bv[6]; [[fallthrough]];
        case 6: val[slot[5]] += av * bv[5]; [[fallthrough]];
        case 5: val[slot[4]] += av * bv[4]; [[fallthrough]];
        case 4: val[slot[3]] += av * bv[3]; [[fallthrough]];
        case 3: val[slot[2]] += av * bv[2]; [[fallthrough]];
        case 2: val[slot[1]] += av * bv[1]; [[fallthrough]];
        case 1: val[slot[0]] += av * bv[0]; [[fallthrough]];
        case 0: break;
        default:
          for (uint32_t q = 0; q < len; ++q) val[slot[q]] += av * bv[q];
      }
      slot += len;
    }
    for (int32_t j = 0; j < nout; ++j) col[j] = static_cast<int32_t>(s.out_rel[j] + ii);
    s.row = i;
    return true;
  }

  // Makes row i = [t0, t1) of A, just emitted to col (cnt entries, ascending), the plan
  // for row i + 1, if it has at most kShiftedMaxA nonzeros and kShiftedMaxProducts
  // products (else the plan is dropped).
  void BuildShifted(const CsrView& a, const CsrView& b, int64_t i, int64_t t0, int64_t t1, const int32_t* col,
                    int64_t cnt) {
    ShiftedRow& s = shifted_;
    s.row = -2;
    if (t1 - t0 > kShiftedMaxA) return;
    const uint32_t ii = static_cast<uint32_t>(i);
    int32_t p = 0;
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t k = a.col[t];
      const int64_t start = b.row_ptr[k], len = b.row_ptr[k + 1] - start;
      if (p + len > kShiftedMaxProducts) return;
      s.a_rel[t - t0] = static_cast<uint32_t>(k) - ii;
      s.b_len[t - t0] = static_cast<uint32_t>(len);
      for (int64_t u = start; u < start + len; ++u, ++p) {
        s.slot[p] = static_cast<uint8_t>(std::lower_bound(col, col + cnt, b.col[u]) - col);
      }
    }
    s.na = static_cast<int32_t>(t1 - t0);
    s.nout = static_cast<int32_t>(cnt);  // ≤ p ≤ kShiftedMaxProducts
    for (int64_t j = 0; j < cnt; ++j) s.out_rel[j] = static_cast<uint32_t>(col[j]) - ii;
    s.row = i;
  }

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
  bool use_window_;
  bool prefetch_window_;
  bool use_shifted_;
  const uint8_t* b_shifted_;
  std::atomic<int64_t>* shifted_rows_total_;
  int64_t shifted_rows_ = 0;  // rows emitted by ApplyShifted
  // The structure of the last short row emitted, relative to its row index (all mod 2^32).
  struct ShiftedRow {
    int64_t row = -2;                        // the row it was built or last used on
    int32_t na = 0, nout = 0;
    uint32_t a_rel[kShiftedMaxA];            // A's columns
    uint32_t b_len[kShiftedMaxA];            // their B rows' lengths
    uint8_t slot[kShiftedMaxProducts];       // output position of each product
    uint32_t out_rel[kShiftedMaxProducts];   // output columns, ascending
  };
  ShiftedRow shifted_;
  Mode mode_ = Mode::kHash;
  // Window rows.
  struct Window {
    int64_t base = 0;      // first column of the window
    uint64_t summary = 0;  // bit w set iff occ[64w, 64w + 64) has an entry
    std::vector<uint8_t> occ;  // 0xff where occupied, else 0
    std::vector<double> val;   // values, -0.0 where unoccupied
  };
  Window win_;
  bool stream_ = false;
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
void ForEachChunk(int64_t chunks, int threads, int64_t n, WindowPlan plan, Body body) {
  std::exception_ptr error;
  std::mutex error_mu;
#pragma omp parallel num_threads(threads)
  {
    try {
      RowAccumulator acc(n, plan);
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
// ub_in: every row's ub, or null. Null with one thread: when nnz(A) · (longest B row) ≤
// single_pass_max_entries, that bound sizes C and row ubs are computed only where needed
// (hash / dense rows, the row sample): no pass over all of A for them.
CsrMatrix RowHash(const CsrView& a, const CsrView& b, const int64_t* ub_in,
                  bool sorted, int threads, int64_t single_pass_max_entries, int64_t stream_min_entries,
                  std::atomic<int64_t>* shifted_rows) {
  CsrMatrix c;
  c.rows = a.rows;
  c.cols = b.cols;
  c.row_ptr.assign(a.rows + 1, 0);
  const int64_t n = b.cols;
  const int64_t chunks = (a.rows + kRowChunk - 1) / kRowChunk;
  auto rows_of = [&](int64_t ch) {
    return std::pair<int64_t, int64_t>{ch * kRowChunk, std::min(a.rows, (ch + 1) * kRowChunk)};
  };
  int64_t lazy_bound = -1;  // ≥ 0: Σ min(ub_i, n) ≤ lazy_bound, row ubs computed on demand
  if (ub_in == nullptr && threads == 1) {
    int64_t longest = 0;
    for (int64_t k = 0; k < b.rows; ++k) longest = std::max(longest, b.row_ptr[k + 1] - b.row_ptr[k]);
    const int64_t nnz_a = a.nnz();
    if (longest == 0 || nnz_a <= single_pass_max_entries / longest) lazy_bound = nnz_a * longest;
  }
  OutputVector<int64_t> ub_local;
  const int64_t* ub = ub_in;
  if (ub == nullptr && lazy_bound < 0) {
    ub_local.resize(a.rows);
    RowUbs(a, b, ub_local.data());
    ub = ub_local.data();
  }
  auto ub_of = [&](int64_t i) { return ub != nullptr ? ub[i] : RowUb(a, b, i); };
  auto ub_entries = ub_of;
  // Upper-bound offset of every chunk: Σ min(ub_i, n) over the rows before it (not with
  // lazy_bound: one thread needs only the total).
  std::vector<int64_t> cap(chunks + 1, 0);
  if (lazy_bound < 0) {
    for (int64_t ch = 0; ch < chunks; ++ch) {
      auto [r0, r1] = rows_of(ch);
      int64_t s = 0;
      for (int64_t i = r0; i < r1; ++i) s += std::min(ub[i], n);
      cap[ch + 1] = cap[ch] + s;
    }
  }
  // A sample of rows gives the share of window rows (span check only; under
  // 1/kMinWindowShare the window check is skipped for every row) and, when a single pass
  // is possible, Σ min(ub_i, n) / nnz(C) by a symbolic pass over the sampled rows.
  // Up to single_pass_max_entries, one numeric pass straight into C: one thread at the
  // exact offsets; several threads "fused" (every chunk at its upper-bound offset, which
  // with huge pages touches about cap[chunks] entries of memory and pays off only when C is
  // nearly as large as its upper bound) or by ranges (one contiguous range of chunks per
  // thread, touching about nnz(C) entries); then moved down to the exact offsets.
  const bool single_pass = lazy_bound >= 0 || cap[chunks] <= single_pass_max_entries;
  bool fused = single_pass;
  WindowPlan plan;
  OutputVector<uint8_t> b_shifted;
  {
    // Symbolic rows only when the fused/ranges choice is needed: on big skewed products
    // (R-MAT) row 0 alone can hold 10% of the flops.
    RowAccumulator acc(n, WindowPlan{});
    int64_t sample_cap = 0, sample_nnz = 0, window_rows = 0, sampled_rows = 0, steady_rows = 0, shifted_sampled = 0;
    const int64_t stride = std::max<int64_t>(1, a.rows / kSampleRows);
    for (int64_t i = 0; i < a.rows; i += stride) {
      const int64_t ub_i = ub_of(i);
      if (ub_i == 0) continue;
      ++sampled_rows;
      window_rows += RowAccumulator::WindowBase(a.col, b.row_ptr, b.col, a.row_ptr[i], a.row_ptr[i + 1]) >= 0;
      shifted_sampled += i > 0 && RowAccumulator::SameShiftedStructure(a, b, i - 1, i);
      // Steady: row i of A spans at most kWindow columns and row i + 1 starts within 64
      // columns of it (banded A walking down its diagonal).
      const int64_t t0 = a.row_ptr[i], t1 = a.row_ptr[i + 1];
      steady_rows += i + 1 < a.rows && a.row_ptr[i + 2] > t1 && a.col[t1 - 1] - a.col[t0] <= kWindow &&
                     std::abs(static_cast<int64_t>(a.col[t1]) - a.col[t0]) <= 64;
      if (single_pass && threads > 1) {
        sample_cap += std::min(ub_i, n);
        sample_nnz += acc.Accumulate<false>(a, b, i, ub_i, ub_i);
        acc.Reset();
      }
    }
    fused = single_pass && threads > 1 && sample_cap <= kFusedMaxSlack * static_cast<double>(sample_nnz);
    plan.use = window_rows > 0 && window_rows * kMinWindowShare >= sampled_rows;
    if (sampled_rows > 0 && shifted_sampled * kMinShiftedShare >= sampled_rows) {
      b_shifted.resize(b.rows);
      ShiftFlags(b, b_shifted.data());
      plan.b_shifted = b_shifted.data();
      plan.shifted_rows = shifted_rows;
    }
    plan.prefetch = steady_rows * kMinWindowShare < (kMinWindowShare - 1) * sampled_rows;
  }
  if (single_pass && threads == 1) {
    // Rows in order, straight into C at their exact offsets (C's arrays are sized to the
    // upper bound without being filled: only the nnz(C) entries written are ever touched).
    const int64_t room = lazy_bound >= 0 ? lazy_bound : cap[chunks];
    ResizeOutput(c.col, room);
    ResizeOutput(c.val, room);
    RowAccumulator acc(n, plan);
    acc.set_stream(room >= stream_min_entries);
    const int64_t nnz = acc.NumericRows(a, b, 0, a.rows, ub_of, ub_entries, sorted, c.col.data(),
                                        c.val.data(), room, c.row_ptr.data() + 1);
    RowAccumulator::StreamFence();
    PrefixSum(c.row_ptr.data() + 1, a.rows);
    c.col.resize(nnz);
    c.val.resize(nnz);
    return c;
  }
  if (fused) {
    // Each chunk's rows are written back to back from the chunk's upper-bound offset, then
    // the chunks are moved down to their exact offsets.
    ResizeOutput(c.col, cap[chunks]);
    ResizeOutput(c.val, cap[chunks]);
    ForEachChunk(chunks, threads, n, plan, [&](int64_t ch, RowAccumulator& acc) {
      auto [r0, r1] = rows_of(ch);
      acc.NumericRows(a, b, r0, r1, ub_of, ub_entries, sorted, c.col.data() + cap[ch],
                      c.val.data() + cap[ch], cap[ch + 1] - cap[ch], c.row_ptr.data() + 1 + r0);
    });
    PrefixSum(c.row_ptr.data() + 1, a.rows);
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
  if (single_pass) {
    // `threads` contiguous ranges of chunks with about equal upper bounds, each written
    // row after row from its upper-bound offset, then moved down (range 0 stays).
    std::vector<int64_t> split(threads + 1, chunks);
    split[0] = 0;
    for (int t = 1; t < threads; ++t) {
      const int64_t want = cap[chunks] / threads * t;
      split[t] = std::max(split[t - 1], static_cast<int64_t>(std::lower_bound(cap.begin(), cap.end() - 1, want) - cap.begin()));
    }
    ResizeOutput(c.col, cap[chunks]);
    ResizeOutput(c.val, cap[chunks]);
    std::exception_ptr error;
    std::mutex error_mu;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < threads; ++t) {
      try {
        const int64_t r0 = std::min(a.rows, split[t] * kRowChunk), r1 = std::min(a.rows, split[t + 1] * kRowChunk);
        RowAccumulator acc(n, plan);
        acc.NumericRows(a, b, r0, r1, ub_of, ub_entries, sorted, c.col.data() + cap[split[t]],
                        c.val.data() + cap[split[t]], cap[split[t + 1]] - cap[split[t]], c.row_ptr.data() + 1 + r0);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    PrefixSum(c.row_ptr.data() + 1, a.rows);
    for (int t = 1; t < threads; ++t) {
      const int64_t r0 = std::min(a.rows, split[t] * kRowChunk), r1 = std::min(a.rows, split[t + 1] * kRowChunk);
      const int64_t dst = c.row_ptr[r0], src = cap[split[t]], len = c.row_ptr[r1] - dst;
      if (dst != src && len > 0) {
        std::memmove(c.col.data() + dst, c.col.data() + src, len * sizeof(int32_t));
        std::memmove(c.val.data() + dst, c.val.data() + src, len * sizeof(double));
      }
    }
    const int64_t nnz = c.row_ptr[a.rows];
    c.col.resize(nnz);
    c.val.resize(nnz);
    return c;
  }
  // Symbolic pass (exact row sizes), then the numeric pass into exactly sized arrays.
  ForEachChunk(chunks, threads, n, plan, [&](int64_t ch, RowAccumulator& acc) {
    auto [r0, r1] = rows_of(ch);
    for (int64_t i = r0; i < r1; ++i) {
      const int64_t ub_i = ub_of(i);
      c.row_ptr[i + 1] = acc.Accumulate<false>(a, b, i, ub_i, ub_i);
      acc.Reset();
    }
  });
  PrefixSum(c.row_ptr.data() + 1, a.rows);
  ResizeOutputPopulated(c.col, c.row_ptr[a.rows]);
  ResizeOutputPopulated(c.val, c.row_ptr[a.rows]);
  const bool stream = c.row_ptr[a.rows] >= stream_min_entries;
  ForEachChunk(chunks, threads, n, plan, [&](int64_t ch, RowAccumulator& acc) {
    auto [r0, r1] = rows_of(ch);
    acc.stage_nnz.resize(kRowChunk);
    acc.set_stream(stream);
    // The table is sized by the row's exact nnz (load ≤ 1/2) rather than its ub.
    acc.NumericRows(a, b, r0, r1, ub_of, [&](int64_t i) { return c.row_ptr[i + 1] - c.row_ptr[i]; },
                    sorted, c.col.data() + c.row_ptr[r0], c.val.data() + c.row_ptr[r0],
                    c.row_ptr[r1] - c.row_ptr[r0], acc.stage_nnz.data());
    RowAccumulator::StreamFence();
  });
  return c;
}

CsrMatrix SmashAtomic(const CsrView& a, const CsrView& b, const int64_t* ub,
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
  // Row upper bounds: for the statistics and SMASH; row_hash computes them itself when not
  // given (with one thread, possibly only for the rows that need them).
  OutputVector<int64_t> ub;  // not zero-filled
  if (stats != nullptr || options.method == Method::kSmashAtomic) {
    ub.resize(a.rows);
    RowUbs(a, b, ub.data());
  }
  CsrMatrix c;
  std::atomic<int64_t> shifted_rows{0};
  switch (options.method) {
    case Method::kRowHash:
      c = RowHash(a, b, ub.empty() ? nullptr : ub.data(), options.sort_columns, threads, options.single_pass_max_entries,
                    options.stream_min_entries, &shifted_rows);
      break;
    case Method::kSmashAtomic: c = SmashAtomic(a, b, ub.data(), threads); break;
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
    stats->shifted_rows = shifted_rows.load();
    stats->compression = stats->nnz > 0 ? static_cast<double>(stats->flops) / stats->nnz : 0.0;
  }
  if (options.prune_zeros) PruneZeros(&c);
  return c;
}

}  // namespace chamferdb::spgemm
