// Internal: the per-ISA builds of chamfer_impl.inc, selected by chamfer.cc.
#pragma once

#include <cstddef>
#include <cstdint>

#define CHAMFERDB_DECLARE_PATH(ns)                                                          \
  namespace chamferdb::ns {                                                                 \
  float ChamferPackedF32(const float* q, size_t nq, const float* packed, size_t n_pad,      \
                         size_t dim);                                                       \
  float ChamferPackedF16(const float* q, size_t nq, const uint16_t* packed, size_t n_pad,   \
                         size_t dim);                                                       \
  void DotMany(const float* x, const float* rows, size_t nrows, size_t dim, float* out);    \
  void SketchPacked(const float* xt, size_t n_pad, size_t dim, const float* planes,        \
                    size_t nplanes, float* out);                                            \
  void ProjectPacked(const float* xt, size_t n_pad, size_t dim, const uint32_t* slot,       \
                     const int8_t* sign, size_t width, float* yt);                          \
  void ProjectPackedGrouped(const float* xt, size_t n_pad, const uint32_t* order,          \
                            const int8_t* sign, const uint32_t* start, size_t width,       \
                            float* yt);                                                     \
  }

CHAMFERDB_DECLARE_PATH(chamfer_baseline)
CHAMFERDB_DECLARE_PATH(chamfer_avx2)
CHAMFERDB_DECLARE_PATH(chamfer_avx512)
