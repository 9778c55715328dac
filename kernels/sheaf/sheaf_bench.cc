// Sheaf4Rec benchmarks (spec (c)), on a power-law synthetic bipartite graph at ML-100K
// scale (943 users, 1682 items, ~80k interactions), D = 64.
//   diffusion: dense-Laplacian reference vs CSR SpMM with 1 and 2 threads (L = 2 layers so
//              the dense reference finishes); counter max_abs_err vs the reference.
//   top-K: per-user full sort vs blocked GEMM + nth_element, K = 10 and 20; counter
//          mismatched_lists (must be 0).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>

#include "common/rng.h"
#include "kernels/sheaf/sheaf.h"

namespace chamferdb::sheaf {
namespace {

constexpr int32_t kUsers = 943, kItems = 1682, kDim = 64;

struct SheafCase {
  DiffusionParams params;
  std::vector<double> x0;
  DiffusionResult reference;
  UserItems train;
};

const SheafCase& GetSheafCase() {
  static const SheafCase* c = [] {
    auto* s = new SheafCase;
    Rng rng(DeriveSeed(7, 1, 0));
    DiffusionParams& p = s->params;
    p.num_users = kUsers;
    p.num_items = kItems;
    p.dim = kDim;
    // Power-law item popularity, ~85 interactions per user.
    for (int32_t u = 0; u < kUsers; ++u) {
      std::vector<char> used(kItems, 0);
      for (int t = 0; t < 85; ++t) {
        const int32_t item = static_cast<int32_t>(kItems * std::pow(rng.Uniform(), 2.0));
        if (!used[item]) {
          used[item] = 1;
          p.edges.push_back({u, item});
        }
      }
    }
    for (int l = 0; l < 2; ++l) {
      SheafLayer layer;
      for (int j = 0; j < 2 * kDim; ++j) layer.w.push_back(rng.Normal() / std::sqrt(2.0 * kDim));
      for (int j = 0; j < kDim * kDim; ++j) layer.W.push_back(rng.Normal() / std::sqrt(1.0 * kDim));
      for (int j = 0; j < kDim; ++j) layer.b.push_back(0.01 * rng.Normal());
      p.layers.push_back(layer);
    }
    s->x0.resize(static_cast<size_t>(kUsers + kItems) * kDim);
    for (double& v : s->x0) v = 0.1 * rng.Normal();
    s->reference = DiffuseReference(p, s->x0);
    s->train = UserItems::FromPairs(kUsers, p.edges);
    return s;
  }();
  return *c;
}

double MaxAbs(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

void BM_SheafDiffusionDense(benchmark::State& state) {
  const SheafCase& c = GetSheafCase();
  omp_set_num_threads(1);
  for (auto _ : state) benchmark::DoNotOptimize(DiffuseReference(c.params, c.x0).h.data());
  state.counters["edges*D/s"] = benchmark::Counter(
      2.0 * c.params.edges.size() * kDim * c.params.layers.size(),
      benchmark::Counter::kIsIterationInvariantRate);
}

void BM_SheafDiffusionCsr(benchmark::State& state) {
  const SheafCase& c = GetSheafCase();
  omp_set_num_threads(static_cast<int>(state.range(0)));
  DiffusionResult r;
  for (auto _ : state) {
    r = DiffuseFast(c.params, c.x0);
    benchmark::DoNotOptimize(r.h.data());
  }
  state.counters["max_abs_err"] = MaxAbs(r.h, c.reference.h);
  state.counters["edges*D/s"] = benchmark::Counter(
      2.0 * c.params.edges.size() * kDim * c.params.layers.size(),
      benchmark::Counter::kIsIterationInvariantRate);
  omp_set_num_threads(1);
}

void TopKBench(benchmark::State& state, bool fast) {
  const SheafCase& c = GetSheafCase();
  const int32_t k = static_cast<int32_t>(state.range(0));
  omp_set_num_threads(fast ? static_cast<int>(state.range(1)) : 1);
  const std::vector<double>& h = c.reference.h;
  const std::vector<double> hu(h.begin(), h.begin() + kUsers * kDim), hi(h.begin() + kUsers * kDim, h.end());
  TopK t;
  for (auto _ : state) {
    t = fast ? RecommendFast(hu, hi, kUsers, kItems, kDim, c.train, k, MaskMode::kNegInf)
             : RecommendReference(hu, hi, kUsers, kItems, kDim, c.train, k, MaskMode::kNegInf);
    benchmark::DoNotOptimize(t.items.data());
  }
  const TopK ref = RecommendReference(hu, hi, kUsers, kItems, kDim, c.train, k, MaskMode::kNegInf);
  int mismatched = 0;
  for (int32_t u = 0; u < kUsers; ++u) {
    mismatched += !std::equal(t.items.begin() + u * k, t.items.begin() + (u + 1) * k,
                              ref.items.begin() + u * k);
  }
  state.counters["mismatched_lists"] = mismatched;
  state.counters["users/s"] = benchmark::Counter(kUsers, benchmark::Counter::kIsIterationInvariantRate);
  omp_set_num_threads(1);
}
void BM_TopKFullSort(benchmark::State& state) { TopKBench(state, false); }
void BM_TopKBlockedGemm(benchmark::State& state) { TopKBench(state, true); }

BENCHMARK(BM_SheafDiffusionDense)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_SheafDiffusionCsr)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TopKFullSort)->Arg(10)->Arg(20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TopKBlockedGemm)->ArgsProduct({{10, 20}, {1, 2}})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace chamferdb::sheaf
