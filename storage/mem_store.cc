#include <map>
#include <mutex>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "storage/store.h"

namespace chamferdb {
namespace {

class MemStore final : public Store {
 public:
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) const override {
    std::shared_lock lock(mu_);
    auto it = data_.find(std::string(key));
    if (it == data_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) const override {
    std::shared_lock lock(mu_);
    std::vector<std::optional<std::string>> out(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = data_.find(keys[i]);
      if (it != data_.end()) out[i] = it->second;
    }
    return out;
  }

  absl::Status Write(const WriteBatch& batch, bool sync) override {
    std::unique_lock lock(mu_);
    for (const auto& op : batch.ops()) {
      switch (op.kind) {
        case WriteBatch::OpKind::kPut: data_[op.key] = op.value; break;
        case WriteBatch::OpKind::kDelete: data_.erase(op.key); break;
        case WriteBatch::OpKind::kDeleteRange:
          data_.erase(data_.lower_bound(op.key), data_.lower_bound(op.value));
          break;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Scan(std::string_view prefix, std::string_view start,
                    const std::function<bool(std::string_view, std::string_view)>& fn)
      const override {
    // Snapshot semantics: copy the range first, then call fn without the lock.
    std::vector<std::pair<std::string, std::string>> rows;
    {
      std::shared_lock lock(mu_);
      const std::string first = std::max(std::string(prefix), std::string(start));
      for (auto it = data_.lower_bound(first);
           it != data_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
        rows.emplace_back(it->first, it->second);
      }
    }
    for (const auto& [k, v] : rows) {
      if (!fn(k, v)) break;
    }
    return absl::OkStatus();
  }

  uint64_t ApproximateSize(std::string_view prefix) const override {
    std::shared_lock lock(mu_);
    uint64_t size = 0;
    for (auto it = data_.lower_bound(std::string(prefix));
         it != data_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
      size += it->first.size() + it->second.size();
    }
    return size;
  }

  absl::Status Flush() override { return absl::OkStatus(); }

 private:
  mutable std::shared_mutex mu_;
  std::map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Store> NewMemStore() { return std::make_unique<MemStore>(); }

}  // namespace chamferdb
