// Deterministic ColBERT-like corpora for benchmarks.
//
// Distribution (documented in README "Performance"):
// - n_topics topic centres, unit vectors in R^dim (Gaussian, normalized).
// - Each document mixes 1..4 topics drawn from a Zipf(1.1) popularity over topics, has
//   16..128 tokens (log-uniform, so short documents are common and long ones exist), and 4
//   document-specific "aspect" directions; token = unit(topic + 0.7·aspect + 0.25·noise).
// - Each query targets one document: half of its 32 tokens are noisy copies of the target's
//   tokens (unit(token + 0.35·noise)), half are noisy topic vectors of the target's topics
//   (unit(topic + 0.6·noise)), so the exact Chamfer top-10 is neither the target alone nor
//   random.
// Randomness: common/rng.h, so the same seed gives the same corpus on every machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/rng.h"

namespace chamferdb::bench {

struct CorpusSpec {
  size_t documents = 10000;
  size_t queries = 200;
  size_t dim = 128;
  size_t topics = 1000;
  size_t min_tokens = 16, max_tokens = 128;
  size_t query_tokens = 32;
  uint64_t seed = 42;
};

struct Corpus {
  std::vector<std::vector<float>> docs;  // each n_i × dim, row-major, unit rows
  std::vector<std::vector<float>> queries;  // each query_tokens × dim
  size_t dim = 0;
};

Corpus MakeCorpus(const CorpusSpec& spec);

// The corpus of MakeCorpus(spec), for sizes too large to hold (1M × 32 × 128 floats =
// 16 GB): documents are regenerated on demand, bit for bit equal to MakeCorpus(spec).docs[d].
// Construction walks the generator's RNG sequence once, in MakeCorpus's order, without
// computing tokens (a normal is skipped as its two raw words, which is what Rng::Normal's
// Box–Muller pairs consume; 23–90 s for 1M × 32 × 128 at load 7–12), keeping per document the RNG state
// at its start (48 B) and its token count; then generates the queries (they follow the
// documents in the RNG sequence and need their target's tokens), which it holds.
// Memory: ~52 B per document plus the queries. Thread-safety: after construction every
// method is const and safe to call from any number of threads.
class CorpusStream {
 public:
  explicit CorpusStream(const CorpusSpec& spec);

  size_t size() const { return starts_.size(); }
  size_t dim() const { return spec_.dim; }
  const CorpusSpec& spec() const { return spec_; }
  // Token count of document d < size().
  size_t tokens(size_t d) const { return tokens_[d]; }
  // Each query_tokens × dim, row-major; equal to MakeCorpus(spec).queries.
  const std::vector<std::vector<float>>& queries() const { return queries_; }
  // Document d < size() into *out (resized to tokens(d) × dim, row-major, unit rows).
  void Document(size_t d, std::vector<float>* out) const;
  // Documents [begin, end) into *out (resized to end − begin), generated in parallel
  // (OpenMP over documents). REQUIRES: begin <= end <= size().
  void Chunk(size_t begin, size_t end, std::vector<std::vector<float>>* out) const;

 private:
  CorpusSpec spec_;
  std::vector<float> topics_;  // topics × dim
  std::vector<double> cdf_;    // Zipf(1.1) cumulative weights
  std::vector<Rng> starts_;    // RNG state at the start of each document
  std::vector<uint32_t> tokens_;
  std::vector<std::vector<float>> queries_;
};

// Exact Chamfer top-k ids per query (brute force with the fast packed kernel, OpenMP over
// documents), cached in `cache_path` when non-empty (keyed by the spec).
std::vector<std::vector<uint32_t>> ExactTopK(const Corpus& corpus, size_t k, const std::string& cache_path,
                                             double* seconds_per_query);

// ExactTopK over a CorpusStream: documents are generated and packed `chunk` at a time (never
// more than one chunk of float tokens in memory; OpenMP over documents to generate, over
// queries to score). Same result, tie order (score, then smaller id) and cache file (format
// and key) as ExactTopK on MakeCorpus(stream.spec()), so either reads the other's cache.
// *seconds_per_query: CPU time to score one query against every document (generation
// excluded; CPU time, so other jobs on the machine do not inflate it); on a cache hit, the
// thread CPU time of one query over the first min(size, chunk) documents, scaled to size().
std::vector<std::vector<uint32_t>> ExactTopKStreamed(const CorpusStream& stream, size_t k,
                                                     const std::string& cache_path, double* seconds_per_query,
                                                     size_t chunk = 8192);

// Brute-force top-k with int8 tokens on both sides (kernels/chamfer/chamfer_int8.h): the
// quality ceiling of INT8 token storage, independent of the FDE candidate search. With
// quantize_query false the query stays float (documents int8, scored in fp32 on their
// dequantized values): what an asymmetric kernel would give.
std::vector<std::vector<uint32_t>> ExactTopKInt8(const Corpus& corpus, size_t k, bool quantize_query,
                                                 double* seconds_per_query);

}  // namespace chamferdb::bench
