// Sparse × sparse matrix product C = A·B on CSR matrices: row-wise (Gustavson) SpGEMM with
// hash accumulators, after SMASH (Shivdikar, "SMASH: Sparse Matrix Atomic Scratchpad
// Hashing", 2021) rendered for CPUs.
//
// Data layout (CSR): row_ptr[rows + 1] (int64, row_ptr[0] = 0, non-decreasing, last = nnz),
// col[nnz] (int32, strictly increasing inside each row, in [0, cols)), val[nnz] (double).
// Semantics: C has the *structural* pattern of A·B — an entry exists wherever at least one
// product a_it·b_tc contributes, even if the values cancel to 0 (Eigen's conservative
// product does the same); `prune_zeros` drops exact zeros afterwards. Columns of every
// output row are sorted ascending (kRowHash: unless sort_columns is false).
//
// Methods:
//   kRowHash     Gustavson rows with a per-thread accumulator chosen per row: a window
//                accumulator when all of the row's products fall in 4096 consecutive
//                columns (value array preset to -0.0 so every product is simply added,
//                occupancy bytes, a one-word summary of non-empty 64-column groups, emitted
//                in column order by a group scan, no sort — banded, stencil and mesh
//                matrices, and every product with n ≤ 4096; tried first at the window
//                starting at the first B row's first column, each B row checked as it
//                is read, the exact span computed only when one misses); else a dense value array with
//                a two-level occupancy bitmap for rows with ub_i ≥ max(n/256, 128) or
//                ub_i > n/4; else an open-addressing table (linear probing, load ≤ 1/2,
//                multiplicative hash, size next_pow2(2·min(ub_i, n)) or, after a symbolic
//                pass, next_pow2(2·nnz_i)), its slots then sorted. When Σ min(ub_j, n) ≤
//                single_pass_max_entries, one numeric pass writes C (single thread: every row
//                at its exact offset; several threads: 64-row chunks at upper-bound
//                offsets, dynamically scheduled, if a sample of rows shows that bound
//                within 12.5% of nnz(C), else one contiguous range of chunks per thread,
//                each then moved down to its exact offset). Above the cap, a symbolic pass
//                sizes C exactly first. B rows (every cache line of their first 32
//                entries) are prefetched 16 nonzeros of A ahead (row_ptr 64 ahead; not for window rows when A is
//                banded and its rows advance steadily). Output buffers of ≥ 8 MiB are
//                madvise(MADV_HUGEPAGE)d before their first touch (Linux). Each row is
//                accumulated by one thread in A's column order, then B's, starting from the
//                first product: deterministic, bit-identical for any thread count and
//                strategy (and to kReference, which sums in the same order).
//                Shifted-row plans (stencils, bands): when at least half of the sampled
//                rows have the previous row's structure shifted by one (A's columns and
//                every B row's columns relative to the row index; ≤ 16 nonzeros of A and
//                ≤ 128 products), a pass over B flags every B row that is its predecessor
//                with each column plus one, and each sorted short row emitted becomes a
//                plan: the output position of each of its products. The next row is then
//                checked against it (A's relative columns, and the flag of each B row it
//                reads) and, if it matches, its products are added straight into C at
//                those positions (values preset to -0.0, the same order as the reference)
//                and its columns are the plan's shifted by one — no accumulator, no emit
//                scan; otherwise it is accumulated as above and becomes the new plan.
//                C's arrays are sized to the upper bound without being filled (see
//                OutputVector): only the nnz(C) entries written are touched; the exactly
//                sized output of the symbolic path is prefaulted (MADV_POPULATE_WRITE). With
//                sort_columns = false, hash rows come out in first-insertion order (still
//                deterministic; window and dense rows are always sorted). Large outputs
//                (Options::stream_min_entries) get dense and sorted hash rows written with
//                non-temporal stores (fenced before SpGemm returns).
//   kSmashAtomic the thesis idea: rows grouped into windows whose hash table fits in L2;
//                the partial products of a window are split evenly across threads
//                ignoring row boundaries and merged into one shared table with CAS on
//                the key (row << 32 | col) and atomic adds on the value. The pattern is
//                deterministic; values with ≥ 3 contributions may differ in the last ulps
//                from run to run (summation order follows thread timing).
//   kDenseSpa    Eigen-style dense accumulator of length n per row (single thread).
//   kReference   std::map<int, double> per row, O(flops log) — the independent reference.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace chamferdb::spgemm {

