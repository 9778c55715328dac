// Subcommands on collections of kind JSON: search by example, probe (unbinding), get and
// delete. Output follows the other subcommands: one JSON object per line on stdout
// (--pretty indents it), or with --text an aligned human-readable listing.
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "chamferdb/v1/json_records.grpc.pb.h"
#include "cli/command_util.h"
#include "common/absl_fmt.h"
#include "cli/commands.h"
#include "cli/ingest.h"
#include "cli/json_record.h"
#include "cli/requests.h"
#include "cli/source.h"

namespace chamferdb::cli {
namespace {

using nlohmann::ordered_json;

// Limits for a query given with --json when the collection's own are not known: the
// encoder's maxima, so that only what no collection accepts is refused here.
JsonRecordLimits GenerousLimits() {
  JsonRecordLimits l;
  l.max_record_bytes = uint64_t{1} << 30;
  l.max_depth = 512;
  l.max_nodes = 10000000;
  l.max_array_length = 10000000;
  return l;
}

// One compact line for --text output; long records are cut.
std::string Abbreviated(const std::string& json_text, size_t max_chars = 160) {
  const ordered_json v = JsonValueOrString(json_text);
  std::string s = v.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  if (s.size() > max_chars) s = s.substr(0, max_chars - 3) + "...";
  return s;
}

}  // namespace

int RunSearchJson(const CommandContext& ctx, const ParsedArgs& args, const std::string& mbat_config_json) {
  const std::string usage =
      "chamferdb-cli search --collection NAME (--json '{...}' | --queries FILE.jsonl) [--k 10] "
      "[--scoring cosine|containment] [--candidates N] [--ef-search N] [--nprobe N] [--include-record] "
      "[--output FILE] [--text]";
  const std::string collection = args.Get("collection");
  // Validate the flags before reading any query.
  CLI_ASSIGN_OR_USAGE(probe_req, BuildSearchJsonRequest(args, collection, ""));
  JsonRecordLimits limits = GenerousLimits();
  if (!mbat_config_json.empty()) {
    absl::StatusOr<JsonRecordLimits> l = JsonLimitsFromMbatConfig(mbat_config_json);
    if (l.ok()) limits = *l;
  }

  // The queries: (label, text) pairs, read up front so that a bad line fails before any call.
  std::vector<std::pair<std::string, std::string>> queries;
  if (args.Has("json")) {
    const std::string q = args.Get("json");
    if (absl::Status s = CheckJsonObject(q, limits); !s.ok()) {
      return UsageError(absl::InvalidArgumentError(fmt::format("--json: {}", s.message())), usage);
    }
    queries.emplace_back("1", q);
  } else {
    if (!Need(args, "queries", usage)) return 2;
    JsonRecordSourceOptions options;
    options.limits = limits;  // no id field: queries are labelled by line number
    absl::StatusOr<std::unique_ptr<RecordSource>> source = OpenJsonRecordsSource(args.Get("queries"), options);
    if (!source.ok()) return Error(std::string(source.status().message()));
    SourceItem item;
    while (true) {
      absl::StatusOr<bool> more = (*source)->Next(&item);
      if (!more.ok()) return Error(std::string(more.status().message()));
      if (!*more) break;
      if (!item.problem.ok()) return Error(fmt::format("{}: {}", item.location, item.problem.message()));
      queries.emplace_back(item.doc.id, std::move(item.json));
    }
  }

  std::string sink_error;
  OutputSink sink(args, &sink_error);
  if (sink.get() == nullptr) return Error(sink_error);
  const bool text = args.Has("text");
  auto stub = v1::JsonRecords::NewStub(ctx.connection->channel());
  for (const auto& [label, query] : queries) {
    v1::SearchJsonRequest req = probe_req;
    req.set_query_json(query);
    v1::SearchJsonResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Search(c, req, &resp); });
    if (!s.ok()) {
      return RpcError(args.Has("json") ? "search" : fmt::format("search ({}:{})", args.Get("queries"), label), s);
    }
    if (text) {
      fmt::print(sink.get(), "query {}: {}\n", label, Abbreviated(query));
      int rank = 0;
      for (const v1::JsonHit& h : resp.hits()) {
        fmt::print(sink.get(), "  {:>3}. {:<24} {:>8.4f}{}\n", ++rank, h.id(), h.score(),
                   h.json().empty() ? "" : "  " + Abbreviated(h.json()));
      }
      if (rank == 0) fmt::print(sink.get(), "  (no hits)\n");
      continue;
    }
    ordered_json hits = ordered_json::array();
    for (const v1::JsonHit& h : resp.hits()) {
      ordered_json hit = {{"id", h.id()}, {"score", FloatForJson(h.score())}};
      if (!h.json().empty()) hit["record"] = JsonValueOrString(h.json());
      hits.push_back(std::move(hit));
    }
    fmt::print(sink.get(), "{}\n", JsonLine(ordered_json{{"query", label}, {"hits", std::move(hits)}}, ctx.pretty));
  }
  if (!sink.Finish()) return Error("cannot write the output");
  if (!args.Has("json")) fmt::print(stderr, "searched {} queries\n", queries.size());
  return 0;
}

