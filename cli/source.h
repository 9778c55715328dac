// Record sources for `ingest` and `search`: a JSONL file of multi-vector documents or of
// JSON records, or the three-file npy layout (vectors.npy float32 n_tokens x dim,
// offsets.npy int64 n_docs + 1, ids.txt one id a line).
//
// A source yields items in file order. Each item carries its position (JSONL: 1-based line
// number; npy: 0-based document index), a human-readable location for messages, and either
// a parsed record or the record-level problem that makes it unusable (which the caller may
// skip). File-level problems (cannot open, malformed npy, offsets that do not cover the
// vectors) are returned by Open*; I/O failures while reading by Next.
//
// Thread-safety: a source is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/json_record.h"
#include "cli/record.h"

namespace chamferdb::cli {

struct SourceItem {
  uint64_t position = 0;
  std::string location;  // "file.jsonl:12" or "vectors.npy: document 5"
  absl::Status problem;  // non-OK: the record is unusable, `doc` may be partial
  DocRecord doc;         // multi-vector sources; JSON-record sources set only doc.id
  std::string json;      // JSON-record sources: the line as read (without a trailing CR)
};

class RecordSource {
 public:
  virtual ~RecordSource() = default;

  // Reads the next item into `item`; returns false at the end. Positions for which the
  // skip predicate (if set) returns true are passed over without being parsed.
  virtual absl::StatusOr<bool> Next(SourceItem* item) = 0;

  // Number of records (blank JSONL lines excluded); may scan the file once.
  virtual absl::StatusOr<uint64_t> CountRecords() = 0;

  // Absolute path of the main file: the source's key in checkpoints.
  virtual const std::string& key() const = 0;

  // Sizes and modification times of the input files; a checkpoint is only valid for the
  // same fingerprint.
  virtual std::string fingerprint() const = 0;

  void set_skip(std::function<bool(uint64_t)> skip) { skip_ = std::move(skip); }

 protected:
  bool Skipped(uint64_t position) const { return skip_ && skip_(position); }

 private:
  std::function<bool(uint64_t)> skip_;
};

absl::StatusOr<std::unique_ptr<RecordSource>> OpenJsonlSource(const std::string& path, const ParseOptions& options);

// A JSONL source with its own line parser: called for every non-blank line that is not
// skipped (without its trailing CR), with the 1-based line number, to fill `item`'s
// problem, doc and json (position and location are set already).
using JsonlLineParser = std::function<void(std::string&& line, uint64_t line_no, SourceItem* item)>;
absl::StatusOr<std::unique_ptr<RecordSource>> OpenJsonlLineSource(const std::string& path, JsonlLineParser parser);

// JSON records, one object per line (cli/json_record.h; defined in json_record.cc, so that
// the parsers above build without it): doc.id is the value of the record's `id_field`
// (when `id_field` is empty, the 1-based line number, for queries) and `json` the line.
struct JsonRecordSourceOptions {
  std::string id_field;
  JsonRecordLimits limits;
};
absl::StatusOr<std::unique_ptr<RecordSource>> OpenJsonRecordsSource(const std::string& path,
                                                                    const JsonRecordSourceOptions& options);

absl::StatusOr<std::unique_ptr<RecordSource>> OpenNpySource(const std::string& vectors_path,
                                                            const std::string& offsets_path,
                                                            const std::string& ids_path, const ParseOptions& options);

// "size=N mtime=NS" of one file, or an error if it cannot be stat'ed.
absl::StatusOr<std::string> FileFingerprint(const std::string& path);

}  // namespace chamferdb::cli
