// Sheaf diffusion on the user–item bipartite graph (Sheaf4Rec, Purificato et al., arXiv
// 2304.09097; official code antoniopurificato/Sheaf4Rec, models.py SheafConvLayer) and the
// ranking stage around it: masked top-K recommendation and ranking metrics.
//
// The model (1-dimensional stalks, scalar restriction maps), for n = U + I nodes (users
// 0..U−1, items U..U+I−1) and every undirected interaction e = {a, b} seen as two directed
// edges a→b and b→a:
//   F_{a→b}  = tanh(w · [x_a ; x_b])                         (w ∈ R^{2D}, no bias)
//   L_aa     = Σ_{b ~ a} F_{a→b}²,   L_ab = −F_{a→b} F_{b→a}  (symmetric, PSD)
//   L̃        = D̃ L D̃,  D̃ = diag((L_aa + 1)^{−1/2})
//   layer ℓ:   X ← X − α L̃ (X Wᵀ + b)
//   output:    mean of X⁰..X^L (LightGCN style) or X^L.
// Dirichlet energy: xᵀLx = Σ_{e={a,b}} (F_{a→b} x_a − F_{b→a} x_b)².
//
// Data layout: row-major doubles; X is n × D with X[a*D + j]; W is D × D with W[r*D + c]
// (a torch Linear weight: y = W x + b). Edges are (user, item) pairs with item ids 0..I−1.
//
// Thread-safety: pure functions. The fast paths use OpenMP over fixed 64-row chunks; every
// row or edge writes its own slot and sums run serially in a fixed order, so results are
// bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chamferdb::sheaf {

struct Interaction {
  int32_t user = 0;
  int32_t item = 0;  // 0..num_items−1
};

struct SheafLayer {
  std::vector<double> w;  // [2D] restriction-map learner
  std::vector<double> W;  // [D, D] row-major
  std::vector<double> b;  // [D]
};

enum class Aggregate { kMeanAllLayers = 0, kLast = 1 };

struct DiffusionParams {
  int32_t num_users = 0;
  int32_t num_items = 0;
  int32_t dim = 0;                  // D
  std::vector<Interaction> edges;   // E undirected pairs, no duplicates
  std::vector<SheafLayer> layers;   // L layers
  double alpha = 1.0;
  Aggregate aggregate = Aggregate::kMeanAllLayers;
  // When true every restriction map is 1 (w is ignored): with W = I, b = 0 this is
  // LightGCN-like propagation with the (D+I)^{−1/2}(D−A)(D+I)^{−1/2} filter.
  bool unit_maps = false;
};

struct DiffusionResult {
  std::vector<double> h;               // [n, D]
  std::vector<double> maps;            // [L, 2E]: F_{u→i} at 2k, F_{i→u} at 2k+1
  std::vector<double> laplacian_diag;  // [L, n]: L_aa (unnormalized) per layer
};

// INVALID_ARGUMENT naming the field on inconsistent sizes, out-of-range or duplicate
// edges, or non-finite numbers.
absl::Status Validate(const DiffusionParams& p, const std::vector<double>& x0);

// Dense reference: assembles L̃ as an n × n matrix by loops over edges and multiplies
// densely. O(L·(n²·D + n·D²)); meant for n ≤ a few thousand.
DiffusionResult DiffuseReference(const DiffusionParams& p, const std::vector<double>& x0);
// CSR SpMM with the diagonal handled separately; O(L·(E·D + n·D²)).
DiffusionResult DiffuseFast(const DiffusionParams& p, const std::vector<double>& x0);

// Dense unnormalized sheaf Laplacian L (n × n row-major) for given maps [2E]; for tests and
// the energy identity.
std::vector<double> DenseLaplacian(int32_t num_users, int32_t num_items,
                                   const std::vector<Interaction>& edges,
                                   const std::vector<double>& maps);

// ---- Ranking ----

// A user → sorted item list (CSR): items of user u are items[offsets[u] .. offsets[u+1]).
struct UserItems {
  std::vector<int64_t> offsets;  // [U + 1]
  std::vector<int32_t> items;
  static UserItems FromPairs(int32_t num_users, const std::vector<Interaction>& pairs);
};

enum class MaskMode {
  kNegInf = 0,  // seen items can never be recommended
  kZero = 1,    // official-code parity: score · (1 − seen), so seen items score 0
};

struct TopK {
  int32_t k = 0;
  std::vector<int32_t> items;  // [U, k]; −1 pads rows with fewer than k candidates
  std::vector<double> scores;  // [U, k]; −inf on padding
};

// scores(u, i) = ⟨h_users[u], h_items[i]⟩; seen items (train) masked; top-k by descending
// score, ties by smaller item id. h_users: [U, D], h_items: [I, D].
TopK RecommendReference(const std::vector<double>& h_users, const std::vector<double>& h_items,
                        int32_t num_users, int32_t num_items, int32_t dim,
                        const UserItems& train, int32_t k, MaskMode mask);
// Blocked GEMM over 64-user blocks + nth_element partial selection per user.
TopK RecommendFast(const std::vector<double>& h_users, const std::vector<double>& h_items,
                   int32_t num_users, int32_t num_items, int32_t dim, const UserItems& train,
                   int32_t k, MaskMode mask);

struct RankingAtK {
  int32_t k = 0;
  double precision = 0, recall = 0, f1 = 0, ndcg = 0, hit_rate = 0;
};
// Per-user precision |hit|/K, recall |hit|/|test_u|, NDCG (binary relevance,
// 1/log2(rank+2)), hit-rate (≥ 1 hit), averaged over users with ≥ 1 test item; F1 =
// 2PR/(P+R) of the averaged P and R (as Sheaf4Rec's evaluation.py). topk.k ≥ every K.
std::vector<RankingAtK> RankingMetrics(const TopK& topk, const UserItems& test,
                                       const std::vector<int32_t>& ks);

// OGB Hits@K: the fraction of positive scores strictly greater than the K-th largest negative
// score (1 when there are fewer than K negatives).
double HitsAtK(const std::vector<double>& pos, const std::vector<double>& neg, int32_t k);

// ---- Demo data ----
struct DemoGraph {
  int32_t num_users = 0, num_items = 0;
  std::vector<Interaction> train, test;
  std::vector<int32_t> user_genre, item_genre;  // the planted taste clusters
};
// Deterministic synthetic interactions: `genres` taste clusters; each user draws
// `per_user` distinct items, 80% from its own genre with Zipf-like popularity, 20% from
// anywhere; split 80/20 into train/test per user with the seeded generator.
DemoGraph MakeDemoGraph(int32_t num_users, int32_t num_items, int32_t genres, int32_t per_user,
                        uint64_t seed);

}  // namespace chamferdb::sheaf
