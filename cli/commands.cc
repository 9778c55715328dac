#include "cli/commands.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <nlohmann/json.hpp>

#include "chamferdb/v1/collections.grpc.pb.h"
#include "chamferdb/v1/documents.grpc.pb.h"
#include "chamferdb/v1/kernels.grpc.pb.h"
#include "chamferdb/v1/search.grpc.pb.h"
#include "cli/command_util.h"
#include "cli/ingest.h"
#include "cli/requests.h"
#include "cli/source.h"

namespace chamferdb::cli {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr const char* kKernelsService = "chamferdb.v1.Kernels";

// Nothing in the CLI names a kernel message, so a static link would drop kernels.pb.o and the
// family files it depends on, and the generated pool would not know the service. Holding the
// descriptor table's address in a used volatile keeps them all.
[[gnu::used]] const void* volatile g_keep_kernels_descriptors = &::descriptor_table_chamferdb_2fv1_2fkernels_2eproto;

int CollectionsCreate(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage =
      "chamferdb-cli collections create NAME --dim D [--r-reps R --k-sim K --d-proj P --d-final F --seed S] "
      "[--index flat|hnsw|ivf_pq] [--token-storage f32|f16|int8] [--no-normalize]\n"
      "       chamferdb-cli collections create NAME --kind json [--dim D] [--id-field F] [--seed S] "
      "[--op-kind srht|dense_haar|signed_perm] [--str-mode exact|tokens|trigram] ... [--index flat|hnsw|ivf_pq]";
  absl::StatusOr<v1::CreateCollectionRequest> req_or = BuildCreateCollectionRequest(args);
  if (!req_or.ok()) return UsageError(req_or.status(), usage);
  const v1::CreateCollectionRequest& req = *req_or;
  const v1::CollectionConfig* cfg = &req.config();
  auto stub = v1::Collections::NewStub(ctx.connection->channel());
  v1::CreateCollectionResponse resp;
  grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Create(c, req, &resp); });
  if (!s.ok()) return RpcError(fmt::format("create collection {:?}", cfg->name()), s);
  fmt::print("{}\n", ToJson(resp.collection(), ctx.pretty));
  return 0;
}

}  // namespace

int RunCollections(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage = "chamferdb-cli collections create|list|get|drop [NAME] ...";
  if (!NeedPositional(args, 2, usage)) return 2;
  const std::string& verb = args.positional()[1];
  auto stub = v1::Collections::NewStub(ctx.connection->channel());
  if (verb == "create") return CollectionsCreate(ctx, args);
  if (verb == "list") {
    v1::ListCollectionsResponse resp;
    grpc::Status s =
        Retry(ctx, [&](grpc::ClientContext* c) { return stub->List(c, v1::ListCollectionsRequest(), &resp); });
    if (!s.ok()) return RpcError("list collections", s);
    fmt::print("{}\n", ToJson(resp, ctx.pretty));
    return 0;
  }
  if (verb == "get" || verb == "drop") {
    if (!NeedPositional(args, 3, fmt::format("chamferdb-cli collections {} NAME", verb))) return 2;
    const std::string& name = args.positional()[2];
    if (verb == "get") {
      v1::GetCollectionRequest req;
      req.set_name(name);
      v1::GetCollectionResponse resp;
      grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Get(c, req, &resp); });
      if (!s.ok()) return RpcError(fmt::format("get collection {:?}", name), s);
      fmt::print("{}\n", ToJson(resp.collection(), ctx.pretty));
      return 0;
    }
    v1::DropCollectionRequest req;
    req.set_name(name);
    v1::DropCollectionResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Drop(c, req, &resp); });
    if (!s.ok()) return RpcError(fmt::format("drop collection {:?}", name), s);
    fmt::print("{}\n", json({{"dropped", name}}).dump(ctx.pretty ? 2 : -1));
    return 0;
  }
  fmt::print(stderr, "error: unknown collections subcommand {:?}\nusage: {}\n", verb, usage);
  return 2;
}

