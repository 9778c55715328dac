#include "kernels/spgemm/spgemm.h"

#include <Eigen/SparseCore>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"
#include "kernels/spgemm/generators.h"

namespace chamferdb::spgemm {
namespace {

std::vector<double> Dense(const CsrMatrix& m) {
  std::vector<double> d(m.rows * m.cols, 0.0);
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t t = m.row_ptr[i]; t < m.row_ptr[i + 1]; ++t) d[i * m.cols + m.col[t]] = m.val[t];
  return d;
}

// Independent check against a dense GEMM on the densified inputs; the pattern is the
// boolean product of the patterns.
void ExpectMatchesDense(const CsrMatrix& a, const CsrMatrix& b, const CsrMatrix& c) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  auto da = Dense(a), db = Dense(b);
  std::vector<char> pa(m * k, 0), pb(k * n, 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t t = a.row_ptr[i]; t < a.row_ptr[i + 1]; ++t) pa[i * k + a.col[t]] = 1;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t t = b.row_ptr[i]; t < b.row_ptr[i + 1]; ++t) pb[i * n + b.col[t]] = 1;
  ASSERT_EQ(c.rows, m);
  ASSERT_EQ(c.cols, n);
  auto dc = Dense(c);
  std::vector<char> pc(m * n, 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t t = c.row_ptr[i]; t < c.row_ptr[i + 1]; ++t) {
      if (t > c.row_ptr[i]) {
        ASSERT_LT(c.col[t - 1], c.col[t]);
      }
      pc[i * n + c.col[t]] = 1;
    }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double v = 0, mag = 0;
      bool structural = false;
      for (int64_t l = 0; l < k; ++l) {
        v += da[i * k + l] * db[l * n + j];
        mag += std::fabs(da[i * k + l] * db[l * n + j]);
        structural = structural || (pa[i * k + l] && pb[l * n + j]);
      }
      ASSERT_EQ(pc[i * n + j], structural) << i << "," << j;
      ASSERT_NEAR(dc[i * n + j], v, 1e-13 * mag + 1e-300);
    }
}

const Method kAll[] = {Method::kRowHash, Method::kSmashAtomic, Method::kDenseSpa, Method::kReference};

TEST(SpGemm, EveryMethodMatchesDenseGemmOnAwkwardShapes) {
  uint64_t seed = 1;
  for (auto [m, k, n] : std::vector<std::tuple<int, int, int>>{{1, 1, 1}, {3, 15, 17}, {17, 3, 15}, {60, 40, 50}, {5, 0, 4}, {0, 4, 3}, {127, 33, 1}, {6, 30, 9000}}) {
    for (double dens : {0.05, 0.3, 0.9}) {
      auto a = RandomCsr(m, k, dens, ++seed), b = RandomCsr(k, n, dens, ++seed);
      for (Method method : kAll) {
        Options opt;
        opt.method = method;
        opt.threads = 2;
        Stats st;
        auto c = SpGemm(a.view(), b.view(), opt, &st);
        ExpectMatchesDense(a, b, c);
        EXPECT_LE(st.nnz, std::min<int64_t>(st.flops, int64_t{m} * n));
      }
    }
  }
}

TEST(SpGemm, RowHashAndDenseSpaEqualTheMapReferenceBitForBit) {
  // Same summation order (A's column order, then B's), so even the values are identical.
  auto a = Rmat(10, 8, 3), b = Rmat(10, 8, 4);
  Options ref;
  ref.method = Method::kReference;
  auto r = SpGemm(a.view(), b.view(), ref, nullptr);
  for (Method method : {Method::kRowHash, Method::kDenseSpa}) {
    for (int threads : {1, 2}) {
      Options opt;
      opt.method = method;
      opt.threads = threads;
      auto c = SpGemm(a.view(), b.view(), opt, nullptr);
      EXPECT_EQ(c.row_ptr, r.row_ptr);
      EXPECT_EQ(c.col, r.col);
      EXPECT_EQ(c.val, r.val);
    }
  }
}

// Bit patterns of the values (EXPECT_EQ on doubles would call -0.0 == 0.0 equal).
template <typename Vector>
std::vector<uint64_t> Bits(const Vector& v) {
  std::vector<uint64_t> b(v.size());
  if (!v.empty()) std::memcpy(b.data(), v.data(), v.size() * sizeof(double));
  return b;
}

