#include "server/metrics.h"

#include <fmt/format.h>
#include <httplib.h>

namespace chamferdb {

Metrics& Metrics::Global() {
  static Metrics* m = new Metrics();
  return *m;
}

void Metrics::ObserveRpc(std::string_view rpc, std::string_view code, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(rpc), std::string(code)}];
  Histogram& h = latency_[std::string(rpc)];
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++h.counts[i];
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::Render(const std::function<void(std::string*)>& extra) const {
  std::string out;
  {
    std::lock_guard lock(mu_);
    out += "# HELP chamferdb_requests_total RPCs handled, by method and status code.\n";
    out += "# TYPE chamferdb_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      out += fmt::format("chamferdb_requests_total{{rpc=\"{}\",code=\"{}\"}} {}\n", key.first, key.second, n);
    }
    out += "# HELP chamferdb_request_seconds RPC latency.\n";
    out += "# TYPE chamferdb_request_seconds histogram\n";
    for (const auto& [rpc, h] : latency_) {
      for (size_t i = 0; i < kBuckets.size(); ++i) {
        out += fmt::format("chamferdb_request_seconds_bucket{{rpc=\"{}\",le=\"{}\"}} {}\n", rpc, kBuckets[i], h.counts[i]);
      }
      out += fmt::format("chamferdb_request_seconds_bucket{{rpc=\"{}\",le=\"+Inf\"}} {}\n", rpc, h.count);
      out += fmt::format("chamferdb_request_seconds_sum{{rpc=\"{}\"}} {}\n", rpc, h.sum);
      out += fmt::format("chamferdb_request_seconds_count{{rpc=\"{}\"}} {}\n", rpc, h.count);
    }
  }
  if (extra) extra(&out);
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(const std::string& host, int port,
                                                                            RenderFn render) {
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->http_ = std::make_unique<httplib::Server>();
  s->http_->Get("/metrics", [render](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4");
  });
  s->http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  if (!s->http_->bind_to_port(host, port)) {
    return absl::UnavailableError(fmt::format("cannot bind metrics HTTP server to {}:{}", host, port));
  }
  s->thread_ = std::thread([srv = s->http_.get()] { srv->listen_after_bind(); });
  return s;
}

void MetricsHttpServer::Stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

}  // namespace chamferdb
