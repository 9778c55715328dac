// Collection operations (issue 10): scroll, count, snapshots and aliases. Scroll and count
// work on both collection kinds (the kind is looked up first; Collections.Get resolves an
// alias); output as elsewhere: JSON lines, or protobuf's JSON mapping for the
// management calls.
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "chamferdb/v1/collections.grpc.pb.h"
#include "chamferdb/v1/documents.grpc.pb.h"
#include "chamferdb/v1/json_records.grpc.pb.h"
#include "cli/command_util.h"
#include "cli/commands.h"
#include "cli/ingest.h"
#include "cli/requests.h"

namespace chamferdb::cli {
namespace {

using nlohmann::ordered_json;

// Creating or restoring a snapshot is not idempotent: only retry when the server surely
// did not act (the connection could not be made).
bool OnlyUnavailable(const grpc::Status& s) { return s.error_code() == grpc::UNAVAILABLE; }

// Pages through a collection with `fetch(request, &printed, &next_token) -> status`, which
// prints one page. Stops at the end or after `max_docs` (0: no cap); each page asks for
// no more than what is still wanted, so a printed next token resumes exactly.
template <typename Request, typename Fetch>
int ScrollPages(Request req, uint64_t max_docs, Fetch&& fetch) {
  const uint32_t page_size = req.limit();
  uint64_t printed = 0;
  std::string next;
  while (true) {
    if (max_docs > 0) req.set_limit(static_cast<uint32_t>(std::min<uint64_t>(page_size, max_docs - printed)));
    uint64_t page = 0;
    absl::Status s = fetch(req, &page, &next);
    if (!s.ok()) return Error(std::string(s.message()));
    printed += page;
    if (next.empty()) break;
    if (max_docs > 0 && printed >= max_docs) {
      fmt::print(stderr, "stopped after --max-docs {}; continue with --page-token {}\n", max_docs, next);
      break;
    }
    req.set_page_token(next);
  }
  if (std::fflush(stdout) != 0) return Error("cannot write the output");
  fmt::print(stderr, "scrolled {} documents\n", printed);
  return 0;
}

}  // namespace

int RunScroll(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage =
      "chamferdb-cli scroll --collection NAME [--filter JSON] [--page-size 100] [--max-docs N] [--page-token T] "
      "[--include-vectors] [--include-metadata]";
  // Validate the flags against both request kinds' common part before any call.
  CLI_ASSIGN_OR_USAGE(max_docs, ScrollLimit(args));
  if (!args.Has("collection")) return UsageError(absl::InvalidArgumentError("--collection is required"), usage);
  absl::StatusOr<v1::CollectionInfo> info = GetCollectionInfo(*ctx.connection, args.Get("collection"), ctx.retry);
  if (!info.ok()) return Error(std::string(info.status().message()));
  if (info->config().kind() == v1::JSON) {
    absl::StatusOr<v1::ScrollJsonRequest> req = BuildScrollJsonRequest(args);
    if (!req.ok()) return UsageError(req.status(), usage);
    auto stub = v1::JsonRecords::NewStub(ctx.connection->channel());
    return ScrollPages(*req, max_docs, [&](const v1::ScrollJsonRequest& r, uint64_t* n, std::string* next) {
      v1::ScrollJsonResponse resp;
      grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Scroll(c, r, &resp); });
      if (!s.ok()) return absl::UnavailableError(fmt::format("scroll {:?}: {}", r.collection(), StatusText(s)));
      for (const v1::JsonRecord& rec : resp.records()) {
        fmt::print("{}\n", JsonLine(ordered_json{{"id", rec.id()}, {"record", JsonValueOrString(rec.json())}}, ctx.pretty));
      }
      *n = resp.records_size();
      *next = resp.next_page_token();
      return absl::OkStatus();
    });
  }
  absl::StatusOr<v1::ScrollRequest> req = BuildScrollRequest(args);
  if (!req.ok()) return UsageError(req.status(), usage);
  auto stub = v1::Documents::NewStub(ctx.connection->channel());
  return ScrollPages(*req, max_docs, [&](const v1::ScrollRequest& r, uint64_t* n, std::string* next) {
    v1::ScrollResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Scroll(c, r, &resp); });
    if (!s.ok()) return absl::UnavailableError(fmt::format("scroll {:?}: {}", r.collection(), StatusText(s)));
    for (const v1::Document& d : resp.documents()) fmt::print("{}\n", JsonLine(DocumentJson(d), ctx.pretty));
    *n = resp.documents_size();
    *next = resp.next_page_token();
    return absl::OkStatus();
  });
}

