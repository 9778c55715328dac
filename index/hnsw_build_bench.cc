// hnsw_build_bench: the HNSW int8 graph construction alone (no gRPC, storage or encoding in
// the timed part), on the FDEs the server would index: bench/corpus.h documents (32 tokens
// × 128 dims, unit rows) through MuveraFdeEncoder with d_final 2048, added in batches of 256
// as the server's upserts do. Builds the graph with Int8Hnsw (index/hnsw_int8.h) and, with
// --faiss, with FAISS's own IndexHNSW::add over the same storage (the previous builder), and
// reports for each: CPU µs per inserted vector (process CPU time during the adds), wall
// time, and recall@k of a beam search (float query over every coordinate, as the server
// searches) against the exact FDE inner-product top k, on the corpus queries.
//
//   hnsw_build_bench [--docs N] [--queries Q] [--threads T] [--efc E] [--k K] [--faiss] [--graph-dims G]
//
// Not a test: timings depend on the machine; run under `flock /work/.bench.lock`.
#include <faiss/IndexHNSW.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "bench/corpus.h"
#include "common/parallel_for.h"
#include "encoders/muvera_fde.h"
#include "index/hnsw_int8.h"
#include "index/index.h"

namespace chamferdb {
namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Beam search of level 0 after greedy descent (the server's HnswBeamSearch, without filters).
std::vector<int64_t> Search(const faiss::IndexHNSW& index, const float* q, size_t k, size_t ef) {
  const faiss::HNSW& g = index.hnsw;
  const auto* s = static_cast<const Int8IpStorage*>(index.storage);
  std::unique_ptr<faiss::DistanceComputer> dis(s->NewInnerProductComputer());
  dis->set_query(q);
  int64_t cur = g.entry_point;
  float cur_s = (*dis)(cur);
  for (int level = g.max_level; level >= 1; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      size_t b, e;
      g.neighbor_range(cur, level, &b, &e);
      for (size_t i = b; i < e && g.neighbors[i] >= 0; ++i) {
        const float sv = (*dis)(g.neighbors[i]);
        if (sv > cur_s) {
          cur_s = sv;
          cur = g.neighbors[i];
          moved = true;
        }
      }
    }
  }
  using Item = std::pair<float, int64_t>;
  std::priority_queue<Item> frontier;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> beam;
  std::vector<uint8_t> seen(static_cast<size_t>(index.ntotal), 0);
  seen[cur] = 1;
  frontier.push({cur_s, cur});
  beam.push({cur_s, cur});
  while (!frontier.empty()) {
    const auto [sc, c] = frontier.top();
    if (beam.size() >= ef && sc < beam.top().first) break;
    frontier.pop();
    size_t b, e;
    g.neighbor_range(c, 0, &b, &e);
    for (size_t i = b; i < e && g.neighbors[i] >= 0; ++i) {
      const int64_t v = g.neighbors[i];
      if (seen[v]) continue;
      seen[v] = 1;
      const float sv = (*dis)(v);
      if (beam.size() < ef || sv > beam.top().first) {
        frontier.push({sv, v});
        beam.push({sv, v});
        if (beam.size() > ef) beam.pop();
      }
    }
  }
  std::vector<Item> all;
  while (!beam.empty()) {
    all.push_back(beam.top());
    beam.pop();
  }
  std::sort(all.begin(), all.end(), [](const Item& a, const Item& b) { return a.first > b.first; });
  std::vector<int64_t> out;
  for (size_t i = 0; i < std::min(k, all.size()); ++i) out.push_back(all[i].second);
  return out;
}

int Main(int argc, char** argv) {
  size_t docs = 100000, nq = 200, k = 100;
  int threads = 0, efc = 100;
  size_t graph_dims = 0;  // 0: HnswGraphDims(d), as the server
  bool faiss_too = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 10) : 0ull; };
    if (a == "--docs") docs = next();
    else if (a == "--queries") nq = next();
    else if (a == "--threads") threads = static_cast<int>(next());
    else if (a == "--efc") efc = static_cast<int>(next());
    else if (a == "--k") k = next();
    else if (a == "--faiss") faiss_too = true;
    else if (a == "--graph-dims") graph_dims = next();
    else {
      std::fprintf(stderr, "usage: hnsw_build_bench [--docs N] [--queries Q] [--threads T] [--efc E] [--k K] [--faiss] [--graph-dims G]\n");
      return 2;
    }
  }
  bench::CorpusSpec spec;
  spec.documents = docs;
  spec.queries = nq;
  spec.min_tokens = spec.max_tokens = 32;
  const bench::Corpus corpus = bench::MakeCorpus(spec);
  FdeConfig fc;
  fc.dim = static_cast<uint32_t>(corpus.dim);
  fc.d_final = 2048;
  auto enc = MuveraFdeEncoder::Create(fc);
  if (!enc.ok()) return 1;
  const size_t d = (*enc)->output_dim();
  std::vector<float> x(docs * d), q(nq * d);
  ParallelFor(static_cast<int64_t>(docs), BulkThreads(), [&](int64_t i) {
    const auto& t = corpus.docs[i];
    (void)(*enc)->EncodeDocument({t.data(), t.size() / corpus.dim, corpus.dim}, x.data() + i * d);
  });
  for (size_t i = 0; i < nq; ++i) {
    const auto& t = corpus.queries[i];
    (void)(*enc)->EncodeQuery({t.data(), t.size() / corpus.dim, corpus.dim}, q.data() + i * d);
  }
  // Exact top k by the float FDE inner product.
  std::vector<std::vector<int64_t>> truth(nq);
  ParallelFor(static_cast<int64_t>(nq), BulkThreads(), [&](int64_t j) {
    std::vector<std::pair<float, int64_t>> s(docs);
    for (size_t i = 0; i < docs; ++i) {
      float dot = 0;
      for (size_t c = 0; c < d; ++c) dot += q[j * d + c] * x[i * d + c];
      s[i] = {-dot, static_cast<int64_t>(i)};
    }
    std::partial_sort(s.begin(), s.begin() + k, s.end());
    for (size_t i = 0; i < k; ++i) truth[j].push_back(s[i].second);
  });
  for (int variant = 0; variant < (faiss_too ? 2 : 1); ++variant) {
    std::unique_ptr<faiss::IndexHNSW> index;
    auto* storage = new Int8IpStorage(static_cast<faiss::Index::idx_t>(d), graph_dims ? graph_dims : HnswGraphDims(d));
    if (variant == 0) {
      auto own = std::make_unique<Int8Hnsw>(storage, 32);
      if (threads > 0) own->set_build_threads(threads);
      index = std::move(own);
    } else {
      index = std::make_unique<faiss::IndexHNSW>(storage, 32);
      index->own_fields = true;
      if (threads > 0) omp_set_num_threads(threads);
    }
    index->hnsw.efConstruction = efc;
    const double cpu0 = CpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t b = 0; b < docs; b += 256) {
      const size_t m = std::min<size_t>(256, docs - b);
      index->add(static_cast<faiss::Index::idx_t>(m), x.data() + b * d);
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = CpuSeconds() - cpu0;
    std::printf("%s: %zu vectors of %zu dims (graph on %zu), efC %d: %.1f us CPU per insert, wall %.1f s (%.0f/s)\n",
                variant == 0 ? "Int8Hnsw" : "faiss add", docs, d, storage->graph_dims(), efc, 1e6 * cpu / docs, wall,
                docs / wall);
    size_t links = 0;
    for (size_t i = 0; i < docs; ++i) {
      size_t b, e;
      index->hnsw.neighbor_range(static_cast<int64_t>(i), 0, &b, &e);
      for (size_t j = b; j < e && index->hnsw.neighbors[j] >= 0; ++j) ++links;
    }
    std::printf("  level-0 links per vector %.1f\n", static_cast<double>(links) / docs);
    for (size_t ef : {100, 250, 500, 1000}) {
      if (ef < k) continue;
      size_t hits = 0;
      const auto s0 = std::chrono::steady_clock::now();
      for (size_t j = 0; j < nq; ++j) {
        const auto got = Search(*index, q.data() + j * d, k, ef);
        for (int64_t id : got) hits += std::count(truth[j].begin(), truth[j].end(), id);
      }
      const double ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count() / nq;
      std::printf("  ef %4zu: recall@%zu %.4f, %.2f ms per query\n", ef, k, static_cast<double>(hits) / (nq * k), ms);
    }
  }
  return 0;
}

}  // namespace
}  // namespace chamferdb

int main(int argc, char** argv) { return chamferdb::Main(argc, argv); }
