#include "server/server.h"

#include <fmt/format.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

namespace chamferdb {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config) {
  std::unique_ptr<Server> s(new Server());
  s->config_ = config;
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return absl::UnavailableError(fmt::format("--data-dir {:?} cannot be created: {}", config.data_dir, ec.message()));
  RocksStoreOptions ro;
  ro.block_cache_bytes = config.block_cache_mb << 20;
  auto store = OpenRocksStore((std::filesystem::path(config.data_dir) / "db").string(), ro);
  if (!store.ok()) return store.status();
  s->store_ = std::move(store).value();
  auto registry = Registry::Open(s->store_.get(), config.sync);
  if (!registry.ok()) return registry.status();
  s->registry_ = std::move(registry).value();

  s->collections_service_ = std::make_unique<CollectionsService>(s->registry_.get());
  s->documents_service_ = std::make_unique<DocumentsService>(s->registry_.get());
  s->search_service_ = std::make_unique<SearchService>(s->registry_.get());
  s->kernels_service_ = std::make_unique<KernelsService>();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &s->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_mb) << 20);
  builder.SetMaxSendMessageSize(256 << 20);
  builder.RegisterService(s->collections_service_.get());
  builder.RegisterService(s->documents_service_.get());
  builder.RegisterService(s->search_service_.get());
  builder.RegisterService(s->kernels_service_.get());
  s->grpc_server_ = builder.BuildAndStart();
  if (!s->grpc_server_ || s->port_ == 0) {
    return absl::UnavailableError(fmt::format("cannot listen on {:?} (address in use or invalid)", config.listen));
  }
  s->grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  spdlog::info("chamferdb serving gRPC on {} (data in {:?}, sync={})", config.listen, config.data_dir, config.sync);
  return s;
}

absl::Status Server::Shutdown() {
  if (shut_down_) return absl::OkStatus();
  shut_down_ = true;
  spdlog::info("shutting down: finishing in-flight requests (up to {} s)", config_.shutdown_grace_seconds);
  if (grpc_server_) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(false);
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(config_.shutdown_grace_seconds));
    grpc_server_->Wait();
  }
  absl::Status s = store_ ? store_->Flush() : absl::OkStatus();
  spdlog::info("shutdown complete");
  return s;
}

void Server::Wait() {
  if (grpc_server_) grpc_server_->Wait();
}

Server::~Server() { Shutdown().IgnoreError(); }

}  // namespace chamferdb
