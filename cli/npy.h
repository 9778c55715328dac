// Reader for NumPy .npy files (format versions 1.0, 2.0 and 3.0), enough for the CLI's bulk
// inputs: little-endian float32 token matrices and int64 offset vectors in C order.
//
// Format (numpy.lib.format): magic "\x93NUMPY", major and minor version bytes, the header
// length (uint16 LE in v1, uint32 LE in v2/v3), then an ASCII (v3: UTF-8) Python dict literal
// such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and
// a newline, then prod(shape) * itemsize bytes of data, row-major.
//
// Error behaviour: every malformed input (short file, bad magic, unknown version, header that
// is not the expected dict, unsupported dtype, Fortran order, data size that disagrees with
// the shape, overflowing shape) is an INVALID_ARGUMENT status naming the file; I/O failures
// are NOT_FOUND / DATA_LOSS. Nothing aborts or throws.
//
// Thread-safety: NpyFile reads with pread and keeps no cursor, so const methods may be called
// concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace chamferdb::cli {

struct NpyHeader {
  std::string descr;             // e.g. "<f4"
  bool fortran_order = false;
  std::vector<uint64_t> shape;   // () for a scalar
  uint64_t data_offset = 0;      // byte offset of the first element
  uint64_t num_elements = 0;     // product of shape
};

// Parses the header at the start of `prefix` (the first bytes of the file; at least the
// whole header must be present). `what` names the file in error messages.
absl::StatusOr<NpyHeader> ParseNpyHeader(std::string_view prefix, const std::string& what);

// The item size in bytes of a supported descr ("<f4", "<i8", ...), or 0 if unsupported.
size_t NpyItemSize(std::string_view descr);

class NpyFile {
 public:
  // Opens `path` and checks that its dtype is `descr` ("<f4" or "<i8"), it is in C order,
  // it has `ndim` dimensions and the data size matches the shape exactly.
  static absl::StatusOr<NpyFile> Open(const std::string& path, std::string_view descr, size_t ndim);

  NpyFile(NpyFile&& other) noexcept;
  NpyFile& operator=(NpyFile&& other) noexcept;
  NpyFile(const NpyFile&) = delete;
  NpyFile& operator=(const NpyFile&) = delete;
  ~NpyFile();

  const NpyHeader& header() const { return header_; }
  const std::string& path() const { return path_; }

  // Copies elements [begin, end) (flat, row-major) into `out` (resized to end - begin).
  // REQUIRES: begin <= end <= header().num_elements and T's size is the item size.
  absl::Status ReadF32(uint64_t begin, uint64_t end, std::vector<float>* out) const;
  absl::Status ReadI64(uint64_t begin, uint64_t end, std::vector<int64_t>* out) const;

 private:
  NpyFile(std::string path, int fd, NpyHeader header) : path_(std::move(path)), fd_(fd), header_(std::move(header)) {}
  absl::Status ReadBytes(uint64_t offset, uint64_t size, void* out) const;

  std::string path_;
  int fd_ = -1;
  NpyHeader header_;
};

}  // namespace chamferdb::cli
