// S-GCN (spec 4.5): features + convolution, naive (all-pairs search, explicit Legendre,
// dense R×R S_t matrices) vs fast (cell list, recurrence, CSR aggregate-first), random-walk
// chains with 3.8 Å CA steps, cutoff 10 Å, L = 4, F = F' = 16.
// Counter max_abs_diff: max |H_fast − H_naive|.
//
//   build-geometry/kernels/gaunt/bench_geometry --benchmark_filter=SphericalGraph
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "kernels/sgcn/sgcn.h"
#include "kernels/sphere/sphere.h"

namespace chamferdb::sgcn {
namespace {

constexpr int kF = 16, kL = 4;

std::vector<double> Chain(int64_t n) {
  Rng rng(n);
  std::vector<double> bb(n * 9);
  double ca[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    double st[3] = {rng.Normal(), rng.Normal(), rng.Normal()};
    const double s = std::sqrt(st[0] * st[0] + st[1] * st[1] + st[2] * st[2]);
    for (int a = 0; a < 3; ++a) {
      ca[a] += 3.8 * st[a] / s;
      bb[i * 9 + a] = ca[a] + 0.8 * rng.Normal();
      bb[i * 9 + 3 + a] = ca[a];
      bb[i * 9 + 6 + a] = ca[a] + 0.8 * rng.Normal();
    }
  }
  return bb;
}

std::vector<double> Run(int64_t n, const std::vector<double>& bb, const std::vector<double>& params,
                        SgcnMethod m, int64_t* edges) {
  FeatureOptions o;
  o.lmax = kL;
  o.cutoff = 10;
  GraphFeatures g;
  (void)SphericalGraphFeatures(n, bb.data(), o, m, &g);
  *edges = g.num_edges();
  ConvParams p;
  p.f = p.fp = kF;
  p.x = params.data();
  p.w0 = p.x + n * kF;
  p.w = p.w0 + kF * kF;
  std::vector<double> h(n * kF);
  (void)SphericalGraphConv(g, p, m, h.data());
  return h;
}

void BM_SphericalGraph(benchmark::State& state, SgcnMethod m) {
  const int64_t n = state.range(0);
  const auto bb = Chain(n);
  Rng rng(1);
  std::vector<double> params(n * kF + kF * kF + sphere::NumSh(kL) * kF * kF);
  for (double& v : params) v = 0.1 * rng.Normal();
  int64_t edges = 0;
  std::vector<double> h;
  for (auto _ : state) {
    h = Run(n, bb, params, m, &edges);
    benchmark::DoNotOptimize(h.data());
  }
  const SgcnMethod other = m == SgcnMethod::kFast ? SgcnMethod::kNaive : SgcnMethod::kFast;
  const auto ref = Run(n, bb, params, other, &edges);
  double d = 0;
  for (size_t i = 0; i < h.size(); ++i) d = std::max(d, std::abs(h[i] - ref[i]));
  state.counters["max_abs_diff"] = d;
  state.counters["edges"] = static_cast<double>(edges);
}

BENCHMARK_CAPTURE(BM_SphericalGraph, fast, SgcnMethod::kFast)
    ->Arg(100)->Arg(300)->Arg(1000)->Arg(2000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SphericalGraph, naive, SgcnMethod::kNaive)
    ->Arg(100)->Arg(300)->Arg(1000)->Arg(2000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace chamferdb::sgcn
