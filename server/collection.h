// A multi-vector collection: the core of chamferdb, independent of gRPC.
//
// Write path: validate the whole batch -> L2-normalize tokens -> encode MUVERA FDEs (OpenMP
// across documents) -> one atomic storage batch (RocksDB WAL; fsync when sync) -> swap the
// documents into the FAISS index and the in-memory packed tokens. A batch is all or
// nothing: nothing in memory changes unless the storage write succeeded, and the storage
// write is one atomic batch.
// Read path: validate -> normalize -> query FDE -> FAISS candidates -> exact Chamfer rerank
// over packed in-memory tokens -> top k (ties by id).
// Durability: storage is the source of truth; the index and packed tokens are rebuilt from
// it when the collection opens, so after any restart the index agrees with storage.
// Thread-safety: all methods are thread-safe. Searches share a reader lock; writes take the
// writer lock only to apply an already-encoded batch.
// Threads: searches run on the calling (gRPC) thread only; Upsert batches and the rebuild
// use OpenMP across documents (see README "Threads").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/rw_mutex.h"
#include "common/types.h"
#include "encoders/muvera_fde.h"
#include "index/index.h"
#include "kernels/chamfer/chamfer_int8.h"
#include "index/metadata_index.h"
#include "storage/store.h"

namespace chamferdb {

// Documented limits (README "Limits"); violations are INVALID_ARGUMENT or RESOURCE_EXHAUSTED.
struct Limits {
  static constexpr size_t kMaxIdBytes = 512;
  static constexpr size_t kMaxTokensPerDocument = 4096;
  static constexpr size_t kMaxTokensPerQuery = 1024;
  static constexpr size_t kMaxMetadataBytes = 64 * 1024;
  static constexpr size_t kMaxDocumentsPerBatch = 10000;
  static constexpr size_t kMaxIdsPerRequest = 10000;
  static constexpr size_t kMaxK = 1000;
  // Rerank work per search: ≤ 50,000 Chamfer scores (int8 ≈ 57 ms, fp32 ≈ 135 ms of one
  // core at 32×32×128, split over the cores) and ≈ 16 B of bookkeeping per candidate; 1M
  // documents need ≈ 16,000–32,000 for recall@10 0.9 (docs/performance-1m.md).
  static constexpr size_t kMaxCandidates = 50000;
  static constexpr size_t kMaxRefineCandidates = 100000;
  static constexpr size_t kMaxRescoreCandidates = 1000;
  static constexpr size_t kMaxNameBytes = 64;
  static constexpr size_t kMaxScrollLimit = 1000;
};

enum class CollectionKindDomain { kMultiVector, kJson };

struct CollectionSpec {
  std::string name;
  uint64_t id = 0;  // storage key prefix, unique for the life of the database
  CollectionKindDomain kind = CollectionKindDomain::kMultiVector;
  // kJson: the MBAT config (MbatConfigToJson form) and the id field; fde.dim holds D.
  std::string mbat_config_json;
  std::string id_field = "id";
  FdeConfig fde;    // fde.dim is the token dimension
  IndexConfig index;
  TokenStorage token_storage = TokenStorage::kFloat32;
  // Tokens also kept at this higher precision in storage (not in memory) for the final
  // rescore of a search; kFloat32 or kFloat16, more precise than token_storage.
  std::optional<TokenStorage> rescore_storage;
  bool normalize = true;
  std::string restored_from;  // uuid of the snapshot this collection was restored from

