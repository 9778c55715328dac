// EBV benchmarks (spec section (i)): one generation step at N = 1000, d = 100, τ = 0.15
// (naive loops vs blocked GEMM), SGD to convergence, the paper's N = d = 1000 by QR, and
// classification at B = 256, d = 512, N ∈ {1000, 100000} (naive vs GEMM + top-k).
#include <cmath>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/rng.h"
#include "kernels/ebv/ebv.h"

namespace chamferdb::ebv {
namespace {

std::vector<double> Rows(size_t n, size_t d, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> e(n * d);
  for (auto& x : e) x = rng.Normal();
  return e;
}

void BM_EbvStep(benchmark::State& state) {
  const size_t n = 1000, d = 100;
  GenerateParams p;
  p.n = n;
  p.d = d;
  p.optimizer = Optimizer::kQrIfNLeD;
  auto e = Rows(n, d, 1);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < d; ++j) s += e[i * d + j] * e[i * d + j];
    for (size_t j = 0; j < d; ++j) e[i * d + j] /= std::sqrt(s);
  }
  std::vector<double> g(n * d);
  for (auto _ : state) {
    if (state.range(0) == 0) {
      NaiveLossAndGradient(e.data(), n, d, 0.15, g.data());
    } else {
      BlockedLossAndGradient(e.data(), n, d, 0.15, 130, g.data(), nullptr);
    }
    benchmark::DoNotOptimize(g.data());
  }
  state.SetLabel(state.range(0) == 0 ? "naive loops" : "blocked GEMM");
}
BENCHMARK(BM_EbvStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EbvGenerate(benchmark::State& state) {
  GenerateParams p;
  p.n = 1000;
  p.d = state.range(0);
  p.tau = state.range(1) / 1000.0;
  p.optimizer = state.range(2) == 0 ? Optimizer::kOfficialSgd : Optimizer::kQrIfNLeD;
  p.max_steps = 2000;
  GenerateResult r;
  for (auto _ : state) {
    r = Generate(p);
    benchmark::DoNotOptimize(r.e.data());
  }
  state.counters["steps"] = r.steps;
  state.counters["converged"] = r.converged;
  state.counters["max_abs_cos"] = r.stats.max_abs;
  state.counters["ratio_to_welch"] = r.welch_bound > 0 ? r.stats.max_abs / r.welch_bound : 0;
  state.SetLabel(r.used_qr ? "QR" : "official SGD");
}
BENCHMARK(BM_EbvGenerate)->Args({100, 150, 0})->Args({1000, 2, 1})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_EbvClassify(benchmark::State& state) {
  const size_t n = state.range(0), d = 512, b = 256;
  auto e = Rows(n, d, 2), f = Rows(b, d, 3);
  Classification c;
  for (auto _ : state) {
    c = Classify(f.data(), b, e.data(), n, d, 5, state.range(1) == 0);
    benchmark::DoNotOptimize(c.ids.data());
  }
  state.counters["samples/s"] = benchmark::Counter(b * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(state.range(1) == 0 ? "naive" : "GEMM + top-k");
}
BENCHMARK(BM_EbvClassify)->ArgsProduct({{1000, 100000}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace chamferdb::ebv
