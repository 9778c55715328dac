#include "server/kernels_applied_service.h"

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "kernels/bures/bures.h"
#include "kernels/insr/insr.h"
#include "kernels/paths/paths.h"
#include "kernels/sheaf/sheaf.h"
#include "server/handler.h"
#include "server/tensor_convert.h"

namespace chamferdb {
namespace {

// ------------------------------------------------------------------------------------
// Shared validation helpers.

absl::Status Invalid(const std::string& msg) { return absl::InvalidArgumentError(msg); }

bool IsSet(const v1::Tensor& t) { return t.shape_size() > 0 || !t.data().empty(); }

// ------------------------------------------------------------------------------------
// Bures–Wasserstein.

constexpr int64_t kBwMaxN = 256;
constexpr int64_t kBwMaxBatch = 4096;
constexpr int64_t kBwMaxWork = int64_t{1} << 27;        // N·n³
constexpr int64_t kBwMaxIterWork = int64_t{1} << 31;    // iterations·N·n³
constexpr int kBwMaxIters = 1000;

using bures::Mat;

Mat RowMajorToMat(const double* p, int64_t n) {
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      p, n, n);
}

void EncodeMats(const std::vector<Mat>& ms, v1::Tensor* out) {
  const int64_t n = ms.empty() ? 0 : ms[0].rows();
  std::vector<double> flat;
  flat.reserve(ms.size() * n * n);
  for (const Mat& m : ms) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) flat.push_back(m(i, j));
  }
  EncodeF64({static_cast<int64_t>(ms.size()), n, n}, flat.data(), out);
}

void EncodeMat(const Mat& m, v1::Tensor* out) {
  const int64_t n = m.rows();
  std::vector<double> flat(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) flat[i * n + j] = m(i, j);
  EncodeF64({n, n}, flat.data(), out);
}

void EncodeVector(const std::vector<double>& v, v1::Tensor* out) {
  EncodeF64({static_cast<int64_t>(v.size())}, v.data(), out);
}

enum class MatKind { kSpd, kSymmetric };

absl::Status CheckSymmetric(const Mat& x, const std::string& field) {
  if (!x.allFinite()) return Invalid(fmt::format("{}: non-finite entry", field));
  const double scale = x.cwiseAbs().maxCoeff();
  if ((x - x.transpose()).cwiseAbs().maxCoeff() > 1e-10 * scale) {
    return Invalid(fmt::format("{}: not symmetric", field));
  }
  return absl::OkStatus();
}

// Decodes [N, n, n] (or [n, n] when allow_single; returned as a batch of one, *single set).
absl::StatusOr<std::vector<Mat>> DecodeMatBatch(const v1::Tensor& t, const std::string& field,
                                                bool allow_single, MatKind kind,
                                                bool* single = nullptr) {
  ASSIGN_OR_RETURN(HostTensor<double> h, DecodeF64(t, field));
  int64_t count = 0, n = 0;
  if (h.rank() == 3 && h.shape[1] == h.shape[2]) {
    count = h.shape[0];
    n = h.shape[1];
    if (single) *single = false;
  } else if (allow_single && h.rank() == 2 && h.shape[0] == h.shape[1]) {
    count = 1;
    n = h.shape[0];
    if (single) *single = true;
  } else {
    return Invalid(fmt::format("{}: expected shape [N, n, n]{}", field,
                               allow_single ? " or [n, n]" : ""));
  }
  if (count < 1 || n < 1) return Invalid(fmt::format("{}: empty batch or matrix", field));
  if (n > kBwMaxN) {
    return absl::ResourceExhaustedError(fmt::format("{}: n = {} exceeds the cap {}", field, n, kBwMaxN));
  }
  if (count > kBwMaxBatch) {
    return absl::ResourceExhaustedError(
        fmt::format("{}: N = {} exceeds the cap {}", field, count, kBwMaxBatch));
  }
  if (count * n * n * n > kBwMaxWork) {
    return absl::ResourceExhaustedError(
        fmt::format("{}: N·n³ = {} exceeds the cap {}", field, count * n * n * n, kBwMaxWork));
  }
  std::vector<Mat> out(count);
  for (int64_t i = 0; i < count; ++i) {
    out[i] = RowMajorToMat(h.data.data() + i * n * n, n);
    const std::string name = fmt::format("{}[{}]", field, i);
    if (kind == MatKind::kSpd) {
      RETURN_IF_ERROR(bures::CheckSpd(out[i], name.c_str()));
    } else {
      RETURN_IF_ERROR(CheckSymmetric(out[i], name));
    }
  }
  return out;
}

absl::StatusOr<Mat> DecodeSpd(const v1::Tensor& t, const std::string& field, int64_t n) {
  ASSIGN_OR_RETURN(HostTensor<double> h, DecodeF64(t, field));
  RETURN_IF_ERROR(CheckShape(h.shape, {n, n}, field));
  Mat m = RowMajorToMat(h.data.data(), n);
  RETURN_IF_ERROR(bures::CheckSpd(m, field.c_str()));
  return m;
}

// Optional SPD metric parameter: unset → nullopt-like empty matrix.
absl::StatusOr<Mat> DecodeOptionalSpd(const v1::Tensor& t, const std::string& field, int64_t n) {
  if (!IsSet(t)) return Mat::Identity(n, n);
  return DecodeSpd(t, field, n);
}

std::vector<Mat> CongruenceAll(const std::vector<Mat>& xs, const Mat& m, int sign) {
  if (m.isIdentity(0.0)) return xs;
  std::vector<Mat> out;
  out.reserve(xs.size());
  for (const Mat& x : xs) out.push_back(bures::Congruence(x, m, sign));
  return out;
}

Mat CongruenceOne(const Mat& x, const Mat& m, int sign) {
  return m.isIdentity(0.0) ? x : bures::Congruence(x, m, sign);
}

