// Dense dot products used by the FDE encoder's SimHash sketches.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chamferdb {

// out[r] = Σ_j x[j] · rows[r·dim + j] for r in [0, nrows). rows: nrows × dim, row-major.
// Uses the widest SIMD path the CPU has (chosen once); every path sums in the same order,
// so results are bit-identical across paths.
void DotMany(const float* x, const float* rows, size_t nrows, size_t dim, float* out);

// Token-parallel kernels over packed tokens (chamfer.h layout: dim × n_pad, n_pad a
// multiple of 16), used by the FDE encoder.
// out[c · n_pad + t] = Σ_j planes[c · dim + j] · xt[j · n_pad + t]  (nplanes × n_pad)
void SketchPacked(const float* xt, size_t n_pad, size_t dim, const float* planes, size_t nplanes,
                  float* out);
// yt[s · n_pad + t] = Σ_{j: slot[j] = s} sign[j] · xt[j · n_pad + t]  (width × n_pad)
void ProjectPacked(const float* xt, size_t n_pad, size_t dim, const uint32_t* slot, const int8_t* sign,
                   size_t width, float* yt);
// The same result (bit for bit) from the coordinates grouped by slot: order[start[s] ..
// start[s+1]) are the j with slot[j] = s in ascending order, sign[e] the sign of order[e].
// Faster: each output row is summed in registers and written once.
void ProjectPackedGrouped(const float* xt, size_t n_pad, const uint32_t* order, const int8_t* sign,
                          const uint32_t* start, size_t width, float* yt);

}  // namespace chamferdb
