// Micro-benchmarks: FDE encoding (documents and queries), Chamfer scoring per candidate
// (scalar reference, packed fp32, packed fp16, int8), with the error against the reference
// (and, for int8, the analytic bound) as counters, and query ball carving.
// Run: ./build/bench/bench_micro   (CPU time per iteration; see docs/performance.md)
#include <benchmark/benchmark.h>

#include <cmath>

#include "common/rng.h"
#include "encoders/ball_carving.h"
#include "encoders/muvera_fde.h"
#include "kernels/chamfer/chamfer.h"
#include "kernels/chamfer/chamfer_int8.h"
#include "kernels/int8/quantize.h"

namespace chamferdb {
namespace {

std::vector<float> Unit(Rng& rng, size_t n, size_t dim) {
  std::vector<float> v(n * dim);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < dim; ++j) s += std::pow(v[i * dim + j] = static_cast<float>(rng.Normal()), 2);
    for (size_t j = 0; j < dim; ++j) v[i * dim + j] /= static_cast<float>(std::sqrt(s));
  }
  return v;
}

void BM_FdeEncode(benchmark::State& state) {
  const bool document = state.range(0) == 1;
  const uint32_t d_final = static_cast<uint32_t>(state.range(1));
  auto enc = MuveraFdeEncoder::Create({.dim = 128, .r_reps = 20, .k_sim = 5, .d_proj = 16, .d_final = d_final, .seed = 1});
  Rng rng(1);
  auto x = Unit(rng, 32, 128);
  std::vector<float> out((*enc)->output_dim());
  for (auto _ : state) {
    absl::Status s = document ? (*enc)->EncodeDocument({x.data(), 32, 128}, out.data())
                              : (*enc)->EncodeQuery({x.data(), 32, 128}, out.data());
    benchmark::DoNotOptimize(out.data());
    if (!s.ok()) state.SkipWithError("encode failed");
  }
  state.counters["per_second"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(document ? "document 32x128 -> FDE" : "query 32x128 -> FDE");
}
BENCHMARK(BM_FdeEncode)->Args({1, 0})->Args({0, 0})->Args({1, 2048})->Args({0, 2048});

enum Path { kReference, kPackedF32, kPackedF16, kPackedI8 };

void BM_Chamfer(benchmark::State& state) {
  const auto path = static_cast<Path>(state.range(0));
  const size_t nq = 32, np = 32, dim = 128;
  Rng rng(2);
  auto q = Unit(rng, nq, dim), p = Unit(rng, np, dim);
  std::vector<float> pf(dim * PackedColumns(np));
  std::vector<uint16_t> ph(dim * PackedColumns(np));
  PackTokensF32(p.data(), np, dim, pf.data());
  PackTokensF16(p.data(), np, dim, ph.data());
  std::vector<int8_t> codes(np * dim);
  std::vector<float> scales(np);
  int8::QuantizeRows(p.data(), np, dim, codes.data(), scales.data());
  std::vector<uint8_t> pi(PackedI8Bytes(np, dim));
  PackTokensI8(codes.data(), scales.data(), np, dim, pi.data());
  const QueryI8 qi = QuantizeQueryI8(q.data(), nq, dim);  // once per search in the server
  const double ref = ChamferReference(q.data(), nq, p.data(), np, dim);
  double got = 0;
  for (auto _ : state) {
    switch (path) {
      case kReference: got = ChamferReference(q.data(), nq, p.data(), np, dim); break;
      case kPackedF32: got = ChamferPackedF32(q.data(), nq, pf.data(), PackedColumns(np), dim); break;
      case kPackedF16: got = ChamferPackedF16(q.data(), nq, ph.data(), PackedColumns(np), dim); break;
      case kPackedI8: got = ChamferPackedI8(qi, pi.data(), np); break;
    }
    benchmark::DoNotOptimize(got);
  }
  state.counters["abs_error"] = std::fabs(got - ref);
  if (path == kPackedI8) state.counters["i8_bound"] = ChamferI8Bound(q.data(), qi, pi.data(), np);
  state.counters["candidates_per_second"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
  static const char* names[] = {"reference (double, scalar)", "packed fp32", "packed fp16", "packed int8"};
  state.SetLabel(std::string(names[path]) + " 32x32x128, path " +
                 (path == kPackedI8 ? ChamferI8PathName() : ChamferPathName()));
}
BENCHMARK(BM_Chamfer)->Arg(kReference)->Arg(kPackedF32)->Arg(kPackedF16)->Arg(kPackedI8);

// Per-search costs the int8 and ball-carving rerank add once per query.
void BM_QueryPrep(benchmark::State& state) {
  const bool carve = state.range(0) == 1;
  Rng rng(3);
  // Query tokens in 6 tight groups so that τ = 0.7 merges (as real ColBERT queries do).
  const size_t nq = 32, dim = 128;
  auto centres = Unit(rng, 6, dim);
  std::vector<float> q(nq * dim);
  for (size_t i = 0; i < nq; ++i) {
    double s = 0;
    for (size_t j = 0; j < dim; ++j) {
      q[i * dim + j] = centres[(i % 6) * dim + j] + 0.03f * static_cast<float>(rng.Normal());
      s += double(q[i * dim + j]) * q[i * dim + j];
    }
    for (size_t j = 0; j < dim; ++j) q[i * dim + j] /= static_cast<float>(std::sqrt(s));
  }
  size_t clusters = 0;
  for (auto _ : state) {
    if (carve) {
      CarvedQuery c = BallCarve(q.data(), nq, dim, 0.7f);
      clusters = c.clusters;
      benchmark::DoNotOptimize(c.tokens.data());
    } else {
      QueryI8 qi = QuantizeQueryI8(q.data(), nq, dim);
      benchmark::DoNotOptimize(qi.codes.data());
    }
  }
  if (carve) state.counters["clusters"] = static_cast<double>(clusters);
  state.SetLabel(carve ? "ball carving 32x128, tau 0.7" : "int8 query quantization 32x128");
}
BENCHMARK(BM_QueryPrep)->Arg(0)->Arg(1);

}  // namespace
}  // namespace chamferdb

