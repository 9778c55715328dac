#include "server/collection.h"

#include <fmt/format.h>

#include "common/absl_fmt.h"
#include <omp.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "common/half.h"
#include "common/parallel_for.h"
#include "common/status_macros.h"
#include "encoders/ball_carving.h"
#include "kernels/chamfer/chamfer.h"
#include "kernels/chamfer/chamfer_int8.h"
#include "kernels/int8/quantize.h"
#include "server/admission.h"
#include "server/json_guard.h"

namespace chamferdb {
namespace {

constexpr uint8_t kRecordVersion = 1;
// Version 2: version 1 followed (before the checksum) by the rescore section.
constexpr uint8_t kRecordVersionRescore = 2;

uint64_t MicrosSince(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
}

void PutU64BE(std::string* s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <typename T>
void Append(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof v);
}

uint32_t Crc(const char* p, size_t n) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

// Bytes of the token section of a record.
uint64_t TokenBytes(TokenStorage s, uint64_t n, uint64_t dim) {
  switch (s) {
    case TokenStorage::kFloat16: return n * dim * 2;
    case TokenStorage::kInt8: return n * dim + n * 4;
    case TokenStorage::kFloat32: break;
  }
  return n * dim * 4;
}

void AppendFloats(std::string* r, const std::vector<float>& v, TokenStorage storage) {
  if (storage == TokenStorage::kFloat16) {
    for (float x : v) Append<uint16_t>(r, FloatToHalf(x));
  } else {
    r->append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  }
}

void ReadFloats(const char* p, TokenStorage storage, std::vector<float>* out) {
  if (storage == TokenStorage::kFloat16) {
    for (size_t i = 0; i < out->size(); ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      (*out)[i] = HalfToFloat(h);
    }
  } else {
    std::memcpy(out->data(), p, out->size() * 4);
  }
}

// Record: u8 version | u8 storage | u32 n | u32 dim | u32 id_len | u32 meta_len | id | meta |
// tokens | [version 2: u8 rescore storage | rescore tokens] | u32 crc32 of everything before
// it. Tokens: row-major f32 or f16, or for int8 n × dim codes then n f32 absmax scales
// (kernels/int8/quantize.h); rescore tokens: row-major f32 or f16. The storage byte tells
// the formats apart, so version 1 records of every storage stay readable; collections
// without rescore storage still write version 1.
// codes/scales: kInt8 only; originals: with rescore storage only.
std::string EncodeRecord(std::string_view id, std::string_view meta, const std::vector<float>& tokens,
                         const std::vector<int8_t>& codes, const std::vector<float>& scales, uint32_t n,
                         uint32_t dim, TokenStorage storage, std::optional<TokenStorage> rescore,
                         const std::vector<float>& originals) {
  std::string r;
  r.reserve(23 + id.size() + meta.size() + TokenBytes(storage, n, dim) +
            (rescore ? TokenBytes(*rescore, n, dim) : 0));
  Append<uint8_t>(&r, rescore ? kRecordVersionRescore : kRecordVersion);
  Append<uint8_t>(&r, static_cast<uint8_t>(storage));
  Append<uint32_t>(&r, n);
  Append<uint32_t>(&r, dim);
  Append<uint32_t>(&r, static_cast<uint32_t>(id.size()));
  Append<uint32_t>(&r, static_cast<uint32_t>(meta.size()));
  r.append(id);
  r.append(meta);
  if (storage == TokenStorage::kInt8) {
    r.append(reinterpret_cast<const char*>(codes.data()), codes.size());
    r.append(reinterpret_cast<const char*>(scales.data()), scales.size() * 4);
  } else {
    AppendFloats(&r, tokens, storage);
  }
  if (rescore) {
    Append<uint8_t>(&r, static_cast<uint8_t>(*rescore));
    AppendFloats(&r, originals, *rescore);
  }
  Append<uint32_t>(&r, Crc(r.data(), r.size()));
  return r;
}

struct DecodedRecord {
  std::string_view id;
  std::string_view meta;
  uint32_t n = 0;
  TokenStorage storage = TokenStorage::kFloat32;
  std::optional<TokenStorage> rescore;  // version 2 records
  // kStored: as stored (int8: dequantized); kBest: the rescore copy when there is one.
  std::vector<float> tokens;
  std::vector<int8_t> codes;  // int8 records decoded with kStored or kAll
  std::vector<float> scales;
  std::vector<float> rescore_tokens;  // kAll, version 2 records
  std::string_view rescore_bytes;     // version 2 records: the rescore tokens as stored
};

// kNone: header, id and metadata only; kStored: the in-memory tokens as stored (int8 codes
// and scales too); kBest: the most precise copy (the rescore tokens when present); kAll:
// kStored and the rescore tokens.
enum class TokenDecode { kNone, kStored, kBest, kAll };

absl::Status DecodeRecord(std::string_view key, std::string_view r, uint32_t dim, TokenDecode want,
                          DecodedRecord* out) {
  auto corrupt = [&](std::string_view why) {
    return absl::DataLossError(fmt::format("document record {:?} is corrupt: {}", key, why));
  };
  if (r.size() < 22) return corrupt("truncated header");
  uint32_t stored_crc;
  std::memcpy(&stored_crc, r.data() + r.size() - 4, 4);
  if (Crc(r.data(), r.size() - 4) != stored_crc) return corrupt("checksum mismatch");
  const uint8_t version = static_cast<uint8_t>(r[0]);
  const auto storage = static_cast<TokenStorage>(r[1]);
  if (version != kRecordVersion && version != kRecordVersionRescore) {
    return corrupt(fmt::format("unknown version {}", version));
  }
  if (static_cast<uint8_t>(r[1]) > static_cast<uint8_t>(TokenStorage::kInt8)) {
    return corrupt(fmt::format("unknown token storage {}", static_cast<uint8_t>(r[1])));
  }
  uint32_t n, d, id_len, meta_len;
  std::memcpy(&n, r.data() + 2, 4);
  std::memcpy(&d, r.data() + 6, 4);
  std::memcpy(&id_len, r.data() + 10, 4);
  std::memcpy(&meta_len, r.data() + 14, 4);
  if (d != dim) return corrupt(fmt::format("dimension {} != collection's {}", d, dim));
  const uint64_t main_end = 18ull + id_len + meta_len + TokenBytes(storage, n, d);
  uint64_t need = main_end + 4;
  if (version == kRecordVersionRescore) {
    if (main_end >= r.size()) return corrupt("length mismatch");
    const uint8_t rs = static_cast<uint8_t>(r[main_end]);
    if (rs != static_cast<uint8_t>(TokenStorage::kFloat32) && rs != static_cast<uint8_t>(TokenStorage::kFloat16)) {
      return corrupt(fmt::format("unknown rescore storage {}", rs));
    }
    out->rescore = static_cast<TokenStorage>(rs);
    need += 1 + TokenBytes(*out->rescore, n, d);
  }
  if (need != r.size()) return corrupt("length mismatch");
  out->id = r.substr(18, id_len);
  out->meta = r.substr(18 + id_len, meta_len);
  out->n = n;
  out->storage = storage;
  if (out->rescore) out->rescore_bytes = r.substr(main_end + 1, TokenBytes(*out->rescore, n, d));
  if (want == TokenDecode::kAll && out->rescore) {
    out->rescore_tokens.resize(size_t{n} * d);
    ReadFloats(r.data() + main_end + 1, *out->rescore, &out->rescore_tokens);
  }
  if (want == TokenDecode::kBest && out->rescore) {
    out->tokens.resize(size_t{n} * d);
    ReadFloats(r.data() + main_end + 1, *out->rescore, &out->tokens);
  } else if (want != TokenDecode::kNone) {
    const char* p = r.data() + 18 + id_len + meta_len;
    out->tokens.resize(size_t{n} * d);
    if (storage == TokenStorage::kInt8) {
      out->codes.resize(size_t{n} * d);
      out->scales.resize(n);
      std::memcpy(out->codes.data(), p, out->codes.size());
      std::memcpy(out->scales.data(), p + out->codes.size(), size_t{n} * 4);
      for (float sc : out->scales) {
        if (!std::isfinite(sc) || sc < 0) return corrupt("invalid int8 scale");
      }
      int8::DequantizeRows(out->codes.data(), out->scales.data(), n, d, out->tokens.data());
    } else {
      ReadFloats(p, storage, &out->tokens);
    }
  }
  return absl::OkStatus();
}

}  // namespace

// ---- spec ----

std::string CollectionSpec::ToJson() const {
  nlohmann::json j;
  j["name"] = name;
  j["id"] = id;
  j["fde"] = {{"dim", fde.dim}, {"r_reps", fde.r_reps}, {"k_sim", fde.k_sim},
              {"d_proj", fde.d_proj}, {"d_final", fde.d_final}, {"seed", fde.seed}};
  j["index"] = {{"kind", static_cast<int>(index.kind)},
                {"hnsw_m", index.hnsw_m},
                {"hnsw_ef_construction", index.hnsw_ef_construction},
                {"hnsw_ef_search", index.hnsw_ef_search},
                {"ivf_nlist", index.ivf_nlist},
                {"pq_m", index.pq_m},
                {"pq_nbits", index.pq_nbits},
                {"ivf_nprobe", index.ivf_nprobe},
                {"ivf_train_threshold", index.ivf_train_threshold},
                {"refine_storage", static_cast<int>(index.refine)},
                {"hnsw_storage", static_cast<int>(index.hnsw_storage)}};
  j["token_storage"] = static_cast<int>(token_storage);
  if (rescore_storage) j["rescore_storage"] = static_cast<int>(*rescore_storage);
  j["normalize"] = normalize;
  if (!restored_from.empty()) j["restored_from"] = restored_from;
  if (kind == CollectionKindDomain::kJson) {
    j["kind"] = "json";
    j["mbat"] = mbat_config_json;
    j["id_field"] = id_field;
  }
  return j.dump();
}

absl::StatusOr<CollectionSpec> CollectionSpec::FromJson(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::DataLossError("collection spec is not valid JSON");
  try {
    CollectionSpec s;
    s.name = j.at("name").get<std::string>();
    s.id = j.at("id").get<uint64_t>();
    const auto& f = j.at("fde");
    s.fde.dim = f.at("dim");
    s.fde.r_reps = f.at("r_reps");
    s.fde.k_sim = f.at("k_sim");
    s.fde.d_proj = f.at("d_proj");
    s.fde.d_final = f.at("d_final");
    s.fde.seed = f.at("seed");
    const auto& x = j.at("index");
    s.index.kind = static_cast<IndexKind>(x.at("kind").get<int>());
    s.index.hnsw_m = x.at("hnsw_m");
    s.index.hnsw_ef_construction = x.at("hnsw_ef_construction");
    s.index.hnsw_ef_search = x.at("hnsw_ef_search");
    s.index.ivf_nlist = x.at("ivf_nlist");
    s.index.pq_m = x.at("pq_m");
    s.index.pq_nbits = x.at("pq_nbits");
    s.index.ivf_nprobe = x.at("ivf_nprobe");
    s.index.ivf_train_threshold = x.at("ivf_train_threshold");
    // Absent in specs written before refine storage existed.
    s.index.refine = static_cast<RefineStorage>(x.value("refine_storage", 0));
    // Absent in specs written before HNSW int8 storage: such HNSW collections were built and
    // tuned with float32 graph vectors and keep them across a restart (no silent change).
    s.index.hnsw_storage = x.contains("hnsw_storage") ? static_cast<HnswStorage>(x.at("hnsw_storage").get<int>())
                           : s.index.kind == IndexKind::kHnsw ? HnswStorage::kFloat32
                                                              : HnswStorage::kDefault;
    s.token_storage = static_cast<TokenStorage>(j.at("token_storage").get<int>());
    // Absent when the collection has no rescore storage (and in specs written before it).
    if (j.contains("rescore_storage")) s.rescore_storage = static_cast<TokenStorage>(j.at("rescore_storage").get<int>());
    s.normalize = j.at("normalize");
    s.restored_from = j.value("restored_from", std::string());
    if (j.value("kind", std::string("multi_vector")) == "json") {
      s.kind = CollectionKindDomain::kJson;
      s.mbat_config_json = j.at("mbat").get<std::string>();
      s.id_field = j.at("id_field").get<std::string>();
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(fmt::format("collection spec is malformed: {}", e.what()));
  }
}

// ---- keys ----

std::string Collection::SpecKey(std::string_view name) { return "C/" + std::string(name); }
std::string Collection::EncoderKey(uint64_t id) {
  std::string k = "E/";
  PutU64BE(&k, id);
  return k;
}
std::string Collection::DocPrefix(uint64_t id) {
  std::string k = "D/";
  PutU64BE(&k, id);
  return k;
}
std::string Collection::DocKey(std::string_view id) const { return DocPrefix(spec_.id) + std::string(id); }

// ---- lifecycle ----

Collection::Collection(CollectionSpec spec, std::unique_ptr<MuveraFdeEncoder> encoder,
                       std::unique_ptr<VectorIndex> index, Store* store)
    : spec_(std::move(spec)), encoder_(std::move(encoder)), store_(store), index_(std::move(index)) {}

absl::StatusOr<std::unique_ptr<Collection>> Collection::Create(const CollectionSpec& spec, Store* store,
                                                                bool sync) {
  auto encoder = MuveraFdeEncoder::Create(spec.fde);
  if (!encoder.ok()) return encoder.status();
  if (spec.rescore_storage) {
    auto rank = [](TokenStorage t) { return t == TokenStorage::kFloat32 ? 2 : t == TokenStorage::kFloat16 ? 1 : 0; };
    if (*spec.rescore_storage == TokenStorage::kInt8 || rank(*spec.rescore_storage) <= rank(spec.token_storage)) {
      return absl::InvalidArgumentError(
          "rescore_storage must be FLOAT16 or FLOAT32 and more precise than token_storage");
    }
  }
  CollectionSpec normalized = spec;
  if (absl::Status s = normalized.index.Normalize((*encoder)->output_dim()); !s.ok()) return s;
  auto index = CreateIndex(normalized.index, (*encoder)->output_dim());
  if (!index.ok()) return index.status();
  WriteBatch batch;
  batch.Put(SpecKey(spec.name), normalized.ToJson());
  batch.Put(EncoderKey(spec.id), (*encoder)->Serialize());
  if (absl::Status s = store->Write(batch, sync); !s.ok()) return s;
  return std::unique_ptr<Collection>(
      new Collection(normalized, std::move(encoder).value(), std::move(index).value(), store));
}

absl::StatusOr<std::unique_ptr<Collection>> Collection::Open(const CollectionSpec& spec, Store* store) {
  auto blob = store->Get(EncoderKey(spec.id));
  if (!blob.ok()) return blob.status();
  if (!blob->has_value()) {
    return absl::DataLossError(fmt::format("collection {:?}: encoder parameters are missing", spec.name));
  }
  auto encoder = MuveraFdeEncoder::Deserialize(**blob);
  if (!encoder.ok()) {
    return absl::Status(encoder.status().code(),
                        fmt::format("collection {:?}: {}", spec.name, encoder.status().message()));
  }
  if ((*encoder)->config().dim != spec.fde.dim || (*encoder)->config().seed != spec.fde.seed) {
    return absl::DataLossError(fmt::format("collection {:?}: encoder parameters do not match its spec", spec.name));
  }
  auto index = CreateIndex(spec.index, (*encoder)->output_dim());
  if (!index.ok()) return index.status();
  std::unique_ptr<Collection> c(
      new Collection(spec, std::move(encoder).value(), std::move(index).value(), store));
  if (absl::Status s = c->Rebuild(); !s.ok()) return s;
  return c;
}

absl::Status Collection::Rebuild() {
  std::unique_lock lock(mu_);
  const size_t dim = spec_.fde.dim;
  const size_t out_dim = encoder_->output_dim();
  struct Pending {
    std::string id;
    uint32_t n;
    std::vector<float> tokens;
    std::string metadata;
    std::vector<int8_t> codes;  // int8 storage
    std::vector<float> scales;
    std::vector<float> rescore_tokens;  // rescore storage: what the FDE encodes
  };
  std::vector<Pending> pending;
  absl::Status error;
  auto flush = [&]() -> absl::Status {
    const size_t m = pending.size();
    std::vector<float> fdes(m * out_dim);
    std::vector<std::vector<uint8_t>> packed(m);
    std::vector<absl::Status> statuses(m);
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 0; i < m; ++i) {
      const auto& fde_tokens = spec_.rescore_storage ? pending[i].rescore_tokens : pending[i].tokens;
      statuses[i] = encoder_->EncodeDocument({fde_tokens.data(), pending[i].n, dim}, fdes.data() + i * out_dim);
      Pack(pending[i].tokens, pending[i].codes.data(), pending[i].scales.data(), pending[i].n, &packed[i]);
    }
    std::vector<Label> labels(m);
    for (size_t i = 0; i < m; ++i) {
      if (!statuses[i].ok()) return statuses[i];
      labels[i] = static_cast<Label>(slots_.size());
      if (absl::Status s = metadata_.Add(labels[i], pending[i].metadata); !s.ok()) {
        return absl::DataLossError(fmt::format("document {:?}: metadata: {}", pending[i].id, s.message()));
      }
      labels_[pending[i].id] = labels[i];
      token_vectors_ += pending[i].n;
      packed_bytes_ += packed[i].size();
      slots_.push_back(Slot{std::move(pending[i].id), pending[i].n, std::move(packed[i])});
    }
    pending.clear();
    return index_->Add(fdes.data(), labels.data(), m);
  };
  const std::string prefix = DocPrefix(spec_.id);
  absl::Status scan = store_->Scan(prefix, "", [&](std::string_view key, std::string_view value) {
    DecodedRecord rec;
    error = DecodeRecord(key, value, static_cast<uint32_t>(dim), TokenDecode::kAll, &rec);
    if (error.ok() && rec.id != key.substr(prefix.size())) {
      error = absl::DataLossError(fmt::format("document record {:?} holds id {:?}", key, rec.id));
    }
    if (error.ok() && rec.storage != spec_.token_storage) {
      error = absl::DataLossError(fmt::format("document record {:?} has token storage {}, the collection {}", key,
                                              static_cast<int>(rec.storage), static_cast<int>(spec_.token_storage)));
    }
    if (error.ok() && rec.rescore != spec_.rescore_storage) {
      error = absl::DataLossError(fmt::format("document record {:?} has rescore storage {}, the collection {}", key,
                                              rec.rescore ? static_cast<int>(*rec.rescore) : -1,
                                              spec_.rescore_storage ? static_cast<int>(*spec_.rescore_storage) : -1));
    }
    if (!error.ok()) return false;
    pending.push_back({std::string(rec.id), rec.n, std::move(rec.tokens), std::string(rec.meta), std::move(rec.codes),
                       std::move(rec.scales), std::move(rec.rescore_tokens)});
    if (pending.size() >= 4096) error = flush();
    return error.ok();
  });
  if (!scan.ok()) return scan;
  if (!error.ok()) return error;
  if (!pending.empty()) {
    if (absl::Status s = flush(); !s.ok()) return s;
  }
  spdlog::info("collection {:?}: rebuilt {} documents, {} token vectors", spec_.name, labels_.size(),
               token_vectors_);
  return absl::OkStatus();
}

// ---- validation and preparation ----

absl::Status Collection::ValidateTokens(std::string_view what, uint32_t num_tokens, std::string_view bytes,
                                        size_t max_tokens, std::vector<float>* out) const {
  const size_t dim = spec_.fde.dim;
  if (num_tokens == 0) return absl::InvalidArgumentError(fmt::format("{}: num_tokens is 0 (a multi-vector needs at least one token)", what));
  if (num_tokens > max_tokens) {
    return absl::InvalidArgumentError(fmt::format("{}: num_tokens {} exceeds the limit of {}", what, num_tokens, max_tokens));
  }
  if (bytes.size() != size_t{num_tokens} * dim * 4) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: vectors has {} bytes, expected num_tokens {} x dim {} x 4 = {} (dimension mismatch?)", what,
        bytes.size(), num_tokens, dim, size_t{num_tokens} * dim * 4));
  }
  out->resize(size_t{num_tokens} * dim);
  std::memcpy(out->data(), bytes.data(), bytes.size());
  for (size_t t = 0; t < num_tokens; ++t) {
    float* row = out->data() + t * dim;
    double norm2 = 0;
    for (size_t j = 0; j < dim; ++j) {
      if (!std::isfinite(row[j])) {
        return absl::InvalidArgumentError(
            fmt::format("{}: token {} coordinate {} is {} (NaN/Inf are not allowed)", what, t, j, row[j]));
      }
      norm2 += double(row[j]) * row[j];
    }
    if (spec_.normalize) {
      if (!(norm2 > 1e-30) || !std::isfinite(norm2)) {
        return absl::InvalidArgumentError(fmt::format("{}: token {} has zero norm and cannot be normalized", what, t));
      }
      const float inv = static_cast<float>(1.0 / std::sqrt(norm2));
      for (size_t j = 0; j < dim; ++j) row[j] *= inv;
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::Prepare(const DocumentInput& in, Prepared* out, float* fde) const {
  if (in.id.empty()) return absl::InvalidArgumentError("document id is empty");
  if (in.id.size() > Limits::kMaxIdBytes) {
    return absl::InvalidArgumentError(fmt::format("document id of {} bytes exceeds the limit of {}", in.id.size(), Limits::kMaxIdBytes));
  }
  const std::string what = fmt::format("document {:?}", in.id.substr(0, 64));
  if (in.metadata_json.size() > Limits::kMaxMetadataBytes) {
    return absl::InvalidArgumentError(fmt::format("{}: metadata_json of {} bytes exceeds the limit of {}", what, in.metadata_json.size(), Limits::kMaxMetadataBytes));
  }
  if (!in.metadata_json.empty()) {
    if (absl::Status s = ValidateJsonObject(in.metadata_json, what + ": metadata_json"); !s.ok()) return s;
  }
  if (absl::Status s = ValidateTokens(what, in.num_tokens, in.vectors, Limits::kMaxTokensPerDocument, &out->tokens); !s.ok()) return s;
  out->id = std::string(in.id);
  out->num_tokens = in.num_tokens;
  out->metadata = in.metadata_json;
  if (spec_.rescore_storage) {
    // The precise copy, rounded as stored: the FDE encodes it (candidates as good as with
    // that storage in memory), the rescore scores it, and a restart rebuilds the same FDE.
    out->originals = out->tokens;
    if (*spec_.rescore_storage == TokenStorage::kFloat16) {
      for (float& v : out->originals) v = HalfToFloat(FloatToHalf(v));
    }
  }
  if (spec_.token_storage == TokenStorage::kFloat16) {
    // Score and encode what is stored, so a restart rebuilds exactly the same vectors.
    for (float& v : out->tokens) v = HalfToFloat(FloatToHalf(v));
  } else if (spec_.token_storage == TokenStorage::kInt8) {
    // Vector-wise absmax int8 per token; the FDE encodes the dequantized tokens, exactly
    // what a restart rebuilds from the stored codes.
    out->codes.resize(out->tokens.size());
    out->scales.resize(in.num_tokens);
    int8::QuantizeRows(out->tokens.data(), in.num_tokens, spec_.fde.dim, out->codes.data(), out->scales.data());
    int8::DequantizeRows(out->codes.data(), out->scales.data(), in.num_tokens, spec_.fde.dim, out->tokens.data());
  }
  const std::vector<float>& fde_tokens = spec_.rescore_storage ? out->originals : out->tokens;
  if (absl::Status s = encoder_->EncodeDocument({fde_tokens.data(), in.num_tokens, spec_.fde.dim}, fde); !s.ok()) return s;
  out->record = EncodeRecord(in.id, in.metadata_json, out->tokens, out->codes, out->scales, in.num_tokens,
                             spec_.fde.dim, spec_.token_storage, spec_.rescore_storage, out->originals);
  Pack(out->tokens, out->codes.data(), out->scales.data(), in.num_tokens, &out->packed);
  return absl::OkStatus();
}

void Collection::Pack(const std::vector<float>& tokens, const int8_t* codes, const float* scales, uint32_t n,
                      std::vector<uint8_t>* out) const {
  const size_t dim = spec_.fde.dim;
  const size_t cols = PackedColumns(n);
  if (spec_.token_storage == TokenStorage::kInt8) {
    out->resize(PackedI8Bytes(n, dim));
    PackTokensI8(codes, scales, n, dim, out->data());
  } else if (spec_.token_storage == TokenStorage::kFloat16) {
    out->resize(dim * cols * 2);
    PackTokensF16(tokens.data(), n, dim, reinterpret_cast<uint16_t*>(out->data()));
  } else {
    out->resize(dim * cols * 4);
    PackTokensF32(tokens.data(), n, dim, reinterpret_cast<float*>(out->data()));
  }
}

float Collection::Score(const ScoringQuery& q, const Slot& slot) const {
  const size_t cols = PackedColumns(slot.num_tokens);
  if (spec_.token_storage == TokenStorage::kInt8) return ChamferPackedI8(q.i8, slot.packed.data(), slot.num_tokens);
  if (spec_.token_storage == TokenStorage::kFloat16) {
    return ChamferPackedF16(q.tokens, q.n, reinterpret_cast<const uint16_t*>(slot.packed.data()), cols, spec_.fde.dim);
  }
  return ChamferPackedF32(q.tokens, q.n, reinterpret_cast<const float*>(slot.packed.data()), cols, spec_.fde.dim);
}

absl::Status Collection::Rescore(const ScoringQuery& q, size_t count, std::vector<Scored>* scored) const {
  const size_t dim = spec_.fde.dim;
  std::vector<std::string> keys(count);
  for (size_t i = 0; i < count; ++i) keys[i] = DocKey(*(*scored)[i].id);
  auto values = store_->MultiGet(keys);
  if (!values.ok()) return values.status();
  // Scored straight from the record's bytes: float16 copies by the float16 kernel (converted
  // in registers), float32 ones by the float32 kernel; both are exact float32 Chamfer over
  // the stored values. Each document is scored independently, so splitting them across the
  // cores (as the rerank does) cannot change a score.
  std::vector<absl::Status> errors(count);
  const int threads = count >= 64 ? BulkThreads() : 1;
#pragma omp parallel num_threads(threads)
  {
    std::vector<uint16_t> halves, packed16;
    std::vector<float> floats, packed32;
#pragma omp for schedule(static, 8)
    for (size_t i = 0; i < count; ++i) {
      if (!(*values)[i].has_value()) {
        errors[i] = absl::DataLossError(fmt::format("document record {:?} is indexed but missing from storage", keys[i]));
        continue;
      }
      DecodedRecord rec;
      errors[i] = DecodeRecord(keys[i], *(*values)[i], static_cast<uint32_t>(dim), TokenDecode::kNone, &rec);
      if (!errors[i].ok()) continue;
      if (!rec.rescore) {
        errors[i] = absl::DataLossError(fmt::format("document record {:?} has no rescore tokens", keys[i]));
        continue;
      }
      const size_t cols = PackedColumns(rec.n);
      if (*rec.rescore == TokenStorage::kFloat16) {
        halves.resize(size_t{rec.n} * dim);
        std::memcpy(halves.data(), rec.rescore_bytes.data(), halves.size() * 2);
        packed16.resize(cols * dim);
        PackHalvesF16(halves.data(), rec.n, dim, packed16.data());
        (*scored)[i].score = ChamferPackedF16(q.tokens, q.n, packed16.data(), cols, dim);
      } else {
        floats.resize(size_t{rec.n} * dim);
        std::memcpy(floats.data(), rec.rescore_bytes.data(), floats.size() * 4);
        packed32.resize(cols * dim);
        PackTokensF32(floats.data(), rec.n, dim, packed32.data());
        (*scored)[i].score = ChamferPackedF32(q.tokens, q.n, packed32.data(), cols, dim);
      }
    }
  }
  for (const absl::Status& e : errors) RETURN_IF_ERROR(e);
  std::sort(scored->begin(), scored->begin() + count, [](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : *a.id < *b.id;
  });
  return absl::OkStatus();
}

// ---- writes ----

absl::Status Collection::Upsert(const std::vector<DocumentInput>& docs, bool sync) {
  if (docs.empty()) return absl::InvalidArgumentError("documents is empty");
  if (docs.size() > Limits::kMaxDocumentsPerBatch) {
    return absl::ResourceExhaustedError(fmt::format("{} documents in one batch exceed the limit of {}", docs.size(), Limits::kMaxDocumentsPerBatch));
  }
  {
    std::unordered_set<std::string_view> seen;
    for (const auto& d : docs) {
      if (!seen.insert(d.id).second) {
        return absl::InvalidArgumentError(fmt::format("document id {:?} appears twice in one batch", d.id.substr(0, 64)));
      }
    }
  }
  const size_t n = docs.size();
  // Thread policy: bulk work (encoding, HNSW inserts inside FAISS) may use every core.
  omp_set_num_threads(BulkThreads());
  std::vector<Prepared> prepared(n);
  std::vector<absl::Status> statuses(n);
  // The batch's FDEs, contiguous: encoded in place and handed to the index in one call.
  const size_t out_dim = encoder_->output_dim();
  std::vector<float> fdes(n * out_dim);
  // Bulk work: OpenMP across documents for batches worth a team; small batches stay on
  // this gRPC thread.
#pragma omp parallel for schedule(dynamic, 4) if (n >= 16)
  for (size_t i = 0; i < n; ++i) {
    try {
      statuses[i] = Prepare(docs[i], &prepared[i], fdes.data() + i * out_dim);
    } catch (const std::bad_alloc&) {
      statuses[i] = absl::ResourceExhaustedError("out of memory preparing a document");
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (!statuses[i].ok()) {
      return absl::Status(statuses[i].code(), fmt::format("documents[{}]: {}", i, statuses[i].message()));
    }
  }
  // Encoding is the long part: a client that gave up meanwhile gets nothing written.
  RETURN_IF_ERROR(CheckRequestAlive("the storage write"));
  WriteBatch batch;
  for (auto& p : prepared) batch.Put(DocKey(p.id), std::move(p.record));

  std::unique_lock lock(mu_);
  if (absl::Status s = store_->Write(batch, sync); !s.ok()) return s;
  // Durable from here on. Swap into memory and the index.
  std::vector<Label> old_labels, new_labels;
  for (auto& p : prepared) {
    auto it = labels_.find(p.id);
    if (it != labels_.end()) {
      Slot& old = slots_[it->second];
      token_vectors_ -= old.num_tokens;
      packed_bytes_ -= old.packed.size();
      old_labels.push_back(it->second);
      metadata_.Remove(it->second);
      old = Slot{};
    }
    const Label label = static_cast<Label>(slots_.size());
    if (absl::Status s = metadata_.Add(label, p.metadata); !s.ok()) {
      // Unreachable: Prepare validated the metadata as a JSON object.
      spdlog::error("collection {:?}: metadata of {:?} not indexed: {}", spec_.name, p.id, s.ToString());
    }
    labels_[p.id] = label;
    new_labels.push_back(label);
    token_vectors_ += p.num_tokens;
    packed_bytes_ += p.packed.size();
    slots_.push_back(Slot{std::move(p.id), p.num_tokens, std::move(p.packed)});
  }
  ingested_total_ += n;
  if (absl::Status s = index_->Remove(old_labels.data(), old_labels.size()); !s.ok()) return s;
  if (absl::Status s = index_->Add(fdes.data(), new_labels.data(), new_labels.size()); !s.ok()) {
    spdlog::error("collection {:?}: index add failed after a durable write: {}", spec_.name, s.ToString());
    return s;
  }
  return index_->MaybeCompact();
}

absl::StatusOr<size_t> Collection::Delete(const std::vector<std::string>& ids, bool sync) {
  if (ids.size() > Limits::kMaxIdsPerRequest) {
    return absl::ResourceExhaustedError(fmt::format("{} ids exceed the limit of {}", ids.size(), Limits::kMaxIdsPerRequest));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty() || ids[i].size() > Limits::kMaxIdBytes) {
      return absl::InvalidArgumentError(fmt::format("ids[{}] is empty or longer than {} bytes", i, Limits::kMaxIdBytes));
    }
  }
  std::unique_lock lock(mu_);
  WriteBatch batch;
  std::vector<Label> dead;
  std::unordered_set<std::string_view> seen;
  for (const auto& id : ids) {
    auto it = labels_.find(id);
    if (it == labels_.end() || !seen.insert(id).second) continue;
    batch.Delete(DocKey(id));
    dead.push_back(it->second);
  }
  if (dead.empty()) return size_t{0};
  if (absl::Status s = store_->Write(batch, sync); !s.ok()) return s;
  for (Label l : dead) {
    Slot& slot = slots_[l];
    token_vectors_ -= slot.num_tokens;
    packed_bytes_ -= slot.packed.size();
    labels_.erase(slot.id);
    metadata_.Remove(l);
    slot = Slot{};
  }
  if (absl::Status s = index_->Remove(dead.data(), dead.size()); !s.ok()) return s;
  if (absl::Status s = index_->MaybeCompact(); !s.ok()) return s;
  return dead.size();
}

// ---- reads ----

std::string EncodePageToken(std::string_view last_id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string t;
  t.reserve(last_id.size() * 2);
  for (unsigned char c : last_id) t.push_back(kHex[c >> 4]), t.push_back(kHex[c & 15]);
  return t;
}

absl::StatusOr<std::string> DecodePageToken(std::string_view token) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (token.size() % 2 != 0 || token.size() > 2 * Limits::kMaxIdBytes) {
    return absl::InvalidArgumentError("page_token is not a token returned by a previous page");
  }
  std::string id;
  for (size_t i = 0; i < token.size(); i += 2) {
    const int hi = nibble(token[i]), lo = nibble(token[i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("page_token is not a token returned by a previous page");
    id.push_back(static_cast<char>(hi << 4 | lo));
  }
  return id;
}

absl::Status Collection::FilteredCandidates(const SearchQuery& query, const float* fde, IndexSearchParams* params,
                                            std::vector<std::vector<Neighbor>>* found, SearchStats* stats) const {
  if (query.filter == nullptr) return index_->Search(fde, 1, *params, found);
  const LabelBitmap allowed = metadata_.Evaluate(*query.filter, slots_.size());
  const size_t matches = allowed.count();
  stats->filter_matches = matches;
  found->assign(1, {});
  auto exhaustive = [&] {
    stats->filter_exhaustive = true;
    (*found)[0].clear();  // replaces a short index answer: each match once
    (*found)[0].reserve(matches);
    allowed.ForEach([&](size_t label) { (*found)[0].push_back({static_cast<Label>(label), 0.0f}); });
  };
  // Few enough matches to rerank them all: skip the index, the answer is exact.
  if (query.rerank && matches <= params->k) {
    exhaustive();
    return absl::OkStatus();
  }
  params->allowed = &allowed;
  if (absl::Status s = index_->Search(fde, 1, *params, found); !s.ok()) return s;
  const size_t want = std::min(params->k, matches);
  if ((*found)[0].size() >= want) return absl::OkStatus();
  // A graph or inverted-list search ran out of matching neighbours (very selective filter
  // against HNSW's beam or IVF's probed lists): widen it in proportion to the selectivity.
  const double widen = std::min(64.0, static_cast<double>(slots_.size()) / std::max<size_t>(matches, 1));
  params->ef_search = static_cast<uint32_t>(std::min(
      8192.0, widen * (query.ef_search ? query.ef_search : spec_.index.hnsw_ef_search)));
  params->nprobe = spec_.index.ivf_nlist;
  if (absl::Status s = index_->Search(fde, 1, *params, found); !s.ok()) return s;
  if ((*found)[0].size() >= want) return absl::OkStatus();
  // Still short: score every match exactly (bounded, so a request cannot run away).
  if (query.rerank && matches <= kMaxExhaustiveMatches) exhaustive();
  return absl::OkStatus();
}

absl::StatusOr<ScrollIds> PageIds(const std::map<std::string, Label, std::less<>>& labels, std::string_view page_token,
                                  size_t limit, const LabelBitmap* allowed) {
  if (limit == 0 || limit > Limits::kMaxScrollLimit) {
    return absl::InvalidArgumentError(fmt::format("limit {} is outside 1..{}", limit, Limits::kMaxScrollLimit));
  }
  auto after = DecodePageToken(page_token);
  if (!after.ok()) return after.status();
  auto matches = [&](Label l) { return allowed == nullptr || allowed->test(static_cast<size_t>(l)); };
  ScrollIds out;
  auto it = page_token.empty() ? labels.begin() : labels.upper_bound(*after);
  for (; it != labels.end() && out.ids.size() < limit; ++it) {
    if (matches(it->second)) out.ids.push_back(it->first);
  }
  for (; it != labels.end() && !out.ids.empty(); ++it) {
    if (matches(it->second)) {
      out.next_page_token = EncodePageToken(out.ids.back());
      break;
    }
  }
  return out;
}

absl::StatusOr<ScrollPage<StoredDocument>> Collection::Scroll(const ScrollQuery& query) const {
  std::shared_lock lock(mu_);
  std::optional<LabelBitmap> allowed;
  if (query.filter) allowed = metadata_.Evaluate(*query.filter, slots_.size());
  ASSIGN_OR_RETURN(ScrollIds page_ids, PageIds(labels_, query.page_token, query.limit, allowed ? &*allowed : nullptr));
  ScrollPage<StoredDocument> page;
  page.next_page_token = std::move(page_ids.next_page_token);
  std::vector<std::string> keys;
  for (const auto& id : page_ids.ids) keys.push_back(DocKey(id));
  auto values = store_->MultiGet(keys);
  if (!values.ok()) return values.status();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(*values)[i].has_value()) {
      return absl::DataLossError(fmt::format("document record {:?} is indexed but missing from storage", keys[i]));
    }
    DecodedRecord rec;
    if (absl::Status s = DecodeRecord(keys[i], *(*values)[i], spec_.fde.dim,
                                     query.include_vectors ? TokenDecode::kBest : TokenDecode::kNone, &rec); !s.ok()) return s;
    page.documents.push_back(StoredDocument{std::string(rec.id), rec.n, std::move(rec.tokens),
                                            query.include_metadata ? std::string(rec.meta) : std::string()});
  }
  return page;
}

size_t Collection::Count(const MetadataFilter* filter) const {
  std::shared_lock lock(mu_);
  if (filter == nullptr) return labels_.size();
  return metadata_.Evaluate(*filter, slots_.size()).count();
}

absl::StatusOr<std::vector<StoredDocument>> Collection::Get(const std::vector<std::string>& ids, bool include_vectors,
                                                            std::vector<std::string>* missing) const {
  if (ids.size() > Limits::kMaxIdsPerRequest) {
    return absl::ResourceExhaustedError(fmt::format("{} ids exceed the limit of {}", ids.size(), Limits::kMaxIdsPerRequest));
  }
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& id : ids) keys.push_back(DocKey(id));
  std::shared_lock lock(mu_);
  auto values = store_->MultiGet(keys);
  if (!values.ok()) return values.status();
  std::vector<StoredDocument> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!(*values)[i].has_value()) {
      missing->push_back(ids[i]);
      continue;
    }
    DecodedRecord rec;
    if (absl::Status s = DecodeRecord(keys[i], *(*values)[i], spec_.fde.dim,
                                     include_vectors ? TokenDecode::kBest : TokenDecode::kNone, &rec); !s.ok()) return s;
    out.push_back(StoredDocument{std::string(rec.id), rec.n, std::move(rec.tokens), std::string(rec.meta)});
  }
  return out;
}

