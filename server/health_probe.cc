#include "server/health_probe.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <sstream>

namespace chamferdb {

int RunHealthProbe(const ServerConfig& config) {
  const std::string target = "127.0.0.1" + config.listen.substr(config.listen.rfind(':'));
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!config.tls_cert.empty()) {
    std::ifstream in(config.tls_client_ca.empty() ? config.tls_cert : config.tls_client_ca);
    std::stringstream ss;
    ss << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ss.str();
    creds = grpc::SslCredentials(ssl);
    args.SetSslTargetNameOverride("localhost");
  }
  auto channel = grpc::CreateCustomChannel(target, creds, args);
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  grpc::Slice empty_slice(std::string{});
  grpc::ByteBuffer request(&empty_slice, 1), response;  // HealthCheckRequest{} is empty
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(s); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) {
    std::fprintf(stderr, "unhealthy: %s\n", status.error_message().c_str());
    return 1;
  }
  std::string bytes;
  std::vector<grpc::Slice> slices;
  if (response.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (bytes != std::string("\x08\x01", 2)) {  // status: SERVING
    std::fprintf(stderr, "unhealthy: not SERVING\n");
    return 1;
  }
  std::puts("SERVING");
  return 0;
}

}  // namespace chamferdb
