// Handlers of the geometry kernel family (see kernels_geometry_service.h).
#include "server/kernels_geometry_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "common/status_macros.h"
#include "kernels/gaunt/gaunt.h"
#include "kernels/lie/lie.h"
#include "kernels/sgcn/sgcn.h"
#include "kernels/sphere/frames.h"
#include "kernels/tinv/invariant_mds.h"
#include "kernels/vfn/vfn.h"
#include "server/handler.h"
#include "server/tensor_convert.h"

namespace chamferdb {
namespace {

// Per-request work cap of GauntTP, in estimated flops. 2^33 ≈ 4–5 s of one core: the cost
// models run at ≈ 0.45–0.6 ns per unit (kernels_fuzz review: FOURIER_DIRECT_CONV at
// L1 = L2 = 48 with 96 channels stayed under the old 2^35 and ran 21 s).
constexpr double kGauntMaxWork = 8589934592.0;  // 2^33

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
    case gaunt::GauntMethod::kDense: return "dense";
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
    case v1::GAUNT_METHOD_DENSE: return gaunt::GauntMethod::kDense;
    default: break;
  }
  return absl::InvalidArgumentError(fmt::format("method: unknown value {}", static_cast<int>(m)));
}

// GauntTP with nu ≥ 2: the ν-fold product of x on the sphere grid (no y).
absl::Status RunGauntManyBody(const v1::GauntTPRequest& req, v1::GauntTPResponse* resp) {
  if (req.has_y() || req.has_w2()) {
    return absl::InvalidArgumentError("y / w2: not used with nu ≥ 2 (the product of ν copies of x)");
  }
  if (req.method() != v1::GAUNT_METHOD_FOURIER && req.method() != v1::GAUNT_METHOD_GRID) {
    return absl::InvalidArgumentError("method: nu ≥ 2 runs on the grid (method grid or default)");
  }
  if (req.n_beta() != 0 || req.n_alpha() != 0) {
    return absl::InvalidArgumentError("n_beta / n_alpha: not supported with nu ≥ 2");
  }
  ASSIGN_OR_RETURN(HostTensor<double> x, DecodeF64(req.x(), "x"));
  RETURN_IF_ERROR(CheckShape(x.shape, {-1, -1, -1}, "x"));
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  gaunt::GauntTPShape s;
  s.batch = x.shape[0];
  s.channels = x.shape[1];
  s.y_channels = 1;
  ASSIGN_OR_RETURN(s.l1, BandLimitOf(x.shape[2], "x"));
  const int nu = req.nu();
  s.lout = req.has_lout() ? req.lout() : nu * s.l1;
  if (nu > gaunt::kMaxNu || s.lout < 0 || s.lout > nu * s.l1) {
    return absl::InvalidArgumentError(fmt::format(
        "nu must be ≤ {} and lout in [0, nu·L1 = {}]; got nu = {}, lout = {}", gaunt::kMaxNu,
        nu * s.l1, nu, s.lout));
  }
  const double n = nu * s.l1 + s.lout + 1;
  const double per_item = 5.0 * n * n * std::log2(n) + 6.0 * n * std::pow(std::max(s.l1, s.lout) + 1, 2) +
                          nu * n * n;
  const double work = static_cast<double>(s.batch) * s.channels * per_item;
  if (work > kGauntMaxWork) {
    return absl::ResourceExhaustedError(fmt::format(
        "x: estimated work {:.3g} flops exceeds the cap {:.3g}; split the batch", work,
        kGauntMaxWork));
  }
  HostTensor<double> w1, wout;
  if (req.has_w1()) {
    ASSIGN_OR_RETURN(w1, DecodeReal(req.w1(), "w1", {s.channels, s.l1 + 1}));
  }
  if (req.has_wout()) {
    ASSIGN_OR_RETURN(wout, DecodeReal(req.wout(), "wout", {s.channels, s.lout + 1}));
  }
  const int64_t n3 = static_cast<int64_t>(s.lout + 1) * (s.lout + 1);
  std::vector<double> z(static_cast<size_t>(s.batch * s.channels * n3));
  gaunt::GauntTPStats stats;
  RETURN_IF_ERROR(gaunt::GauntManyBody(s, nu, x.data.data(),
                                       req.has_w1() ? w1.data.data() : nullptr,
                                       req.has_wout() ? wout.data.data() : nullptr,
                                       RequestThreads(req.threads()), z.data(), &stats));
  EncodeLike(req.x(), {s.batch, s.channels, n3}, z, resp->mutable_z());
  resp->set_method("grid");
  resp->set_cache_hit(stats.cache_hit);
  resp->set_setup_seconds(stats.setup_seconds);
  resp->set_fft_size(stats.fft_size);
  resp->set_n_beta(stats.n_beta);
  return absl::OkStatus();
}