int RunGet(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage = "chamferdb-cli get --collection NAME [--include-vectors] ID...";
  if (!Need(args, "collection", usage) || !NeedPositional(args, 2, usage)) return 2;
  absl::StatusOr<v1::CollectionInfo> info = GetCollectionInfo(*ctx.connection, args.Get("collection"), ctx.retry);
  if (!info.ok()) return Error(std::string(info.status().message()));
  if (info->config().kind() == v1::JSON) return RunGetJson(ctx, args);
  v1::GetDocumentsRequest req;
  req.set_collection(args.Get("collection"));
  for (size_t i = 1; i < args.positional().size(); ++i) req.add_ids(args.positional()[i]);
  req.set_include_vectors(args.Has("include-vectors"));
  auto stub = v1::Documents::NewStub(ctx.connection->channel());
  v1::GetDocumentsResponse resp;
  grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Get(c, req, &resp); });
  if (!s.ok()) return RpcError("get documents", s);
  for (const v1::Document& d : resp.documents()) fmt::print("{}\n", JsonLine(DocumentJson(d), ctx.pretty));
  for (const std::string& id : resp.missing_ids()) fmt::print(stderr, "not found: {}\n", id);
  return resp.missing_ids().empty() ? 0 : 1;
}

int RunDelete(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage = "chamferdb-cli delete --collection NAME ID...";
  if (!Need(args, "collection", usage) || !NeedPositional(args, 2, usage)) return 2;
  absl::StatusOr<v1::CollectionInfo> info = GetCollectionInfo(*ctx.connection, args.Get("collection"), ctx.retry);
  if (!info.ok()) return Error(std::string(info.status().message()));
  if (info->config().kind() == v1::JSON) return RunDeleteJson(ctx, args);
  v1::DeleteRequest req;
  req.set_collection(args.Get("collection"));
  for (size_t i = 1; i < args.positional().size(); ++i) req.add_ids(args.positional()[i]);
  auto stub = v1::Documents::NewStub(ctx.connection->channel());
  v1::DeleteResponse resp;
  grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->Delete(c, req, &resp); });
  if (!s.ok()) return RpcError("delete documents", s);
  fmt::print("{}\n", json({{"deleted", resp.deleted()}}).dump());
  return 0;
}

