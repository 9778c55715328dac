#include "server/json_collection.h"

#include "server/admission.h"

#include <fmt/format.h>
#include <omp.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "common/absl_fmt.h"
#include "common/parallel_for.h"
#include "common/status_macros.h"

namespace chamferdb {
namespace {

constexpr uint8_t kJsonRecordVersion = 1;

uint32_t Crc(const char* p, size_t n) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

// Record: u8 version | f64 raw_norm | u32 id_len | id | json | u32 crc32.
std::string EncodeRecord(std::string_view id, std::string_view json, double raw_norm) {
  std::string r;
  r.push_back(static_cast<char>(kJsonRecordVersion));
  r.append(reinterpret_cast<const char*>(&raw_norm), 8);
  const uint32_t len = static_cast<uint32_t>(id.size());
  r.append(reinterpret_cast<const char*>(&len), 4);
  r.append(id);
  r.append(json);
  const uint32_t crc = Crc(r.data(), r.size());
  r.append(reinterpret_cast<const char*>(&crc), 4);
  return r;
}

absl::Status DecodeRecord(std::string_view key, std::string_view r, std::string_view* id, std::string_view* json,
                          double* raw_norm) {
  auto corrupt = [&](std::string_view why) {
    return absl::DataLossError(fmt::format("JSON record {:?} is corrupt: {}", key, why));
  };
  if (r.size() < 17) return corrupt("truncated");
  uint32_t crc, len;
  std::memcpy(&crc, r.data() + r.size() - 4, 4);
  if (Crc(r.data(), r.size() - 4) != crc) return corrupt("checksum mismatch");
  if (static_cast<uint8_t>(r[0]) != kJsonRecordVersion) return corrupt("unknown version");
  std::memcpy(raw_norm, r.data() + 1, 8);
  std::memcpy(&len, r.data() + 9, 4);
  if (13ull + len + 4 > r.size()) return corrupt("length mismatch");
  *id = r.substr(13, len);
  *json = r.substr(13 + len, r.size() - 4 - 13 - len);
  return absl::OkStatus();
}

// The id of a record without an explicit one: its top-level `field`, a string or an integer.
absl::StatusOr<std::string> IdFromField(std::string_view json, std::string_view field) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("record is not a JSON object");
  auto it = j.find(std::string(field));
  if (it == j.end()) return absl::InvalidArgumentError(fmt::format("record has no id and no {:?} field", field));
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return absl::InvalidArgumentError(fmt::format("id field {:?} is not a string or an integer", field));
}

}  // namespace

JsonCollection::JsonCollection(CollectionSpec spec, std::unique_ptr<MbatJsonEncoder> encoder,
                               std::unique_ptr<VectorIndex> index, Store* store)
    : spec_(std::move(spec)), encoder_(std::move(encoder)), store_(store), index_(std::move(index)) {}

std::string JsonCollection::Key(std::string_view id) const { return Collection::DocPrefix(spec_.id) + std::string(id); }

absl::StatusOr<std::unique_ptr<JsonCollection>> JsonCollection::Create(const CollectionSpec& spec, Store* store) {
  auto config = MbatConfigFromJson(spec.mbat_config_json.empty() ? "{}" : spec.mbat_config_json);
  if (!config.ok()) return absl::InvalidArgumentError(fmt::format("config.json.mbat_config_json: {}", config.status().message()));
  auto encoder = MbatJsonEncoder::Create(*config);
  if (!encoder.ok()) return encoder.status();
  CollectionSpec s = spec;
  s.mbat_config_json = MbatConfigToJson(*config);
  s.fde.dim = config->dim;
  if (absl::Status st = s.index.Normalize(config->dim); !st.ok()) return st;
  auto index = CreateIndex(s.index, config->dim);
  if (!index.ok()) return index.status();
  WriteBatch batch;
  batch.Put(Collection::SpecKey(s.name), s.ToJson());
  batch.Put(Collection::EncoderKey(s.id), (*encoder)->Serialize());
  if (absl::Status st = store->Write(batch, true); !st.ok()) return st;
  return std::unique_ptr<JsonCollection>(new JsonCollection(s, std::move(encoder).value(), std::move(index).value(), store));
}

absl::StatusOr<std::unique_ptr<JsonCollection>> JsonCollection::Open(const CollectionSpec& spec, Store* store) {
  auto blob = store->Get(Collection::EncoderKey(spec.id));
  if (!blob.ok()) return blob.status();
  if (!blob->has_value()) return absl::DataLossError(fmt::format("collection {:?}: encoder parameters are missing", spec.name));
  auto encoder = MbatJsonEncoder::Deserialize(**blob);
  if (!encoder.ok()) {
    return absl::Status(encoder.status().code(), fmt::format("collection {:?}: {}", spec.name, encoder.status().message()));
  }
  auto index = CreateIndex(spec.index, (*encoder)->dim());
  if (!index.ok()) return index.status();
  std::unique_ptr<JsonCollection> c(new JsonCollection(spec, std::move(encoder).value(), std::move(index).value(), store));
  if (absl::Status s = c->Rebuild(); !s.ok()) return s;
  return c;
}

