// InvariantMDS: naive O(N³) classical MDS (build D, double-centre, full eigendecomposition)
// against the linear-time coordinate route on the same cloud, N ∈ {100, 400, 800, 1600}.
// Counter max_abs_diff: max |Y_fast − Y_naive| over all entries.
//
//   build-geometry/kernels/gaunt/bench_geometry --benchmark_filter=InvariantMds
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "kernels/tinv/invariant_mds.h"

namespace chamferdb::tinv {
namespace {

std::vector<double> Cloud(int64_t n) {
  Rng rng(n);
  std::vector<double> p(n * 3);
  for (int64_t i = 0; i < n; ++i) {
    p[i * 3] = 3 * rng.Normal();
    p[i * 3 + 1] = 2 * rng.Normal();
    p[i * 3 + 2] = rng.Normal() + 0.5 * std::abs(rng.Normal());
  }
  return p;
}

void BM_InvariantMds(benchmark::State& state, MdsMethod method) {
  const int64_t n = state.range(0);
  const auto p = Cloud(n);
  std::vector<double> y(n * 3), y_other(n * 3), eig(3);
  std::vector<int32_t> flags(3);
  const MdsOptions o;
  for (auto _ : state) {
    (void)InvariantMdsFromPoints(1, n, 3, p.data(), o, method,
                                 {y.data(), eig.data(), flags.data(), nullptr});
    benchmark::DoNotOptimize(y.data());
  }
  const MdsMethod other =
      method == MdsMethod::kCoordinates ? MdsMethod::kDistance : MdsMethod::kCoordinates;
  (void)InvariantMdsFromPoints(1, n, 3, p.data(), o, other,
                               {y_other.data(), eig.data(), flags.data(), nullptr});
  double diff = 0;
  for (size_t i = 0; i < y.size(); ++i) diff = std::max(diff, std::abs(y[i] - y_other[i]));
  state.counters["max_abs_diff"] = diff;
}

BENCHMARK_CAPTURE(BM_InvariantMds, fast, MdsMethod::kCoordinates)
    ->Arg(100)->Arg(400)->Arg(800)->Arg(1600)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_InvariantMds, naive, MdsMethod::kDistance)
    ->Arg(100)->Arg(400)->Arg(800)->Arg(1600)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace chamferdb::tinv
