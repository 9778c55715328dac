// The chamferdb-cli subcommands other than ingest. Each returns the process exit code:
// 0 success, 1 the server or the input said no (the reason is printed on stderr),
// 2 usage errors (handled by main).
#pragma once

#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/connection.h"

namespace chamferdb::cli {

struct CommandContext {
  const Connection* connection;
  RetryPolicy retry;
  bool pretty = false;  // indent JSON output
};

// Search, get and delete on collections of kind JSON (json_commands.cc); RunSearch, RunGet
// and RunDelete hand over to these after looking up the collection's kind.
int RunSearchJson(const CommandContext& ctx, const ParsedArgs& args, const std::string& mbat_config_json);
int RunGetJson(const CommandContext& ctx, const ParsedArgs& args);
int RunDeleteJson(const CommandContext& ctx, const ParsedArgs& args);

// collections create|list|get|drop: JSON (protobuf JSON mapping) on stdout.
int RunCollections(const CommandContext& ctx, const ParsedArgs& args);
// get --collection NAME [--include-vectors] ID...: one JSON line per found document
// ({"id", "vectors"?, "metadata"?} as ingest reads it); missing ids on stderr, exit 1.
int RunGet(const CommandContext& ctx, const ParsedArgs& args);
// delete --collection NAME ID...: {"deleted": N} on stdout.
int RunDelete(const CommandContext& ctx, const ParsedArgs& args);
// search --collection NAME --queries FILE ...: one {"query", "hits"} JSON line per query
// (JSON collections: --json '{...}' or --queries FILE of JSON objects).
int RunSearch(const CommandContext& ctx, const ParsedArgs& args);
// probe --collection NAME (--id ID | --json '{...}') --path PATH [--top N]: the most likely
// values at PATH of a JSON record, one {"value", "similarity"} JSON line each.
int RunProbe(const CommandContext& ctx, const ParsedArgs& args);
// scroll --collection NAME [--filter JSON] [--page-size N] [--max-docs N] [--page-token T]:
// every document (or record) in id order, one JSON line each (ops_commands.cc).
int RunScroll(const CommandContext& ctx, const ParsedArgs& args);
// count --collection NAME [--filter JSON]: {"count": N}.
int RunCount(const CommandContext& ctx, const ParsedArgs& args);
// snapshot create|list|delete|restore: SnapshotInfo / ListSnapshotsResponse / CollectionInfo
// in protobuf's JSON mapping, {"deleted": NAME} for delete.
int RunSnapshot(const CommandContext& ctx, const ParsedArgs& args);
// alias set|delete|list.
int RunAlias(const CommandContext& ctx, const ParsedArgs& args);
// kernel NAME --input request.json: any chamferdb.v1.Kernels RPC, JSON in and out.
int RunKernel(const CommandContext& ctx, const ParsedArgs& args);
// Names of the RPCs of chamferdb.v1.Kernels compiled into this binary.
std::vector<std::string> KernelMethodNames();

}  // namespace chamferdb::cli
