#include "server/handler.h"

#include <spdlog/spdlog.h>

#include "server/metrics.h"

namespace chamferdb {

void FinishRpc(std::string_view rpc, const absl::Status& status, std::chrono::steady_clock::time_point start) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Metrics::Global().ObserveRpc(rpc, absl::StatusCodeToString(status.code()), seconds);
  if (status.ok()) return;
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
