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
    auto c = Collection::Open(spec, store);
    if (!c.ok()) return c.status();
    r->next_id_ = std::max(r->next_id_, spec.id + 1);
    r->collections_[spec.name] = std::move(c).value();
  }
  spdlog::info("opened {} collections", r->collections_.size());
  return r;
}

absl::StatusOr<std::shared_ptr<Collection>> Registry::Create(CollectionSpec spec) {
  if (absl::Status s = ValidateName(spec.name); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (collections_.count(spec.name)) {
    return absl::AlreadyExistsError(fmt::format("collection {:?} already exists", spec.name));
  }
  spec.id = next_id_;
  auto c = Collection::Create(spec, store_, /*sync=*/true);
  if (!c.ok()) return c.status();
  ++next_id_;
  std::shared_ptr<Collection> shared = std::move(c).value();
  collections_[spec.name] = shared;
  spdlog::info("created collection {:?} (dim {}, fde dim {})", spec.name, spec.fde.dim,
               shared->Stats().fde_dim);
  return shared;
}

absl::StatusOr<std::shared_ptr<Collection>> Registry::Get(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) return absl::NotFoundError(fmt::format("collection {:?} does not exist", name));
  return it->second;
}

std::vector<std::shared_ptr<Collection>> Registry::List() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Collection>> out;
  for (const auto& [name, c] : collections_) out.push_back(c);
  return out;
}

absl::Status Registry::Drop(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) return absl::NotFoundError(fmt::format("collection {:?} does not exist", name));
  const uint64_t id = it->second->spec().id;
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
