// bench_mbat: speed of the FWHT (reference vs fast), the operators and record encoding
// (Google Benchmark), and with --quality the spec's §6.2 quality table on the synthetic
// corpus. Not part of CTest. Examples:
//   bench_mbat --benchmark_filter='Encode'        records/s per core (items_per_second);
//     BM_EncodeRecord cycles 512 corpus records (repeated leaves come from the bound-leaf
//     memo), BM_EncodeRecordUniqueLeaves never repeats a leaf (memo-free worst case)
//   bench_mbat --quality                          quality table, D = 256/1024/4096
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "bench/mbat/mbat_corpus.h"
#include "common/rng.h"
#include "encoders/mbat_ops.h"

namespace chamferdb::mbat_bench {
namespace {

std::vector<float> RandomVec(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.Normal());
  return v;
}

void BM_FwhtReference(benchmark::State& state) {
  const size_t n = state.range(0);
  std::vector<float> x = RandomVec(n, 1);
  for (auto _ : state) {
    mbat::FwhtReference(x.data(), n);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FwhtFast(benchmark::State& state) {
  const size_t n = state.range(0);
  std::vector<float> x = RandomVec(n, 1), a = x, b = x;
  mbat::FwhtReference(a.data(), n);
  mbat::Fwht(b.data(), n);
  double err = 0;
  for (size_t i = 0; i < n; ++i) err = std::max(err, double(std::fabs(a[i] - b[i])));
  for (auto _ : state) {
    mbat::Fwht(x.data(), n);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["max_abs_err_vs_reference"] = err;
}

void BM_OpApply(benchmark::State& state) {
  const auto kind = static_cast<mbat::OpKind>(state.range(0));
  const size_t n = state.range(1);
  auto op = mbat::OrthoOp::Create(kind, n, 5);
  std::vector<float> x = RandomVec(n, 2), scratch(n);
  for (auto _ : state) {
    op->Apply(x.data(), x.data(), scratch.data());
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(fmt::format("kind={} D={}", int(kind), n));
}

std::vector<std::string> CorpusTexts(size_t n) {
  CorpusGenerator gen(42);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(gen.Record().dump());
  return out;
}

void BM_EncodeRecord(benchmark::State& state) {
  MbatConfig c;
  c.op_kind = static_cast<MbatOpKind>(state.range(0));
  c.dim = static_cast<uint32_t>(state.range(1));
  auto enc = *MbatJsonEncoder::Create(c);
  const std::vector<std::string> texts = CorpusTexts(512);
  std::vector<float> out(c.dim);
  for (const auto& t : texts) (void)enc->Encode(t, out.data());  // warm the operator cache
  size_t i = 0;
  for (auto _ : state) {
    absl::Status s = enc->Encode(texts[i++ % texts.size()], out.data());
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());  // items_per_second = records/s on one core
  state.SetLabel(fmt::format("{} D={}", MbatOpKindName(c.op_kind), c.dim));
}

// The memo-free worst case: every string and number leaf is unique across the stream (the
// corpus records with the record index appended to each string and added to each number),
// so no bound leaf is ever reused. One pass over 20,000 distinct records.
void BM_EncodeRecordUniqueLeaves(benchmark::State& state) {
  MbatConfig c;
  c.dim = static_cast<uint32_t>(state.range(0));
  auto enc = *MbatJsonEncoder::Create(c);
  constexpr size_t kRecords = 20000;
  CorpusGenerator gen(43);
  std::vector<std::string> texts;
  for (size_t i = 0; i < kRecords; ++i) {
    nlohmann::json r = gen.Record();
    std::vector<nlohmann::json*> stack = {&r};
    while (!stack.empty()) {
      nlohmann::json* v = stack.back();
      stack.pop_back();
      if (v->is_structured()) {
        for (auto& kid : *v) stack.push_back(&kid);
      } else if (v->is_string()) {
        *v = v->get<std::string>() + "#" + std::to_string(i);
      } else if (v->is_number()) {
        *v = v->get<double>() + 1e-3 * static_cast<double>(i + 1);
      }
    }
    texts.push_back(r.dump());
  }
  std::vector<float> out(c.dim);
  size_t i = 0;
  for (auto _ : state) {
    absl::Status s = enc->Encode(texts[i++ % texts.size()], out.data());
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(fmt::format("srht D={} unique leaves", c.dim));
}

void BM_EncodeBatch(benchmark::State& state) {
  MbatConfig c;
  auto enc = *MbatJsonEncoder::Create(c);
  const std::vector<std::string> texts = CorpusTexts(2048);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> out(views.size() * c.dim);
  const int threads = static_cast<int>(state.range(0));
  (void)enc->EncodeBatch(views, out.data(), nullptr, threads);
  for (auto _ : state) {
    absl::Status s = enc->EncodeBatch(views, out.data(), nullptr, threads);
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  state.SetItemsProcessed(state.iterations() * views.size());
  state.SetLabel(fmt::format("srht D=1024 threads={}", threads));
}

BENCHMARK(BM_FwhtReference)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(BM_FwhtFast)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(BM_OpApply)
    ->Args({0, 1024})->Args({2, 1024})->Args({1, 1024})->Args({0, 4096})->Args({2, 4096});
BENCHMARK(BM_EncodeRecord)
    ->Args({0, 1024})->Args({2, 1024})->Args({1, 256})->Args({0, 256})->Args({0, 4096});
BENCHMARK(BM_EncodeRecordUniqueLeaves)->Arg(1024)->Iterations(20000);
BENCHMARK(BM_EncodeBatch)->Arg(1)->Arg(2)->UseRealTime();

int RunQuality() {
  struct Run {
    MbatOpKind kind;
    uint32_t dim;
  };
  std::vector<std::pair<Run, QualityReport>> reports;
  for (const Run& run : {Run{MbatOpKind::kSrht, 256}, Run{MbatOpKind::kSrht, 1024},
                         Run{MbatOpKind::kSrht, 4096}, Run{MbatOpKind::kSignedPerm, 1024},
                         Run{MbatOpKind::kDenseHaar, 256}}) {
    MbatConfig c;
    c.seed = 0;
    c.op_kind = run.kind;
    c.dim = run.dim;
    auto enc = *MbatJsonEncoder::Create(c);
    reports.emplace_back(run, EvaluateQuality(*enc, QualityOptions{}));
    fmt::print(stderr, "{} D={} done\n", MbatOpKindName(run.kind), run.dim);
  }
  fmt::print("| op_kind | D | Pearson all pairs | truth std | Pearson family | resid std | "
             "Spearman(cos, J) related | Spearman all | Kendall family | Recall@10 | probe top-1 |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [run, r] : reports) {
    fmt::print("| {} | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} ({} pairs) | {:.3f} | {:.4f} | "
               "{:.3f} | {:.4f} ({}) |\n",
               MbatOpKindName(run.kind), run.dim, r.pearson_soft_ochiai, r.truth_std,
               r.pearson_family, r.residual_std, r.spearman_jaccard_related, r.related_pairs,
               r.spearman_jaccard_all, r.kendall_family, r.recall_at_10, r.probe_accuracy,
               r.probes);
  }
  fmt::print("\nCeiling (idealized random-code encoder, same D, same pairs) and the variant-pool "
             "pair set:\n\n");
  fmt::print("| op_kind | D | all pairs: Pearson | ideal Pearson | ideal resid std | s/√(s²+1/D) | "
             "pool: truth std | Pearson | ideal Pearson | Spearman(cos, J) |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [run, r] : reports) {
    const double e2 = 1.0 / run.dim;
    fmt::print("| {} | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} ({} pairs) | {:.4f} | {:.4f} | "
               "{:.3f} |\n",
               MbatOpKindName(run.kind), run.dim, r.pearson_soft_ochiai, r.ideal_pearson_all,
               r.ideal_residual_std, r.truth_std / std::sqrt(r.truth_std * r.truth_std + e2),
               r.truth_std_pool, r.pool_pairs, r.pearson_pool, r.ideal_pearson_pool,
               r.spearman_jaccard_pool);
  }
  return 0;
}

}  // namespace
}  // namespace chamferdb::mbat_bench

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quality") == 0) return chamferdb::mbat_bench::RunQuality();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