absl::Status RunGauntTP(const v1::GauntTPRequest& req, v1::GauntTPResponse* resp) {
  if (req.nu() < 0 || req.nu() == 1) {
    return absl::InvalidArgumentError(fmt::format("nu must be 0 (two inputs) or ≥ 2; got {}", req.nu()));
  }
  if (req.nu() >= 2) return RunGauntManyBody(req, resp);
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

// ---------------------------------------------------------------- VFN helpers

constexpr int64_t kVfnMaxResidues = 65536;
constexpr int64_t kVfnMaxKnnResidues = 16384;
constexpr int64_t kVfnMaxAllPairsResidues = 4096;
constexpr int64_t kVfnMaxEdges = int64_t{1} << 24;
constexpr double kVfnMaxWork = 17179869184.0;  // 2^34
// Output elements per request (all response tensors together): 2^25 (256 MB).
constexpr double kVfnMaxOutput = 33554432.0;

// Integer tensor as int64 (I64 or I32 accepted).
absl::StatusOr<HostTensor<int64_t>> DecodeIndex(const v1::Tensor& t, std::string_view field) {
  if (t.dtype() == v1::I32) {
    ASSIGN_OR_RETURN(HostTensor<int32_t> h, DecodeI32(t, field));
    return HostTensor<int64_t>{h.shape, std::vector<int64_t>(h.data.begin(), h.data.end())};
  }
  return DecodeI64(t, field);
}

struct FrameData {
  int64_t n = 0;
  std::vector<double> rot, trans;
};

template <typename Req>
absl::StatusOr<FrameData> DecodeFrames(const Req& req) {
  FrameData f;
  if (req.has_backbone() == (req.has_rot() || req.has_trans())) {
    return absl::InvalidArgumentError("backbone / rot + trans: give exactly one of them");
  }
  if (req.has_backbone()) {
    ASSIGN_OR_RETURN(HostTensor<double> bb, DecodeReal(req.backbone(), "backbone", {-1, 3, 3}));
    f.n = bb.shape[0];
    f.rot.resize(f.n * 9);
    f.trans.resize(f.n * 3);
    if (f.n > kVfnMaxResidues) {
      return absl::ResourceExhaustedError(
          fmt::format("backbone: N = {} exceeds {}", f.n, kVfnMaxResidues));
    }
    RETURN_IF_ERROR(
        sphere::FramesFromBackbone(f.n, bb.data.data(), f.rot.data(), f.trans.data()));
  } else {
    ASSIGN_OR_RETURN(HostTensor<double> r, DecodeReal(req.rot(), "rot", {-1, 3, 3}));
    f.n = r.shape[0];
    if (f.n > kVfnMaxResidues) {
      return absl::ResourceExhaustedError(
          fmt::format("rot: N = {} exceeds {}", f.n, kVfnMaxResidues));
    }
    ASSIGN_OR_RETURN(HostTensor<double> t, DecodeReal(req.trans(), "trans", {f.n, 3}));
    for (int64_t i = 0; i < f.n; ++i) {
      const double* m = &r.data[i * 9];
      double worst = 0;
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          double dot = 0;
          for (int k = 0; k < 3; ++k) dot += m[k * 3 + a] * m[k * 3 + b];
          worst = std::max(worst, std::abs(dot - (a == b ? 1.0 : 0.0)));
        }
      const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                         m[2] * (m[3] * m[7] - m[4] * m[6]);
      if (worst > 1e-6 || det < 0) {
        return absl::InvalidArgumentError(
            fmt::format("rot: frame {} is not a rotation (‖RᵀR − I‖ = {:.2g}, det = {:.3g})", i,
                        worst, det));
      }
    }
    f.rot = std::move(r.data);
    f.trans = std::move(t.data);
  }
  if (f.n < 1) return absl::InvalidArgumentError("frames: N must be ≥ 1");
  return f;
}

template <typename Req>
absl::StatusOr<std::vector<int64_t>> DecodeEdges(const Req& req, const FrameData& f) {
  const int given = (req.has_edges() ? 1 : 0) + (req.all_pairs() ? 1 : 0) + (req.knn() != 0 ? 1 : 0);
  if (given != 1) {
    return absl::InvalidArgumentError("edges / all_pairs / knn: give exactly one of them");
  }
  std::vector<int64_t> ij;
  if (req.has_edges()) {
    ASSIGN_OR_RETURN(HostTensor<int64_t> e, DecodeIndex(req.edges(), "edges"));
    RETURN_IF_ERROR(CheckShape(e.shape, {-1, 2}, "edges"));
    if (e.shape[0] > kVfnMaxEdges) {
      return absl::ResourceExhaustedError(
          fmt::format("edges: E = {} exceeds {}", e.shape[0], kVfnMaxEdges));
    }
    ij = std::move(e.data);
  } else if (req.all_pairs()) {
    if (f.n > kVfnMaxAllPairsResidues) {
      return absl::ResourceExhaustedError(fmt::format(
          "all_pairs: N = {} exceeds {} (E = N(N−1))", f.n, kVfnMaxAllPairsResidues));
    }
    ij.resize(f.n * (f.n - 1) * 2);
    vfn::AllPairsEdges(f.n, ij.data());
  } else {
    if (req.knn() < 1 || req.knn() >= f.n) {
      return absl::InvalidArgumentError(
          fmt::format("knn must be in [1, N−1 = {}]; got {}", f.n - 1, req.knn()));
    }
    if (f.n > kVfnMaxKnnResidues) {
      return absl::ResourceExhaustedError(
          fmt::format("knn: N = {} exceeds {}", f.n, kVfnMaxKnnResidues));
    }
    ij.resize(f.n * req.knn() * 2);
    vfn::KnnEdges(f.n, f.trans.data(), req.knn(), ij.data());
  }
  return ij;
}

