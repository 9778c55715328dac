// Domain types shared by every layer of chamferdb.
//
// Data convention (stated once, used everywhere): a set of n vectors of dimension d is a
// row-major float array, element (i, j) at x[i * d + j]. Views never own their memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace chamferdb {

// A document's user-facing id: a non-empty UTF-8 string (see server limits for its length).
using DocId = std::string;

// The dense internal label of a vector inside one collection's index. Labels are assigned
// by the collection at ingest or at rebuild and are never exposed to clients.
using Label = int64_t;

// A read-only row-major view: rows × cols floats, element (i, j) at data[i * cols + j].
struct FloatMatrixView {
  const float* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;

  const float* row(size_t i) const { return data + i * cols; }
  size_t size() const { return rows * cols; }
};

// How token vectors are kept for the exact rerank.
enum class TokenStorage : uint8_t { kFloat32 = 0, kFloat16 = 1, kInt8 = 2 };

}  // namespace chamferdb