TEST(SpGemm, RowHashEveryStrategyAndUnsortedRowsMatchTheMapReference) {
  // ER 20000 × 5 squares barely compress (flops ≈ nnz(C)) and their rows spread over far
  // more than the 4096-column window: hash rows, fused single pass at upper-bound offsets.
  // The R-MAT scale-13 square compresses > 1.5× and mixes window rows (R-MAT's columns
  // crowd the low indices), hash rows and dense rows (ub > n/4): staged single pass, and
  // with single_pass_max_entries = 0 symbolic + numeric passes. Every strategy must equal
  // the map reference bit for bit for 1 and 3 threads; unsorted rows must hold the same
  // (column, value) pairs.
  for (const auto& [a, expect_fused] :
       std::vector<std::pair<CsrMatrix, bool>>{{ErdosRenyi(20000, 5, 11), true}, {Rmat(13, 4, 12), false}}) {
    Options ref;
    ref.method = Method::kReference;
    Stats st;
    const auto r = SpGemm(a.view(), a.view(), ref, &st);
    if (expect_fused) {
      EXPECT_LT(st.compression, 1.05);
    } else {
      EXPECT_GT(st.compression, 1.5);
      EXPECT_GT(st.max_row_ub, a.cols / 4);
    }
    for (int64_t single_pass_max : {int64_t{1} << 27, int64_t{0}}) {
      for (int threads : {1, 3}) {
        Options opt;
        opt.threads = threads;
        opt.single_pass_max_entries = single_pass_max;
        const auto c = SpGemm(a.view(), a.view(), opt, nullptr);
        EXPECT_EQ(c.row_ptr, r.row_ptr);
        EXPECT_EQ(c.col, r.col);
        EXPECT_EQ(Bits(c.val), Bits(r.val));
        opt.sort_columns = false;
        const auto u = SpGemm(a.view(), a.view(), opt, nullptr);
        ASSERT_EQ(u.row_ptr, r.row_ptr);
        bool any_unsorted = false;
        for (int64_t i = 0; i < u.rows; ++i) {
          std::vector<std::pair<int32_t, double>> row;
          for (int64_t t = u.row_ptr[i]; t < u.row_ptr[i + 1]; ++t) {
            row.emplace_back(u.col[t], u.val[t]);
            any_unsorted = any_unsorted || (t > u.row_ptr[i] && u.col[t] < u.col[t - 1]);
          }
          std::sort(row.begin(), row.end());
          for (size_t t = 0; t < row.size(); ++t) {
            ASSERT_EQ(row[t].first, r.col[r.row_ptr[i] + t]);
            ASSERT_EQ(row[t].second, r.val[r.row_ptr[i] + t]);
          }
        }
        EXPECT_TRUE(any_unsorted);  // the option really skips the sort of hash rows
      }
    }
  }
}

// A (m × k) and B (k × n, n = 10000) built so that row_hash's three accumulators and the
// edges between them all occur: B's rows are short runs of columns around chosen centres,
// and each row of A picks B rows whose runs span (after aligning the first column down to a
// multiple of 64) exactly 4095 columns (the last that fits the 4096-column window) or
// 4096 (the first that does not), a few columns (window), the whole width (hash), or
// most B rows (dense: ub ≥ 128). Also: empty rows of A, A rows reaching only empty
// B rows, columns hit by many B rows (long per-column sums), explicit zeros, -0.0
// products (-0.0 must survive as the first and only product), +0.0 + -0.0 sums, and — when
// `non_finite` — ±inf and NaN.
std::pair<CsrMatrix, CsrMatrix> WindowEdgeCases(bool non_finite, uint64_t seed) {
  Rng rng(seed);
  const int32_t n = 10000;
  std::vector<std::vector<int32_t>> b_rows;
  auto value = [&](int j) {
    switch (j % 11) {
      case 0: return 0.0;
      case 1: return -0.0;
      case 2: return non_finite ? std::numeric_limits<double>::infinity() : 1.5;
      case 3: return non_finite ? std::numeric_limits<double>::quiet_NaN() : -2.5;
      default: return rng.Normal();
    }
  };
  // B row r: 1 + r % 4 consecutive columns from starts[r]; the 8 special rows at the end
  // (the window edges) 3 columns each.
  std::vector<int32_t> starts;
  for (int32_t c = 0; c < n - 8; c += 61) starts.push_back(c);
  const std::vector<int32_t> specials = {64, 4157, 4158, 70, 127, 4221, 4222, 128};
  const size_t first_special = starts.size();
  starts.insert(starts.end(), specials.begin(), specials.end());
  for (size_t r = 0; r < starts.size(); ++r) {
    const int32_t len = r >= first_special ? 3 : static_cast<int32_t>(1 + r % 4);
    std::vector<int32_t> cols;
    for (int32_t j = 0; j < len && starts[r] + j < n; ++j) cols.push_back(starts[r] + j);
    b_rows.push_back(cols);
  }
  const int32_t k_runs = static_cast<int32_t>(b_rows.size());
  b_rows.push_back({});  // k_runs: an empty B row
  b_rows.push_back({});  // k_runs + 1: another
  CsrMatrix b;
  b.rows = static_cast<int64_t>(b_rows.size());
  b.cols = n;
  b.row_ptr.push_back(0);
  int j = 0;
  for (const auto& row : b_rows) {
    for (int32_t c : row) {
      b.col.push_back(c);
      b.val.push_back(value(j++));
    }
    b.row_ptr.push_back(static_cast<int64_t>(b.col.size()));
  }
  // Index of the special B row starting at column c (columns c, c + 1, c + 2).
  auto row_at = [&](int32_t c) {
    for (size_t r = first_special; r < starts.size(); ++r)
      if (starts[r] == c) return static_cast<int32_t>(r);
    return -1;
  };
  // Span = last column − (first column rounded down to a multiple of 64); the window holds
  // spans ≤ 4095.
  std::vector<std::vector<int32_t>> a_rows;
  a_rows.push_back({});                            // empty
  a_rows.push_back({k_runs, k_runs + 1});          // only empty B rows
  a_rows.push_back({row_at(64), row_at(4157)});    // 4159 − 64 = 4095: window
  a_rows.push_back({row_at(64), row_at(4158)});    // 4160 − 64 = 4096: not
  a_rows.push_back({row_at(70), row_at(4157)});    // 70 rounds down to 64: 4095, window
  a_rows.push_back({row_at(127), row_at(4158)});   // 4160 − 127 < 4096, but 4160 − 64: not
  a_rows.push_back({row_at(4221), row_at(128), k_runs});  // the later B row lowers the
  a_rows.push_back({row_at(4222), row_at(128)});          // first column: 4095 / 4096
  std::vector<int32_t> all;
  for (int32_t r = 0; r < k_runs; ++r) all.push_back(r);
  a_rows.push_back(all);  // every run: dense
  for (int i = 0; i < 60; ++i) {
    std::vector<int32_t> row;
    const int kind = i % 3;
    if (kind == 0) {  // a few neighbouring runs: window, columns shared by several B rows
      const int32_t r0 = static_cast<int32_t>(rng.UniformInt(k_runs - 10));
      for (int32_t r = r0; r < r0 + 6; ++r) row.push_back(r);
    } else if (kind == 1) {  // random runs over the whole width: hash
      for (int t = 0; t < 12; ++t) row.push_back(static_cast<int32_t>(rng.UniformInt(k_runs)));
    } else {  // most runs: dense
      for (int32_t r = 0; r < k_runs; ++r)
        if (rng.Uniform() < 0.9) row.push_back(r);
    }
    a_rows.push_back(row);
  }
  CsrMatrix a = FromRows(a_rows, b.rows, rng);
  // Sprinkle special values into A as well.
  for (size_t t = 0; t < a.val.size(); t += 7) a.val[t] = value(static_cast<int>(t / 7));
  return {a, b};
}

