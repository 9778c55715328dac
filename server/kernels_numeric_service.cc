#include "server/kernels_numeric_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "common/status_macros.h"
#include "kernels/ebv/ebv.h"
#include "kernels/evonorm/evonorm.h"
#include "kernels/fno/integral_operator.h"
#include "kernels/fno/kernel_interp_conv.h"
#include "kernels/fno/spectral_conv.h"
#include "kernels/int8/gemm.h"
#include "kernels/int8/maxsim.h"
#include "kernels/int8/mixed_linear.h"
#include "kernels/int8/quantize.h"
#include "kernels/mfac/mfac.h"
#include "kernels/spgemm/spgemm.h"
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
  // The scalar GEMM (gemm_path SCALAR, or AUTO on a CPU without AVX2) runs ≈ 0.33 ns per
  // multiply-add: 2^35 took 11 s, so it gets 2^34; the SIMD paths are several times faster.
  const bool scalar = int8::ResolveGemmPath(path) == int8::GemmPath::kScalar;
  RETURN_IF_ERROR(CheckWork(work,
                            opt.naive_gemm ? std::ldexp(1.0, 30)
                            : scalar       ? std::ldexp(1.0, 34)
                                           : std::ldexp(1.0, 35),
                            "x / w: Int8MixedLinear (s·o·h)"));

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

// ---------------------------------------------------------------- SpGemm
struct DecodedCsr {
  HostTensor<int64_t> row_ptr;
  HostTensor<int32_t> col;
  HostTensor<double> val;
  spgemm::CsrView view;
};

absl::StatusOr<DecodedCsr> DecodeCsr(const v1::Tensor& row_ptr, const v1::Tensor& col,
                                     const v1::Tensor& val, int64_t cols, std::string_view name) {
  DecodedCsr m;
  ASSIGN_OR_RETURN(m.row_ptr, DecodeI64(row_ptr, fmt::format("{}_row_ptr", name)));
  RETURN_IF_ERROR(CheckRank(m.row_ptr.shape, 1, fmt::format("{}_row_ptr", name)));
  if (m.row_ptr.numel() < 1) {
    return Invalid(fmt::format("{}_row_ptr needs rows + 1 >= 1 entries", name));
  }
  ASSIGN_OR_RETURN(m.col, DecodeI32(col, fmt::format("{}_col", name)));
  RETURN_IF_ERROR(CheckRank(m.col.shape, 1, fmt::format("{}_col", name)));
  ASSIGN_OR_RETURN(m.val, DecodeF64(val, fmt::format("{}_val", name)));
  RETURN_IF_ERROR(CheckShape(m.val.shape, m.col.shape, fmt::format("{}_val", name)));
  RETURN_IF_ERROR(CheckFinite(m.val.data.data(), m.val.numel(), fmt::format("{}_val", name)));
  if (cols < 0 || cols > std::numeric_limits<int32_t>::max()) {
    return Invalid(fmt::format("{}_cols = {} is out of range", name, cols));
  }
  const int64_t rows = m.row_ptr.numel() - 1;
  if (m.row_ptr.data.back() != m.col.numel()) {
    return Invalid(fmt::format("{}_row_ptr ends at {} but {}_col has {} entries", name,
                               m.row_ptr.data.back(), name, m.col.numel()));
  }
  for (int64_t i = 0; i < rows; ++i) {
    if (m.row_ptr.data[i] < 0 || m.row_ptr.data[i] > m.col.numel()) {
      return Invalid(fmt::format("{}_row_ptr[{}] is out of range", name, i));
    }
  }
  m.view = {rows, cols, m.row_ptr.data.data(), m.col.data.data(), m.val.data.data()};
  RETURN_IF_ERROR(spgemm::ValidateCsr(m.view, name));
  return m;
}

