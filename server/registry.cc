#include "server/registry.h"

#include <fmt/format.h>

#include "common/absl_fmt.h"
#include <spdlog/spdlog.h>

#include "common/status_macros.h"

namespace chamferdb {

absl::Status Registry::ValidateName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("collection name is empty");
  if (name.size() > Limits::kMaxNameBytes) {
    return absl::InvalidArgumentError(fmt::format("collection name of {} bytes exceeds {}", name.size(), Limits::kMaxNameBytes));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(
          fmt::format("collection name {:?} may only contain letters, digits, '_', '-' and '.'", name));
    }
  }
  return absl::OkStatus();
}

std::string Registry::RestoreMarkerKey(uint64_t id) {
  std::string k = "R/";
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
  return k;
}

absl::StatusOr<Registry::Entry> Registry::OpenEntry(const CollectionSpec& spec) const {
  Entry e;
  if (spec.kind == CollectionKindDomain::kJson) {
    ASSIGN_OR_RETURN(e.json, JsonCollection::Open(spec, store_));
  } else {
    ASSIGN_OR_RETURN(e.multi_vector, Collection::Open(spec, store_));
  }
  return e;
}

absl::StatusOr<std::unique_ptr<Registry>> Registry::Open(Store* store, bool sync) {
  std::unique_ptr<Registry> r(new Registry(store, sync));
  // Restores that did not finish (crash part way): remove what they staged.
  std::vector<std::string> markers;
  RETURN_IF_ERROR(store->Scan("R/", "", [&](std::string_view key, std::string_view) {
    markers.emplace_back(key);
    return true;
  }));
  for (const auto& marker : markers) {
    if (marker.size() != 10) return absl::DataLossError(fmt::format("restore marker {:?} is malformed", marker));
    uint64_t id = 0;
    for (size_t i = 2; i < 10; ++i) id = id << 8 | static_cast<unsigned char>(marker[i]);
    WriteBatch cleanup;
    const std::string prefix = Collection::DocPrefix(id);
    cleanup.DeleteRange(prefix, PrefixEnd(prefix));
    cleanup.Delete(Collection::EncoderKey(id));
    cleanup.Delete(marker);
    RETURN_IF_ERROR(store->Write(cleanup, /*sync=*/true));
    spdlog::warn("removed the remains of an unfinished snapshot restore (collection id {})", id);
  }
  std::vector<CollectionSpec> specs;
  absl::Status error;
  absl::Status scan = store->Scan("C/", "", [&](std::string_view key, std::string_view value) {
    auto spec = CollectionSpec::FromJson(value);
    if (!spec.ok()) {
      error = absl::DataLossError(fmt::format("{:?}: {}", key, spec.status().message()));
      return false;
    }
    specs.push_back(*std::move(spec));
    return true;
  });
  if (!scan.ok()) return scan;
  if (!error.ok()) return error;
  std::lock_guard lock(r->mu_);
  for (const auto& spec : specs) {
    ASSIGN_OR_RETURN(Entry e, r->OpenEntry(spec));
    r->next_id_ = std::max(r->next_id_, spec.id + 1);
    r->collections_[spec.name] = std::move(e);
  }
  RETURN_IF_ERROR(store->Scan("A/", "", [&](std::string_view key, std::string_view value) {
    r->aliases_[std::string(key.substr(2))] = std::string(value);
    return true;
  }));
  for (const auto& [alias, target] : r->aliases_) {
    if (!r->collections_.count(target)) {
      return absl::DataLossError(fmt::format("alias {:?} points at {:?}, which does not exist", alias, target));
    }
  }
  spdlog::info("opened {} collections, {} aliases", r->collections_.size(), r->aliases_.size());
  return r;
}

const Registry::Entry* Registry::Resolve(std::string_view name) const {
  if (auto it = collections_.find(name); it != collections_.end()) return &it->second;
  if (auto a = aliases_.find(name); a != aliases_.end()) {
    if (auto it = collections_.find(a->second); it != collections_.end()) return &it->second;
  }
  return nullptr;
}

