#include "server/snapshot.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/absl_fmt.h"
#include "common/rng.h"
#include "common/status_macros.h"

namespace chamferdb {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "CDBSNAP1";
constexpr size_t kMagicLen = 8;
constexpr int kFormatVersion = 1;
constexpr char kDataFile[] = "data.cdbsnap";
constexpr char kManifestFile[] = "manifest.json";

uint32_t Crc(uint32_t crc, const void* p, size_t n) {
  return static_cast<uint32_t>(crc32(crc, static_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

std::string NowRfc3339(std::string* compact) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  *compact = buf;
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A file written with stdio and fsynced on Close.
class SyncedFile {
 public:
  absl::Status Open(const std::string& path) {
    path_ = path;
    f_ = std::fopen(path.c_str(), "wb");
    if (f_ == nullptr) return absl::UnavailableError(fmt::format("cannot create {:?}: {}", path, std::strerror(errno)));
    return absl::OkStatus();
  }
  absl::Status Write(const void* p, size_t n) {
    if (n > 0 && std::fwrite(p, 1, n, f_) != n) {
      return absl::ResourceExhaustedError(fmt::format("writing {:?} failed: {}", path_, std::strerror(errno)));
    }
    return absl::OkStatus();
  }
  absl::Status Close() {
    bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
    const int err = errno;
    ok = std::fclose(f_) == 0 && ok;
    f_ = nullptr;
    if (!ok) return absl::ResourceExhaustedError(fmt::format("writing {:?} failed: {}", path_, std::strerror(err)));
    return absl::OkStatus();
  }
  ~SyncedFile() {
    if (f_) std::fclose(f_);
  }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

absl::Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return absl::UnavailableError(fmt::format("cannot open {:?}: {}", dir, std::strerror(errno)));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::UnavailableError(fmt::format("fsync {:?} failed: {}", dir, std::strerror(errno)));
  return absl::OkStatus();
}

bool ValidSnapshotName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return name.find("..") == std::string_view::npos && !name.ends_with(".tmp");
}

}  // namespace

absl::StatusOr<SnapshotManifest> ReadSnapshotManifest(const std::string& path) {
  const std::string file = (fs::path(path) / kManifestFile).string();
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("snapshot {:?} has no {} (not a snapshot directory?)", path, kManifestFile));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  auto corrupt = [&](std::string_view why) {
    return absl::DataLossError(fmt::format("snapshot file {:?} is damaged: {}", file, why));
  };
  const size_t nl = text.rfind('\n', text.size() >= 2 ? text.size() - 2 : 0);
  if (nl == std::string::npos) return corrupt("no checksum line");
  const std::string body = text.substr(0, nl);
  std::string crc_line = text.substr(nl + 1);
  while (!crc_line.empty() && (crc_line.back() == '\n' || crc_line.back() == '\r')) crc_line.pop_back();
  if (crc_line != fmt::format("{:08x}", Crc(0, body.data(), body.size()))) return corrupt("checksum mismatch");
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("not JSON");
  SnapshotManifest m;
  try {
    if (j.at("format").get<int>() != kFormatVersion) {
      return absl::FailedPreconditionError(
          fmt::format("snapshot {:?} has format {}; this server reads format {}", path, j.at("format").get<int>(), kFormatVersion));
    }
    m.info.name = j.at("name").get<std::string>();
    m.info.collection = j.at("collection").get<std::string>();
    m.info.created_at = j.at("created_at").get<std::string>();
    m.info.uuid = j.at("uuid").get<std::string>();
    m.info.documents = j.at("documents").get<uint64_t>();
    m.records = j.at("records").get<uint64_t>();
    m.data_bytes = j.at("data_bytes").get<uint64_t>();
    m.data_crc = j.at("data_crc").get<uint32_t>();
    auto spec = CollectionSpec::FromJson(j.at("spec").get<std::string>());
    if (!spec.ok()) return corrupt(std::string(spec.status().message()));
    m.spec = *std::move(spec);
  } catch (const nlohmann::json::exception& e) {
    return corrupt(e.what());
  }
  m.info.path = path;
  m.info.size_bytes = m.data_bytes + text.size();
  return m;
}

absl::Status ReadSnapshotRecords(const SnapshotManifest& manifest,
                                 const std::function<absl::Status(std::string_view, std::string_view)>& fn) {
  const std::string file = (fs::path(manifest.info.path) / kDataFile).string();
  auto corrupt = [&](std::string_view why) {
    return absl::DataLossError(fmt::format("snapshot file {:?} is damaged: {}", file, why));
  };
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec) return absl::DataLossError(fmt::format("snapshot file {:?} is missing: {}", file, ec.message()));
  if (size != manifest.data_bytes) {
    return corrupt(fmt::format("{} bytes, the manifest says {} (truncated?)", size, manifest.data_bytes));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::DataLossError(fmt::format("snapshot file {:?} cannot be read", file));
  char magic[kMagicLen];
  if (!in.read(magic, kMagicLen) || std::memcmp(magic, kMagic, kMagicLen) != 0) return corrupt("bad header");
  uint32_t file_crc = Crc(0, magic, kMagicLen);
  uint64_t offset = kMagicLen;
  std::string key, value;
  for (uint64_t r = 0; r < manifest.records; ++r) {
    uint32_t lens[2];
    if (!in.read(reinterpret_cast<char*>(lens), sizeof lens)) return corrupt(fmt::format("record {} is truncated", r));
    if (uint64_t{lens[0]} + lens[1] + 12 > size - offset) return corrupt(fmt::format("record {} has impossible lengths", r));
    key.resize(lens[0]);
    value.resize(lens[1]);
    uint32_t stored;
    if (!in.read(key.data(), lens[0]) || !in.read(value.data(), lens[1]) ||
        !in.read(reinterpret_cast<char*>(&stored), 4)) {
      return corrupt(fmt::format("record {} is truncated", r));
    }
    uint32_t crc = Crc(0, lens, sizeof lens);
    crc = Crc(crc, key.data(), key.size());
    crc = Crc(crc, value.data(), value.size());
    if (crc != stored) return corrupt(fmt::format("record {} fails its checksum", r));
    file_crc = Crc(file_crc, lens, sizeof lens);
    file_crc = Crc(file_crc, key.data(), key.size());
    file_crc = Crc(file_crc, value.data(), value.size());
    file_crc = Crc(file_crc, &stored, 4);
    offset += sizeof lens + key.size() + value.size() + 4;
    RETURN_IF_ERROR(fn(key, value));
  }
  if (offset != size) return corrupt("trailing bytes after the last record");
  if (file_crc != manifest.data_crc) return corrupt("whole-file checksum mismatch");
  return absl::OkStatus();
}

absl::StatusOr<SnapshotInfo> SnapshotManager::Create(const CollectionSpec& spec, const Store& store) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return absl::UnavailableError(fmt::format("snapshot directory {:?} cannot be created: {}", dir_, ec.message()));
  std::string compact;
  SnapshotInfo info;
  info.created_at = NowRfc3339(&compact);
  const uint64_t now_ns = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  Rng rng(DeriveSeed(now_ns ^ (uint64_t{static_cast<uint32_t>(::getpid())} << 32), ++counter_, 0));
  info.uuid = fmt::format("{:016x}{:016x}", rng.NextU64(), rng.NextU64());
  info.name = fmt::format("{}.{}.{}", spec.name, compact, info.uuid.substr(0, 8));
  info.collection = spec.name;
  const fs::path final_dir = fs::path(dir_) / info.name;
  const fs::path tmp_dir = fs::path(dir_) / (info.name + ".tmp");
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  if (ec) return absl::UnavailableError(fmt::format("cannot create {:?}: {}", tmp_dir.string(), ec.message()));
  auto fail = [&](absl::Status s) {
    std::error_code ignored;
    fs::remove_all(tmp_dir, ignored);
    return s;
  };

