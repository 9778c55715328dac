// Seeded sparse test matrices for the SpGEMM tests and benchmark (deterministic: own Rng).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/rng.h"
#include "kernels/spgemm/spgemm.h"

namespace chamferdb::spgemm {

// Each entry present with probability `density` (O(rows·cols): small matrices only).
inline CsrMatrix RandomCsr(int64_t rows, int64_t cols, double density, uint64_t seed) {
  Rng rng(seed);
  CsrMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.row_ptr.push_back(0);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      if (rng.Uniform() < density) {
        m.col.push_back(static_cast<int32_t>(j));
        m.val.push_back(rng.Normal());
      }
    }
    m.row_ptr.push_back(static_cast<int64_t>(m.col.size()));
  }
  return m;
}

// From per-row column lists (sorted and deduplicated here), values N(0, 1).
inline CsrMatrix FromRows(std::vector<std::vector<int32_t>>& rows, int64_t cols, Rng& rng) {
  CsrMatrix m;
  m.rows = static_cast<int64_t>(rows.size());
  m.cols = cols;
  m.row_ptr.push_back(0);
  for (auto& row : rows) {
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (int32_t c : row) {
      m.col.push_back(c);
      m.val.push_back(rng.Normal());
    }
    m.row_ptr.push_back(static_cast<int64_t>(m.col.size()));
  }
  return m;
}

// Erdős–Rényi-like: n × n with `per_row` uniformly random columns per row (duplicates merged).
inline CsrMatrix ErdosRenyi(int64_t n, int per_row, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::vector<int32_t>> rows(n);
  for (auto& row : rows)
    for (int t = 0; t < per_row; ++t) row.push_back(static_cast<int32_t>(rng.UniformInt(n)));
  return FromRows(rows, n, rng);
}

// R-MAT (Chakrabarti, Zhan, Faloutsos 2004), 2^scale nodes, edge_factor·2^scale edges,
// quadrant probabilities (a, b, c, d) = (.57, .19, .19, .05); duplicates merged.
inline CsrMatrix Rmat(int scale, int edge_factor, uint64_t seed) {
  const int64_t n = int64_t{1} << scale;
  Rng rng(seed);
  std::vector<std::vector<int32_t>> rows(n);
  for (int64_t e = 0; e < n * edge_factor; ++e) {
    int64_t r = 0, c = 0;
    for (int l = 0; l < scale; ++l) {
      const double p = rng.Uniform();
      const int rb = p >= 0.76 ? 1 : 0;                          // c or d quadrant
      const int cb = (p >= 0.57 && p < 0.76) || p >= 0.95 ? 1 : 0;  // b or d quadrant
      r = 2 * r + rb;
      c = 2 * c + cb;
    }
    rows[r].push_back(static_cast<int32_t>(c));
  }
  return FromRows(rows, n, rng);
}

// 2-D 5-point Laplacian on a g × g grid (n = g²), values 4 / −1.
inline CsrMatrix Laplacian2d(int64_t g) {
  CsrMatrix m;
  m.rows = m.cols = g * g;
  m.row_ptr.push_back(0);
  for (int64_t i = 0; i < g; ++i)
    for (int64_t j = 0; j < g; ++j) {
      const int64_t r = i * g + j;
      auto add = [&](int64_t c, double v) {
        m.col.push_back(static_cast<int32_t>(c));
        m.val.push_back(v);
      };
      if (i > 0) add(r - g, -1.0);
      if (j > 0) add(r - 1, -1.0);
      add(r, 4.0);
      if (j + 1 < g) add(r + 1, -1.0);
      if (i + 1 < g) add(r + g, -1.0);
      m.row_ptr.push_back(static_cast<int64_t>(m.col.size()));
    }
  return m;
}

}  // namespace chamferdb::spgemm
