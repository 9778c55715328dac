#include "cli/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>

#include <fmt/format.h>

namespace chamferdb::cli {
namespace {

static_assert(std::endian::native == std::endian::little, "the npy reader assumes a little-endian host");

constexpr std::string_view kMagic = "\x93NUMPY";
// numpy itself refuses headers over 10 KB by default; anything larger is not a real file.
constexpr uint64_t kMaxHeaderBytes = 1 << 20;

absl::Status Bad(const std::string& what, const std::string& why) {
  return absl::InvalidArgumentError(fmt::format("{}: not a valid .npy file: {}", what, why));
}

// A tiny recursive-descent parser for the header's Python dict literal.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : s_(text) {}

  absl::Status Parse(NpyHeader* out, const std::string& what) {
    bool have_descr = false, have_order = false, have_shape = false;
    SkipSpace();
    if (!Eat('{')) return Bad(what, "header does not start with '{'");
    while (true) {
      SkipSpace();
      if (Eat('}')) break;
      std::optional<std::string> key = String();
      if (!key) return Bad(what, fmt::format("expected a quoted key at header offset {}", pos_));
      SkipSpace();
      if (!Eat(':')) return Bad(what, fmt::format("expected ':' after key '{}'", *key));
      SkipSpace();
      if (*key == "descr") {
        std::optional<std::string> v = String();
        if (!v) return Bad(what, "'descr' is not a string (structured dtypes are not supported)");
        out->descr = *v;
        have_descr = true;
      } else if (*key == "fortran_order") {
        if (Word("True")) {
          out->fortran_order = true;
        } else if (Word("False")) {
          out->fortran_order = false;
        } else {
          return Bad(what, "'fortran_order' is neither True nor False");
        }
        have_order = true;
      } else if (*key == "shape") {
        if (absl::Status s = Shape(&out->shape, what); !s.ok()) return s;
        have_shape = true;
      } else {
        return Bad(what, fmt::format("unexpected header key '{}'", *key));
      }
      SkipSpace();
      if (Eat(',')) continue;
      SkipSpace();
      if (Eat('}')) break;
      return Bad(what, fmt::format("expected ',' or '}}' at header offset {}", pos_));
    }
    SkipSpace();
    if (pos_ != s_.size()) return Bad(what, "trailing characters after the header dict");
    if (!have_descr || !have_order || !have_shape) {
      return Bad(what, "header lacks one of 'descr', 'fortran_order', 'shape'");
    }
    return absl::OkStatus();
  }

 private:
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Word(std::string_view w) {
    if (s_.substr(pos_, w.size()) == w) {
      pos_ += w.size();
      return true;
    }
    return false;
  }
  std::optional<std::string> String() {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return std::nullopt;
    const char quote = s_[pos_++];
    const size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) return std::nullopt;
    std::string v(s_.substr(pos_, end - pos_));
    if (v.find('\\') != std::string::npos) return std::nullopt;  // never in numpy's own headers
    pos_ = end + 1;
    return v;
  }
  absl::Status Shape(std::vector<uint64_t>* shape, const std::string& what) {
    shape->clear();
    if (!Eat('(')) return Bad(what, "'shape' is not a tuple");
    while (true) {
      SkipSpace();
      if (Eat(')')) return absl::OkStatus();
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') {
        return Bad(what, "'shape' holds something other than non-negative integers");
      }
      uint64_t v = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        const uint64_t digit = s_[pos_++] - '0';
        if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return Bad(what, "a 'shape' entry overflows");
        v = v * 10 + digit;
      }
      Eat('L');  // Python 2 long literals
      shape->push_back(v);
      SkipSpace();
      if (Eat(',')) continue;
      SkipSpace();
      if (Eat(')')) return absl::OkStatus();
      return Bad(what, "malformed 'shape' tuple");
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

uint32_t ReadLe(std::string_view bytes, size_t offset, size_t width) {
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return v;
}

}  // namespace

size_t NpyItemSize(std::string_view descr) {
  if (descr == "<f4" || descr == "<i4" || descr == "<u4") return 4;
  if (descr == "<f8" || descr == "<i8" || descr == "<u8") return 8;
  return 0;
}