  SyncedFile data;
  if (absl::Status s = data.Open((tmp_dir / kDataFile).string()); !s.ok()) return fail(s);
  uint32_t file_crc = Crc(0, kMagic, kMagicLen);
  uint64_t bytes = kMagicLen, records = 0;
  absl::Status io = data.Write(kMagic, kMagicLen);
  auto put = [&](std::string_view key, std::string_view value) {
    const uint32_t lens[2] = {static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size())};
    uint32_t crc = Crc(0, lens, sizeof lens);
    crc = Crc(crc, key.data(), key.size());
    crc = Crc(crc, value.data(), value.size());
    for (auto [p, n] : {std::pair<const void*, size_t>{lens, sizeof lens}, {key.data(), key.size()},
                        {value.data(), value.size()}, {&crc, 4}}) {
      if (io.ok()) io = data.Write(p, n);
      file_crc = Crc(file_crc, p, n);
      bytes += n;
    }
    ++records;
  };
  auto encoder = store.Get(Collection::EncoderKey(spec.id));
  if (!encoder.ok()) return fail(encoder.status());
  if (!encoder->has_value()) {
    return fail(absl::DataLossError(fmt::format("collection {:?}: encoder parameters are missing", spec.name)));
  }
  put("E", **encoder);
  const std::string prefix = Collection::DocPrefix(spec.id);
  std::string relative = "D";
  uint64_t documents = 0;
  absl::Status scan = store.Scan(prefix, "", [&](std::string_view key, std::string_view value) {
    relative.resize(1);
    relative.append(key.substr(prefix.size()));
    put(relative, value);
    ++documents;
    return io.ok();
  });
  if (!scan.ok()) return fail(scan);
  if (!io.ok()) return fail(io);
  if (absl::Status s = data.Close(); !s.ok()) return fail(s);

  nlohmann::json j;
  j["format"] = kFormatVersion;
  j["name"] = info.name;
  j["collection"] = spec.name;
  j["created_at"] = info.created_at;
  j["uuid"] = info.uuid;
  j["documents"] = documents;
  j["records"] = records;
  j["data_bytes"] = bytes;
  j["data_crc"] = file_crc;
  j["spec"] = spec.ToJson();
  const std::string body = j.dump(2);
  const std::string manifest = body + "\n" + fmt::format("{:08x}", Crc(0, body.data(), body.size())) + "\n";
  SyncedFile mf;
  if (absl::Status s = mf.Open((tmp_dir / kManifestFile).string()); !s.ok()) return fail(s);
  if (absl::Status s = mf.Write(manifest.data(), manifest.size()); !s.ok()) return fail(s);
  if (absl::Status s = mf.Close(); !s.ok()) return fail(s);
  if (absl::Status s = FsyncDir(tmp_dir.string()); !s.ok()) return fail(s);
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) return fail(absl::UnavailableError(fmt::format("cannot publish snapshot {:?}: {}", final_dir.string(), ec.message())));
  if (absl::Status s = FsyncDir(dir_); !s.ok()) return s;
  info.path = final_dir.string();
  info.documents = documents;
  info.size_bytes = bytes + manifest.size();
  spdlog::info("snapshot {:?} of collection {:?}: {} documents, {} bytes", info.name, spec.name, documents, info.size_bytes);
  return info;
}

std::vector<SnapshotInfo> SnapshotManager::List(std::string_view collection) const {
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !ValidSnapshotName(name)) continue;
    auto m = ReadSnapshotManifest(entry.path().string());
    if (!m.ok()) {
      spdlog::warn("skipping snapshot {:?}: {}", name, m.status().ToString());
      continue;
    }
    if (!collection.empty() && m->info.collection != collection) continue;
    out.push_back(m->info);
  }
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<std::string> SnapshotManager::PathOf(std::string_view name) const {
  if (!ValidSnapshotName(name)) return absl::InvalidArgumentError(fmt::format("{:?} is not a snapshot name", name));
  const fs::path p = fs::path(dir_) / std::string(name);
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return absl::NotFoundError(fmt::format("snapshot {:?} does not exist", name));
  return p.string();
}

absl::Status SnapshotManager::Delete(std::string_view name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return absl::UnavailableError(fmt::format("cannot delete snapshot {:?}: {}", name, ec.message()));
  spdlog::info("deleted snapshot {:?}", name);
  return absl::OkStatus();
}

}  // namespace chamferdb