absl::Status DoSpGemm(const v1::SpGemmRequest& req, v1::SpGemmResponse* resp) {
  ASSIGN_OR_RETURN(const int threads, Threads(req.threads()));
  ASSIGN_OR_RETURN(auto a, DecodeCsr(req.a_row_ptr(), req.a_col(), req.a_val(), req.a_cols(), "a"));
  ASSIGN_OR_RETURN(auto b, DecodeCsr(req.b_row_ptr(), req.b_col(), req.b_val(), req.b_cols(), "b"));
  if (a.view.cols != b.view.rows) {
    return Invalid(fmt::format("a_cols = {} must equal the rows of b ({})", a.view.cols, b.view.rows));
  }
  spgemm::Options opt;
  switch (req.method()) {
    case v1::SpGemmRequest::ROW_HASH: opt.method = spgemm::Method::kRowHash; break;
    case v1::SpGemmRequest::SMASH_ATOMIC: opt.method = spgemm::Method::kSmashAtomic; break;
    case v1::SpGemmRequest::DENSE_SPA: opt.method = spgemm::Method::kDenseSpa; break;
    case v1::SpGemmRequest::REFERENCE: opt.method = spgemm::Method::kReference; break;
    default: return Invalid("method is unknown");
  }
  opt.prune_zeros = req.prune_zeros();
  opt.threads = threads;
  const spgemm::Stats bound = spgemm::ComputeUpperBounds(a.view, b.view);
  // SMASH_ATOMIC runs ≈ 10 ns per partial product on one thread (CAS + atomic adds): 2^30
  // took 10 s, so it gets 2^29; ROW_HASH / DENSE_SPA ≈ 1–2.5 ns.
  const double spgemm_cap = opt.method == spgemm::Method::kReference     ? std::ldexp(1.0, 25)
                            : opt.method == spgemm::Method::kSmashAtomic ? std::ldexp(1.0, 29)
                                                                         : std::ldexp(1.0, 30);
  RETURN_IF_ERROR(CheckWork(static_cast<double>(bound.flops), spgemm_cap,
                            "a / b: SpGemm (partial products)"));
  if (bound.nnz_upper > kMaxTensorElements) {
    return TooMuch(fmt::format("C could have up to {} nonzeros, over the cap {}", bound.nnz_upper,
                               kMaxTensorElements));
  }
  spgemm::Stats st;
  const spgemm::CsrMatrix c = spgemm::SpGemm(a.view, b.view, opt, &st);
  EncodeI64({static_cast<int64_t>(c.row_ptr.size())}, c.row_ptr.data(), resp->mutable_row_ptr());
  EncodeI32({static_cast<int64_t>(c.col.size())}, c.col.data(), resp->mutable_col());
  EncodeF64({static_cast<int64_t>(c.val.size())}, c.val.data(), resp->mutable_val());
  resp->set_rows(c.rows);
  resp->set_cols(c.cols);
  resp->set_flops(st.flops);
  resp->set_nnz(st.nnz);
  resp->set_compression(st.compression);
  resp->set_max_row_ub(st.max_row_ub);
  resp->set_mean_row_ub(st.mean_row_ub);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- EvoNorm
absl::StatusOr<HostTensor<float>> DecodeChannelVector(const v1::Tensor& t, int64_t c,
                                                      std::string_view field) {
  ASSIGN_OR_RETURN(auto v, DecodeF32(t, field));
  RETURN_IF_ERROR(CheckShape(v.shape, {c}, field));
  RETURN_IF_ERROR(CheckFinite(v.data.data(), v.numel(), field));
  return v;
}

absl::Status DoEvoNorm(const v1::EvoNormRequest& req, v1::EvoNormResponse* resp) {
  RETURN_IF_ERROR(CheckMethod(req.method()));
  ASSIGN_OR_RETURN(const int threads, Threads(req.threads()));
  if (!req.has_x()) return Invalid("x is required");
  ASSIGN_OR_RETURN(auto x, DecodeF32(req.x(), "x"));
  RETURN_IF_ERROR(CheckRank(x.shape, 4, "x"));
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  const evonorm::Shape s{static_cast<size_t>(x.shape[0]), static_cast<size_t>(x.shape[1]),
                         static_cast<size_t>(x.shape[2]), static_cast<size_t>(x.shape[3])};
  const int64_t c = x.shape[1];
  if (!req.has_gamma() || !req.has_beta() || !req.has_v()) return Invalid("gamma, beta and v are required");
  ASSIGN_OR_RETURN(auto gamma, DecodeChannelVector(req.gamma(), c, "gamma"));
  ASSIGN_OR_RETURN(auto beta, DecodeChannelVector(req.beta(), c, "beta"));
  ASSIGN_OR_RETURN(auto v, DecodeChannelVector(req.v(), c, "v"));
  evonorm::Params p;
  switch (req.variant()) {
    case v1::EvoNormRequest::B0: p.variant = evonorm::Variant::kB0; break;
    case v1::EvoNormRequest::S0: p.variant = evonorm::Variant::kS0; break;
    default: return Invalid("variant is unknown");
  }
  switch (req.convention()) {
    case v1::EvoNormRequest::TF_OFFICIAL: p.convention = evonorm::Convention::kTfOfficial; break;
    case v1::EvoNormRequest::TIMM: p.convention = evonorm::Convention::kTimm; break;
    default: return Invalid("convention is unknown");
  }
  switch (req.mode()) {
    case v1::EvoNormRequest::TRAIN: p.mode = evonorm::Mode::kTrain; break;
    case v1::EvoNormRequest::EVAL: p.mode = evonorm::Mode::kEval; break;
    default: return Invalid("mode is unknown");
  }
  if (req.has_eps()) {
    if (!(req.eps() > 0.0) || !std::isfinite(req.eps())) {
      return Invalid(fmt::format("eps must be positive and finite, got {}", req.eps()));
    }
    p.eps = req.eps();
  }
  p.groups = req.groups();
  if (req.has_momentum()) p.momentum = req.momentum();
  p.nonlinearity = req.has_nonlinearity() ? req.nonlinearity() : true;
  RETURN_IF_ERROR(evonorm::ResolveParams(s, &p));
  HostTensor<float> rv;
  const bool b0 = p.variant == evonorm::Variant::kB0;
  if (req.has_running_var()) {
    ASSIGN_OR_RETURN(rv, DecodeChannelVector(req.running_var(), c, "running_var"));
    for (int64_t i = 0; i < c; ++i) {
      if (rv.data[i] < 0) return Invalid(fmt::format("running_var[{}] is negative", i));
    }
  } else if (b0) {
    return Invalid("running_var is required for B0");
  }
  const bool reference = req.method() == v1::NUMERIC_METHOD_REFERENCE;
  if (reference && b0) {
    RETURN_IF_ERROR(CheckWork(static_cast<double>(x.numel()) * s.h * s.w, std::ldexp(1.0, 30),
                              "EvoNorm reference"));
  }
  std::vector<float> y(x.numel()), batch_var(c, 0.0f);
  float* rvp = req.has_running_var() ? rv.data.data() : nullptr;
  if (reference) {
    evonorm::EvoNormReference(s, p, x.data.data(), gamma.data.data(), beta.data.data(), v.data.data(), rvp, y.data());
  } else {
    evonorm::EvoNorm(s, p, x.data.data(), gamma.data.data(), beta.data.data(), v.data.data(), rvp, y.data(),
                     threads, batch_var.data());
  }
  EncodeF32(x.shape, y.data(), resp->mutable_y());
  if (rvp != nullptr) EncodeF32({c}, rvp, resp->mutable_running_var());
  if (b0 && p.mode == evonorm::Mode::kTrain && !reference && p.nonlinearity) {
    EncodeF32({c}, batch_var.data(), resp->mutable_batch_var());
  }
  resp->set_eps(p.eps);
  resp->set_groups(p.groups);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- EBV
absl::Status DoEbvGenerate(const v1::EbvGenerateRequest& req, v1::EbvGenerateResponse* resp) {
  if (req.n() < 1 || req.d() < 1) {
    return Invalid(fmt::format("n and d must be >= 1, got n = {}, d = {}", req.n(), req.d()));
  }
  const double nd = static_cast<double>(req.n()) * static_cast<double>(req.d());
  if (nd > std::ldexp(1.0, 24)) {
    return TooMuch(fmt::format("n·d = {:.3g} is over the cap 2^24", nd));
  }
  ebv::GenerateParams p;
  p.n = req.n();
  p.d = req.d();
  p.tau = req.has_tau() ? req.tau() : 0.002;
  if (!(p.tau >= 0.0) || !std::isfinite(p.tau)) return Invalid(fmt::format("tau must be >= 0, got {}", p.tau));
  p.lr = req.has_lr() ? req.lr() : 1e-3;
  if (!(p.lr > 0.0) || !std::isfinite(p.lr)) return Invalid(fmt::format("lr must be > 0, got {}", p.lr));
  if (req.block_rows() < 0) return Invalid("block_rows must be >= 0");
  p.block_rows = req.block_rows() == 0 ? 130 : req.block_rows();
  p.seed = req.has_seed() ? req.seed() : 42;
  switch (req.optimizer()) {
    case v1::EbvGenerateRequest::QR_IF_N_LE_D: p.optimizer = ebv::Optimizer::kQrIfNLeD; break;
    case v1::EbvGenerateRequest::OFFICIAL_SGD: p.optimizer = ebv::Optimizer::kOfficialSgd; break;
    default: return Invalid("optimizer is unknown");
  }
  if (req.max_steps() < 0) return Invalid("max_steps must be >= 0");
  const bool sgd = p.optimizer == ebv::Optimizer::kOfficialSgd || p.n > p.d;
  const double per_step = 4.0 * static_cast<double>(p.n) * static_cast<double>(p.n) * static_cast<double>(p.d);
  // 2^33 ≈ 6 s of one core (≈ 0.7 ns per unit of 4·N²·d; 2^38 was minutes).
  const double cap = std::ldexp(1.0, 33);
  if (req.max_steps() == 0) {
    p.max_steps = static_cast<int64_t>(std::min(100000.0, std::floor(cap / per_step)));
  } else {
    p.max_steps = req.max_steps();
    if (sgd) RETURN_IF_ERROR(CheckWork(per_step * p.max_steps, cap, "EbvGenerate (4·N²·d·max_steps)"));
  }
  if (sgd && per_step > cap) return TooMuch("one SGD step of EbvGenerate is over the work cap");
  if (!sgd) {
    // 2^31 ≈ 5 s of one core (QR plus the N²·d cosine statistics, ≈ 2.3 ns per unit;
    // n = 1024, d = 16384 took 39 s under the old 2^34).
    RETURN_IF_ERROR(CheckWork(static_cast<double>(p.n) * p.n * p.d, std::ldexp(1.0, 31),
                              "EbvGenerate QR path (n²·d)"));
  }
  const ebv::GenerateResult r = ebv::Generate(p);
  EncodeF64({req.n(), req.d()}, r.e.data(), resp->mutable_e());
  resp->set_max_abs_cos(r.stats.max_abs);
  resp->set_mean_abs_cos(r.stats.mean_abs);
  resp->set_min_abs_cos(r.stats.min_abs);
  resp->set_steps(r.steps);
  resp->set_converged(r.converged);
  resp->set_welch_bound(r.welch_bound);
  resp->set_lower_bound(r.lower_bound);
  resp->set_ratio_to_welch(r.welch_bound > 0 ? r.stats.max_abs / r.welch_bound : 0.0);
  resp->set_used_qr(r.used_qr);
  resp->set_final_loss(r.final_loss);
  return absl::OkStatus();
}

absl::Status DoEbvClassify(const v1::EbvClassifyRequest& req, v1::EbvClassifyResponse* resp) {
  RETURN_IF_ERROR(CheckMethod(req.method()));
  if (!req.has_features() || !req.has_ebv()) return Invalid("features and ebv are required");
  ASSIGN_OR_RETURN(auto f, DecodeF64(req.features(), "features"));
  RETURN_IF_ERROR(CheckRank(f.shape, 2, "features"));
  RETURN_IF_ERROR(CheckFinite(f.data.data(), f.numel(), "features"));
  ASSIGN_OR_RETURN(auto e, DecodeF64(req.ebv(), "ebv"));
  RETURN_IF_ERROR(CheckRank(e.shape, 2, "ebv"));
  RETURN_IF_ERROR(CheckShape(e.shape, {-1, f.shape[1]}, "ebv"));
  RETURN_IF_ERROR(CheckFinite(e.data.data(), e.numel(), "ebv"));
  const int64_t b = f.shape[0], n = e.shape[0], d = f.shape[1];
  if (d < 1) return Invalid("features and ebv need d >= 1 columns");
  if (req.k() < 1 || req.k() > n) return Invalid(fmt::format("k must be in [1, {}], got {}", n, req.k()));
  const bool naive = req.method() == v1::NUMERIC_METHOD_REFERENCE;
  RETURN_IF_ERROR(CheckWork(static_cast<double>(b) * n * d, naive ? std::ldexp(1.0, 30) : std::ldexp(1.0, 34),
                            "EbvClassify (B·N·d)"));
  if (static_cast<double>(b) * n > static_cast<double>(kMaxTensorElements)) {
    return TooMuch("EbvClassify: the B × N score matrix is over the tensor cap");
  }
  const ebv::Classification c = ebv::Classify(f.data.data(), b, e.data.data(), n, d, req.k(), naive);
  EncodeI64({b, req.k()}, c.ids.data(), resp->mutable_ids());
  EncodeF64({b, req.k()}, c.cosines.data(), resp->mutable_cosines());
  return absl::OkStatus();
}

// ---------------------------------------------------------------- M-FAC
constexpr int64_t kMaxMFacM = 4096;

absl::Status CheckDamp(double damp) {
  if (!(damp > 0.0) || !std::isfinite(damp)) {
    return Invalid(fmt::format("damp must be positive and finite, got {}", damp));
  }
  return absl::OkStatus();
}

// Gradients [m, d] with the size caps.
absl::StatusOr<HostTensor<double>> DecodeGrads(const v1::Tensor& t, std::string_view field) {
  ASSIGN_OR_RETURN(auto g, DecodeF64(t, field));
  RETURN_IF_ERROR(CheckRank(g.shape, 2, field));
  RETURN_IF_ERROR(CheckFinite(g.data.data(), g.numel(), field));
  if (g.shape[0] < 1 || g.shape[1] < 1) return Invalid(fmt::format("{} must be non-empty", field));
  if (g.shape[0] > kMaxMFacM) {
    return TooMuch(fmt::format("{} has m = {} gradients, over the cap {}", field, g.shape[0], kMaxMFacM));
  }
  return g;
}

// x as [d] or [r, d]; returns r.
absl::StatusOr<HostTensor<double>> DecodeVectors(const v1::Tensor& t, int64_t d, int64_t m, int64_t* r) {
  ASSIGN_OR_RETURN(auto x, DecodeF64(t, "x"));
  if (x.rank() == 1) {
    RETURN_IF_ERROR(CheckShape(x.shape, {d}, "x"));
    *r = 1;
  } else {
    RETURN_IF_ERROR(CheckRank(x.shape, 2, "x"));
    RETURN_IF_ERROR(CheckShape(x.shape, {-1, d}, "x"));
    *r = x.shape[0];
  }
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  RETURN_IF_ERROR(CheckWork(static_cast<double>(*r) * m * d, std::ldexp(1.0, 32), "M-FAC apply (r·m·d)"));
  return x;
}

absl::StatusOr<mfac::StaticFactor> DecodeFactor(const v1::MFacStaticFactor& f) {
  RETURN_IF_ERROR(CheckDamp(f.damp()));
  ASSIGN_OR_RETURN(auto v, DecodeGrads(f.v(), "factor.v"));
  ASSIGN_OR_RETURN(auto q, DecodeF64(f.q(), "factor.q"));
  RETURN_IF_ERROR(CheckShape(q.shape, {v.shape[0]}, "factor.q"));
  for (int64_t i = 0; i < q.numel(); ++i) {
    if (!(q.data[i] > 0.0) || !std::isfinite(q.data[i])) {
      return Invalid(fmt::format("factor.q[{}] must be positive and finite", i));
    }
  }
  mfac::StaticFactor out;
  out.m = v.shape[0];
  out.d = v.shape[1];
  out.damp = f.damp();
  out.v = std::move(v.data);
  out.q = std::move(q.data);
  return out;
}

void EncodeFactor(const mfac::StaticFactor& f, v1::MFacStaticFactor* out) {
  const int64_t m = f.m, d = f.d;
  EncodeF64({m, d}, f.v.data(), out->mutable_v());
  EncodeF64({m}, f.q.data(), out->mutable_q());
  out->set_damp(f.damp);
}

absl::StatusOr<mfac::WindowState> DecodeWindowState(const v1::MFacWindowState& st) {
  RETURN_IF_ERROR(CheckDamp(st.damp()));
  ASSIGN_OR_RETURN(auto g, DecodeGrads(st.grads(), "state.grads"));
  const int64_t m = g.shape[0];
  mfac::WindowState w;
  w.m = m;
  w.d = g.shape[1];
  w.damp = st.damp();
  if (st.next_slot() < 0 || st.next_slot() >= m) {
    return Invalid(fmt::format("state.next_slot must be in [0, {}), got {}", m, st.next_slot()));
  }
  w.next_slot = st.next_slot();
  w.g = std::move(g.data);
  struct Field {
    const v1::Tensor* t;
    const char* name;
    std::vector<int64_t> shape;
    std::vector<double>* dst;
  };
  for (const Field& f : {Field{&st.gram(), "state.gram", {m, m}, &w.k}, Field{&st.s(), "state.s", {m, m}, &w.s},
                         Field{&st.q(), "state.q", {m}, &w.q}, Field{&st.b(), "state.b", {m, m}, &w.b}}) {
    ASSIGN_OR_RETURN(auto t, DecodeF64(*f.t, f.name));
    RETURN_IF_ERROR(CheckShape(t.shape, f.shape, f.name));
    RETURN_IF_ERROR(CheckFinite(t.data.data(), t.numel(), f.name));
    *f.dst = std::move(t.data);
  }
  for (int64_t i = 0; i < m; ++i) {
    if (!(w.q[i] > 0.0)) return Invalid(fmt::format("state.q[{}] must be positive", i));
  }
  return w;
}

void EncodeWindowState(const mfac::WindowState& w, v1::MFacWindowState* out) {
  const int64_t m = w.m, d = w.d;
  EncodeF64({m, d}, w.g.data(), out->mutable_grads());
  EncodeF64({m, m}, w.k.data(), out->mutable_gram());
  EncodeF64({m, m}, w.s.data(), out->mutable_s());
  EncodeF64({m}, w.q.data(), out->mutable_q());
  EncodeF64({m, m}, w.b.data(), out->mutable_b());
  out->set_damp(w.damp);
  out->set_next_slot(static_cast<int64_t>(w.next_slot));
}

absl::Status DoMFacStaticPrecompute(const v1::MFacStaticPrecomputeRequest& req,
                                    v1::MFacStaticPrecomputeResponse* resp) {
  RETURN_IF_ERROR(CheckDamp(req.damp()));
  ASSIGN_OR_RETURN(auto g, DecodeGrads(req.grads(), "grads"));
  const int64_t m = g.shape[0], d = g.shape[1];
  // 2^35 ≈ 6 s of one core (≈ 0.17 ns per unit; 2^36 ≈ 12 s).
  RETURN_IF_ERROR(CheckWork(static_cast<double>(m) * m * d, std::ldexp(1.0, 35), "grads: M-FAC precompute (m²·d)"));
  EncodeFactor(mfac::StaticPrecompute(g.data.data(), m, d, req.damp()), resp->mutable_factor());
  return absl::OkStatus();
}

absl::Status DoMFacStaticApply(const v1::MFacStaticApplyRequest& req, v1::MFacStaticApplyResponse* resp) {
  ASSIGN_OR_RETURN(auto f, DecodeFactor(req.factor()));
  int64_t r = 0;
  ASSIGN_OR_RETURN(auto x, DecodeVectors(req.x(), f.d, f.m, &r));
  std::vector<double> y(x.numel());
  mfac::StaticApply(f, x.data.data(), r, y.data());
  EncodeF64(x.shape, y.data(), resp->mutable_y());
  return absl::OkStatus();
}

absl::Status DoMFacStaticDiag(const v1::MFacStaticDiagRequest& req, v1::MFacStaticDiagResponse* resp) {
  ASSIGN_OR_RETURN(auto f, DecodeFactor(req.factor()));
  std::vector<double> diag(f.d);
  mfac::StaticDiag(f, diag.data());
  EncodeF64({static_cast<int64_t>(f.d)}, diag.data(), resp->mutable_diag());
  return absl::OkStatus();
}

absl::Status DoMFacStaticEntry(const v1::MFacStaticEntryRequest& req, v1::MFacStaticEntryResponse* resp) {
  ASSIGN_OR_RETURN(auto f, DecodeFactor(req.factor()));
  ASSIGN_OR_RETURN(auto rows, DecodeI64(req.rows(), "rows"));
  RETURN_IF_ERROR(CheckRank(rows.shape, 1, "rows"));
  ASSIGN_OR_RETURN(auto cols, DecodeI64(req.cols(), "cols"));
  RETURN_IF_ERROR(CheckShape(cols.shape, rows.shape, "cols"));
  const int64_t d = f.d;
  std::vector<double> out(rows.numel());
  for (int64_t t = 0; t < rows.numel(); ++t) {
    if (rows.data[t] < 0 || rows.data[t] >= d) return Invalid(fmt::format("rows[{}] is out of [0, {})", t, d));
    if (cols.data[t] < 0 || cols.data[t] >= d) return Invalid(fmt::format("cols[{}] is out of [0, {})", t, d));
  }
  for (int64_t t = 0; t < rows.numel(); ++t) out[t] = mfac::StaticEntry(f, rows.data[t], cols.data[t]);
  EncodeF64(rows.shape, out.data(), resp->mutable_values());
  return absl::OkStatus();
}

absl::Status DoMFacWindowInit(const v1::MFacWindowInitRequest& req, v1::MFacWindowStateResponse* resp) {
  RETURN_IF_ERROR(CheckDamp(req.damp()));
  ASSIGN_OR_RETURN(auto g, DecodeGrads(req.grads(), "grads"));
  const int64_t m = g.shape[0], d = g.shape[1];
  // 2^35 ≈ 7 s of one core (≈ 0.2 ns per unit; 2^36 ≈ 14 s).
  RETURN_IF_ERROR(CheckWork(static_cast<double>(m) * m * (d + m), std::ldexp(1.0, 35), "grads: M-FAC window init (m²·(d+m))"));
  mfac::Window w(g.data.data(), m, d, req.damp());
  EncodeWindowState(w.State(), resp->mutable_state());
  return absl::OkStatus();
}

absl::Status DoMFacWindowUpdate(const v1::MFacWindowUpdateRequest& req, v1::MFacWindowStateResponse* resp) {
  ASSIGN_OR_RETURN(auto st, DecodeWindowState(req.state()));
  ASSIGN_OR_RETURN(auto g, DecodeF64(req.grad(), "grad"));
  RETURN_IF_ERROR(CheckShape(g.shape, {static_cast<int64_t>(st.d)}, "grad"));
  RETURN_IF_ERROR(CheckFinite(g.data.data(), g.numel(), "grad"));
  mfac::Window w(std::move(st));
  w.Update(g.data.data());
  EncodeWindowState(w.State(), resp->mutable_state());
  return absl::OkStatus();
}

absl::Status DoMFacWindowApply(const v1::MFacWindowApplyRequest& req, v1::MFacWindowApplyResponse* resp) {
  ASSIGN_OR_RETURN(auto st, DecodeWindowState(req.state()));
  int64_t r = 0;
  ASSIGN_OR_RETURN(auto x, DecodeVectors(req.x(), st.d, st.m, &r));
  mfac::Window w(std::move(st));
  std::vector<double> y(x.numel());
  w.Apply(x.data.data(), r, y.data());
  EncodeF64(x.shape, y.data(), resp->mutable_y());
  return absl::OkStatus();
}

absl::Status DoQuadratureIntegral(const v1::QuadratureIntegralRequest& req,
                                  v1::QuadratureIntegralResponse* resp) {
  ASSIGN_OR_RETURN(const int threads, Threads(req.threads()));
  if (!req.has_x() || !req.has_y() || !req.has_v()) return Invalid("x, y and v are required");
  ASSIGN_OR_RETURN(auto x, DecodeF64(req.x(), "x"));
  RETURN_IF_ERROR(CheckRank(x.shape, 2, "x"));
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  ASSIGN_OR_RETURN(auto y, DecodeF64(req.y(), "y"));
  RETURN_IF_ERROR(CheckRank(y.shape, 2, "y"));
  RETURN_IF_ERROR(CheckShape(y.shape, {-1, x.shape[1]}, "y"));
  RETURN_IF_ERROR(CheckFinite(y.data.data(), y.numel(), "y"));
  ASSIGN_OR_RETURN(auto v, DecodeF64(req.v(), "v"));
  RETURN_IF_ERROR(CheckRank(v.shape, 2, "v"));
  RETURN_IF_ERROR(CheckShape(v.shape, {y.shape[0], -1}, "v"));
  RETURN_IF_ERROR(CheckFinite(v.data.data(), v.numel(), "v"));
  HostTensor<double> w;
  if (req.has_weights()) {
    ASSIGN_OR_RETURN(w, DecodeF64(req.weights(), "weights"));
    RETURN_IF_ERROR(CheckShape(w.shape, {y.shape[0]}, "weights"));
    RETURN_IF_ERROR(CheckFinite(w.data.data(), w.numel(), "weights"));
  }
  fno::IntegralKernelParams k;
  switch (req.kernel()) {
    case v1::QuadratureIntegralRequest::GAUSSIAN:
      k.kind = fno::IntegralKernel::kGaussian;
      if (!(req.length_scale() > 0.0) || !std::isfinite(req.length_scale())) {
        return Invalid(fmt::format("length_scale must be positive, got {}", req.length_scale()));
      }
      k.length_scale = req.length_scale();
      break;
    case v1::QuadratureIntegralRequest::POLYNOMIAL:
      k.kind = fno::IntegralKernel::kPolynomial;
      if (req.degree() < 0 || req.degree() > 16) {
        return Invalid(fmt::format("degree must be in [0, 16], got {}", req.degree()));
      }
      if (!std::isfinite(req.offset())) return Invalid("offset must be finite");
      k.degree = req.degree();
      k.offset = req.offset();
      break;
    default: return Invalid("kernel is unknown");
  }
  const int64_t p = x.shape[0], q = y.shape[0], dim = x.shape[1], c = v.shape[1];
  RETURN_IF_ERROR(CheckWork(static_cast<double>(p) * q * (dim + c), std::ldexp(1.0, 32),
                            "QuadratureIntegralOperator (P·Q·(dim + C))"));
  if (static_cast<double>(p) * c > static_cast<double>(kMaxTensorElements)) {
    return TooMuch("the output [P, C] is over the tensor cap");
  }
  std::vector<double> out(p * c);
  fno::QuadratureIntegralOperator(k, dim, x.data.data(), p, y.data.data(), q,
                                  req.has_weights() ? w.data.data() : nullptr, v.data.data(), c,
                                  out.data(), threads);
  EncodeF64({p, c}, out.data(), resp->mutable_out());
  return absl::OkStatus();
}

absl::Status DoKernelInterpConv2d(const v1::KernelInterpConv2dRequest& req,
                                  v1::KernelInterpConv2dResponse* resp) {
  ASSIGN_OR_RETURN(const int threads, Threads(req.threads()));
  if (!req.has_x() || !req.has_kernel()) return Invalid("x and kernel are required");
  ASSIGN_OR_RETURN(auto x, DecodeF64(req.x(), "x"));
  RETURN_IF_ERROR(CheckRank(x.shape, 4, "x"));
  RETURN_IF_ERROR(CheckFinite(x.data.data(), x.numel(), "x"));
  ASSIGN_OR_RETURN(auto k, DecodeF64(req.kernel(), "kernel"));
  RETURN_IF_ERROR(CheckRank(k.shape, 4, "kernel"));
  RETURN_IF_ERROR(CheckShape(k.shape, {-1, x.shape[1], -1, k.shape[2]}, "kernel"));
  RETURN_IF_ERROR(CheckFinite(k.data.data(), k.numel(), "kernel"));
  const int64_t kt = k.shape[2];
  if (kt < 1 || kt % 2 == 0) return Invalid(fmt::format("kernel size k must be odd, got {}", kt));
  if (req.scale() < 0 || req.scale() > 16) {
    return Invalid(fmt::format("scale must be in [1, 16], got {}", req.scale()));
  }
  const int64_t s = req.scale() == 0 ? 1 : req.scale();
  const int64_t b = x.shape[0], cin = x.shape[1], h = x.shape[2], w = x.shape[3], cout = k.shape[0];
  if (h < 1 || w < 1) return Invalid("x needs H, W >= 1");
  HostTensor<double> bias;
  if (req.has_bias()) {
    ASSIGN_OR_RETURN(bias, DecodeF64(req.bias(), "bias"));
    RETURN_IF_ERROR(CheckShape(bias.shape, {cout}, "bias"));
    RETURN_IF_ERROR(CheckFinite(bias.data.data(), bias.numel(), "bias"));
  }
  fno::KernelRescale rescale;
  switch (req.rescale()) {
    case v1::KernelInterpConv2dRequest::QUADRATURE_RATIO: rescale = fno::KernelRescale::kQuadratureRatio; break;
    case v1::KernelInterpConv2dRequest::AREA_RATIO: rescale = fno::KernelRescale::kAreaRatio; break;
    default: return Invalid("rescale is unknown");
  }
  const int64_t kp = s * kt - s + 1;
  RETURN_IF_ERROR(CheckWork(static_cast<double>(b) * cout * cin * h * w * kp * kp, std::ldexp(1.0, 32),
                            "KernelInterpConv2d (B·Cout·Cin·H·W·k'²)"));
  if (static_cast<double>(b) * cout * h * w > static_cast<double>(kMaxTensorElements) ||
      static_cast<double>(cout) * cin * kp * kp > static_cast<double>(kMaxTensorElements)) {
    return TooMuch("KernelInterpConv2d output is over the tensor cap");
  }
  const std::vector<double> kf = fno::InterpolateKernel(k.data.data(), cout, cin, kt, s, rescale);
  std::vector<double> y(b * cout * h * w);
  fno::PeriodicConv2d(x.data.data(), b, cin, h, w, kf.data(), cout, kp,
                      req.has_bias() ? bias.data.data() : nullptr, y.data(), threads);
  EncodeF64({b, cout, h, w}, y.data(), resp->mutable_y());
  EncodeF64({cout, cin, kp, kp}, kf.data(), resp->mutable_interpolated_kernel());
  return absl::OkStatus();
}

}  // namespace

grpc::Status NumericKernelsService::MFacStaticPrecompute(grpc::ServerContext* ctx,
                                                         const v1::MFacStaticPrecomputeRequest* req,
                                                         v1::MFacStaticPrecomputeResponse* resp) {
  return RunHandler(ctx, "MFacStaticPrecompute", [&] { return DoMFacStaticPrecompute(*req, resp); });
}
grpc::Status NumericKernelsService::MFacStaticApply(grpc::ServerContext* ctx, const v1::MFacStaticApplyRequest* req,
                                                    v1::MFacStaticApplyResponse* resp) {
  return RunHandler(ctx, "MFacStaticApply", [&] { return DoMFacStaticApply(*req, resp); });
}
grpc::Status NumericKernelsService::MFacStaticDiag(grpc::ServerContext* ctx, const v1::MFacStaticDiagRequest* req,
                                                   v1::MFacStaticDiagResponse* resp) {
  return RunHandler(ctx, "MFacStaticDiag", [&] { return DoMFacStaticDiag(*req, resp); });
}
grpc::Status NumericKernelsService::MFacStaticEntry(grpc::ServerContext* ctx, const v1::MFacStaticEntryRequest* req,
                                                    v1::MFacStaticEntryResponse* resp) {
  return RunHandler(ctx, "MFacStaticEntry", [&] { return DoMFacStaticEntry(*req, resp); });
}
grpc::Status NumericKernelsService::MFacWindowInit(grpc::ServerContext* ctx, const v1::MFacWindowInitRequest* req,
                                                   v1::MFacWindowStateResponse* resp) {
  return RunHandler(ctx, "MFacWindowInit", [&] { return DoMFacWindowInit(*req, resp); });
}
grpc::Status NumericKernelsService::MFacWindowUpdate(grpc::ServerContext* ctx, const v1::MFacWindowUpdateRequest* req,
                                                     v1::MFacWindowStateResponse* resp) {
  return RunHandler(ctx, "MFacWindowUpdate", [&] { return DoMFacWindowUpdate(*req, resp); });
}
grpc::Status NumericKernelsService::MFacWindowApply(grpc::ServerContext* ctx, const v1::MFacWindowApplyRequest* req,
                                                    v1::MFacWindowApplyResponse* resp) {
  return RunHandler(ctx, "MFacWindowApply", [&] { return DoMFacWindowApply(*req, resp); });
}

grpc::Status NumericKernelsService::EbvGenerate(grpc::ServerContext* ctx, const v1::EbvGenerateRequest* req,
                                                v1::EbvGenerateResponse* resp) {
  return RunHandler(ctx, "EbvGenerate", [&] { return DoEbvGenerate(*req, resp); });
}

grpc::Status NumericKernelsService::EbvClassify(grpc::ServerContext* ctx, const v1::EbvClassifyRequest* req,
                                                v1::EbvClassifyResponse* resp) {
  return RunHandler(ctx, "EbvClassify", [&] { return DoEbvClassify(*req, resp); });
}

grpc::Status NumericKernelsService::EvoNorm(grpc::ServerContext* ctx, const v1::EvoNormRequest* req,
                                            v1::EvoNormResponse* resp) {
  return RunHandler(ctx, "EvoNorm", [&] { return DoEvoNorm(*req, resp); });
}

grpc::Status NumericKernelsService::SpGemm(grpc::ServerContext* ctx, const v1::SpGemmRequest* req,
                                           v1::SpGemmResponse* resp) {
  return RunHandler(ctx, "SpGemm", [&] { return DoSpGemm(*req, resp); });
}

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

grpc::Status NumericKernelsService::QuadratureIntegralOperator(
    grpc::ServerContext* ctx, const v1::QuadratureIntegralRequest* req,
    v1::QuadratureIntegralResponse* resp) {
  return RunHandler(ctx, "QuadratureIntegralOperator",
                    [&] { return DoQuadratureIntegral(*req, resp); });
}

grpc::Status NumericKernelsService::KernelInterpConv2d(grpc::ServerContext* ctx,
                                                       const v1::KernelInterpConv2dRequest* req,
                                                       v1::KernelInterpConv2dResponse* resp) {
  return RunHandler(ctx, "KernelInterpConv2d", [&] { return DoKernelInterpConv2d(*req, resp); });
}

}  // namespace chamferdb
