// Run-time CPU feature detection for SIMD dispatch.
//
// The whole project is compiled for the portable x86-64 baseline; individual functions opt
// into AVX2/AVX-512 with target attributes and are selected once through these queries.
// Setting CHAMFERDB_FORCE_SCALAR=1 in the environment disables every SIMD path (for tests
// of the portable path and for debugging).
#pragma once

namespace chamferdb {

struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 + FMA + F16C
  bool avx512 = false;       // AVX-512 F + BW + VL
  bool avx512_vnni = false;  // AVX-512 VNNI
};

// Detected once, thread-safe.
const CpuFeatures& GetCpuFeatures();

}  // namespace chamferdb
