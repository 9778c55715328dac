// Admission control and request deadlines, applied by RunHandler (server/handler.h) to
// every RPC.
//
// Admission: at most `limit` requests execute at once (--max-concurrent-requests; default
// 4 × hardware threads, at least 8). A request beyond the limit is not queued: it fails at
// once with RESOURCE_EXHAUSTED naming the limit, so that overload gives fast, retryable
// errors (clients back off) instead of an unbounded queue where every request times out.
// Cheap metadata RPCs (Collections.Get / Collections.List) are never refused, so that
// operators can still look at an overloaded server.
//
// Deadlines: RunHandler refuses a request whose deadline already passed or that the client
// cancelled (DEADLINE_EXCEEDED, no work done) and installs a RequestScope, so that long
// operations can call CheckRequestAlive("stage") between their stages and stop early.
//
// Thread-safety: AdmissionController is thread-safe (one atomic counter). RequestScope and
// CheckRequestAlive are per thread (thread_local): only the thread that runs the handler
// sees the request; OpenMP workers started by it do not.
#pragma once

#include <grpcpp/server_context.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace chamferdb {

class AdmissionController {
 public:
  // limit 0 = unlimited.
  explicit AdmissionController(uint32_t limit = 0) : limit_(limit) {}

  // Holds one admission slot until destroyed (or moved from).
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& o) noexcept : owner_(o.owner_) { o.owner_ = nullptr; }
    Ticket& operator=(Ticket&& o) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { Release(); }
    void Release();

   private:
    friend class AdmissionController;
    explicit Ticket(AdmissionController* owner) : owner_(owner) {}
    AdmissionController* owner_ = nullptr;
  };

  // Takes a slot, or returns RESOURCE_EXHAUSTED naming `rpc`, the limit and the flag.
  // On success *ticket holds the slot.
  absl::Status TryAdmit(std::string_view rpc, Ticket* ticket);

  void set_limit(uint32_t limit) { limit_.store(limit); }
  uint32_t limit() const { return limit_.load(); }
  uint32_t in_flight() const { return in_flight_.load(); }
  uint64_t rejected() const { return rejected_.load(); }

 private:
  std::atomic<uint32_t> limit_;
  std::atomic<uint32_t> in_flight_{0};
  std::atomic<uint64_t> rejected_{0};
};

// The default limit: 4 × hardware threads, at least 8.
uint32_t DefaultMaxConcurrentRequests();

// The process-wide controller RunHandler uses (unlimited until Server::Start sets it).
AdmissionController& GlobalAdmission();

// True for RPCs that are never refused by admission control (cheap metadata reads).
bool IsAdmissionExempt(std::string_view rpc);

// Makes `ctx` the calling thread's current request until destroyed (scopes nest).
class RequestScope {
 public:
  RequestScope(const grpc::ServerContext* ctx, std::string_view rpc);
  ~RequestScope();
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

 private:
  const grpc::ServerContext* prev_ctx_;
  std::string_view prev_rpc_;
};

// OK when the calling thread runs no request, or its request is alive. DEADLINE_EXCEEDED
// ("<rpc>: deadline exceeded before <stage>") once the client's deadline has passed, or
// CANCELLED when the client cancelled.
absl::Status CheckRequestAlive(std::string_view stage);

// The same check for an explicit context (nullptr: OK); used by RunHandler before work.
absl::Status CheckContextAlive(const grpc::ServerContext* ctx, std::string_view rpc, std::string_view stage);

}  // namespace chamferdb
