#include "storage/rocks_status.h"

#include <fmt/format.h>

namespace chamferdb {

absl::Status FromRocksStatus(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = fmt::format("storage {}: {}", what, s.ToString());
  switch (s.code()) {
    case rocksdb::Status::kNotFound: return absl::NotFoundError(msg);
    case rocksdb::Status::kCorruption: return absl::DataLossError(msg);
    case rocksdb::Status::kNotSupported: return absl::UnimplementedError(msg);
    case rocksdb::Status::kInvalidArgument: return absl::InvalidArgumentError(msg);
    case rocksdb::Status::kIOError:
      if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
      return absl::UnavailableError(msg);
    case rocksdb::Status::kMergeInProgress: return absl::AbortedError(msg);
    case rocksdb::Status::kIncomplete: return absl::UnavailableError(msg);
    case rocksdb::Status::kShutdownInProgress: return absl::UnavailableError(msg);
    case rocksdb::Status::kTimedOut: return absl::DeadlineExceededError(msg);
    case rocksdb::Status::kAborted: return absl::AbortedError(msg);
    case rocksdb::Status::kBusy: return absl::UnavailableError(msg);
    case rocksdb::Status::kExpired: return absl::DeadlineExceededError(msg);
    case rocksdb::Status::kTryAgain: return absl::UnavailableError(msg);
    case rocksdb::Status::kCompactionTooLarge: return absl::ResourceExhaustedError(msg);
    case rocksdb::Status::kColumnFamilyDropped: return absl::NotFoundError(msg);
    default: return absl::InternalError(msg);
  }
}

}  // namespace chamferdb