absl::Status ValidateBatchNorm(const v1::BWBatchNormRequest& req, int64_t n, int64_t count,
                               bures::BatchNormParams* p) {
  p->theta = req.has_theta() ? req.theta() : 1.0;
  if (!std::isfinite(p->theta) || std::abs(p->theta) < 1e-3 || std::abs(p->theta) > 1e3) {
    return Invalid(fmt::format("theta: {} is outside ±[1e-3, 1e3]", p->theta));
  }
  p->s = req.has_s() ? req.s() : 1.0;
  if (!std::isfinite(p->s)) return Invalid("s: not finite");
  p->eps = req.has_eps() ? req.eps() : 1e-5;
  if (!std::isfinite(p->eps) || p->eps < 0) return Invalid("eps: must be finite and ≥ 0");
  p->train = !req.eval();
  p->running_var = req.has_running_var() ? req.running_var() : 1.0;
  if (!std::isfinite(p->running_var) || p->running_var < 0) {
    return Invalid("running_var: must be finite and ≥ 0");
  }
  p->momentum = req.has_momentum() ? req.momentum() : 0.1;
  if (!(p->momentum >= 0 && p->momentum <= 1)) return Invalid("momentum: must be in [0, 1]");
  p->bary.iters = req.has_bary_iters() ? req.bary_iters() : 1;
  if (p->bary.iters < 0 || p->bary.iters > kBwMaxIters) {
    return absl::ResourceExhaustedError(
        fmt::format("bary_iters: {} is outside [0, {}]", p->bary.iters, kBwMaxIters));
  }
  p->bary.max_iters = kBwMaxIters;
  p->bary.tol = req.has_bary_tol() ? req.bary_tol() : 1e-12;
  if (!(p->bary.tol >= 0)) return Invalid("bary_tol: must be ≥ 0");
  const int64_t iters = p->bary.iters == 0 ? kBwMaxIters : p->bary.iters;
  if (p->train && iters * count * n * n * n > kBwMaxIterWork) {
    return absl::ResourceExhaustedError(fmt::format(
        "bary_iters: iterations·N·n³ = {} exceeds the cap {}", iters * count * n * n * n,
        kBwMaxIterWork));
  }
  p->variance_center = req.variance_center() == v1::BW_CENTER_MEAN
                           ? bures::VarianceCenter::kMean
                           : bures::VarianceCenter::kIdentity;
  if (!v1::BWVarianceCenter_IsValid(req.variance_center())) {
    return Invalid("variance_center: unknown value");
  }
  if (!v1::BWMethod_IsValid(req.method())) return Invalid("method: unknown value");
  if (p->eps + p->running_var <= 0 && !p->train) {
    return Invalid("running_var + eps must be > 0 in eval mode");
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------------
// Sheaf4Rec.

constexpr int64_t kSheafMaxNodes = int64_t{1} << 21;
constexpr int64_t kSheafMaxEdges = int64_t{1} << 24;
constexpr int64_t kSheafMaxDim = 1024;
constexpr int64_t kSheafMaxLayers = 64;
constexpr int64_t kSheafMaxWork = int64_t{1} << 33;
constexpr int64_t kSheafMaxDenseNodes = 4096;
constexpr int64_t kTopKMaxK = 1000;
constexpr int64_t kTopKMaxWork = int64_t{1} << 33;

// [E, 2] I32 or I64 pairs (user, item) checked against [0, users) × [0, items).
absl::StatusOr<std::vector<sheaf::Interaction>> DecodeEdges(const v1::Tensor& t,
                                                           const std::string& field,
                                                           int64_t users, int64_t items) {
  std::vector<int64_t> flat;
  std::vector<int64_t> shape;
  if (t.dtype() == v1::I32) {
    ASSIGN_OR_RETURN(HostTensor<int32_t> h, DecodeI32(t, field));
    flat.assign(h.data.begin(), h.data.end());
    shape = h.shape;
  } else {
    ASSIGN_OR_RETURN(HostTensor<int64_t> h, DecodeI64(t, field));
    flat = std::move(h.data);
    shape = h.shape;
  }
  RETURN_IF_ERROR(CheckShape(shape, {-1, 2}, field));
  if (shape[0] > kSheafMaxEdges) {
    return absl::ResourceExhaustedError(
        fmt::format("{}: {} edges exceed the cap {}", field, shape[0], kSheafMaxEdges));
  }
  std::vector<sheaf::Interaction> out(shape[0]);
  for (int64_t k = 0; k < shape[0]; ++k) {
    const int64_t u = flat[2 * k], i = flat[2 * k + 1];
    if (u < 0 || u >= users || i < 0 || i >= items) {
      return Invalid(fmt::format("{}[{}] = ({}, {}) is outside [0,{}) × [0,{})", field, k, u, i,
                                 users, items));
    }
    out[k] = {static_cast<int32_t>(u), static_cast<int32_t>(i)};
  }
  return out;
}

absl::StatusOr<std::vector<double>> DecodeVectorOf(const v1::Tensor& t, const std::string& field,
                                                   int64_t size) {
  ASSIGN_OR_RETURN(HostTensor<double> h, DecodeF64(t, field));
  RETURN_IF_ERROR(CheckShape(h.shape, {size}, field));
  RETURN_IF_ERROR(CheckFinite(h.data.data(), h.numel(), field));
  return std::move(h.data);
}

absl::StatusOr<HostTensor<double>> DecodeFiniteMatrix(const v1::Tensor& t, const std::string& field,
                                                      int64_t rows, int64_t cols) {
  ASSIGN_OR_RETURN(HostTensor<double> h, DecodeF64(t, field));
  RETURN_IF_ERROR(CheckShape(h.shape, {rows, cols}, field));
  RETURN_IF_ERROR(CheckFinite(h.data.data(), h.numel(), field));
  return h;
}

// ------------------------------------------------------------------------------------
// T2V-NPR paths.

constexpr int64_t kPathMaxPoints = int64_t{1} << 20;
constexpr int64_t kPathMaxPaths = int64_t{1} << 16;
constexpr int64_t kPathMaxFlattened = int64_t{1} << 22;
constexpr int64_t kPathMaxBruteVertices = 20000;
// PathRegularity: crossing-count work summed over the request's paths: the pairs to test
// (grid cell insertions + candidate pairs, or all pairs for REFERENCE) + 8 per exact
// orientation fallback taken (kernels/paths/paths.h). 2^28 ≈ 5 s of one core at worst:
// ≈ 18 ns per ordinary pair, 70–130 ns per exact fallback.
constexpr int64_t kPathMaxCrossingWork = int64_t{1} << 28;
// |coordinate| bound (after the affine transforms): differences and their products stay
// finite, so the orientation predicates are exact and O(1). Beyond it products overflow to
// inf/NaN and every predicate fell to the slow exact path (kernels_fuzz finding).
constexpr double kPathMaxCoordinate = 1e100;
constexpr int64_t kRasterMaxSide = 4096;
constexpr int64_t kRasterMaxSamples = int64_t{1} << 30;
constexpr int64_t kRasterMaxReferenceWork = int64_t{1} << 32;
constexpr double kRasterMaxScanWork = 4294967296.0;  // 2^32
constexpr double kDescriptorMaxWork = 4294967296.0;  // 2^32

absl::StatusOr<std::vector<int64_t>> DecodeIndexVector(const v1::Tensor& t, const std::string& field) {
  std::vector<int64_t> out;
  std::vector<int64_t> shape;
  if (t.dtype() == v1::I32) {
    ASSIGN_OR_RETURN(HostTensor<int32_t> h, DecodeI32(t, field));
    out.assign(h.data.begin(), h.data.end());
    shape = h.shape;
  } else {
    ASSIGN_OR_RETURN(HostTensor<int64_t> h, DecodeI64(t, field));
    out = std::move(h.data);
    shape = h.shape;
  }
  RETURN_IF_ERROR(CheckShape(shape, {-1}, field));
  return out;
}

absl::Status CheckCoordinates(const paths::Scene& scene, std::string_view what) {
  for (size_t i = 0; i < scene.points.size(); ++i) {
    const paths::Point& q = scene.points[i];
    if (!(std::abs(q.x) <= kPathMaxCoordinate && std::abs(q.y) <= kPathMaxCoordinate)) {
      return Invalid(fmt::format("{}[{}] = ({}, {}): coordinates must be finite and within ±{:g}", what, i,
                                 q.x, q.y, kPathMaxCoordinate));
    }
  }
  return absl::OkStatus();
}

// Decodes, validates and (if given) applies the per-path affine transforms.
absl::StatusOr<paths::Scene> DecodeScene(const v1::PathScene& s) {
  ASSIGN_OR_RETURN(HostTensor<double> pts, DecodeF64(s.points(), "scene.points"));
  RETURN_IF_ERROR(CheckShape(pts.shape, {-1, 2}, "scene.points"));
  if (pts.shape[0] > kPathMaxPoints) {
    return absl::ResourceExhaustedError(
        fmt::format("scene.points: {} points exceed the cap {}", pts.shape[0], kPathMaxPoints));
  }
  paths::Scene scene;
  ASSIGN_OR_RETURN(scene.offsets, DecodeIndexVector(s.path_offsets(), "scene.path_offsets"));
  if (scene.num_paths() < 1) return Invalid("scene.path_offsets: need at least one path");
  if (scene.num_paths() > kPathMaxPaths) {
    return absl::ResourceExhaustedError(
        fmt::format("scene.path_offsets: {} paths exceed the cap {}", scene.num_paths(), kPathMaxPaths));
  }
  scene.points.resize(pts.shape[0]);
  for (int64_t i = 0; i < pts.shape[0]; ++i) scene.points[i] = {pts.data[2 * i], pts.data[2 * i + 1]};
  absl::Status st = paths::ValidateScene(scene);
  if (!st.ok()) return Invalid(fmt::format("scene.{}", std::string(st.message())));
  RETURN_IF_ERROR(CheckCoordinates(scene, "scene.points"));
  if (IsSet(s.affine())) {
    ASSIGN_OR_RETURN(HostTensor<double> aff,
                     DecodeFiniteMatrix(s.affine(), "scene.affine", scene.num_paths(), 4));
    std::vector<std::array<double, 4>> rows(scene.num_paths());
    for (int64_t p = 0; p < scene.num_paths(); ++p) {
      for (int k = 0; k < 4; ++k) rows[p][k] = aff.data[4 * p + k];
    }
    scene = paths::ApplyAffine(scene, rows);
    RETURN_IF_ERROR(CheckCoordinates(scene, "scene.affine: transformed point"));
  }
  return scene;
}

absl::StatusOr<double> FlattenTolerance(bool has, double value, int64_t* total_vertices,
                                        const paths::Scene& scene) {
  const double tol = has ? value : 0.05;
  if (!(tol >= 1e-6) || !std::isfinite(tol)) return Invalid("flatten_tolerance: must be ≥ 1e-6");
  int64_t total = 0;
  for (int64_t p = 0; p < scene.num_paths(); ++p) {
    total += paths::EstimateFlattenedVertices(scene.path(p), scene.path_size(p), tol);
    if (total > kPathMaxFlattened) {
      return absl::ResourceExhaustedError(fmt::format(
          "flatten_tolerance: the scene would flatten to more than {} vertices", kPathMaxFlattened));
    }
  }
  *total_vertices = total;
  return tol;
}

}  // namespace

grpc::Status AppliedKernelsService::BWBatchNorm(grpc::ServerContext* ctx,
                                                const v1::BWBatchNormRequest* req,
                                                v1::BWBatchNormResponse* resp) {
  return RunHandler(ctx, "BWBatchNorm", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<Mat> xs, DecodeMatBatch(req->x(), "x", false, MatKind::kSpd));
    const int64_t n = xs[0].rows();
    bures::BatchNormParams p;
    RETURN_IF_ERROR(ValidateBatchNorm(*req, n, static_cast<int64_t>(xs.size()), &p));
    ASSIGN_OR_RETURN(p.m, DecodeOptionalSpd(req->m(), "m", n));
    ASSIGN_OR_RETURN(p.b, DecodeOptionalSpd(req->b(), "b", n));
    ASSIGN_OR_RETURN(p.running_mean, DecodeOptionalSpd(req->running_mean(), "running_mean", n));
    const bures::BatchNormResult r = req->method() == v1::BW_REFERENCE
                                         ? bures::BatchNormReference(xs, p)
                                         : bures::BatchNormFast(xs, p);
    if (!std::isfinite(r.var) || std::sqrt(r.var + p.eps) == 0.0) {
      return Invalid("var + eps is zero: the batch has no spread and eps = 0");
    }
    EncodeMats(r.y, resp->mutable_y());
    EncodeMat(r.mean, resp->mutable_mean());
    resp->set_var(r.var);
    EncodeMat(r.running_mean, resp->mutable_running_mean());
    resp->set_running_var(r.running_var);
    resp->set_bary_iterations(r.bary_iterations);
    EncodeVector(r.center_margin, resp->mutable_center_margin());
    EncodeVector(r.bias_margin, resp->mutable_bias_margin());
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::BWDistance(grpc::ServerContext* ctx,
                                               const v1::BWDistanceRequest* req,
                                               v1::BWDistanceResponse* resp) {
  return RunHandler(ctx, "BWDistance", [&]() -> absl::Status {
    bool x_single = false, y_single = false;
    ASSIGN_OR_RETURN(std::vector<Mat> xs,
                     DecodeMatBatch(req->x(), "x", true, MatKind::kSpd, &x_single));
    ASSIGN_OR_RETURN(std::vector<Mat> ys,
                     DecodeMatBatch(req->y(), "y", true, MatKind::kSpd, &y_single));
    if (xs[0].rows() != ys[0].rows()) return Invalid("y: matrix size differs from x");
    if (!x_single && !y_single && xs.size() != ys.size()) {
      return Invalid(fmt::format("y: batch size {} differs from x's {}", ys.size(), xs.size()));
    }
    if (!v1::BWDistanceFormula_IsValid(req->formula())) return Invalid("formula: unknown value");
    const int64_t n = xs[0].rows();
    ASSIGN_OR_RETURN(Mat m, DecodeOptionalSpd(req->m(), "m", n));
    xs = CongruenceAll(xs, m, -1);
    ys = CongruenceAll(ys, m, -1);
    const size_t count = std::max(xs.size(), ys.size());
    std::vector<double> d2(count), d(count);
    const bool log_norm = req->formula() == v1::BW_LOG_NORM;
    for (size_t i = 0; i < count; ++i) {
      const Mat& x = xs[xs.size() == 1 ? 0 : i];
      const Mat& y = ys[ys.size() == 1 ? 0 : i];
      d2[i] = log_norm ? bures::DistanceSqLogNorm(x, y) : bures::DistanceSq(x, y);
      d[i] = std::sqrt(d2[i]);
    }
    EncodeVector(d2, resp->mutable_dist_sq());
    EncodeVector(d, resp->mutable_dist());
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::BWBarycenter(grpc::ServerContext* ctx,
                                                 const v1::BWBarycenterRequest* req,
                                                 v1::BWBarycenterResponse* resp) {
  return RunHandler(ctx, "BWBarycenter", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<Mat> xs, DecodeMatBatch(req->x(), "x", false, MatKind::kSpd));
    const int64_t n = xs[0].rows();
    const int64_t count = static_cast<int64_t>(xs.size());
    std::vector<double> w;
    if (IsSet(req->weights())) {
      ASSIGN_OR_RETURN(HostTensor<double> ht, DecodeF64(req->weights(), "weights"));
      RETURN_IF_ERROR(CheckShape(ht.shape, {count}, "weights"));
      RETURN_IF_ERROR(CheckFinite(ht.data.data(), ht.numel(), "weights"));
      double total = 0;
      for (double v : ht.data) {
        if (v < 0) return Invalid("weights: negative weight");
        total += v;
      }
      if (!(total > 0)) return Invalid("weights: sum must be positive");
      w = std::move(ht.data);
    }
    bures::BarycenterOptions opt;
    opt.iters = req->iters();
    opt.tol = req->has_tol() ? req->tol() : 1e-12;
    opt.max_iters = req->has_max_iters() ? req->max_iters() : 200;
    if (opt.iters < 0) return Invalid("iters: must be ≥ 0");
    if (!(opt.tol >= 0)) return Invalid("tol: must be ≥ 0");
    if (opt.max_iters < 1) return Invalid("max_iters: must be ≥ 1");
    const int64_t iters = opt.iters > 0 ? opt.iters : opt.max_iters;
    if (iters > kBwMaxIters) {
      return absl::ResourceExhaustedError(
          fmt::format("iters/max_iters: {} exceeds the cap {}", iters, kBwMaxIters));
    }
    if (iters * count * n * n * n > kBwMaxIterWork) {
      return absl::ResourceExhaustedError(fmt::format(
          "max_iters: iterations·N·n³ = {} exceeds the cap {}", iters * count * n * n * n,
          kBwMaxIterWork));
    }
    if (!v1::BWMethod_IsValid(req->method())) return Invalid("method: unknown value");
    ASSIGN_OR_RETURN(Mat m, DecodeOptionalSpd(req->m(), "m", n));
    xs = CongruenceAll(xs, m, -1);
    const bures::BarycenterResult r = req->method() == v1::BW_REFERENCE
                                          ? bures::BarycenterReference(xs, w, opt)
                                          : bures::BarycenterFast(xs, w, opt);
    EncodeMat(CongruenceOne(r.mean, m, +1), resp->mutable_mean());
    resp->set_iterations(r.iterations);
    resp->set_last_change(r.last_change);
    resp->set_residual(r.residual);
    resp->set_converged(r.converged);
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::BWGeodesic(grpc::ServerContext* ctx,
                                               const v1::BWGeodesicRequest* req,
                                               v1::BWGeodesicResponse* resp) {
  return RunHandler(ctx, "BWGeodesic", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(HostTensor<double> hx, DecodeF64(req->x(), "x"));
    if (hx.rank() != 2 || hx.shape[0] != hx.shape[1] || hx.shape[0] < 1) {
      return Invalid("x: expected shape [n, n]");
    }
    const int64_t n = hx.shape[0];
    if (n > kBwMaxN) return absl::ResourceExhaustedError(fmt::format("x: n = {} exceeds {}", n, kBwMaxN));
    ASSIGN_OR_RETURN(Mat x, DecodeSpd(req->x(), "x", n));
    ASSIGN_OR_RETURN(Mat y, DecodeSpd(req->y(), "y", n));
    ASSIGN_OR_RETURN(HostTensor<double> ht, DecodeF64(req->t(), "t"));
    RETURN_IF_ERROR(CheckShape(ht.shape, {-1}, "t"));
    RETURN_IF_ERROR(CheckFinite(ht.data.data(), ht.numel(), "t"));
    if (ht.numel() > kBwMaxBatch || ht.numel() * n * n * n > kBwMaxWork) {
      return absl::ResourceExhaustedError(fmt::format("t: {} points exceed the cap", ht.numel()));
    }
    ASSIGN_OR_RETURN(Mat m, DecodeOptionalSpd(req->m(), "m", n));
    const Mat xm = CongruenceOne(x, m, -1), ym = CongruenceOne(y, m, -1);
    std::vector<Mat> pts;
    for (double t : ht.data) pts.push_back(CongruenceOne(bures::Geodesic(xm, ym, t), m, +1));
    if (pts.empty()) {
      const int64_t shape0 = 0;
      EncodeF64({shape0, n, n}, nullptr, resp->mutable_points());
    } else {
      EncodeMats(pts, resp->mutable_points());
    }
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::BWExpLog(grpc::ServerContext* ctx,
                                             const v1::BWExpLogRequest* req,
                                             v1::BWExpLogResponse* resp) {
  return RunHandler(ctx, "BWExpLog", [&]() -> absl::Status {
    if (req->op() != v1::BW_LOG && req->op() != v1::BW_EXP) {
      return Invalid("op: must be BW_LOG or BW_EXP");
    }
    const bool is_exp = req->op() == v1::BW_EXP;
    ASSIGN_OR_RETURN(std::vector<Mat> in,
                     DecodeMatBatch(req->inputs(), "inputs", false,
                                    is_exp ? MatKind::kSymmetric : MatKind::kSpd));
    const int64_t n = in[0].rows();
    ASSIGN_OR_RETURN(Mat x, DecodeSpd(req->base(), "base", n));
    ASSIGN_OR_RETURN(Mat m, DecodeOptionalSpd(req->m(), "m", n));
    const Mat xm = CongruenceOne(x, m, -1);
    std::vector<Mat> out(in.size());
    std::vector<double> margin(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      const Mat a = CongruenceOne(in[i], m, -1);
      const Mat v = is_exp ? a : bures::Log(xm, a);
      margin[i] = bures::ExpInjectivityMargin(xm, v);
      out[i] = CongruenceOne(is_exp ? bures::Exp(xm, v) : v, m, +1);
    }
    EncodeMats(out, resp->mutable_outputs());
    EncodeVector(margin, resp->mutable_margin());
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::SheafDiffusion(grpc::ServerContext* ctx,
                                                   const v1::SheafDiffusionRequest* req,
                                                   v1::SheafDiffusionResponse* resp) {
  return RunHandler(ctx, "SheafDiffusion", [&]() -> absl::Status {
    if (req->stalk_dim() > 1) {
      return absl::UnimplementedError("stalk_dim: only 1-dimensional stalks (scalar maps)");
    }
    if (req->stalk_dim() < 0) return Invalid("stalk_dim: must be 0 or 1");
    if (req->num_users() < 0 || req->num_items() < 0) {
      return Invalid("num_users/num_items: must be ≥ 0");
    }
    const int64_t n = int64_t{req->num_users()} + req->num_items();
    if (n == 0) return Invalid("num_users + num_items must be ≥ 1");
    if (n > kSheafMaxNodes) {
      return absl::ResourceExhaustedError(fmt::format("num_users + num_items = {} exceeds {}", n, kSheafMaxNodes));
    }
    ASSIGN_OR_RETURN(HostTensor<double> x0, DecodeF64(req->x0(), "x0"));
    if (x0.rank() != 2 || x0.shape[0] != n || x0.shape[1] < 1) {
      return Invalid(fmt::format("x0: expected shape [{}, D]", n));
    }
    const int64_t d = x0.shape[1];
    if (d > kSheafMaxDim) return absl::ResourceExhaustedError(fmt::format("x0: D = {} exceeds {}", d, kSheafMaxDim));
    if (req->layers_size() > kSheafMaxLayers) {
      return absl::ResourceExhaustedError(fmt::format("layers: {} exceed {}", req->layers_size(), kSheafMaxLayers));
    }
    sheaf::DiffusionParams p;
    p.num_users = req->num_users();
    p.num_items = req->num_items();
    p.dim = static_cast<int32_t>(d);
    ASSIGN_OR_RETURN(p.edges, DecodeEdges(req->edges(), "edges", p.num_users, p.num_items));
    const int64_t e = static_cast<int64_t>(p.edges.size());
    const int64_t layers = req->layers_size();
    if (layers * (e * d + n * d * d) > kSheafMaxWork) {
      return absl::ResourceExhaustedError("layers·(E·D + n·D²) exceeds the cap 2^33");
    }
    const bool reference = req->method() == v1::SHEAF_REFERENCE;
    if (!v1::SheafMethod_IsValid(req->method())) return Invalid("method: unknown value");
    if (!v1::SheafAggregate_IsValid(req->aggregate())) return Invalid("aggregate: unknown value");
    if (reference && (n > kSheafMaxDenseNodes || layers * n * n * d > kSheafMaxWork)) {
      return absl::ResourceExhaustedError(
          fmt::format("method REFERENCE: n = {} exceeds the dense cap {}", n, kSheafMaxDenseNodes));
    }
    p.unit_maps = req->unit_maps();
    for (int l = 0; l < req->layers_size(); ++l) {
      const v1::SheafLayerWeights& lw = req->layers(l);
      sheaf::SheafLayer layer;
      if (!(p.unit_maps && !IsSet(lw.w()))) {
        ASSIGN_OR_RETURN(layer.w, DecodeVectorOf(lw.w(), fmt::format("layers[{}].w", l), 2 * d));
      }
      ASSIGN_OR_RETURN(HostTensor<double> w,
                       DecodeFiniteMatrix(lw.weight(), fmt::format("layers[{}].weight", l), d, d));
      layer.W = std::move(w.data);
      ASSIGN_OR_RETURN(layer.b, DecodeVectorOf(lw.bias(), fmt::format("layers[{}].bias", l), d));
      p.layers.push_back(std::move(layer));
    }
    p.alpha = req->has_alpha() ? req->alpha() : 1.0;
    p.aggregate = req->aggregate() == v1::SHEAF_LAST ? sheaf::Aggregate::kLast
                                                      : sheaf::Aggregate::kMeanAllLayers;
    RETURN_IF_ERROR(sheaf::Validate(p, x0.data));
    const sheaf::DiffusionResult r =
        reference ? sheaf::DiffuseReference(p, x0.data) : sheaf::DiffuseFast(p, x0.data);
    EncodeF64({n, d}, r.h.data(), resp->mutable_h());
    if (req->return_maps()) {
      EncodeF64({layers, 2 * e}, r.maps.data(), resp->mutable_maps());
      EncodeF64({layers, n}, r.laplacian_diag.data(), resp->mutable_laplacian_diag());
    }
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::RecommendTopK(grpc::ServerContext* ctx,
                                                  const v1::RecommendTopKRequest* req,
                                                  v1::RecommendTopKResponse* resp) {
  return RunHandler(ctx, "RecommendTopK", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(HostTensor<double> hu, DecodeF64(req->h_users(), "h_users"));
    ASSIGN_OR_RETURN(HostTensor<double> hi, DecodeF64(req->h_items(), "h_items"));
    if (hu.rank() != 2 || hu.shape[1] < 1) return Invalid("h_users: expected shape [U, D]");
    if (hi.rank() != 2 || hi.shape[1] != hu.shape[1]) {
      return Invalid(fmt::format("h_items: expected shape [I, {}]", hu.shape[1]));
    }
    RETURN_IF_ERROR(CheckFinite(hu.data.data(), hu.numel(), "h_users"));
    RETURN_IF_ERROR(CheckFinite(hi.data.data(), hi.numel(), "h_items"));
    const int64_t users = hu.shape[0], items = hi.shape[0], d = hu.shape[1];
    if (req->k() < 1) return Invalid("k: must be ≥ 1");
    if (req->k() > kTopKMaxK) {
      return absl::ResourceExhaustedError(fmt::format("k: {} exceeds {}", req->k(), kTopKMaxK));
    }
    if (users * items * d > kTopKMaxWork || users * req->k() > kMaxTensorElements) {
      return absl::ResourceExhaustedError("U·I·D exceeds the cap 2^33");
    }
    if (!v1::SheafMaskMode_IsValid(req->mask_mode())) return Invalid("mask_mode: unknown value");
    if (!v1::SheafMethod_IsValid(req->method())) return Invalid("method: unknown value");
    sheaf::UserItems train;
    if (IsSet(req->train_edges())) {
      ASSIGN_OR_RETURN(std::vector<sheaf::Interaction> edges,
                       DecodeEdges(req->train_edges(), "train_edges", users, items));
      train = sheaf::UserItems::FromPairs(static_cast<int32_t>(users), edges);
    }
    const sheaf::MaskMode mask = req->mask_mode() == v1::SHEAF_MASK_ZERO
                                     ? sheaf::MaskMode::kZero
                                     : sheaf::MaskMode::kNegInf;
    const auto fn = req->method() == v1::SHEAF_REFERENCE ? sheaf::RecommendReference
                                                          : sheaf::RecommendFast;
    const sheaf::TopK t = fn(hu.data, hi.data, static_cast<int32_t>(users),
                             static_cast<int32_t>(items), static_cast<int32_t>(d), train,
                             req->k(), mask);
    EncodeI32({users, int64_t{req->k()}}, t.items.data(), resp->mutable_items());
    EncodeF64({users, int64_t{req->k()}}, t.scores.data(), resp->mutable_scores());
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::RankingMetrics(grpc::ServerContext* ctx,
                                                   const v1::RankingMetricsRequest* req,
                                                   v1::RankingMetricsResponse* resp) {
  return RunHandler(ctx, "RankingMetrics", [&]() -> absl::Status {
    if (req->ks_size() > 64 || req->hits_ks_size() > 64) {
      return absl::ResourceExhaustedError("ks/hits_ks: at most 64 values");
    }
    if (req->ks_size() > 0 || IsSet(req->topk_items())) {
      std::vector<int64_t> shape;
      std::vector<int32_t> items;
      if (req->topk_items().dtype() == v1::I64) {
        ASSIGN_OR_RETURN(HostTensor<int64_t> h, DecodeI64(req->topk_items(), "topk_items"));
        shape = h.shape;
        for (int64_t v : h.data) {
          if (v < -1 || v > INT32_MAX) return Invalid("topk_items: item id out of range");
          items.push_back(static_cast<int32_t>(v));
        }
      } else {
        ASSIGN_OR_RETURN(HostTensor<int32_t> h, DecodeI32(req->topk_items(), "topk_items"));
        shape = h.shape;
        items = std::move(h.data);
      }
      if (shape.size() != 2 || shape[1] < 1) return Invalid("topk_items: expected shape [U, Kmax]");
      for (int32_t v : items) {
        if (v < -1) return Invalid("topk_items: item ids must be ≥ 0 (or −1 for padding)");
      }
      const int64_t users = shape[0], kmax = shape[1];
      ASSIGN_OR_RETURN(std::vector<sheaf::Interaction> test,
                       DecodeEdges(req->test_edges(), "test_edges", users, INT32_MAX));
      std::vector<int32_t> ks(req->ks().begin(), req->ks().end());
      for (int32_t k : ks) {
        if (k < 1 || k > kmax) return Invalid(fmt::format("ks: {} is outside [1, {}]", k, kmax));
      }
      sheaf::TopK topk;
      topk.k = static_cast<int32_t>(kmax);
      topk.items = std::move(items);
      const sheaf::UserItems test_items =
          sheaf::UserItems::FromPairs(static_cast<int32_t>(users), test);
      for (const sheaf::RankingAtK& m : sheaf::RankingMetrics(topk, test_items, ks)) {
        v1::RankingAtK* out = resp->add_at_k();
        out->set_k(m.k);
        out->set_precision(m.precision);
        out->set_recall(m.recall);
        out->set_f1(m.f1);
        out->set_ndcg(m.ndcg);
        out->set_hit_rate(m.hit_rate);
      }
    }
    if (req->hits_ks_size() > 0) {
      ASSIGN_OR_RETURN(HostTensor<double> pos, DecodeF64(req->pos_scores(), "pos_scores"));
      ASSIGN_OR_RETURN(HostTensor<double> neg, DecodeF64(req->neg_scores(), "neg_scores"));
      RETURN_IF_ERROR(CheckShape(pos.shape, {-1}, "pos_scores"));
      RETURN_IF_ERROR(CheckShape(neg.shape, {-1}, "neg_scores"));
      RETURN_IF_ERROR(CheckFinite(pos.data.data(), pos.numel(), "pos_scores"));
      RETURN_IF_ERROR(CheckFinite(neg.data.data(), neg.numel(), "neg_scores"));
      for (int32_t k : req->hits_ks()) {
        if (k < 1) return Invalid("hits_ks: must be ≥ 1");
        v1::HitsAtKValue* out = resp->add_hits();
        out->set_k(k);
        out->set_hits(sheaf::HitsAtK(pos.data, neg.data, k));
      }
    }
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::PathRegularity(grpc::ServerContext* ctx,
                                                   const v1::PathRegularityRequest* req,
                                                   v1::PathRegularityResponse* resp) {
  return RunHandler(ctx, "PathRegularity", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(paths::Scene scene, DecodeScene(req->scene()));
    paths::RegularityOptions opt;
    int64_t total = 0;
    ASSIGN_OR_RETURN(opt.flatten_tolerance,
                     FlattenTolerance(req->has_flatten_tolerance(), req->flatten_tolerance(),
                                      &total, scene));
    opt.samples_per_segment = req->has_samples_per_segment() ? req->samples_per_segment() : 16;
    if (opt.samples_per_segment < 1 || opt.samples_per_segment > 1024) {
      return Invalid("samples_per_segment: must be in [1, 1024]");
    }
    opt.max_crossings = req->has_max_crossings() ? req->max_crossings() : 1000;
    if (opt.max_crossings < 0 || opt.max_crossings > 100000) {
      return Invalid("max_crossings: must be in [0, 100000]");
    }
    const double scale = req->has_xing_scale() ? req->xing_scale() : 1e-3;
    if (!std::isfinite(scale)) return Invalid("xing_scale: not finite");
    if (!v1::PathMethod_IsValid(req->method())) return Invalid("method: unknown value");
    opt.brute_force = req->method() == v1::PATH_REFERENCE;
    int64_t crossing_budget = kPathMaxCrossingWork;
    double xing_sum = 0;
    for (int64_t p = 0; p < scene.num_paths(); ++p) {
      if (opt.brute_force &&
          paths::EstimateFlattenedVertices(scene.path(p), scene.path_size(p), opt.flatten_tolerance) >
              kPathMaxBruteVertices) {
        return absl::ResourceExhaustedError(fmt::format(
            "method REFERENCE: path {} flattens to more than {} vertices", p, kPathMaxBruteVertices));
      }
      opt.max_crossing_work = crossing_budget;
      const paths::Regularity r = paths::PathRegularity(scene.path(p), scene.path_size(p), opt);
      if (r.over_budget) {
        return absl::ResourceExhaustedError(fmt::format(
            "scene.points: the self-crossing test of path {} needs more than {} units of work "
            "(edge pairs to test + 8 × exact orientation tests), over the request's cap 2^28 "
            "(edges piling into few grid cells, coordinates spanning many orders of magnitude, "
            "near-collinear edges); raise flatten_tolerance or split the scene",
            p, r.crossing_work));
      }
      crossing_budget -= r.crossing_work;
      v1::PathRegularityResult* out = resp->add_paths();
      out->set_xing_loss(r.xing_loss);
      out->set_laplacian(r.laplacian);
      out->set_laplacian_weighted(r.laplacian_weighted);
      out->set_self_intersections(r.self_intersections);
      out->set_degenerate_contacts(r.degenerate_contacts);
      std::vector<double> cr;
      for (const paths::Crossing& c : r.crossings) {
        cr.insert(cr.end(), {double(c.edge_a), double(c.edge_b), c.at.x, c.at.y});
      }
      EncodeF64({static_cast<int64_t>(r.crossings.size()), 4}, cr.data(), out->mutable_crossings());
      out->set_signed_area(r.signed_area);
      out->set_perimeter(r.perimeter);
      out->set_turning_number(r.turning_number);
      out->set_max_curvature(r.max_curvature);
      out->set_max_g1_defect(r.max_g1_defect);
      out->set_flattened_vertices(r.flattened_vertices);
      xing_sum += r.xing_loss;
    }
    resp->set_xing_loss_total(scale * xing_sum / static_cast<double>(scene.num_paths()));
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::RasterizePaths(grpc::ServerContext* ctx,
                                                   const v1::RasterizePathsRequest* req,
                                                   v1::RasterizePathsResponse* resp) {
  return RunHandler(ctx, "RasterizePaths", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(paths::Scene scene, DecodeScene(req->scene()));
    paths::RasterOptions opt;
    opt.width = req->width();
    opt.height = req->height();
    if (opt.width < 1 || opt.height < 1) return Invalid("width/height: must be ≥ 1");
    if (opt.width > kRasterMaxSide || opt.height > kRasterMaxSide) {
      return absl::ResourceExhaustedError(
          fmt::format("width/height: {}x{} exceeds {}", opt.width, opt.height, kRasterMaxSide));
    }
    opt.samples = req->has_samples() ? req->samples() : 4;
    if (opt.samples < 1) return Invalid("samples: must be ≥ 1");
    if (opt.samples > 16) return absl::ResourceExhaustedError("samples: must be ≤ 16");
    const int64_t sample_count = int64_t{opt.width} * opt.height * opt.samples * opt.samples;
    if (sample_count > kRasterMaxSamples) {
      return absl::ResourceExhaustedError("width·height·samples² exceeds the cap 2^30");
    }
    if (!v1::PathFillRule_IsValid(req->fill_rule())) return Invalid("fill_rule: unknown value");
    if (!v1::PathMethod_IsValid(req->method())) return Invalid("method: unknown value");
    opt.fill_rule = req->fill_rule() == v1::PATH_EVENODD ? paths::FillRule::kEvenOdd
                                                          : paths::FillRule::kNonZero;
    int64_t total = 0;
    ASSIGN_OR_RETURN(opt.flatten_tolerance,
                     FlattenTolerance(req->has_flatten_tolerance(), req->flatten_tolerance(),
                                      &total, scene));
    // Scanline work, summed over paths: every path composites the whole canvas (2·W·H),
    // fills the samples of its bounding box and crosses each sample row of the box with all
    // of its edges. 2^32 ≈ 6 s of one core (kernels_fuzz: 2,000 overlapping canvas-sized
    // paths at 4096², 8² samples passed the per-canvas caps and ran for minutes).
    double scan_work = 0;
    for (int64_t p = 0; p < scene.num_paths(); ++p) {
      const paths::Point* pts = scene.path(p);
      double x0 = pts[0].x, x1 = x0, y0 = pts[0].y, y1 = y0;
      for (int64_t i = 0; i < scene.path_size(p); ++i) {
        x0 = std::min(x0, pts[i].x), x1 = std::max(x1, pts[i].x);
        y0 = std::min(y0, pts[i].y), y1 = std::max(y1, pts[i].y);
      }
      const double cols = std::clamp(std::ceil(x1), 0.0, double(opt.width)) - std::clamp(std::floor(x0), 0.0, double(opt.width));
      const double rows = std::clamp(std::ceil(y1), 0.0, double(opt.height)) - std::clamp(std::floor(y0), 0.0, double(opt.height));
      const double edges = static_cast<double>(
          paths::EstimateFlattenedVertices(pts, scene.path_size(p), opt.flatten_tolerance));
      scan_work += 2.0 * opt.width * opt.height + cols * rows * opt.samples * opt.samples +
                   rows * opt.samples * edges;
    }
    if (scan_work > kRasterMaxScanWork) {
      return absl::ResourceExhaustedError(fmt::format(
          "scene: rasterizing {} paths at {}x{} with samples {} needs {:.3g} units of work "
          "(paths·2·width·height + box samples + sample rows × edges), over the cap 2^32; "
          "lower width/height/samples or split the scene",
          scene.num_paths(), opt.width, opt.height, opt.samples, scan_work));
    }
    const bool reference = req->method() == v1::PATH_REFERENCE;
    if (reference && static_cast<double>(sample_count) * static_cast<double>(total) >
                         static_cast<double>(kRasterMaxReferenceWork)) {
      return absl::ResourceExhaustedError(
          "method REFERENCE: width·height·samples²·vertices exceeds the cap 2^32");
    }
    std::vector<std::array<double, 4>> rgba(scene.num_paths(), {0, 0, 0, 1});
    if (IsSet(req->rgba())) {
      ASSIGN_OR_RETURN(HostTensor<double> c, DecodeFiniteMatrix(req->rgba(), "rgba", scene.num_paths(), 4));
      for (int64_t p = 0; p < scene.num_paths(); ++p) {
        for (int k = 0; k < 4; ++k) {
          const double v = c.data[4 * p + k];
          if (v < 0 || v > 1) return Invalid(fmt::format("rgba[{}][{}] = {} is outside [0, 1]", p, k, v));
          rgba[p][k] = v;
        }
      }
    }
    const std::vector<float> img = paths::RasterizeScene(scene, rgba, opt, reference);
    const std::vector<int64_t> shape = {opt.height, opt.width, 4};
    EncodeF32(shape, img.data(), resp->mutable_image());
    std::string u8(img.size(), '\0');
    for (size_t i = 0; i < img.size(); i += 4) {
      const float a = img[i + 3];
      for (int k = 0; k < 4; ++k) {
        const float straight = k == 3 ? a : (a > 0 ? img[i + k] / a : 0.0f);
        u8[i + k] = static_cast<char>(std::lround(std::clamp(straight, 0.0f, 1.0f) * 255.0f));
      }
    }
    v1::Tensor* t = resp->mutable_image_u8();
    for (int64_t d : shape) t->add_shape(d);
    t->set_dtype(v1::U8);
    t->set_data(std::move(u8));
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::PathDescriptor(grpc::ServerContext* ctx,
                                                   const v1::PathDescriptorRequest* req,
                                                   v1::PathDescriptorResponse* resp) {
  return RunHandler(ctx, "PathDescriptor", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(paths::Scene scene, DecodeScene(req->scene()));
    paths::DescriptorOptions opt;
    opt.resample = req->has_resample() ? req->resample() : 128;
    opt.harmonics = req->has_harmonics() ? req->harmonics() : 16;
    opt.raster = req->has_raster() ? req->raster() : 32;
    if (opt.resample < 8 || opt.resample > 4096) return Invalid("resample: must be in [8, 4096]");
    if (opt.harmonics < 1 || opt.harmonics > opt.resample / 2) {
      return Invalid("harmonics: must be in [1, resample/2]");
    }
    if (opt.raster < 0 || opt.raster > 128) return Invalid("raster: must be in [0, 128]");
    const int64_t paths_n = scene.num_paths();
    if (req->top_k() < 0 || req->top_k() > paths_n - 1) {
      return Invalid(fmt::format("top_k: must be in [0, {}]", paths_n - 1));
    }
    int64_t total = 0;
    for (int64_t p = 0; p < paths_n; ++p) {
      total += paths::EstimateFlattenedVertices(
          scene.path(p), scene.path_size(p),
          paths::DescriptorFlattenTolerance(scene.path(p), scene.path_size(p)));
      if (total > kPathMaxFlattened) {
        return absl::ResourceExhaustedError(fmt::format(
            "scene: the paths would flatten to more than {} vertices", kPathMaxFlattened));
      }
    }
    // Work, in units of ≈ 1.25 ns of one core: the EFD sums (≈ 40 ns per resample point and
    // harmonic: trigonometry), the rasterized shape (≈ 4 units per pixel) and the all-pairs
    // top-k (≈ 2 units per product: dot products, candidate lists). 2^32 ≈ 5 s (review during
    // the kernels_fuzz run: many paths at resample 4096 / harmonics 2048, or thousands of paths
    // with top_k, passed the per-path caps and ran for minutes).
    const double desc_dim = 4.0 * opt.harmonics + static_cast<double>(opt.raster) * opt.raster;
    const double work = static_cast<double>(paths_n) *
                            (32.0 * opt.resample * opt.harmonics + 4.0 * opt.raster * opt.raster) +
                        (req->top_k() > 0 ? 2.0 * static_cast<double>(paths_n) * paths_n * desc_dim : 0.0);
    if (work > kDescriptorMaxWork) {
      return absl::ResourceExhaustedError(fmt::format(
          "scene: descriptors of {} paths with resample {}, harmonics {}, raster {}{} need {:.3g} "
          "units of work, over the cap 2^32; lower resample/harmonics/raster or split the scene",
          paths_n, opt.resample, opt.harmonics, opt.raster, req->top_k() > 0 ? " and all-pairs top_k" : "",
          work));
    }
    std::vector<std::vector<double>> desc(paths_n);
    for (int64_t p = 0; p < paths_n; ++p) {
      desc[p] = paths::PathDescriptor(scene.path(p), scene.path_size(p), opt);
    }
    const int64_t dim = static_cast<int64_t>(desc[0].size());
    std::vector<double> flat;
    flat.reserve(paths_n * dim);
    for (const auto& d : desc) flat.insert(flat.end(), d.begin(), d.end());
    EncodeF64({paths_n, dim}, flat.data(), resp->mutable_descriptors());
    const int32_t k = req->top_k();
    if (k > 0) {
      std::vector<int32_t> nb(paths_n * k);
      std::vector<double> sim(paths_n * k);
      for (int64_t p = 0; p < paths_n; ++p) {
        std::vector<std::pair<double, int32_t>> cand;
        for (int64_t q = 0; q < paths_n; ++q) {
          if (q == p) continue;
          double dot = 0;
          for (int64_t j = 0; j < dim; ++j) dot += desc[p][j] * desc[q][j];
          cand.emplace_back(dot, static_cast<int32_t>(q));
        }
        std::partial_sort(cand.begin(), cand.begin() + k, cand.end(), [](const auto& a, const auto& b) {
          return a.first > b.first || (a.first == b.first && a.second < b.second);
        });
        for (int32_t r = 0; r < k; ++r) nb[p * k + r] = cand[r].second, sim[p * k + r] = cand[r].first;
      }
      EncodeI32({paths_n, int64_t{k}}, nb.data(), resp->mutable_neighbors());
      EncodeF64({paths_n, int64_t{k}}, sim.data(), resp->mutable_similarities());
    }
    return absl::OkStatus();
  });
}

grpc::Status AppliedKernelsService::InsrAdvect1D(grpc::ServerContext* ctx,
                                                 const v1::InsrAdvect1DRequest* req,
                                                 v1::InsrAdvect1DResponse* resp) {
  return RunHandler(ctx, "InsrAdvect1D", [&]() -> absl::Status {
    insr::Siren net;
    net.hidden = req->has_hidden() ? req->hidden() : 20;
    net.sine_layers = req->has_sine_layers() ? req->sine_layers() : 3;
    net.omega = req->has_omega() ? req->omega() : 30.0;
    if (net.hidden < 1 || net.hidden > 64) return Invalid("hidden: must be in [1, 64]");
    if (net.sine_layers < 1 || net.sine_layers > 6) return Invalid("sine_layers: must be in [1, 6]");
    if (!(net.omega > 0) || !std::isfinite(net.omega)) return Invalid("omega: must be > 0");
    insr::AdvectionProblem prob;
    prob.a = req->has_a() ? req->a() : 0.25;
    prob.length = req->has_length() ? req->length() : 4.0;
    prob.dt = req->has_dt() ? req->dt() : 0.05;
    if (!std::isfinite(prob.a)) return Invalid("a: not finite");
    if (!(prob.length > 0) || !std::isfinite(prob.length)) return Invalid("length: must be > 0");
    if (!(prob.dt > 0) || !std::isfinite(prob.dt)) return Invalid("dt: must be > 0");
    if (!v1::InsrInitialCondition_IsValid(req->ic())) return Invalid("ic: unknown value");
    if (!v1::InsrIntegrator_IsValid(req->integrator())) return Invalid("integrator: unknown value");
    switch (req->ic()) {
      case v1::INSR_IC_SIN: prob.ic = insr::InitialCondition::kSine; break;
      case v1::INSR_IC_ZERO: prob.ic = insr::InitialCondition::kZero; break;
      default: prob.ic = insr::InitialCondition::kGaussian; break;
    }
    prob.mu = req->has_mu() ? req->mu() : -1.5;
    prob.sigma = req->has_sigma() ? req->sigma() : 0.1;
    prob.k = req->has_k() ? req->k() : 1.0;
    if (!std::isfinite(prob.mu) || !(prob.sigma > 0) || !std::isfinite(prob.k)) {
      return Invalid("mu/sigma/k: need finite values and sigma > 0");
    }
    const insr::Integrator integ = req->integrator() == v1::INSR_EXPLICIT_EULER
                                       ? insr::Integrator::kExplicitEuler
                                   : req->integrator() == v1::INSR_IMPLICIT_EULER
                                       ? insr::Integrator::kImplicitEuler
                                       : insr::Integrator::kMidpoint;
    insr::SolveOptions opt;
    opt.n_steps = req->n_steps();
    opt.n_samples = req->has_n_samples() ? req->n_samples() : 5000;
    opt.max_iters = req->has_max_iters() ? req->max_iters() : 20000;
    opt.lr = req->has_lr() ? req->lr() : 1e-4;
    opt.plateau_patience = req->has_plateau_patience() ? req->plateau_patience() : 500;
    opt.n_eval = req->has_n_eval() ? req->n_eval() : 901;
    opt.seed = req->seed();
    if (opt.n_steps < 0 || opt.n_steps > 240) {
      return absl::ResourceExhaustedError("n_steps: must be in [0, 240]");
    }
    if (opt.n_samples < 1 || opt.n_samples > 8192) {
      return absl::ResourceExhaustedError("n_samples: must be in [1, 8192]");
    }
    if (opt.max_iters < 1 || opt.max_iters > 5000) {
      return absl::ResourceExhaustedError("max_iters: must be in [1, 5000]");
    }
    if (!(opt.lr > 0) || !std::isfinite(opt.lr)) return Invalid("lr: must be > 0");
    if (opt.plateau_patience < 1) return Invalid("plateau_patience: must be ≥ 1");
    if (opt.n_eval < 2 || opt.n_eval > 8192) return Invalid("n_eval: must be in [2, 8192]");
    const int64_t params = net.NumParams();
    const double work = double(opt.n_steps + 1) * opt.max_iters * opt.n_samples * double(params);
    // 2^30 ≈ 5 s of one core (measured ≈ 4.9 ns per unit; 2^34 took over a minute).
    if (work > double(int64_t{1} << 30)) {
      return absl::ResourceExhaustedError(fmt::format(
          "(n_steps+1)·max_iters·n_samples·params = {:.3g} exceeds the cap 2^30; lower max_iters, "
          "n_samples or n_steps", work));
    }
    const int32_t fd_points = req->has_fd_points() ? req->fd_points() : static_cast<int32_t>(params);
    if (fd_points < 3 || fd_points > 100000) return Invalid("fd_points: must be in [3, 100000]");
    std::vector<double> theta0;
    if (IsSet(req->theta0())) {
      ASSIGN_OR_RETURN(theta0, DecodeVectorOf(req->theta0(), "theta0", params));
    }
    const insr::SolveResult r = insr::Solve(net, prob, integ, opt, theta0.empty() ? nullptr : &theta0);
    const std::vector<double> cn = insr::FiniteDifferenceErrors(
        prob, insr::FdScheme::kCrankNicolsonCentral, fd_points, opt.n_steps, opt.n_eval);
    const std::vector<double> up = insr::FiniteDifferenceErrors(
        prob, insr::FdScheme::kImplicitUpwind, fd_points, opt.n_steps, opt.n_eval);
    for (const insr::StepReport& s : r.steps) {
      v1::InsrStep* out = resp->add_steps();
      out->set_step(s.step);
      out->set_iterations(s.iterations);
      out->set_final_loss(s.final_loss);
      out->set_l2_error(s.l2_error);
      out->set_linf_error(s.linf_error);
      out->set_mass(s.mass);
      out->set_fd_cn_l2_error(cn[s.step]);
      out->set_fd_upwind_l2_error(up[s.step]);
    }
    EncodeF64({params}, r.theta.data(), resp->mutable_theta());
    EncodeF64({static_cast<int64_t>(r.x_eval.size())}, r.x_eval.data(), resp->mutable_x_eval());
    EncodeF64({static_cast<int64_t>(r.u_eval.size())}, r.u_eval.data(), resp->mutable_u_eval());
    resp->set_num_params(params);
    return absl::OkStatus();
  });
}

}  // namespace chamferdb
