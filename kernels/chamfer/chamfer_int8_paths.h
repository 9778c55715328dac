// Internal: the per-ISA int8 Chamfer kernels behind chamfer_int8.h, selected once by
// chamfer_int8.cc. Each scores packed documents with n_pad columns (PackedColumns(n)).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/chamfer/chamfer_int8.h"

#define CHAMFERDB_DECLARE_I8_PATH(ns)                                                     \
  namespace chamferdb::ns {                                                               \
  float ScoreI8(const QueryI8& q, const uint8_t* packed, size_t n_pad);                   \
  /* out: q.n × n_pad exact int32 dot products */                                         \
  void DotsI8(const QueryI8& q, const uint8_t* packed, size_t n_pad, int32_t* out);       \
  }

CHAMFERDB_DECLARE_I8_PATH(chamfer_i8_baseline)
CHAMFERDB_DECLARE_I8_PATH(chamfer_i8_avx2)
CHAMFERDB_DECLARE_I8_PATH(chamfer_i8_vnni)

namespace chamferdb::i8_layout {
// Offsets into a packed int8 document (see chamfer_int8.h).
inline size_t Groups(size_t dim4) { return dim4 / 4; }
inline size_t ScalesOffset(size_t dim4, size_t n_pad) { return dim4 * n_pad; }
inline size_t BiasOffset(size_t dim4, size_t n_pad) { return dim4 * n_pad + 4 * n_pad; }
}  // namespace chamferdb::i8_layout
