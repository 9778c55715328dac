#include "server/convert.h"

#include <fmt/format.h>

#include "common/absl_fmt.h"
#include "common/status_macros.h"

#include <cmath>
#include <cstring>
#include <tuple>
#include <nlohmann/json.hpp>

namespace chamferdb {

namespace {

absl::Status IndexFromProto(const v1::IndexParams& ip, IndexConfig* out) {
  switch (ip.kind()) {
    case v1::INDEX_KIND_UNSPECIFIED:
    case v1::FLAT: out->kind = IndexKind::kFlat; break;
    case v1::HNSW: out->kind = IndexKind::kHnsw; break;
    case v1::IVF_PQ: out->kind = IndexKind::kIvfPq; break;
    default:
      return absl::InvalidArgumentError(fmt::format("config.index.kind {} is not a known kind", static_cast<int>(ip.kind())));
  }
  out->hnsw_m = ip.hnsw_m();
  out->hnsw_ef_construction = ip.hnsw_ef_construction();
  out->hnsw_ef_search = ip.hnsw_ef_search();
  out->ivf_nlist = ip.ivf_nlist();
  out->pq_m = ip.pq_m();
  out->pq_nbits = ip.pq_nbits();
  out->ivf_nprobe = ip.ivf_nprobe();
  out->ivf_train_threshold = ip.ivf_train_threshold();
  switch (ip.hnsw_storage()) {
    case v1::HNSW_STORAGE_UNSPECIFIED: out->hnsw_storage = HnswStorage::kDefault; break;
    case v1::HNSW_FLOAT32: out->hnsw_storage = HnswStorage::kFloat32; break;
    case v1::HNSW_INT8: out->hnsw_storage = HnswStorage::kInt8; break;
    default:
      return absl::InvalidArgumentError(
          fmt::format("config.index.hnsw_storage {} is not a known kind", static_cast<int>(ip.hnsw_storage())));
  }
  switch (ip.refine_storage()) {
    case v1::REFINE_NONE: out->refine = RefineStorage::kNone; break;
    case v1::REFINE_FLOAT32: out->refine = RefineStorage::kFloat32; break;
    case v1::REFINE_INT8: out->refine = RefineStorage::kInt8; break;
    default:
      return absl::InvalidArgumentError(
          fmt::format("config.index.refine_storage {} is not a known kind", static_cast<int>(ip.refine_storage())));
  }
  return absl::OkStatus();
}

absl::StatusOr<FilterValue> ValueFromProto(const google::protobuf::Value& v, std::string_view what) {
  FilterValue out;
  switch (v.kind_case()) {
    case google::protobuf::Value::kStringValue:
      out.kind = FilterValue::Kind::kString;
      out.string_value = v.string_value();
      return out;
    case google::protobuf::Value::kNumberValue:
      out.kind = FilterValue::Kind::kNumber;
      out.number_value = v.number_value();
      if (!std::isfinite(out.number_value)) return absl::InvalidArgumentError(fmt::format("{} is not a finite number", what));
      return out;
    case google::protobuf::Value::kBoolValue:
      out.kind = FilterValue::Kind::kBool;
      out.bool_value = v.bool_value();
      return out;
    default:
      return absl::InvalidArgumentError(fmt::format("{} must be a string, number or boolean", what));
  }
}

absl::Status FilterLevelFromProto(const v1::Filter& f, std::string_view what, size_t depth, MetadataFilter* out) {
  if (depth > FilterLimits::kMaxDepth) {
    return absl::InvalidArgumentError(fmt::format("{}: filters nest deeper than {}", what, FilterLimits::kMaxDepth));
  }
  const std::tuple<const google::protobuf::RepeatedPtrField<v1::Condition>*, std::vector<FilterCondition>*, const char*>
      groups[] = {{&f.must(), &out->must, "must"}, {&f.should(), &out->should, "should"}, {&f.must_not(), &out->must_not, "must_not"}};
  for (const auto& [in, list, name] : groups) {
    if (static_cast<size_t>(in->size()) > FilterLimits::kMaxConditions) {
      return absl::InvalidArgumentError(fmt::format("{}.{} has {} conditions, more than {}", what, name, in->size(), FilterLimits::kMaxConditions));
    }
    for (int i = 0; i < in->size(); ++i) {
      const v1::Condition& c = (*in)[i];
      const std::string at = fmt::format("{}.{}[{}]", what, name, i);
      FilterCondition fc;
      if (c.kind_case() == v1::Condition::kFilter) {
        auto nested = std::make_shared<MetadataFilter>();
        RETURN_IF_ERROR(FilterLevelFromProto(c.filter(), at + ".filter", depth + 1, nested.get()));
        fc.nested = std::move(nested);
      } else if (c.kind_case() == v1::Condition::kField) {
        const v1::FieldCondition& in_field = c.field();
        FieldCondition field;
        field.path = in_field.path();
        switch (in_field.match_case()) {
          case v1::FieldCondition::kEquals: {
            field.kind = FieldCondition::Kind::kEquals;
            ASSIGN_OR_RETURN(FilterValue v, ValueFromProto(in_field.equals(), at + ".field.equals"));
            field.values.push_back(std::move(v));
            break;
          }
          case v1::FieldCondition::kAnyOf: {
            field.kind = FieldCondition::Kind::kAnyOf;
            const auto& values = in_field.any_of().values();
            if (static_cast<size_t>(values.size()) > FilterLimits::kMaxValues) {
              return absl::InvalidArgumentError(fmt::format("{}.field.any_of has {} values, more than {}", at, values.size(), FilterLimits::kMaxValues));
            }
            for (int j = 0; j < values.size(); ++j) {
              ASSIGN_OR_RETURN(FilterValue v, ValueFromProto(values[j], fmt::format("{}.field.any_of[{}]", at, j)));
              field.values.push_back(std::move(v));
            }
            break;
          }
          case v1::FieldCondition::kRange: {
            field.kind = FieldCondition::Kind::kRange;
            const v1::Range& r = in_field.range();
            if (r.has_gt()) field.gt = r.gt();
            if (r.has_gte()) field.gte = r.gte();
            if (r.has_lt()) field.lt = r.lt();
            if (r.has_lte()) field.lte = r.lte();
            break;
          }
          case v1::FieldCondition::kExists:
            field.kind = FieldCondition::Kind::kExists;
            field.exists = in_field.exists();
            break;
          default:
            return absl::InvalidArgumentError(fmt::format("{}.field sets no match (equals, any_of, range or exists)", at));
        }
        fc.field = std::move(field);
      } else {
        return absl::InvalidArgumentError(fmt::format("{} is empty (set field or filter)", at));
      }
      list->push_back(std::move(fc));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MetadataFilter> FilterFromProto(const v1::Filter& filter, std::string_view what) {
  MetadataFilter out;
  RETURN_IF_ERROR(FilterLevelFromProto(filter, what, 1, &out));
  RETURN_IF_ERROR(ValidateFilter(out, what));
  return out;
}

absl::StatusOr<CollectionSpec> SpecFromProto(const v1::CollectionConfig& config) {
  CollectionSpec spec;
  spec.name = config.name();
  if (config.kind() == v1::JSON) {
    spec.kind = CollectionKindDomain::kJson;
    // Merge dim into the MBAT config JSON; the encoder validates every field.
    nlohmann::json mbat = nlohmann::json::object();
    if (!config.json().mbat_config_json().empty()) {
      mbat = nlohmann::json::parse(config.json().mbat_config_json(), nullptr, false);
      if (mbat.is_discarded() || !mbat.is_object()) {
        return absl::InvalidArgumentError("config.json.mbat_config_json is not a JSON object");
      }
    }
    if (config.dim() != 0) {
      if (mbat.contains("dim") && mbat["dim"] != config.dim()) {
        return absl::InvalidArgumentError("config.json.mbat_config_json dim differs from config.dim");
      }
      mbat["dim"] = config.dim();
    }
    spec.mbat_config_json = mbat.dump();
    spec.id_field = config.json().id_field().empty() ? "id" : config.json().id_field();
    if (absl::Status st = IndexFromProto(config.index(), &spec.index); !st.ok()) return st;
    if (spec.index.refine != RefineStorage::kNone) {
      return absl::InvalidArgumentError(
          "config.index.refine_storage is for MULTI_VECTOR collections (JSON searches do not refine)");
    }
    if (config.rescore_storage() != v1::TOKEN_STORAGE_UNSPECIFIED) {
      return absl::InvalidArgumentError("config.rescore_storage is for MULTI_VECTOR collections (JSON records have no tokens)");
    }
    return spec;
  }
  if (config.kind() != v1::MULTI_VECTOR && config.kind() != v1::COLLECTION_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError(fmt::format("config.kind {} is not a known kind", static_cast<int>(config.kind())));
  }
  if (config.dim() == 0) return absl::InvalidArgumentError("config.dim is required (the token dimension)");
  FdeConfig& f = spec.fde;
  f.dim = config.dim();
  const auto& fp = config.fde();
  f.r_reps = fp.r_reps() ? fp.r_reps() : 20;
  f.k_sim = fp.has_k_sim() ? fp.k_sim() : 5;
  f.d_proj = fp.d_proj() ? fp.d_proj() : std::min<uint32_t>(16, f.dim);
  f.d_final = fp.d_final();
  f.seed = fp.seed() ? fp.seed() : 1;
  if (absl::Status s = f.Validate(); !s.ok()) return absl::InvalidArgumentError(fmt::format("config.{}", s.message()));

  if (absl::Status st = IndexFromProto(config.index(), &spec.index); !st.ok()) return st;
  if (absl::Status s = spec.index.Normalize(f.output_dim()); !s.ok()) {
    return absl::InvalidArgumentError(fmt::format("config.{}", s.message()));
  }
  switch (config.token_storage()) {
    case v1::TOKEN_STORAGE_UNSPECIFIED:
    case v1::FLOAT32: spec.token_storage = TokenStorage::kFloat32; break;
    case v1::FLOAT16: spec.token_storage = TokenStorage::kFloat16; break;
    case v1::INT8: spec.token_storage = TokenStorage::kInt8; break;
    default: return absl::InvalidArgumentError(fmt::format("config.token_storage {} is not known", static_cast<int>(config.token_storage())));
  }
  switch (config.rescore_storage()) {
    case v1::TOKEN_STORAGE_UNSPECIFIED: break;
    case v1::FLOAT32: spec.rescore_storage = TokenStorage::kFloat32; break;
    case v1::FLOAT16: spec.rescore_storage = TokenStorage::kFloat16; break;
    case v1::INT8: return absl::InvalidArgumentError("config.rescore_storage INT8 is not allowed (FLOAT16 or FLOAT32: the rescore needs more precision than the in-memory tokens)");
    default: return absl::InvalidArgumentError(fmt::format("config.rescore_storage {} is not known", static_cast<int>(config.rescore_storage())));
  }
  if (spec.rescore_storage && (spec.token_storage == TokenStorage::kFloat32 ||
                               (spec.token_storage == TokenStorage::kFloat16 && *spec.rescore_storage == TokenStorage::kFloat16))) {
    return absl::InvalidArgumentError(
        "config.rescore_storage must be more precise than config.token_storage (INT8 -> FLOAT16 or FLOAT32, FLOAT16 -> FLOAT32)");
  }
  spec.normalize = config.has_normalize() ? config.normalize() : true;
  return spec;
}

void SpecToProto(const CollectionSpec& spec, v1::CollectionConfig* out) {
  out->set_name(spec.name);
  out->set_kind(spec.kind == CollectionKindDomain::kJson ? v1::JSON : v1::MULTI_VECTOR);
  if (spec.kind == CollectionKindDomain::kJson) {
    out->mutable_json()->set_mbat_config_json(spec.mbat_config_json);
    out->mutable_json()->set_id_field(spec.id_field);
  }
  out->set_dim(spec.fde.dim);
  auto* f = out->mutable_fde();
  f->set_r_reps(spec.fde.r_reps);
  f->set_k_sim(spec.fde.k_sim);
  f->set_d_proj(spec.fde.d_proj);
  f->set_d_final(spec.fde.d_final);
  f->set_seed(spec.fde.seed);
  auto* i = out->mutable_index();
  i->set_kind(spec.index.kind == IndexKind::kHnsw ? v1::HNSW : spec.index.kind == IndexKind::kIvfPq ? v1::IVF_PQ : v1::FLAT);
  i->set_hnsw_m(spec.index.hnsw_m);
  i->set_hnsw_ef_construction(spec.index.hnsw_ef_construction);
  i->set_hnsw_ef_search(spec.index.hnsw_ef_search);
  i->set_ivf_nlist(spec.index.ivf_nlist);
  i->set_pq_m(spec.index.pq_m);
  i->set_pq_nbits(spec.index.pq_nbits);
  i->set_ivf_nprobe(spec.index.ivf_nprobe);
  i->set_ivf_train_threshold(spec.index.ivf_train_threshold);
  i->set_refine_storage(spec.index.refine == RefineStorage::kFloat32 ? v1::REFINE_FLOAT32
                        : spec.index.refine == RefineStorage::kInt8  ? v1::REFINE_INT8
                                                                     : v1::REFINE_NONE);
  i->set_hnsw_storage(spec.index.hnsw_storage == HnswStorage::kFloat32 ? v1::HNSW_FLOAT32
                      : spec.index.hnsw_storage == HnswStorage::kInt8  ? v1::HNSW_INT8
                                                                       : v1::HNSW_STORAGE_UNSPECIFIED);
  out->set_token_storage(spec.token_storage == TokenStorage::kFloat16 ? v1::FLOAT16
                         : spec.token_storage == TokenStorage::kInt8  ? v1::INT8
                                                                      : v1::FLOAT32);
  if (spec.rescore_storage) {
    out->set_rescore_storage(*spec.rescore_storage == TokenStorage::kFloat16 ? v1::FLOAT16 : v1::FLOAT32);
  }
  out->set_normalize(spec.normalize);
}

void InfoToProto(const Registry::Entry& c, v1::CollectionInfo* out) {
  SpecToProto(c.spec(), out->mutable_config());
  const CollectionStats s = c.Stats();
  auto* st = out->mutable_stats();
  st->set_documents(s.documents);
  st->set_token_vectors(s.token_vectors);
  st->set_bytes_on_disk(s.bytes_on_disk);
  st->set_bytes_in_memory(s.bytes_in_memory);
  st->set_index_kind(out->config().index().kind());
  st->set_index_state(s.index_state == IndexState::kExact ? v1::EXACT : v1::READY);
  st->set_fde_dim(static_cast<uint32_t>(s.fde_dim));
}

absl::StatusOr<SearchQuery> QueryFromProto(const v1::SearchRequest& request, size_t dim,
                                           std::vector<float>* storage) {
  SearchQuery q;
  const auto& bytes = request.query().vectors();
  const size_t n = request.query().num_tokens();
  if (n == 0) return absl::InvalidArgumentError("query.num_tokens is 0 (a query needs at least one token)");
  if (n > Limits::kMaxTokensPerQuery) {
    return absl::InvalidArgumentError(fmt::format("query.num_tokens {} exceeds the limit of {}", n, Limits::kMaxTokensPerQuery));
  }
  if (bytes.size() != n * dim * 4) {
    return absl::InvalidArgumentError(fmt::format(
        "query.vectors has {} bytes, expected num_tokens {} x dim {} x 4 = {} (dimension mismatch?)", bytes.size(), n,
        dim, n * dim * 4));
  }
  storage->resize(n * dim);
  std::memcpy(storage->data(), bytes.data(), bytes.size());
  q.tokens = storage->data();
  q.num_tokens = n;
  q.k = request.k();
  q.candidates = request.candidates();
  q.rerank = request.has_rerank() ? request.rerank() : true;
  q.ef_search = request.ef_search();
  q.nprobe = request.nprobe();
  q.include_metadata = request.include_metadata();
  q.merge_tau = request.query_merge_tau();
  q.refine_candidates = request.refine_candidates();
  q.rescore_candidates = request.rescore_candidates();
  return q;
}

void ResultToProto(const SearchResult& result, v1::SearchResponse* out) {
  for (const auto& h : result.hits) {
    auto* hit = out->add_hits();
    hit->set_id(h.id);
    hit->set_score(h.score);
    hit->set_fde_score(h.fde_score);
    if (!h.metadata_json.empty()) hit->set_metadata_json(h.metadata_json);
  }
  auto* st = out->mutable_stats();
  st->set_candidates(static_cast<uint32_t>(result.stats.candidates));
  st->set_encode_micros(result.stats.encode_micros);
  st->set_index_micros(result.stats.index_micros);
  st->set_rerank_micros(result.stats.rerank_micros);
  st->set_total_micros(result.stats.total_micros);
  st->set_rerank_query_tokens(static_cast<uint32_t>(result.stats.rerank_query_tokens));
  st->set_filter_matches(result.stats.filter_matches);
  st->set_filter_exhaustive(result.stats.filter_exhaustive);
  st->set_rescored(static_cast<uint32_t>(result.stats.rescored));
  st->set_rescore_micros(result.stats.rescore_micros);
}

}  // namespace chamferdb
