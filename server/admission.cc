#include "server/admission.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

namespace chamferdb {
namespace {

thread_local const grpc::ServerContext* current_ctx = nullptr;
thread_local std::string_view current_rpc;

}  // namespace

AdmissionController::Ticket& AdmissionController::Ticket::operator=(Ticket&& o) noexcept {
  if (this != &o) {
    Release();
    owner_ = o.owner_;
    o.owner_ = nullptr;
  }
  return *this;
}

void AdmissionController::Ticket::Release() {
  if (owner_ != nullptr) {
    owner_->in_flight_.fetch_sub(1);
    owner_ = nullptr;
  }
}

absl::Status AdmissionController::TryAdmit(std::string_view rpc, Ticket* ticket) {
  const uint32_t limit = limit_.load();
  // Increment first, then check: concurrent callers can never all see room and overshoot.
  const uint32_t now = in_flight_.fetch_add(1) + 1;
  if (limit != 0 && now > limit) {
    in_flight_.fetch_sub(1);
    rejected_.fetch_add(1);
    return absl::ResourceExhaustedError(
        fmt::format("{}: server busy: {} requests already executing, the limit is {} "
                    "(--max-concurrent-requests); retry with backoff",
                    rpc, now - 1, limit));
  }
  *ticket = Ticket(this);
  return absl::OkStatus();
}

uint32_t DefaultMaxConcurrentRequests() {
  const uint32_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max(8u, 4 * cores);
}

AdmissionController& GlobalAdmission() {
  static AdmissionController* controller = new AdmissionController(0);
  return *controller;
}

bool IsAdmissionExempt(std::string_view rpc) { return rpc == "Collections.Get" || rpc == "Collections.List"; }

RequestScope::RequestScope(const grpc::ServerContext* ctx, std::string_view rpc)
    : prev_ctx_(current_ctx), prev_rpc_(current_rpc) {
  current_ctx = ctx;
  current_rpc = rpc;
}

RequestScope::~RequestScope() {
  current_ctx = prev_ctx_;
  current_rpc = prev_rpc_;
}

absl::Status CheckContextAlive(const grpc::ServerContext* ctx, std::string_view rpc, std::string_view stage) {
  if (ctx == nullptr) return absl::OkStatus();
  if (ctx->deadline() <= std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError(fmt::format("{}: deadline exceeded before {}", rpc, stage));
  }
  if (ctx->IsCancelled()) {
    return absl::CancelledError(fmt::format("{}: cancelled by the client before {}", rpc, stage));
  }
  return absl::OkStatus();
}

absl::Status CheckRequestAlive(std::string_view stage) { return CheckContextAlive(current_ctx, current_rpc, stage); }

}  // namespace chamferdb
