// LLM.int8() benchmarks (spec section (a)): int8 GEMM paths against OpenBLAS SGEMM on the
// same shapes, the full mixed linear layer with planted outliers, and int8 MaxSim.
#include <cblas.h>

#include <cmath>
#include <map>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/rng.h"
#include "kernels/int8/gemm.h"
#include "kernels/int8/maxsim.h"
#include "kernels/int8/mixed_linear.h"
#include "kernels/int8/quantize.h"

namespace chamferdb::int8 {
namespace {

struct LinearInput {
  size_t s, h, o;
  std::vector<float> x, w;
  std::vector<double> y64;  // float64 reference X·Wᵀ
};

// s tokens, h = o features, 6 planted outlier columns of magnitude 8–40, W ~ N(0, 0.02²).
const LinearInput& Input(size_t s, size_t h) {
  static std::map<std::pair<size_t, size_t>, LinearInput>* cache = new std::map<std::pair<size_t, size_t>, LinearInput>();
  auto it = cache->find({s, h});
  if (it != cache->end()) return it->second;
  LinearInput in{s, h, h, {}, {}, {}};
  Rng rng(42);
  in.x.resize(s * h);
  in.w.resize(h * h);
  for (auto& v : in.x) v = static_cast<float>(rng.Normal());
  for (auto& v : in.w) v = static_cast<float>(0.02 * rng.Normal());
  for (int t = 0; t < 6; ++t) {
    const size_t j = rng.UniformInt(h);
    const double mag = 8.0 + 32.0 * rng.Uniform();
    for (size_t i = 0; i < s; ++i) in.x[i * h + j] = static_cast<float>(in.x[i * h + j] * mag / 3.0);
  }
  in.y64.assign(s * h, 0.0);
  std::vector<double> xd(in.x.begin(), in.x.end()), wd(in.w.begin(), in.w.end());
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s, h, h, 1.0, xd.data(), h, wd.data(), h,
              0.0, in.y64.data(), h);
  return cache->emplace(std::make_pair(s, h), std::move(in)).first->second;
}

void ReportError(benchmark::State& state, const std::vector<float>& y, const LinearInput& in) {
  double mx = 0, mean = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double e = std::fabs(y[i] - in.y64[i]);
    mx = std::max(mx, e);
    mean += e;
  }
  state.counters["max_err"] = mx;
  state.counters["mean_err"] = mean / y.size();
}

void SetGops(benchmark::State& state, const LinearInput& in) {
  state.counters["GOP/s"] = benchmark::Counter(2.0 * in.s * in.h * in.o * state.iterations() / 1e9,
                                               benchmark::Counter::kIsRate);
}

// Raw int8 GEMM on the same shape (codes of X and W).
void BM_Int8Gemm(benchmark::State& state) {
  const auto path = static_cast<GemmPath>(state.range(2));
  if (!GemmPathAvailable(path)) {
    state.SkipWithError("path not available");
    return;
  }
  const auto& in = Input(state.range(0), state.range(1));
  std::vector<int8_t> xq(in.s * in.h), wq(in.o * in.h);
  std::vector<float> sx(in.s), sw(in.o);
  QuantizeRows(in.x.data(), in.s, in.h, xq.data(), sx.data());
  QuantizeRows(in.w.data(), in.o, in.h, wq.data(), sw.data());
  std::vector<int32_t> c(in.s * in.o);
  const int threads = static_cast<int>(state.range(3));
  for (auto _ : state) {
    if (path == GemmPath::kAuto) {
      Int8GemmNTNaive(xq.data(), wq.data(), c.data(), in.s, in.o, in.h);
    } else {
      Int8GemmNT(xq.data(), wq.data(), c.data(), in.s, in.o, in.h, path, threads);
    }
    benchmark::DoNotOptimize(c.data());
  }
  SetGops(state, in);
  state.SetLabel(path == GemmPath::kAuto ? "naive" : std::string(GemmPathName(path)));
}

void BM_SgemmOpenBlas(benchmark::State& state) {
  const auto& in = Input(state.range(0), state.range(1));
  openblas_set_num_threads(static_cast<int>(state.range(2)));
  std::vector<float> y(in.s * in.o);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, in.s, in.o, in.h, 1.0f, in.x.data(), in.h,
                in.w.data(), in.h, 0.0f, y.data(), in.o);
    benchmark::DoNotOptimize(y.data());
  }
  SetGops(state, in);
  ReportError(state, y, in);
  state.counters["W_bytes"] = 4.0 * in.o * in.h;
}

// The full layer: quantize X, int8 GEMM, dequant, outlier GEMM. Weights pre-quantized.
void BM_Int8MixedLinear(benchmark::State& state) {
  const auto& in = Input(state.range(0), state.range(1));
  const bool decompose = state.range(2) != 0;
  MixedLinearOptions opt;
  opt.threshold = decompose ? 6.0f : 0.0f;
  opt.threads = static_cast<int>(state.range(3));
  const auto wq = QuantizeWeight(in.w.data(), in.o, in.h);
  MixedLinearResult r;
  for (auto _ : state) {
    r = Int8MixedLinear(in.x.data(), in.s, in.h, wq, in.w.data(), nullptr, opt);
    benchmark::DoNotOptimize(r.y.data());
  }
  SetGops(state, in);
  ReportError(state, r.y, in);
  state.counters["outlier_cols"] = r.outlier_cols.size();
  state.counters["outlier_share"] = 1.0 - r.int8_fraction;
  state.counters["W_bytes"] = in.o * in.h + 4.0 * in.o;
  state.SetLabel(decompose ? "vector-wise + decomposition" : "vector-wise only (ablation)");
}

