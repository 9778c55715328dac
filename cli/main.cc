// chamferdb-cli: command-line client for a chamferdb server. Run with --help for usage;
// docs/cli.md has the full reference.
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/ingest.h"

namespace chamferdb::cli {
namespace {

const std::vector<FlagSpec> kGlobalFlags = {
    {"server", true, "HOST:PORT  server address (default 127.0.0.1:50051, env CHAMFERDB_SERVER)"},
    {"api-key", true, "KEY  sent as `authorization: Bearer KEY` (env CHAMFERDB_API_KEY)"},
    {"tls-ca", true, "FILE  PEM CA certificate: connect with TLS, trusting this CA"},
    {"tls-cert", true, "FILE  PEM client certificate for mutual TLS (with --tls-key)"},
    {"tls-key", true, "FILE  PEM private key of --tls-cert"},
    {"tls-server-name", true, "NAME  name to verify in the server certificate (default: host of --server)"},
    {"timeout", true, "SECONDS  deadline of each call (default 60)"},
    {"retries", true, "N  attempts per call on UNAVAILABLE/RESOURCE_EXHAUSTED/DEADLINE_EXCEEDED (default 10)"},
    {"retry-initial-ms", true, "MS  first retry delay, doubling up to 3000 ms (default 100)"},
    {"pretty", false, "indent JSON output"},
    {"help", false, "show usage"},
};

const std::map<std::string, std::vector<FlagSpec>> kCommandFlags = {
    {"collections",
     {{"kind", true, "multi-vector|json  what the collection holds (default multi-vector)"},
      {"dim", true, "D  token dimension (multi-vector, required); MBAT dimension (json, default 1024)"},
      {"r-reps", true, "R  FDE repetitions (default 20)"},
      {"k-sim", true, "K  SimHash bits per repetition (default 5)"},
      {"d-proj", true, "P  inner projection width (default 16)"},
      {"d-final", true, "F  final count-sketch dimension (default none)"},
      {"seed", true, "S  FDE seed, or MBAT seed with --kind json (default 1)"},
      {"index", true, "flat|hnsw|ivf_pq  (default flat)"},
      {"token-storage", true, "f32|f16|int8  (default f32)"},
      {"rescore-storage", true, "none|f16|f32  also keep tokens at this precision on disk for the final rescore (default none)"},
      {"no-normalize", false, "do not L2-normalize tokens"},
      {"hnsw-m", true, "M  HNSW graph degree"},
      {"ef-construction", true, "N  HNSW build beam"},
      {"ef-search", true, "N  HNSW default search beam"},
      {"hnsw-storage", true, "int8|f32  HNSW graph vectors (default int8)"},
      {"nlist", true, "N  IVF lists"},
      {"pq-m", true, "M  PQ sub-quantizers"},
      {"nprobe", true, "N  IVF lists probed by default"},
      {"refine-storage", true, "none|f32|int8  ivf_pq: exact FDE copy for the refine stage (default none)"},
      {"id-field", true, "F  json: record field holding the id (default id)"},
      {"mbat-config", true, "JSON  json: MBAT config object; the flags below override its fields"},
      {"op-kind", true, "srht|dense_haar|signed_perm  json: key operators (default srht)"},
      {"seq-from", true, "start|end  json: array positions counted from (default start)"},
      {"beta-bag", true, "X  json: weight of unbound values (default 0)"},
      {"gamma-keys", true, "X  json: weight of key-presence atoms (default 0)"},
      {"str-mode", true, "exact|tokens|trigram  json: string encoding (default exact)"},
      {"w-tok", true, "X  json: token-bag weight, str-mode tokens (default 0.5)"},
      {"w-tri", true, "X  json: trigram-bag weight, str-mode trigram (default 0.5)"},
      {"num-transform", true, "signed_log1p|linear  json: number transform (default signed_log1p)"},
      {"num-scale", true, "X  json: linear transform scale (default 1)"},
      {"num-sigma", true, "X  json: numeric kernel width (default 0.25)"},
      {"mbat-normalize", true, "final|per_node  json: normalization (default final)"},
      {"max-record-bytes", true, "N  json: record size limit (default 1 MiB)"},
      {"max-depth", true, "N  json: nesting limit (default 64)"},
      {"max-nodes", true, "N  json: JSON values per record (default 100000)"},
      {"max-array-length", true, "N  json: elements per array (default 10000)"}}},
    {"ingest",
     {{"collection", true, "NAME  target collection (required)"},
      {"format", true, "jsonl|npy|json-records  (default: json-records for JSON collections, else jsonl)"},
      {"id-field", true, "F  json-records: field holding each record's id (default: the collection's)"},
      {"vectors", true, "X.npy  float32 n_tokens x dim (npy)"},
      {"offsets", true, "O.npy  int64 n_docs + 1 (npy)"},
      {"ids", true, "IDS.txt  one id a line (npy)"},
      {"batch-size", true, "N  documents per Upsert, 1..10000 (default 256)"},
      {"parallel", true, "N  concurrent Upsert calls (default 2)"},
      {"max-batch-mb", true, "MB  cut batches before they exceed this size (default 32)"},
      {"on-error", true, "skip|abort  (default skip)"},
      {"resume", false, "continue from the checkpoint"},
      {"checkpoint", true, "PATH  checkpoint file (default <FILE>.chamferdb-checkpoint)"},
      {"no-checkpoint", false, "do not write a checkpoint"},
      {"max-docs", true, "N  stop after sending N documents"},
      {"progress-interval", true, "SECONDS  between progress updates"},
      {"quiet", false, "no progress output"}}},
    {"search",
     {{"collection", true, "NAME  collection (required)"},
      {"queries", true, "FILE  JSONL queries {\"id\", \"vectors\"} (JSON collections: one JSON object a line)"},
      {"json", true, "'{...}'  JSON collections: one query by example"},
      {"scoring", true, "cosine|containment  JSON collections (default cosine)"},
      {"include-record", false, "JSON collections: add each hit's stored record"},
      {"filter", true, "JSON  metadata filter (chamferdb.v1.Filter in protobuf JSON, or @FILE)"},
      {"text", false, "human-readable listing instead of JSON lines"},
      {"format", true, "jsonl|npy  (default jsonl)"},
      {"vectors", true, "Q.npy  (npy)"},
      {"offsets", true, "O.npy  (npy)"},
      {"ids", true, "IDS.txt  (npy)"},
      {"k", true, "K  hits per query (default 10)"},
      {"candidates", true, "N  FDE candidates reranked (default max(100, 10k))"},
      {"no-rerank", false, "return FDE order and scores"},
      {"ef-search", true, "N  HNSW beam for these queries"},
      {"nprobe", true, "N  IVF lists probed for these queries"},
      {"refine-candidates", true, "N  ivf_pq with refine storage: PQ neighbours re-scored exactly (0: 4 x candidates)"},
      {"rescore-candidates", true, "N  collections with rescore storage: best hits re-scored from disk (0: max(4k, 32))"},
      {"include-metadata", false, "add each hit's metadata"},
      {"batch-size", true, "N  queries per BatchSearch call (default 32)"},
      {"output", true, "FILE  write results here instead of stdout"}}},
    {"get", {{"collection", true, "NAME  collection (required)"}, {"include-vectors", false, "print token vectors"}}},
    {"probe",
     {{"collection", true, "NAME  JSON collection (required)"},
      {"id", true, "ID  probe this stored record"},
      {"json", true, "'{...}'  or this record given inline"},
      {"path", true, "PATH  e.g. addr.geo.cc, tags[2], items[0].sku (required)"},
      {"top", true, "N  values to return, 1..1000 (default 5)"},
      {"text", false, "human-readable listing instead of JSON lines"}}},
    {"delete", {{"collection", true, "NAME  collection (required)"}}},
    {"scroll",
     {{"collection", true, "NAME  collection or alias (required)"},
      {"filter", true, "JSON  metadata filter (chamferdb.v1.Filter in protobuf JSON, or @FILE)"},
      {"page-size", true, "N  documents per call, 1..1000 (default 100)"},
      {"max-docs", true, "N  stop after N documents (prints the token to continue)"},
      {"page-token", true, "T  continue from a previous run's token"},
      {"include-vectors", false, "multi-vector: print token vectors"},
      {"include-metadata", false, "multi-vector: print metadata"}}},
    {"count",
     {{"collection", true, "NAME  collection or alias (required)"},
      {"filter", true, "JSON  metadata filter (chamferdb.v1.Filter in protobuf JSON, or @FILE)"}}},
    {"snapshot", {{"collection", true, "NAME  collection (create, list) or the new collection (restore)"}}},
    {"alias", {{"collection", true, "NAME  the collection the alias points at (set), or filter (list)"}}},
    {"kernel",
     {{"input", true, "FILE  request in protobuf JSON mapping ('-': stdin)"},
      {"list", false, "list the kernel RPCs"}}},
};

constexpr const char* kUsage = R"(usage: chamferdb-cli [global flags] COMMAND [flags] [args]

commands:
  collections create NAME --dim D [--r-reps R --k-sim K --d-proj P --d-final F --seed S]
                        [--index flat|hnsw|ivf_pq] [--token-storage f32|f16|int8]
  collections create NAME --kind json [--dim D] [--id-field F] [--seed S] [--op-kind K] ...
  collections list | get NAME | drop NAME
  ingest --collection NAME [--format jsonl|npy|json-records] [--id-field F] FILE...
         (npy: --vectors --offsets --ids)
         [--batch-size 256] [--parallel N] [--on-error skip|abort] [--resume] [--checkpoint PATH]
  search --collection NAME --queries FILE [--format jsonl|npy] [--k 10] [--candidates N]
         [--no-rerank] [--output FILE] [--text]
  search --collection NAME (--json '{...}' | --queries FILE) [--k 10]
         [--scoring cosine|containment] [--include-record]          (JSON collections)
         [--filter JSON]                                              (both kinds)
  probe --collection NAME (--id ID | --json '{...}') --path PATH [--top 5]
  get --collection NAME [--include-vectors] ID...
  delete --collection NAME ID...
  scroll --collection NAME [--filter JSON] [--page-size 100] [--max-docs N] [--page-token T]
  count --collection NAME [--filter JSON]
  snapshot create --collection NAME | list [--collection NAME] | delete SNAPSHOT
           | restore SNAPSHOT --collection NEW
  alias set ALIAS --collection NAME | delete ALIAS | list [--collection NAME]
  kernel NAME --input request.json    |  kernel --list

Run `chamferdb-cli COMMAND --help` for a command's flags.
)";

std::vector<FlagSpec> AllFlags() {
  std::vector<FlagSpec> all = kGlobalFlags;
  for (const auto& [cmd, flags] : kCommandFlags) all.insert(all.end(), flags.begin(), flags.end());
  return all;
}

// The first argument that is neither a flag nor a flag's value.
std::string FindCommand(const std::vector<std::string>& args) {
  const std::vector<FlagSpec> all = AllFlags();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return i + 1 < args.size() ? args[i + 1] : "";
    if (a.rfind("--", 0) == 0) {
      if (a.find('=') != std::string::npos) continue;
      const std::string name = a.substr(2);
      for (const auto& f : all) {
        if (f.name == name && f.takes_value) ++i;
      }
      continue;
    }
    if (a.size() > 1 && a[0] == '-') continue;
    return a;
  }
  return "";
}