TEST(SpGemm, RowHashWindowHashAndDenseRowsMatchTheReferencesOnEdgeCases) {
  auto [a, b] = WindowEdgeCases(false, 21);
  ASSERT_TRUE(ValidateCsr(a.view(), "a").ok());
  ASSERT_TRUE(ValidateCsr(b.view(), "b").ok());
  Options ref;
  ref.method = Method::kReference;
  Stats st;
  const auto r = SpGemm(a.view(), b.view(), ref, &st);
  EXPECT_GE(st.max_row_ub, 128);  // the dense accumulator (ub ≥ max(n/256, 128)) is reached
  ExpectMatchesDense(a, b, r);     // the map reference itself against dense GEMM
  std::vector<uint64_t> first_bits;
  for (int64_t single_pass_max : {int64_t{1} << 27, int64_t{0}}) {
    for (int threads : {1, 2}) {
      for (int64_t stream_min : {Options{}.stream_min_entries, int64_t{0}}) {  // 0: non-temporal stores
        Options opt;
        opt.threads = threads;
        opt.single_pass_max_entries = single_pass_max;
        opt.stream_min_entries = stream_min;
        const auto c = SpGemm(a.view(), b.view(), opt, nullptr);
        EXPECT_EQ(c.row_ptr, r.row_ptr);
        EXPECT_EQ(c.col, r.col);
        EXPECT_EQ(Bits(c.val), Bits(r.val));  // incl. the sign of zeros
        if (first_bits.empty()) first_bits = Bits(c.val);
        EXPECT_EQ(Bits(c.val), first_bits) << threads << " threads, stream " << stream_min;
      }
    }
  }
  // The -0.0 cases are really there: some entry is -0.0 and some +0.0.
  bool neg_zero = false, pos_zero = false;
  for (double v : r.val) {
    neg_zero = neg_zero || (v == 0.0 && std::signbit(v));
    pos_zero = pos_zero || (v == 0.0 && !std::signbit(v));
  }
  EXPECT_TRUE(neg_zero);
  EXPECT_TRUE(pos_zero);
}

TEST(SpGemm, RowHashPropagatesInfAndNanLikeTheReference) {
  // The library accepts non-finite values (the server rejects them): inf and NaN must
  // land in the same entries as with the map reference, finite entries bit-identical.
  auto [a, b] = WindowEdgeCases(true, 22);
  Options ref;
  ref.method = Method::kReference;
  const auto r = SpGemm(a.view(), b.view(), ref, nullptr);
  int64_t nans = 0, infs = 0;
  for (int threads : {1, 2}) {
    Options opt;
    opt.threads = threads;
    const auto c = SpGemm(a.view(), b.view(), opt, nullptr);
    ASSERT_EQ(c.row_ptr, r.row_ptr);
    ASSERT_EQ(c.col, r.col);
    for (size_t t = 0; t < r.val.size(); ++t) {
      if (std::isnan(r.val[t])) {
        ASSERT_TRUE(std::isnan(c.val[t])) << t;
        nans += threads == 1;
      } else {
        ASSERT_EQ(Bits(std::vector<double>{c.val[t]}), Bits(std::vector<double>{r.val[t]})) << t;
        infs += threads == 1 && std::isinf(r.val[t]);
      }
    }
  }
  EXPECT_GT(nans, 0);
  EXPECT_GT(infs, 0);
}

