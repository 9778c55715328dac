// Collection snapshots: a consistent point-in-time copy of one collection, restorable
// into a collection of any name (on this server or another).
//
// On disk, <snapshots dir>/<name>/ holds
//   data.cdbsnap   "CDBSNAP1" then one record per storage key of the collection, in key
//                  order: u32 key_len | u32 value_len | key | value | u32 crc32(all before
//                  it in this record). Keys are relative to the collection: "E" (encoder
//                  parameters) and "D" + document id (document records, which carry their
//                  own checksums too).
//   manifest.json  the collection spec, record and document counts, data size and CRC32
//                  of data.cdbsnap, creation time and a unique id; its last line is the
//                  CRC32 of the JSON before it.
// A snapshot is written into <name>.tmp/, fsynced, then renamed, so a crash never leaves a
// half snapshot under a valid name. Readers verify every checksum and length and report
// DATA_LOSS naming the file; a damaged snapshot is never restored.
// Consistency: the documents are read through one storage iterator (a RocksDB implicit
// snapshot), so the copy holds exactly the writes acknowledged before it started, without
// blocking writers. The vector index is not copied: restore rebuilds it from the documents.
//
// Thread-safety: SnapshotManager's methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/collection.h"
#include "storage/store.h"

namespace chamferdb {

struct SnapshotInfo {
  std::string name;
  std::string collection;
  std::string created_at;  // RFC 3339 UTC
  std::string uuid;        // unique per snapshot (recorded in restored collections' specs)
  std::string path;        // the snapshot directory
  uint64_t documents = 0;
  uint64_t size_bytes = 0;
};

struct SnapshotManifest {
  SnapshotInfo info;
  CollectionSpec spec;  // as taken (name and id of the source collection)
  uint64_t records = 0;
  uint64_t data_bytes = 0;
  uint32_t data_crc = 0;
};

// Reads and verifies <path>/manifest.json. NOT_FOUND if the directory or manifest is
// missing; DATA_LOSS naming the file if it is damaged.
absl::StatusOr<SnapshotManifest> ReadSnapshotManifest(const std::string& path);

// Streams the records of a snapshot whose manifest was read, verifying each record, the
// count, the size and the whole-file CRC; fn(relative_key, value) may stop the stream by
// returning an error, which is returned. DATA_LOSS names the file on any mismatch (fn may
// already have seen earlier records: callers stage what they write, see Registry::Restore).
absl::Status ReadSnapshotRecords(const SnapshotManifest& manifest,
                                 const std::function<absl::Status(std::string_view, std::string_view)>& fn);

class SnapshotManager {
 public:
  // dir: where snapshots live (created on first use).
  explicit SnapshotManager(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }

  // Snapshots the collection described by `spec` from `store`.
  absl::StatusOr<SnapshotInfo> Create(const CollectionSpec& spec, const Store& store);
  // Valid snapshots, by name; of one collection (the name it had when taken) when
  // `collection` is non-empty. Damaged ones are skipped with a warning in the log.
  std::vector<SnapshotInfo> List(std::string_view collection) const;
  // NOT_FOUND if absent.
  absl::Status Delete(std::string_view name);
  // The snapshot's directory; NOT_FOUND if absent, INVALID_ARGUMENT for a bad name.
  absl::StatusOr<std::string> PathOf(std::string_view name) const;

 private:
  const std::string dir_;
  mutable std::mutex mu_;  // serializes creation and deletion
  uint64_t counter_ = 0;
};

}  // namespace chamferdb
