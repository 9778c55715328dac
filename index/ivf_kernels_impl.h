// Internal: the per-ISA entry points of index/ivf_kernels.cc (portable and AVX-512 builds).
#pragma once

#include <cstddef>
#include <cstdint>

#define CHAMFERDB_DECLARE_IVF_PATH(ns)                                                              \
  namespace chamferdb::ns {                                                                         \
  /* best[i], score[i] for rows [0, nx) of x against all ny rows of y. */                           \
  void ArgmaxIP(const float* x, size_t nx, const float* y, size_t ny, size_t d, int64_t* best,      \
                float* score);                                                                      \
  /* One row x (m·dsub floats): index[s], distance[s] (may be null) per sub-quantizer;           \
     ct per sub-quantizer: dsub × ksub transposed centroids, then ksub squared norms. */                                                  \
  void NearestL2(const float* x, const float* ct, size_t m, size_t ksub, size_t dsub, uint32_t* index, \
                 float* distance);                                                                  \
  }

CHAMFERDB_DECLARE_IVF_PATH(ivf_portable)
CHAMFERDB_DECLARE_IVF_PATH(ivf_avx512)