TEST(SpGemm, RowHashOnLaplacianSquareMatchesTheReference) {
  // The benchmark's stencil case at CI size: every row is a window row (≤ 25 products).
  const auto a = Laplacian2d(40);
  Options ref;
  ref.method = Method::kReference;
  const auto r = SpGemm(a.view(), a.view(), ref, nullptr);
  for (int threads : {1, 2, 3}) {
    Options opt;
    opt.threads = threads;
    const auto c = SpGemm(a.view(), a.view(), opt, nullptr);
    EXPECT_EQ(c.row_ptr, r.row_ptr);
    EXPECT_EQ(c.col, r.col);
    EXPECT_EQ(Bits(c.val), Bits(r.val));
  }
  // Interior row of L²: 13 entries, centre 20 (4² + 4·1), ±1 and ±g neighbours −8, the
  // diagonal ones 2, the distance-2 ones 1.
  const int64_t g = 40, i = 20 * g + 20;
  ASSERT_EQ(r.row_ptr[i + 1] - r.row_ptr[i], 13);
  for (int64_t t = r.row_ptr[i]; t < r.row_ptr[i + 1]; ++t) {
    const int64_t d = r.col[t] - i;
    const double want = d == 0 ? 20.0 : (d == 1 || d == -1 || d == g || d == -g) ? -8.0
                        : (d == 2 || d == -2 || d == 2 * g || d == -2 * g) ? 1.0 : 2.0;
    EXPECT_EQ(r.val[t], want) << d;
  }
}

// Row_hash (every strategy: single pass at 1, 2 and 3 threads, symbolic + numeric)
// against the map reference, pattern and value bits.
void ExpectRowHashEqualsReferenceBits(const CsrMatrix& a, const CsrMatrix& b) {
  Options ref;
  ref.method = Method::kReference;
  const auto r = SpGemm(a.view(), b.view(), ref, nullptr);
  for (int64_t single_pass_max : {int64_t{1} << 27, int64_t{0}}) {
    for (int threads : {1, 2, 3}) {
      for (int64_t stream_min : {Options{}.stream_min_entries, int64_t{0}}) {
        Options opt;
        opt.threads = threads;
        opt.single_pass_max_entries = single_pass_max;
        opt.stream_min_entries = stream_min;
        const auto c = SpGemm(a.view(), b.view(), opt, nullptr);
        ASSERT_EQ(c.row_ptr, r.row_ptr) << threads << " threads, cap " << single_pass_max << ", stream " << stream_min;
        ASSERT_EQ(c.col, r.col) << threads << " threads, cap " << single_pass_max << ", stream " << stream_min;
        ASSERT_EQ(Bits(c.val), Bits(r.val)) << threads << " threads, cap " << single_pass_max << ", stream " << stream_min;
      }
    }
  }
  // With statistics requested, one thread gets every row's ub from SpGemm (without, it
  // bounds C by nnz(A) · longest B row and computes row ubs only where needed).
  Stats st;
  const auto c = SpGemm(a.view(), b.view(), Options{}, &st);
  ASSERT_EQ(c.row_ptr, r.row_ptr);
  ASSERT_EQ(c.col, r.col);
  ASSERT_EQ(Bits(c.val), Bits(r.val));
}

// ER-like rows (16 × 16 random products over 8192 columns: the dense accumulator) and
// lighter rows (4 × 16: hash), written with non-temporal stores (stream_min_entries = 0)
// or not: with explicit +0.0 / -0.0 values in A and B (a column whose only products are
// -0.0 must stay -0.0, a +0.0 + -0.0 sum must be +0.0), empty rows of A and rows reaching
// only empty rows of B, every strategy and 1, 2 and 3 threads — bit-identical to the map
// reference, which is itself checked against dense GEMM.
TEST(SpGemm, RowHashStreamedDenseAndHashRowsMatchTheReferences) {
  Rng rng(31);
  const int32_t m = 120, k = 200, n = 8192;
  std::vector<std::vector<int32_t>> a_rows(m), b_rows(k);
  for (int32_t i = 0; i < k; ++i) {
    if (i % 23 == 5) continue;  // empty row of B
    for (int t = 0; t < 16; ++t) b_rows[i].push_back(static_cast<int32_t>(rng.UniformInt(n)));
  }
  for (int32_t i = 0; i < m; ++i) {
    if (i % 29 == 3) continue;  // empty row of A
    const int per_row = i % 5 == 0 ? 4 : 16;
    for (int t = 0; t < per_row; ++t) a_rows[i].push_back(static_cast<int32_t>(rng.UniformInt(k)));
  }
  a_rows[7] = {5, 28};  // reaches only empty rows of B
  CsrMatrix a = FromRows(a_rows, k, rng), b = FromRows(b_rows, n, rng);
  for (size_t t = 0; t < a.val.size(); ++t) {
    if (t % 11 == 3) a.val[t] = -0.0;
    if (t % 17 == 4) a.val[t] = 0.0;
  }
  for (size_t t = 0; t < b.val.size(); ++t) {
    if (t % 13 == 2) b.val[t] = -0.0;
  }
  Options ref;
  ref.method = Method::kReference;
  Stats st;
  const auto r = SpGemm(a.view(), b.view(), ref, &st);
  EXPECT_GE(st.max_row_ub, 128);  // dense rows are reached
  ExpectMatchesDense(a, b, r);
  bool neg_zero = false, pos_zero = false;
  for (double v : r.val) {
    neg_zero = neg_zero || (v == 0.0 && std::signbit(v));
    pos_zero = pos_zero || (v == 0.0 && !std::signbit(v));
  }
  EXPECT_TRUE(neg_zero);
  EXPECT_TRUE(pos_zero);
  ExpectRowHashEqualsReferenceBits(a, b);
}

