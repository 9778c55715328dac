// Side-by-side benchmark of the Gaunt tensor product methods (spec 1.7 / 2.6), MIMO:
// L1 = L2 = L, Lout = 2L, C channels, B = 1, one thread. Every fast-method run reports its
// max relative error against the direct Gaunt contraction on the same inputs
// (counter rel_err_vs_direct), its time per (batch, channel) sample (t_per_sample, seconds)
// and the one-off table build time (setup_s, cached afterwards).
// After the run, the log–log slope of time against L (L ≥ 4) is printed per method.
//
//   build-geometry/kernels/gaunt/bench_geometry --benchmark_filter=GauntTP
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "common/rng.h"
#include "kernels/gaunt/gaunt.h"
#include "kernels/sphere/sphere.h"

namespace chamferdb::gaunt {
namespace {

constexpr int kChannels = 16;

std::vector<double> Gaussian(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = rng.Normal();
  return v;
}

void BM_GauntTP(benchmark::State& state, GauntMethod method) {
  const int l = static_cast<int>(state.range(0));
  GauntTPShape s;
  s.batch = 1;
  s.channels = kChannels;
  s.y_channels = kChannels;
  s.l1 = s.l2 = l;
  s.lout = 2 * l;
  const auto x = Gaussian(kChannels * sphere::NumSh(l), 1);
  const auto y = Gaussian(kChannels * sphere::NumSh(l), 2);
  std::vector<double> z(kChannels * sphere::NumSh(2 * l)), ref(z.size());
  GauntTPOptions o;
  o.method = method;
  GauntTPStats stats;
  if (!GauntTensorProduct(s, x.data(), y.data(), {}, o, z.data(), &stats).ok()) {
    state.SkipWithError("GauntTensorProduct failed");
    return;
  }
  // Table build time of the first call for this (method, L); later runs hit the cache.
  static std::map<std::pair<int, int>, double> first_setup;
  const auto key = std::make_pair(static_cast<int>(method), l);
  if (!first_setup.count(key)) first_setup[key] = stats.setup_seconds;
  const double setup = first_setup[key];
  for (auto _ : state) {
    (void)GauntTensorProduct(s, x.data(), y.data(), {}, o, z.data());
    benchmark::DoNotOptimize(z.data());
  }
  GauntTPOptions ro;
  ro.method = GauntMethod::kDirect;
  (void)GauntTensorProduct(s, x.data(), y.data(), {}, ro, ref.data());
  double err = 0, scale = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    err = std::max(err, std::abs(z[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  state.counters["rel_err_vs_direct"] = err / scale;
  state.counters["setup_s"] = setup;
  state.counters["t_per_sample"] = benchmark::Counter(
      static_cast<double>(kChannels),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void Ls(benchmark::internal::Benchmark* b) {
  for (int l : {2, 3, 4, 5, 6, 8, 10, 12, 14, 16}) b->Arg(l);
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_GauntTP, direct, GauntMethod::kDirect)->Apply(Ls);
BENCHMARK_CAPTURE(BM_GauntTP, dense, GauntMethod::kDense)
    ->DenseRange(2, 8)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GauntTP, fourier, GauntMethod::kFourier)->Apply(Ls);
BENCHMARK_CAPTURE(BM_GauntTP, fourier_direct_conv, GauntMethod::kFourierDirectConv)->Apply(Ls);
BENCHMARK_CAPTURE(BM_GauntTP, grid, GauntMethod::kGrid)->Apply(Ls);

// Console output plus a least-squares fit of log(time) against log(L) per method.
class FitReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      const std::string name = r.benchmark_name();
      const size_t slash = name.rfind('/');
      if (slash == std::string::npos || name.rfind("BM_GauntTP/", 0) != 0) continue;
      const int l = std::stoi(name.substr(slash + 1));
      if (l < 4) continue;
      points_[name.substr(0, slash)].push_back({std::log(l), std::log(r.GetAdjustedRealTime())});
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    for (const auto& [method, pts] : points_) {
      if (pts.size() < 2) continue;
      double sx = 0, sy = 0, sxx = 0, sxy = 0;
      for (auto [px, py] : pts) sx += px, sy += py, sxx += px * px, sxy += px * py;
      const double n = static_cast<double>(pts.size());
      std::printf("fitted exponent (time ~ L^p, L >= 4) %-40s p = %.2f\n", method.c_str(),
                  (n * sxy - sx * sy) / (n * sxx - sx * sx));
    }
  }

 private:
  std::map<std::string, std::vector<std::pair<double, double>>> points_;
};

}  // namespace
}  // namespace chamferdb::gaunt

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  chamferdb::gaunt::FitReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
