// How the CLI talks to a server: channel construction (plaintext or TLS, raised message
// limits), per-call contexts (deadline, `authorization: Bearer <key>` metadata) and the
// retry policy shared by every command.
//
// Retries: UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED are retried with
// exponential backoff (initial delay doubling up to a cap) for a bounded number of
// attempts. Only idempotent calls are retried: the CLI's writes are upserts by id and
// deletes by id, so re-sending a whole request never duplicates or drops a document.
//
// Thread-safety: a Connection is immutable after Create; NewContext and CallWithRetry may
// be used from many threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace chamferdb::cli {

struct ConnectionOptions {
  std::string server = "127.0.0.1:50051";
  std::string api_key;          // sent as "authorization: Bearer <key>" when non-empty
  std::string tls_ca;           // PEM file of the CA to trust; enables TLS
  std::string tls_cert;         // client certificate (mutual TLS), with tls_key
  std::string tls_key;
  std::string tls_server_name;  // overrides the name checked against the server certificate
  double timeout_seconds = 60;  // deadline of each call
  int max_message_mb = 256;
};

struct RetryPolicy {
  int max_attempts = 10;  // including the first
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{3000};
};

// True for the codes worth retrying (see the file comment).
bool IsRetryable(grpc::StatusCode code);

// The delay before retry number `retry` (0-based): initial * 2^retry, capped.
std::chrono::milliseconds Backoff(const RetryPolicy& policy, int retry);

class Connection {
 public:
  // Reads the TLS files (NOT_FOUND / INVALID_ARGUMENT naming the flag) and builds the
  // channel. Does not connect: the first call does.
  static absl::StatusOr<Connection> Create(const ConnectionOptions& options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const ConnectionOptions& options() const { return options_; }

  // A context with the configured deadline (or `timeout_seconds` when > 0) and credentials.
  std::unique_ptr<grpc::ClientContext> NewContext(double timeout_seconds = 0) const;

  // Runs `call` with a fresh context until it succeeds, fails with a non-retryable status
  // (`retryable`, default IsRetryable of the code), or `policy.max_attempts` is reached.
  // Counts retries in `*retries` when non-null; before each retry `on_retry(status,
  // attempt, delay)` is called when set. Stops early (returning the last status) when
  // `*stop` becomes true.
  grpc::Status CallWithRetry(const RetryPolicy& policy, const std::function<grpc::Status(grpc::ClientContext*)>& call,
                             std::atomic<uint64_t>* retries = nullptr, const std::atomic<bool>* stop = nullptr,
                             const std::function<void(const grpc::Status&, int, std::chrono::milliseconds)>&
                                 on_retry = nullptr,
                             const std::function<bool(const grpc::Status&)>& retryable = nullptr) const;

 private:
  Connection(ConnectionOptions options, std::shared_ptr<grpc::Channel> channel)
      : options_(std::move(options)), channel_(std::move(channel)) {}

  ConnectionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
};

// "CODE: message" for error output.
std::string StatusText(const grpc::Status& status);

}  // namespace chamferdb::cli
