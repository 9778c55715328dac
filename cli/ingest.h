// `chamferdb-cli ingest`: bulk upsert of JSONL or npy inputs (multi-vector collections) or
// of JSONL JSON records (JSON collections) with client-side validation, concurrent unary
// batches, retries, skip/abort error policy, progress and resumable checkpoints.
//
// Delivery contract: a document counts as acknowledged only when the server answered OK
// for a batch containing it (a batch is all or nothing on the server). Retries re-send a
// whole batch; since upserts are keyed by id this never duplicates or loses a document.
// The checkpoint records acknowledged and rejected positions after every batch, so a run
// that is interrupted (Ctrl-C, --max-docs, a crash) continues with --resume without
// re-sending anything acknowledged (at most the batches in flight at a crash are re-sent).
//
// Error policy: --on-error skip reports each rejected record (file, line or document index,
// reason) on stderr and carries on; a batch the server rejects with INVALID_ARGUMENT naming
// documents[i] (JSON records: records[i], or "record i" with INVALID_ARGUMENT or
// RESOURCE_EXHAUSTED) is re-sent without that document. --on-error abort stops at the first bad
// record: records before it are sent (and acknowledged), nothing after it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chamferdb/v1/collections.pb.h"
#include "cli/connection.h"

namespace chamferdb::cli {

struct IngestOptions {
  std::string collection;
  std::string format;                  // jsonl | npy | json-records; empty: by the collection's kind
  std::vector<std::string> files;      // jsonl / json-records inputs
  std::string id_field;                // json-records: field holding the id; empty: the collection's
  std::string npy_vectors, npy_offsets, npy_ids;
  uint32_t batch_size = 256;
  uint32_t parallel = 2;               // concurrent unary Upsert calls
  uint64_t max_batch_bytes = 32 << 20; // a batch is cut before it exceeds this many bytes
  bool abort_on_error = false;         // --on-error abort
  bool resume = false;
  std::string checkpoint;              // empty: <FILE>.chamferdb-checkpoint per input
  bool write_checkpoint = true;        // --no-checkpoint turns it off
  uint64_t max_docs = 0;               // stop after sending this many (0: all)
  double progress_interval = 0;        // seconds; 0: 0.2 on a terminal, 5 otherwise
  bool quiet = false;                  // no progress output (the summary is still printed)
  RetryPolicy retry;
};

// Runs the ingest and returns the process exit code: 0 when every record was acknowledged
// (or --max-docs was reached) and nothing was rejected; 1 on rejections or errors; 130 when
// interrupted by SIGINT/SIGTERM.
int RunIngest(const Connection& connection, const IngestOptions& options);

// The index i of "documents[i]" in a server error message, or -1.
int64_t RejectedDocumentIndex(const std::string& message);
// The index i of "records[i]" or "record i:" (the MBAT encoder's batch errors) in a server
// error message, or -1.
int64_t RejectedRecordIndex(const std::string& message);

}  // namespace chamferdb::cli

namespace chamferdb::cli {

// Collections.Get with retries. NOT_FOUND when the collection does not exist; other failures
// UNAVAILABLE with the gRPC status text.
absl::StatusOr<v1::CollectionInfo> GetCollectionInfo(const Connection& connection, const std::string& name,
                                                     const RetryPolicy& retry);

// The token dimension of collection `name` (GetCollectionInfo), FAILED_PRECONDITION when it
// holds JSON records.
absl::StatusOr<uint32_t> CollectionDim(const Connection& connection, const std::string& name, const RetryPolicy& retry);

}  // namespace chamferdb::cli