int RunProbe(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage =
      "chamferdb-cli probe --collection NAME (--id ID | --json '{...}') --path PATH [--top N] [--text]";
  CLI_ASSIGN_OR_USAGE(req, BuildProbeRequest(args));
  if (req.source_case() == v1::ProbeRequest::kQueryJson) {
    if (absl::Status s = CheckJsonObject(req.query_json(), GenerousLimits()); !s.ok()) {
      return UsageError(absl::InvalidArgumentError(fmt::format("--json: {}", s.message())), usage);
    }
  }
  auto stub = v1::JsonRecords::NewStub(ctx.connection->channel());
  v1::ProbeResponse resp;
  grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Probe(c, req, &resp); });
  if (!s.ok()) {
    return RpcError(req.source_case() == v1::ProbeRequest::kId
                        ? fmt::format("probe {:?} of record {:?}", req.path(), req.id())
                        : fmt::format("probe {:?} of the --json record", req.path()),
                    s);
  }
  if (args.Has("text")) {
    fmt::print("{}{}\n", req.path(), req.source_case() == v1::ProbeRequest::kId ? " of " + req.id() : "");
    for (const v1::ProbeValue& v : resp.values()) fmt::print("  {:>8.4f}  {}\n", v.similarity(), v.value_json());
    if (resp.values().empty()) fmt::print("  (no values)\n");
    return 0;
  }
  for (const v1::ProbeValue& v : resp.values()) {
    fmt::print("{}\n", JsonLine(ordered_json{{"value", JsonValueOrString(v.value_json())},
                                             {"similarity", FloatForJson(v.similarity())}},
                                ctx.pretty));
  }
  return 0;
}

int RunGetJson(const CommandContext& ctx, const ParsedArgs& args) {
  v1::GetJsonRequest req;
  req.set_collection(args.Get("collection"));
  for (size_t i = 1; i < args.positional().size(); ++i) req.add_ids(args.positional()[i]);
  if (args.Has("include-vectors")) {
    return UsageError(absl::InvalidArgumentError("--include-vectors applies to multi-vector collections only"),
                      "chamferdb-cli get --collection NAME ID...");
  }
  auto stub = v1::JsonRecords::NewStub(ctx.connection->channel());
  v1::GetJsonResponse resp;
  grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Get(c, req, &resp); });
  if (!s.ok()) return RpcError("get records", s);
  for (const v1::JsonRecord& r : resp.records()) {
    fmt::print("{}\n", JsonLine(ordered_json{{"id", r.id()}, {"record", JsonValueOrString(r.json())}}, ctx.pretty));
  }
  for (const std::string& id : resp.missing_ids()) fmt::print(stderr, "not found: {}\n", id);
  return resp.missing_ids().empty() ? 0 : 1;
}

int RunDeleteJson(const CommandContext& ctx, const ParsedArgs& args) {
  v1::DeleteJsonRequest req;
  req.set_collection(args.Get("collection"));
  for (size_t i = 1; i < args.positional().size(); ++i) req.add_ids(args.positional()[i]);
  auto stub = v1::JsonRecords::NewStub(ctx.connection->channel());
  v1::DeleteJsonResponse resp;
  grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Delete(c, req, &resp); });
  if (!s.ok()) return RpcError("delete records", s);
  fmt::print("{}\n", JsonLine(ordered_json{{"deleted", resp.deleted()}}, false));
  return 0;
}

}  // namespace chamferdb::cli