absl::StatusOr<NpyHeader> ParseNpyHeader(std::string_view prefix, const std::string& what) {
  if (prefix.size() < 10) return Bad(what, fmt::format("only {} bytes, shorter than the smallest header", prefix.size()));
  if (prefix.substr(0, kMagic.size()) != kMagic) return Bad(what, "missing the \\x93NUMPY magic");
  const int major = static_cast<unsigned char>(prefix[6]);
  const int minor = static_cast<unsigned char>(prefix[7]);
  if (major < 1 || major > 3 || minor != 0) return Bad(what, fmt::format("unsupported format version {}.{}", major, minor));
  const size_t len_width = major == 1 ? 2 : 4;
  const size_t preamble = 6 + 2 + len_width;
  if (prefix.size() < preamble) return Bad(what, "truncated header length");
  const uint64_t header_len = ReadLe(prefix, 8, len_width);
  if (header_len > kMaxHeaderBytes) return Bad(what, fmt::format("header length {} is implausibly large", header_len));
  if (prefix.size() < preamble + header_len) {
    return Bad(what, fmt::format("file ends inside the {}-byte header", header_len));
  }
  NpyHeader h;
  HeaderParser parser(prefix.substr(preamble, header_len));
  if (absl::Status s = parser.Parse(&h, what); !s.ok()) return s;
  h.data_offset = preamble + header_len;
  h.num_elements = 1;
  for (uint64_t d : h.shape) {
    if (d != 0 && h.num_elements > std::numeric_limits<uint64_t>::max() / 8 / d) {
      return Bad(what, "the shape's element count overflows");
    }
    h.num_elements *= d;
  }
  return h;
}

NpyFile::NpyFile(NpyFile&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_), header_(std::move(other.header_)) {
  other.fd_ = -1;
}

NpyFile& NpyFile::operator=(NpyFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    header_ = std::move(other.header_);
    other.fd_ = -1;
  }
  return *this;
}

NpyFile::~NpyFile() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<NpyFile> NpyFile::Open(const std::string& path, std::string_view descr, size_t ndim) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    close(fd);
    return absl::DataLossError(fmt::format("{}: cannot stat: {}", path, std::strerror(errno)));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  std::string prefix(std::min<uint64_t>(file_size, kMaxHeaderBytes + 16), '\0');
  NpyFile file(path, fd, NpyHeader{});  // owns fd from here on
  if (absl::Status s = file.ReadBytes(0, prefix.size(), prefix.data()); !s.ok()) return s;
  absl::StatusOr<NpyHeader> h = ParseNpyHeader(prefix, path);
  if (!h.ok()) return h.status();
  if (h->descr != descr) {
    return absl::InvalidArgumentError(
        fmt::format("{}: dtype '{}' is not supported here; expected '{}' ({})", path, h->descr, descr,
                    descr == "<f4" ? "little-endian float32: use arr.astype('<f4')"
                                   : "little-endian int64: use arr.astype('<i8')"));
  }
  if (h->fortran_order) {
    return absl::InvalidArgumentError(
        fmt::format("{}: fortran_order is True; save a C-ordered array (np.ascontiguousarray)", path));
  }
  if (h->shape.size() != ndim) {
    return absl::InvalidArgumentError(
        fmt::format("{}: has {} dimensions; expected {}", path, h->shape.size(), ndim));
  }
  const uint64_t expected = h->data_offset + h->num_elements * NpyItemSize(descr);
  if (file_size != expected) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: {} bytes, but the header's shape needs exactly {} ({})", path, file_size, expected,
        file_size < expected ? "the file is truncated" : "trailing bytes after the data"));
  }
  file.header_ = *std::move(h);
  return file;
}

absl::Status NpyFile::ReadBytes(uint64_t offset, uint64_t size, void* out) const {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    const ssize_t n = pread(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(fmt::format("{}: read failed: {}", path_, std::strerror(errno)));
    }
    if (n == 0) return absl::DataLossError(fmt::format("{}: unexpected end of file (truncated while reading?)", path_));
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status NpyFile::ReadF32(uint64_t begin, uint64_t end, std::vector<float>* out) const {
  out->resize(end - begin);
  return ReadBytes(header_.data_offset + begin * sizeof(float), (end - begin) * sizeof(float), out->data());
}

absl::Status NpyFile::ReadI64(uint64_t begin, uint64_t end, std::vector<int64_t>* out) const {
  out->resize(end - begin);
  return ReadBytes(header_.data_offset + begin * sizeof(int64_t), (end - begin) * sizeof(int64_t), out->data());
}

}  // namespace chamferdb::cli