void GemmArgs(benchmark::internal::Benchmark* b) {
  for (int p : {static_cast<int>(GemmPath::kAvx512Vnni), static_cast<int>(GemmPath::kAvx2),
                static_cast<int>(GemmPath::kScalar)})
    for (int t : {1, 2}) b->Args({512, 4096, p, t});
  b->Args({64, 1024, static_cast<int>(GemmPath::kAuto), 1});  // naive, small shape
  b->Args({64, 1024, static_cast<int>(GemmPath::kAvx512Vnni), 1});
}
BENCHMARK(BM_Int8Gemm)->Apply(GemmArgs)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SgemmOpenBlas)->Args({512, 4096, 1})->Args({512, 4096, 2})->Args({64, 1024, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Int8MixedLinear)->Args({512, 4096, 1, 1})->Args({512, 4096, 1, 2})
    ->Args({512, 4096, 0, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- MaxSim: 10 000 docs × 64 tokens × 128 dims, 32-token queries (spec (a) A1b).
struct MaxSimInput {
  std::vector<int64_t> offsets;
  std::vector<float> tokens;
  std::vector<int8_t> codes;
  std::vector<float> scales;
  std::vector<float> query;
  std::vector<int64_t> exact_top10;
};

const MaxSimInput& MaxSimData() {
  static MaxSimInput* in = [] {
    auto* d = new MaxSimInput;
    const size_t docs = 10000, toks = 64, dim = 128, nq = 32;
    Rng rng(7);
    for (size_t i = 0; i <= docs; ++i) d->offsets.push_back(static_cast<int64_t>(i * toks));
    d->tokens.resize(docs * toks * dim);
    for (size_t t = 0; t < docs * toks; ++t) {
      double n2 = 0;
      for (size_t l = 0; l < dim; ++l) {
        const float v = static_cast<float>(rng.Normal());
        d->tokens[t * dim + l] = v;
        n2 += double{v} * v;
      }
      for (size_t l = 0; l < dim; ++l) d->tokens[t * dim + l] /= static_cast<float>(std::sqrt(n2));
    }
    d->codes.resize(d->tokens.size());
    d->scales.resize(docs * toks);
    QuantizeRows(d->tokens.data(), docs * toks, dim, d->codes.data(), d->scales.data());
    // Query: noisy copy of one document's tokens, so the top-10 is meaningful.
    d->query.resize(nq * dim);
    for (size_t i = 0; i < nq * dim; ++i) d->query[i] = d->tokens[(1234 * toks * dim) + i] + 0.05f * static_cast<float>(rng.Normal());
    // Exact fp32 top-10 via OpenBLAS.
    std::vector<float> s(nq * docs * toks);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, docs * toks, dim, 1.0f, d->query.data(), dim,
                d->tokens.data(), dim, 0.0f, s.data(), docs * toks);
    std::vector<float> score(docs, 0.0f);
    for (size_t doc = 0; doc < docs; ++doc)
      for (size_t i = 0; i < nq; ++i) {
        float b = -1e30f;
        for (size_t j = doc * toks; j < (doc + 1) * toks; ++j) b = std::max(b, s[i * docs * toks + j]);
        score[doc] += b;
      }
    d->exact_top10 = TopKIndices(score, 10);
    return d;
  }();
  return *in;
}

void BM_Int8MaxSim(benchmark::State& state) {
  const auto& in = MaxSimData();
  MaxSimOptions opt;
  opt.k = 10;
  opt.naive = state.range(0) == 0;
  opt.threads = static_cast<int>(state.range(1));
  TokenCorpusView view{in.offsets.data(), in.offsets.size() - 1, in.codes.data(), in.scales.data(), 128};
  MaxSimResult r;
  for (auto _ : state) {
    r = Int8MaxSim({32, in.query.data(), true, nullptr, nullptr}, view, opt);
    benchmark::DoNotOptimize(r.doc_ids.data());
  }
  double hits = 0;
  for (int64_t a : r.doc_ids)
    for (int64_t b : in.exact_top10) hits += a == b;
  state.counters["recall@10"] = hits / 10.0;
  state.counters["QPS"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
  state.counters["corpus_MB"] = (in.codes.size() + 4.0 * in.scales.size()) / 1e6;
  state.SetLabel(opt.naive ? "naive loops" : "int8 SIMD");
}
BENCHMARK(BM_Int8MaxSim)->Args({0, 1})->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Fp32MaxSimOpenBlas(benchmark::State& state) {
  const auto& in = MaxSimData();
  openblas_set_num_threads(static_cast<int>(state.range(0)));
  const size_t docs = 10000, toks = 64, dim = 128, nq = 32;
  std::vector<float> s(nq * docs * toks), score(docs);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, docs * toks, dim, 1.0f, in.query.data(), dim,
                in.tokens.data(), dim, 0.0f, s.data(), docs * toks);
    for (size_t doc = 0; doc < docs; ++doc) {
      float tot = 0;
      for (size_t i = 0; i < nq; ++i) {
        float b = -1e30f;
        for (size_t j = doc * toks; j < (doc + 1) * toks; ++j) b = std::max(b, s[i * docs * toks + j]);
        tot += b;
      }
      score[doc] = tot;
    }
    auto top = TopKIndices(score, 10);
    benchmark::DoNotOptimize(top.data());
  }
  state.counters["QPS"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
  state.counters["corpus_MB"] = in.tokens.size() * 4.0 / 1e6;
}
BENCHMARK(BM_Fp32MaxSimOpenBlas)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace chamferdb::int8
