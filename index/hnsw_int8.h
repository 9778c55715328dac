// int8 vector storage for FAISS's HNSW graph (IndexConfig::hnsw_storage = kInt8).
//
// The graph's vectors are kept as vector-wise absmax int8 codes (LLM.int8 style,
// kernels/int8/quantize.h: scale c = max|x|, code = round(127·x / c), x̂ = code·c/127).
// Graph construction (Int8Hnsw below, the index the server uses; or FAISS's IndexHNSW::add
// through get_distance_computer) scores by an exact integer dot product of int8 codes,
// scaled once,
//   score(q, i) = (Σ_{j<g} qcode_j · code_ij) · (c_q / 127) · (c_i / 127)   (= ⟨q̂, x̂_i⟩ for g = d)
// where the inserted vector q is quantized the same way (Int8Hnsw uses its stored row;
// FAISS's path re-quantizes it in set_query) and g = graph_dims.
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
#include <faiss/IndexHNSW.h>
#include <faiss/impl/DistanceComputer.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
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
  // Per row, Σ_{j<graph_dims} code_ij (the bias correction of the VNNI graph kernel).
  const int32_t* graph_sums() const { return graph_sums_.data(); }
  size_t memory_bytes() const {
    return codes_capacity_ + scales_.capacity() * sizeof(float) + graph_sums_.capacity() * sizeof(int32_t);
  }

 private:
  // Grows codes_ to hold at least `bytes` (doubling; existing codes are copied).
  void Reserve(size_t bytes);

  // ntotal × d codes in an anonymous mapping aligned to 2 MiB and advised for transparent
  // huge pages: the graph reads rows at random across the whole storage, and with 4 KiB
  // pages nearly every row read also missed the TLB.
  int8_t* codes_ = nullptr;
  size_t codes_capacity_ = 0;  // bytes mapped at codes_
  std::vector<float> scales_;  // ntotal
  std::vector<int32_t> graph_sums_;  // ntotal
  size_t graph_dims_;  // in 1..d
};

// The graph similarity of stored rows a and b as the graph builder scores it:
// (Σ_{j<graph_dims} code_aj·code_bj) · (c_a/127) · (c_b/127), symmetric in a and b bit for bit.
float GraphSimilarity(const Int8IpStorage& s, int64_t a, int64_t b);

// The HNSW neighbour-selection heuristic (Malkov & Yashunin, Algorithm 4 without extension;
// what FAISS's shrink_neighbor_list does) for base row `base` with graph similarities:
// `cands` (row, GraphSimilarity(base, row)) sorted by decreasing similarity (ties in any
// order); a candidate c is kept iff no already kept o has GraphSimilarity(c, o) >
// similarity(base, c), until `max_keep` are kept. Returns the kept ones in candidate order.
// If cands.size() < max_keep, FAISS keeps them all without the heuristic; so does this.
std::vector<std::pair<float, int32_t>> SelectNeighbors(const Int8IpStorage& s,
                                                       const std::vector<std::pair<float, int32_t>>& cands,
                                                       size_t max_keep);

// FAISS's IndexHNSW over an Int8IpStorage whose graph construction is done here instead of
// by FAISS's hnsw_add_vertices, on the same faiss::HNSW structure (levels, neighbour lists,
// entry point: FAISS's and chamferdb's searches read it unchanged) and with the same
// algorithm (levels from hnsw.rng, points inserted from the highest level down, beam of
// efConstruction per level, neighbour heuristic, reverse links pruned by the heuristic when
// a list is full), but:
// - scores come straight from the stored int8 rows (no re-quantization of the inserted
//   vector, no virtual distance calls, no negation), by a one-to-many VNNI kernel that
//   prefetches each expanded node's unvisited neighbours' rows together;
// - each level's search starts from the best node found on the level above (Malkov &
//   Yashunin's Algorithm 1; FAISS 1.7.3 restarts every level from the upper levels' greedy
//   result);
// - similarities already known (the inserted point to its chosen neighbours) are reused
//   when adding the reverse links.
// Threads: add() inserts one batch on up to BulkThreads() OpenMP threads (per-node locks,
// lists read without locks during searches, as FAISS does); add/reset need exclusive access
// to the index, searches must not run concurrently with add (the caller's lock).
struct Int8Hnsw final : faiss::IndexHNSW {
  // Takes ownership of storage (own_fields).
  Int8Hnsw(Int8IpStorage* storage, int M);
  ~Int8Hnsw() override;
  Int8Hnsw(const Int8Hnsw&) = delete;
  Int8Hnsw& operator=(const Int8Hnsw&) = delete;

  // Appends n vectors to the storage and links them into the graph.
  void add(idx_t n, const float* x) override;
  // Threads for add (default: BulkThreads()); 1 makes the build deterministic.
  void set_build_threads(int threads) { build_threads_ = threads; }

 private:
  using Cand = std::pair<float, int32_t>;  // (graph similarity, row)
  struct Scratch;

  std::mutex& Lock(int32_t row) const;
  // faiss::HNSW::neighbor_range, inlined (it is on the hot path of every expansion).
  void NeighborRange(int32_t row, int level, size_t* begin, size_t* end) const {
    const size_t o = hnsw.offsets[static_cast<size_t>(row)];
    *begin = o + static_cast<size_t>(hnsw.cum_nneighbor_per_level[level]);
    *end = o + static_cast<size_t>(hnsw.cum_nneighbor_per_level[level + 1]);
  }
  void InsertBatch(int64_t n0, int64_t n);
  void InsertPoint(int32_t pt, int pt_level, Scratch& t);
  // Greedy descent on `level` from nearest (scorer set to the point).
  Cand Greedy(Scratch& t, Cand nearest, int level) const;
  // Beam search of `level` from entry: t.results holds the best ≤ ef (a min-heap).
  void SearchLayer(Scratch& t, Cand entry, int level, size_t ef) const;
  // Adds dest (similarity sim to src) to src's list on `level`; a full list is pruned by
  // the heuristic. Caller holds Lock(src).
  void AddLink(Scratch& t, int32_t src, int32_t dest, float sim, int level);

  int build_threads_ = 0;
  std::unique_ptr<std::mutex[]> locks_;  // striped per-row locks (never two held at once)
  std::mutex entry_mu_;                  // hnsw.entry_point and hnsw.max_level
  std::vector<std::unique_ptr<Scratch>> scratch_;  // one per build thread
};

}  // namespace chamferdb
