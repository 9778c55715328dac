// fde_study: offline candidate quality of MUVERA FDE variants on the benchmark corpus
// (bench/corpus.h), against exact Chamfer ground truth (brute force, cached).
//
// For each variant it reports the "candidate recall" at N: the fraction of the exact Chamfer
// top-10 found in the FDE top-N (by exact inner product of the query and document FDEs over
// every document), for N = 10 .. 8000, and the distribution of the rank of each true top-10
// document in the FDE order. With an exact Chamfer rerank of the FDE top-N, candidate recall
// at N *is* the end-to-end recall@10 (int8 rerank: times its own ceiling, ~0.986 here).
//
// Variants are named by '_'-separated parts: rR kK pP (r_reps, k_sim, d_proj), fF (final
// projection to F dims), nofill (no empty-bucket fill for documents), carveT (query ball
// carving with tau = T/100 before encoding), and one compressed form of the document FDE:
// i8 (int8 per vector, absmax scale), f16, pqM (FAISS ProductQuantizer, M sub-quantizers
// of 8 bits, trained on the first --pq-train documents; asymmetric: float query against
// decoded codes). Example: r20_k5_p16_f2048_i8.
//
// Memory: document FDEs are never stored; each chunk of --chunk documents is encoded (and
// compressed/decompressed) and scored against every query FDE with one SGEMM, so the peak
// is the corpus (docs × tokens × dim × 4 bytes) plus one chunk of FDEs.
//
//   fde_study --docs 100000 --tokens 32 --queries 100 --cache /tmp/fde_gt_100k_q100.bin
//     --variants r20_k5_p16,r20_k5_p16_f2048 --out bench/results/fde_study_100k.json
#include <cblas.h>
#include <faiss/impl/ProductQuantizer.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/corpus.h"
#include "common/rng.h"
#include "common/half.h"
#include "encoders/ball_carving.h"
#include "encoders/muvera_fde.h"
#include "index/refine_dot.h"
#include "kernels/chamfer/chamfer.h"
#include "kernels/chamfer/chamfer_int8.h"
#include "kernels/chamfer/dot.h"
#include "kernels/int8/quantize.h"

