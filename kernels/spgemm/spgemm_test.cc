#include "kernels/spgemm/spgemm.h"

#include <Eigen/SparseCore>
#include <algorithm>
#include <cmath>
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
  for (auto [m, k, n] : std::vector<std::tuple<int, int, int>>{{1, 1, 1}, {3, 15, 17}, {17, 3, 15}, {60, 40, 50}, {5, 0, 4}, {0, 4, 3}, {127, 33, 1}}) {
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

TEST(SpGemm, RowHashBothStrategiesAndUnsortedRowsMatchTheMapReference) {
  // ER squares barely compress (flops ≈ nnz(C)): row_hash takes its fused single pass at
  // upper-bound offsets. The R-MAT square compresses > 1.5× and has rows with ub > n/4:
  // symbolic + numeric passes, dense bitmap rows. Both must equal the map reference bit for
  // bit for 1 and 3 threads; unsorted rows must hold the same (column, value) pairs.
  for (const auto& [a, expect_fused] :
       std::vector<std::pair<CsrMatrix, bool>>{{ErdosRenyi(3000, 5, 11), true}, {Rmat(11, 16, 12), false}}) {
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
    for (int threads : {1, 3}) {
      Options opt;
      opt.threads = threads;
      const auto c = SpGemm(a.view(), a.view(), opt, nullptr);
      EXPECT_EQ(c.row_ptr, r.row_ptr);
      EXPECT_EQ(c.col, r.col);
      EXPECT_EQ(c.val, r.val);
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
      EXPECT_TRUE(any_unsorted);  // the option really skips the sort
    }
  }
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
