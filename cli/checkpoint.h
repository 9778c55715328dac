// Ingest checkpoint: which records of which input files the server has acknowledged (or the
// run has rejected for good), so that `ingest --resume` sends only the rest.
//
// On disk: one JSON object, replaced atomically (write to PATH.tmp, fsync, rename):
//   {"format": "chamferdb-ingest-checkpoint", "version": 1, "collection": "docs",
//    "sources": {"/abs/path/docs.jsonl": {"fingerprint": "size=... mtime_ns=...",
//                                          "done": [[1, 257], [300, 301]], "rejected": 1}}}
// "done" holds half-open position ranges [begin, end) (JSONL line numbers / npy document
// indices), merged and sorted. A checkpoint written for another collection, or whose
// fingerprint differs from the input file's, is refused (FAILED_PRECONDITION) rather than
// silently skipping records of a changed file.
//
// Error behaviour: a checkpoint that cannot be parsed is DATA_LOSS naming the path; write
// failures are UNAVAILABLE with errno text. Thread-safety: none; the caller serializes.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace chamferdb::cli {

// A set of uint64 positions kept as disjoint, non-adjacent half-open ranges.
class RangeSet {
 public:
  void Add(uint64_t position) { AddRange(position, position + 1); }
  void AddRange(uint64_t begin, uint64_t end);
  bool Contains(uint64_t position) const;
  uint64_t Count() const;
  const std::map<uint64_t, uint64_t>& ranges() const { return ranges_; }  // begin -> end

 private:
  std::map<uint64_t, uint64_t> ranges_;
};

class Checkpoint {
 public:
  struct Source {
    std::string fingerprint;
    RangeSet done;
    uint64_t rejected = 0;
  };

  // An empty checkpoint that will be written to `path` for `collection`.
  Checkpoint(std::string path, std::string collection) : path_(std::move(path)), collection_(std::move(collection)) {}

  // Reads `path`; NOT_FOUND if it does not exist, DATA_LOSS if malformed,
  // FAILED_PRECONDITION if it belongs to another collection.
  static absl::StatusOr<Checkpoint> Load(const std::string& path, const std::string& collection);

  // The state for input `key`. If the stored fingerprint differs from `fingerprint`,
  // FAILED_PRECONDITION; a new key starts empty with that fingerprint.
  absl::StatusOr<Source*> Attach(const std::string& key, const std::string& fingerprint);

  absl::Status Save() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string collection_;
  std::map<std::string, Source> sources_;
};

}  // namespace chamferdb::cli
