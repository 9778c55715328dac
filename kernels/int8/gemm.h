// Int8 "NT" GEMM with exact int32 accumulation: C = A · Bᵀ.
//
// Data layout: A is m × k int8 row-major, B is n × k int8 row-major (both K-contiguous,
// i.e. B holds the rows of a PyTorch Linear weight [out, in]); C is m × n int32 row-major.
// The result is exact (integer arithmetic) and identical on every path and thread count.
//
// Paths (chosen at run time, see common/cpu_features.h):
//   kAvx512Vnni  vpdpbusd (u8 × s8 → s32). A is offset to unsigned (a + 128) and the
//                correction 128 · Σ_l B[j, l] is subtracted per column, so every int8
//                value, including -128, is handled exactly.
//   kAvx2        operands widened to int16, vpmaddwd pairs into int32 (exact for all int8).
//   kScalar      portable blocked loops.
//   kAuto        the best available of the above.
// Register blocking: VNNI 8 × 32 tiles, AVX2 4 × 16 tiles, with B packed once per call.
// OpenMP splits the work over 32-column panels of C (fixed partition; integer sums, so
// the result never depends on `threads`).
//
// Limits: k ≤ kMaxInt8GemmK (so no int32 accumulator can overflow: k·255·128 < 2^31).
// Thread-safety: pure function; safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chamferdb::int8 {

inline constexpr size_t kMaxInt8GemmK = 65536;

enum class GemmPath { kAuto, kScalar, kAvx2, kAvx512Vnni };

// True when this CPU (and CHAMFERDB_FORCE_SCALAR) allows `path`. kAuto/kScalar: always.
bool GemmPathAvailable(GemmPath path);
// The concrete path kAuto resolves to (or `path` itself when it is concrete).
GemmPath ResolveGemmPath(GemmPath path);
std::string_view GemmPathName(GemmPath path);

// C = A · Bᵀ (m × n int32). REQUIRES GemmPathAvailable(path), k ≤ kMaxInt8GemmK,
// threads ≥ 1. m, n or k may be 0 (k == 0 gives C = 0).
void Int8GemmNT(const int8_t* a, const int8_t* b, int32_t* c, size_t m, size_t n, size_t k,
                GemmPath path = GemmPath::kAuto, int threads = 1);

// The plain triple loop (the "reference" method of the RPCs); single-threaded.
void Int8GemmNTNaive(const int8_t* a, const int8_t* b, int32_t* c, size_t m, size_t n,
                     size_t k);

}  // namespace chamferdb::int8