template <typename Req>
absl::StatusOr<vfn::VfnMethod> ToVfnMethod(const Req& req, int64_t n) {
  switch (req.method()) {
    case v1::VFN_METHOD_FAST: return vfn::VfnMethod::kFast;
    case v1::VFN_METHOD_NAIVE:
      if (n > vfn::kMaxNaiveResidues) {
        return absl::ResourceExhaustedError(fmt::format(
            "method naive materialises N×N tensors: N = {} exceeds {}", n,
            vfn::kMaxNaiveResidues));
      }
      return vfn::VfnMethod::kNaive;
    default: break;
  }
  return absl::InvalidArgumentError("method: unknown value");
}

absl::Status RunVFNEdgeFeatures(const v1::VFNEdgeFeaturesRequest& req,
                                v1::VFNEdgeFeaturesResponse* resp) {
  ASSIGN_OR_RETURN(FrameData f, DecodeFrames(req));
  ASSIGN_OR_RETURN(std::vector<int64_t> ij, DecodeEdges(req, f));
  ASSIGN_OR_RETURN(vfn::VfnMethod method, ToVfnMethod(req, f.n));
  ASSIGN_OR_RETURN(HostTensor<double> q, DecodeReal(req.q(), "q", {f.n, -1, 3}));
  const int64_t k = q.shape[1];
  ASSIGN_OR_RETURN(HostTensor<double> v, DecodeReal(req.v(), "v", {f.n, k, 3}));
  ASSIGN_OR_RETURN(HostTensor<double> w, DecodeReal(req.w(), "w", {-1, 2 * k}));
  const int64_t kp = w.shape[0];
  if (k < 1 || k > vfn::kMaxAtoms || kp < 1 || kp > vfn::kMaxAtoms) {
    return absl::InvalidArgumentError(fmt::format(
        "q / w: K and K' must be in [1, {}]; got K = {}, K' = {}", vfn::kMaxAtoms, k, kp));
  }
  HostTensor<double> mu, sigma;
  if (req.has_mu() != req.has_sigma()) {
    return absl::InvalidArgumentError("mu / sigma: give both or neither");
  }
  int64_t g = 0;
  if (req.has_mu()) {
    ASSIGN_OR_RETURN(mu, DecodeReal(req.mu(), "mu", {kp, -1}));
    g = mu.shape[1];
    ASSIGN_OR_RETURN(sigma, DecodeReal(req.sigma(), "sigma", {kp, g}));
  }
  const int64_t e = static_cast<int64_t>(ij.size() / 2);
  const double work = static_cast<double>(e) * (6.0 * k * kp + 45.0 * k + 20.0 * kp * (g + 1)) +
                      (method == vfn::VfnMethod::kNaive ? 100.0 * f.n * f.n * k : 0.0);
  if (work > kVfnMaxWork) {
    return absl::ResourceExhaustedError(fmt::format(
        "edges: estimated work {:.3g} flops (E = {}, K = {}, K' = {}) exceeds the cap {:.3g}",
        work, e, k, kp, kVfnMaxWork));
  }
  const double output = static_cast<double>(e) * kp * (7 + g);
  if (output > kVfnMaxOutput) {
    return absl::ResourceExhaustedError(fmt::format(
        "edges: output of {:.3g} elements (E = {}, K' = {}, G = {}) exceeds the cap {:.3g}",
        output, e, kp, g, kVfnMaxOutput));
  }
  vfn::EdgeFeatureParams p;
  p.k = static_cast<int>(k);
  p.kp = static_cast<int>(kp);
  p.g = static_cast<int>(g);
  p.w = w.data.data();
  p.residual = req.residual();
  p.mu = g > 0 ? mu.data.data() : nullptr;
  p.sigma = g > 0 ? sigma.data.data() : nullptr;
  const vfn::Frames frames{f.n, f.rot.data(), f.trans.data(),
                           req.has_coord_scale() ? req.coord_scale() : 1.0};
  std::vector<double> u(e * kp * 3), len(e * kp), dir(e * kp * 3), rbf(e * kp * g);
  RETURN_IF_ERROR(vfn::VfnEdgeFeatures(frames, q.data.data(), v.data.data(), {e, ij.data()}, p,
                                       method, RequestThreads(req.threads()),
                                       {u.data(), len.data(), dir.data(), rbf.data()}));
  EncodeLike(req.q(), {e, kp, 3}, u, resp->mutable_u());
  EncodeLike(req.q(), {e, kp}, len, resp->mutable_len());
  EncodeLike(req.q(), {e, kp, 3}, dir, resp->mutable_dir());
  EncodeLike(req.q(), {e, kp, g}, rbf, resp->mutable_rbf());
  EncodeI64({e, 2}, ij.data(), resp->mutable_edges());
  EncodeF64({f.n, 3, 3}, f.rot.data(), resp->mutable_rot());
  EncodeF64({f.n, 3}, f.trans.data(), resp->mutable_trans());
  return absl::OkStatus();
}

