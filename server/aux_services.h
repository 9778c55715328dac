// The services a server binary serves beside the data plane. Each binary links exactly one
// definition: aux_services_kernels.cc (the `chamferdb` server: the Kernels service) or
// aux_services_none.cc (`chamferdb-dataplane`, the data plane alone, which the sanitizer
// job builds without compiling the kernel families).
#pragma once

#include <grpcpp/impl/service_type.h>

#include <memory>
#include <vector>

namespace chamferdb {

std::vector<std::unique_ptr<grpc::Service>> AuxiliaryServices();

}  // namespace chamferdb
