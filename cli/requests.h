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

}  // namespace chamferdb::cli
