// From parsed command-line flags to API requests, without touching the network, so that
// every flag's effect and every usage error can be unit-tested (requests_test.cc). Each
// builder returns INVALID_ARGUMENT naming the offending flag; the caller prints it as a
// usage error (exit code 2).
//
// Only flags the user gave are set: everything else stays zero/unset so that the server
// fills in its own defaults (and reports them back in CollectionInfo).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "chamferdb/v1/collections.pb.h"
#include "chamferdb/v1/documents.pb.h"
#include "chamferdb/v1/filter.pb.h"
#include "chamferdb/v1/json_records.pb.h"
#include "cli/args.h"

namespace chamferdb::cli {

// collections create NAME [--kind multi-vector|json] ...: positional()[2] is NAME.
// Multi-vector collections need --dim; JSON collections take --dim (MBAT dimension,
// default the server's), --id-field, the MBAT parameters as flags (--seed, --op-kind,
// --seq-from, --beta-bag, --gamma-keys, --str-mode, --w-tok, --w-tri, --num-transform,
// --num-scale, --num-sigma, --mbat-normalize, --max-record-bytes, --max-depth, --max-nodes,
// --max-array-length) on top of an optional --mbat-config JSON object. Flags of the other
// kind are refused.
absl::StatusOr<v1::CreateCollectionRequest> BuildCreateCollectionRequest(const ParsedArgs& args);

// search on a JSON collection: --k, --scoring cosine|containment, --candidates,
// --ef-search, --nprobe, --include-record around `query_json` (not validated here).
absl::StatusOr<v1::SearchJsonRequest> BuildSearchJsonRequest(const ParsedArgs& args, const std::string& collection,
                                                             const std::string& query_json);

// probe --collection NAME (--id ID | --json '{...}') --path PATH [--top N].
absl::StatusOr<v1::ProbeRequest> BuildProbeRequest(const ParsedArgs& args);

// --filter TEXT: a chamferdb.v1.Filter in protobuf's JSON mapping (field names in
// lowerCamelCase or as in the .proto), e.g.
//   {"must": [{"field": {"path": "lang", "equals": "en"}}]}
// or "@FILE" to read it from a file. INVALID_ARGUMENT naming --filter and the parser's
// reason; an empty filter object is refused (it would match everything by accident).
absl::StatusOr<v1::Filter> ParseFilter(const std::string& text);

// The --filter flag when given (has_filter false otherwise).
struct FilterFlag {
  bool given = false;
  v1::Filter filter;
};
absl::StatusOr<FilterFlag> FilterFromArgs(const ParsedArgs& args);

// scroll --collection NAME [--filter F] [--page-size N] [--page-token T]
//        [--include-vectors] [--include-metadata]: the first page's request for a
// multi-vector collection (ScrollRequest) or a JSON one (ScrollJsonRequest).
absl::StatusOr<v1::ScrollRequest> BuildScrollRequest(const ParsedArgs& args);
absl::StatusOr<v1::ScrollJsonRequest> BuildScrollJsonRequest(const ParsedArgs& args);
// The --max-docs N total cap of scroll (0: all).
absl::StatusOr<uint64_t> ScrollLimit(const ParsedArgs& args);

// count --collection NAME [--filter F].
absl::StatusOr<v1::CountRequest> BuildCountRequest(const ParsedArgs& args);

// snapshot create --collection NAME | list [--collection NAME] | delete SNAPSHOT |
// restore SNAPSHOT --collection NEW: positional()[1] is the verb.
absl::StatusOr<v1::CreateSnapshotRequest> BuildCreateSnapshotRequest(const ParsedArgs& args);
absl::StatusOr<v1::ListSnapshotsRequest> BuildListSnapshotsRequest(const ParsedArgs& args);
absl::StatusOr<v1::DeleteSnapshotRequest> BuildDeleteSnapshotRequest(const ParsedArgs& args);
absl::StatusOr<v1::RestoreSnapshotRequest> BuildRestoreSnapshotRequest(const ParsedArgs& args);

// alias set ALIAS --collection NAME | delete ALIAS | list [--collection NAME].
absl::StatusOr<v1::SetAliasRequest> BuildSetAliasRequest(const ParsedArgs& args);
absl::StatusOr<v1::DeleteAliasRequest> BuildDeleteAliasRequest(const ParsedArgs& args);
absl::StatusOr<v1::ListAliasesRequest> BuildListAliasesRequest(const ParsedArgs& args);

}  // namespace chamferdb::cli