absl::Status JsonCollection::Rebuild() {
  std::unique_lock lock(mu_);
  const size_t D = encoder_->dim();
  const std::string prefix = Collection::DocPrefix(spec_.id);
  std::vector<std::string> ids, jsons;
  std::vector<double> norms;
  absl::Status error;
  auto flush = [&]() -> absl::Status {
    const size_t m = ids.size();
    std::vector<std::string_view> views(jsons.begin(), jsons.end());
    std::vector<float> vecs(m * D);
    std::vector<MbatEncodeInfo> infos(m);
    if (absl::Status s = encoder_->EncodeBatch(views, vecs.data(), infos.data()); !s.ok()) {
      return absl::DataLossError(fmt::format("collection {:?}: stored record no longer encodes: {}", spec_.name, s.message()));
    }
    std::vector<Label> labels(m);
    for (size_t i = 0; i < m; ++i) {
      auto atoms = encoder_->CollectAtoms(jsons[i]);
      if (atoms.ok()) dictionary_.Add(*atoms);
      labels[i] = static_cast<Label>(slots_.size());
      if (absl::Status s = metadata_.Add(labels[i], jsons[i]); !s.ok()) {
        return absl::DataLossError(fmt::format("record {:?}: {}", ids[i], s.message()));
      }
      labels_[ids[i]] = labels[i];
      slots_.push_back(Slot{std::move(ids[i]), infos[i].raw_norm, std::vector<float>(vecs.begin() + i * D, vecs.begin() + (i + 1) * D)});
    }
    ids.clear();
    jsons.clear();
    return index_->Add(vecs.data(), labels.data(), m);
  };
  absl::Status scan = store_->Scan(prefix, "", [&](std::string_view key, std::string_view value) {
    std::string_view id, json;
    double norm;
    error = DecodeRecord(key, value, &id, &json, &norm);
    if (!error.ok()) return false;
    ids.emplace_back(id);
    jsons.emplace_back(json);
    if (ids.size() >= 4096) error = flush();
    return error.ok();
  });
  if (!scan.ok()) return scan;
  if (!error.ok()) return error;
  if (!ids.empty()) RETURN_IF_ERROR(flush());
  spdlog::info("JSON collection {:?}: rebuilt {} records", spec_.name, labels_.size());
  return absl::OkStatus();
}

absl::Status JsonCollection::Upsert(const std::vector<JsonRecordInput>& records, std::string_view id_field, bool sync) {
  if (records.empty()) return absl::InvalidArgumentError("records is empty");
  if (records.size() > Limits::kMaxDocumentsPerBatch) {
    return absl::ResourceExhaustedError(fmt::format("{} records in one batch exceed the limit of {}", records.size(), Limits::kMaxDocumentsPerBatch));
  }
  const std::string field(id_field.empty() ? spec_.id_field : id_field);
  const size_t n = records.size(), D = encoder_->dim();
  std::vector<std::string> ids(n);
  std::vector<std::string_view> views(n);
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < n; ++i) {
    if (!records[i].id.empty()) {
      ids[i] = std::string(records[i].id);
    } else {
      auto id = IdFromField(records[i].json, field);
      if (!id.ok()) return absl::InvalidArgumentError(fmt::format("records[{}]: {}", i, id.status().message()));
      ids[i] = *std::move(id);
    }
    if (ids[i].empty() || ids[i].size() > Limits::kMaxIdBytes) {
      return absl::InvalidArgumentError(fmt::format("records[{}]: id is empty or longer than {} bytes", i, Limits::kMaxIdBytes));
    }
    views[i] = records[i].json;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!seen.insert(ids[i]).second) return absl::InvalidArgumentError(fmt::format("records[{}]: id {:?} appears twice in one batch", i, ids[i]));
  }
  std::vector<float> vecs(n * D);
  std::vector<MbatEncodeInfo> infos(n);
  omp_set_num_threads(BulkThreads());
  if (absl::Status s = encoder_->EncodeBatch(views, vecs.data(), infos.data(), n >= 16 ? 0 : 1); !s.ok()) {
    return absl::Status(s.code(), fmt::format("records: {}", s.message()));
  }
  std::vector<std::vector<MbatPathAtom>> atoms(n);
  for (size_t i = 0; i < n; ++i) {
    auto a = encoder_->CollectAtoms(views[i]);
    if (!a.ok()) return absl::Status(a.status().code(), fmt::format("records[{}]: {}", i, a.status().message()));
    atoms[i] = *std::move(a);
  }
  RETURN_IF_ERROR(CheckRequestAlive("the storage write"));
  WriteBatch batch;
  for (size_t i = 0; i < n; ++i) batch.Put(Key(ids[i]), EncodeRecord(ids[i], views[i], infos[i].raw_norm));
  std::unique_lock lock(mu_);
  RETURN_IF_ERROR(store_->Write(batch, sync));
  std::vector<Label> old_labels, new_labels;
  for (size_t i = 0; i < n; ++i) {
    dictionary_.Add(atoms[i]);
    if (auto it = labels_.find(ids[i]); it != labels_.end()) {
      old_labels.push_back(it->second);
      metadata_.Remove(it->second);
      slots_[it->second] = Slot{};
    }
    const Label l = static_cast<Label>(slots_.size());
    if (absl::Status s = metadata_.Add(l, views[i]); !s.ok()) {
      // Unreachable: the encoder accepted the record as a JSON object.
      spdlog::error("collection {:?}: fields of {:?} not indexed: {}", spec_.name, ids[i], s.ToString());
    }
    labels_[ids[i]] = l;
    new_labels.push_back(l);
    slots_.push_back(Slot{ids[i], infos[i].raw_norm, std::vector<float>(vecs.begin() + i * D, vecs.begin() + (i + 1) * D)});
  }
  ingested_total_ += n;
  RETURN_IF_ERROR(index_->Remove(old_labels.data(), old_labels.size()));
  RETURN_IF_ERROR(index_->Add(vecs.data(), new_labels.data(), n));
  return index_->MaybeCompact();
}

