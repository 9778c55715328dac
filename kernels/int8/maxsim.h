// Int8 late-interaction (ColBERT-style) scoring with a certified error bound.
//
//   MaxSim(Q, D) = Σ_i max_j ⟨q_i, d_j⟩
//
// Data layout: the query is n_q × dim (float32 rows, or int8 codes + absmax scales from
// quantize.h); the corpus is CSR-like: doc_offsets[N + 1] (non-decreasing, starting at 0,
// ending at T), token codes T × dim int8 and token scales T (absmax of each token).
// Scores: symmetric (both quantized):  s_ij = sq_i · sd_j · ⟨cq_i, cd_j⟩_int32 / 16129,
//         asymmetric (float query):    s_ij = sd_j / 127 · Σ_l q_il · cd_jl,
// all in float64; the max over j is taken after applying sd_j. Empty documents score 0
// with bound 0 (documented convention: a document without tokens contributes nothing).
//
// Bound: with ε_ij = ( sd_j·‖q̃_i‖₁ + sq_i·‖d̂_j‖₁ )/254 + dim·sq_i·sd_j/254²
//   (q̃ = q for a float query, the dequantized q̂ for a code-only query; sq_i = 0 in the
//   asymmetric case), |MaxSim^ − MaxSim| ≤ Σ_i max_j ε_ij against the exact scores of the
//   original float vectors whose codes were given. The returned bound also covers the final
//   rounding of the score to float32. Ranking certificate: if s1 − s2 > b1 + b2, document
//   1 outranks document 2 under exact scoring.
// Top-k: by score descending, ties broken by the smaller document index.
// Thread-safety: pure function. OpenMP over fixed document chunks (deterministic).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/int8/gemm.h"

namespace chamferdb::int8 {

struct TokenCorpusView {
  const int64_t* doc_offsets = nullptr;  // num_docs + 1
  size_t num_docs = 0;
  const int8_t* codes = nullptr;  // T × dim
  const float* scales = nullptr;  // T
  size_t dim = 0;
};

struct MaxSimQuery {
  size_t n = 0;
  // Exactly one of the two forms: float rows (asymmetric scoring unless quantize == true),
  const float* rows = nullptr;  // n × dim
  bool quantize = true;         // quantize float rows first (symmetric int8 scoring)
  // or pre-quantized codes + scales.
  const int8_t* codes = nullptr;  // n × dim
  const float* scales = nullptr;  // n
};

struct MaxSimOptions {
  size_t k = 10;
  bool naive = false;  // plain loops instead of the int8 GEMM (the "reference" method)
  GemmPath path = GemmPath::kAuto;
  int threads = 1;
};

struct MaxSimResult {
  std::vector<int64_t> doc_ids;  // top-k document indices
  std::vector<float> scores;     // their int8 MaxSim scores
  std::vector<float> bounds;     // their error bounds
  std::vector<float> all_scores;  // every document, index order
  std::vector<float> all_bounds;
};

// REQUIRES: a well-formed corpus (see layout), dim ≤ kMaxInt8GemmK, finite inputs.
MaxSimResult Int8MaxSim(const MaxSimQuery& query, const TokenCorpusView& corpus,
                        const MaxSimOptions& options);

// Indices of the k largest values (descending, ties to the smaller index).
std::vector<int64_t> TopKIndices(const std::vector<float>& values, size_t k);

}  // namespace chamferdb::int8