absl::StatusOr<Registry::Entry> Registry::Create(CollectionSpec spec) {
  if (absl::Status s = ValidateName(spec.name); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (collections_.count(spec.name) || restoring_.count(spec.name)) {
    return absl::AlreadyExistsError(fmt::format("collection {:?} already exists", spec.name));
  }
  if (aliases_.count(spec.name)) {
    return absl::AlreadyExistsError(fmt::format("{:?} is an alias; a collection cannot take its name", spec.name));
  }
  spec.id = next_id_;
  Entry e;
  if (spec.kind == CollectionKindDomain::kJson) {
    auto c = JsonCollection::Create(spec, store_);
    if (!c.ok()) return c.status();
    e.json = std::move(c).value();
  } else {
    auto c = Collection::Create(spec, store_, /*sync=*/true);
    if (!c.ok()) return c.status();
    e.multi_vector = std::move(c).value();
  }
  ++next_id_;
  collections_[spec.name] = e;
  spdlog::info("created {} collection {:?} (vector dim {})", e.json ? "JSON" : "multi-vector", spec.name,
               e.Stats().fde_dim);
  return e;
}

absl::StatusOr<Registry::Entry> Registry::GetEntry(std::string_view name) const {
  std::lock_guard lock(mu_);
  const Entry* e = Resolve(name);
  if (e == nullptr) return absl::NotFoundError(fmt::format("collection {:?} does not exist", name));
  return *e;
}

absl::StatusOr<CollectionSpec> Registry::SpecOf(std::string_view name) const {
  ASSIGN_OR_RETURN(Entry e, GetEntry(name));
  return e.spec();
}

absl::StatusOr<std::shared_ptr<JsonCollection>> Registry::GetJson(std::string_view name) const {
  auto e = GetEntry(name);
  if (!e.ok()) return e.status();
  if (!e->json) {
    return absl::FailedPreconditionError(
        fmt::format("collection {:?} holds multi-vector documents; use the Documents and Search services", name));
  }
  return e->json;
}

absl::StatusOr<std::shared_ptr<Collection>> Registry::Get(std::string_view name) const {
  auto e = GetEntry(name);
  if (!e.ok()) return e.status();
  if (!e->multi_vector) {
    return absl::FailedPreconditionError(
        fmt::format("collection {:?} holds JSON records; use the JsonRecords service", name));
  }
  return e->multi_vector;
}

std::vector<Registry::Entry> Registry::List() const {
  std::lock_guard lock(mu_);
  std::vector<Entry> out;
  for (const auto& [name, e] : collections_) out.push_back(e);
  return out;
}

absl::Status Registry::Drop(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    if (aliases_.count(name)) {
      return absl::InvalidArgumentError(fmt::format("{:?} is an alias; drop the collection by its name", name));
    }
    return absl::NotFoundError(fmt::format("collection {:?} does not exist", name));
  }
  std::string pointing;
  for (const auto& [alias, target] : aliases_) {
    if (target == name) pointing += (pointing.empty() ? "" : ", ") + fmt::format("{:?}", alias);
  }
  if (!pointing.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("collection {:?} cannot be dropped while aliases point at it: {}", name, pointing));
  }
  const uint64_t id = it->second.spec().id;
  WriteBatch batch;
  batch.Delete(Collection::SpecKey(name));
  batch.Delete(Collection::EncoderKey(id));
  const std::string prefix = Collection::DocPrefix(id);
  batch.DeleteRange(prefix, PrefixEnd(prefix));
  if (absl::Status s = store_->Write(batch, /*sync=*/true); !s.ok()) return s;
  collections_.erase(it);
  spdlog::info("dropped collection {:?}", name);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Registry::SetAlias(std::string_view alias, std::string_view collection) {
  if (absl::Status s = ValidateName(alias); !s.ok()) return absl::InvalidArgumentError(fmt::format("alias: {}", s.message()));
  std::lock_guard lock(mu_);
  if (collections_.count(alias)) {
    return absl::InvalidArgumentError(fmt::format("alias {:?} is the name of a collection", alias));
  }
  if (!collections_.count(collection)) {
    if (aliases_.count(collection)) {
      return absl::InvalidArgumentError(fmt::format("{:?} is an alias; an alias must point at a collection's name", collection));
    }
    return absl::NotFoundError(fmt::format("collection {:?} does not exist", collection));
  }
  WriteBatch batch;
  batch.Put(AliasKey(alias), std::string(collection));
  RETURN_IF_ERROR(store_->Write(batch, /*sync=*/true));
  std::string previous;
  auto [it, inserted] = aliases_.try_emplace(std::string(alias), collection);
  if (!inserted) previous = std::exchange(it->second, std::string(collection));
  spdlog::info("alias {:?} -> {:?}{}", alias, collection, previous.empty() ? "" : fmt::format(" (was {:?})", previous));
  return previous;
}

