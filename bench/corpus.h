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

// Exact Chamfer top-k ids per query (brute force with the fast packed kernel, OpenMP over
// documents), cached in `cache_path` when non-empty (keyed by the spec).
std::vector<std::vector<uint32_t>> ExactTopK(const Corpus& corpus, size_t k, const std::string& cache_path,
                                             double* seconds_per_query);

// Brute-force top-k with int8 tokens on both sides (kernels/chamfer/chamfer_int8.h): the
// quality ceiling of INT8 token storage, independent of the FDE candidate search. With
// quantize_query false the query stays float (documents int8, scored in fp32 on their
// dequantized values): what an asymmetric kernel would give.
std::vector<std::vector<uint32_t>> ExactTopKInt8(const Corpus& corpus, size_t k, bool quantize_query,
                                                 double* seconds_per_query);

}  // namespace chamferdb::bench
