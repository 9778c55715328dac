// Inner products of one float query with int8 rows (the refine stage of an index: exact
// re-scoring of first-stage candidates against vectors stored at 8 bits).
//
// Row layout: dim int8 codes per row; the row's value is code · scale / 127 (vector-wise
// absmax quantization, kernels/int8/quantize.h: scale = max|x|). Every path (AVX-512, AVX2,
// portable; chosen once at run time, common/cpu_features.h) accumulates the integer-valued
// products in float lanes and may differ from another path by float rounding only.
// Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <cstdint>

namespace chamferdb {

// Σ_j q[j] · codes[j] · scale / 127.
float DotI8Row(const float* q, const int8_t* codes, float scale, size_t dim);

}  // namespace chamferdb
