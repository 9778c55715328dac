#include "cli/source.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "cli/npy.h"

namespace chamferdb::cli {
namespace {

std::string Absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

class JsonlSource final : public RecordSource {
 public:
  JsonlSource(std::string path, JsonlLineParser parser)
      : path_(std::move(path)), key_(Absolute(path_)), parser_(std::move(parser)) {}

  absl::Status Open() {
    in_.open(path_, std::ios::binary);
    if (!in_) return absl::NotFoundError(fmt::format("{}: cannot open: {}", path_, std::strerror(errno)));
    absl::StatusOr<std::string> fp = FileFingerprint(path_);
    if (!fp.ok()) return fp.status();
    fingerprint_ = *fp;
    return absl::OkStatus();
  }

  absl::StatusOr<bool> Next(SourceItem* item) override {
    std::string line;
    while (std::getline(in_, line)) {
      ++line_no_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (IsBlank(line) || Skipped(line_no_)) continue;
      item->position = line_no_;
      item->location = fmt::format("{}:{}", path_, line_no_);
      parser_(std::move(line), line_no_, item);
      return true;
    }
    if (in_.bad()) return absl::DataLossError(fmt::format("{}: read failed after line {}", path_, line_no_));
    return false;
  }

  absl::StatusOr<uint64_t> CountRecords() override {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return absl::NotFoundError(fmt::format("{}: cannot open: {}", path_, std::strerror(errno)));
    uint64_t n = 0;
    std::string line;
    while (std::getline(in, line)) {
      if (!IsBlank(line)) ++n;
    }
    return n;
  }

  const std::string& key() const override { return key_; }
  std::string fingerprint() const override { return fingerprint_; }

 private:
  std::string path_;
  std::string key_;
  JsonlLineParser parser_;
  std::ifstream in_;
  uint64_t line_no_ = 0;
  std::string fingerprint_;
};

class NpySource final : public RecordSource {
 public:
  NpySource(NpyFile vectors, std::vector<int64_t> offsets, std::vector<std::string> ids, ParseOptions options,
            std::string fingerprint)
      : vectors_(std::move(vectors)),
        key_(Absolute(vectors_.path())),
        offsets_(std::move(offsets)),
        ids_(std::move(ids)),
        options_(options),
        fingerprint_(std::move(fingerprint)) {}

  absl::StatusOr<bool> Next(SourceItem* item) override {
    const uint64_t dim = vectors_.header().shape[1];
    while (next_ < ids_.size()) {
      const uint64_t i = next_++;
      if (Skipped(i)) continue;
      item->position = i;
      item->location = fmt::format("{}: document {}", vectors_.path(), i);
      DocRecord& doc = item->doc;
      doc = DocRecord{};
      doc.id = ids_[i];
      doc.dim = static_cast<uint32_t>(dim);
      const uint64_t begin = static_cast<uint64_t>(offsets_[i]), end = static_cast<uint64_t>(offsets_[i + 1]);
      doc.num_tokens = static_cast<uint32_t>(end - begin);
      if (absl::Status s = vectors_.ReadF32(begin * dim, end * dim, &doc.vectors); !s.ok()) return s;
      item->problem = ValidateRecord(doc, options_);
      return true;
    }
    return false;
  }

  absl::StatusOr<uint64_t> CountRecords() override { return ids_.size(); }
  const std::string& key() const override { return key_; }
  std::string fingerprint() const override { return fingerprint_; }