absl::StatusOr<SearchResult> Collection::Search(const SearchQuery& query) const {
  const auto t0 = std::chrono::steady_clock::now();
  // Thread policy: a search runs on its gRPC thread alone. This sets the calling thread's
  // OpenMP team size, so FAISS does not start a team per query (concurrency comes from
  // gRPC's pool instead).
  omp_set_num_threads(1);
  if (query.k == 0 || query.k > Limits::kMaxK) {
    return absl::InvalidArgumentError(fmt::format("k {} is outside 1..{}", query.k, Limits::kMaxK));
  }
  if (!std::isfinite(query.merge_tau) || query.merge_tau < 0) {
    return absl::InvalidArgumentError(fmt::format("query_merge_tau {} must be 0 (off) or a positive number", query.merge_tau));
  }
  if (query.candidates > Limits::kMaxCandidates) {
    return absl::InvalidArgumentError(fmt::format("candidates {} exceeds the limit of {}", query.candidates, Limits::kMaxCandidates));
  }
  if (query.refine_candidates > 0) {
    const size_t rerank_candidates =
        query.rerank ? std::max(query.k, query.candidates ? query.candidates : DefaultCandidates(query.k)) : query.k;
    if (spec_.index.refine == RefineStorage::kNone) {
      return absl::InvalidArgumentError(
          "refine_candidates needs a collection with index.refine_storage (IVF_PQ with REFINE_FLOAT32 or REFINE_INT8)");
    }
    if (query.refine_candidates < rerank_candidates || query.refine_candidates > Limits::kMaxRefineCandidates) {
      return absl::InvalidArgumentError(fmt::format("refine_candidates {} is outside candidates ({})..{}",
                                                    query.refine_candidates, rerank_candidates,
                                                    Limits::kMaxRefineCandidates));
    }
  }
  const size_t reranked = query.rerank ? std::max(query.k, query.candidates ? query.candidates : DefaultCandidates(query.k)) : query.k;
  size_t rescore = 0;
  if (query.rescore_candidates > 0) {
    if (!spec_.rescore_storage) {
      return absl::InvalidArgumentError("rescore_candidates needs a collection with rescore_storage");
    }
    if (!query.rerank) return absl::InvalidArgumentError("rescore_candidates needs rerank on");
    const size_t hi = std::min(reranked, Limits::kMaxRescoreCandidates);
    if (query.rescore_candidates < query.k || query.rescore_candidates > hi) {
      return absl::InvalidArgumentError(
          fmt::format("rescore_candidates {} is outside k ({})..{}", query.rescore_candidates, query.k, hi));
    }
    rescore = query.rescore_candidates;
  } else if (spec_.rescore_storage && query.rerank) {
    rescore = std::min({std::max<size_t>(4 * query.k, 32), reranked, Limits::kMaxRescoreCandidates});
  }
  std::vector<float> q;
  const std::string_view bytes(reinterpret_cast<const char*>(query.tokens), query.num_tokens * spec_.fde.dim * 4);
  if (query.num_tokens > Limits::kMaxTokensPerQuery) {
    return absl::InvalidArgumentError(fmt::format("query: num_tokens {} exceeds the limit of {}", query.num_tokens, Limits::kMaxTokensPerQuery));
  }
  if (absl::Status s = ValidateTokens("query", static_cast<uint32_t>(query.num_tokens), bytes, Limits::kMaxTokensPerQuery, &q); !s.ok()) return s;
  std::vector<float> fde(encoder_->output_dim());
  if (absl::Status s = encoder_->EncodeQuery({q.data(), query.num_tokens, spec_.fde.dim}, fde.data()); !s.ok()) return s;
  // The rerank's view of the query: ball-carved when asked, quantized for int8 storage.
  CarvedQuery carved;
  ScoringQuery sq{q.data(), query.num_tokens, {}};
  if (query.rerank && query.merge_tau > 0) {
    carved = BallCarve(q.data(), query.num_tokens, spec_.fde.dim, query.merge_tau);
    sq.tokens = carved.tokens.data();
    sq.n = carved.clusters;
  }
  if (query.rerank && spec_.token_storage == TokenStorage::kInt8) sq.i8 = QuantizeQueryI8(sq.tokens, sq.n, spec_.fde.dim);
  SearchResult result;
  result.stats.rerank_query_tokens = query.rerank ? sq.n : 0;
  result.stats.encode_micros = MicrosSince(t0);
  RETURN_IF_ERROR(CheckRequestAlive("the index search"));

  const size_t candidates = reranked;
  std::shared_lock lock(mu_);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<std::vector<Neighbor>> found;
  IndexSearchParams params{.k = candidates, .ef_search = query.ef_search, .nprobe = query.nprobe};
  if (spec_.index.refine != RefineStorage::kNone) {
    params.refine_k = query.refine_candidates ? query.refine_candidates : std::min(4 * candidates, Limits::kMaxRefineCandidates);
  }
  if (absl::Status s = FilteredCandidates(query, fde.data(), &params, &found, &result.stats); !s.ok()) return s;
  result.stats.index_micros = MicrosSince(t1);
  result.stats.candidates = found[0].size();

  RETURN_IF_ERROR(CheckRequestAlive("the rerank"));
  const auto t2 = std::chrono::steady_clock::now();
  const size_t nc = found[0].size();
  std::vector<Scored> scored(nc);
  // Rerank is the one OpenMP region of a search: large candidate sets are split across the
  // cores (each candidate scored independently, so results do not depend on the split);
  // small ones stay on this thread, where a team would cost more than it saves.
  const int rerank_threads = query.rerank && nc >= 256 ? BulkThreads() : 1;
#pragma omp parallel for schedule(static, 32) num_threads(rerank_threads)
  for (size_t i = 0; i < nc; ++i) {
    const Neighbor& nb = found[0][i];
    const Slot& slot = slots_[nb.label];
    const float score = query.rerank ? Score(sq, slot) : nb.score;
    scored[i] = {score, nb.score, &slot.id};
  }
  const size_t k = std::min(query.k, scored.size());
  const size_t sorted = std::max(k, std::min(rescore, scored.size()));
  std::partial_sort(scored.begin(), scored.begin() + sorted, scored.end(), [](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : *a.id < *b.id;
  });
  result.stats.rerank_micros = query.rerank ? MicrosSince(t2) : 0;
  if (rescore > 0 && sorted > 0) {
    RETURN_IF_ERROR(CheckRequestAlive("the rescore"));
    const auto t3 = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(Rescore(sq, sorted, &scored));
    result.stats.rescored = sorted;
    result.stats.rescore_micros = MicrosSince(t3);
  }
  result.hits.resize(k);
  for (size_t i = 0; i < k; ++i) {
    result.hits[i].id = *scored[i].id;
    result.hits[i].score = scored[i].score;
    result.hits[i].fde_score = scored[i].fde_score;
  }
  if (query.include_metadata && k > 0) {
    std::vector<std::string> keys;
    for (const auto& h : result.hits) keys.push_back(DocKey(h.id));
    auto values = store_->MultiGet(keys);
    if (!values.ok()) return values.status();
    for (size_t i = 0; i < k; ++i) {
      if (!(*values)[i].has_value()) continue;
      DecodedRecord rec;
      if (absl::Status s = DecodeRecord(keys[i], *(*values)[i], spec_.fde.dim, TokenDecode::kNone, &rec); !s.ok()) return s;
      result.hits[i].metadata_json = std::string(rec.meta);
    }
  }
  result.stats.total_micros = MicrosSince(t0);
  return result;
}

CollectionStats Collection::Stats() const {
  std::shared_lock lock(mu_);
  CollectionStats s;
  s.documents = labels_.size();
  s.token_vectors = token_vectors_;
  s.bytes_on_disk = store_->ApproximateSize(DocPrefix(spec_.id));
  const IndexInfo info = index_->info();
  s.bytes_in_memory = packed_bytes_ + info.memory_bytes + slots_.size() * sizeof(Slot) + metadata_.memory_bytes();
  s.index_state = info.state;
  s.fde_dim = encoder_->output_dim();
  s.ingested_total = ingested_total_;
  return s;
}

}  // namespace chamferdb
