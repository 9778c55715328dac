#include "server/handler.h"

#include <spdlog/spdlog.h>

namespace chamferdb {

void LogRpcFailure(std::string_view rpc, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
      spdlog::error("{} failed: {}", rpc, status.ToString());
      break;
    default:
      spdlog::debug("{} rejected: {}", rpc, status.ToString());
  }
}

}  // namespace chamferdb