int Main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::string command = FindCommand(args);
  auto cmd_flags = kCommandFlags.find(command);
  if (command.empty() || cmd_flags == kCommandFlags.end()) {
    const bool help = command.empty() && (args.empty() || std::find(args.begin(), args.end(), "--help") != args.end() ||
                                          std::find(args.begin(), args.end(), "-h") != args.end());
    if (!help && !command.empty()) fmt::print(stderr, "error: unknown command {:?}\n", command);
    fmt::print(help ? stdout : stderr, "{}\nglobal flags:\n{}", kUsage, FlagHelp(kGlobalFlags));
    return help ? 0 : 2;
  }
  std::vector<FlagSpec> specs = kGlobalFlags;
  specs.insert(specs.end(), cmd_flags->second.begin(), cmd_flags->second.end());
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, specs);
  if (!parsed.ok()) {
    fmt::print(stderr, "error: {}\nrun `chamferdb-cli {} --help` for usage\n", std::string(parsed.status().message()), command);
    return 2;
  }
  if (parsed->Has("help")) {
    fmt::print("{}\n{} flags:\n{}\nglobal flags:\n{}", kUsage, command, FlagHelp(cmd_flags->second),
               FlagHelp(kGlobalFlags));
    return 0;
  }

  ConnectionOptions copts;
  const char* env_server = std::getenv("CHAMFERDB_SERVER");
  const char* env_key = std::getenv("CHAMFERDB_API_KEY");
  copts.server = parsed->Get("server", env_server != nullptr ? env_server : "127.0.0.1:50051");
  copts.api_key = parsed->Get("api-key", env_key != nullptr ? env_key : "");
  copts.tls_ca = parsed->Get("tls-ca");
  copts.tls_cert = parsed->Get("tls-cert");
  copts.tls_key = parsed->Get("tls-key");
  copts.tls_server_name = parsed->Get("tls-server-name");
  RetryPolicy retry;
  auto usage_error = [&](const absl::Status& s) {
    fmt::print(stderr, "error: {}\n", std::string(s.message()));
    return 2;
  };
  absl::StatusOr<double> timeout = parsed->GetDouble("timeout", 60);
  if (!timeout.ok()) return usage_error(timeout.status());
  copts.timeout_seconds = *timeout;
  absl::StatusOr<uint64_t> attempts = parsed->GetUint("retries", 10, 1, 1000);
  if (!attempts.ok()) return usage_error(attempts.status());
  retry.max_attempts = static_cast<int>(*attempts);
  absl::StatusOr<uint64_t> initial = parsed->GetUint("retry-initial-ms", 100, 1, 60000);
  if (!initial.ok()) return usage_error(initial.status());
  retry.initial_backoff = std::chrono::milliseconds(*initial);
  retry.max_backoff = std::max(retry.max_backoff, retry.initial_backoff);

  absl::StatusOr<Connection> connection = Connection::Create(copts);
  if (!connection.ok()) return usage_error(connection.status());
  CommandContext ctx{&*connection, retry, parsed->Has("pretty")};

  if (command == "collections") return RunCollections(ctx, *parsed);
  if (command == "get") return RunGet(ctx, *parsed);
  if (command == "delete") return RunDelete(ctx, *parsed);
  if (command == "search") return RunSearch(ctx, *parsed);
  if (command == "kernel") return RunKernel(ctx, *parsed);
  if (command == "probe") return RunProbe(ctx, *parsed);
  if (command == "scroll") return RunScroll(ctx, *parsed);
  if (command == "count") return RunCount(ctx, *parsed);
  if (command == "snapshot") return RunSnapshot(ctx, *parsed);
  if (command == "alias") return RunAlias(ctx, *parsed);

  // ingest
  IngestOptions o;
  o.retry = retry;
  if (!parsed->Has("collection")) return usage_error(absl::InvalidArgumentError("--collection is required"));
  o.collection = parsed->Get("collection");
  if (parsed->Has("format")) {
    absl::StatusOr<std::string> format = parsed->GetChoice("format", "", {"jsonl", "npy", "json-records"});
    if (!format.ok()) return usage_error(format.status());
    o.format = *format;
  }
  o.files.assign(parsed->positional().begin() + 1, parsed->positional().end());
  if (o.format != "npy" && o.files.empty()) {
    return usage_error(absl::InvalidArgumentError("ingest needs at least one JSONL FILE"));
  }
  if (parsed->Has("id-field")) {
    if (o.format == "jsonl" || o.format == "npy") {
      return usage_error(absl::InvalidArgumentError("--id-field applies to --format json-records only"));
    }
    o.id_field = parsed->Get("id-field");
    if (o.id_field.empty()) return usage_error(absl::InvalidArgumentError("--id-field is empty"));
  }
  if (o.format == "npy") {
    if (!o.files.empty()) {
      return usage_error(absl::InvalidArgumentError("--format npy takes --vectors/--offsets/--ids, not FILE arguments"));
    }
    for (const char* f : {"vectors", "offsets", "ids"}) {
      if (!parsed->Has(f)) return usage_error(absl::InvalidArgumentError(fmt::format("--format npy needs --{}", f)));
    }
    o.npy_vectors = parsed->Get("vectors");
    o.npy_offsets = parsed->Get("offsets");
    o.npy_ids = parsed->Get("ids");
  }
  // The server refuses batches of more than 10,000 documents.
  absl::StatusOr<uint64_t> batch = parsed->GetUint("batch-size", 256, 1, 10000);
  if (!batch.ok()) return usage_error(batch.status());
  o.batch_size = static_cast<uint32_t>(*batch);
  absl::StatusOr<uint64_t> parallel = parsed->GetUint("parallel", 2, 1, 64);
  if (!parallel.ok()) return usage_error(parallel.status());
  o.parallel = static_cast<uint32_t>(*parallel);
  absl::StatusOr<uint64_t> max_batch_mb = parsed->GetUint("max-batch-mb", 32, 1, 1024);
  if (!max_batch_mb.ok()) return usage_error(max_batch_mb.status());
  o.max_batch_bytes = *max_batch_mb << 20;
  absl::StatusOr<std::string> on_error = parsed->GetChoice("on-error", "skip", {"skip", "abort"});
  if (!on_error.ok()) return usage_error(on_error.status());
  o.abort_on_error = *on_error == "abort";
  o.resume = parsed->Has("resume");
  o.checkpoint = parsed->Get("checkpoint");
  o.write_checkpoint = !parsed->Has("no-checkpoint");
  if (o.resume && !o.write_checkpoint) {
    return usage_error(absl::InvalidArgumentError("--resume and --no-checkpoint exclude each other"));
  }
  absl::StatusOr<uint64_t> max_docs = parsed->GetUint("max-docs", 0, 0, UINT64_MAX);
  if (!max_docs.ok()) return usage_error(max_docs.status());
  o.max_docs = *max_docs;
  absl::StatusOr<double> interval = parsed->GetDouble("progress-interval", 0);
  if (!interval.ok()) return usage_error(interval.status());
  o.progress_interval = *interval;
  o.quiet = parsed->Has("quiet");
  return RunIngest(*connection, o);
}

}  // namespace
}  // namespace chamferdb::cli

int main(int argc, char** argv) { return chamferdb::cli::Main(argc, argv); }
