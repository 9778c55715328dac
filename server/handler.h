// The shared wrapper every RPC handler runs in: authorization (API keys), deadline check,
// admission control (server/admission.h: at most --max-concurrent-requests execute, the
// rest fail fast with RESOURCE_EXHAUSTED), exception barrier, metrics, logging of
// failures, and the single absl -> gRPC status conversion. While fn runs, the request is
// the thread's current one, so long operations can call CheckRequestAlive("stage").
//
//   grpc::Status Foo(grpc::ServerContext* ctx, const Req* req, Resp* resp) override {
//     return RunHandler(ctx, "Foo", [&]() -> absl::Status { ... });
//   }
#pragma once

#include <grpcpp/server_context.h>

#include <chrono>
#include <exception>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "server/admission.h"
#include "server/auth.h"
#include "server/grpc_status.h"

namespace chamferdb {

// Logs a non-OK status and records the RPC's metrics.
void FinishRpc(std::string_view rpc, const absl::Status& status, std::chrono::steady_clock::time_point start);

template <typename Fn>
grpc::Status RunHandler(grpc::ServerContext* ctx, std::string_view rpc, Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = Authorize(ctx, rpc);
  // An expired deadline or a cancelled call gets its status without doing any work.
  if (status.ok()) status = CheckContextAlive(ctx, rpc, "it started");
  AdmissionController::Ticket ticket;
  if (status.ok() && !IsAdmissionExempt(rpc)) status = GlobalAdmission().TryAdmit(rpc, &ticket);
  if (status.ok()) {
    RequestScope scope(ctx, rpc);
    try {
      status = fn();
    } catch (const std::bad_alloc&) {
      status = absl::ResourceExhaustedError(std::string(rpc) + ": out of memory");
    } catch (const std::exception& e) {
      status = absl::InternalError(std::string(rpc) + ": unexpected exception: " + e.what());
    } catch (...) {
      status = absl::InternalError(std::string(rpc) + ": unexpected exception");
    }
  }
  ticket.Release();
  FinishRpc(rpc, status, start);
  return ToGrpcStatus(status);
}

}  // namespace chamferdb
