#include "server/kernels_numeric_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "common/status_macros.h"
#include "kernels/fno/spectral_conv.h"
#include "kernels/int8/gemm.h"
#include "kernels/int8/maxsim.h"
#include "kernels/int8/mixed_linear.h"
#include "kernels/int8/quantize.h"
#include "server/handler.h"
#include "server/tensor_convert.h"

namespace chamferdb {
namespace {

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }
absl::Status TooMuch(std::string msg) { return absl::ResourceExhaustedError(std::move(msg)); }

// Requested OpenMP threads: 0 → 1, capped at the core count.
absl::StatusOr<int> Threads(int32_t requested) {
  if (requested < 0) return Invalid(fmt::format("threads is negative ({})", requested));
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  return std::clamp<int>(requested, 1, cores);
}

// INVALID_ARGUMENT unless the tensor has the given rank.
absl::Status CheckRank(const std::vector<int64_t>& shape, size_t rank, std::string_view field) {
  if (shape.size() != rank) {
    return Invalid(fmt::format("{} must have rank {}, got rank {}", field, rank, shape.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckWork(double work, double cap, std::string_view what) {
  if (work > cap) {
    return TooMuch(fmt::format("{} needs {:.3g} operations, over the per-request cap {:.3g}", what,
                               work, cap));
  }
  return absl::OkStatus();
}

absl::StatusOr<int8::GemmPath> ToGemmPath(v1::Int8GemmPath p) {
  int8::GemmPath path;
  switch (p) {
    case v1::INT8_GEMM_PATH_AUTO: path = int8::GemmPath::kAuto; break;
    case v1::INT8_GEMM_PATH_SCALAR: path = int8::GemmPath::kScalar; break;
    case v1::INT8_GEMM_PATH_AVX2: path = int8::GemmPath::kAvx2; break;
    case v1::INT8_GEMM_PATH_AVX512_VNNI: path = int8::GemmPath::kAvx512Vnni; break;
    default: return Invalid(fmt::format("gemm_path {} is unknown", static_cast<int>(p)));
  }
  if (!int8::GemmPathAvailable(path)) {
    return absl::FailedPreconditionError(fmt::format(
        "gemm_path {} is not available on this CPU", int8::GemmPathName(path)));
  }
  return path;
}

absl::Status CheckMethod(v1::NumericMethod m) {
  if (m != v1::NUMERIC_METHOD_FAST && m != v1::NUMERIC_METHOD_REFERENCE) {
    return Invalid(fmt::format("method {} is unknown", static_cast<int>(m)));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- Int8MixedLinear
absl::Status DoInt8MixedLinear(const v1::Int8MixedLinearRequest& req,
                               v1::Int8MixedLinearResponse* resp) {
  RETURN_IF_ERROR(CheckMethod(req.method()));
  ASSIGN_OR_RETURN(const int threads, Threads(req.threads()));
  ASSIGN_OR_RETURN(const int8::GemmPath path, ToGemmPath(req.gemm_path()));
  if (!req.has_x()) return Invalid("x is required");
  ASSIGN_OR_RETURN(auto x, DecodeF32(req.x(), "x"));
  RETURN_IF_ERROR(CheckRank(x.shape, 2, "x"));
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  const size_t s = x.shape[0], h = x.shape[1];
  if (h > int8::kMaxInt8GemmK) {
    return TooMuch(fmt::format("x has {} columns, over the cap {}", h, int8::kMaxInt8GemmK));
  }

  const float tau = req.has_threshold() ? req.threshold() : 6.0f;
  if (!(tau >= 0.0f)) return Invalid(fmt::format("threshold must be >= 0, got {}", tau));

  int8::QuantizedWeight wq;
  HostTensor<float> w;
  const bool has_w = req.has_w();
  if (has_w == (req.has_w_codes() || req.has_w_scales())) {
    return Invalid("give exactly one of w or (w_codes, w_scales)");
  }
  if (has_w) {
    ASSIGN_OR_RETURN(w, DecodeF32(req.w(), "w"));
    RETURN_IF_ERROR(CheckRank(w.shape, 2, "w"));
    RETURN_IF_ERROR(CheckShape(w.shape, {-1, static_cast<int64_t>(h)}, "w"));
    RETURN_IF_ERROR(CheckFinite(w.data.data(), w.numel(), "w"));
    wq = int8::QuantizeWeight(w.data.data(), w.shape[0], h);
  } else {
    if (!req.has_w_codes() || !req.has_w_scales()) {
      return Invalid("w_codes and w_scales must be given together");
    }
    ASSIGN_OR_RETURN(auto codes, DecodeI8(req.w_codes(), "w_codes"));
    RETURN_IF_ERROR(CheckRank(codes.shape, 2, "w_codes"));
    RETURN_IF_ERROR(CheckShape(codes.shape, {-1, static_cast<int64_t>(h)}, "w_codes"));
    ASSIGN_OR_RETURN(auto scales, DecodeF32(req.w_scales(), "w_scales"));
    RETURN_IF_ERROR(CheckShape(scales.shape, {codes.shape[0]}, "w_scales"));
    RETURN_IF_ERROR(CheckFinite(scales.data.data(), scales.numel(), "w_scales"));
    for (int64_t i = 0; i < scales.numel(); ++i) {
      if (scales.data[i] < 0) {
        return Invalid(fmt::format("w_scales[{}] is negative ({})", i, scales.data[i]));
      }
    }
    for (int64_t i = 0; i < codes.numel(); ++i) {
      if (codes.data[i] == -128) {
        return Invalid(fmt::format("w_codes has -128 at flat index {}; codes lie in [-127, 127]", i));
      }
    }
    wq.out = codes.shape[0];
    wq.in = h;
    wq.codes = std::move(codes.data);
    wq.scales = std::move(scales.data);
  }
  const size_t o = wq.out;

  int8::MixedLinearOptions opt;
  opt.threshold = tau;
  switch (req.stats_mode()) {
    case v1::Int8MixedLinearRequest::STATS_PAPER: opt.stats = int8::StatsMode::kPaper; break;
    case v1::Int8MixedLinearRequest::STATS_BNB: opt.stats = int8::StatsMode::kBnb; break;
    default: return Invalid("stats_mode is unknown");
  }
  switch (req.outlier_weight()) {
    case v1::Int8MixedLinearRequest::OUTLIER_WEIGHT_FULL:
      opt.outlier_weight = int8::OutlierWeight::kFull;
      if (!has_w && tau > 0.0f) {
        return Invalid("outlier_weight FULL needs w; use OUTLIER_WEIGHT_DEQUANT with w_codes");
      }
      break;
    case v1::Int8MixedLinearRequest::OUTLIER_WEIGHT_DEQUANT:
      opt.outlier_weight = int8::OutlierWeight::kDequant;
      break;
    default: return Invalid("outlier_weight is unknown");
  }
  HostTensor<float> bias;
  if (req.has_bias()) {
    ASSIGN_OR_RETURN(bias, DecodeF32(req.bias(), "bias"));
    RETURN_IF_ERROR(CheckShape(bias.shape, {static_cast<int64_t>(o)}, "bias"));
    RETURN_IF_ERROR(CheckFinite(bias.data.data(), bias.numel(), "bias"));
  }
  opt.naive_gemm = req.method() == v1::NUMERIC_METHOD_REFERENCE;
  opt.path = path;
  opt.threads = threads;
  const double work = static_cast<double>(s) * o * std::max<size_t>(h, 1);
  RETURN_IF_ERROR(CheckWork(work, opt.naive_gemm ? std::ldexp(1.0, 30) : std::ldexp(1.0, 35),
                            "Int8MixedLinear (s·o·h)"));

  auto r = int8::Int8MixedLinear(x.data.data(), s, h, wq, has_w ? w.data.data() : nullptr,
                                 req.has_bias() ? bias.data.data() : nullptr, opt);
  EncodeF32({static_cast<int64_t>(s), static_cast<int64_t>(o)}, r.y.data(), resp->mutable_y());
  EncodeI32({static_cast<int64_t>(r.outlier_cols.size())}, r.outlier_cols.data(),
            resp->mutable_outlier_cols());
  EncodeF32({static_cast<int64_t>(s)}, r.cx.data(), resp->mutable_cx());
  EncodeF32({static_cast<int64_t>(o)}, wq.scales.data(), resp->mutable_cw());
  resp->set_int8_fraction(r.int8_fraction);
  if (req.return_c()) {
    EncodeI32({static_cast<int64_t>(s), static_cast<int64_t>(o)}, r.c.data(), resp->mutable_c());
  }
  resp->set_gemm_path(opt.naive_gemm ? "naive"
                                     : std::string(int8::GemmPathName(int8::ResolveGemmPath(path))));
  return absl::OkStatus();
}

// ---------------------------------------------------------------- Int8MaxSim
absl::Status DoInt8MaxSim(const v1::Int8MaxSimRequest& req, v1::Int8MaxSimResponse* resp) {
  RETURN_IF_ERROR(CheckMethod(req.method()));
  ASSIGN_OR_RETURN(const int threads, Threads(req.threads()));

  // Query.
  HostTensor<float> q, qs;
  HostTensor<int8_t> qc;
  int8::MaxSimQuery query;
  if (req.has_query() == (req.has_query_codes() || req.has_query_scales())) {
    return Invalid("give exactly one of query or (query_codes, query_scales)");
  }
  if (req.has_query()) {
    ASSIGN_OR_RETURN(q, DecodeF32(req.query(), "query"));
    RETURN_IF_ERROR(CheckRank(q.shape, 2, "query"));
    RETURN_IF_ERROR(CheckFinite(q.data.data(), q.numel(), "query"));
    query.n = q.shape[0];
    query.rows = q.data.data();
    query.quantize = !req.asymmetric();
  } else {
    if (req.asymmetric()) return Invalid("asymmetric scoring needs a float query");
    if (!req.has_query_codes() || !req.has_query_scales()) {
      return Invalid("query_codes and query_scales must be given together");
    }
    ASSIGN_OR_RETURN(qc, DecodeI8(req.query_codes(), "query_codes"));
    RETURN_IF_ERROR(CheckRank(qc.shape, 2, "query_codes"));
    ASSIGN_OR_RETURN(qs, DecodeF32(req.query_scales(), "query_scales"));
    RETURN_IF_ERROR(CheckShape(qs.shape, {qc.shape[0]}, "query_scales"));
    RETURN_IF_ERROR(CheckFinite(qs.data.data(), qs.numel(), "query_scales"));
    query.n = qc.shape[0];
    query.codes = qc.data.data();
    query.scales = qs.data.data();
  }
  const int64_t dim = req.has_query() ? q.shape[1] : qc.shape[1];
  if (query.n == 0) return Invalid("query has no tokens");
  if (dim > static_cast<int64_t>(int8::kMaxInt8GemmK)) {
    return TooMuch(fmt::format("dim {} is over the cap {}", dim, int8::kMaxInt8GemmK));
  }

  // Corpus.
  if (!req.has_doc_offsets()) return Invalid("doc_offsets is required");
  ASSIGN_OR_RETURN(auto offsets, DecodeI64(req.doc_offsets(), "doc_offsets"));
  RETURN_IF_ERROR(CheckRank(offsets.shape, 1, "doc_offsets"));
  if (offsets.numel() < 2) return Invalid("doc_offsets needs at least 2 entries (one document)");
  HostTensor<int8_t> codes;
  HostTensor<float> scales, tokens;
  if (req.has_doc_tokens() == (req.has_doc_codes() || req.has_doc_scales())) {
    return Invalid("give exactly one of doc_tokens or (doc_codes, doc_scales)");
  }
  if (req.has_doc_tokens()) {
    ASSIGN_OR_RETURN(tokens, DecodeF32(req.doc_tokens(), "doc_tokens"));
    RETURN_IF_ERROR(CheckRank(tokens.shape, 2, "doc_tokens"));
    RETURN_IF_ERROR(CheckShape(tokens.shape, {-1, dim}, "doc_tokens"));
    RETURN_IF_ERROR(CheckFinite(tokens.data.data(), tokens.numel(), "doc_tokens"));
    codes.shape = tokens.shape;
    codes.data.resize(tokens.numel());
    scales.data.resize(tokens.shape[0]);
    int8::QuantizeRows(tokens.data.data(), tokens.shape[0], dim, codes.data.data(),
                       scales.data.data());
  } else {
    if (!req.has_doc_codes() || !req.has_doc_scales()) {
      return Invalid("doc_codes and doc_scales must be given together");
    }
    ASSIGN_OR_RETURN(codes, DecodeI8(req.doc_codes(), "doc_codes"));
    RETURN_IF_ERROR(CheckRank(codes.shape, 2, "doc_codes"));
    RETURN_IF_ERROR(CheckShape(codes.shape, {-1, dim}, "doc_codes"));
    ASSIGN_OR_RETURN(scales, DecodeF32(req.doc_scales(), "doc_scales"));
    RETURN_IF_ERROR(CheckShape(scales.shape, {codes.shape[0]}, "doc_scales"));
    RETURN_IF_ERROR(CheckFinite(scales.data.data(), scales.numel(), "doc_scales"));
    for (int64_t i = 0; i < scales.numel(); ++i) {
      if (scales.data[i] < 0) return Invalid(fmt::format("doc_scales[{}] is negative", i));
    }
  }
  const int64_t total = codes.shape[0];
  if (offsets.data.front() != 0) return Invalid("doc_offsets[0] must be 0");
  for (int64_t i = 1; i < offsets.numel(); ++i) {
    if (offsets.data[i] < offsets.data[i - 1]) {
      return Invalid(fmt::format("doc_offsets is decreasing at index {}", i));
    }
  }
  if (offsets.data.back() != total) {
    return Invalid(fmt::format("doc_offsets ends at {} but there are {} doc tokens",
                               offsets.data.back(), total));
  }
  const int64_t num_docs = offsets.numel() - 1;
  if (req.k() < 1 || req.k() > num_docs) {
    return Invalid(fmt::format("k must be in [1, {}], got {}", num_docs, req.k()));
  }
  const bool naive = req.method() == v1::NUMERIC_METHOD_REFERENCE;
  RETURN_IF_ERROR(CheckWork(static_cast<double>(query.n) * total * dim,
                            naive ? std::ldexp(1.0, 30) : std::ldexp(1.0, 34),
                            "Int8MaxSim (n_q·T·dim)"));

  int8::TokenCorpusView view{offsets.data.data(), static_cast<size_t>(num_docs), codes.data.data(),
                             scales.data.data(), static_cast<size_t>(dim)};
  int8::MaxSimOptions opt;
  opt.k = req.k();
  opt.naive = naive;
  opt.threads = threads;
  auto r = int8::Int8MaxSim(query, view, opt);
  const std::vector<int64_t> kshape = {static_cast<int64_t>(r.doc_ids.size())};
  EncodeI64(kshape, r.doc_ids.data(), resp->mutable_doc_ids());
  EncodeF32(kshape, r.scores.data(), resp->mutable_scores());
  EncodeF32(kshape, r.bounds.data(), resp->mutable_bounds());
  return absl::OkStatus();
}

// ---------------------------------------------------------------- SpectralConv2d
absl::StatusOr<int> OutSize(int32_t requested, int64_t in, std::string_view field) {
  if (requested < 0) return Invalid(fmt::format("{} is negative ({})", field, requested));
  if (requested == 0) return static_cast<int>(in);
  return requested;
}

absl::Status DoSpectralConv2d(const v1::SpectralConv2dRequest& req,
                              v1::SpectralConv2dResponse* resp) {
  RETURN_IF_ERROR(CheckMethod(req.method()));
  ASSIGN_OR_RETURN(const int threads, Threads(req.threads()));
  if (!req.has_x()) return Invalid("x is required");
  ASSIGN_OR_RETURN(auto x, DecodeF64(req.x(), "x"));
  RETURN_IF_ERROR(CheckRank(x.shape, 4, "x"));
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  if (!req.has_weights_pos() || !req.has_weights_neg()) {
    return Invalid("weights_pos and weights_neg are required");
  }
  ASSIGN_OR_RETURN(auto wp, DecodeC128(req.weights_pos(), "weights_pos"));
  RETURN_IF_ERROR(CheckRank(wp.shape, 4, "weights_pos"));
  RETURN_IF_ERROR(CheckShape(wp.shape, {x.shape[1], -1, -1, -1}, "weights_pos"));
  ASSIGN_OR_RETURN(auto wn, DecodeC128(req.weights_neg(), "weights_neg"));
  RETURN_IF_ERROR(CheckShape(wn.shape, wp.shape, "weights_neg"));
  for (const auto* w : {&wp, &wn}) {
    for (int64_t t = 0; t < w->numel(); ++t) {
      if (!std::isfinite(w->data[t].real()) || !std::isfinite(w->data[t].imag())) {
        return Invalid(fmt::format("{} has a non-finite value at flat index {}",
                                   w == &wp ? "weights_pos" : "weights_neg", t));
      }
    }
  }
  fno::SpectralConv2dShape s;
  s.batch = x.shape[0];
  s.in_channels = x.shape[1];
  s.height = x.shape[2];
  s.width = x.shape[3];
  s.out_channels = wp.shape[1];
  s.modes1 = wp.shape[2];
  s.modes2 = wp.shape[3];
  ASSIGN_OR_RETURN(const int ho, OutSize(req.out_height(), s.height, "out_height"));
  ASSIGN_OR_RETURN(const int wo, OutSize(req.out_width(), s.width, "out_width"));
  s.out_height = ho;
  s.out_width = wo;
  RETURN_IF_ERROR(fno::ValidateSpectralConv2dShape(s));
  HostTensor<double> bias;
  if (req.has_bias()) {
    ASSIGN_OR_RETURN(bias, DecodeF64(req.bias(), "bias"));
    RETURN_IF_ERROR(CheckShape(bias.shape, {static_cast<int64_t>(s.out_channels)}, "bias"));
    RETURN_IF_ERROR(CheckFinite(bias.data.data(), bias.numel(), "bias"));
  }
  fno::FftNorm norm;
  switch (req.norm()) {
    case v1::FFT_NORM_FORWARD: norm = fno::FftNorm::kForward; break;
    case v1::FFT_NORM_BACKWARD: norm = fno::FftNorm::kBackward; break;
    case v1::FFT_NORM_ORTHO: norm = fno::FftNorm::kOrtho; break;
    default: return Invalid("norm is unknown");
  }
  const double out_elems = static_cast<double>(s.batch) * s.out_channels * s.out_height * s.out_width;
  if (out_elems > static_cast<double>(kMaxTensorElements)) {
    return TooMuch(fmt::format("output [B, Cout, H', W'] would have {:.3g} elements, over the cap {}",
                               out_elems, kMaxTensorElements));
  }
  const double modes = 2.0 * s.modes1 * s.modes2;
  const bool direct = req.method() == v1::NUMERIC_METHOD_REFERENCE;
  if (direct) {
    RETURN_IF_ERROR(CheckWork(static_cast<double>(s.batch) *
                                  (s.in_channels * s.height * s.width +
                                   s.out_channels * s.out_height * s.out_width) * modes,
                              std::ldexp(1.0, 31), "SpectralConv2d direct DFT"));
  } else {
    RETURN_IF_ERROR(CheckWork(static_cast<double>(s.batch) * s.in_channels * s.out_channels * modes,
                              std::ldexp(1.0, 32), "SpectralConv2d contraction"));
  }
  std::vector<double> y(static_cast<size_t>(out_elems));
  const double* b = req.has_bias() ? bias.data.data() : nullptr;
  if (direct) {
    fno::SpectralConv2dDirect(s, norm, x.data.data(), wp.data.data(), wn.data.data(), b, y.data());
  } else {
    fno::SpectralConv2d(s, norm, x.data.data(), wp.data.data(), wn.data.data(), b, y.data(), threads);
  }
  EncodeF64({static_cast<int64_t>(s.batch), static_cast<int64_t>(s.out_channels), ho, wo}, y.data(),
            resp->mutable_y());
  return absl::OkStatus();
}

absl::Status DoFourierResample(const v1::FourierResampleRequest& req,
                               v1::FourierResampleResponse* resp) {
  ASSIGN_OR_RETURN(const int threads, Threads(req.threads()));
  if (!req.has_x()) return Invalid("x is required");
  ASSIGN_OR_RETURN(auto x, DecodeF64(req.x(), "x"));
  if (x.rank() < 2) return Invalid(fmt::format("x must have rank >= 2, got {}", x.rank()));
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  const int64_t h = x.shape[x.rank() - 2], w = x.shape[x.rank() - 1];
  if (h == 0 || w == 0) return Invalid("x has an empty grid dimension");
  if (req.out_height() < 1 || req.out_width() < 1) {
    return Invalid(fmt::format("out_height and out_width must be >= 1, got {} and {}",
                               req.out_height(), req.out_width()));
  }
  const int64_t planes = x.numel() / (h * w);
  const double out_elems = static_cast<double>(planes) * req.out_height() * req.out_width();
  if (out_elems > static_cast<double>(kMaxTensorElements)) {
    return TooMuch(fmt::format("output would have {:.3g} elements, over the cap {}", out_elems,
                               kMaxTensorElements));
  }
  std::vector<double> y(static_cast<size_t>(out_elems));
  fno::FourierResample2d(planes, h, w, req.out_height(), req.out_width(), x.data.data(), y.data(),
                         threads);
  std::vector<int64_t> shape = x.shape;
  shape[shape.size() - 2] = req.out_height();
  shape[shape.size() - 1] = req.out_width();
  EncodeF64(shape, y.data(), resp->mutable_y());
  return absl::OkStatus();
}

}  // namespace

grpc::Status NumericKernelsService::SpectralConv2d(grpc::ServerContext* ctx,
                                                   const v1::SpectralConv2dRequest* req,
                                                   v1::SpectralConv2dResponse* resp) {
  return RunHandler(ctx, "SpectralConv2d", [&] { return DoSpectralConv2d(*req, resp); });
}

grpc::Status NumericKernelsService::FourierResample(grpc::ServerContext* ctx,
                                                    const v1::FourierResampleRequest* req,
                                                    v1::FourierResampleResponse* resp) {
  return RunHandler(ctx, "FourierResample", [&] { return DoFourierResample(*req, resp); });
}

grpc::Status NumericKernelsService::Int8MixedLinear(grpc::ServerContext* ctx,
                                                    const v1::Int8MixedLinearRequest* req,
                                                    v1::Int8MixedLinearResponse* resp) {
  return RunHandler(ctx, "Int8MixedLinear", [&] { return DoInt8MixedLinear(*req, resp); });
}

grpc::Status NumericKernelsService::Int8MaxSim(grpc::ServerContext* ctx,
                                               const v1::Int8MaxSimRequest* req,
                                               v1::Int8MaxSimResponse* resp) {
  return RunHandler(ctx, "Int8MaxSim", [&] { return DoInt8MaxSim(*req, resp); });
}

}  // namespace chamferdb
