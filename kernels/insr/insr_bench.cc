// INSR 1-D advection benchmarks (spec (g)). Workload per case: initial fit + time steps of
// the official network (901 weights), S = 1024 samples per iteration.
//   naive:  per-sample scalar loss + gradient by central finite differences (2P+1 loss
//           evaluations per iteration), 3 iterations of one step only — shows why the manual
//           backward matters
//   fast:   chunked GEMM forward + tangent + manual reverse-over-forward, 1 and 2 threads,
//           2 steps × 100 iterations; counter loss_bits_match_1thread (must be 1)
//   fd_*:   the finite-difference baselines at 901 DOF over the paper's 240 steps, with their
//           final RMS error against u0(x − a t)
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstring>

#include "kernels/insr/insr.h"

namespace chamferdb::insr {
namespace {

SolveOptions BenchOptions(int steps, int iters) {
  SolveOptions opt;
  opt.n_steps = steps;
  opt.n_samples = 1024;
  opt.max_iters = iters;
  opt.lr = 1e-4;
  opt.n_eval = 901;
  opt.seed = 42;
  return opt;
}

double OneThreadFinalLoss() {
  static const double loss = [] {
    omp_set_num_threads(1);
    return Solve(Siren{}, AdvectionProblem{}, Integrator::kMidpoint, BenchOptions(2, 100), nullptr)
        .steps.back()
        .final_loss;
  }();
  return loss;
}

void BM_InsrNaiveFiniteDifferenceGradient(benchmark::State& state) {
  omp_set_num_threads(1);
  SolveOptions opt = BenchOptions(1, 3);
  opt.finite_difference_gradient = true;
  SolveResult r;
  for (auto _ : state) r = Solve(Siren{}, AdvectionProblem{}, Integrator::kMidpoint, opt, nullptr);
  const double iters = 2.0 * 3;  // step 0 and step 1, 3 iterations each
  state.counters["iterations/s"] = benchmark::Counter(iters, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["sample_gradients/s"] =
      benchmark::Counter(iters * opt.n_samples, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_InsrManualBackward(benchmark::State& state) {
  const double ref = OneThreadFinalLoss();
  omp_set_num_threads(static_cast<int>(state.range(0)));
  const SolveOptions opt = BenchOptions(2, 100);
  SolveResult r;
  for (auto _ : state) r = Solve(Siren{}, AdvectionProblem{}, Integrator::kMidpoint, opt, nullptr);
  double iters = 0;
  for (const StepReport& s : r.steps) iters += s.iterations;
  state.counters["iterations/s"] = benchmark::Counter(iters, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["sample_gradients/s"] =
      benchmark::Counter(iters * opt.n_samples, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["final_l2_error"] = r.steps.back().l2_error;
  const double loss = r.steps.back().final_loss;
  state.counters["loss_bits_match_1thread"] = std::memcmp(&loss, &ref, sizeof loss) == 0;
  omp_set_num_threads(1);
}

void BM_FiniteDifferenceSolver(benchmark::State& state) {
  const FdScheme scheme = static_cast<FdScheme>(state.range(0));
  std::vector<double> e;
  for (auto _ : state) e = FiniteDifferenceErrors(AdvectionProblem{}, scheme, 901, 240, 901);
  state.counters["final_l2_error"] = e.back();
  state.counters["steps/s"] = benchmark::Counter(240, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_InsrNaiveFiniteDifferenceGradient)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_InsrManualBackward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_FiniteDifferenceSolver)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace chamferdb::insr
