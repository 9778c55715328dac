#include "server/aux_services.h"
#include "server/kernels_service.h"

namespace chamferdb {

std::vector<std::unique_ptr<grpc::Service>> AuxiliaryServices() {
  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(std::make_unique<KernelsService>());
  return services;
}

}  // namespace chamferdb
