// gRPC handlers of the geometry kernel family of chamferdb.v1.Kernels.
//
// The Kernels service is one gRPC service whose handlers are split by family into a chain
// of classes (geometry <- numeric <- applied); KernelsService (kernels_service.h) is the
// last link. Each family overrides only its own RPCs; an RPC nobody overrides answers
// UNIMPLEMENTED. Handlers are thin: decode tensors (tensor_convert.h), validate shapes
// and the per-request work cap, call the library in kernels/, encode — all inside
// RunHandler (handler.h). Handlers keep no state; the kernels' table caches are
// process-wide and thread-safe, so any number of RPCs may run concurrently.
#pragma once

#include "chamferdb/v1/kernels.grpc.pb.h"

namespace chamferdb {

class GeometryKernelsService : public v1::Kernels::Service {
 public:
  // Gaunt tensor product (kernels/gaunt/gaunt.h).
  grpc::Status GauntTP(grpc::ServerContext* ctx, const v1::GauntTPRequest* req,
                       v1::GauntTPResponse* resp) override;
  // TinvNN invariant MDS (kernels/tinv/invariant_mds.h).
  grpc::Status InvariantMDS(grpc::ServerContext* ctx, const v1::InvariantMDSRequest* req,
                            v1::InvariantMDSResponse* resp) override;
  // VFN edge features and aggregation (kernels/vfn/vfn.h).
  grpc::Status VFNEdgeFeatures(grpc::ServerContext* ctx, const v1::VFNEdgeFeaturesRequest* req,
                               v1::VFNEdgeFeaturesResponse* resp) override;
  grpc::Status VFNAggregate(grpc::ServerContext* ctx, const v1::VFNAggregateRequest* req,
                            v1::VFNAggregateResponse* resp) override;
  // S-GCN features and convolution (kernels/sgcn/sgcn.h).
  grpc::Status SphericalGraphFeatures(grpc::ServerContext* ctx,
                                      const v1::SphericalGraphFeaturesRequest* req,
                                      v1::SphericalGraphFeaturesResponse* resp) override;
  grpc::Status SphericalGraphConv(grpc::ServerContext* ctx,
                                  const v1::SphericalGraphConvRequest* req,
                                  v1::SphericalGraphConvResponse* resp) override;
  // Lie group decompositions (kernels/lie/lie.h).
  grpc::Status LieDecompose(grpc::ServerContext* ctx, const v1::LieDecomposeRequest* req,
                            v1::LieDecomposeResponse* resp) override;
  grpc::Status LieCompose(grpc::ServerContext* ctx, const v1::LieComposeRequest* req,
                          v1::LieComposeResponse* resp) override;
  grpc::Status LieSample(grpc::ServerContext* ctx, const v1::LieSampleRequest* req,
                         v1::LieSampleResponse* resp) override;
  grpc::Status AffineLiftCoords(grpc::ServerContext* ctx, const v1::AffineLiftCoordsRequest* req,
                                v1::AffineLiftCoordsResponse* resp) override;
};

}  // namespace chamferdb
