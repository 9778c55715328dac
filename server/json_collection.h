// A JSON collection: records (JSON objects) encoded as MBAT vectors (encoders/mbat_json.h),
// searched by inner product in a VectorIndex, stored verbatim in the Store.
//
// Same contract as Collection (collection.h): batches are validated and encoded first, then
// written in one atomic storage batch, then applied to memory; the index and the per-path
// value dictionary (for Probe) are rebuilt from storage when the collection opens.
// Scoring: COSINE encodes the query like a record (unit vectors, score = cosine);
// CONTAINMENT encodes q = enc(query)/‖enc(query)‖² and rescores the index candidates with
// ⟨q, r⟩·raw_norm(r) ≈ the fraction of the query's leaves the record contains.
// Thread-safety: all methods are thread-safe (reader/writer lock as in Collection).
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/rw_mutex.h"
#include "encoders/mbat_json.h"
#include "index/index.h"
#include "server/collection.h"
#include "storage/store.h"

namespace chamferdb {

struct JsonRecordInput {
  std::string_view id;  // empty: read from the id field
  std::string_view json;
};

struct JsonSearchQuery {
  std::string_view json;
  size_t k = 10;
  bool containment = false;
  size_t candidates = 0;
  uint32_t ef_search = 0;
  uint32_t nprobe = 0;
  bool include_record = false;
  // Only records whose fields match are candidates; when no more match than would be
  // fetched from the index, every match is scored directly (exact).
  const MetadataFilter* filter = nullptr;
};

struct JsonHitDomain {
  std::string id;
  float score = 0;
  std::string json;
};

struct StoredRecord {
  std::string id;
  std::string json;
};

class JsonCollection {
 public:
  static absl::StatusOr<std::unique_ptr<JsonCollection>> Create(const CollectionSpec& spec, Store* store);
  static absl::StatusOr<std::unique_ptr<JsonCollection>> Open(const CollectionSpec& spec, Store* store);

  const CollectionSpec& spec() const { return spec_; }

  // id_field: empty = the collection's. INVALID_ARGUMENT names the record (records[i]).
  absl::Status Upsert(const std::vector<JsonRecordInput>& records, std::string_view id_field, bool sync);
  absl::StatusOr<size_t> Delete(const std::vector<std::string>& ids, bool sync);
  absl::StatusOr<std::vector<StoredRecord>> Get(const std::vector<std::string>& ids,
                                                std::vector<std::string>* missing) const;
  absl::StatusOr<std::vector<JsonHitDomain>> Search(const JsonSearchQuery& query) const;
  // Most likely values at `path` of a stored record (id) or of an inline record (json).
  absl::StatusOr<std::vector<MbatProbeHit>> Probe(std::string_view id, std::string_view json,
                                                  std::string_view path, size_t top_n) const;
  // Records in id order after query.page_token, matching query.filter when set
  // (include_vectors is ignored; include_metadata selects the record text).
  absl::StatusOr<ScrollPage<StoredRecord>> Scroll(const ScrollQuery& query) const;
  size_t Count(const MetadataFilter* filter) const;
  CollectionStats Stats() const;

 private:
  JsonCollection(CollectionSpec spec, std::unique_ptr<MbatJsonEncoder> encoder,
                 std::unique_ptr<VectorIndex> index, Store* store);
  absl::Status Rebuild();
  std::string Key(std::string_view id) const;

  struct Slot {
    std::string id;
    double raw_norm = 0;
    std::vector<float> vec;  // kept for Probe by id (D floats)
  };

  const CollectionSpec spec_;
  const std::unique_ptr<MbatJsonEncoder> encoder_;
  Store* const store_;
  MbatPathDictionary dictionary_;  // internally synchronized

  // Writer-preferring (common/rw_mutex.h): overlapping searches cannot starve upserts.
  mutable WriterPriorityMutex mu_;
  std::unique_ptr<VectorIndex> index_ ABSL_GUARDED_BY(mu_);
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Label, std::less<>> labels_ ABSL_GUARDED_BY(mu_);  // live ids, ordered
  MetadataIndex metadata_ ABSL_GUARDED_BY(mu_);  // the records' own fields
  uint64_t ingested_total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chamferdb
