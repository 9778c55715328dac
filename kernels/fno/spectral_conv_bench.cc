// SpectralConv2d benchmarks (spec section (d)): direct DFT vs FFTW at B=8, Cin=Cout=32,
// H=W ∈ {64, 128, 256}, modes (16,16) and (32,32); error against the direct DFT where
// it runs, and the 64→256 super-resolution invariance check on every run.
#include <cmath>
#include <complex>
#include <map>
#include <numbers>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/rng.h"
#include "kernels/fno/spectral_conv.h"

namespace chamferdb::fno {
namespace {

using cd = std::complex<double>;

struct Input {
  SpectralConv2dShape s;
  std::vector<double> x, bias;
  std::vector<cd> wp, wn;
};

Input Make(size_t n, size_t m) {
  Input in;
  in.s = {8, 32, 32, n, n, m / 2, m, n, n};  // n_modes = (m, m): m/2 rows per corner
  Rng rng(5);
  in.x.resize(8 * 32 * n * n);
  for (auto& v : in.x) v = rng.Normal();
  in.wp.resize(32 * 32 * (m / 2) * m);
  in.wn.resize(in.wp.size());
  const double sc = 1.0 / (32 * 32);
  for (auto& v : in.wp) v = sc * cd(rng.Normal(), rng.Normal());
  for (auto& v : in.wn) v = sc * cd(rng.Normal(), rng.Normal());
  in.bias.assign(32, 0.1);
  return in;
}

const std::vector<double>& DirectResult(const Input& in, size_t n, size_t m) {
  static auto* cache = new std::map<std::pair<size_t, size_t>, std::vector<double>>();
  auto it = cache->find({n, m});
  if (it != cache->end()) return it->second;
  std::vector<double> y(8 * 32 * n * n);
  SpectralConv2dDirect(in.s, FftNorm::kForward, in.x.data(), in.wp.data(), in.wn.data(),
                       in.bias.data(), y.data());
  return cache->emplace(std::make_pair(n, m), std::move(y)).first->second;
}

void BM_SpectralConv2dDirect(benchmark::State& state) {
  const size_t n = state.range(0), m = state.range(1);
  Input in = Make(n, m);
  std::vector<double> y(8 * 32 * n * n);
  for (auto _ : state) {
    SpectralConv2dDirect(in.s, FftNorm::kForward, in.x.data(), in.wp.data(), in.wn.data(),
                         in.bias.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel("direct DFT (reference)");
}
BENCHMARK(BM_SpectralConv2dDirect)->Args({64, 16})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// Super-resolution invariance: a band-limited input at 64² with output 256² equals the
// native 256² evaluation; reports the max abs difference.
double InvarianceError() {
  const size_t ci = 4, co = 4, m = 8;
  Rng rng(9);
  std::vector<cd> wp(ci * co * m * m), wn(wp.size());
  for (auto& v : wp) v = cd(rng.Normal(), rng.Normal());
  for (auto& v : wn) v = cd(rng.Normal(), rng.Normal());
  auto sample = [&](size_t n) {
    std::vector<double> x(ci * n * n);
    for (size_t i = 0; i < ci; ++i)
      for (size_t a = 0; a < n; ++a)
        for (size_t b = 0; b < n; ++b) {
          const double u = double(a) / n, v = double(b) / n;
          x[(i * n + a) * n + b] = std::cos(2 * std::numbers::pi * (3 * u + (i + 1) * v)) +
                                   0.5 * std::sin(2 * std::numbers::pi * (-5 * u + 2 * v));
        }
    return x;
  };
  auto x64 = sample(64), x256 = sample(256);
  std::vector<double> up(co * 256 * 256), native(up.size());
  SpectralConv2d({1, ci, co, 64, 64, m, m, 256, 256}, FftNorm::kForward, x64.data(), wp.data(), wn.data(), nullptr, up.data());
  SpectralConv2d({1, ci, co, 256, 256, m, m, 256, 256}, FftNorm::kForward, x256.data(), wp.data(), wn.data(), nullptr, native.data());
  double e = 0;
  for (size_t t = 0; t < up.size(); ++t) e = std::max(e, std::fabs(up[t] - native[t]));
  return e;
}

void BM_SpectralConv2dFftw(benchmark::State& state) {
  const size_t n = state.range(0), m = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  Input in = Make(n, m);
  std::vector<double> y(8 * 32 * n * n);
  for (auto _ : state) {
    SpectralConv2d(in.s, FftNorm::kForward, in.x.data(), in.wp.data(), in.wn.data(),
                   in.bias.data(), y.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  if (n == 64 && m == 16) {
    const auto& ref = DirectResult(in, n, m);
    double e = 0;
    for (size_t t = 0; t < y.size(); ++t) e = std::max(e, std::fabs(y[t] - ref[t]));
    state.counters["max_err_vs_direct"] = e;
  }
  state.counters["invariance_err_64to256"] = InvarianceError();
  state.SetLabel("FFTW + blocked contraction");
}
BENCHMARK(BM_SpectralConv2dFftw)
    ->ArgsProduct({{64, 128, 256}, {16, 32}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace chamferdb::fno
