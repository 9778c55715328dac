// SpGEMM benchmarks (spec section (b)): C = A·A for an Erdős–Rényi matrix (n = 2^16,
// 16 per row), R-MAT (scale 16, edge factor 16) and the 2-D Laplacian 512². Cases: map
// reference, Eigen's conservative product, dense SPA, row_hash (1 and 2 threads) and
// smash_atomic (2 threads). Every fast result is checked against the map reference
// (pattern mismatch count and max relative value error as counters).
#include <Eigen/SparseCore>
#include <cmath>
#include <map>

#include "benchmark/benchmark.h"
#include "kernels/spgemm/generators.h"
#include "kernels/spgemm/spgemm.h"

namespace chamferdb::spgemm {
namespace {

const CsrMatrix& Input(int which) {
  static auto* cache = new std::map<int, CsrMatrix>();
  auto it = cache->find(which);
  if (it != cache->end()) return it->second;
  CsrMatrix m = which == 0 ? ErdosRenyi(1 << 16, 16, 1) : which == 1 ? Rmat(16, 16, 2) : Laplacian2d(512);
  return cache->emplace(which, std::move(m)).first->second;
}

const char* Name(int which) { return which == 0 ? "ER 2^16 x16" : which == 1 ? "R-MAT s16 e16" : "Laplacian 512^2"; }

const CsrMatrix& Reference(int which) {
  static auto* cache = new std::map<int, CsrMatrix>();
  auto it = cache->find(which);
  if (it != cache->end()) return it->second;
  Options opt;
  opt.method = Method::kReference;
  const auto& a = Input(which);
  return cache->emplace(which, SpGemm(a.view(), a.view(), opt, nullptr)).first->second;
}

void Report(benchmark::State& state, int which, const CsrMatrix& c) {
  const auto& a = Input(which);
  const Stats st = ComputeUpperBounds(a.view(), a.view());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * st.flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["nnzC"] = static_cast<double>(c.col.size());
  state.counters["compression"] = static_cast<double>(st.flops) / std::max<size_t>(1, c.col.size());
  const auto& r = Reference(which);
  double err = 0;
  int64_t mismatch = r.col == c.col && r.row_ptr == c.row_ptr ? 0 : 1;
  if (mismatch == 0)
    for (size_t t = 0; t < r.val.size(); ++t) err = std::max(err, std::fabs(c.val[t] - r.val[t]) / (1 + std::fabs(r.val[t])));
  state.counters["pattern_mismatch"] = mismatch;
  state.counters["max_rel_err"] = err;
  state.SetLabel(Name(which));
}

void BM_SpGemm(benchmark::State& state) {
  const int which = state.range(0);
  Options opt;
  opt.method = static_cast<Method>(state.range(1));
  opt.threads = state.range(2);
  const auto& a = Input(which);
  CsrMatrix c;
  for (auto _ : state) {
    c = SpGemm(a.view(), a.view(), opt, nullptr);
    benchmark::DoNotOptimize(c.col.data());
  }
  Report(state, which, c);
}

void BM_SpGemmEigen(benchmark::State& state) {
  const int which = state.range(0);
  const auto& a = Input(which);
  using Sp = Eigen::SparseMatrix<double, Eigen::RowMajor, int>;
  std::vector<int> outer(a.row_ptr.begin(), a.row_ptr.end());
  Eigen::Map<const Sp> m(a.rows, a.cols, static_cast<Eigen::Index>(a.col.size()), outer.data(), a.col.data(), a.val.data());
  Sp e;
  for (auto _ : state) {
    e = m * m;
    benchmark::DoNotOptimize(e.valuePtr());
  }
  CsrMatrix c;
  c.rows = a.rows;
  c.cols = a.cols;
  c.row_ptr.assign(e.outerIndexPtr(), e.outerIndexPtr() + e.outerSize() + 1);
  c.col.assign(e.innerIndexPtr(), e.innerIndexPtr() + e.nonZeros());
  c.val.assign(e.valuePtr(), e.valuePtr() + e.nonZeros());
  Report(state, which, c);
  state.SetLabel(std::string(Name(which)) + " Eigen");
}

constexpr int kRef = static_cast<int>(Method::kReference), kHash = static_cast<int>(Method::kRowHash),
              kSmash = static_cast<int>(Method::kSmashAtomic), kSpa = static_cast<int>(Method::kDenseSpa);

BENCHMARK(BM_SpGemm)
    ->ArgsProduct({{0, 1, 2}, {kRef}, {1}})
    ->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SpGemmEigen)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SpGemm)
    ->ArgsProduct({{0, 1, 2}, {kSpa}, {1}})
    ->ArgsProduct({{0, 1, 2}, {kHash}, {1, 2}})
    ->ArgsProduct({{0, 1, 2}, {kSmash}, {2}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace chamferdb::spgemm
