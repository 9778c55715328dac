// The index layer: maximum-inner-product search over one collection's encoded vectors.
//
// Vectors are identified by Label (common/types.h), chosen by the caller; the index never
// sees document ids. Data layout: n vectors of dim() floats, row-major (x[i·dim + j]).
// Thread-safety: const methods (Search, size, info) may run concurrently with each other;
// Add, Remove and MaybeCompact need exclusive access (the collection holds a writer lock).
// A search never mutates shared state: per-request knobs travel in IndexSearchParams.
// Threads: Search runs on the calling thread only (no OpenMP team per query), except the
// refine stage of >= 1024 neighbours (IndexSearchParams::refine_k), which is split across
// the cores like the collection's Chamfer rerank; Add may use
// OpenMP for large batches (index builds), see server/README section "Threads".
// Errors: INVALID_ARGUMENT for bad arguments (dimension, duplicate label), INTERNAL if FAISS
// reports a broken invariant (FAISS exceptions never escape this layer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/types.h"
#include "index/metadata_index.h"

namespace chamferdb {

enum class IndexKind { kFlat, kHnsw, kIvfPq };

// Refine storage (IVF_PQ only): a second copy of every vector kept beside the PQ codes, so a
// search can re-score its first-stage (PQ) neighbours by exact inner product (FAISS's
// IndexRefine). kFloat32: 4·dim bytes per vector, scores exact; kInt8: dim + 4 bytes, one
// absmax scale per vector (kernels/int8/quantize.h), scores exact on the dequantized values.
enum class RefineStorage { kNone, kFloat32, kInt8 };

// HNSW graph storage (HNSW only): the vectors the graph's distances are computed on.
// kFloat32: 4·dim bytes per vector, exact inner products (FAISS IndexFlatIP storage with the
// project's SIMD dot product). kInt8: dim + 4 bytes, absmax int8 codes per vector and the
// query quantized the same way, integer (VNNI) dot products (index/hnsw_int8.h); scores are
// ⟨q̂, x̂⟩ within the bound documented there. The graph itself is built on the first
// HnswGraphDims(dim) coordinates only (searches score on all of them): for MUVERA FDEs, a
// prefix of the final random projection is a smaller random projection (and without one,
// a prefix of whole repetitions is an FDE with fewer repetitions), good enough to choose
// graph neighbours at a quarter of the memory traffic. kDefault becomes kInt8 for HNSW in
// Normalize (measured in docs/performance-ingest.md, section "HNSW int8 graph storage").
enum class HnswStorage { kDefault, kFloat32, kInt8 };

struct IndexConfig {
  IndexKind kind = IndexKind::kFlat;
  // HNSW
  uint32_t hnsw_m = 32;
  uint32_t hnsw_ef_construction = 200;
  uint32_t hnsw_ef_search = 128;
  HnswStorage hnsw_storage = HnswStorage::kDefault;  // kind kHnsw only (INVALID_ARGUMENT otherwise)
  // IVF_PQ
  uint32_t ivf_nlist = 256;
  uint32_t pq_m = 0;  // 0: dim / 8
  uint32_t pq_nbits = 8;
  uint32_t ivf_nprobe = 0;  // 0: min(16, nlist)
  uint32_t ivf_train_threshold = 0;  // 0: max(39 · nlist, 2048)
  RefineStorage refine = RefineStorage::kNone;  // kind kIvfPq only (INVALID_ARGUMENT otherwise)

  // Fills defaults and checks ranges against dim; INVALID_ARGUMENT names the field.
  absl::Status Normalize(size_t dim);
};

struct IndexSearchParams {
  size_t k = 10;
  uint32_t ef_search = 0;  // 0: the index default
  uint32_t nprobe = 0;     // 0: the index default
  // Two-stage search (IVF_PQ with refine storage, once trained): the PQ search fetches
  // refine_k neighbours, which are re-scored by exact inner product against the refine
  // storage; the best k by that score are returned (ties by label) with the refined scores.
  // Ignored when refine_k <= k or the index has no refine storage; an untrained IVF_PQ
  // searches exactly anyway.
  size_t refine_k = 0;
  // When set, only these labels are candidates (metadata filters): the index skips every
  // other label during its search, so a selective filter still yields k neighbours where
  // the index structure allows (exact for FLAT and untrained IVF_PQ; HNSW and IVF may come
  // back short for very selective filters, which the caller handles).
  const LabelBitmap* allowed = nullptr;
};

struct Neighbor {
  Label label;
  float score;  // inner product (approximate for IVF_PQ and int8 HNSW storage)
};

enum class IndexState { kReady, kExact };  // kExact: IVF_PQ not trained yet

struct IndexInfo {
  IndexKind kind;
  IndexState state;
  size_t live = 0;        // searchable vectors
  size_t tombstones = 0;  // removed but not yet compacted
  uint64_t memory_bytes = 0;
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  virtual size_t dim() const = 0;
  // Adds n vectors with the given labels (each label new to the index).
  virtual absl::Status Add(const float* x, const Label* labels, size_t n) = 0;
  // Removes the labels present in the index; absent labels are ignored.
  virtual absl::Status Remove(const Label* labels, size_t n) = 0;
  // For each of nq queries, up to k neighbours by decreasing inner product (ties by label).
  // out is resized to nq.
  virtual absl::Status Search(const float* queries, size_t nq, const IndexSearchParams& params,
                              std::vector<std::vector<Neighbor>>* out) const = 0;
  virtual size_t size() const = 0;
  virtual IndexInfo info() const = 0;
  // Reclaims removed vectors when they make up a large share; may take long (rebuild).
  virtual absl::Status MaybeCompact() = 0;
};

// Coordinates the int8 HNSW graph is built on: dim up to 1024, else max(512, dim / 4).
size_t HnswGraphDims(size_t dim);

absl::StatusOr<std::unique_ptr<VectorIndex>> CreateIndex(const IndexConfig& config, size_t dim);

}  // namespace chamferdb