absl::Status RunVFNAggregate(const v1::VFNAggregateRequest& req, v1::VFNAggregateResponse* resp) {
  ASSIGN_OR_RETURN(FrameData f, DecodeFrames(req));
  ASSIGN_OR_RETURN(std::vector<int64_t> ij, DecodeEdges(req, f));
  ASSIGN_OR_RETURN(vfn::VfnMethod method, ToVfnMethod(req, f.n));
  const int64_t e = static_cast<int64_t>(ij.size() / 2);
  ASSIGN_OR_RETURN(HostTensor<double> logits, DecodeReal(req.logits(), "logits", {e, -1}));
  const int64_t h = logits.shape[1];
  if (h < 1 || h > 256) {
    return absl::InvalidArgumentError(fmt::format("logits: H must be in [1, 256]; got {}", h));
  }
  std::vector<uint8_t> mask;
  if (req.has_edge_mask()) {
    HostTensor<int64_t> m;
    if (req.edge_mask().dtype() == v1::U8) {
      if (static_cast<int64_t>(req.edge_mask().data().size()) != e ||
          req.edge_mask().shape_size() != 1 || req.edge_mask().shape(0) != e) {
        return absl::InvalidArgumentError(fmt::format("edge_mask: expected U8 [{}]", e));
      }
      mask.assign(req.edge_mask().data().begin(), req.edge_mask().data().end());
    } else {
      ASSIGN_OR_RETURN(m, DecodeIndex(req.edge_mask(), "edge_mask"));
      RETURN_IF_ERROR(CheckShape(m.shape, {e}, "edge_mask"));
      for (int64_t x : m.data) mask.push_back(x != 0 ? 1 : 0);
    }
  }
  HostTensor<double> val, vv;
  int64_t d = 0, kv = 0;
  if (req.has_val()) {
    ASSIGN_OR_RETURN(val, DecodeReal(req.val(), "val", {f.n, h, -1}));
    d = val.shape[2];
  }
  if (req.has_vv()) {
    ASSIGN_OR_RETURN(vv, DecodeReal(req.vv(), "vv", {f.n, -1, 3}));
    kv = vv.shape[1];
    if (kv > vfn::kMaxAtoms) {
      return absl::InvalidArgumentError(
          fmt::format("vv: Kv must be ≤ {}; got {}", vfn::kMaxAtoms, kv));
    }
  }
  const double work = static_cast<double>(e) * h * (10.0 + d + 3.0 * kv) +
                      (method == vfn::VfnMethod::kNaive ? 50.0 * f.n * f.n * (h + kv) : 0.0);
  if (work > kVfnMaxWork) {
    return absl::ResourceExhaustedError(fmt::format(
        "logits: estimated work {:.3g} flops exceeds the cap {:.3g}", work, kVfnMaxWork));
  }
  const double output = static_cast<double>(e) * h + static_cast<double>(f.n) * h * (d + 3 * kv);
  if (output > kVfnMaxOutput) {
    return absl::ResourceExhaustedError(fmt::format(
        "logits: output of {:.3g} elements exceeds the cap {:.3g}", output, kVfnMaxOutput));
  }
  const vfn::Frames frames{f.n, f.rot.data(), f.trans.data(),
                           req.has_coord_scale() ? req.coord_scale() : 1.0};
  std::vector<double> alpha(e * h), os(f.n * h * d), ov(f.n * h * kv * 3);
  vfn::AggregateInput in;
  in.h = static_cast<int>(h);
  in.d = static_cast<int>(d);
  in.kv = static_cast<int>(kv);
  in.logits = logits.data.data();
  in.edge_mask = mask.empty() ? nullptr : mask.data();
  in.val = d > 0 ? val.data.data() : nullptr;
  in.vv = kv > 0 ? vv.data.data() : nullptr;
  RETURN_IF_ERROR(vfn::VfnAggregate(frames, {e, ij.data()}, in, method,
                                    RequestThreads(req.threads()),
                                    {alpha.data(), os.data(), ov.data()}));
  EncodeF64({e, h}, alpha.data(), resp->mutable_alpha());
  EncodeF64({f.n, h, d}, os.data(), resp->mutable_o_scalar());
  EncodeF64({f.n, h, kv, 3}, ov.data(), resp->mutable_o_vec());
  EncodeI64({e, 2}, ij.data(), resp->mutable_edges());
  return absl::OkStatus();
}

// ---------------------------------------------------------------- S-GCN helpers

constexpr int64_t kSgcnMaxResidues = 65536;
constexpr int64_t kSgcnMaxEdges = int64_t{1} << 22;
// Output elements per request (E·(L+1)², the largest response tensor): 2^24 (128 MB).
constexpr int64_t kSgcnMaxOutput = int64_t{1} << 24;
constexpr double kSgcnMaxWork = 17179869184.0;  // 2^34

