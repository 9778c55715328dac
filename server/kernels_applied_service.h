// gRPC handlers of the applied kernel family of chamferdb.v1.Kernels.
//
// The Kernels service is one gRPC service whose handlers are split by family into a chain
// of classes (geometry <- numeric <- applied); KernelsService (kernels_service.h) is the
// last link. Each family overrides only its own RPCs; an RPC nobody overrides answers
// UNIMPLEMENTED. Handlers are thin: decode tensors (tensor_convert.h), call the library in
// kernels/, encode, all inside RunHandler (handler.h).
//
// Threads: handlers run on gRPC's pool; the bulk kernels use OpenMP inside one request
// (deterministic, see each kernel header). Requests never mutate shared state, so every
// handler is safe to call concurrently. Caps per request are documented in
// kernels_applied.proto.
#pragma once

#include "chamferdb/v1/kernels_applied.pb.h"
#include "server/kernels_numeric_service.h"

namespace chamferdb {

class AppliedKernelsService : public NumericKernelsService {
 public:
  // Bures–Wasserstein geometry and GBWBN (kernels/bures).
  grpc::Status BWBatchNorm(grpc::ServerContext* ctx, const v1::BWBatchNormRequest* req,
                           v1::BWBatchNormResponse* resp) override;
  grpc::Status BWDistance(grpc::ServerContext* ctx, const v1::BWDistanceRequest* req,
                          v1::BWDistanceResponse* resp) override;
  grpc::Status BWBarycenter(grpc::ServerContext* ctx, const v1::BWBarycenterRequest* req,
                            v1::BWBarycenterResponse* resp) override;
  grpc::Status BWGeodesic(grpc::ServerContext* ctx, const v1::BWGeodesicRequest* req,
                          v1::BWGeodesicResponse* resp) override;
  grpc::Status BWExpLog(grpc::ServerContext* ctx, const v1::BWExpLogRequest* req,
                        v1::BWExpLogResponse* resp) override;

  // Sheaf4Rec (kernels/sheaf).
  grpc::Status SheafDiffusion(grpc::ServerContext* ctx, const v1::SheafDiffusionRequest* req,
                              v1::SheafDiffusionResponse* resp) override;
  grpc::Status RecommendTopK(grpc::ServerContext* ctx, const v1::RecommendTopKRequest* req,
                             v1::RecommendTopKResponse* resp) override;
  grpc::Status RankingMetrics(grpc::ServerContext* ctx, const v1::RankingMetricsRequest* req,
                              v1::RankingMetricsResponse* resp) override;

  // T2V-NPR path geometry (kernels/paths).
  grpc::Status PathRegularity(grpc::ServerContext* ctx, const v1::PathRegularityRequest* req,
                              v1::PathRegularityResponse* resp) override;
  grpc::Status RasterizePaths(grpc::ServerContext* ctx, const v1::RasterizePathsRequest* req,
                              v1::RasterizePathsResponse* resp) override;
  grpc::Status PathDescriptor(grpc::ServerContext* ctx, const v1::PathDescriptorRequest* req,
                              v1::PathDescriptorResponse* resp) override;

  // INSR (kernels/insr).
  grpc::Status InsrAdvect1D(grpc::ServerContext* ctx, const v1::InsrAdvect1DRequest* req,
                            v1::InsrAdvect1DResponse* resp) override;
};

}  // namespace chamferdb
