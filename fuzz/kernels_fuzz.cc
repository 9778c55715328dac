// libFuzzer target: every RPC of the auxiliary Kernels service (39 RPCs, kernels.proto)
// parsed from arbitrary bytes and fed to its real handler in-process (KernelsService, the
// class the server registers). docs/fuzzing-kernels.md.
// Input: byte 0 selects the RPC (modulo the table size), the rest is the serialized request.
// Each call gets a fresh grpc::ServerContext not bound to a call (no deadline, never
// cancelled). Handlers keep no state between calls (the kernels' table caches aside).
// Oracle beyond ASan/UBSan:
//   - a handler never returns INTERNAL, UNKNOWN or DATA_LOSS (an escaped exception or a
//     broken invariant) and every non-OK status carries a message;
//   - in an OK response every Tensor (found by reflection, nested ones too) is
//     self-consistent: a known dtype, dims ≥ 0, data size = product(shape) × dtype size;
//   - an OK response serializes (under protobuf's 2 GiB message limit).
// OpenMP stays at one thread: the process re-executes itself once with OMP_THREAD_LIMIT=1
// (libgomp reads it at start-up, and request `threads` fields could otherwise ask for more).
// `kernels_fuzz --write-seeds=DIR` writes one small valid request per RPC to DIR (the seed
// corpus; it is generated, not committed) and exits; `--verbose` (with a corpus or with
// KERNELS_FUZZ_VERBOSE=1) prints each RPC's status.
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "server/kernels_service.h"

namespace {

using namespace chamferdb;
namespace pb = google::protobuf;

bool g_verbose = false;

// ------------------------------------------------------------------ the oracle

int64_t ElementSize(int dtype) {
  switch (dtype) {
    case v1::F32: return 4;
    case v1::F64: return 8;
    case v1::I8: return 1;
    case v1::U8: return 1;
    case v1::I32: return 4;
    case v1::I64: return 8;
    case v1::C64: return 8;
    case v1::C128: return 16;
    default: return 0;
  }
}

[[noreturn]] void Fail(const char* rpc, const std::string& what) {
  std::fprintf(stderr, "kernels_fuzz: %s: %s\n", rpc, what.c_str());
  std::abort();
}

void CheckTensor(const v1::Tensor& t, const std::string& path, const char* rpc) {
  const int64_t es = ElementSize(t.dtype());
  if (es == 0) Fail(rpc, path + ": response tensor has an invalid dtype " + std::to_string(t.dtype()));
  __int128 numel = 1;
  for (int i = 0; i < t.shape_size(); ++i) {
    if (t.shape(i) < 0) Fail(rpc, path + ": negative dim in a response tensor");
    numel *= t.shape(i);
    if (numel > (__int128{1} << 62)) Fail(rpc, path + ": response tensor shape overflows");
  }
  if (static_cast<__int128>(t.data().size()) != numel * es) {
    Fail(rpc, path + ": response tensor has " + std::to_string(t.data().size()) + " bytes, shape and dtype need " +
                  std::to_string(static_cast<int64_t>(numel * es)));
  }
}

// Visits every Tensor inside `m` (singular, repeated, nested).
void CheckTensors(const pb::Message& m, const std::string& path, const char* rpc) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const std::string sub = path + "." + f->name();
    const bool is_tensor = f->message_type() == v1::Tensor::descriptor();
    if (f->is_repeated()) {
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        const pb::Message& e = r->GetRepeatedMessage(m, f, k);
        if (is_tensor) {
          CheckTensor(static_cast<const v1::Tensor&>(e), sub, rpc);
        } else {
          CheckTensors(e, sub, rpc);
        }
      }
    } else if (r->HasField(m, f)) {
      const pb::Message& e = r->GetMessage(m, f);
      if (is_tensor) {
        CheckTensor(static_cast<const v1::Tensor&>(e), sub, rpc);
      } else {
        CheckTensors(e, sub, rpc);
      }
    }
  }
}

void CheckStatus(const grpc::Status& s, const pb::Message& resp, const char* rpc) {
  if (g_verbose) {
    std::fprintf(stderr, "%-28s %2d %s\n", rpc, static_cast<int>(s.error_code()), s.error_message().c_str());
  }
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      CheckTensors(resp, "response", rpc);
      if (resp.ByteSizeLong() > static_cast<size_t>(INT32_MAX)) Fail(rpc, "OK response over 2 GiB");
      return;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
      Fail(rpc, "returned status " + std::to_string(static_cast<int>(s.error_code())) + ": " + s.error_message());
    default:
      if (s.error_message().empty()) Fail(rpc, "non-OK status without a message");
      return;
  }
}