absl::StatusOr<size_t> JsonCollection::Delete(const std::vector<std::string>& ids, bool sync) {
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
    batch.Delete(Key(id));
    dead.push_back(it->second);
  }
  if (dead.empty()) return size_t{0};
  RETURN_IF_ERROR(store_->Write(batch, sync));
  for (Label l : dead) {
    labels_.erase(slots_[l].id);
    metadata_.Remove(l);
    slots_[l] = Slot{};
  }
  RETURN_IF_ERROR(index_->Remove(dead.data(), dead.size()));
  RETURN_IF_ERROR(index_->MaybeCompact());
  return dead.size();
}

absl::StatusOr<std::vector<StoredRecord>> JsonCollection::Get(const std::vector<std::string>& ids,
                                                              std::vector<std::string>* missing) const {
  if (ids.size() > Limits::kMaxIdsPerRequest) {
    return absl::ResourceExhaustedError(fmt::format("{} ids exceed the limit of {}", ids.size(), Limits::kMaxIdsPerRequest));
  }
  std::vector<std::string> keys;
  for (const auto& id : ids) keys.push_back(Key(id));
  std::shared_lock lock(mu_);
  auto values = store_->MultiGet(keys);
  if (!values.ok()) return values.status();
  std::vector<StoredRecord> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!(*values)[i]) {
      missing->push_back(ids[i]);
      continue;
    }
    std::string_view id, json;
    double norm;
    RETURN_IF_ERROR(DecodeRecord(keys[i], *(*values)[i], &id, &json, &norm));
    out.push_back({std::string(id), std::string(json)});
  }
  return out;
}