struct CsrView {
  int64_t rows = 0, cols = 0;
  const int64_t* row_ptr = nullptr;
  const int32_t* col = nullptr;
  const double* val = nullptr;
  int64_t nnz() const { return row_ptr[rows]; }
};

// std::allocator that default-initializes: resize(n) of int32/double leaves the new
// elements uninitialized instead of zeroing them (value-initialization is unchanged:
// resize(n, x), assign and push_back behave as usual). SpGemm sizes its output arrays to an
// upper bound and writes the rows straight into them: zero-filling first would write the
// whole output once more.
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() = default;
  template <typename U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <typename T>
using OutputVector = std::vector<T, DefaultInitAllocator<T>>;

// Caution: resize() to a larger size leaves col/val's new elements uninitialized.
struct CsrMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> row_ptr;  // rows + 1
  OutputVector<int32_t> col;
  OutputVector<double> val;
  CsrView view() const { return {rows, cols, row_ptr.data(), col.data(), val.data()}; }
};

enum class Method { kRowHash, kSmashAtomic, kDenseSpa, kReference };

struct Options {
  Method method = Method::kRowHash;
  bool prune_zeros = false;
  bool sort_columns = true;  // kRowHash only; every other method always sorts
  int threads = 1;
  // kRowHash only, a tuning knob (tests lower it): when Σ_i min(ub_i, n) exceeds this many
  // entries, a symbolic pass sizes C exactly before the numeric pass; otherwise a single
  // numeric pass writes C (output buffers reserved for that many entries, untouched beyond
  // nnz(C)). One thread without Stats: if nnz(A) · (longest B row) is at most this, that
  // bound is reserved instead and row ubs are computed only where needed.
  int64_t single_pass_max_entries = int64_t{1} << 27;
  // kRowHash only, a tuning knob (tests set 0): when C is sized to at least this many
  // entries (one thread, single pass: the upper bound it reserves; the symbolic path:
  // nnz(C)), dense and sorted hash rows are written with non-temporal stores (x86-64;
  // ordinary stores elsewhere and for every other kind of row). Values are the same bits
  // either way.
  int64_t stream_min_entries = int64_t{1} << 22;
};

struct Stats {
  int64_t flops = 0;         // Σ_i ub_i = number of partial products
  int64_t nnz = 0;           // nnz(C) (before pruning)
  double compression = 0.0;  // flops / nnz(C) (0 when C is empty)
  int64_t max_row_ub = 0;
  double mean_row_ub = 0.0;
  int64_t nnz_upper = 0;     // Σ_i min(ub_i, n) ≥ nnz(C): sizes the output before the run
  int64_t shifted_rows = 0;  // kRowHash: rows computed through a shifted-row plan
};

// OK, or INVALID_ARGUMENT naming `name` and the first violation of the CSR layout above.
// Cols must fit int32; rows/cols ≥ 0.
absl::Status ValidateCsr(const CsrView& m, std::string_view name);

// Σ_i ub_i (the partial products), the largest ub_i and Σ_i min(ub_i, n). REQUIRES a.cols == b.rows and
// valid matrices. O(nnz(A)).
Stats ComputeUpperBounds(const CsrView& a, const CsrView& b);

// C = A·B. REQUIRES a.cols == b.rows, both valid (ValidateCsr). `stats` may be null; when
// given, it is filled (this costs one more pass over A's columns for the row upper bounds
// when the method would not otherwise need them all).
CsrMatrix SpGemm(const CsrView& a, const CsrView& b, const Options& options, Stats* stats);

}  // namespace chamferdb::spgemm
