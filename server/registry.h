// The set of collections of one database: creation, lookup, listing and dropping, with
// their specs persisted in the store.
//
// Thread-safety: all methods are thread-safe. Collections are handed out as shared_ptr, so
// a search that is running while its collection is dropped finishes on the old object.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "server/collection.h"
#include "server/json_collection.h"
#include "server/snapshot.h"
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
  // Lookups accept a collection name or an alias of one.
  // NOT_FOUND naming the collection if absent; FAILED_PRECONDITION if it is of the other kind.
  absl::StatusOr<std::shared_ptr<Collection>> Get(std::string_view name) const;
  absl::StatusOr<std::shared_ptr<JsonCollection>> GetJson(std::string_view name) const;
  absl::StatusOr<Entry> GetEntry(std::string_view name) const;
  std::vector<Entry> List() const;  // by name
  // Removes the collection and all its documents in one atomic storage batch.
  // FAILED_PRECONDITION (naming them) while aliases point at it; takes a real name only.
  absl::Status Drop(std::string_view name);

  // Aliases (persisted). SetAlias creates or atomically switches `alias` to `collection`
  // (a real collection name) and returns the previous target ("" if new). An alias may not
  // share a collection's name. DeleteAlias: NOT_FOUND if absent.
  absl::StatusOr<std::string> SetAlias(std::string_view alias, std::string_view collection);
  absl::Status DeleteAlias(std::string_view alias);
  // (alias, collection) pairs by alias; only those of `collection` when non-empty.
  std::vector<std::pair<std::string, std::string>> ListAliases(std::string_view collection) const;
  std::vector<std::string> AliasesOf(std::string_view collection) const;

  // Restores the snapshot at `path` (validated first) into a new collection `name` (the
  // snapshot's collection name when empty). ALREADY_EXISTS if the name is taken, DATA_LOSS
  // naming the file if the snapshot is damaged. All or nothing: a failure (or a crash)
  // part way leaves no trace, because the documents are staged under a marker that Open
  // clears, and the collection becomes visible with its last write.
  absl::StatusOr<Entry> Restore(const std::string& path, std::string_view name);
  // The spec of a collection (resolving aliases); NOT_FOUND if absent.
  absl::StatusOr<CollectionSpec> SpecOf(std::string_view name) const;

  bool sync() const { return sync_; }
  Store* store() const { return store_; }

  static absl::Status ValidateName(std::string_view name);

 private:
  Registry(Store* store, bool sync) : store_(store), sync_(sync) {}

  // The collection a name or alias refers to, or nullptr.
  const Entry* Resolve(std::string_view name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Entry> OpenEntry(const CollectionSpec& spec) const;
  static std::string AliasKey(std::string_view alias) { return "A/" + std::string(alias); }
  static std::string RestoreMarkerKey(uint64_t id);

  Store* const store_;
  const bool sync_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> collections_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string, std::less<>> aliases_ ABSL_GUARDED_BY(mu_);  // alias -> name
  std::set<std::string, std::less<>> restoring_ ABSL_GUARDED_BY(mu_);  // names being restored
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace chamferdb
