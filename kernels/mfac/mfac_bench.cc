// M-FAC benchmarks (spec section (f)): time per inverse-Hessian-vector product for the dense
// solve (d ≤ 2000), Woodbury per query (the naive baseline), the static apply after one
// precompute, and the sliding-window update + apply; error of each against Woodbury.
#include <chrono>
#include <cmath>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/rng.h"
#include "kernels/mfac/mfac.h"

namespace chamferdb::mfac {
namespace {

std::vector<double> Gaussian(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = rng.Normal();
  return v;
}

double RelErr(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

// case: 0 dense, 1 woodbury, 2 static apply, 3 window update+apply
void BM_MFac(benchmark::State& state) {
  const size_t d = state.range(0), m = state.range(1);
  const int which = state.range(2);
  const double damp = 1e-3;
  auto g = Gaussian(m * d, 1), x = Gaussian(d, 2), extra = Gaussian(d, 3);
  std::vector<double> out(d), ref(d);
  WoodburyApply(g.data(), m, d, damp, x.data(), 1, ref.data());
  StaticFactor f;
  if (which == 2) {
    const auto t0 = std::chrono::steady_clock::now();
    f = StaticPrecompute(g.data(), m, d, damp);
    state.counters["precompute_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  Window w(g.data(), m, d, damp);
  for (auto _ : state) {
    switch (which) {
      case 0: DenseApply(g.data(), m, d, damp, x.data(), 1, out.data()); break;
      case 1: WoodburyApply(g.data(), m, d, damp, x.data(), 1, out.data()); break;
      case 2: StaticApply(f, x.data(), 1, out.data()); break;
      case 3:
        w.Update(extra.data());
        w.Apply(x.data(), 1, out.data());
        break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  if (which != 3) state.counters["rel_err_vs_woodbury"] = RelErr(out, ref);
  state.counters["memory_MB"] = (which >= 2 ? 2.0 : 1.0) * m * d * 8 / 1e6;
  static const char* kNames[] = {"dense LLT solve", "Woodbury per query", "static apply", "window update+apply"};
  state.SetLabel(kNames[which]);
}
BENCHMARK(BM_MFac)
    ->ArgsProduct({{500, 1000, 2000}, {32}, {0, 1, 2}})
    ->ArgsProduct({{10000, 100000}, {32, 128}, {1, 2, 3}})
    ->ArgsProduct({{1000000}, {32}, {1, 2, 3}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace chamferdb::mfac
