// The spec's §6.2 acceptance targets on the synthetic corpus at D = 1024 (seed 0, 40 queries
// over 1,500 records plus 8 graded variants per query), ground truth computed directly from
// the records' (path, value) leaves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>
#include <cstdio>

#include "bench/mbat/mbat_corpus.h"

namespace chamferdb::mbat_bench {
namespace {

class MbatQuality : public ::testing::TestWithParam<MbatOpKind> {};

TEST_P(MbatQuality, MeetsTheSpecTargetsAtD1024) {
  MbatConfig c;
  c.dim = 1024;
  c.seed = 0;
  c.op_kind = GetParam();
  auto enc = MbatJsonEncoder::Create(c);
  ASSERT_TRUE(enc.ok()) << enc.status();
  const QualityReport r = EvaluateQuality(**enc, QualityOptions{});
  ASSERT_EQ(r.encoded, 1500u + 40 * 8);
  // Calibration across graded similarity: each query against its own 8 variants.
  EXPECT_GE(r.pearson_family, 0.95);
  // The spec's Pearson ≥ 0.95, on the pair set that reproduces its table: every query
  // against the pool of all queries' graded variants (truth std 0.123; the spec's numbers
  // imply 0.125, and its D = 1024 value 0.974 is what we measure).
  EXPECT_GE(r.pearson_pool, 0.95);
  EXPECT_NEAR(r.truth_std_pool, 0.125, 0.01);
  // Over all 72,800 query–record pairs (99.6% unrelated, truth std 0.069) no random-code
  // encoder at D = 1024 reaches 0.95: the idealized encoder (independent Gaussian vectors
  // per leaf) gives the ceiling, ≈ 0.916. We must be at it, within sampling noise.
  EXPECT_LT(r.ideal_pearson_all, 0.93);
  EXPECT_GE(r.pearson_soft_ochiai, r.ideal_pearson_all - 0.01);
  EXPECT_GE(r.spearman_jaccard_related, 0.98);
  EXPECT_GE(r.recall_at_10, 0.99);
  EXPECT_LE(r.residual_std, 1.2 / 32);
  EXPECT_GE(r.kendall_family, 0.97);
  EXPECT_GE(r.probe_accuracy, 0.99);
  std::printf("pearson_family %.4f truth_std %.4f pool: pearson %.4f truth_std %.4f ideal %.4f; "
              "all pairs ideal %.4f\n",
              r.pearson_family, r.truth_std, r.pearson_pool, r.truth_std_pool, r.ideal_pearson_pool,
              r.ideal_pearson_all);
  std::printf("pearson %.4f spearman_related %.4f (%zu pairs) spearman_all %.3f recall@10 %.3f "
              "resid %.4f kendall %.4f probe %.4f (%zu)\n",
              r.pearson_soft_ochiai, r.spearman_jaccard_related, r.related_pairs,
              r.spearman_jaccard_all, r.recall_at_10, r.residual_std, r.kendall_family,
              r.probe_accuracy, r.probes);
}

TEST(MbatCorpus, RecordsHaveAboutTwentyTwoLeavesAndPerturbChangesExactlyM) {
  CorpusGenerator gen(1);
  double total = 0;
  for (int i = 0; i < 200; ++i) {
    const auto r = gen.Record();
    const auto leaves = Leaves(r);
    EXPECT_GE(leaves.size(), 19u);
    EXPECT_LE(leaves.size(), 26u);
    total += leaves.size();
    auto distinct = [](const nlohmann::json& tags) {  // "3–6 of 30 tokens": no repeats
      std::vector<std::string> t = tags.get<std::vector<std::string>>();
      std::sort(t.begin(), t.end());
      return std::adjacent_find(t.begin(), t.end()) == t.end() && t.size() >= 3 && t.size() <= 6;
    };
    EXPECT_TRUE(distinct(r["tags"]));
    for (int m = 0; m <= 8; ++m) {
      const auto perturbed = gen.Perturb(r, m);
      EXPECT_TRUE(distinct(perturbed["tags"]));
      const auto p = Leaves(perturbed);
      ASSERT_EQ(p.size(), leaves.size());
      int changed = 0;
      for (size_t k = 0; k < p.size(); ++k) changed += p[k].value != leaves[k].value;
      EXPECT_EQ(changed, m);
    }
  }
  EXPECT_NEAR(total / 200, 22.0, 1.5);
}

TEST(MbatCorpus, GroundTruthOnAHandMadePair) {
  const auto a = Leaves(nlohmann::json::parse(R"({"x":"a","y":[1,"b"],"n":50})"));
  const auto b = Leaves(nlohmann::json::parse(R"({"x":"a","y":[1,"c"],"n":55,"z":null})"));
  const PairTruth t = Compare(a, b, 0.25);
  // Leaves: a = {x, y[0], y[1], n}, b = {x, y[0], y[1], n, z}; shared: x, y[0].
  EXPECT_NEAR(t.jaccard, 2.0 / 7, 1e-12);
  EXPECT_NEAR(t.ochiai, 2.0 / std::sqrt(20.0), 1e-12);
  const double dt = std::log1p(50.0) - std::log1p(55.0);
  EXPECT_NEAR(t.soft_ochiai, (2 + std::exp(-dt * dt / (2 * 0.0625))) / std::sqrt(20.0), 1e-12);
  EXPECT_NEAR(Spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0, 1e-12);
  EXPECT_NEAR(Pearson({1, 2, 3}, {3, 2, 1}), -1.0, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Operators, MbatQuality,
                         ::testing::Values(MbatOpKind::kSrht, MbatOpKind::kSignedPerm),
                         [](const auto& info) { return std::string(MbatOpKindName(info.param)); });

}  // namespace
}  // namespace chamferdb::mbat_bench
