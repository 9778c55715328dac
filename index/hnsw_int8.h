// int8 vector storage for FAISS's HNSW graph (IndexConfig::hnsw_storage = kInt8).
//
// The graph's vectors are kept as vector-wise absmax int8 codes (LLM.int8 style,
// kernels/int8/quantize.h: scale c = max|x|, code = round(127·x / c), x̂ = code·c/127).
// Graph construction (get_distance_computer, what FAISS's IndexHNSW::add uses) scores by an
// exact integer dot product of int8 codes, scaled once,
//   score(q, i) = (Σ_{j<g} qcode_j · code_ij) · (c_q / 127) · (c_i / 127)   (= ⟨q̂, x̂_i⟩ for g = d)
// where the inserted vector q is quantized the same way in set_query and g = graph_dims.
// Searches (NewInnerProductComputer, search) keep the float query: ⟨q, x̂_i⟩ over all d
// coordinates. Compared with float storage a distance reads d + 4 bytes (g for the graph)
// instead of 4·d, and the products run as VNNI (vpdpbusd) / AVX-512BW / AVX2 instructions.
//
// Error bounds (tested): with |x_j − x̂_j| ≤ c_x/254 and |q_j − q̂_j| ≤ c_q/254,
//   |⟨q̂, x̂⟩ − ⟨q, x⟩| ≤ (c_x·‖q‖₁ + c_q·‖x̂‖₁) / 254,   |⟨q, x̂⟩ − ⟨q, x⟩| ≤ c_x·‖q‖₁ / 254,
// up to float rounding (the integer sum itself is exact).
//
// Data layout: row i (FAISS storage id) = dim int8 codes at codes()[i·dim], its scale at
// scales()[i]. Rows are only appended (add) or cleared (reset); FAISS HNSW never deletes.
// Thread-safety: const methods and distance computers (one per thread, as FAISS uses them)
// may run concurrently with each other; add/reset need exclusive access.
// Errors: FAISS conventions (faiss::FaissException from FAISS_THROW_*), caught by the
// caller's Guard (index/faiss_index.cc).
#pragma once

#include <faiss/Index.h>
#include <faiss/impl/DistanceComputer.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chamferdb {

// Σ_j a[j]·b[j] over int8 codes, exact whenever the sum fits in int32 (always for codes in
// [-127, 127], as the quantizer makes them, and dim ≤ 131,072).
// Dispatched once at run time (common/cpu_features.h): AVX-512 VNNI, AVX-512BW, AVX2,
// portable; every path returns the same integer.
int32_t DotCodesI8(const int8_t* a, const int8_t* b, size_t dim);

// Inner-product storage with int8 rows, for faiss::IndexHNSW(storage, M).
struct Int8IpStorage final : faiss::Index {
  // graph_dims (0 or ≥ d: all of them): the distance computer FAISS builds the graph with
  // (get_distance_computer) scores by the inner product of the first graph_dims coordinates
  // only, (Σ_{j<graph_dims} qcode_j·code_ij)·(c_q/127)·(c_i/127); NewInnerProductComputer
  // and search always use every coordinate.
  explicit Int8IpStorage(idx_t d, size_t graph_dims = 0);

  // Quantizes and appends n float vectors (n × d, row-major).
  void add(idx_t n, const float* x) override;
  void reset() override;
  // Exact scan by ⟨q, x̂_i⟩ (NewInnerProductComputer's scores), k best per query
  // by decreasing score, ties by smaller id; missing results are id -1, score -inf.
  // SearchParameters' IDSelector is honoured; other parameters are ignored.
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  // The dequantized row x̂_key.
  void reconstruct(idx_t key, float* recons) const override;
  // Similarities on the first graph_dims coordinates (metric_type is METRIC_INNER_PRODUCT;
  // FAISS's HNSW negates them). Caller owns the result; one per thread.
  faiss::DistanceComputer* get_distance_computer() const override;
  // Similarities ⟨q, x̂_i⟩ (float query) on every coordinate, for searching the graph;
  // symmetric_dis as the graph computer's on all d coordinates. Caller owns it.
  faiss::DistanceComputer* NewInnerProductComputer() const;
  size_t graph_dims() const { return graph_dims_; }

  ~Int8IpStorage() override;
  Int8IpStorage(const Int8IpStorage&) = delete;
  Int8IpStorage& operator=(const Int8IpStorage&) = delete;

  const int8_t* codes() const { return codes_; }
  const float* scales() const { return scales_.data(); }
  size_t memory_bytes() const { return codes_capacity_ + scales_.capacity() * sizeof(float); }

 private:
  // Grows codes_ to hold at least `bytes` (doubling; existing codes are copied).
  void Reserve(size_t bytes);

  // ntotal × d codes in an anonymous mapping aligned to 2 MiB and advised for transparent
  // huge pages: the graph reads rows at random across the whole storage, and with 4 KiB
  // pages nearly every row read also missed the TLB.
  int8_t* codes_ = nullptr;
  size_t codes_capacity_ = 0;  // bytes mapped at codes_
  std::vector<float> scales_;  // ntotal
  size_t graph_dims_;  // in 1..d
};

}  // namespace chamferdb
