// The set of collections of one database: creation, lookup, listing and dropping, with
// their specs persisted in the store.
//
// Thread-safety: all methods are thread-safe. Collections are handed out as shared_ptr, so
// a search that is running while its collection is dropped finishes on the old object.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "server/collection.h"
#include "server/json_collection.h"
#include "storage/store.h"

namespace chamferdb {

class Registry {
 public:
  // Loads and rebuilds every collection in `store`. Any DATA_LOSS / FAILED_PRECONDITION from
  // a collection fails the whole open (the server then refuses to start, naming it).
  static absl::StatusOr<std::unique_ptr<Registry>> Open(Store* store, bool sync);

  // A collection of either kind (exactly one pointer is set).
  struct Entry {
    std::shared_ptr<Collection> multi_vector;
    std::shared_ptr<JsonCollection> json;
    const CollectionSpec& spec() const { return multi_vector ? multi_vector->spec() : json->spec(); }
    CollectionStats Stats() const { return multi_vector ? multi_vector->Stats() : json->Stats(); }
  };

  // Creates a collection (spec.id is assigned here). ALREADY_EXISTS if the name is taken,
  // INVALID_ARGUMENT for a bad name or spec.
  absl::StatusOr<Entry> Create(CollectionSpec spec);
  // NOT_FOUND naming the collection if absent; FAILED_PRECONDITION if it is of the other kind.
  absl::StatusOr<std::shared_ptr<Collection>> Get(std::string_view name) const;
  absl::StatusOr<std::shared_ptr<JsonCollection>> GetJson(std::string_view name) const;
  absl::StatusOr<Entry> GetEntry(std::string_view name) const;
  std::vector<Entry> List() const;  // by name
  // Removes the collection and all its documents in one atomic storage batch.
  absl::Status Drop(std::string_view name);

  bool sync() const { return sync_; }

  static absl::Status ValidateName(std::string_view name);

 private:
  Registry(Store* store, bool sync) : store_(store), sync_(sync) {}

  Store* const store_;
  const bool sync_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> collections_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace chamferdb
