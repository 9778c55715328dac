// LLM.int8() linear layer: vector-wise int8 GEMM plus the mixed-precision decomposition of
// outlier feature columns (Dettmers et al., "LLM.int8(): 8-bit Matrix Multiplication for
// Transformers at Scale", 2022; semantics follow bitsandbytes' reference ops).
//
//   Y = dequant( Q(X[:, ~O]) · Q(W[:, ~O])ᵀ ) + X[:, O] · W_O[:, O]ᵀ + bias
//
// Data layout: X is s × h (tokens × features), W is o × h (PyTorch Linear [out, in]), Y is
// s × o, all row-major float32. Outlier columns O = { j : max_i |X_ij| ≥ threshold }
// (empty when threshold == 0; threshold = +inf also gives none).
// Row statistics:
//   kPaper: cx[i] = max_{j∉O} |X_ij|   (the outlier columns are excluded).
//   kBnb:   cx[i] = max_j |X_ij| over elements with |X_ij| < threshold (bitsandbytes zeroes
//           the outlier *elements* only, so non-outlier entries of outlier columns count).
// Codes: Xq[i, j] = round_half_even(127·X_ij / cx[i]) for j ∉ O, 0 for j ∈ O; a row with
// cx[i] == 0 is all zeros. W is quantized per output row with no threshold (quantize.h).
// Dequantization and the outlier product are evaluated in float64 and rounded to float32
// once: Y_io = f32( C_io·cx[i]·cw[o]/16129 + Σ_{j∈O} X_ij·W'_oj + bias_o ), with W' = W
// (kFull) or the dequantized Ŵ = Wq·cw/127 (kDequant, what bitsandbytes does when only
// int8 weights are kept). When only int8 weights are given, kFull is impossible.
//
// Error bound (tests rely on it): for every (i, o)
//   |Y_io − (XWᵀ)_io| ≤ ( cw[o]·Σ_{j∉O}|X_ij| + cx[i]·Σ_{j∉O}|Ŵ_oj| )/254
//                       [+ cw[o]·Σ_{j∈O}|X_ij|/254 with kDequant] + f32 rounding of Y.
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/int8/gemm.h"

namespace chamferdb::int8 {

enum class StatsMode { kPaper, kBnb };
enum class OutlierWeight { kFull, kDequant };

struct MixedLinearOptions {
  float threshold = 6.0f;  // ≥ 0; 0 disables the decomposition
  StatsMode stats = StatsMode::kPaper;
  OutlierWeight outlier_weight = OutlierWeight::kFull;
  GemmPath path = GemmPath::kAuto;
  bool naive_gemm = false;  // use the plain triple loop (the "reference" method)
  int threads = 1;
};

// A weight quantized per output row: codes o × h, scales (absmax) o.
struct QuantizedWeight {
  size_t out = 0, in = 0;
  std::vector<int8_t> codes;
  std::vector<float> scales;
};

QuantizedWeight QuantizeWeight(const float* w, size_t out, size_t in);

struct MixedLinearResult {
  std::vector<float> y;             // s × o
  std::vector<int32_t> outlier_cols;  // ascending
  std::vector<float> cx;            // s
  std::vector<int32_t> c;           // s × o, the int32 GEMM output
  double int8_fraction = 1.0;       // 1 − k/h (1 when h == 0)
};

// REQUIRES: x is s × h; wq.in == h; w_full (o × h) non-null when
// options.outlier_weight == kFull and the decomposition is on; bias null or o floats;
// h ≤ kMaxInt8GemmK; all inputs finite. Validation of user input is the caller's job.
MixedLinearResult Int8MixedLinear(const float* x, size_t s, size_t h, const QuantizedWeight& wq,
                                  const float* w_full, const float* bias,
                                  const MixedLinearOptions& options);

}  // namespace chamferdb::int8