int RunCount(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage = "chamferdb-cli count --collection NAME [--filter JSON]";
  absl::StatusOr<v1::CountRequest> req = BuildCountRequest(args);
  if (!req.ok()) return UsageError(req.status(), usage);
  absl::StatusOr<v1::CollectionInfo> info = GetCollectionInfo(*ctx.connection, req->collection(), ctx.retry);
  if (!info.ok()) return Error(std::string(info.status().message()));
  v1::CountResponse resp;
  grpc::Status s;
  if (info->config().kind() == v1::JSON) {
    auto stub = v1::JsonRecords::NewStub(ctx.connection->channel());
    s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Count(c, *req, &resp); });
  } else {
    auto stub = v1::Documents::NewStub(ctx.connection->channel());
    s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Count(c, *req, &resp); });
  }
  if (!s.ok()) return RpcError(fmt::format("count {:?}", req->collection()), s);
  fmt::print("{}\n", JsonLine(ordered_json{{"count", resp.count()}}, false));
  return 0;
}

int RunSnapshot(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage =
      "chamferdb-cli snapshot create --collection NAME | list [--collection NAME] | delete SNAPSHOT | "
      "restore SNAPSHOT --collection NEW";
  if (!NeedPositional(args, 2, usage)) return 2;
  const std::string& verb = args.positional()[1];
  auto stub = v1::Collections::NewStub(ctx.connection->channel());
  if (verb == "create") {
    CLI_ASSIGN_OR_USAGE(req, BuildCreateSnapshotRequest(args));
    v1::CreateSnapshotResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->CreateSnapshot(c, req, &resp); },
                           OnlyUnavailable);
    if (!s.ok()) return RpcError(fmt::format("snapshot of {:?}", req.collection()), s);
    fmt::print("{}\n", ToJson(resp.snapshot(), ctx.pretty));
    return 0;
  }
  if (verb == "list") {
    CLI_ASSIGN_OR_USAGE(req, BuildListSnapshotsRequest(args));
    v1::ListSnapshotsResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->ListSnapshots(c, req, &resp); });
    if (!s.ok()) return RpcError("list snapshots", s);
    fmt::print("{}\n", ToJson(resp, ctx.pretty));
    return 0;
  }
  if (verb == "delete") {
    CLI_ASSIGN_OR_USAGE(req, BuildDeleteSnapshotRequest(args));
    v1::DeleteSnapshotResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->DeleteSnapshot(c, req, &resp); });
    if (!s.ok()) return RpcError(fmt::format("delete snapshot {:?}", req.name()), s);
    fmt::print("{}\n", JsonLine(ordered_json{{"deleted", req.name()}}, false));
    return 0;
  }
  if (verb == "restore") {
    CLI_ASSIGN_OR_USAGE(req, BuildRestoreSnapshotRequest(args));
    v1::RestoreSnapshotResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->RestoreSnapshot(c, req, &resp); },
                           OnlyUnavailable);
    if (!s.ok()) return RpcError(fmt::format("restore snapshot {:?} into {:?}", req.snapshot(), req.collection()), s);
    fmt::print("{}\n", ToJson(resp.collection(), ctx.pretty));
    return 0;
  }
  fmt::print(stderr, "error: unknown snapshot subcommand {:?}\nusage: {}\n", verb, usage);
  return 2;
}

int RunAlias(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage =
      "chamferdb-cli alias set ALIAS --collection NAME | delete ALIAS | list [--collection NAME]";
  if (!NeedPositional(args, 2, usage)) return 2;
  const std::string& verb = args.positional()[1];
  auto stub = v1::Collections::NewStub(ctx.connection->channel());
  if (verb == "set") {
    CLI_ASSIGN_OR_USAGE(req, BuildSetAliasRequest(args));
    v1::SetAliasResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->SetAlias(c, req, &resp); });
    if (!s.ok()) return RpcError(fmt::format("set alias {:?} -> {:?}", req.alias(), req.collection()), s);
    fmt::print("{}\n", JsonLine(ordered_json{{"alias", req.alias()},
                                             {"collection", req.collection()},
                                             {"previous_collection", resp.previous_collection()}},
                                ctx.pretty));
    return 0;
  }
  if (verb == "delete") {
    CLI_ASSIGN_OR_USAGE(req, BuildDeleteAliasRequest(args));
    v1::DeleteAliasResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->DeleteAlias(c, req, &resp); });
    if (!s.ok()) return RpcError(fmt::format("delete alias {:?}", req.alias()), s);
    fmt::print("{}\n", JsonLine(ordered_json{{"deleted", req.alias()}}, false));
    return 0;
  }
  if (verb == "list") {
    CLI_ASSIGN_OR_USAGE(req, BuildListAliasesRequest(args));
    v1::ListAliasesResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->ListAliases(c, req, &resp); });
    if (!s.ok()) return RpcError("list aliases", s);
    fmt::print("{}\n", ToJson(resp, ctx.pretty));
    return 0;
  }
  fmt::print(stderr, "error: unknown alias subcommand {:?}\nusage: {}\n", verb, usage);
  return 2;
}

}  // namespace chamferdb::cli