namespace chamferdb::bench {
namespace {

struct Variant {
  std::string name;
  FdeConfig fde;
  bool fill = true;
  float carve_tau = 0;
  enum class Comp { kNone, kInt8, kF16, kPq } comp = Comp::kNone;
  uint32_t pq_m = 0;
};

bool ParseVariant(const std::string& name, size_t dim, Variant* v) {
  v->name = name;
  v->fde.dim = static_cast<uint32_t>(dim);
  for (size_t pos = 0; pos <= name.size();) {
    const size_t end = std::min(name.find('_', pos), name.size());
    const std::string part = name.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty()) continue;
    auto num = [&](size_t skip) { return static_cast<uint32_t>(std::stoul(part.substr(skip))); };
    if (part == "nofill") v->fill = false;
    else if (part == "i8") v->comp = Variant::Comp::kInt8;
    else if (part == "f16") v->comp = Variant::Comp::kF16;
    else if (part.rfind("pq", 0) == 0) v->comp = Variant::Comp::kPq, v->pq_m = num(2);
    else if (part.rfind("carve", 0) == 0) v->carve_tau = num(5) / 100.0f;
    else if (part[0] == 'r') v->fde.r_reps = num(1);
    else if (part[0] == 'k') v->fde.k_sim = num(1);
    else if (part[0] == 'p') v->fde.d_proj = num(1);
    else if (part[0] == 'f') v->fde.d_final = num(1);
    else return false;
  }
  return v->fde.Validate().ok();
}

constexpr size_t kTop = 10;
const std::vector<size_t> kDepths = {10, 50, 100, 200, 500, 1000, 2000, 4000, 8000};

struct Result {
  std::vector<uint64_t> ranks;  // per (query, true top-10 doc): its rank in the FDE order
  double encode_s = 0, total_s = 0;
  size_t out_dim = 0;
};

// Encodes documents [begin, end) into fde (row-major, (end-begin) × D), then applies the
// variant's compression round trip in place.
void EncodeChunk(const Corpus& c, const MuveraFdeEncoder& enc, const Variant& v, const faiss::ProductQuantizer* pq,
                 size_t begin, size_t end, float* fde) {
  const size_t D = enc.output_dim();
#pragma omp parallel for schedule(dynamic, 16)
  for (size_t d = begin; d < end; ++d) {
    float* out = fde + (d - begin) * D;
    const FloatMatrixView toks{c.docs[d].data(), c.docs[d].size() / c.dim, c.dim};
    const absl::Status s = v.fill ? enc.EncodeDocument(toks, out)
                                  : enc.Encode(toks, FdeEncodeOptions{.average = true, .fill_empty = false}, out);
    if (!s.ok()) std::abort();
    if (v.comp == Variant::Comp::kInt8) {
      std::vector<int8_t> codes(D);
      const float scale = int8::QuantizeRow(out, D, codes.data());
      int8::DequantizeRows(codes.data(), &scale, 1, D, out);
    } else if (v.comp == Variant::Comp::kF16) {
      for (size_t j = 0; j < D; ++j) out[j] = HalfToFloat(FloatToHalf(out[j]));
    }
  }
  if (v.comp == Variant::Comp::kPq) {
    const size_t n = end - begin;
    std::vector<uint8_t> codes(n * pq->code_size);
    pq->compute_codes(fde, codes.data(), n);
    pq->decode(codes.data(), fde, n);
  }
}

Result Study(const Corpus& c, const std::vector<std::vector<uint32_t>>& truth, const Variant& v, size_t chunk,
             size_t pq_train) {
  const auto t0 = std::chrono::steady_clock::now();
  auto enc_or = MuveraFdeEncoder::Create(v.fde);
  if (!enc_or.ok()) std::abort();
  const auto& enc = **enc_or;
  const size_t D = enc.output_dim(), nq = c.queries.size(), nd = c.docs.size();
  Result r;
  r.out_dim = D;
  // Query FDEs (optionally ball-carved first).
  std::vector<float> qf(nq * D);
  for (size_t q = 0; q < nq; ++q) {
    const size_t n = c.queries[q].size() / c.dim;
    if (v.carve_tau > 0) {
      const CarvedQuery cq = BallCarve(c.queries[q].data(), n, c.dim, v.carve_tau);
      if (!enc.EncodeQuery({cq.tokens.data(), cq.clusters, c.dim}, &qf[q * D]).ok()) std::abort();
    } else if (!enc.EncodeQuery({c.queries[q].data(), n, c.dim}, &qf[q * D]).ok()) {
      std::abort();
    }
  }
  std::unique_ptr<faiss::ProductQuantizer> pq;
  if (v.comp == Variant::Comp::kPq) {
    const size_t nt = std::min(pq_train, nd);
    Variant plain = v;
    plain.comp = Variant::Comp::kNone;
    std::vector<float> train(nt * D);
    EncodeChunk(c, enc, plain, nullptr, 0, nt, train.data());
    pq = std::make_unique<faiss::ProductQuantizer>(D, v.pq_m, 8);
    pq->cp.seed = 1234;
    pq->train(static_cast<int>(nt), train.data());
  }
  std::vector<float> scores(nq * nd);  // query-major
  std::vector<float> fde(std::min(chunk, nd) * D), block;
  double enc_s = 0;
  for (size_t b = 0; b < nd; b += chunk) {
    const size_t e = std::min(nd, b + chunk), n = e - b;
    const auto te = std::chrono::steady_clock::now();
    EncodeChunk(c, enc, v, pq.get(), b, e, fde.data());
    enc_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - te).count();
    block.resize(nq * n);
    // block (nq × n) = qf (nq × D) · fde(n × D)^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(n),
                static_cast<int>(D), 1.0f, qf.data(), static_cast<int>(D), fde.data(), static_cast<int>(D), 0.0f,
                block.data(), static_cast<int>(n));
    for (size_t q = 0; q < nq; ++q) std::copy_n(&block[q * n], n, &scores[q * nd + b]);
  }
  // Rank of each true top-10 document: documents scoring higher, ties broken by lower id.
  for (size_t q = 0; q < nq; ++q) {
    const float* s = &scores[q * nd];
    for (size_t i = 0; i < std::min(kTop, truth[q].size()); ++i) {
      const uint32_t t = truth[q][i];
      const float st = s[t];
      uint64_t rank = 0;
      for (size_t d = 0; d < nd; ++d) rank += s[d] > st || (s[d] == st && d < t);
      r.ranks.push_back(rank);
    }
  }
  r.encode_s = enc_s;
  r.total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Micro-cost of the refine stage: one query against `probes` random rows of a rows × dim
