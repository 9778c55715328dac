// The chamferdb server: owns the store, the registry, the gRPC services and the gRPC
// server, all as members, and shuts them down in order.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/services.h"
#include "storage/store.h"

namespace chamferdb {

// Appends per-collection gauges (Prometheus text format) for the metrics endpoint.
void RenderCollectionGauges(const Registry& registry, std::string* out);

class Server {
 public:
  // Opens the database (rebuilding indexes), then binds and starts serving. UNAVAILABLE if
  // the port cannot be bound; DATA_LOSS / FAILED_PRECONDITION if the data cannot be served.
  // `auxiliary` are further services served beside the data plane (the binary's choice:
  // the Kernels service in `chamferdb`, none in the data-plane build the sanitizer job
  // tests; see aux_services.h); the server owns them.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config,
                                                       std::vector<std::unique_ptr<grpc::Service>> auxiliary = {});
  ~Server();

  // Stops accepting, lets in-flight requests finish until the grace deadline, cancels the
  // rest, then flushes the store. Idempotent.
  absl::Status Shutdown();
  void Wait();
  int port() const { return port_; }

 private:
  Server() = default;

  ServerConfig config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<SnapshotManager> snapshots_;
  std::unique_ptr<CollectionsService> collections_service_;
  std::unique_ptr<DocumentsService> documents_service_;
  std::unique_ptr<SearchService> search_service_;
  std::unique_ptr<JsonRecordsService> json_service_;
  std::vector<std::unique_ptr<grpc::Service>> auxiliary_services_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<MetricsHttpServer> metrics_server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace chamferdb