// ------------------------------------------------------------------ the RPC table

template <typename T>
struct RpcTraits;
template <typename C, typename Req, typename Resp>
struct RpcTraits<grpc::Status (C::*)(grpc::ServerContext*, const Req*, Resp*)> {
  using Request = Req;
  using Response = Resp;
};

KernelsService& Service() {
  static KernelsService* svc = new KernelsService();
  return *svc;
}

template <auto Fn>
void Run(const uint8_t* data, size_t size, const char* rpc) {
  using Traits = RpcTraits<decltype(Fn)>;
  typename Traits::Request req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  typename Traits::Response resp;
  grpc::ServerContext ctx;  // not bound to a call: no deadline, never cancelled
  CheckStatus((Service().*Fn)(&ctx, &req, &resp), resp, rpc);
}

struct Rpc {
  const char* name;
  void (*run)(const uint8_t*, size_t, const char*);
};

#define KERNELS_RPC(name) Rpc{#name, &Run<&KernelsService::name>}
// Append only (a corpus entry's byte 0 indexes this table).
const Rpc kRpcs[] = {
    KERNELS_RPC(GauntTP), KERNELS_RPC(InvariantMDS), KERNELS_RPC(VFNEdgeFeatures),
    KERNELS_RPC(VFNAggregate), KERNELS_RPC(SphericalGraphFeatures), KERNELS_RPC(SphericalGraphConv),
    KERNELS_RPC(LieDecompose), KERNELS_RPC(LieCompose), KERNELS_RPC(LieSample),
    KERNELS_RPC(AffineLiftCoords), KERNELS_RPC(Int8MixedLinear), KERNELS_RPC(Int8MaxSim),
    KERNELS_RPC(SpectralConv2d), KERNELS_RPC(FourierResample), KERNELS_RPC(SpGemm),
    KERNELS_RPC(EvoNorm), KERNELS_RPC(EbvGenerate), KERNELS_RPC(EbvClassify),
    KERNELS_RPC(MFacStaticPrecompute), KERNELS_RPC(MFacStaticApply), KERNELS_RPC(MFacStaticDiag),
    KERNELS_RPC(MFacStaticEntry), KERNELS_RPC(MFacWindowInit), KERNELS_RPC(MFacWindowUpdate),
    KERNELS_RPC(MFacWindowApply), KERNELS_RPC(QuadratureIntegralOperator),
    KERNELS_RPC(KernelInterpConv2d), KERNELS_RPC(BWBatchNorm), KERNELS_RPC(BWDistance),
    KERNELS_RPC(BWBarycenter), KERNELS_RPC(BWGeodesic), KERNELS_RPC(BWExpLog),
    KERNELS_RPC(SheafDiffusion), KERNELS_RPC(RecommendTopK), KERNELS_RPC(RankingMetrics),
    KERNELS_RPC(PathRegularity), KERNELS_RPC(RasterizePaths), KERNELS_RPC(PathDescriptor),
    KERNELS_RPC(InsrAdvect1D),
};
#undef KERNELS_RPC
constexpr size_t kNumRpcs = sizeof(kRpcs) / sizeof(kRpcs[0]);

// ------------------------------------------------------------------ seeds

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Deterministic, varied values in [-1, 1] when `v` is empty.
std::vector<double> Fill(const std::vector<int64_t>& shape, std::vector<double> v) {
  if (v.empty()) {
    const int64_t n = Numel(shape);
    for (int64_t i = 0; i < n; ++i) v.push_back(std::sin(1.7 * static_cast<double>(i) + 0.3));
  }
  return v;
}