// Window rows are first accumulated at the window starting with their first B row's first
// column and fall back to the exact span (or to the hash / dense accumulators) when a
// later B row does not fit. These rows make every fallback happen after products were
// already accumulated, and are followed by rows whose only products are −0.0: any value
// or occupancy left behind by a fallback would change their bits or their pattern.
TEST(SpGemm, RowHashWindowFallbacksLeaveTheAccumulatorClean) {
  const int32_t n = 9000;
  const std::vector<std::vector<int32_t>> b_cols = {
      {100, 101, 102},        // 0
      {5000, 5001},           // 1: far from 0 (no common window)
      {},                     // 2: empty
      {40, 101, 4000},        // 3: starts left of row 0's window, fits one from column 0
      {100, 102},             // 4: −0.0 products only (values −0.0)
      {},                     // 5: filled below: every 97th column (wide)
      {4150, 4151},           // 6: fits with row 0 from 64: 4151 − 64 = 4087
      {4160},                 // 7: 4160 − 64 = 4096: just outside row 0's window
  };
  CsrMatrix b;
  b.rows = static_cast<int64_t>(b_cols.size());
  b.cols = n;
  b.row_ptr.push_back(0);
  Rng rng(31);
  for (size_t r = 0; r < b_cols.size(); ++r) {
    std::vector<int32_t> cols = b_cols[r];
    if (r == 5)
      for (int32_t c = 0; c < n; c += 97) cols.push_back(c);
    for (int32_t c : cols) {
      b.col.push_back(c);
      b.val.push_back(r == 4 ? -0.0 : (c % 5 == 0 ? -0.0 : rng.Normal()));
    }
    b.row_ptr.push_back(static_cast<int64_t>(b.col.size()));
  }
  // Each pattern: a row that falls back after accumulating (or checks an edge), then a
  // −0.0-only row over the same columns.
  const std::vector<std::vector<int32_t>> patterns = {
      {0, 1}, {4},     // window from row 0, row 1 misses: hash
      {0, 3}, {4},     // row 3 starts left of the window: exact span, window from 0
      {2, 0}, {4},     // first B row empty
      {0, 5}, {4},     // a wide B row after a window one
      {0, 6}, {4},     // fits (4087)
      {0, 7}, {4},     // 4096: falls back; 4160 − 64 does not fit, hash
      {0, 3, 6}, {4},  // span 4151 from column 0: hash
      {}, {2}, {4},    // empty row, only an empty B row
      {0, 4}, {4, 6},
  };
  std::vector<std::vector<int32_t>> a_rows;
  for (int rep = 0; rep < 6; ++rep)
    for (const auto& p : patterns) a_rows.push_back(p);
  CsrMatrix a = FromRows(a_rows, b.rows, rng);
  for (double& v : a.val) v = std::fabs(v);  // −0.0 · positive = −0.0
  ExpectRowHashEqualsReferenceBits(a, b);
  // The −0.0-only rows really are −0.0 (two entries, both with the sign bit).
  Options ref;
  ref.method = Method::kReference;
  const auto r = SpGemm(a.view(), b.view(), ref, nullptr);
  ASSERT_EQ(r.row_ptr[2] - r.row_ptr[1], 2);
  EXPECT_TRUE(std::signbit(r.val[r.row_ptr[1]]) && std::signbit(r.val[r.row_ptr[1] + 1]) &&
              r.val[r.row_ptr[1]] == 0.0 && r.val[r.row_ptr[1] + 1] == 0.0);
}

// A banded, unsymmetric A walking down its diagonal (the B rows are then read in a sliding
// window, and row_hash stops prefetching them): rows whose first B row does not hold the
// smallest column take the exact-span fallback, the others the first try; sums of up to
// ~10 products per column, −0.0 and exact zeros among the values.
TEST(SpGemm, RowHashOnBandedUnsymmetricMatrixMatchesTheReference) {
  Rng rng(41);
  const int64_t n = 3000;
  std::vector<std::vector<int32_t>> rows(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t lo = std::max<int64_t>(0, i - 45), hi = std::min<int64_t>(n - 1, i + 30);
    for (int t = 0; t < 8; ++t) rows[i].push_back(static_cast<int32_t>(lo + rng.UniformInt(hi - lo + 1)));
  }
  CsrMatrix a = FromRows(rows, n, rng);
  for (size_t t = 0; t < a.val.size(); t += 13) a.val[t] = t % 2 ? 0.0 : -0.0;
  ExpectRowHashEqualsReferenceBits(a, a);
  // And against the dense product.
  Options opt;
  opt.threads = 2;
  const auto small = Laplacian2d(12);
  ExpectMatchesDense(small, small, SpGemm(small.view(), small.view(), opt, nullptr));
}

