// Lie decompositions (spec 3.6): closed form 2×2 vs SVD vs eigh(g gᵀ) (the rgenn route) on
// the same 10⁵ random GL⁺(2) matrices, a tenth of them ill-conditioned (κ up to 1e8).
// Counters: max_rel_recon = max ‖P·R − g‖/‖g‖, max_orth = max ‖RᵀR − I‖.
//
//   build-geometry/kernels/gaunt/bench_geometry --benchmark_filter=Lie
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "common/rng.h"
#include "kernels/lie/lie.h"

namespace chamferdb::lie {
namespace {

constexpr int64_t kCount = 100000;

const std::vector<double>& Matrices() {
  static const std::vector<double> m = [] {
    Rng rng(1);
    std::vector<double> g(kCount * 4);
    for (int64_t b = 0; b < kCount; ++b) {
      double* x = &g[b * 4];
      if (b % 10 == 0) {  // U·diag(s, s/κ)·V with κ = 10^(8·u)
        const double kappa = std::pow(10.0, 8 * rng.Uniform());
        const double a = 2 * M_PI * rng.Uniform(), c = 2 * M_PI * rng.Uniform();
        const double s1 = 1 + rng.Uniform(), s2 = s1 / kappa;
        const double u[4] = {std::cos(a), -std::sin(a), std::sin(a), std::cos(a)};
        const double v[4] = {std::cos(c), -std::sin(c), std::sin(c), std::cos(c)};
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) x[i * 2 + j] = u[i * 2] * s1 * v[j] + u[i * 2 + 1] * s2 * v[2 + j];
      } else {
        do {
          for (int i = 0; i < 4; ++i) x[i] = rng.Normal() + (i % 3 == 0 ? 1.5 : 0.0);
        } while (x[0] * x[3] - x[1] * x[2] <= 0.01);
      }
    }
    return g;
  }();
  return m;
}

void BM_LieDecompose(benchmark::State& state, DecomposeMethod method) {
  const auto& g = Matrices();
  std::vector<double> p(g.size()), r(g.size()), x(g.size());
  Decomposition out;
  out.p = p.data();
  out.r = r.data();
  out.x = x.data();
  for (auto _ : state) {
    (void)Decompose(Group::kGLPlus, 2, kCount, g.data(), method, 1.0, 1e-9, 1, out);
    benchmark::DoNotOptimize(p.data());
  }
  double recon = 0, orth = 0;
  for (int64_t b = 0; b < kCount; ++b) {
    const double* pb = &p[b * 4];
    const double* rb = &r[b * 4];
    const double* gb = &g[b * 4];
    double e = 0, n = 0, o = 0;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const double pr = pb[i * 2] * rb[j] + pb[i * 2 + 1] * rb[2 + j];
        e += (pr - gb[i * 2 + j]) * (pr - gb[i * 2 + j]);
        n += gb[i * 2 + j] * gb[i * 2 + j];
        const double rr = rb[i] * rb[j] + rb[2 + i] * rb[2 + j] - (i == j ? 1.0 : 0.0);
        o += rr * rr;
      }
    recon = std::max(recon, std::sqrt(e / n));
    orth = std::max(orth, std::sqrt(o));
  }
  state.counters["max_rel_recon"] = recon;
  state.counters["max_orth"] = orth;
  state.counters["ns_per_matrix"] = benchmark::Counter(
      static_cast<double>(kCount) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

BENCHMARK_CAPTURE(BM_LieDecompose, closed_form, DecomposeMethod::kClosedForm)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LieDecompose, svd, DecomposeMethod::kSvd)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LieDecompose, eigh, DecomposeMethod::kEigh)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace chamferdb::lie
