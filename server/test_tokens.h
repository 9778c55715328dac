// Test-only helper shared by the server tests: random unit-norm token matrices.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "common/rng.h"

namespace chamferdb {

// n × dim row-major tokens with standard normal coordinates, each row scaled to unit L2
// norm (norm accumulated in double).
inline std::vector<float> RandomUnitTokens(Rng& rng, size_t n, size_t dim) {
  std::vector<float> v(n * dim);
  for (size_t i = 0; i < n; ++i) {
    double norm = 0;
    for (size_t j = 0; j < dim; ++j) {
      v[i * dim + j] = static_cast<float>(rng.Normal());
      norm += double(v[i * dim + j]) * v[i * dim + j];
    }
    for (size_t j = 0; j < dim; ++j) v[i * dim + j] /= static_cast<float>(std::sqrt(norm));
  }
  return v;
}

}  // namespace chamferdb
