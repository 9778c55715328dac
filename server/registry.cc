#include "server/registry.h"

#include <fmt/format.h>

#include "common/absl_fmt.h"
#include <spdlog/spdlog.h>

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

absl::StatusOr<std::unique_ptr<Registry>> Registry::Open(Store* store, bool sync) {
  std::unique_ptr<Registry> r(new Registry(store, sync));
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
    Entry e;
    if (spec.kind == CollectionKindDomain::kJson) {
      auto c = JsonCollection::Open(spec, store);
      if (!c.ok()) return c.status();
      e.json = std::move(c).value();
    } else {
      auto c = Collection::Open(spec, store);
      if (!c.ok()) return c.status();
      e.multi_vector = std::move(c).value();
    }
    r->next_id_ = std::max(r->next_id_, spec.id + 1);
    r->collections_[spec.name] = std::move(e);
  }
  spdlog::info("opened {} collections", r->collections_.size());
  return r;
}

absl::StatusOr<Registry::Entry> Registry::Create(CollectionSpec spec) {
  if (absl::Status s = ValidateName(spec.name); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (collections_.count(spec.name)) {
    return absl::AlreadyExistsError(fmt::format("collection {:?} already exists", spec.name));
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
  auto it = collections_.find(name);
  if (it == collections_.end()) return absl::NotFoundError(fmt::format("collection {:?} does not exist", name));
  return it->second;
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
  if (it == collections_.end()) return absl::NotFoundError(fmt::format("collection {:?} does not exist", name));
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

}  // namespace chamferdb