absl::Status Registry::DeleteAlias(std::string_view alias) {
  std::lock_guard lock(mu_);
  auto it = aliases_.find(alias);
  if (it == aliases_.end()) return absl::NotFoundError(fmt::format("alias {:?} does not exist", alias));
  WriteBatch batch;
  batch.Delete(AliasKey(alias));
  RETURN_IF_ERROR(store_->Write(batch, /*sync=*/true));
  aliases_.erase(it);
  return absl::OkStatus();
}

std::vector<std::pair<std::string, std::string>> Registry::ListAliases(std::string_view collection) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [alias, target] : aliases_) {
    if (collection.empty() || target == collection) out.emplace_back(alias, target);
  }
  return out;
}

std::vector<std::string> Registry::AliasesOf(std::string_view collection) const {
  std::vector<std::string> out;
  for (auto& [alias, target] : ListAliases(collection)) out.push_back(std::move(alias));
  return out;
}

absl::StatusOr<Registry::Entry> Registry::Restore(const std::string& path, std::string_view name) {
  ASSIGN_OR_RETURN(SnapshotManifest manifest, ReadSnapshotManifest(path));
  CollectionSpec spec = manifest.spec;
  spec.name = name.empty() ? manifest.info.collection : std::string(name);
  spec.restored_from = manifest.info.uuid;
  RETURN_IF_ERROR(ValidateName(spec.name));
  {
    std::lock_guard lock(mu_);
    if (collections_.count(spec.name) || restoring_.count(spec.name) || aliases_.count(spec.name)) {
      return absl::AlreadyExistsError(fmt::format("collection {:?} already exists", spec.name));
    }
    spec.id = next_id_++;
    restoring_.insert(spec.name);
  }
  // Stage: marker first, then the records in bounded batches, then (atomically) the spec
  // with the marker's removal. Until that last write the collection does not exist.
  const std::string marker = RestoreMarkerKey(spec.id);
  const std::string prefix = Collection::DocPrefix(spec.id);
  auto staged = [&]() -> absl::Status {
    WriteBatch begin;
    begin.Put(marker, spec.name);
    RETURN_IF_ERROR(store_->Write(begin, /*sync=*/true));
    WriteBatch batch;
    bool saw_encoder = false;
    RETURN_IF_ERROR(ReadSnapshotRecords(manifest, [&](std::string_view key, std::string_view value) -> absl::Status {
      if (key == "E") {
        batch.Put(Collection::EncoderKey(spec.id), std::string(value));
        saw_encoder = true;
      } else if (key.size() > 1 && key[0] == 'D') {
        batch.Put(prefix + std::string(key.substr(1)), std::string(value));
      } else {
        return absl::DataLossError(fmt::format("snapshot {:?} holds an unknown key {:?}", path, key.substr(0, 32)));
      }
      if (batch.bytes() >= (16u << 20)) {
        RETURN_IF_ERROR(store_->Write(batch, /*sync=*/false));
        batch = WriteBatch();
      }
      return absl::OkStatus();
    }));
    if (!saw_encoder) return absl::DataLossError(fmt::format("snapshot {:?} holds no encoder parameters", path));
    if (!batch.empty()) RETURN_IF_ERROR(store_->Write(batch, /*sync=*/false));
    return absl::OkStatus();
  };
  auto cleanup = [&] {
    WriteBatch undo;
    undo.DeleteRange(prefix, PrefixEnd(prefix));
    undo.Delete(Collection::EncoderKey(spec.id));
    undo.Delete(marker);
    if (absl::Status s = store_->Write(undo, /*sync=*/true); !s.ok()) {
      spdlog::error("restore of {:?}: cleanup failed ({}); the next start removes the remains", spec.name, s.ToString());
    }
    std::lock_guard lock(mu_);
    restoring_.erase(spec.name);
  };
  if (absl::Status s = staged(); !s.ok()) {
    cleanup();
    return s;
  }
  auto entry = OpenEntry(spec);  // rebuilds the index from the staged documents
  if (!entry.ok()) {
    cleanup();
    return entry.status();
  }
  WriteBatch commit;
  commit.Put(Collection::SpecKey(spec.name), spec.ToJson());
  commit.Delete(marker);
  if (absl::Status s = store_->Write(commit, /*sync=*/true); !s.ok()) {
    cleanup();
    return s;
  }
  std::lock_guard lock(mu_);
  restoring_.erase(spec.name);
  collections_[spec.name] = *entry;
  spdlog::info("restored collection {:?} from snapshot {:?} ({} documents)", spec.name, manifest.info.name,
               manifest.info.documents);
  return *entry;
}

}  // namespace chamferdb