 private:
  NpyFile vectors_;
  std::string key_;
  std::vector<int64_t> offsets_;
  std::vector<std::string> ids_;
  ParseOptions options_;
  std::string fingerprint_;
  uint64_t next_ = 0;
};

}  // namespace

absl::StatusOr<std::string> FileFingerprint(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return absl::NotFoundError(fmt::format("{}: cannot stat: {}", path, std::strerror(errno)));
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return fmt::format("size={} mtime_ns={}", static_cast<uint64_t>(st.st_size), mtime_ns);
}

absl::StatusOr<std::unique_ptr<RecordSource>> OpenJsonlLineSource(const std::string& path, JsonlLineParser parser) {
  auto source = std::make_unique<JsonlSource>(path, std::move(parser));
  if (absl::Status s = source->Open(); !s.ok()) return s;
  return std::unique_ptr<RecordSource>(std::move(source));
}

absl::StatusOr<std::unique_ptr<RecordSource>> OpenJsonlSource(const std::string& path, const ParseOptions& options) {
  return OpenJsonlLineSource(path, [options](std::string&& line, uint64_t line_no, SourceItem* item) {
    item->problem = ParseRecordJson(line, options, &item->doc);
    if (item->problem.ok() && item->doc.id.empty()) item->doc.id = fmt::format("{}", line_no);
  });
}

absl::StatusOr<std::unique_ptr<RecordSource>> OpenNpySource(const std::string& vectors_path,
                                                            const std::string& offsets_path,
                                                            const std::string& ids_path, const ParseOptions& options) {
  absl::StatusOr<NpyFile> vectors = NpyFile::Open(vectors_path, "<f4", 2);
  if (!vectors.ok()) return vectors.status();
  absl::StatusOr<NpyFile> offsets_file = NpyFile::Open(offsets_path, "<i8", 1);
  if (!offsets_file.ok()) return offsets_file.status();
  const uint64_t n_tokens = vectors->header().shape[0];
  const uint64_t dim = vectors->header().shape[1];
  if (dim == 0 || dim > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(fmt::format("{}: dimension {} is not usable", vectors_path, dim));
  }
  if (options.expected_dim != 0 && dim != options.expected_dim) {
    return absl::InvalidArgumentError(fmt::format("{}: vectors have dimension {} but the collection's dimension is {}",
                                                  vectors_path, dim, options.expected_dim));
  }
  const uint64_t n_offsets = offsets_file->header().shape[0];
  if (n_offsets == 0) return absl::InvalidArgumentError(fmt::format("{}: needs n_docs + 1 entries, has none", offsets_path));
  std::vector<int64_t> offsets;
  if (absl::Status s = offsets_file->ReadI64(0, n_offsets, &offsets); !s.ok()) return s;
  if (offsets[0] != 0) return absl::InvalidArgumentError(fmt::format("{}: offsets[0] is {}, not 0", offsets_path, offsets[0]));
  for (uint64_t i = 1; i < n_offsets; ++i) {
    if (offsets[i] < offsets[i - 1]) {
      return absl::InvalidArgumentError(fmt::format("{}: offsets[{}] = {} is less than offsets[{}] = {}", offsets_path, i,
                                                    offsets[i], i - 1, offsets[i - 1]));
    }
    if (offsets[i] - offsets[i - 1] > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(fmt::format("{}: document {} has too many tokens", offsets_path, i - 1));
    }
  }
  if (static_cast<uint64_t>(offsets.back()) != n_tokens) {
    return absl::InvalidArgumentError(fmt::format("{}: last offset is {} but {} has {} token rows", offsets_path,
                                                  offsets.back(), vectors_path, n_tokens));
  }
  std::ifstream in(ids_path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("{}: cannot open: {}", ids_path, std::strerror(errno)));
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ids.push_back(line);
  }
  if (in.bad()) return absl::DataLossError(fmt::format("{}: read failed", ids_path));
  // A trailing newline after the last id is conventional; one final empty line is not a record.
  if (ids.size() == n_offsets && ids.back().empty()) ids.pop_back();
  if (ids.size() != n_offsets - 1) {
    return absl::InvalidArgumentError(fmt::format("{}: has {} ids but {} describes {} documents", ids_path, ids.size(),
                                                  offsets_path, n_offsets - 1));
  }
  std::string fingerprint;
  for (const std::string* p : {&vectors_path, &offsets_path, &ids_path}) {
    absl::StatusOr<std::string> fp = FileFingerprint(*p);
    if (!fp.ok()) return fp.status();
    fingerprint += (fingerprint.empty() ? "" : "; ") + *fp;
  }
  return std::unique_ptr<RecordSource>(std::make_unique<NpySource>(*std::move(vectors), std::move(offsets), std::move(ids),
                                                                   options, std::move(fingerprint)));
}

}  // namespace chamferdb::cli
