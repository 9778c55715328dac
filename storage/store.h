// The storage layer: an ordered key-value store with atomic batches, the durable source of
// truth for collections, documents and token vectors.
//
// Contract:
// - Keys are ordered bytewise. A WriteBatch is applied atomically: after a crash either all
//   of it is visible or none of it. When Write returns OK the batch survives a process
//   crash (kill -9); with sync = true it also survives power loss (fsync before return).
// - Reads see every acknowledged write.
// Thread-safety: every method may be called concurrently from many threads.
// Errors: DATA_LOSS for corruption detected in files, UNAVAILABLE / RESOURCE_EXHAUSTED for
// I/O errors and full disks (the batch was not applied), INTERNAL for broken invariants.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chamferdb {

class WriteBatch {
 public:
  enum class OpKind { kPut, kDelete, kDeleteRange };
  struct Op {
    OpKind kind;
    std::string key;    // for kDeleteRange: the first key removed
    std::string value;  // for kDeleteRange: the first key kept (exclusive end)
  };

  void Put(std::string key, std::string value) {
    bytes_ += key.size() + value.size();
    ops_.push_back({OpKind::kPut, std::move(key), std::move(value)});
  }
  void Delete(std::string key) {
    bytes_ += key.size();
    ops_.push_back({OpKind::kDelete, std::move(key), {}});
  }
  // Removes every key in [begin, end).
  void DeleteRange(std::string begin, std::string end) {
    bytes_ += begin.size() + end.size();
    ops_.push_back({OpKind::kDeleteRange, std::move(begin), std::move(end)});
  }
  const std::vector<Op>& ops() const { return ops_; }
  size_t bytes() const { return bytes_; }
  bool empty() const { return ops_.empty(); }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // The value of key, or std::nullopt when absent.
  virtual absl::StatusOr<std::optional<std::string>> Get(std::string_view key) const = 0;
  // Values of many keys, in order (std::nullopt for absent ones).
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) const = 0;
  // Applies the batch atomically (see the contract above).
  virtual absl::Status Write(const WriteBatch& batch, bool sync) = 0;
  // Calls fn(key, value) for every key that starts with prefix and is >= start (start
  // empty: from the first), in key order, until fn returns false. The view is a
  // consistent snapshot taken when Scan starts.
  virtual absl::Status Scan(
      std::string_view prefix, std::string_view start,
      const std::function<bool(std::string_view key, std::string_view value)>& fn) const = 0;
  // Estimated bytes on disk of keys with this prefix.
  virtual uint64_t ApproximateSize(std::string_view prefix) const = 0;
  // Persists everything written so far (memtables to files); used at shutdown.
  virtual absl::Status Flush() = 0;
};

struct RocksStoreOptions {
  // Upper bound on memory for RocksDB's block cache.
  uint64_t block_cache_bytes = 256ull << 20;
};

// Opens (creating if missing) a RocksDB database in `path`. DATA_LOSS if its files are
// corrupt (paranoid checks are on), UNAVAILABLE if it is locked by another process.
absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const std::string& path,
                                                      const RocksStoreOptions& options = {});

// An in-memory store for tests (same contract, no durability).
std::unique_ptr<Store> NewMemStore();

// The smallest key greater than every key starting with prefix ("" when none exists).
std::string PrefixEnd(std::string_view prefix);

}  // namespace chamferdb
