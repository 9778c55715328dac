#include "cli/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace chamferdb::cli {

using nlohmann::json;

constexpr const char* kFormat = "chamferdb-ingest-checkpoint";

void RangeSet::AddRange(uint64_t begin, uint64_t end) {
  if (begin >= end) return;
  // Merge with every range that overlaps or touches [begin, end).
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= begin) {
      begin = prev->first;
      end = std::max(end, prev->second);
      it = ranges_.erase(prev);
    }
  }
  while (it != ranges_.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(begin, end);
}

bool RangeSet::Contains(uint64_t position) const {
  auto it = ranges_.upper_bound(position);
  if (it == ranges_.begin()) return false;
  return std::prev(it)->second > position;
}

uint64_t RangeSet::Count() const {
  uint64_t n = 0;
  for (const auto& [b, e] : ranges_) n += e - b;
  return n;
}

absl::StatusOr<Checkpoint> Checkpoint::Load(const std::string& path, const std::string& collection) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("{}: no checkpoint", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&](const std::string& why) {
    return absl::DataLossError(fmt::format("{}: checkpoint is unreadable ({}); delete it to start over", path, why));
  };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return corrupt("not a JSON object");
  if (j.value("format", "") != kFormat || j.value("version", 0) != 1) return corrupt("unknown format or version");
  if (!j.contains("collection") || !j["collection"].is_string()) return corrupt("no collection");
  if (j["collection"].get<std::string>() != collection) {
    return absl::FailedPreconditionError(fmt::format("{}: checkpoint belongs to collection {:?}, not {:?}", path,
                                                     j["collection"].get<std::string>(), collection));
  }
  Checkpoint cp(path, collection);
  if (!j.contains("sources") || !j["sources"].is_object()) return corrupt("no sources");
  for (const auto& [key, s] : j["sources"].items()) {
    if (!s.is_object() || !s.contains("fingerprint") || !s["fingerprint"].is_string() || !s.contains("done") ||
        !s["done"].is_array() || !s.contains("rejected") || !s["rejected"].is_number_unsigned()) {
      return corrupt(fmt::format("bad entry for {}", key));
    }
    Source& src = cp.sources_[key];
    src.fingerprint = s["fingerprint"].get<std::string>();
    src.rejected = s["rejected"].get<uint64_t>();
    for (const json& r : s["done"]) {
      if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() || !r[1].is_number_unsigned() ||
          r[0].get<uint64_t>() >= r[1].get<uint64_t>()) {
        return corrupt(fmt::format("bad range for {}", key));
      }
      src.done.AddRange(r[0].get<uint64_t>(), r[1].get<uint64_t>());
    }
  }
  return cp;
}

absl::StatusOr<Checkpoint::Source*> Checkpoint::Attach(const std::string& key, const std::string& fingerprint) {
  auto [it, inserted] = sources_.try_emplace(key);
  if (inserted) {
    it->second.fingerprint = fingerprint;
  } else if (it->second.fingerprint != fingerprint) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: {} changed since the checkpoint was written ({} then, {} now); delete the checkpoint or run without "
        "--resume",
        path_, key, it->second.fingerprint, fingerprint));
  }
  return &it->second;
}

absl::Status Checkpoint::Save() const {
  json sources = json::object();
  for (const auto& [key, s] : sources_) {
    json done = json::array();
    for (const auto& [b, e] : s.done.ranges()) done.push_back({b, e});
    sources[key] = {{"fingerprint", s.fingerprint}, {"done", std::move(done)}, {"rejected", s.rejected}};
  }
  const json j = {{"format", kFormat}, {"version", 1}, {"collection", collection_}, {"sources", std::move(sources)}};
  const std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  const std::string tmp = path_ + ".tmp";
  auto fail = [&](const std::string& what) {
    return absl::UnavailableError(fmt::format("{}: cannot {} checkpoint: {}", tmp, what, std::strerror(errno)));
  };
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("create");
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return fail("write");
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    close(fd);
    return fail("fsync");
  }
  if (close(fd) != 0) return fail("close");
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) return fail("rename");
  return absl::OkStatus();
}

}  // namespace chamferdb::cli
