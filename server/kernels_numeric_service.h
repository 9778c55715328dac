// gRPC handlers of the numeric kernel family of chamferdb.v1.Kernels.
//
// The Kernels service is one gRPC service whose handlers are split by family into a chain
// of classes (geometry <- numeric <- applied); KernelsService (kernels_service.h) is the
// last link. Each family overrides only its own RPCs; an RPC nobody overrides answers
// UNIMPLEMENTED. Handlers are thin: decode tensors (tensor_convert.h), validate, call the
// library in kernels/, encode, all inside RunHandler (handler.h).
//
// Threads: each request runs on its gRPC thread; a request's `threads` (capped at the core
// count) sizes the OpenMP team of that one call. Results never depend on it.
// Thread-safety: stateless; every handler may run concurrently.
#pragma once

#include "server/kernels_geometry_service.h"

namespace chamferdb {

class NumericKernelsService : public GeometryKernelsService {
 public:
  grpc::Status Int8MixedLinear(grpc::ServerContext* ctx, const v1::Int8MixedLinearRequest* req,
                               v1::Int8MixedLinearResponse* resp) override;
  grpc::Status Int8MaxSim(grpc::ServerContext* ctx, const v1::Int8MaxSimRequest* req,
                          v1::Int8MaxSimResponse* resp) override;
  grpc::Status SpectralConv2d(grpc::ServerContext* ctx, const v1::SpectralConv2dRequest* req,
                              v1::SpectralConv2dResponse* resp) override;
  grpc::Status FourierResample(grpc::ServerContext* ctx, const v1::FourierResampleRequest* req,
                               v1::FourierResampleResponse* resp) override;
  grpc::Status QuadratureIntegralOperator(grpc::ServerContext* ctx,
                                          const v1::QuadratureIntegralRequest* req,
                                          v1::QuadratureIntegralResponse* resp) override;
  grpc::Status KernelInterpConv2d(grpc::ServerContext* ctx,
                                  const v1::KernelInterpConv2dRequest* req,
                                  v1::KernelInterpConv2dResponse* resp) override;
  grpc::Status SpGemm(grpc::ServerContext* ctx, const v1::SpGemmRequest* req,
                      v1::SpGemmResponse* resp) override;
  grpc::Status EvoNorm(grpc::ServerContext* ctx, const v1::EvoNormRequest* req,
                       v1::EvoNormResponse* resp) override;
  grpc::Status EbvGenerate(grpc::ServerContext* ctx, const v1::EbvGenerateRequest* req,
                           v1::EbvGenerateResponse* resp) override;
  grpc::Status EbvClassify(grpc::ServerContext* ctx, const v1::EbvClassifyRequest* req,
                           v1::EbvClassifyResponse* resp) override;
  grpc::Status MFacStaticPrecompute(grpc::ServerContext* ctx,
                                    const v1::MFacStaticPrecomputeRequest* req,
                                    v1::MFacStaticPrecomputeResponse* resp) override;
  grpc::Status MFacStaticApply(grpc::ServerContext* ctx, const v1::MFacStaticApplyRequest* req,
                               v1::MFacStaticApplyResponse* resp) override;
  grpc::Status MFacStaticDiag(grpc::ServerContext* ctx, const v1::MFacStaticDiagRequest* req,
                              v1::MFacStaticDiagResponse* resp) override;
  grpc::Status MFacStaticEntry(grpc::ServerContext* ctx, const v1::MFacStaticEntryRequest* req,
                               v1::MFacStaticEntryResponse* resp) override;
  grpc::Status MFacWindowInit(grpc::ServerContext* ctx, const v1::MFacWindowInitRequest* req,
                              v1::MFacWindowStateResponse* resp) override;
  grpc::Status MFacWindowUpdate(grpc::ServerContext* ctx, const v1::MFacWindowUpdateRequest* req,
                                v1::MFacWindowStateResponse* resp) override;
  grpc::Status MFacWindowApply(grpc::ServerContext* ctx, const v1::MFacWindowApplyRequest* req,
                               v1::MFacWindowApplyResponse* resp) override;
};

}  // namespace chamferdb
