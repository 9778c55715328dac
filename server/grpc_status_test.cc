#include "server/grpc_status.h"

#include <gtest/gtest.h>

namespace chamferdb {
namespace {

TEST(ToGrpcStatus, KeepsMeaningAndMessageOfEveryCode) {
  const std::pair<absl::Status, grpc::StatusCode> cases[] = {
      {absl::InvalidArgumentError("dim"), grpc::StatusCode::INVALID_ARGUMENT},
      {absl::NotFoundError("c"), grpc::StatusCode::NOT_FOUND},
      {absl::AlreadyExistsError("c"), grpc::StatusCode::ALREADY_EXISTS},
      {absl::ResourceExhaustedError("big"), grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::FailedPreconditionError("x"), grpc::StatusCode::FAILED_PRECONDITION},
      {absl::UnavailableError("x"), grpc::StatusCode::UNAVAILABLE},
      {absl::DataLossError("x"), grpc::StatusCode::DATA_LOSS},
      {absl::InternalError("x"), grpc::StatusCode::INTERNAL},
      {absl::UnauthenticatedError("x"), grpc::StatusCode::UNAUTHENTICATED},
      {absl::PermissionDeniedError("x"), grpc::StatusCode::PERMISSION_DENIED},
      {absl::DeadlineExceededError("x"), grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::UnimplementedError("x"), grpc::StatusCode::UNIMPLEMENTED},
      {absl::CancelledError("x"), grpc::StatusCode::CANCELLED},
      {absl::AbortedError("x"), grpc::StatusCode::ABORTED},
      {absl::OutOfRangeError("x"), grpc::StatusCode::OUT_OF_RANGE},
  };
  for (const auto& [in, want] : cases) {
    const grpc::Status out = ToGrpcStatus(in);
    EXPECT_EQ(out.error_code(), want) << in;
    EXPECT_EQ(out.error_message(), std::string(in.message()));
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace chamferdb