template <typename T>
v1::Tensor Raw(const std::vector<int64_t>& shape, const std::vector<T>& v, v1::DType dtype) {
  v1::Tensor t;
  for (int64_t d : shape) t.add_shape(d);
  t.set_dtype(dtype);
  t.set_data(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  return t;
}

v1::Tensor F64(const std::vector<int64_t>& shape, std::vector<double> v = {}) {
  return Raw(shape, Fill(shape, std::move(v)), v1::F64);
}
v1::Tensor F32(const std::vector<int64_t>& shape, std::vector<double> v = {}) {
  const std::vector<double> d = Fill(shape, std::move(v));
  return Raw(shape, std::vector<float>(d.begin(), d.end()), v1::F32);
}
v1::Tensor I64(const std::vector<int64_t>& shape, const std::vector<int64_t>& v) { return Raw(shape, v, v1::I64); }
v1::Tensor I32(const std::vector<int64_t>& shape, const std::vector<int32_t>& v) { return Raw(shape, v, v1::I32); }
v1::Tensor C128(const std::vector<int64_t>& shape) {
  std::vector<std::complex<double>> v;
  for (int64_t i = 0; i < Numel(shape); ++i) v.emplace_back(std::sin(i + 0.5), std::cos(2.0 * i));
  return Raw(shape, v, v1::C128);
}

// A small backbone (N, CA, C per residue) with non-degenerate frames.
v1::Tensor Backbone(int r) {
  std::vector<double> v;
  for (int i = 0; i < r; ++i) {
    const double x = 3.8 * i, y = 0.7 * std::sin(i), z = 0.5 * std::cos(i);
    const double atoms[3][3] = {{x - 0.5, y + 1.2, z + 0.3}, {x, y, z}, {x + 1.1, y - 0.4, z + 0.6}};
    for (const auto& a : atoms) v.insert(v.end(), a, a + 3);
  }
  return F64({r, 3, 3}, v);
}

v1::Tensor Identities(int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.insert(v.end(), {1, 0, 0, 0, 1, 0, 0, 0, 1});
  return F64({n, 3, 3}, v);
}

// A closed cubic path of `segments` segments around (cx, cy) (3 points per segment).
void AddPath(v1::PathScene* s, std::vector<double>* pts, std::vector<int64_t>* offsets, double cx, double cy,
             int segments) {
  const int n = 3 * segments;
  for (int i = 0; i < n; ++i) {
    const double a = 2 * M_PI * i / n, rad = 1.0 + 0.3 * (i % 2);
    pts->push_back(cx + rad * std::cos(a));
    pts->push_back(cy + rad * std::sin(a));
  }
  offsets->push_back(offsets->back() + n);
}

v1::PathScene Scene(int paths) {
  v1::PathScene s;
  std::vector<double> pts;
  std::vector<int64_t> offsets = {0};
  for (int p = 0; p < paths; ++p) AddPath(&s, &pts, &offsets, 4.0 + 3.0 * p, 4.0, 2 + p);
  *s.mutable_points() = F64({static_cast<int64_t>(pts.size() / 2), 2}, pts);
  *s.mutable_path_offsets() = I64({static_cast<int64_t>(offsets.size())}, offsets);
  return s;
}

// SPD 2×2 matrices, batch of `n`.
v1::Tensor Spd(const std::vector<int64_t>& shape, int count) {
  std::vector<double> v;
  for (int i = 0; i < count; ++i) {
    const double a = 1.5 + 0.3 * i, c = 1.0 + 0.2 * i, b = 0.2 * std::sin(i + 1.0);
    v.insert(v.end(), {a, b, b, c});
  }
  return F64(shape, v);
}

// One valid, small request per RPC, in kRpcs order. Derived states (M-FAC factors and
// window states) come from calling the handlers themselves.
std::vector<std::string> MakeSeeds() {
  std::vector<std::string> out(kNumRpcs);
  auto put = [&](const char* name, const pb::Message& m) {
    for (size_t i = 0; i < kNumRpcs; ++i) {
      if (std::strcmp(kRpcs[i].name, name) == 0) {
        out[i] = m.SerializeAsString();
        return;
      }
    }
    std::abort();
  };
  grpc::ServerContext ctx;
  KernelsService& svc = Service();
  {
    v1::GauntTPRequest r;
    *r.mutable_x() = F64({1, 2, 4});
    *r.mutable_y() = F64({1, 1, 9});
    put("GauntTP", r);
  }
  {
    v1::InvariantMDSRequest r;
    *r.mutable_points() = F64({1, 5, 3});
    put("InvariantMDS", r);
  }
  {
    v1::VFNEdgeFeaturesRequest r;
    *r.mutable_rot() = Identities(3);
    *r.mutable_trans() = F64({3, 3});
    *r.mutable_q() = F64({3, 2, 3});
    *r.mutable_v() = F64({3, 2, 3});
    r.set_all_pairs(true);
    *r.mutable_w() = F64({2, 4});
    *r.mutable_mu() = F64({2, 2}, {0.5, 1.0, 0.5, 1.0});
    *r.mutable_sigma() = F64({2, 2}, {1, 1, 1, 1});
    put("VFNEdgeFeatures", r);
  }
  {
    v1::VFNAggregateRequest r;
    *r.mutable_backbone() = Backbone(3);
    *r.mutable_edges() = I64({3, 2}, {0, 1, 1, 2, 2, 0});
    *r.mutable_logits() = F64({3, 2});
    *r.mutable_val() = F64({3, 2, 2});
    *r.mutable_vv() = F64({3, 1, 3});
    put("VFNAggregate", r);
  }
  v1::SphericalGraphSpec graph;
  *graph.mutable_backbone() = Backbone(4);
  graph.set_cutoff(9.0);
  graph.set_lmax(2);
  graph.set_radial(v1::SGCN_RADIAL_RBF);
  *graph.mutable_rbf_centres() = F64({2}, {3.8, 7.6});
  graph.set_rbf_width(1.0);
  {
    v1::SphericalGraphFeaturesRequest r;
    *r.mutable_graph() = graph;
    put("SphericalGraphFeatures", r);
  }
  {
    v1::SphericalGraphConvRequest r;
    *r.mutable_graph() = graph;
    *r.mutable_x() = F64({4, 2});
    *r.mutable_w0() = F64({2, 3});
    *r.mutable_w() = F64({9 * 2, 2, 3});
    *r.mutable_bias() = F64({3});
    r.set_activation(v1::SGCN_ACTIVATION_RELU);
    r.set_normalize_rows(true);
    put("SphericalGraphConv", r);
  }
  {
    v1::LieDecomposeRequest r;
    *r.mutable_g() = F64({2, 2, 2}, {2, 0.3, -0.1, 1, 1.5, -0.4, 0.2, 0.9});
    put("LieDecompose", r);
  }
  {
    v1::LieComposeRequest r;
    r.set_n(2);
    *r.mutable_xi() = F64({2, 4});
    put("LieCompose", r);
  }
  {
    v1::LieSampleRequest r;
    r.set_n(3);
    r.set_count(3);
    r.set_seed(7);
    r.set_so_sampler(v1::LIE_SO_HAAR);
    put("LieSample", r);
  }
  {
    v1::AffineLiftCoordsRequest r;
    *r.mutable_g_out_inv() = F64({2, 2, 2}, {1, 0, 0, 1, 0.9, 0.1, -0.2, 1.1});
    *r.mutable_g_in() = F64({2, 2, 2}, {1.2, 0, 0, 0.8, 1, 0.3, 0, 1});
    r.set_kernel_size(3);
    put("AffineLiftCoords", r);
  }
  {
    v1::Int8MixedLinearRequest r;
    std::vector<double> x = Fill({3, 8}, {});
    x[5] = 9.0;  // one outlier column
    *r.mutable_x() = F32({3, 8}, x);
    *r.mutable_w() = F32({4, 8});
    *r.mutable_bias() = F32({4});
    r.set_return_c(true);
    put("Int8MixedLinear", r);
  }
  {
    v1::Int8MaxSimRequest r;
    *r.mutable_query() = F32({2, 4});
    *r.mutable_doc_offsets() = I64({4}, {0, 2, 3, 5});
    *r.mutable_doc_tokens() = F32({5, 4});
    r.set_k(2);
    put("Int8MaxSim", r);
  }
  {
    v1::SpectralConv2dRequest r;
    *r.mutable_x() = F64({1, 1, 6, 6});
    *r.mutable_weights_pos() = C128({1, 2, 2, 2});
    *r.mutable_weights_neg() = C128({1, 2, 2, 2});
    *r.mutable_bias() = F64({2});
    r.set_out_height(8);
    r.set_out_width(8);
    put("SpectralConv2d", r);
  }
  {
    v1::FourierResampleRequest r;
    *r.mutable_x() = F64({2, 4, 4});
    r.set_out_height(6);
    r.set_out_width(5);
    put("FourierResample", r);
  }
  {
    v1::SpGemmRequest r;
    *r.mutable_a_row_ptr() = I64({4}, {0, 2, 3, 4});
    *r.mutable_a_col() = I32({4}, {0, 2, 1, 2});
    *r.mutable_a_val() = F64({4});
    r.set_a_cols(3);
    *r.mutable_b_row_ptr() = I64({4}, {0, 1, 3, 4});
    *r.mutable_b_col() = I32({4}, {1, 0, 1, 0});
    *r.mutable_b_val() = F64({4});
    r.set_b_cols(2);
    put("SpGemm", r);
  }
  {
    v1::EvoNormRequest r;
    *r.mutable_x() = F32({2, 2, 3, 3});
    *r.mutable_gamma() = F32({2}, {1.0, 0.5});
    *r.mutable_beta() = F32({2});
    *r.mutable_v() = F32({2});
    *r.mutable_running_var() = F32({2}, {1.0, 0.5});
    put("EvoNorm", r);
  }
  {
    v1::EbvGenerateRequest r;
    r.set_n(5);
    r.set_d(3);
    r.set_max_steps(20);
    put("EbvGenerate", r);
  }
  {
    v1::EbvClassifyRequest r;
    *r.mutable_features() = F64({3, 4});
    *r.mutable_ebv() = F64({5, 4});
    r.set_k(2);
    put("EbvClassify", r);
  }
  {
    v1::MFacStaticPrecomputeRequest r;
    *r.mutable_grads() = F64({3, 5});
    r.set_damp(0.1);
    put("MFacStaticPrecompute", r);
    v1::MFacStaticPrecomputeResponse pre;
    if (!svc.MFacStaticPrecompute(&ctx, &r, &pre).ok()) Fail("seeds", "MFacStaticPrecompute failed");
    v1::MFacStaticApplyRequest a;
    *a.mutable_factor() = pre.factor();
    *a.mutable_x() = F64({2, 5});
    put("MFacStaticApply", a);
    v1::MFacStaticDiagRequest d;
    *d.mutable_factor() = pre.factor();
    put("MFacStaticDiag", d);
    v1::MFacStaticEntryRequest e;
    *e.mutable_factor() = pre.factor();
    *e.mutable_rows() = I64({3}, {0, 4, 2});
    *e.mutable_cols() = I64({3}, {1, 4, 0});
    put("MFacStaticEntry", e);
  }
  {
    v1::MFacWindowInitRequest r;
    *r.mutable_grads() = F64({3, 5});
    r.set_damp(0.1);
    put("MFacWindowInit", r);
    v1::MFacWindowStateResponse st;
    if (!svc.MFacWindowInit(&ctx, &r, &st).ok()) Fail("seeds", "MFacWindowInit failed");
    v1::MFacWindowUpdateRequest u;
    *u.mutable_state() = st.state();
    *u.mutable_grad() = F64({5}, {0.1, -0.2, 0.3, 0.05, 0.4});
    put("MFacWindowUpdate", u);
    v1::MFacWindowApplyRequest a;
    *a.mutable_state() = st.state();
    *a.mutable_x() = F64({5});
    put("MFacWindowApply", a);
  }
  {
    v1::QuadratureIntegralRequest r;
    *r.mutable_x() = F64({3, 2});
    *r.mutable_y() = F64({4, 2});
    *r.mutable_weights() = F64({4}, {0.25, 0.25, 0.25, 0.25});
    *r.mutable_v() = F64({4, 2});
    r.set_length_scale(0.7);
    put("QuadratureIntegralOperator", r);
  }
  {
    v1::KernelInterpConv2dRequest r;
    *r.mutable_x() = F64({1, 1, 6, 6});
    *r.mutable_kernel() = F64({2, 1, 3, 3});
    *r.mutable_bias() = F64({2});
    r.set_scale(2);
    put("KernelInterpConv2d", r);
  }
  {
    v1::BWBatchNormRequest r;
    *r.mutable_x() = Spd({3, 2, 2}, 3);
    put("BWBatchNorm", r);
  }
  {
    v1::BWDistanceRequest r;
    *r.mutable_x() = Spd({2, 2, 2}, 2);
    *r.mutable_y() = Spd({2, 2}, 1);
    put("BWDistance", r);
  }
  {
    v1::BWBarycenterRequest r;
    *r.mutable_x() = Spd({3, 2, 2}, 3);
    *r.mutable_weights() = F64({3}, {1, 2, 1});
    put("BWBarycenter", r);
  }
  {
    v1::BWGeodesicRequest r;
    *r.mutable_x() = Spd({2, 2}, 1);
    *r.mutable_y() = F64({2, 2}, {3, 0.5, 0.5, 2});
    *r.mutable_t() = F64({3}, {0, 0.5, 1});
    put("BWGeodesic", r);
  }
  {
    v1::BWExpLogRequest r;
    r.set_op(v1::BW_LOG);
    *r.mutable_base() = Spd({2, 2}, 1);
    *r.mutable_inputs() = Spd({2, 2, 2}, 2);
    put("BWExpLog", r);
  }
  {
    v1::SheafDiffusionRequest r;
    *r.mutable_edges() = I64({3, 2}, {0, 0, 0, 1, 1, 1});
    r.set_num_users(2);
    r.set_num_items(2);
    *r.mutable_x0() = F64({4, 2});
    for (int l = 0; l < 2; ++l) {
      v1::SheafLayerWeights* w = r.add_layers();
      *w->mutable_w() = F64({4});
      *w->mutable_weight() = F64({2, 2}, {1, 0.1, 0, 1});
      *w->mutable_bias() = F64({2});
    }
    r.set_return_maps(true);
    put("SheafDiffusion", r);
  }
  {
    v1::RecommendTopKRequest r;
    *r.mutable_h_users() = F64({2, 3});
    *r.mutable_h_items() = F64({4, 3});
    *r.mutable_train_edges() = I32({1, 2}, {0, 1});
    r.set_k(2);
    put("RecommendTopK", r);
  }
  {
    v1::RankingMetricsRequest r;
    *r.mutable_topk_items() = I32({2, 3}, {0, 2, 1, 3, -1, -1});
    *r.mutable_test_edges() = I32({3, 2}, {0, 2, 1, 3, 1, 0});
    r.add_ks(1);
    r.add_ks(3);
    *r.mutable_pos_scores() = F64({2}, {0.9, 0.2});
    *r.mutable_neg_scores() = F64({3}, {0.1, 0.5, 0.3});
    r.add_hits_ks(1);
    put("RankingMetrics", r);
  }
  {
    v1::PathRegularityRequest r;
    *r.mutable_scene() = Scene(2);
    r.set_samples_per_segment(4);
    put("PathRegularity", r);
  }
  {
    v1::RasterizePathsRequest r;
    *r.mutable_scene() = Scene(2);
    *r.mutable_rgba() = F64({2, 4}, {1, 0, 0, 1, 0, 0.5, 1, 0.5});
    r.set_width(12);
    r.set_height(8);
    put("RasterizePaths", r);
  }
  {
    v1::PathDescriptorRequest r;
    *r.mutable_scene() = Scene(3);
    r.set_resample(16);
    r.set_harmonics(4);
    r.set_raster(4);
    r.set_top_k(1);
    put("PathDescriptor", r);
  }
  {
    v1::InsrAdvect1DRequest r;
    r.set_hidden(4);
    r.set_sine_layers(1);
    r.set_n_steps(1);
    r.set_n_samples(16);
    r.set_max_iters(5);
    r.set_n_eval(8);
    r.set_fd_points(8);
    put("InsrAdvect1D", r);
  }
  for (size_t i = 0; i < kNumRpcs; ++i) {
    if (out[i].empty()) Fail(kRpcs[i].name, "no seed");
  }
  return out;
}

void WriteSeeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const std::vector<std::string> seeds = MakeSeeds();
  for (size_t i = 0; i < kNumRpcs; ++i) {
    std::string bytes(1, static_cast<char>(i));
    bytes += seeds[i];
    std::ofstream(dir + "/seed-" + kRpcs[i].name, std::ios::binary) << bytes;
  }
  std::fprintf(stderr, "kernels_fuzz: wrote %zu seeds to %s\n", kNumRpcs, dir.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // One OpenMP thread, whatever a request's `threads` says: libgomp reads the limit when it
  // starts, so set it and start again.
  if (std::getenv("OMP_THREAD_LIMIT") == nullptr) {
    setenv("OMP_THREAD_LIMIT", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", *argv);
    std::perror("kernels_fuzz: execv /proc/self/exe");
    std::exit(1);
  }
  omp_set_num_threads(1);
  spdlog::set_level(spdlog::level::off);  // handlers log rejected requests
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  if (const char* v = std::getenv("KERNELS_FUZZ_VERBOSE"); v != nullptr && v[0] == '1') g_verbose = true;
  for (int i = 1; i < *argc; ++i) {
    const std::string a = (*argv)[i];
    if (a == "--verbose") g_verbose = true;
    if (a.rfind("--write-seeds=", 0) == 0) {
      WriteSeeds(a.substr(std::strlen("--write-seeds=")));
      std::exit(0);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Rpc& rpc = kRpcs[data[0] % kNumRpcs];
  rpc.run(data + 1, size - 1, rpc.name);
  return 0;
}