int RunSearch(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage =
      "chamferdb-cli search --collection NAME --queries FILE [--format jsonl|npy] [--k 10] [--candidates N] "
      "[--no-rerank] [--ef-search N] [--nprobe N] [--refine-candidates N] [--rescore-candidates N] [--include-metadata] [--filter JSON] [--output FILE] [--text]  "
      "(npy: --vectors Q.npy --offsets O.npy --ids IDS.txt instead of --queries)";
  if (!Need(args, "collection", usage)) return 2;
  CLI_ASSIGN_OR_USAGE(format, args.GetChoice("format", "jsonl", {"jsonl", "npy"}));
  CLI_ASSIGN_OR_USAGE(k, args.GetUint("k", 10, 1, 1000));
  CLI_ASSIGN_OR_USAGE(candidates, args.GetUint("candidates", 0, 0, 1 << 20));  // the server enforces its limit
  CLI_ASSIGN_OR_USAGE(ef_search, args.GetUint("ef-search", 0, 0, 1 << 20));
  CLI_ASSIGN_OR_USAGE(nprobe, args.GetUint("nprobe", 0, 0, 1 << 20));
  CLI_ASSIGN_OR_USAGE(refine_candidates, args.GetUint("refine-candidates", 0, 0, 1 << 20));
  CLI_ASSIGN_OR_USAGE(rescore_candidates, args.GetUint("rescore-candidates", 0, 0, 1 << 20));
  CLI_ASSIGN_OR_USAGE(batch_size, args.GetUint("batch-size", 32, 1, 1024));
  CLI_ASSIGN_OR_USAGE(filter, FilterFromArgs(args));
  // A query by example names a JSON collection; the server says so if it is not one.
  if (args.Has("json")) {
    if (args.Has("queries")) return UsageError(absl::InvalidArgumentError("give --json or --queries, not both"), usage);
    return RunSearchJson(ctx, args, "");
  }
  if (format == "jsonl" && !Need(args, "queries", usage)) return 2;
  if (format == "npy" && (!Need(args, "vectors", usage) || !Need(args, "offsets", usage) || !Need(args, "ids", usage))) {
    return 2;
  }
  const std::string collection = args.Get("collection");
  absl::StatusOr<v1::CollectionInfo> info = GetCollectionInfo(*ctx.connection, collection, ctx.retry);
  if (!info.ok()) return Error(std::string(info.status().message()));
  if (info->config().kind() == v1::JSON) return RunSearchJson(ctx, args, info->config().json().mbat_config_json());
  for (const char* f : {"scoring", "include-record"}) {
    if (args.Has(f)) {
      return UsageError(absl::InvalidArgumentError(fmt::format("--{} applies to JSON collections only", f)), usage);
    }
  }
  ParseOptions parse;
  parse.expected_dim = info->config().dim();
  parse.require_id = false;
  absl::StatusOr<std::unique_ptr<RecordSource>> source =
      format == "npy" ? OpenNpySource(args.Get("vectors"), args.Get("offsets"), args.Get("ids"), parse)
                      : OpenJsonlSource(args.Get("queries"), parse);
  if (!source.ok()) return Error(std::string(source.status().message()));

  std::string sink_error;
  OutputSink sink(args, &sink_error);
  if (sink.get() == nullptr) return Error(sink_error);
  std::FILE* out = sink.get();
  const bool text = args.Has("text");
  auto stub = v1::Search::NewStub(ctx.connection->channel());
  const bool include_metadata = args.Has("include-metadata");
  uint64_t answered = 0;
  bool end = false;
  while (!end) {
    v1::BatchSearchRequest batch;
    std::vector<std::string> ids;
    SourceItem item;
    while (batch.requests_size() < static_cast<int>(batch_size)) {
      absl::StatusOr<bool> more = (*source)->Next(&item);
      if (!more.ok()) return Error(std::string(more.status().message()));
      if (!*more) {
        end = true;
        break;
      }
      if (!item.problem.ok()) return Error(fmt::format("{}: {}", item.location, std::string(item.problem.message())));
      v1::SearchRequest* r = batch.add_requests();
      r->set_collection(collection);
      r->set_k(static_cast<uint32_t>(k));
      r->set_candidates(static_cast<uint32_t>(candidates));
      if (args.Has("no-rerank")) r->set_rerank(false);
      r->set_ef_search(static_cast<uint32_t>(ef_search));
      r->set_nprobe(static_cast<uint32_t>(nprobe));
      r->set_refine_candidates(static_cast<uint32_t>(refine_candidates));
      r->set_rescore_candidates(static_cast<uint32_t>(rescore_candidates));
      r->set_include_metadata(include_metadata);
      if (filter.given) *r->mutable_filter() = filter.filter;
      r->mutable_query()->set_num_tokens(item.doc.num_tokens);
      r->mutable_query()->set_vectors(reinterpret_cast<const char*>(item.doc.vectors.data()),
                                      item.doc.vectors.size() * sizeof(float));
      ids.push_back(item.doc.id);
    }
    if (batch.requests_size() == 0) break;
    v1::BatchSearchResponse resp;
    grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) { return stub->BatchSearch(c, batch, &resp); });
    if (!s.ok()) return RpcError(fmt::format("search (queries {} .. {})", ids.front(), ids.back()), s);
    if (resp.responses_size() != batch.requests_size()) {
      return Error(fmt::format("server answered {} of {} queries", resp.responses_size(), batch.requests_size()));
    }
    for (int i = 0; i < resp.responses_size(); ++i) {
      if (text) {
        fmt::print(out, "query {}\n", ids[i]);
        int rank = 0;
        for (const v1::Hit& h : resp.responses(i).hits()) {
          fmt::print(out, "  {:>3}. {:<24} {:>10.4f}{}\n", ++rank, h.id(), h.score(),
                     include_metadata && !h.metadata_json().empty() ? "  " + h.metadata_json() : "");
        }
        if (rank == 0) fmt::print(out, "  (no hits)\n");
        continue;
      }
      ordered_json hits = ordered_json::array();
      for (const v1::Hit& h : resp.responses(i).hits()) {
        ordered_json hit = {{"id", h.id()}, {"score", FloatForJson(h.score())}};
        if (include_metadata && !h.metadata_json().empty()) {
          ordered_json meta = ordered_json::parse(h.metadata_json(), nullptr, false);
          hit["metadata"] = meta.is_discarded() ? ordered_json(h.metadata_json()) : meta;
        }
        hits.push_back(std::move(hit));
      }
      ordered_json line = {{"query", ids[i]}, {"hits", std::move(hits)}};
      if (filter.given) {
        // How many documents matched, and whether all of them were scored exactly.
        line["filter_matches"] = resp.responses(i).stats().filter_matches();
        line["filter_exhaustive"] = resp.responses(i).stats().filter_exhaustive();
      }
      fmt::print(out, "{}\n", line.dump(-1, ' ', false, ordered_json::error_handler_t::replace));
    }
    answered += resp.responses_size();
  }
  if (!sink.Finish()) return Error("cannot write the output");
  fmt::print(stderr, "searched {} queries\n", answered);
  return 0;
}

