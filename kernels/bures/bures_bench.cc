// GBWBN layer benchmark (spec (e)): N = 30 SPD matrices, n ∈ {12, 32, 93}.
//   naive:  BatchNormReference with a 100-iteration barycenter, fresh eigensolves everywhere
//   fast:   BatchNormFast with bary_iters = 1 (code parity), cached eigenbases, 1 or 2 threads
// Counters: err_vs_converged = max_i ‖Y_i − Y_i^naive‖_F/‖Y_i^naive‖_F (isolates the 1-step
// mean approximation), impl_err = the same for BatchNormFast run with the same 100 iterations
// (isolates implementation error).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <map>

#include "common/rng.h"
#include "kernels/bures/bures.h"

namespace chamferdb::bures {
namespace {

constexpr int kBatch = 30;

struct Case {
  std::vector<Mat> xs;
  BatchNormParams params;
  BatchNormResult naive;
};

Mat RandomSpd(int n, Rng& rng) {
  Mat g(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) g(i, j) = rng.Normal();
  return g * g.transpose() / n + 0.1 * Mat::Identity(n, n);
}

const Case& GetCase(int n) {
  static std::map<int, Case> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  Case c;
  Rng rng(DeriveSeed(2025, n, 0));
  for (int i = 0; i < kBatch; ++i) c.xs.push_back(RandomSpd(n, rng));
  c.params.m = Mat::Identity(n, n);
  c.params.b = RandomSpd(n, rng);
  c.params.running_mean = Mat::Identity(n, n);
  c.params.bary = {.iters = 100};
  c.naive = BatchNormReference(c.xs, c.params);
  return cache.emplace(n, std::move(c)).first->second;
}

double MaxRelErr(const std::vector<Mat>& a, const std::vector<Mat>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e = std::max(e, (a[i] - b[i]).norm() / b[i].norm());
  return e;
}

void BM_BWBatchNormNaive(benchmark::State& state) {
  const Case& c = GetCase(static_cast<int>(state.range(0)));
  omp_set_num_threads(1);
  BatchNormResult r;
  for (auto _ : state) {
    r = BatchNormReference(c.xs, c.params);
    benchmark::DoNotOptimize(r.y.data());
  }
  state.counters["err_vs_converged"] = MaxRelErr(r.y, c.naive.y);
  state.counters["matrices/s"] = benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_BWBatchNormFast(benchmark::State& state) {
  const Case& c = GetCase(static_cast<int>(state.range(0)));
  omp_set_num_threads(static_cast<int>(state.range(1)));
  BatchNormParams p = c.params;
  p.bary = {.iters = 1};
  BatchNormResult r;
  for (auto _ : state) {
    r = BatchNormFast(c.xs, p);
    benchmark::DoNotOptimize(r.y.data());
  }
  state.counters["err_vs_converged"] = MaxRelErr(r.y, c.naive.y);
  state.counters["impl_err"] = MaxRelErr(BatchNormFast(c.xs, c.params).y, c.naive.y);
  state.counters["matrices/s"] = benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate);
  omp_set_num_threads(1);
}

BENCHMARK(BM_BWBatchNormNaive)->Arg(12)->Arg(32)->Arg(93)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BWBatchNormFast)
    ->ArgsProduct({{12, 32, 93}, {1, 2}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace chamferdb::bures