absl::StatusOr<std::vector<JsonHitDomain>> JsonCollection::Search(const JsonSearchQuery& query) const {
  if (query.k == 0 || query.k > Limits::kMaxK) return absl::InvalidArgumentError(fmt::format("k {} is outside 1..{}", query.k, Limits::kMaxK));
  if (query.candidates > Limits::kMaxCandidates) {
    return absl::InvalidArgumentError(fmt::format("candidates {} exceeds the limit of {}", query.candidates, Limits::kMaxCandidates));
  }
  std::vector<float> q(encoder_->dim());
  RETURN_IF_ERROR(encoder_->EncodeQuery(query.json, query.containment ? MbatQueryMode::kContainment : MbatQueryMode::kCosine,
                                        q.data()));
  const size_t fetch = query.containment ? std::max(query.k, query.candidates ? query.candidates : DefaultCandidates(query.k)) : query.k;
  omp_set_num_threads(1);
  RETURN_IF_ERROR(CheckRequestAlive("the index search"));
  std::shared_lock lock(mu_);
  std::vector<std::vector<Neighbor>> found;
  IndexSearchParams params{.k = fetch, .ef_search = query.ef_search, .nprobe = query.nprobe};
  if (query.filter == nullptr) {
    RETURN_IF_ERROR(index_->Search(q.data(), 1, params, &found));
  } else {
    const LabelBitmap allowed = metadata_.Evaluate(*query.filter, slots_.size());
    const size_t matches = allowed.count();
    // Score every match directly (exact: the vectors are in memory) when there are few,
    // or when the index comes back short of them; else search the index inside the filter.
    auto exhaustive = [&] {
      found.assign(1, {});
      allowed.ForEach([&](size_t l) {
        const std::vector<float>& v = slots_[l].vec;
        double dot = 0;
        for (size_t j = 0; j < v.size(); ++j) dot += double(q[j]) * v[j];
        found[0].push_back({static_cast<Label>(l), static_cast<float>(dot)});
      });
    };
    if (matches <= fetch) {
      exhaustive();
    } else {
      params.allowed = &allowed;
      RETURN_IF_ERROR(index_->Search(q.data(), 1, params, &found));
      if (found[0].size() < fetch) exhaustive();
    }
  }
  std::vector<JsonHitDomain> hits;
  for (const Neighbor& nb : found[0]) {
    const Slot& slot = slots_[nb.label];
    hits.push_back({slot.id, query.containment ? MbatContainmentScore(nb.score, slot.raw_norm) : nb.score, ""});
  }
  std::stable_sort(hits.begin(), hits.end(), [](const JsonHitDomain& a, const JsonHitDomain& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  });
  if (hits.size() > query.k) hits.resize(query.k);
  if (query.include_record && !hits.empty()) {
    std::vector<std::string> keys;
    for (const auto& h : hits) keys.push_back(Key(h.id));
    auto values = store_->MultiGet(keys);
    if (!values.ok()) return values.status();
    for (size_t i = 0; i < hits.size(); ++i) {
      if (!(*values)[i]) continue;
      std::string_view id, json;
      double norm;
      RETURN_IF_ERROR(DecodeRecord(keys[i], *(*values)[i], &id, &json, &norm));
      hits[i].json = std::string(json);
    }
  }
  return hits;
}

absl::StatusOr<std::vector<MbatProbeHit>> JsonCollection::Probe(std::string_view id, std::string_view json,
                                                                std::string_view path, size_t top_n) const {
  std::vector<float> vec(encoder_->dim());
  if (!id.empty()) {
    std::shared_lock lock(mu_);
    auto it = labels_.find(std::string(id));
    if (it == labels_.end()) return absl::NotFoundError(fmt::format("record {:?} does not exist", id));
    vec = slots_[it->second].vec;
  } else {
    RETURN_IF_ERROR(encoder_->Encode(json, vec.data()));
  }
  return encoder_->Probe(vec.data(), path, dictionary_, top_n == 0 ? 5 : top_n);
}

absl::StatusOr<ScrollPage<StoredRecord>> JsonCollection::Scroll(const ScrollQuery& query) const {
  std::shared_lock lock(mu_);
  std::optional<LabelBitmap> allowed;
  if (query.filter) allowed = metadata_.Evaluate(*query.filter, slots_.size());
  ASSIGN_OR_RETURN(ScrollIds page_ids, PageIds(labels_, query.page_token, query.limit, allowed ? &*allowed : nullptr));
  ScrollPage<StoredRecord> page;
  page.next_page_token = std::move(page_ids.next_page_token);
  std::vector<std::string> keys;
  for (const auto& id : page_ids.ids) keys.push_back(Key(id));
  auto values = store_->MultiGet(keys);
  if (!values.ok()) return values.status();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(*values)[i]) return absl::DataLossError(fmt::format("record {:?} is indexed but missing from storage", keys[i]));
    std::string_view id, json;
    double norm;
    RETURN_IF_ERROR(DecodeRecord(keys[i], *(*values)[i], &id, &json, &norm));
    page.documents.push_back({std::string(id), query.include_metadata ? std::string(json) : std::string()});
  }
  return page;
}

size_t JsonCollection::Count(const MetadataFilter* filter) const {
  std::shared_lock lock(mu_);
  if (filter == nullptr) return labels_.size();
  return metadata_.Evaluate(*filter, slots_.size()).count();
}

CollectionStats JsonCollection::Stats() const {
  std::shared_lock lock(mu_);
  CollectionStats s;
  s.documents = labels_.size();
  s.bytes_on_disk = store_->ApproximateSize(Collection::DocPrefix(spec_.id));
  const IndexInfo info = index_->info();
  s.bytes_in_memory = info.memory_bytes + labels_.size() * (encoder_->dim() * 4 + sizeof(Slot)) + metadata_.memory_bytes();
  s.index_state = info.state;
  s.fde_dim = encoder_->dim();
  s.ingested_total = ingested_total_;
  return s;
}

}  // namespace chamferdb
