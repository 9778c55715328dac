// Dense dot products used by the FDE encoder's SimHash sketches.
#pragma once

#include <cstddef>

namespace chamferdb {

// out[r] = Σ_j x[j] · rows[r·dim + j] for r in [0, nrows). rows: nrows × dim, row-major.
// Uses the widest SIMD path the CPU has (chosen once); every path sums in the same order,
// so results are bit-identical across paths.
void DotMany(const float* x, const float* rows, size_t nrows, size_t dim, float* out);

}  // namespace chamferdb
