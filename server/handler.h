// The shared wrapper every RPC handler runs in: deadline check, exception barrier,
// logging of failures, and the single absl -> gRPC status conversion.
//
//   grpc::Status Foo(grpc::ServerContext* ctx, const Req* req, Resp* resp) override {
//     return RunHandler(ctx, "Foo", [&]() -> absl::Status { ... });
//   }
#pragma once

#include <grpcpp/server_context.h>

#include <exception>
#include <string_view>

#include "absl/status/status.h"
#include "server/grpc_status.h"

namespace chamferdb {

// Logs a non-OK status of an RPC (warning for client errors, error for server errors).
void LogRpcFailure(std::string_view rpc, const absl::Status& status);

template <typename Fn>
grpc::Status RunHandler(grpc::ServerContext* ctx, std::string_view rpc, Fn&& fn) {
  if (ctx != nullptr && ctx->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled or past its deadline");
  }
  absl::Status status;
  try {
    status = fn();
  } catch (const std::bad_alloc&) {
    status = absl::ResourceExhaustedError(std::string(rpc) + ": out of memory");
  } catch (const std::exception& e) {
    status = absl::InternalError(std::string(rpc) + ": unexpected exception: " + e.what());
  } catch (...) {
    status = absl::InternalError(std::string(rpc) + ": unexpected exception");
  }
  if (!status.ok()) LogRpcFailure(rpc, status);
  return ToGrpcStatus(status);
}

}  // namespace chamferdb
