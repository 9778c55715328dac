// Handlers of the geometry kernel family (see kernels_geometry_service.h).
#include "server/kernels_geometry_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "common/status_macros.h"
#include "kernels/gaunt/gaunt.h"
#include "kernels/tinv/invariant_mds.h"
#include "server/handler.h"
#include "server/tensor_convert.h"

namespace chamferdb {
namespace {

// Per-request work cap of GauntTP, in estimated flops.
constexpr double kGauntMaxWork = 34359738368.0;  // 2^35

// Per-request work cap of the O(N³) MDS route: B·N³.
constexpr double kMdsMaxCubicWork = 4294967296.0;  // 2^32 (≈ 10 s single-threaded)

// Request threads: 0 means 1; never more than the machine's cores.
int RequestThreads(int32_t requested) {
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  return std::clamp<int>(requested, 1, cores);
}

// Band limit L with (L+1)² == n, or INVALID_ARGUMENT naming the field.
absl::StatusOr<int> BandLimitOf(int64_t n, std::string_view field) {
  const int64_t r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  if (n < 1 || r * r != n) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: last dimension must be (L+1)² for a band limit L; got {}", field, n));
  }
  return static_cast<int>(r - 1);
}

// Decodes a real tensor of exactly `shape` (F64/F32), checking finiteness.
absl::StatusOr<HostTensor<double>> DecodeReal(const v1::Tensor& t, std::string_view field,
                                              const std::vector<int64_t>& shape) {
  ASSIGN_OR_RETURN(HostTensor<double> h, DecodeF64(t, field));
  RETURN_IF_ERROR(CheckShape(h.shape, shape, field));
  RETURN_IF_ERROR(CheckFinite(h.data.data(), h.numel(), field));
  return h;
}

// Encodes `data` with the dtype of the request's main input.
void EncodeLike(const v1::Tensor& like, const std::vector<int64_t>& shape,
                const std::vector<double>& data, v1::Tensor* out) {
  if (like.dtype() == v1::F32) {
    std::vector<float> f(data.begin(), data.end());
    EncodeF32(shape, f.data(), out);
  } else {
    EncodeF64(shape, data.data(), out);
  }
}

const char* GauntMethodName(gaunt::GauntMethod m) {
  switch (m) {
    case gaunt::GauntMethod::kDirect: return "direct";
    case gaunt::GauntMethod::kFourier: return "fourier";
    case gaunt::GauntMethod::kFourierDirectConv: return "fourier_direct_conv";
    case gaunt::GauntMethod::kGrid: return "grid";
  }
  return "?";
}

absl::StatusOr<gaunt::GauntMethod> ToGauntMethod(v1::GauntMethod m) {
  switch (m) {
    case v1::GAUNT_METHOD_FOURIER: return gaunt::GauntMethod::kFourier;
    case v1::GAUNT_METHOD_DIRECT: return gaunt::GauntMethod::kDirect;
    case v1::GAUNT_METHOD_GRID: return gaunt::GauntMethod::kGrid;
    case v1::GAUNT_METHOD_FOURIER_DIRECT_CONV: return gaunt::GauntMethod::kFourierDirectConv;
    default: break;
  }
  return absl::InvalidArgumentError(fmt::format("method: unknown value {}", static_cast<int>(m)));
}

absl::Status RunGauntTP(const v1::GauntTPRequest& req, v1::GauntTPResponse* resp) {
  ASSIGN_OR_RETURN(HostTensor<double> x, DecodeF64(req.x(), "x"));
  ASSIGN_OR_RETURN(HostTensor<double> y, DecodeF64(req.y(), "y"));
  RETURN_IF_ERROR(CheckShape(x.shape, {-1, -1, -1}, "x"));
  RETURN_IF_ERROR(CheckShape(y.shape, {x.shape[0], -1, -1}, "y"));
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  RETURN_IF_ERROR(CheckFinite(y.data.data(), y.numel(), "y"));
  gaunt::GauntTPShape s;
  s.batch = x.shape[0];
  s.channels = x.shape[1];
  s.y_channels = y.shape[1];
  ASSIGN_OR_RETURN(s.l1, BandLimitOf(x.shape[2], "x"));
  ASSIGN_OR_RETURN(s.l2, BandLimitOf(y.shape[2], "y"));
  s.lout = req.has_lout() ? req.lout() : s.l1 + s.l2;
  gaunt::GauntTPOptions o;
  ASSIGN_OR_RETURN(o.method, ToGauntMethod(req.method()));
  o.threads = RequestThreads(req.threads());
  o.n_beta = req.n_beta();
  o.n_alpha = req.n_alpha();
  RETURN_IF_ERROR(gaunt::ValidateGauntTP(s, o));
  const double work =
      static_cast<double>(s.batch) * s.channels * gaunt::GauntTPCostPerItem(s, o.method);
  if (work > kGauntMaxWork) {
    return absl::ResourceExhaustedError(fmt::format(
        "x: estimated work {:.3g} flops for B={} C={} L1={} L2={} lout={} exceeds the cap "
        "{:.3g}; split the batch",
        work, s.batch, s.channels, s.l1, s.l2, s.lout, kGauntMaxWork));
  }
  HostTensor<double> w1, w2, wout;
  gaunt::GauntTPWeights w;
  if (req.has_w1()) {
    ASSIGN_OR_RETURN(w1, DecodeReal(req.w1(), "w1", {s.channels, s.l1 + 1}));
    w.w1 = w1.data.data();
  }
  if (req.has_w2()) {
    ASSIGN_OR_RETURN(w2, DecodeReal(req.w2(), "w2", {s.channels, s.l2 + 1}));
    w.w2 = w2.data.data();
  }
  if (req.has_wout()) {
    ASSIGN_OR_RETURN(wout, DecodeReal(req.wout(), "wout", {s.channels, s.lout + 1}));
    w.wout = wout.data.data();
  }
  const int64_t n3 = static_cast<int64_t>(s.lout + 1) * (s.lout + 1);
  std::vector<double> z(static_cast<size_t>(s.batch * s.channels * n3));
  gaunt::GauntTPStats stats;
  RETURN_IF_ERROR(gaunt::GauntTensorProduct(s, x.data.data(), y.data.data(), w, o, z.data(),
                                            &stats));
  EncodeLike(req.x(), {s.batch, s.channels, n3}, z, resp->mutable_z());
  resp->set_method(GauntMethodName(o.method));
  resp->set_cache_hit(stats.cache_hit);
  resp->set_setup_seconds(stats.setup_seconds);
  resp->set_fft_size(stats.fft_size);
  resp->set_n_beta(stats.n_beta);
  resp->set_table_entries(stats.table_entries);
  return absl::OkStatus();
}

absl::Status RunInvariantMDS(const v1::InvariantMDSRequest& req, v1::InvariantMDSResponse* resp) {
  const bool has_points = req.has_points(), has_dist = req.has_dist();
  if (has_points == has_dist) {
    return absl::InvalidArgumentError("points / dist: give exactly one of them");
  }
  tinv::MdsOptions o;
  o.k = req.k();
  o.threads = RequestThreads(req.threads());
  o.tol = req.has_degeneracy_tol() ? req.degeneracy_tol() : 1e-8;
  if (!(o.tol > 0 && o.tol < 1)) {
    return absl::InvalidArgumentError(
        fmt::format("degeneracy_tol must be in (0, 1); got {}", o.tol));
  }
  switch (req.sign_rule()) {
    case v1::MDS_SIGN_THIRD_MOMENT: o.sign_rule = tinv::SignRule::kThirdMoment; break;
    case v1::MDS_SIGN_MAX_ABS: o.sign_rule = tinv::SignRule::kMaxAbs; break;
    default: return absl::InvalidArgumentError("sign_rule: unknown value");
  }
  switch (req.scale()) {
    case v1::MDS_SCALE_NONE: o.scale = tinv::ScaleNorm::kNone; break;
    case v1::MDS_SCALE_RMS: o.scale = tinv::ScaleNorm::kRms; break;
    default: return absl::InvalidArgumentError("scale: unknown value");
  }
  tinv::MdsMethod method;
  switch (req.method()) {
    case v1::MDS_METHOD_FAST: method = tinv::MdsMethod::kCoordinates; break;
    case v1::MDS_METHOD_NAIVE: method = tinv::MdsMethod::kDistance; break;
    default: return absl::InvalidArgumentError("method: unknown value");
  }
  const v1::Tensor& in = has_points ? req.points() : req.dist();
  const char* field = has_points ? "points" : "dist";
  ASSIGN_OR_RETURN(HostTensor<double> t, DecodeF64(in, field));
  RETURN_IF_ERROR(CheckShape(t.shape, {-1, -1, -1}, field));
  RETURN_IF_ERROR(CheckFinite(t.data.data(), t.numel(), field));
  const int64_t b = t.shape[0], n = t.shape[1];
  if (n < 1) return absl::InvalidArgumentError(fmt::format("{}: N must be ≥ 1", field));
  if (has_dist) {
    RETURN_IF_ERROR(CheckShape(t.shape, {b, n, n}, field));
    if (o.k < 1 || o.k > n) {
      return absl::InvalidArgumentError(
          fmt::format("k must be in [1, N = {}] for dist input; got {}", n, o.k));
    }
    method = tinv::MdsMethod::kDistance;
  } else {
    const int64_t d = t.shape[2];
    if (d < 1 || d > tinv::kMaxDim) {
      return absl::InvalidArgumentError(
          fmt::format("points: d must be in [1, {}]; got {}", tinv::kMaxDim, d));
    }
    if (o.k == 0) o.k = static_cast<int>(d);
    if (o.k < 1 || o.k > d) {
      return absl::InvalidArgumentError(fmt::format("k must be in [1, d = {}]; got {}", d, o.k));
    }
  }
  if (method == tinv::MdsMethod::kDistance) {
    const double work = static_cast<double>(b) * n * n * n;
    if (n > tinv::kMaxDistanceN || work > kMdsMaxCubicWork) {
      return absl::ResourceExhaustedError(fmt::format(
          "{}: the O(N³) route with B={} N={} exceeds the cap (N ≤ {}, B·N³ ≤ {:.3g})", field,
          b, n, tinv::kMaxDistanceN, kMdsMaxCubicWork));
    }
  }
  const int k = o.k;
  std::vector<double> y(static_cast<size_t>(b * n * k)), eig(b * k), stress(b);
  std::vector<int32_t> flags(b * k);
  const tinv::MdsOutput out{y.data(), eig.data(), flags.data(), stress.data()};
  if (has_points) {
    RETURN_IF_ERROR(tinv::InvariantMdsFromPoints(b, n, static_cast<int>(t.shape[2]),
                                                 t.data.data(), o, method, out));
  } else {
    RETURN_IF_ERROR(tinv::InvariantMdsFromDistances(b, n, t.data.data(), o, out));
  }
  EncodeLike(in, {b, n, k}, y, resp->mutable_y());
  EncodeF64({b, k}, eig.data(), resp->mutable_eigvals());
  EncodeI32({b, k}, flags.data(), resp->mutable_flags());
  EncodeF64({b}, stress.data(), resp->mutable_stress());
  resp->set_method(method == tinv::MdsMethod::kCoordinates ? "fast" : "naive");
  return absl::OkStatus();
}

}  // namespace

grpc::Status GeometryKernelsService::InvariantMDS(grpc::ServerContext* ctx,
                                                  const v1::InvariantMDSRequest* req,
                                                  v1::InvariantMDSResponse* resp) {
  return RunHandler(ctx, "InvariantMDS",
                    [&]() -> absl::Status { return RunInvariantMDS(*req, resp); });
}

grpc::Status GeometryKernelsService::GauntTP(grpc::ServerContext* ctx,
                                             const v1::GauntTPRequest* req,
                                             v1::GauntTPResponse* resp) {
  return RunHandler(ctx, "GauntTP", [&]() -> absl::Status { return RunGauntTP(*req, resp); });
}

}  // namespace chamferdb
