// Prometheus metrics: per-RPC request counts (by status code) and latency histograms,
// recorded by RunHandler, plus gauges computed at scrape time (collections), rendered in
// the Prometheus text exposition format and served over HTTP by cpp-httplib.
// Thread-safety: all methods are thread-safe.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace chamferdb {

class Metrics {
 public:
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1.0,   2.5,  5.0,  10.0};
  static Metrics& Global();

  void ObserveRpc(std::string_view rpc, std::string_view code, double seconds);
  // Text exposition of the RPC metrics followed by whatever `extra` appends (gauges).
  std::string Render(const std::function<void(std::string*)>& extra) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> latency_ ABSL_GUARDED_BY(mu_);
};

// Serves GET /metrics on host:port from a background thread.
class MetricsHttpServer {
 public:
  using RenderFn = std::function<std::string()>;
  // UNAVAILABLE if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& host, int port, RenderFn render);
  ~MetricsHttpServer();
  void Stop();

 private:
  MetricsHttpServer() = default;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

}  // namespace chamferdb