// Rows computed through a shifted-row plan (the previous row's structure shifted by one:
// stencils, bands), counted in Stats::shifted_rows.
int64_t ShiftedRows(const CsrMatrix& a, const CsrMatrix& b, int threads = 1) {
  Options opt;
  opt.threads = threads;
  Stats st;
  SpGemm(a.view(), b.view(), opt, &st);
  return st.shifted_rows;
}

TEST(SpGemm, RowHashShiftedRowsOnStencilsMatchTheReferences) {
  // 2-D 5-point Laplacian (the benchmark's case at CI size) and its square against the
  // dense product; most rows repeat the previous row's structure shifted by one.
  const auto lap = Laplacian2d(64);
  ExpectRowHashEqualsReferenceBits(lap, lap);
  EXPECT_GT(ShiftedRows(lap, lap), lap.rows * 9 / 10);
  EXPECT_GT(ShiftedRows(lap, lap, 3), lap.rows * 8 / 10);
  const auto small = Laplacian2d(14);
  EXPECT_GT(ShiftedRows(small, small), 0);
  ExpectMatchesDense(small, small, SpGemm(small.view(), small.view(), Options{}, nullptr));
  // Unsorted output allowed: plans are built only from sorted rows, the output is the same.
  Options unsorted;
  unsorted.sort_columns = false;
  Options ref;
  ref.method = Method::kReference;
  const auto r = SpGemm(lap.view(), lap.view(), ref, nullptr);
  const auto u = SpGemm(lap.view(), lap.view(), unsorted, nullptr);
  EXPECT_EQ(u.row_ptr, r.row_ptr);
  EXPECT_EQ(u.col, r.col);
  EXPECT_EQ(Bits(u.val), Bits(r.val));

  // 9-point stencil with random values, times the Laplacian (B ≠ A) and squared.
  Rng rng(51);
  const int64_t g = 40;
  std::vector<std::vector<int32_t>> rows(g * g);
  for (int64_t i = 0; i < g; ++i)
    for (int64_t j = 0; j < g; ++j)
      for (int64_t di = -1; di <= 1; ++di)
        for (int64_t dj = -1; dj <= 1; ++dj)
          if (i + di >= 0 && i + di < g && j + dj >= 0 && j + dj < g)
            rows[i * g + j].push_back(static_cast<int32_t>((i + di) * g + j + dj));
  const CsrMatrix box = FromRows(rows, g * g, rng);
  const CsrMatrix lap40 = Laplacian2d(g);
  ExpectRowHashEqualsReferenceBits(box, lap40);
  ExpectRowHashEqualsReferenceBits(box, box);
  EXPECT_GT(ShiftedRows(box, box), box.rows / 2);
  EXPECT_GT(ShiftedRows(box, lap40), box.rows / 2);
}

// A band (columns i − 1, i, i + 2) with explicit zeros, negative zeros and rows that break
// the pattern (empty rows, a longer row, a row with the same length but other columns,
// short last rows): those rows, and the rows whose B rows they are, fall back (also after
// products were accumulated), the rows after them start a new plan. Bits, sign of zero
// included, must equal the map reference's; the plan must really serve most rows.
TEST(SpGemm, RowHashShiftedRowsFallBackOnBrokenPatternsAndKeepZeroSigns) {
  Rng rng(61);
  const int64_t n = 3000;
  std::vector<std::vector<int32_t>> rows(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d : {-1, 0, 2})
      if (i + d >= 0 && i + d < n) rows[i].push_back(static_cast<int32_t>(i + d));
  for (int64_t i : {100, 101, 102, 1500}) rows[i].clear();  // empty rows
  rows[500].push_back(507);                               // one more entry
  rows[700] = {699, 700, 703};                            // same length, other columns
  rows[2000] = {1999, 2001, 2002};
  CsrMatrix a = FromRows(rows, n, rng);
  for (size_t t = 0; t < a.val.size(); ++t) {
    if (t % 11 == 0) a.val[t] = -0.0;
    if (t % 13 == 0) a.val[t] = 0.0;
  }
  ExpectRowHashEqualsReferenceBits(a, a);
  const int64_t shifted = ShiftedRows(a, a);
  EXPECT_GT(shifted, n * 9 / 10);
  EXPECT_LT(shifted, n - 20);  // the broken rows and their neighbours did fall back
  // Zeros of both signs are in the result (the −0.0 start of the plan's sums is exercised).
  Options ref;
  ref.method = Method::kReference;
  const auto r = SpGemm(a.view(), a.view(), ref, nullptr);
  bool neg_zero = false, pos_zero = false;
  for (double v : r.val) {
    neg_zero = neg_zero || (v == 0.0 && std::signbit(v));
    pos_zero = pos_zero || (v == 0.0 && !std::signbit(v));
  }
  EXPECT_TRUE(neg_zero);
  EXPECT_TRUE(pos_zero);
  // Against the dense product on a small cut of the same construction.
  CsrMatrix cut = FromRows(rows, n, rng);
  cut.rows = 300;
  cut.cols = 300;
  cut.row_ptr.resize(301);
  std::vector<std::vector<int32_t>> small_rows(rows.begin(), rows.begin() + 300);
  for (auto& row : small_rows) row.erase(std::remove_if(row.begin(), row.end(), [](int32_t c) { return c >= 300; }), row.end());
  const CsrMatrix small = FromRows(small_rows, 300, rng);
  EXPECT_GT(ShiftedRows(small, small), 200);
  ExpectMatchesDense(small, small, SpGemm(small.view(), small.view(), Options{}, nullptr));
}

