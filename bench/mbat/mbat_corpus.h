// The synthetic JSON corpus of the MBAT-JSON spec (§6.1) and its ground-truth similarities,
// used by bench_mbat and mbat_quality_test. Deterministic in the seed (common/rng.h).
//
// A record: 8 categorical strings c0..c7 (40 values each), an integer n_int in [0, 1000], a
// boolean flag, opt (string or null), addr = {city, zip, geo: {cc}}, tags (3–6 of 30 tokens,
// ordered) and items (1–3 objects {sku, qty}): 19–26 leaves, about 22.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/rng.h"
#include "encoders/mbat_json.h"

namespace chamferdb::mbat_bench {

class CorpusGenerator {
 public:
  explicit CorpusGenerator(uint64_t seed) : rng_(seed) {}
  nlohmann::json Record();
  // A copy of r with m distinct leaves replaced by fresh values (never the old value).
  nlohmann::json Perturb(const nlohmann::json& r, int m);

 private:
  nlohmann::json FreshValue(const std::string& field, const nlohmann::json& old);
  Rng rng_;
};

// (path with array indices, value) for every leaf, e.g. ("items[1].qty", 3).
struct Leaf {
  std::string path;
  nlohmann::json value;
};
std::vector<Leaf> Leaves(const nlohmann::json& record);

struct PairTruth {
  double jaccard = 0;      // over (path, value) leaves
  double ochiai = 0;       // |A∩B| / √(|A|·|B|)
  double soft_ochiai = 0;  // numbers at the same path count exp(−Δt²/2σ²), t = signed log1p
};
PairTruth Compare(const std::vector<Leaf>& a, const std::vector<Leaf>& b, double sigma);

double Pearson(const std::vector<double>& x, const std::vector<double>& y);
double Spearman(const std::vector<double>& x, const std::vector<double>& y);

struct QualityOptions {
  int num_queries = 40;
  int db_size = 1500;
  int max_perturb = 8;   // variants m = 1..max_perturb per query join the database
  int near_dup_max_m = 4;
  uint64_t seed = 0;
};

struct QualityReport {
  double pearson_soft_ochiai = 0;     // over all (query, database record) pairs
  double pearson_family = 0;          // over (query, its own variant m = 1..max_perturb) pairs
  double truth_std = 0;               // std of soft Ochiai over all pairs
  double residual_std = 0;            // std of cos − soft Ochiai
  // The same statistics for an idealized encoder (independent Gaussian random vectors per
  // exact (path, value) leaf, kernel-exact numbers; see IdealEncoder in mbat_corpus.cc):
  // the ceiling any random-code encoder at this D can reach on this pair set.
  double ideal_pearson_all = 0;
  double ideal_residual_std = 0;
  // Each query against the pool of all queries' graded variants (40 × 320 pairs: 2.5%
  // related instead of 0.44%), the pair mix whose truth spread matches the spec's table.
  double pearson_pool = 0;
  double truth_std_pool = 0;
  double spearman_jaccard_pool = 0;
  double ideal_pearson_pool = 0;
  size_t pool_pairs = 0;
  double spearman_jaccard_related = 0;  // pairs with Jaccard ≥ 0.15
  double spearman_jaccard_all = 0;
  double kendall_family = 0;          // mean Kendall τ of cos vs −m within each family
  double recall_at_10 = 0;            // near-duplicates (m ≤ near_dup_max_m) in the top 10
  double probe_accuracy = 0;          // non-numeric leaves of the queries, top-1 clean-up
  size_t pairs = 0, related_pairs = 0, probes = 0;
  double encode_seconds = 0;          // EncodeBatch wall time for the database
  size_t encoded = 0;
};

// Runs the §6.2 harness with brute-force inner-product search.
QualityReport EvaluateQuality(const MbatJsonEncoder& encoder, const QualityOptions& options);

}  // namespace chamferdb::mbat_bench