  std::string ToJson() const;
  static absl::StatusOr<CollectionSpec> FromJson(std::string_view json);
};

// One document of an upsert batch. vectors: num_tokens × dim float32, row-major, as raw
// little-endian bytes (unaligned is fine). metadata_json: empty or a JSON object.
struct DocumentInput {
  std::string_view id;
  uint32_t num_tokens = 0;
  std::string_view vectors;
  std::string_view metadata_json;
};

struct StoredDocument {
  std::string id;
  uint32_t num_tokens = 0;
  // Filled when requested: as stored (normalized, rounded), the rescore storage's copy when
  // the collection has one.
  std::vector<float> vectors;
  std::string metadata_json;
};

struct SearchQuery {
  const float* tokens = nullptr;  // num_tokens × dim
  size_t num_tokens = 0;
  size_t k = 10;
  size_t candidates = 0;  // 0: DefaultCandidates(k)
  bool rerank = true;
  uint32_t ef_search = 0;
  uint32_t nprobe = 0;
  bool include_metadata = false;
  // Query ball carving before the rerank (encoders/ball_carving.h): tokens with
  // ⟨q, q′⟩ ≥ merge_tau are summed. 0 = off; otherwise finite and > 0 (the paper: 0.7).
  // The FDE candidate search always uses every query token.
  float merge_tau = 0;
  // Two-stage candidate search (IVF_PQ with refine storage): neighbours fetched from the PQ
  // search and re-scored by exact FDE inner product, of which `candidates` are reranked.
  // 0: 4 × candidates with refine storage, none without; else candidates..kMaxRefineCandidates.
  size_t refine_candidates = 0;
  // Final rescore (collections with rescore storage): the best rescore_candidates of the
  // rerank are read from storage and scored again by exact float32 Chamfer over their
  // original-precision tokens. 0: min(max(4 × k, 32), reranked candidates); else
  // k..min(candidates, kMaxRescoreCandidates).
  size_t rescore_candidates = 0;
  // Only documents whose metadata matches are candidates; when no more match than would
  // be reranked, every match is scored by exact Chamfer (SearchStats::filter_exhaustive).
  const MetadataFilter* filter = nullptr;
};

struct SearchHit {
  std::string id;
  float score = 0;      // Chamfer (or FDE score without rerank)
  float fde_score = 0;   // 0 for hits of the exhaustive filtered path (not computed)
  std::string metadata_json;
};

struct SearchStats {
  size_t candidates = 0;
  size_t rerank_query_tokens = 0;  // query tokens the rerank scored (after ball carving)
  uint64_t encode_micros = 0, index_micros = 0, rerank_micros = 0, total_micros = 0;
  uint64_t filter_matches = 0;     // with a filter: live documents matching it
  bool filter_exhaustive = false;  // every match was scored exactly
  size_t rescored = 0;             // documents re-scored from storage (rescore storage)
  uint64_t rescore_micros = 0;
};

// One page of a scroll: documents in id order and the token of the next page.
struct ScrollQuery {
  std::string_view page_token;  // "" or a previous next_page_token
  size_t limit = 100;           // 1..Limits::kMaxScrollLimit
  const MetadataFilter* filter = nullptr;
  bool include_vectors = false;
  bool include_metadata = false;
};

template <typename Doc>
struct ScrollPage {
  std::vector<Doc> documents;
  std::string next_page_token;  // "" at the end
};

// Page tokens: the hex of the last id returned (opaque to clients). INVALID_ARGUMENT if a
// token is not one.
std::string EncodePageToken(std::string_view last_id);
absl::StatusOr<std::string> DecodePageToken(std::string_view token);

// The ids of one scroll page over `labels` (live ids in order -> label): up to `limit` ids
// after the page token's id whose labels are in `allowed` (all when null), and the next
// page token ("" when nothing matching follows). Shared by both collection kinds.
struct ScrollIds {
  std::vector<std::string> ids;
  std::string next_page_token;
};
absl::StatusOr<ScrollIds> PageIds(const std::map<std::string, Label, std::less<>>& labels, std::string_view page_token,
                                  size_t limit, const LabelBitmap* allowed);

struct SearchResult {
  std::vector<SearchHit> hits;
  SearchStats stats;
};

struct CollectionStats {
  uint64_t documents = 0;
  uint64_t token_vectors = 0;
  uint64_t bytes_on_disk = 0;
  uint64_t bytes_in_memory = 0;
  IndexState index_state = IndexState::kReady;
  size_t fde_dim = 0;
  uint64_t ingested_total = 0;  // documents upserted since the process started
};

inline size_t DefaultCandidates(size_t k) { return std::min<size_t>(std::max<size_t>(100, 10 * k), Limits::kMaxCandidates); }

class Collection {
 public:
  // Creates the collection's storage records (spec and encoder) in `store`.
  // INVALID_ARGUMENT for a bad spec. The caller guarantees name/id uniqueness.
  static absl::StatusOr<std::unique_ptr<Collection>> Create(const CollectionSpec& spec, Store* store,
                                                            bool sync);
  // Opens a collection from storage and rebuilds its index. DATA_LOSS for corrupt records
  // (naming the key), FAILED_PRECONDITION for encoder parameters of another code version.
  static absl::StatusOr<std::unique_ptr<Collection>> Open(const CollectionSpec& spec, Store* store);

  const CollectionSpec& spec() const { return spec_; }
  size_t dim() const { return spec_.fde.dim; }

