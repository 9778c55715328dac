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

namespace chamferdb::lie {
namespace {

// "Equivariance error vs number of Monte-Carlo samples" (spec 3.5): relative difference of
// the self-normalised weighted estimates of ∫ f(h·g) dμ and ∫ f(g) dμ for GL⁺(2), averaged
// over 20 seeds, for N = state.range(0) samples and each SO(2) sampler.
void BM_LieMcInvariance(benchmark::State& state, SoSampler sampler) {
  const int64_t count = state.range(0);
  std::vector<double> g(count * 4), gi(g.size()), x(g.size()), r(g.size()), lw(count);
  auto f = [](const double* m) {
    Eigen::Matrix2d a;
    a << m[0], m[1], m[2], m[3];
    Eigen::SelfAdjointEigenSolver<Eigen::Matrix2d> es(a * a.transpose());
    const double l = es.eigenvalues().array().log().matrix().squaredNorm();
    return std::exp(-l) * (1.0 + 0.5 * std::cos(std::atan2(m[2] - m[1], m[0] + m[3])));
  };
  const double h[4] = {1.1, 0.2, -0.1, 0.9};
  double err = 0;
  for (auto _ : state) {
    err = 0;
    for (int rep = 0; rep < 20; ++rep) {
      (void)Sample(Group::kGLPlus, 2, count, 1000 + rep, 0.6, sampler, 1.0,
                   {g.data(), gi.data(), x.data(), r.data(), lw.data()});
      double base = 0, moved = 0;  // the normalisation Σw cancels in the ratio
      for (int64_t c = 0; c < count; ++c) {
        const double* m = &g[c * 4];
        const double hm[4] = {h[0] * m[0] + h[1] * m[2], h[0] * m[1] + h[1] * m[3],
                              h[2] * m[0] + h[3] * m[2], h[2] * m[1] + h[3] * m[3]};
        const double w = std::exp(lw[c]);
        base += w * f(m);
        moved += w * f(hm);
      }
      err += std::abs(moved - base) / std::abs(base) / 20;
    }
  }
  state.counters["rel_invariance_err"] = err;
}

void McSizes(benchmark::internal::Benchmark* b) {
  for (int n : {10, 100, 1000, 10000}) b->Arg(n);
  b->Unit(benchmark::kMillisecond)->Iterations(1);
}
BENCHMARK_CAPTURE(BM_LieMcInvariance, equidistant, SoSampler::kEquidistant)->Apply(McSizes);
BENCHMARK_CAPTURE(BM_LieMcInvariance, uniform_angle, SoSampler::kUniformAngle)->Apply(McSizes);
BENCHMARK_CAPTURE(BM_LieMcInvariance, haar, SoSampler::kHaar)->Apply(McSizes);

}  // namespace
}  // namespace chamferdb::lie
