// RocksDB status -> absl::Status, by meaning (the two enums are numbered differently, so
// codes are never cast).
#pragma once

#include <rocksdb/status.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace chamferdb {

absl::Status FromRocksStatus(const rocksdb::Status& s, std::string_view what);

#define RETURN_IF_ROCKS_ERROR(expr, what)                           \
  do {                                                              \
    ::rocksdb::Status rocks_status_ = (expr);                       \
    if (!rocks_status_.ok()) return FromRocksStatus(rocks_status_, what); \
  } while (0)

}  // namespace chamferdb
