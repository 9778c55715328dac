// EvoNorm benchmarks (spec section (h)): [64, 256, 56, 56] and [8, 512, 28, 28]; the
// long-double naive reference only on a small shape. Reports GB/s (x read 3×, y written
// once) and the max error against the reference where it runs.
#include <cmath>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/rng.h"
#include "kernels/evonorm/evonorm.h"

namespace chamferdb::evonorm {
namespace {

struct In {
  Shape s;
  std::vector<float> x, g, b, v, rv;
};

In MakeIn(Shape s) {
  In in{s, {}, {}, {}, {}, {}};
  Rng rng(3);
  in.x.resize(s.n * s.c * s.h * s.w);
  for (auto& a : in.x) a = static_cast<float>(rng.Normal());
  in.g.assign(s.c, 1.0f);
  in.b.assign(s.c, 0.0f);
  in.v.assign(s.c, 1.0f);
  in.rv.assign(s.c, 1.0f);
  return in;
}

void BM_EvoNorm(benchmark::State& state) {
  const Shape s = state.range(0) == 0 ? Shape{64, 256, 56, 56} : state.range(0) == 1 ? Shape{8, 512, 28, 28} : Shape{4, 32, 14, 14};
  const bool reference = state.range(2) == 1;
  In in = MakeIn(s);
  Params p;
  p.variant = state.range(1) == 0 ? Variant::kB0 : Variant::kS0;
  if (!ResolveParams(s, &p).ok()) return state.SkipWithError("bad params");
  std::vector<float> y(in.x.size());
  for (auto _ : state) {
    auto rv = in.rv;
    if (reference) {
      EvoNormReference(s, p, in.x.data(), in.g.data(), in.b.data(), in.v.data(), rv.data(), y.data());
    } else {
      EvoNorm(s, p, in.x.data(), in.g.data(), in.b.data(), in.v.data(), rv.data(), y.data(), state.range(3));
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(16.0 * in.x.size() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  if (!reference && s.n * s.c * s.h * s.w < 100000) {
    std::vector<float> yr(y.size());
    auto rv = in.rv;
    EvoNormReference(s, p, in.x.data(), in.g.data(), in.b.data(), in.v.data(), rv.data(), yr.data());
    double e = 0;
    for (size_t i = 0; i < y.size(); ++i) e = std::max(e, static_cast<double>(std::fabs(y[i] - yr[i])));
    state.counters["max_err_vs_ref"] = e;
  }
  state.SetLabel(std::string(p.variant == Variant::kB0 ? "B0 " : "S0 ") + (reference ? "long-double reference" : "fast"));
}
BENCHMARK(BM_EvoNorm)
    ->ArgsProduct({{2}, {0, 1}, {1}, {1}})
    ->ArgsProduct({{2}, {0, 1}, {0}, {1}})
    ->ArgsProduct({{0, 1}, {0, 1}, {0}, {1, 2}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace chamferdb::evonorm