  // Inserts or replaces (by id) every document, atomically. Within one batch a repeated id
  // is INVALID_ARGUMENT.
  absl::Status Upsert(const std::vector<DocumentInput>& docs, bool sync);
  // Deletes the ids that exist; returns how many did.
  absl::StatusOr<size_t> Delete(const std::vector<std::string>& ids, bool sync);
  // Documents in request order; absent ids go to *missing.
  absl::StatusOr<std::vector<StoredDocument>> Get(const std::vector<std::string>& ids,
                                                  bool include_vectors,
                                                  std::vector<std::string>* missing) const;
  absl::StatusOr<SearchResult> Search(const SearchQuery& query) const;
  // Documents in id order after query.page_token, matching query.filter when set. Reads
  // a consistent view: every write acknowledged before the call.
  absl::StatusOr<ScrollPage<StoredDocument>> Scroll(const ScrollQuery& query) const;
  // Exact number of live documents, matching `filter` when set.
  size_t Count(const MetadataFilter* filter) const;
  CollectionStats Stats() const;

  // Storage key helpers (also used by the registry to drop a collection).
  static std::string SpecKey(std::string_view name);
  static std::string EncoderKey(uint64_t id);
  static std::string DocPrefix(uint64_t id);

 private:
  Collection(CollectionSpec spec, std::unique_ptr<MuveraFdeEncoder> encoder,
             std::unique_ptr<VectorIndex> index, Store* store);

  struct Slot {
    std::string id;
    uint32_t num_tokens = 0;
    std::vector<uint8_t> packed;  // PackTokens* layout, in spec_.token_storage
  };

  // The query as the rerank kernel for spec_.token_storage consumes it.
  struct ScoringQuery {
    const float* tokens = nullptr;  // n × dim
    size_t n = 0;
    QueryI8 i8;  // kInt8 only: quantized once per search
  };

  // Validated, normalized, encoded documents ready to apply.
  struct Prepared {
    std::string id;
    uint32_t num_tokens;
    std::vector<float> tokens;  // normalized, row-major (kInt8: dequantized)
    std::vector<float> originals;  // rescore storage only: normalized, rounded to that storage
    std::vector<int8_t> codes;  // kInt8 only: n × dim codes and n absmax scales
    std::vector<float> scales;
    std::string record;         // the storage value
    std::vector<uint8_t> packed;
    std::string_view metadata;  // points into the caller's DocumentInput
  };

  absl::Status ValidateTokens(std::string_view what, uint32_t num_tokens, std::string_view bytes,
                              size_t max_tokens, std::vector<float>* out) const;
  // Validates, normalizes and encodes one document; its FDE goes to fde (output_dim floats).
  absl::Status Prepare(const DocumentInput& in, Prepared* out, float* fde) const;
  // codes/scales: kInt8 only (the stored quantization, never re-derived from floats).
  void Pack(const std::vector<float>& tokens, const int8_t* codes, const float* scales, uint32_t n,
            std::vector<uint8_t>* out) const;
  float Score(const ScoringQuery& q, const Slot& slot) const;
  // The final rescore of a search (rescore storage): re-scores the first `count` hits of
  // *scored (sorted by rerank score) from storage, then sorts them by the new score.
  struct Scored {
    float score;
    float fde_score;
    const std::string* id;
  };
  absl::Status Rescore(const ScoringQuery& q, size_t count, std::vector<Scored>* scored) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string DocKey(std::string_view id) const;
  absl::Status Rebuild();
  // Index candidates for a search, honouring query.filter inside candidate generation.
  absl::Status FilteredCandidates(const SearchQuery& query, const float* fde, IndexSearchParams* params,
                                  std::vector<std::vector<Neighbor>>* found, SearchStats* stats) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // A filtered search the index cannot satisfy scores at most this many matches exactly.
  static constexpr size_t kMaxExhaustiveMatches = 50000;

  const CollectionSpec spec_;
  const std::unique_ptr<MuveraFdeEncoder> encoder_;
  Store* const store_;

  // Writer-preferring (common/rw_mutex.h): overlapping searches cannot starve upserts.
  mutable WriterPriorityMutex mu_;
  // Protected by mu_.
  std::unique_ptr<VectorIndex> index_ ABSL_GUARDED_BY(mu_);
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);  // by label
  std::map<std::string, Label, std::less<>> labels_ ABSL_GUARDED_BY(mu_);  // live ids, ordered
  MetadataIndex metadata_ ABSL_GUARDED_BY(mu_);
  uint64_t token_vectors_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t packed_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t ingested_total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chamferdb