absl::StatusOr<sgcn::SgcnMethod> ToSgcnMethod(v1::SgcnMethod m, int64_t n) {
  switch (m) {
    case v1::SGCN_METHOD_FAST: return sgcn::SgcnMethod::kFast;
    case v1::SGCN_METHOD_NAIVE:
      if (n > sgcn::kMaxNaiveResidues) {
        return absl::ResourceExhaustedError(fmt::format(
            "method naive builds dense R×R matrices: R = {} exceeds {}", n,
            sgcn::kMaxNaiveResidues));
      }
      return sgcn::SgcnMethod::kNaive;
    default: break;
  }
  return absl::InvalidArgumentError("method: unknown value");
}

// Decodes the graph spec and builds the features.
absl::StatusOr<sgcn::GraphFeatures> BuildGraph(const v1::SphericalGraphSpec& spec,
                                               v1::SgcnMethod wire_method, int threads,
                                               sgcn::SgcnMethod* method) {
  ASSIGN_OR_RETURN(HostTensor<double> bb, DecodeReal(spec.backbone(), "graph.backbone", {-1, 3, 3}));
  const int64_t n = bb.shape[0];
  if (n < 1) return absl::InvalidArgumentError("graph.backbone: R must be ≥ 1");
  if (n > kSgcnMaxResidues) {
    return absl::ResourceExhaustedError(
        fmt::format("graph.backbone: R = {} exceeds {}", n, kSgcnMaxResidues));
  }
  ASSIGN_OR_RETURN(*method, ToSgcnMethod(wire_method, n));
  sgcn::FeatureOptions o;
  o.lmax = spec.has_lmax() ? spec.lmax() : 4;
  o.threads = threads;
  if (o.lmax < 0 || o.lmax > sgcn::kMaxDegree) {
    return absl::InvalidArgumentError(
        fmt::format("graph.lmax must be in [0, {}]; got {}", sgcn::kMaxDegree, o.lmax));
  }
  o.max_edges = std::min<int64_t>(kSgcnMaxEdges, kSgcnMaxOutput / ((o.lmax + 1) * (o.lmax + 1)));
  if (!(spec.cutoff() >= 0) || !std::isfinite(spec.cutoff())) {
    return absl::InvalidArgumentError("graph.cutoff must be finite and ≥ 0");
  }
  o.cutoff = spec.cutoff();
  HostTensor<int64_t> edges;
  if (spec.has_edges()) {
    ASSIGN_OR_RETURN(edges, DecodeIndex(spec.edges(), "graph.edges"));
    RETURN_IF_ERROR(CheckShape(edges.shape, {-1, 2}, "graph.edges"));
    if (edges.shape[0] > o.max_edges) {
      return absl::ResourceExhaustedError(fmt::format(
          "graph.edges: E = {} exceeds {} (E·(L+1)² ≤ {})", edges.shape[0], o.max_edges,
          kSgcnMaxOutput));
    }
    o.edges = edges.data.data();
    o.e = edges.shape[0];
  }
  HostTensor<double> weight, centres;
  switch (spec.radial()) {
    case v1::SGCN_RADIAL_NONE: o.radial = sgcn::Radial::kNone; break;
    case v1::SGCN_RADIAL_EDGE_WEIGHT: {
      o.radial = sgcn::Radial::kEdgeWeight;
      if (!spec.has_edges()) {
        return absl::InvalidArgumentError("graph.edge_weight needs explicit graph.edges");
      }
      ASSIGN_OR_RETURN(weight, DecodeReal(spec.edge_weight(), "graph.edge_weight", {o.e}));
      o.edge_weight = weight.data.data();
      break;
    }
    case v1::SGCN_RADIAL_RBF: {
      o.radial = sgcn::Radial::kRbf;
      ASSIGN_OR_RETURN(centres, DecodeReal(spec.rbf_centres(), "graph.rbf_centres", {-1}));
      if (centres.shape[0] < 1 || centres.shape[0] > 64) {
        return absl::InvalidArgumentError("graph.rbf_centres: need 1..64 centres");
      }
      o.rbf_centres = centres.data;
      o.rbf_width = spec.rbf_width();
      break;
    }
    default: return absl::InvalidArgumentError("graph.radial: unknown value");
  }
  sgcn::GraphFeatures g;
  RETURN_IF_ERROR(sgcn::SphericalGraphFeatures(n, bb.data.data(), o, *method, &g));
  return g;
}

absl::Status RunSphericalGraphFeatures(const v1::SphericalGraphFeaturesRequest& req,
                                       v1::SphericalGraphFeaturesResponse* resp) {
  sgcn::SgcnMethod method;
  ASSIGN_OR_RETURN(sgcn::GraphFeatures g,
                   BuildGraph(req.graph(), req.method(), RequestThreads(req.threads()), &method));
  const int64_t e = g.num_edges();
  EncodeF64({g.n, 3, 3}, g.rot.data(), resp->mutable_rot());
  EncodeF64({g.n, 3}, g.origin.data(), resp->mutable_origin());
  EncodeI64({e, 2}, g.edges.data(), resp->mutable_edges());
  EncodeF64({e, 3}, g.local.data(), resp->mutable_local());
  EncodeF64({e, 3}, g.sph.data(), resp->mutable_sph());
  EncodeF64({e, (g.lmax + 1) * (g.lmax + 1)}, g.y.data(), resp->mutable_y());
  EncodeF64({e, g.kr}, g.rad.data(), resp->mutable_rad());
  return absl::OkStatus();
}

