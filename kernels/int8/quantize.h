// Vector-wise (row-wise) absmax int8 quantization, as in LLM.int8() (Dettmers et al. 2022).
//
// Shared by the Int8MixedLinear / Int8MaxSim kernels and by int8 token storage.
//
// Data layout: x is a row-major n × d float matrix (element (i, j) at x[i * d + j]); codes
// is n × d int8 in the same layout; scales holds one float per row.
//
// Math: for row i, scale c_i = max_j |x_ij| (the absmax, NOT divided by 127), and
//   code_ij = round_half_even( 127 · x_ij / c_i ),    evaluated in double precision,
// so codes lie in [-127, 127] (-128 never occurs). Rows with c_i == 0 get all-zero codes
// and scale 0. Dequantization is x̂_ij = code_ij · c_i / 127 and satisfies
//   |x_ij − x̂_ij| ≤ c_i / 254   (plus one float rounding of x̂).
// Rounding is done with std::nearbyint under the default FE_TONEAREST mode; callers must
// not change the floating-point rounding mode.
//
// Errors: non-finite input gives an unspecified (but memory-safe) result; validate first
// (CheckFinite) if the input comes from a user.
// Thread-safety: pure functions; safe to call concurrently on distinct outputs.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace chamferdb::int8 {

// 127 · v / c rounded half to even (in double), clamped to [-127, 127]; REQUIRES c > 0.
inline int8_t QuantizeValue(float v, float c) {
  double q = std::nearbyint(127.0 * static_cast<double>(v) / static_cast<double>(c));
  if (q > 127.0) q = 127.0;
  if (q < -127.0) q = -127.0;
  return static_cast<int8_t>(q);
}

// Quantizes one row of length d: returns its absmax scale and writes d codes.
float QuantizeRow(const float* x, size_t d, int8_t* codes);

// Quantizes an n × d matrix: codes n × d, scales n.
void QuantizeRows(const float* x, size_t n, size_t d, int8_t* codes, float* scales);

// Quantizes one row against a given scale c ≥ max|x| (used when some entries are excluded
// from the statistic). Entries with |x| > c are clamped to ±127.
void QuantizeRowWithScale(const float* x, size_t d, float c, int8_t* codes);

// x̂ = code · c / 127 for an n × d matrix (computed in float: code * (c / 127)).
void DequantizeRows(const int8_t* codes, const float* scales, size_t n, size_t d, float* out);

// Sum of |code| of one row (‖code‖₁ ≤ 127·d fits in int32 for d < 16.9M).
int64_t L1NormCodes(const int8_t* codes, size_t d);

}  // namespace chamferdb::int8