// Columns near 2^31: the plans store columns relative to the row index modulo 2^32.
TEST(SpGemm, RowHashShiftedRowsNearTheInt32ColumnLimit) {
  const int64_t k = 2000, n = (int64_t{1} << 31) - 1;
  const int32_t big = static_cast<int32_t>(n - k - 5);
  Rng rng(71);
  std::vector<std::vector<int32_t>> b_rows(k);
  for (int64_t r = 0; r < k; ++r) b_rows[r] = {static_cast<int32_t>(big + r), static_cast<int32_t>(big + r + 1), static_cast<int32_t>(big + r + 4)};
  const CsrMatrix b = FromRows(b_rows, n, rng);
  std::vector<std::vector<int32_t>> a_rows(k);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t d : {-2, 0, 1})
      if (i + d >= 0 && i + d < k) a_rows[i].push_back(static_cast<int32_t>(i + d));
  const CsrMatrix a = FromRows(a_rows, k, rng);
  ASSERT_TRUE(ValidateCsr(b.view(), "b").ok());
  ExpectRowHashEqualsReferenceBits(a, b);
  EXPECT_GT(ShiftedRows(a, b), k * 9 / 10);
}

// A plan applies only on the row right after the one it was built or used on. Here the
// row in between is an unsorted hash row (sort_columns = false: no plan is built from it),
// and the row after it has the plan's A structure and a B row flagged as its predecessor
// shifted, but that predecessor is not the plan's B row: applying the old plan there would
// give columns {i, i + 1} instead of {i, i + 4}.
TEST(SpGemm, RowHashShiftedPlanIsOnlyUsedOnTheNextRow) {
  const int64_t n = 10000, wide = n - 1;
  std::vector<std::vector<int32_t>> b_rows(n), a_rows(n);
  for (int64_t k = 0; k < wide; ++k) {
    const int64_t step = k < 5000 ? 1 : 4;
    b_rows[k] = {static_cast<int32_t>(k)};
    if (k + step < n) b_rows[k].push_back(static_cast<int32_t>(k + step));
  }
  for (int32_t c = 0; c < n; c += 1000) b_rows[wide].push_back(c);  // spans > 4096: hash
  for (int64_t i = 0; i < n; ++i) a_rows[i] = {static_cast<int32_t>(i)};
  a_rows[5000] = {static_cast<int32_t>(wide)};
  Rng rng(91);
  const CsrMatrix b = FromRows(b_rows, n, rng), a = FromRows(a_rows, n, rng);
  Options ref, opt;
  ref.method = Method::kReference;
  opt.sort_columns = false;
  const auto r = SpGemm(a.view(), b.view(), ref, nullptr);
  Stats st;
  const auto c = SpGemm(a.view(), b.view(), opt, &st);
  EXPECT_GT(st.shifted_rows, n / 2);
  ASSERT_EQ(c.row_ptr, r.row_ptr);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<std::pair<int32_t, double>> row;
    for (int64_t t = c.row_ptr[i]; t < c.row_ptr[i + 1]; ++t) row.emplace_back(c.col[t], c.val[t]);
    std::sort(row.begin(), row.end());
    for (size_t t = 0; t < row.size(); ++t) {
      ASSERT_EQ(row[t].first, r.col[r.row_ptr[i] + t]) << "row " << i;
      ASSERT_EQ(Bits(std::vector<double>{row[t].second}), Bits(std::vector<double>{r.val[r.row_ptr[i] + t]})) << "row " << i;
    }
  }
  ASSERT_EQ(r.col[r.row_ptr[5001] + 1], 5005);
}

TEST(SpGemm, RowHashShiftedRowsStayOffForIrregularMatrices) {
  // ER rows never repeat their predecessor's structure: no plan, no flags pass.
  const auto er = ErdosRenyi(5000, 6, 81);
  EXPECT_EQ(ShiftedRows(er, er), 0);
}

TEST(SpGemm, SmashAtomicOnSkewedRmatHasIdenticalPatternAndCloseValues) {
  // R-MAT squares have rows with ub > n/4 (dense fallback) and windows of one huge row.
  auto a = Rmat(11, 16, 5);
  Options ref, smash;
  ref.method = Method::kReference;
  smash.method = Method::kSmashAtomic;
  smash.threads = 2;
  Stats st;
  auto r = SpGemm(a.view(), a.view(), ref, &st);
  EXPECT_GT(st.max_row_ub, a.cols / 4);
  auto c = SpGemm(a.view(), a.view(), smash, nullptr);
  EXPECT_EQ(c.row_ptr, r.row_ptr);
  EXPECT_EQ(c.col, r.col);
  for (size_t t = 0; t < r.val.size(); ++t) ASSERT_NEAR(c.val[t], r.val[t], 1e-12 * (1 + std::fabs(r.val[t])));
}

