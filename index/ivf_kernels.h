// SIMD kernels for the IVF-PQ add and train paths (index/faiss_index.cc).
//
// Why: Debian's FAISS 1.7.3 is built for the generic x86-64 target. Its PQ encoder with
// sub-vectors shorter than 16 (ours: 2048 / 256 = 8) runs a scalar L2 loop per centroid, its
// coarse assignment and k-means go through OpenBLAS, which on this machine's CPU falls back
// to its SSE3 ("Prescott") kernels, and its PQ k-means runs 8-deep sgemms whose output
// writes dominate. The ingest profile of an int8 IVF-PQ collection was ~85% sgemm
// (docs/performance-ingest.md). These kernels do the same arithmetic with run-time
// dispatched AVX-512 (portable fallback; CHAMFERDB_FORCE_SCALAR=1 forces it).
//
// Data layout: row-major float matrices (x[i * d + t]). PQ centroids in FAISS's layout:
// M sub-quantizers × ksub centroids × dsub floats.
// Results: sums are in float; the SIMD and portable paths may differ in the last bits
// (different summation order), so an argmin/argmax may differ between paths only where two
// candidates are within float rounding of each other. Ties resolve to the lowest index.
// Threads: the batch functions split rows across the calling thread's OpenMP team when there
// are enough rows; they are otherwise pure and safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chamferdb {

// For each of the nx rows of x, the row of y (ny × d) with the largest inner product:
// best[i] = argmax_j <x_i, y_j> (lowest j on ties), score[i] = that inner product.
// REQUIRES ny ≥ 1.
void ArgmaxInnerProduct(const float* x, size_t nx, const float* y, size_t ny, size_t d, int64_t* best,
                        float* score);

// Nearest-centroid (squared L2) encoder for a product quantizer with ksub ≤ 65536 centroids
// per sub-quantizer. Built once from FAISS-layout centroids (copied and transposed).
class PqEncoder {
 public:
  PqEncoder(const float* centroids, size_t m, size_t ksub, size_t dsub);

  size_t m() const { return m_; }
  size_t ksub() const { return ksub_; }
  size_t dsub() const { return dsub_; }

  // For each of n rows of x (n × m·dsub) and each sub-quantizer s, the index of the nearest
  // centroid of sub-vector s: index[i * m + s] (lowest on ties); distance (optional) gets the
  // squared L2 distance to it.
  void Assign(const float* x, size_t n, uint32_t* index, float* distance) const;
  // FAISS PQ codes (nbits per index, packed little-endian as faiss::PQEncoderGeneric does;
  // one byte per index for nbits = 8): codes has n × code_size bytes.
  void Encode(const float* x, size_t n, size_t nbits, uint8_t* codes) const;

 private:
  size_t m_, ksub_, dsub_;
  // Per sub-quantizer s: dsub × ksub (centroid coordinate t of k at [t][k]), then the ksub
  // squared norms. Distances are computed as ‖c‖² − 2⟨x, c⟩ (+ ‖x‖² when reported).
  std::vector<float> transposed_;
};

}  // namespace chamferdb