// table (int8 + scale, and float32), as the refine of a search touches them (random rows,
// mostly not in cache). One thread, CPU time per row, median of 5 runs.
void TimeRefine(size_t rows, size_t dim, size_t probes) {
  Rng rng(5);
  std::vector<int8_t> codes(rows * dim);
  std::vector<float> f32(rows * dim), scales(rows, 0.5f), q(dim);
  for (size_t i = 0; i < codes.size(); ++i) {
    codes[i] = static_cast<int8_t>(static_cast<int>(rng.UniformInt(255)) - 127);
    f32[i] = codes[i] / 127.0f;
  }
  for (float& v : q) v = static_cast<float>(rng.Normal());
  std::vector<size_t> pick(probes);
  for (size_t& p : pick) p = rng.UniformInt(rows);
  // The Chamfer rerank on the same footing: 32-token int8 documents (packed as the server
  // stores them), a 32-token query.
  const size_t ntok = 32, tdim = 128;
  const size_t doc_bytes = PackedI8Bytes(ntok, tdim);
  std::vector<uint8_t> packed(rows * doc_bytes);
  {
    std::vector<float> toks(ntok * tdim), tscale(ntok);
    std::vector<int8_t> tcodes(ntok * tdim);
    for (size_t d = 0; d < rows; ++d) {
      for (float& v : toks) v = static_cast<float>(rng.Normal());
      int8::QuantizeRows(toks.data(), ntok, tdim, tcodes.data(), tscale.data());
      PackTokensI8(tcodes.data(), tscale.data(), ntok, tdim, &packed[d * doc_bytes]);
    }
  }
  std::vector<float> qt(ntok * tdim);
  for (float& v : qt) v = static_cast<float>(rng.Normal());
  const QueryI8 qi = QuantizeQueryI8(qt.data(), ntok, tdim);
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<double> runs;
    float sink = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const double t0 = ThreadCpuSeconds();
      for (size_t p : pick) {
        if (kind == 0) {
          sink += DotI8Row(q.data(), &codes[p * dim], scales[p], dim);
        } else if (kind == 2) {
          sink += ChamferPackedI8(qi, &packed[p * doc_bytes], ntok);
        } else {
          float out;
          DotMany(q.data(), &f32[p * dim], 1, dim, &out);
          sink += out;
        }
      }
      runs.push_back((ThreadCpuSeconds() - t0) / probes * 1e6);
    }
    std::sort(runs.begin(), runs.end());
    const char* what[] = {"refine int8 FDE row", "refine float32 FDE row", "Chamfer int8 32x32x128 document"};
    std::printf("%s: %zu random of %zu (FDE dim %zu): %.3f us each (CPU, median of 5; sink %g)\n", what[kind], probes,
                rows, dim, runs[2], double(sink));
  }
}

double Quantile(std::vector<uint64_t> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : double(v[std::min(v.size() - 1, static_cast<size_t>(std::ceil(p * v.size())) - 1)]);
}