std::vector<std::string> KernelMethodNames() {
  std::vector<std::string> names;
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(kKernelsService);
  if (service == nullptr) return names;
  for (int i = 0; i < service->method_count(); ++i) names.push_back(service->method(i)->name());
  return names;
}

int RunKernel(const CommandContext& ctx, const ParsedArgs& args) {
  const std::string usage = "chamferdb-cli kernel NAME --input request.json|-   (NAME: see `chamferdb-cli kernel --list`)";
  if (args.Has("list")) {
    for (const auto& n : KernelMethodNames()) fmt::print("{}\n", n);
    return 0;
  }
  if (!NeedPositional(args, 2, usage) || !Need(args, "input", usage)) return 2;
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(kKernelsService);
  if (service == nullptr) return Error(fmt::format("service {} is not compiled into this binary", kKernelsService));
  const std::string& name = args.positional()[1];
  const google::protobuf::MethodDescriptor* method = service->FindMethodByName(name);
  if (method == nullptr) {
    std::string all;
    for (const auto& n : KernelMethodNames()) all += " " + n;
    fmt::print(stderr, "error: {} has no method {:?}; available:{}\n", kKernelsService, name, all);
    return 2;
  }
  if (method->client_streaming() || method->server_streaming()) {
    return Error(fmt::format("{} is a streaming RPC; only unary kernels are supported", name));
  }
  std::string text;
  const std::string input = args.Get("input");
  if (input == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(input, std::ios::binary);
    if (!in) return Error(fmt::format("--input {}: cannot open: {}", input, std::strerror(errno)));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<google::protobuf::Message> request(factory->GetPrototype(method->input_type())->New());
  std::unique_ptr<google::protobuf::Message> response(factory->GetPrototype(method->output_type())->New());
  const auto parsed = google::protobuf::util::JsonStringToMessage(text, request.get());
  if (!parsed.ok()) {
    return Error(fmt::format("--input {}: not a valid {} in JSON: {}", input, method->input_type()->full_name(),
                             std::string(parsed.message())));
  }
  std::string request_bytes;
  if (!request->SerializeToString(&request_bytes)) return Error("cannot serialize the request");
  const std::string path = fmt::format("/{}/{}", kKernelsService, method->name());
  grpc::GenericStub stub(ctx.connection->channel());
  grpc::ByteBuffer response_buffer;
  grpc::Status s = Retry(ctx, [&](grpc::ClientContext* c) {
    grpc::Slice slice(request_bytes);
    grpc::ByteBuffer request_buffer(&slice, 1);
    std::promise<grpc::Status> done;
    stub.UnaryCall(c, path, grpc::StubOptions(), &request_buffer, &response_buffer,
                   [&done](grpc::Status st) { done.set_value(std::move(st)); });
    return done.get_future().get();
  });
  if (!s.ok()) return RpcError(fmt::format("kernel {}", name), s);
  std::vector<grpc::Slice> slices;
  if (!response_buffer.Dump(&slices).ok()) return Error("cannot read the response");
  std::string response_bytes;
  for (const auto& sl : slices) response_bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  if (!response->ParseFromString(response_bytes)) {
    return Error(fmt::format("the response is not a valid {}", method->output_type()->full_name()));
  }
  fmt::print("{}\n", ToJson(*response, ctx.pretty));
  return 0;
}

}  // namespace chamferdb::cli
