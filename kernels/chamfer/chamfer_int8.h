// Exact Chamfer (MaxSim) over int8 token storage: vector-wise absmax quantization as in
// LLM.int8() (kernels/int8/quantize.h; kernels-numeric.md section (a), "A1b"), one scale per
// token row, for the stored document tokens and for the query tokens alike.
//
// The math. A token x with absmax c is stored as codes k_j = round(127·x_j/c) and scale c,
// and represents x̂ = k·c/127. For query token i (codes a_i, scale sq_i) and document token
// t (codes b_t, scale sd_t):
//   ŝ_it = sq_i · sd_t · ⟨a_i, b_t⟩ / 127²,  with ⟨a_i, b_t⟩ accumulated exactly in int32,
//   Chamfer^(Q, P) = Σ_i max_t ŝ_it,
// i.e. the Chamfer score of the dequantized vectors. Float evaluation order (identical on
// every path, so all paths agree bit for bit): m_i = max_t float(dot_it)·sd_t, then
// total += m_i · (sq_i / 16129) in query order.
// Error bound (as kernels/int8/maxsim.h, against the exact score of the original floats):
//   ε_it = (sd_t·‖q_i‖₁ + sq_i·‖d̂_t‖₁)/254 + dim·sq_i·sd_t/254²,
//   |Chamfer^ − Chamfer| ≤ Σ_i max_t ε_it   (+ float32 rounding, covered by ChamferI8Bound).
//
// Packed document layout (PackTokensI8; bytes = PackedI8Bytes(n, dim)): n_pad =
// PackedColumns(n), dim4 = dim rounded up to 4, G = dim4/4 groups of 4 coordinates.
//   codes  G × n_pad × 4 int8: byte (g·n_pad + t)·4 + r = code of token t, coordinate 4g+r
//          (0 beyond dim) — 16 tokens × 4 coordinates fill one 512-bit register;
//   scales n_pad float32;
//   bias   n_pad int32 = 128 · Σ_j code_tj (for the VNNI path, which multiplies unsigned
//          query bytes a+128 by signed document codes and subtracts 128·Σb).
// Padding columns t ≥ n repeat token 0, so the maximum is unaffected.
// Paths: AVX-512 VNNI (vpdpbusd), AVX2 (vpmaddubsw on |a| and sign(b, a), no saturation since
// |a|,|b| ≤ 127) and portable C++, chosen once at run time (CHAMFERDB_FORCE_SCALAR=1 forces
// the portable one).
// Limits: dim ≤ 130,000 keeps |⟨a, b⟩| ≤ 127²·dim inside int32.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chamferdb {

// Size in bytes of a packed int8 document of n ≥ 1 tokens.
size_t PackedI8Bytes(size_t n, size_t dim);

// Packs row-major codes (n × dim) and scales (n) into `packed` (PackedI8Bytes(n, dim) bytes).
void PackTokensI8(const int8_t* codes, const float* scales, size_t n, size_t dim, uint8_t* packed);

// A query quantized once per search and scored against many packed documents.
struct QueryI8 {
  size_t n = 0, dim = 0, dim4 = 0;
  std::vector<int8_t> codes;    // n × dim4, zero padded
  std::vector<uint8_t> biased;  // codes + 128 (VNNI's unsigned operand)
  std::vector<uint8_t> abs;     // |codes| (AVX2's unsigned operand)
  std::vector<float> scales;    // n absmax scales
};

// Quantizes q (nq × dim row-major float) per token with int8::QuantizeRow.
QueryI8 QuantizeQueryI8(const float* q, size_t nq, size_t dim);

// Chamfer^(Q, P) of a packed document of n tokens (see the header comment).
float ChamferPackedI8(const QueryI8& q, const uint8_t* packed, size_t n);

// The exact int32 dot products ⟨a_i, b_t⟩ for t < n: out is q.n × n, row-major (for tests
// and diagnostics; uses the same dispatched kernel as ChamferPackedI8).
void ChamferPackedI8Dots(const QueryI8& q, const uint8_t* packed, size_t n, int32_t* out);

// The error bound of ChamferPackedI8 against ChamferReference of the original float query
// q_float (nq × dim) and the original document whose packed codes are given, including the
// float32 rounding of the kernel.
double ChamferI8Bound(const float* q_float, const QueryI8& q, const uint8_t* packed, size_t n);

// Which int8 path the dispatcher chose: "avx512vnni", "avx2" or "baseline".
const char* ChamferI8PathName();

}  // namespace chamferdb