absl::Status RunSphericalGraphConv(const v1::SphericalGraphConvRequest& req,
                                   v1::SphericalGraphConvResponse* resp) {
  sgcn::SgcnMethod method;
  const int threads = RequestThreads(req.threads());
  ASSIGN_OR_RETURN(sgcn::GraphFeatures g, BuildGraph(req.graph(), req.method(), threads, &method));
  ASSIGN_OR_RETURN(HostTensor<double> x, DecodeReal(req.x(), "x", {g.n, -1}));
  const int64_t f = x.shape[1];
  ASSIGN_OR_RETURN(HostTensor<double> w0, DecodeReal(req.w0(), "w0", {f, -1}));
  const int64_t fp = w0.shape[1];
  const int64_t nt = static_cast<int64_t>(g.lmax + 1) * (g.lmax + 1) * g.kr;
  ASSIGN_OR_RETURN(HostTensor<double> w, DecodeReal(req.w(), "w", {nt, f, fp}));
  if (f < 1 || fp < 1) return absl::InvalidArgumentError("x / w0: F and F' must be ≥ 1");
  HostTensor<double> bias;
  if (req.has_bias()) {
    ASSIGN_OR_RETURN(bias, DecodeReal(req.bias(), "bias", {fp}));
  }
  const double e = static_cast<double>(g.num_edges());
  const double work = 2.0 * e * nt * f + 2.0 * g.n * (nt + 1) * f * fp +
                      (method == sgcn::SgcnMethod::kNaive
                           ? 2.0 * nt * (static_cast<double>(g.n) * g.n * fp + g.n * f * fp)
                           : 0.0);
  if (work > kSgcnMaxWork) {
    return absl::ResourceExhaustedError(fmt::format(
        "x: estimated work {:.3g} flops exceeds the cap {:.3g}", work, kSgcnMaxWork));
  }
  sgcn::ConvParams p;
  p.f = static_cast<int>(f);
  p.fp = static_cast<int>(fp);
  p.x = x.data.data();
  p.w0 = w0.data.data();
  p.w = w.data.data();
  p.bias = req.has_bias() ? bias.data.data() : nullptr;
  switch (req.activation()) {
    case v1::SGCN_ACTIVATION_NONE: p.activation = sgcn::Activation::kNone; break;
    case v1::SGCN_ACTIVATION_RELU: p.activation = sgcn::Activation::kRelu; break;
    case v1::SGCN_ACTIVATION_ELU: p.activation = sgcn::Activation::kElu; break;
    default: return absl::InvalidArgumentError("activation: unknown value");
  }
  p.normalize_rows = req.normalize_rows();
  p.threads = threads;
  std::vector<double> h(g.n * fp);
  RETURN_IF_ERROR(sgcn::SphericalGraphConv(g, p, method, h.data()));
  EncodeLike(req.x(), {g.n, fp}, h, resp->mutable_h());
  EncodeI64({g.num_edges(), 2}, g.edges.data(), resp->mutable_edges());
  return absl::OkStatus();
}

// ---------------------------------------------------------------- Lie helpers

constexpr int64_t kLieMaxBatch = int64_t{1} << 20;
constexpr int64_t kLieMaxLiftCells = int64_t{1} << 22;

absl::StatusOr<lie::Group> ToLieGroup(v1::LieGroup g) {
  switch (g) {
    case v1::LIE_GROUP_GL_PLUS: return lie::Group::kGLPlus;
    case v1::LIE_GROUP_SL: return lie::Group::kSL;
    default: break;
  }
  return absl::InvalidArgumentError("group: unknown value");
}

template <typename Req>
absl::StatusOr<double> LieAlpha(const Req& req) {
  const double a = req.has_alpha() ? req.alpha() : 1.0;
  if (!(a > 0) || !std::isfinite(a)) {
    return absl::InvalidArgumentError(fmt::format("alpha must be finite and > 0; got {}", a));
  }
  return a;
}

