#include "cli/connection.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include <fmt/format.h>

namespace chamferdb::cli {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("{} {}: cannot open: {}", flag, path, std::strerror(errno)));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("{} {}: not a PEM file", flag, path));
  }
  return text;
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK: return "OK";
    case grpc::CANCELLED: return "CANCELLED";
    case grpc::UNKNOWN: return "UNKNOWN";
    case grpc::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND: return "NOT_FOUND";
    case grpc::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::ABORTED: return "ABORTED";
    case grpc::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::INTERNAL: return "INTERNAL";
    case grpc::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::DATA_LOSS: return "DATA_LOSS";
    case grpc::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

}  // namespace

bool IsRetryable(grpc::StatusCode code) {
  return code == grpc::UNAVAILABLE || code == grpc::RESOURCE_EXHAUSTED || code == grpc::DEADLINE_EXCEEDED;
}

std::chrono::milliseconds Backoff(const RetryPolicy& policy, int retry) {
  auto delay = policy.initial_backoff;
  for (int i = 0; i < retry && delay < policy.max_backoff; ++i) delay *= 2;
  return std::min(delay, policy.max_backoff);
}

std::string StatusText(const grpc::Status& status) {
  return fmt::format("{}: {}", CodeName(status.error_code()), status.error_message());
}

absl::StatusOr<Connection> Connection::Create(const ConnectionOptions& options) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server is empty");
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!options.tls_cert.empty() && options.tls_ca.empty()) {
    return absl::InvalidArgumentError("--tls-cert needs --tls-ca (client certificates are only sent over TLS)");
  }
  if (!(options.timeout_seconds > 0)) return absl::InvalidArgumentError("--timeout must be positive");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_mb << 20);
  args.SetMaxSendMessageSize(options.max_message_mb << 20);
  // Reconnect quickly after the server comes (back) up, so that our own retry backoff, not
  // the channel's (1 s growing by 1.6x), decides how soon a retried call can succeed.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // gRPC uses this one as the minimum time a connection attempt (TCP connect plus TLS
  // handshake) may take, not as a backoff: at 100 ms a TLS handshake on a loaded machine
  // is cut off again and again ("tcp handshaker shutdown"). A refused connect still fails
  // at once.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!options.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadPem("--tls-ca", options.tls_ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (!options.tls_cert.empty()) {
      absl::StatusOr<std::string> cert = ReadPem("--tls-cert", options.tls_cert);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadPem("--tls-key", options.tls_key);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return Connection(options, grpc::CreateCustomChannel(options.server, creds, args));
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(double timeout_seconds) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  const double t = timeout_seconds > 0 ? timeout_seconds : options_.timeout_seconds;
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(t)));
  if (!options_.api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.api_key);
  return ctx;
}

grpc::Status Connection::CallWithRetry(
    const RetryPolicy& policy, const std::function<grpc::Status(grpc::ClientContext*)>& call,
    std::atomic<uint64_t>* retries, const std::atomic<bool>* stop,
    const std::function<void(const grpc::Status&, int, std::chrono::milliseconds)>& on_retry,
    const std::function<bool(const grpc::Status&)>& retryable) const {
  grpc::Status status;
  for (int attempt = 1;; ++attempt) {
    std::unique_ptr<grpc::ClientContext> ctx = NewContext();
    status = call(ctx.get());
    if (status.ok() || attempt >= policy.max_attempts) return status;
    if (!(retryable ? retryable(status) : IsRetryable(status.error_code()))) return status;
    if (stop != nullptr && stop->load()) return status;
    const std::chrono::milliseconds delay = Backoff(policy, attempt - 1);
    if (on_retry) on_retry(status, attempt, delay);
    if (retries != nullptr) retries->fetch_add(1);
    // Wait in slices so that a stop request is honoured promptly. After UNAVAILABLE the
    // wait drives the channel's reconnection: with the synchronous API nothing polls a
    // channel between calls, and a failed-fast call polls too briefly, so a connection
    // attempt (above all a TLS handshake, several round trips) would only creep forward on
    // gRPC's 5 s backup poller and time out. WaitForConnected polls until the channel is
    // READY or the slice ends; the next attempt then goes out at once.
    // A server that answers UNAVAILABLE over a working connection (draining, say) gets the
    // full backoff: only a channel that is not READY is waited on.
    const auto until = std::chrono::steady_clock::now() + delay;
    const bool reconnect =
        status.error_code() == grpc::UNAVAILABLE && channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY;
    while (std::chrono::steady_clock::now() < until) {
      if (stop != nullptr && stop->load()) return status;
      const auto slice = std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(reconnect ? 100 : 20),
                                                                       until - std::chrono::steady_clock::now());
      if (reconnect) {
        if (channel_->WaitForConnected(std::chrono::system_clock::now() + slice)) break;
      } else {
        std::this_thread::sleep_for(slice);
      }
    }
  }
}

}  // namespace chamferdb::cli
