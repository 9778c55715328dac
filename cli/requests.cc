#include "cli/requests.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

namespace chamferdb::cli {
namespace {

using nlohmann::json;

constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();

// Flags that only make sense for one collection kind.
const std::vector<std::string> kMultiVectorOnly = {"r-reps", "k-sim", "d-proj", "d-final", "token-storage",
                                                   "rescore-storage", "no-normalize"};
const std::vector<std::string> kJsonOnly = {"id-field",       "mbat-config", "op-kind",        "seq-from",
                                            "beta-bag",       "gamma-keys",  "str-mode",       "w-tok",
                                            "w-tri",          "num-transform", "num-scale",    "num-sigma",
                                            "mbat-normalize", "max-record-bytes", "max-depth", "max-nodes",
                                            "max-array-length"};

absl::Status IndexFlags(const ParsedArgs& args, v1::IndexParams* ip) {
  absl::StatusOr<std::string> index = args.GetChoice("index", "flat", {"flat", "hnsw", "ivf_pq"});
  if (!index.ok()) return index.status();
  ip->set_kind(*index == "hnsw" ? v1::HNSW : *index == "ivf_pq" ? v1::IVF_PQ : v1::FLAT);
  absl::StatusOr<std::string> refine = args.GetChoice("refine-storage", "none", {"none", "f32", "int8"});
  if (!refine.ok()) return refine.status();
  ip->set_refine_storage(*refine == "f32" ? v1::REFINE_FLOAT32 : *refine == "int8" ? v1::REFINE_INT8 : v1::REFINE_NONE);
  // Unset leaves the server's default (int8 for HNSW); the server rejects it for other kinds.
  absl::StatusOr<std::string> hnsw_storage = args.GetChoice("hnsw-storage", "default", {"default", "int8", "f32"});
  if (!hnsw_storage.ok()) return hnsw_storage.status();
  if (*hnsw_storage != "default") ip->set_hnsw_storage(*hnsw_storage == "int8" ? v1::HNSW_INT8 : v1::HNSW_FLOAT32);
  struct U32Flag {
    const char* name;
    void (v1::IndexParams::*set)(uint32_t);
  };
  for (const U32Flag& f : {U32Flag{"hnsw-m", &v1::IndexParams::set_hnsw_m},
                           U32Flag{"ef-construction", &v1::IndexParams::set_hnsw_ef_construction},
                           U32Flag{"ef-search", &v1::IndexParams::set_hnsw_ef_search},
                           U32Flag{"nlist", &v1::IndexParams::set_ivf_nlist}, U32Flag{"pq-m", &v1::IndexParams::set_pq_m},
                           U32Flag{"nprobe", &v1::IndexParams::set_ivf_nprobe}}) {
    absl::StatusOr<uint64_t> v = args.GetUint(f.name, 0, 0, kU32);
    if (!v.ok()) return v.status();
    (ip->*f.set)(static_cast<uint32_t>(*v));
  }
  return absl::OkStatus();
}

absl::Status MultiVectorFlags(const ParsedArgs& args, v1::CollectionConfig* cfg) {
  if (!args.Has("dim")) return absl::InvalidArgumentError("--dim is required for multi-vector collections");
  absl::StatusOr<uint64_t> dim = args.GetUint("dim", 0, 1, kU32);
  if (!dim.ok()) return dim.status();
  cfg->set_dim(static_cast<uint32_t>(*dim));
  v1::FdeParams* fde = cfg->mutable_fde();
  absl::StatusOr<uint64_t> r_reps = args.GetUint("r-reps", 0, 0, kU32);
  if (!r_reps.ok()) return r_reps.status();
  fde->set_r_reps(static_cast<uint32_t>(*r_reps));
  if (args.Has("k-sim")) {
    absl::StatusOr<uint64_t> k_sim = args.GetUint("k-sim", 0, 0, kU32);
    if (!k_sim.ok()) return k_sim.status();
    fde->set_k_sim(static_cast<uint32_t>(*k_sim));
  }
  absl::StatusOr<uint64_t> d_proj = args.GetUint("d-proj", 0, 0, kU32);
  if (!d_proj.ok()) return d_proj.status();
  fde->set_d_proj(static_cast<uint32_t>(*d_proj));
  absl::StatusOr<uint64_t> d_final = args.GetUint("d-final", 0, 0, kU32);
  if (!d_final.ok()) return d_final.status();
  fde->set_d_final(static_cast<uint32_t>(*d_final));
  absl::StatusOr<uint64_t> seed = args.GetUint("seed", 0, 0, std::numeric_limits<uint64_t>::max());
  if (!seed.ok()) return seed.status();
  fde->set_seed(*seed);
  absl::StatusOr<std::string> storage = args.GetChoice("token-storage", "f32", {"f32", "f16", "int8"});
  if (!storage.ok()) return storage.status();
  cfg->set_token_storage(*storage == "f16" ? v1::FLOAT16 : *storage == "int8" ? v1::INT8 : v1::FLOAT32);
  absl::StatusOr<std::string> rescore = args.GetChoice("rescore-storage", "none", {"none", "f16", "f32"});
  if (!rescore.ok()) return rescore.status();
  if (*rescore != "none") cfg->set_rescore_storage(*rescore == "f16" ? v1::FLOAT16 : v1::FLOAT32);
  if (args.Has("no-normalize")) cfg->set_normalize(false);
  return absl::OkStatus();
}

absl::Status JsonFlags(const ParsedArgs& args, v1::CollectionConfig* cfg) {
  absl::StatusOr<uint64_t> dim = args.GetUint("dim", 0, 1, kU32);
  if (!dim.ok()) return dim.status();
  cfg->set_dim(static_cast<uint32_t>(*dim));  // 0: the server's default
  json mbat = json::object();
  if (args.Has("mbat-config")) {
    mbat = json::parse(args.Get("mbat-config"), nullptr, /*allow_exceptions=*/false);
    if (mbat.is_discarded() || !mbat.is_object()) {
      return absl::InvalidArgumentError(fmt::format("--mbat-config {:?}: not a JSON object", args.Get("mbat-config")));
    }
  }
  if (args.Has("seed")) {
    absl::StatusOr<uint64_t> seed = args.GetUint("seed", 0, 0, std::numeric_limits<uint64_t>::max());
    if (!seed.ok()) return seed.status();
    mbat["seed"] = *seed;
  }
  struct Choice {
    const char* flag;
    const char* field;
    std::vector<std::string> choices;
  };
  for (const Choice& c : {Choice{"op-kind", "op_kind", {"srht", "dense_haar", "signed_perm"}},
                          Choice{"seq-from", "seq_from", {"start", "end"}},
                          Choice{"str-mode", "str_mode", {"exact", "tokens", "trigram"}},
                          Choice{"num-transform", "num_transform", {"signed_log1p", "linear"}},
                          Choice{"mbat-normalize", "normalize", {"final", "per_node"}}}) {
    if (!args.Has(c.flag)) continue;
    absl::StatusOr<std::string> v = args.GetChoice(c.flag, "", c.choices);
    if (!v.ok()) return v.status();
    mbat[c.field] = *v;
  }
  for (const auto& [flag, field] : std::vector<std::pair<std::string, std::string>>{{"beta-bag", "beta_bag"},
                                                                                    {"gamma-keys", "gamma_keys"},
                                                                                    {"w-tok", "w_tok"},
                                                                                    {"w-tri", "w_tri"},
                                                                                    {"num-scale", "num_scale"},
                                                                                    {"num-sigma", "num_sigma"}}) {
    if (!args.Has(flag)) continue;
    absl::StatusOr<double> v = args.GetDouble(flag, 0);
    if (!v.ok()) return v.status();
    mbat[field] = *v;
  }
  for (const auto& [flag, field] : std::vector<std::pair<std::string, std::string>>{
           {"max-record-bytes", "max_record_bytes"},
           {"max-depth", "max_depth"},
           {"max-nodes", "max_nodes"},
           {"max-array-length", "max_array_length"}}) {
    if (!args.Has(flag)) continue;
    absl::StatusOr<uint64_t> v = args.GetUint(flag, 0, 1, std::numeric_limits<uint32_t>::max());
    if (!v.ok()) return v.status();
    if (!mbat.contains("limits") || !mbat["limits"].is_object()) mbat["limits"] = json::object();
    mbat["limits"][field] = *v;
  }
  if (!mbat.empty()) cfg->mutable_json()->set_mbat_config_json(mbat.dump());
  if (args.Has("id-field")) {
    if (args.Get("id-field").empty()) return absl::InvalidArgumentError("--id-field is empty");
    cfg->mutable_json()->set_id_field(args.Get("id-field"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::CreateCollectionRequest> BuildCreateCollectionRequest(const ParsedArgs& args) {
  if (args.positional().size() < 3 || args.positional()[2].empty()) {
    return absl::InvalidArgumentError("collections create needs a NAME");
  }
  if (args.positional().size() > 3) {
    return absl::InvalidArgumentError(fmt::format("unexpected argument {:?}", args.positional()[3]));
  }
  absl::StatusOr<std::string> kind = args.GetChoice("kind", "multi-vector", {"multi-vector", "json"});
  if (!kind.ok()) return kind.status();
  const bool is_json = *kind == "json";
  for (const std::string& f : is_json ? kMultiVectorOnly : kJsonOnly) {
    if (args.Has(f)) {
      return absl::InvalidArgumentError(
          fmt::format("--{} applies to {} collections only", f, is_json ? "multi-vector" : "JSON (--kind json)"));
    }
  }
  v1::CreateCollectionRequest req;
  v1::CollectionConfig* cfg = req.mutable_config();
  cfg->set_name(args.positional()[2]);
  cfg->set_kind(is_json ? v1::JSON : v1::MULTI_VECTOR);
  if (absl::Status s = is_json ? JsonFlags(args, cfg) : MultiVectorFlags(args, cfg); !s.ok()) return s;
  if (absl::Status s = IndexFlags(args, cfg->mutable_index()); !s.ok()) return s;
  return req;
}

absl::StatusOr<v1::SearchJsonRequest> BuildSearchJsonRequest(const ParsedArgs& args, const std::string& collection,
                                                             const std::string& query_json) {
  v1::SearchJsonRequest req;
  req.set_collection(collection);
  req.set_query_json(query_json);
  absl::StatusOr<uint64_t> k = args.GetUint("k", 10, 1, 1000);
  if (!k.ok()) return k.status();
  req.set_k(static_cast<uint32_t>(*k));
  absl::StatusOr<std::string> scoring = args.GetChoice("scoring", "cosine", {"cosine", "containment"});
  if (!scoring.ok()) return scoring.status();
  req.set_scoring(*scoring == "containment" ? v1::CONTAINMENT : v1::COSINE);
  absl::StatusOr<uint64_t> candidates = args.GetUint("candidates", 0, 0, 1 << 20);  // the server enforces its limit
  if (!candidates.ok()) return candidates.status();
  req.set_candidates(static_cast<uint32_t>(*candidates));
  absl::StatusOr<uint64_t> ef_search = args.GetUint("ef-search", 0, 0, 1 << 20);
  if (!ef_search.ok()) return ef_search.status();
  req.set_ef_search(static_cast<uint32_t>(*ef_search));
  absl::StatusOr<uint64_t> nprobe = args.GetUint("nprobe", 0, 0, 1 << 20);
  if (!nprobe.ok()) return nprobe.status();
  req.set_nprobe(static_cast<uint32_t>(*nprobe));
  req.set_include_record(args.Has("include-record"));
  absl::StatusOr<FilterFlag> filter = FilterFromArgs(args);
  if (!filter.ok()) return filter.status();
  if (filter->given) *req.mutable_filter() = filter->filter;
  for (const char* f : {"no-rerank", "include-metadata", "format", "vectors", "offsets", "ids"}) {
    if (args.Has(f)) return absl::InvalidArgumentError(fmt::format("--{} applies to multi-vector collections only", f));
  }
  return req;
}

absl::StatusOr<v1::ProbeRequest> BuildProbeRequest(const ParsedArgs& args) {
  if (!args.Has("collection")) return absl::InvalidArgumentError("--collection is required");
  if (!args.Has("path")) return absl::InvalidArgumentError("--path is required (e.g. addr.geo.cc or tags[2])");
  if (args.Has("id") == args.Has("json")) {
    return absl::InvalidArgumentError("give exactly one of --id ID (a stored record) and --json '{...}'");
  }
  if (args.positional().size() > 1) {
    return absl::InvalidArgumentError(fmt::format("unexpected argument {:?}", args.positional()[1]));
  }
  v1::ProbeRequest req;
  req.set_collection(args.Get("collection"));
  if (args.Has("id")) {
    if (args.Get("id").empty()) return absl::InvalidArgumentError("--id is empty");
    req.set_id(args.Get("id"));
  } else {
    req.set_query_json(args.Get("json"));
  }
  req.set_path(args.Get("path"));
  absl::StatusOr<uint64_t> top = args.GetUint("top", 5, 1, 1000);
  if (!top.ok()) return top.status();
  req.set_top_n(static_cast<uint32_t>(*top));
  return req;
}

absl::StatusOr<v1::Filter> ParseFilter(const std::string& flag_text) {
  std::string text = flag_text;
  if (!text.empty() && text[0] == '@') {
    std::ifstream in(text.substr(1), std::ios::binary);
    if (!in) return absl::InvalidArgumentError(fmt::format("--filter {}: cannot open: {}", text, std::strerror(errno)));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  v1::Filter filter;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &filter, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("--filter: not a chamferdb.v1.Filter in JSON: {}", std::string(status.message())));
  }
  if (filter.must().empty() && filter.should().empty() && filter.must_not().empty()) {
    return absl::InvalidArgumentError(
        "--filter: no conditions (give must, should or mustNot, e.g. "
        "{\"must\": [{\"field\": {\"path\": \"lang\", \"equals\": \"en\"}}]})");
  }
  return filter;
}

absl::StatusOr<FilterFlag> FilterFromArgs(const ParsedArgs& args) {
  FilterFlag out;
  if (!args.Has("filter")) return out;
  absl::StatusOr<v1::Filter> f = ParseFilter(args.Get("filter"));
  if (!f.ok()) return f.status();
  out.given = true;
  out.filter = *std::move(f);
  return out;
}

namespace {

absl::Status NoExtraPositionals(const ParsedArgs& args, size_t allowed) {
  if (args.positional().size() > allowed) {
    return absl::InvalidArgumentError(fmt::format("unexpected argument {:?}", args.positional()[allowed]));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RequiredFlag(const ParsedArgs& args, const std::string& flag) {
  if (!args.Has(flag) || args.Get(flag).empty()) return absl::InvalidArgumentError(fmt::format("--{} is required", flag));
  return args.Get(flag);
}

// positional()[index] (the verb's operand), or INVALID_ARGUMENT naming `what`.
absl::StatusOr<std::string> Operand(const ParsedArgs& args, size_t index, const std::string& what) {
  if (args.positional().size() <= index || args.positional()[index].empty()) {
    return absl::InvalidArgumentError(fmt::format("{} is required", what));
  }
  if (absl::Status s = NoExtraPositionals(args, index + 1); !s.ok()) return s;
  return args.positional()[index];
}

template <typename Request>
absl::Status ScrollCommon(const ParsedArgs& args, Request* req) {
  if (absl::Status s = NoExtraPositionals(args, 1); !s.ok()) return s;
  absl::StatusOr<std::string> collection = RequiredFlag(args, "collection");
  if (!collection.ok()) return collection.status();
  req->set_collection(*collection);
  absl::StatusOr<uint64_t> page = args.GetUint("page-size", 100, 1, 1000);
  if (!page.ok()) return page.status();
  req->set_limit(static_cast<uint32_t>(*page));
  req->set_page_token(args.Get("page-token"));
  absl::StatusOr<FilterFlag> filter = FilterFromArgs(args);
  if (!filter.ok()) return filter.status();
  if (filter->given) *req->mutable_filter() = filter->filter;
  absl::StatusOr<uint64_t> limit = ScrollLimit(args);
  return limit.ok() ? absl::OkStatus() : limit.status();
}

}  // namespace

absl::StatusOr<uint64_t> ScrollLimit(const ParsedArgs& args) {
  return args.GetUint("max-docs", 0, 0, std::numeric_limits<uint64_t>::max());
}

absl::StatusOr<v1::ScrollRequest> BuildScrollRequest(const ParsedArgs& args) {
  v1::ScrollRequest req;
  if (absl::Status s = ScrollCommon(args, &req); !s.ok()) return s;
  req.set_include_vectors(args.Has("include-vectors"));
  req.set_include_metadata(args.Has("include-metadata"));
  return req;
}

absl::StatusOr<v1::ScrollJsonRequest> BuildScrollJsonRequest(const ParsedArgs& args) {
  v1::ScrollJsonRequest req;
  if (absl::Status s = ScrollCommon(args, &req); !s.ok()) return s;
  for (const char* f : {"include-vectors", "include-metadata"}) {
    if (args.Has(f)) {
      return absl::InvalidArgumentError(
          fmt::format("--{} applies to multi-vector collections only (JSON records are always printed)", f));
    }
  }
  return req;
}

absl::StatusOr<v1::CountRequest> BuildCountRequest(const ParsedArgs& args) {
  if (absl::Status s = NoExtraPositionals(args, 1); !s.ok()) return s;
  v1::CountRequest req;
  absl::StatusOr<std::string> collection = RequiredFlag(args, "collection");
  if (!collection.ok()) return collection.status();
  req.set_collection(*collection);
  absl::StatusOr<FilterFlag> filter = FilterFromArgs(args);
  if (!filter.ok()) return filter.status();
  if (filter->given) *req.mutable_filter() = filter->filter;
  return req;
}

absl::StatusOr<v1::CreateSnapshotRequest> BuildCreateSnapshotRequest(const ParsedArgs& args) {
  if (absl::Status s = NoExtraPositionals(args, 2); !s.ok()) return s;
  absl::StatusOr<std::string> collection = RequiredFlag(args, "collection");
  if (!collection.ok()) return collection.status();
  v1::CreateSnapshotRequest req;
  req.set_collection(*collection);
  return req;
}

absl::StatusOr<v1::ListSnapshotsRequest> BuildListSnapshotsRequest(const ParsedArgs& args) {
  if (absl::Status s = NoExtraPositionals(args, 2); !s.ok()) return s;
  v1::ListSnapshotsRequest req;
  req.set_collection(args.Get("collection"));
  return req;
}

absl::StatusOr<v1::DeleteSnapshotRequest> BuildDeleteSnapshotRequest(const ParsedArgs& args) {
  absl::StatusOr<std::string> name = Operand(args, 2, "the SNAPSHOT name");
  if (!name.ok()) return name.status();
  if (args.Has("collection")) return absl::InvalidArgumentError("snapshot delete takes a SNAPSHOT name, not --collection");
  v1::DeleteSnapshotRequest req;
  req.set_name(*name);
  return req;
}

absl::StatusOr<v1::RestoreSnapshotRequest> BuildRestoreSnapshotRequest(const ParsedArgs& args) {
  absl::StatusOr<std::string> name = Operand(args, 2, "the SNAPSHOT name");
  if (!name.ok()) return name.status();
  absl::StatusOr<std::string> collection = RequiredFlag(args, "collection");
  if (!collection.ok()) {
    return absl::InvalidArgumentError("--collection NEW is required: the snapshot is restored into a new collection");
  }
  v1::RestoreSnapshotRequest req;
  req.set_snapshot(*name);
  req.set_collection(*collection);
  return req;
}

absl::StatusOr<v1::SetAliasRequest> BuildSetAliasRequest(const ParsedArgs& args) {
  absl::StatusOr<std::string> alias = Operand(args, 2, "the ALIAS name");
  if (!alias.ok()) return alias.status();
  absl::StatusOr<std::string> collection = RequiredFlag(args, "collection");
  if (!collection.ok()) return collection.status();
  v1::SetAliasRequest req;
  req.set_alias(*alias);
  req.set_collection(*collection);
  return req;
}

absl::StatusOr<v1::DeleteAliasRequest> BuildDeleteAliasRequest(const ParsedArgs& args) {
  absl::StatusOr<std::string> alias = Operand(args, 2, "the ALIAS name");
  if (!alias.ok()) return alias.status();
  if (args.Has("collection")) return absl::InvalidArgumentError("alias delete takes an ALIAS name, not --collection");
  v1::DeleteAliasRequest req;
  req.set_alias(*alias);
  return req;
}

absl::StatusOr<v1::ListAliasesRequest> BuildListAliasesRequest(const ParsedArgs& args) {
  if (absl::Status s = NoExtraPositionals(args, 2); !s.ok()) return s;
  v1::ListAliasesRequest req;
  req.set_collection(args.Get("collection"));
  return req;
}

}  // namespace chamferdb::cli
