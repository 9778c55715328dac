#include "server/aux_services.h"

namespace chamferdb {

std::vector<std::unique_ptr<grpc::Service>> AuxiliaryServices() { return {}; }

}  // namespace chamferdb