int Main(int argc, char** argv) {
  CorpusSpec spec;
  spec.queries = 100;
  std::string cache, out, variants = "r20_k5_p16,r20_k5_p16_f2048";
  size_t chunk = 2048, pq_train = 10000;
  bool score_gaps = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--docs") spec.documents = std::stoul(next());
    else if (a == "--queries") spec.queries = std::stoul(next());
    else if (a == "--tokens") spec.min_tokens = spec.max_tokens = std::stoul(next());
    else if (a == "--dim") spec.dim = std::stoul(next());
    else if (a == "--seed") spec.seed = std::stoull(next());
    else if (a == "--cache") cache = next();
    else if (a == "--out") out = next();
    else if (a == "--variants") variants = next();
    else if (a == "--chunk") chunk = std::stoul(next());
    else if (a == "--pq-train") pq_train = std::stoul(next());
    else if (a == "--score-gaps") score_gaps = true;
    else if (a == "--time-refine") {
      TimeRefine(100000, 2048, 8000);
      return 0;
    }
    else {
      std::fprintf(stderr,
                   "usage: fde_study [--docs N] [--queries N] [--tokens N] [--dim D] [--seed S] [--cache FILE] "
                   "[--variants V,..] [--out JSON] [--chunk N] [--pq-train N]\n");
      return 2;
    }
  }
  std::vector<Variant> vs;
  for (size_t pos = 0; pos < variants.size();) {
    const size_t comma = std::min(variants.find(',', pos), variants.size());
    Variant v;
    if (!ParseVariant(variants.substr(pos, comma - pos), spec.dim, &v)) {
      std::fprintf(stderr, "bad variant '%s'\n", variants.substr(pos, comma - pos).c_str());
      return 2;
    }
    vs.push_back(v);
    pos = comma + 1;
  }
  std::fprintf(stderr, "generating %zu documents (%zu..%zu tokens), %zu queries, dim %zu\n", spec.documents,
               spec.min_tokens, spec.max_tokens, spec.queries, spec.dim);
  const Corpus corpus = MakeCorpus(spec);
  double exact_s = 0;
  const auto truth = ExactTopK(corpus, std::min<size_t>(100, spec.documents), cache, &exact_s);
  std::fprintf(stderr, "ground truth ready (%.1f ms per query one core)\n", exact_s * 1e3);
  if (score_gaps) {
    // How close the exact Chamfer scores are around rank 10: mean score at true ranks 1, 2,
    // 5, 10, 11, 20, 50, 100, relative to rank 10 (double-precision reference).
    const size_t ranks[] = {1, 2, 5, 10, 11, 20, 50, 100};
    std::vector<double> mean(std::size(ranks), 0);
    double abs10 = 0;
    for (size_t q = 0; q < corpus.queries.size(); ++q) {
      const size_t nqt = corpus.queries[q].size() / corpus.dim;
      auto score = [&](size_t r) {
        const auto& d = corpus.docs[truth[q][r - 1]];
        return ChamferReference(corpus.queries[q].data(), nqt, d.data(), d.size() / corpus.dim, corpus.dim);
      };
      const double s10 = score(10);
      abs10 += s10 / corpus.queries.size();
      for (size_t i = 0; i < std::size(ranks); ++i) mean[i] += (score(ranks[i]) - s10) / corpus.queries.size();
    }
    std::printf("mean exact Chamfer score at rank 10: %.4f; minus the rank-10 score at rank:\n", abs10);
    for (size_t i = 0; i < std::size(ranks); ++i) std::printf("  rank %3zu: %+.4f\n", ranks[i], mean[i]);
    // How well each FDE variant estimates Chamfer on exactly these documents: the ratio
    // <FDE_q, FDE_d> / (r_reps · Chamfer) over the true top-100, its mean and spread, for
    // the true top-10 and for true ranks 11..100 separately.
    for (const auto& v : vs) {
      auto enc = MuveraFdeEncoder::Create(v.fde);
      if (!enc.ok()) std::abort();
      const size_t D = (*enc)->output_dim();
      std::vector<float> qf(D), df(D);
      double sum[2] = {0, 0}, sq[2] = {0, 0}, cnt[2] = {0, 0};
      for (size_t q = 0; q < corpus.queries.size(); ++q) {
        const size_t nqt = corpus.queries[q].size() / corpus.dim;
        if (!(*enc)->EncodeQuery({corpus.queries[q].data(), nqt, corpus.dim}, qf.data()).ok()) std::abort();
        for (size_t r = 0; r < truth[q].size(); ++r) {
          const auto& d = corpus.docs[truth[q][r]];
          if (!(*enc)->EncodeDocument({d.data(), d.size() / corpus.dim, corpus.dim}, df.data()).ok()) std::abort();
          double ip = 0;
          for (size_t j = 0; j < D; ++j) ip += double(qf[j]) * df[j];
          const double ratio =
              ip / (v.fde.r_reps * ChamferReference(corpus.queries[q].data(), nqt, d.data(), d.size() / corpus.dim, corpus.dim));
          const int g = r < 10 ? 0 : 1;
          sum[g] += ratio, sq[g] += ratio * ratio, cnt[g] += 1;
        }
      }
      for (int g = 0; g < 2; ++g) {
        const double m = sum[g] / cnt[g];
        std::printf("%-24s FDE/(r*Chamfer) over true ranks %-7s mean %.4f sd %.4f (sd/mean %.3f)\n", v.name.c_str(),
                    g == 0 ? "1..10" : "11..100", m, std::sqrt(sq[g] / cnt[g] - m * m), std::sqrt(sq[g] / cnt[g] - m * m) / m);
      }
    }
    return 0;
  }
  nlohmann::json results;
  results["corpus"] = {{"documents", spec.documents}, {"queries", spec.queries}, {"dim", spec.dim},
                       {"min_tokens", spec.min_tokens}, {"max_tokens", spec.max_tokens}, {"seed", spec.seed}};
  std::printf("%-28s %6s", "variant", "dim");
  for (size_t n : kDepths) std::printf("  @%-4zu", n);
  std::printf(" | %6s %6s %6s %7s | %5s\n", "N@.90", "N@.95", "N@.99", "maxrank", "sec");
  for (const auto& v : vs) {
    const Result r = Study(corpus, truth, v, chunk, pq_train);
    nlohmann::json row = {{"variant", v.name}, {"dim", r.out_dim}, {"seconds", r.total_s}, {"encode_seconds", r.encode_s}};
    std::printf("%-28s %6zu", v.name.c_str(), r.out_dim);
    for (size_t n : kDepths) {
      double hit = 0;
      for (uint64_t rank : r.ranks) hit += rank < n;
      hit /= double(r.ranks.size());
      row["candidate_recall"][std::to_string(n)] = hit;
      std::printf(" %6.3f", hit);
    }
    // Rank distribution: the N needed to hold a fraction p of the true top-10 (quantiles of
    // rank + 1), overall and for the exact top-1 alone.
    std::vector<uint64_t> top1;
    for (size_t i = 0; i < r.ranks.size(); i += kTop) top1.push_back(r.ranks[i]);
    for (double p : {0.5, 0.8, 0.9, 0.95, 0.99, 1.0}) {
      row["rank_quantile"][std::to_string(p).substr(0, 4)] = Quantile(r.ranks, p) + 1;
      row["top1_rank_quantile"][std::to_string(p).substr(0, 4)] = Quantile(top1, p) + 1;
    }
    std::printf(" | %6.0f %6.0f %6.0f %7.0f | %5.1f\n", Quantile(r.ranks, 0.9) + 1, Quantile(r.ranks, 0.95) + 1,
                Quantile(r.ranks, 0.99) + 1, Quantile(r.ranks, 1.0) + 1, r.total_s);
    std::fflush(stdout);
    results["variants"].push_back(row);
    if (!out.empty()) std::ofstream(out) << results.dump(1) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace chamferdb::bench

int main(int argc, char** argv) { return chamferdb::bench::Main(argc, argv); }
