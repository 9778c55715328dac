// Exact Chamfer (MaxSim) similarity, the rerank score of chamferdb:
//   Chamfer(Q, P) = Σ_{q∈Q} max_{p∈P} ⟨q, p⟩.
//
// Two implementations live side by side:
// - ChamferReference: the obviously-correct double-precision triple loop over row-major
//   token matrices (the test oracle).
// - ChamferPacked*: the fast path over a document "packed" once at ingest into a
//   column-major, padded layout: dim rows × n_pad columns, n_pad = PackedColumns(n) (a
//   multiple of 16), column t holding token t; padding columns repeat token 0 so that the
//   maximum is unaffected and no masking is needed. The query stays row-major.
//   It runs 4 query tokens × 16 document tokens per step in SIMD registers. The code is
//   written once with GCC vector extensions and compiled three times (baseline x86-64,
//   AVX2, AVX-512); the widest the CPU supports is chosen once at run time
//   (CHAMFERDB_FORCE_SCALAR=1 forces the baseline). The AVX2 and AVX-512 builds contract
//   multiply-adds into FMA and agree bit for bit with each other; the baseline rounds each
//   product, so it differs from them in the last bits only.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chamferdb {

// Reference: q: nq × dim, p: np × dim, row-major. Accumulates in double.
double ChamferReference(const float* q, size_t nq, const float* p, size_t np, size_t dim);

inline size_t PackedColumns(size_t n_tokens) { return (n_tokens + 15) / 16 * 16; }

// Packs a row-major n × dim token matrix (n >= 1) into dim × PackedColumns(n) floats.
void PackTokensF32(const float* tokens, size_t n, size_t dim, float* packed);
// The same, rounding each value to IEEE binary16.
void PackTokensF16(const float* tokens, size_t n, size_t dim, uint16_t* packed);
// The same for values already in binary16 (row-major n × dim bit patterns), unconverted.
void PackHalvesF16(const uint16_t* halves, size_t n, size_t dim, uint16_t* packed);

// Chamfer(Q, P) for a packed document. q: nq × dim row-major; packed: dim × n_pad.
float ChamferPackedF32(const float* q, size_t nq, const float* packed, size_t n_pad, size_t dim);
float ChamferPackedF16(const float* q, size_t nq, const uint16_t* packed, size_t n_pad,
                       size_t dim);

// Which path the dispatcher chose: "avx512", "avx2" or "baseline".
const char* ChamferPathName();

}  // namespace chamferdb