TEST(SpGemm, AgreesWithEigenConservativeProduct) {
  auto a = RandomCsr(300, 200, 0.03, 7), b = RandomCsr(200, 250, 0.03, 8);
  using Sp = Eigen::SparseMatrix<double, Eigen::RowMajor, int>;
  auto to_eigen = [](const CsrMatrix& m) {
    std::vector<Eigen::Triplet<double>> tr;
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t t = m.row_ptr[i]; t < m.row_ptr[i + 1]; ++t) tr.emplace_back(i, m.col[t], m.val[t]);
    Sp s(m.rows, m.cols);
    s.setFromTriplets(tr.begin(), tr.end());
    return s;
  };
  Sp e = (to_eigen(a) * to_eigen(b)).pruned(0.0, 0.0);  // Eigen drops exact zeros here
  Options opt;
  opt.prune_zeros = true;
  auto c = SpGemm(a.view(), b.view(), opt, nullptr);
  ASSERT_EQ(static_cast<int64_t>(c.col.size()), e.nonZeros());
  for (int64_t i = 0; i < c.rows; ++i) {
    Sp::InnerIterator it(e, i);
    for (int64_t t = c.row_ptr[i]; t < c.row_ptr[i + 1]; ++t, ++it) {
      ASSERT_EQ(c.col[t], it.col());
      ASSERT_NEAR(c.val[t], it.value(), 1e-13 * (1 + std::fabs(it.value())));
    }
  }
}

TEST(SpGemm, IdentityIsNeutralAndTransposeRuleHolds) {
  auto a = RandomCsr(40, 30, 0.2, 9), b = RandomCsr(30, 20, 0.2, 10);
  auto eye = [](int64_t n) {
    CsrMatrix m;
    m.rows = m.cols = n;
    for (int64_t i = 0; i <= n; ++i) m.row_ptr.push_back(i);
    for (int64_t i = 0; i < n; ++i) {
      m.col.push_back(static_cast<int32_t>(i));
      m.val.push_back(1.0);
    }
    return m;
  };
  auto transpose = [](const CsrMatrix& m) {
    CsrMatrix t;
    t.rows = m.cols;
    t.cols = m.rows;
    t.row_ptr.assign(m.cols + 1, 0);
    for (int32_t c : m.col) ++t.row_ptr[c + 1];
    for (int64_t i = 0; i < m.cols; ++i) t.row_ptr[i + 1] += t.row_ptr[i];
    t.col.resize(m.col.size());
    t.val.resize(m.val.size());
    auto next = t.row_ptr;
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t k = m.row_ptr[i]; k < m.row_ptr[i + 1]; ++k) {
        t.col[next[m.col[k]]] = static_cast<int32_t>(i);
        t.val[next[m.col[k]]++] = m.val[k];
      }
    return t;
  };
  Options opt;
  auto ai = SpGemm(a.view(), eye(30).view(), opt, nullptr);
  EXPECT_EQ(ai.col, a.col);
  EXPECT_EQ(ai.val, a.val);
  auto ib = SpGemm(eye(30).view(), b.view(), opt, nullptr);
  EXPECT_EQ(ib.col, b.col);
  EXPECT_EQ(ib.val, b.val);
  auto abt = transpose(SpGemm(a.view(), b.view(), opt, nullptr));
  auto btat = SpGemm(transpose(b).view(), transpose(a).view(), opt, nullptr);
  EXPECT_EQ(abt.row_ptr, btat.row_ptr);
  EXPECT_EQ(abt.col, btat.col);
  for (size_t t = 0; t < abt.val.size(); ++t) EXPECT_NEAR(abt.val[t], btat.val[t], 1e-12);
}

TEST(SpGemm, KeepsStructuralZerosUnlessPruned) {
  // Row [1, 1] times column [1, -1]: value cancels to 0 but the entry is structural.
  CsrMatrix a{1, 2, {0, 2}, {0, 1}, {1.0, 1.0}};
  CsrMatrix b{2, 1, {0, 1, 2}, {0, 0}, {1.0, -1.0}};
  for (Method method : kAll) {
    Options opt;
    opt.method = method;
    auto c = SpGemm(a.view(), b.view(), opt, nullptr);
    ASSERT_EQ(c.col.size(), 1u);
    EXPECT_EQ(c.val[0], 0.0);
    opt.prune_zeros = true;
    EXPECT_TRUE(SpGemm(a.view(), b.view(), opt, nullptr).col.empty());
  }
}

TEST(ValidateCsr, RejectsUnsortedDuplicateOutOfRangeAndBadRowPtr) {
  std::vector<int64_t> rp = {0, 2};
  std::vector<double> v = {1, 1};
  std::vector<int32_t> unsorted = {1, 0}, dup = {1, 1}, out = {0, 5}, ok = {0, 1};
  EXPECT_TRUE(ValidateCsr({1, 3, rp.data(), ok.data(), v.data()}, "a").ok());
  EXPECT_FALSE(ValidateCsr({1, 3, rp.data(), unsorted.data(), v.data()}, "a").ok());
  EXPECT_FALSE(ValidateCsr({1, 3, rp.data(), dup.data(), v.data()}, "a").ok());
  EXPECT_FALSE(ValidateCsr({1, 3, rp.data(), out.data(), v.data()}, "a").ok());
  std::vector<int64_t> dec = {0, 2, 1};
  EXPECT_FALSE(ValidateCsr({2, 3, dec.data(), ok.data(), v.data()}, "a").ok());
}

}  // namespace
}  // namespace chamferdb::spgemm
