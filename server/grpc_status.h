// The one place where absl::Status becomes grpc::Status.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace chamferdb {

// Maps every absl code to the gRPC code of the same documented meaning and keeps the
// message verbatim. The numbering of the two enums happens to agree, but the mapping is
// explicit so that neither side's future codes are silently miscast.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace chamferdb