absl::Status RunLieDecompose(const v1::LieDecomposeRequest& req, v1::LieDecomposeResponse* resp) {
  ASSIGN_OR_RETURN(lie::Group group, ToLieGroup(req.group()));
  ASSIGN_OR_RETURN(double alpha, LieAlpha(req));
  ASSIGN_OR_RETURN(HostTensor<double> g, DecodeReal(req.g(), "g", {-1, -1, -1}));
  const int64_t b = g.shape[0], n = g.shape[1];
  if (g.shape[2] != n || (n != 2 && n != 3)) {
    return absl::InvalidArgumentError("g: shape must be [B, n, n] with n = 2 or 3");
  }
  if (b > kLieMaxBatch) {
    return absl::ResourceExhaustedError(fmt::format("g: B = {} exceeds {}", b, kLieMaxBatch));
  }
  lie::DecomposeMethod method;
  switch (req.method()) {
    case v1::LIE_DECOMPOSE_AUTO: method = lie::DecomposeMethod::kAuto; break;
    case v1::LIE_DECOMPOSE_CLOSED_FORM: method = lie::DecomposeMethod::kClosedForm; break;
    case v1::LIE_DECOMPOSE_SVD: method = lie::DecomposeMethod::kSvd; break;
    case v1::LIE_DECOMPOSE_EIGH: method = lie::DecomposeMethod::kEigh; break;
    default: return absl::InvalidArgumentError("method: unknown value");
  }
  const double sl_tol = req.has_sl_tol() ? req.sl_tol() : 1e-9;
  if (!(sl_tol > 0)) return absl::InvalidArgumentError("sl_tol must be > 0");
  const int ni = static_cast<int>(n), dim = lie::AlgebraDim(group, ni);
  std::vector<double> p(b * n * n), r(p.size()), x(p.size()), w(p.size()), theta(b),
      xi(b * dim), lh(b);
  RETURN_IF_ERROR(lie::Decompose(group, ni, b, g.data.data(), method, alpha, sl_tol,
                                 RequestThreads(req.threads()),
                                 {p.data(), r.data(), x.data(), w.data(), theta.data(),
                                  xi.data(), lh.data()}));
  EncodeF64({b, n, n}, p.data(), resp->mutable_p());
  EncodeF64({b, n, n}, r.data(), resp->mutable_r());
  EncodeF64({b, n, n}, x.data(), resp->mutable_x());
  EncodeF64({b, n, n}, w.data(), resp->mutable_omega());
  EncodeF64({b}, theta.data(), resp->mutable_theta());
  EncodeF64({b, dim}, xi.data(), resp->mutable_xi());
  EncodeF64({b}, lh.data(), resp->mutable_log_haar());
  return absl::OkStatus();
}

absl::Status RunLieCompose(const v1::LieComposeRequest& req, v1::LieComposeResponse* resp) {
  ASSIGN_OR_RETURN(lie::Group group, ToLieGroup(req.group()));
  ASSIGN_OR_RETURN(double alpha, LieAlpha(req));
  const int n = req.n();
  if (n != 2 && n != 3) return absl::InvalidArgumentError("n must be 2 or 3");
  const int dim = lie::AlgebraDim(group, n);
  if (req.has_xi() == (req.has_x() || req.has_omega())) {
    return absl::InvalidArgumentError("xi / x + omega: give exactly one of them");
  }
  HostTensor<double> xi, x, w;
  int64_t b = 0;
  if (req.has_xi()) {
    ASSIGN_OR_RETURN(xi, DecodeReal(req.xi(), "xi", {-1, dim}));
    b = xi.shape[0];
  } else {
    ASSIGN_OR_RETURN(x, DecodeReal(req.x(), "x", {-1, n, n}));
    b = x.shape[0];
    ASSIGN_OR_RETURN(w, DecodeReal(req.omega(), "omega", {b, n, n}));
  }
  if (b > kLieMaxBatch) {
    return absl::ResourceExhaustedError(fmt::format("B = {} exceeds {}", b, kLieMaxBatch));
  }
  std::vector<double> g(b * n * n);
  RETURN_IF_ERROR(lie::Compose(group, n, b, req.has_xi() ? xi.data.data() : nullptr,
                               req.has_xi() ? nullptr : x.data.data(),
                               req.has_xi() ? nullptr : w.data.data(), alpha, g.data()));
  EncodeF64({b, n, n}, g.data(), resp->mutable_g());
  return absl::OkStatus();
}

absl::Status RunLieSample(const v1::LieSampleRequest& req, v1::LieSampleResponse* resp) {
  ASSIGN_OR_RETURN(lie::Group group, ToLieGroup(req.group()));
  ASSIGN_OR_RETURN(double alpha, LieAlpha(req));
  const int n = req.n();
  if (n != 2 && n != 3) return absl::InvalidArgumentError("n must be 2 or 3");
  const int64_t count = req.count();
  if (count < 1) return absl::InvalidArgumentError("count must be ≥ 1");
  if (count > kLieMaxBatch) {
    return absl::ResourceExhaustedError(fmt::format("count = {} exceeds {}", count, kLieMaxBatch));
  }
  lie::SoSampler sampler;
  switch (req.so_sampler()) {
    case v1::LIE_SO_EQUIDISTANT: sampler = lie::SoSampler::kEquidistant; break;
    case v1::LIE_SO_UNIFORM_ANGLE: sampler = lie::SoSampler::kUniformAngle; break;
    case v1::LIE_SO_HAAR: sampler = lie::SoSampler::kHaar; break;
    default: return absl::InvalidArgumentError("so_sampler: unknown value");
  }
  std::vector<double> g(count * n * n), gi(g.size()), x(g.size()), r(g.size()), lw(count);
  RETURN_IF_ERROR(lie::Sample(group, n, count, req.seed(),
                              req.has_sigma_spd() ? req.sigma_spd() : 0.1, sampler, alpha,
                              {g.data(), gi.data(), x.data(), r.data(), lw.data()}));
  EncodeF64({count, n, n}, g.data(), resp->mutable_g());
  EncodeF64({count, n, n}, gi.data(), resp->mutable_g_inv());
  EncodeF64({count, n, n}, x.data(), resp->mutable_x());
  EncodeF64({count, n, n}, r.data(), resp->mutable_r());
  EncodeF64({count}, lw.data(), resp->mutable_log_w());
  return absl::OkStatus();
}

