// The chamferdb.v1.Kernels service: the last link of the family chain (see
// kernels_geometry_service.h).
#pragma once

#include "server/kernels_applied_service.h"

namespace chamferdb {

using KernelsService = AppliedKernelsService;

}  // namespace chamferdb