absl::Status RunAffineLiftCoords(const v1::AffineLiftCoordsRequest& req,
                                 v1::AffineLiftCoordsResponse* resp) {
  ASSIGN_OR_RETURN(lie::Group group, ToLieGroup(req.group()));
  ASSIGN_OR_RETURN(double alpha, LieAlpha(req));
  ASSIGN_OR_RETURN(HostTensor<double> go, DecodeReal(req.g_out_inv(), "g_out_inv", {-1, 2, 2}));
  ASSIGN_OR_RETURN(HostTensor<double> gi, DecodeReal(req.g_in(), "g_in", {-1, 2, 2}));
  const int64_t o = go.shape[0], i = gi.shape[0], k = req.kernel_size();
  if (k < 2 || k > 64) {
    return absl::InvalidArgumentError(fmt::format("kernel_size must be in [2, 64]; got {}", k));
  }
  if (static_cast<double>(o) * i * k * k > static_cast<double>(kLieMaxLiftCells)) {
    return absl::ResourceExhaustedError(fmt::format(
        "g_out_inv / g_in: O·I·k² = {}·{}·{} exceeds {}", o, i, k * k, kLieMaxLiftCells));
  }
  const int dim = lie::AlgebraDim(group, 2);
  std::vector<double> coords(o * i * k * k * (2 + dim)), mask(o * i * k * k), vol(i);
  RETURN_IF_ERROR(lie::AffineLiftCoords(group, o, go.data.data(), i, gi.data.data(),
                                        static_cast<int>(k), alpha, coords.data(), mask.data(),
                                        vol.data()));
  EncodeF64({o, i, k, k, 2 + dim}, coords.data(), resp->mutable_coords());
  EncodeF64({o, i, k, k}, mask.data(), resp->mutable_mask());
  EncodeF64({i}, vol.data(), resp->mutable_vol());
  return absl::OkStatus();
}

}  // namespace

grpc::Status GeometryKernelsService::LieDecompose(grpc::ServerContext* ctx,
                                                  const v1::LieDecomposeRequest* req,
                                                  v1::LieDecomposeResponse* resp) {
  return RunHandler(ctx, "LieDecompose",
                    [&]() -> absl::Status { return RunLieDecompose(*req, resp); });
}

grpc::Status GeometryKernelsService::LieCompose(grpc::ServerContext* ctx,
                                                const v1::LieComposeRequest* req,
                                                v1::LieComposeResponse* resp) {
  return RunHandler(ctx, "LieCompose", [&]() -> absl::Status { return RunLieCompose(*req, resp); });
}

grpc::Status GeometryKernelsService::LieSample(grpc::ServerContext* ctx,
                                               const v1::LieSampleRequest* req,
                                               v1::LieSampleResponse* resp) {
  return RunHandler(ctx, "LieSample", [&]() -> absl::Status { return RunLieSample(*req, resp); });
}

grpc::Status GeometryKernelsService::AffineLiftCoords(grpc::ServerContext* ctx,
                                                      const v1::AffineLiftCoordsRequest* req,
                                                      v1::AffineLiftCoordsResponse* resp) {
  return RunHandler(ctx, "AffineLiftCoords",
                    [&]() -> absl::Status { return RunAffineLiftCoords(*req, resp); });
}

grpc::Status GeometryKernelsService::SphericalGraphFeatures(
    grpc::ServerContext* ctx, const v1::SphericalGraphFeaturesRequest* req,
    v1::SphericalGraphFeaturesResponse* resp) {
  return RunHandler(ctx, "SphericalGraphFeatures",
                    [&]() -> absl::Status { return RunSphericalGraphFeatures(*req, resp); });
}

grpc::Status GeometryKernelsService::SphericalGraphConv(grpc::ServerContext* ctx,
                                                        const v1::SphericalGraphConvRequest* req,
                                                        v1::SphericalGraphConvResponse* resp) {
  return RunHandler(ctx, "SphericalGraphConv",
                    [&]() -> absl::Status { return RunSphericalGraphConv(*req, resp); });
}

grpc::Status GeometryKernelsService::VFNEdgeFeatures(grpc::ServerContext* ctx,
                                                     const v1::VFNEdgeFeaturesRequest* req,
                                                     v1::VFNEdgeFeaturesResponse* resp) {
  return RunHandler(ctx, "VFNEdgeFeatures",
                    [&]() -> absl::Status { return RunVFNEdgeFeatures(*req, resp); });
}

grpc::Status GeometryKernelsService::VFNAggregate(grpc::ServerContext* ctx,
                                                  const v1::VFNAggregateRequest* req,
                                                  v1::VFNAggregateResponse* resp) {
  return RunHandler(ctx, "VFNAggregate",
                    [&]() -> absl::Status { return RunVFNAggregate(*req, resp); });
}

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
