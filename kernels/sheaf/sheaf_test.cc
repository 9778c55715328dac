#include "kernels/sheaf/sheaf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>

#include "common/rng.h"
#include "common/status_matchers.h"

namespace chamferdb::sheaf {
namespace {

using ::chamferdb::testing::StatusIs;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::vector<Interaction> RandomEdges(int32_t users, int32_t items, double density, Rng& rng) {
  std::vector<Interaction> e;
  for (int32_t u = 0; u < users; ++u)
    for (int32_t i = 0; i < items; ++i)
      if (rng.Uniform() < density) e.push_back({u, i});
  return e;
}

DiffusionParams RandomParams(int32_t users, int32_t items, int32_t d, int layers, Rng& rng) {
  DiffusionParams p;
  p.num_users = users;
  p.num_items = items;
  p.dim = d;
  p.edges = RandomEdges(users, items, 0.3, rng);
  for (int l = 0; l < layers; ++l) {
    SheafLayer layer;
    for (int j = 0; j < 2 * d; ++j) layer.w.push_back(rng.Normal() / std::sqrt(2.0 * d));
    for (int j = 0; j < d * d; ++j) layer.W.push_back(rng.Normal() / std::sqrt(1.0 * d));
    for (int j = 0; j < d; ++j) layer.b.push_back(0.1 * rng.Normal());
    p.layers.push_back(layer);
  }
  return p;
}

std::vector<double> RandomX(int64_t n, int d, Rng& rng) {
  std::vector<double> x(n * d);
  for (double& v : x) v = 0.1 * rng.Normal();
  return x;
}

double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST(SheafDiffusion, FastMatchesDenseLaplacianReferenceOnAwkwardSizes) {
  Rng rng(1);
  for (auto [users, items] : {std::pair{1, 3}, {3, 15}, {17, 15}, {40, 127}}) {
    for (Aggregate agg : {Aggregate::kMeanAllLayers, Aggregate::kLast}) {
      DiffusionParams p = RandomParams(users, items, 8, 3, rng);
      p.aggregate = agg;
      p.alpha = 0.7;
      const std::vector<double> x0 = RandomX(users + items, 8, rng);
      ASSERT_OK(Validate(p, x0));
      const DiffusionResult ref = DiffuseReference(p, x0);
      const DiffusionResult fast = DiffuseFast(p, x0);
      ASSERT_EQ(ref.h.size(), fast.h.size());
      EXPECT_LT(MaxAbsDiff(ref.h, fast.h), 1e-12) << users << "x" << items;
      EXPECT_LT(MaxAbsDiff(ref.maps, fast.maps), 1e-15);
      EXPECT_LT(MaxAbsDiff(ref.laplacian_diag, fast.laplacian_diag), 1e-13);
    }
  }
}

TEST(SheafLaplacian, SymmetricPsdAndDirichletEnergyIdentity) {
  Rng rng(2);
  DiffusionParams p = RandomParams(12, 20, 6, 1, rng);
  const int64_t n = 32;
  const std::vector<double> x0 = RandomX(n, 6, rng);
  const DiffusionResult r = DiffuseFast(p, x0);
  const std::vector<double> l = DenseLaplacian(12, 20, p.edges, r.maps);
  Eigen::Map<const RowMat> lm(l.data(), n, n);
  EXPECT_EQ((lm - lm.transpose()).cwiseAbs().maxCoeff(), 0.0);
  for (int trial = 0; trial < 5; ++trial) {
    Eigen::VectorXd x(n);
    for (int a = 0; a < n; ++a) x[a] = rng.Normal();
    double energy = 0;
    for (size_t k = 0; k < p.edges.size(); ++k) {
      const double diff = r.maps[2 * k] * x[p.edges[k].user] -
                          r.maps[2 * k + 1] * x[12 + p.edges[k].item];
      energy += diff * diff;
    }
    EXPECT_NEAR(x.dot(lm * x), energy, 1e-12 * std::max(1.0, energy));
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(lm);
  EXPECT_GT(es.eigenvalues().minCoeff(), -1e-12);
  // Normalized L̃ = D̃ L D̃ has spectrum in [0, 2).
  Eigen::VectorXd dt(n);
  for (int a = 0; a < n; ++a) dt[a] = 1.0 / std::sqrt(lm(a, a) + 1.0);
  const Eigen::MatrixXd ln = dt.asDiagonal() * lm * dt.asDiagonal();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> en(ln);
  EXPECT_GT(en.eigenvalues().minCoeff(), -1e-12);
  EXPECT_LT(en.eigenvalues().maxCoeff(), 2.0);
}

TEST(SheafLaplacian, UnitMapsGiveGraphLaplacian) {
  Rng rng(3);
  DiffusionParams p = RandomParams(5, 7, 2, 1, rng);
  const std::vector<double> ones(2 * p.edges.size(), 1.0);
  const std::vector<double> l = DenseLaplacian(5, 7, p.edges, ones);
  std::vector<double> expected(12 * 12, 0.0);
  for (const Interaction& e : p.edges) {
    const int a = e.user, b = 5 + e.item;
    expected[a * 12 + b] = expected[b * 12 + a] = -1;
    expected[a * 12 + a] += 1;
    expected[b * 12 + b] += 1;
  }
  EXPECT_EQ(l, expected);
}

TEST(SheafDiffusion, IsolatedNodeKeepsEmbeddingWithIdentityLayer) {
  Rng rng(4);
  DiffusionParams p = RandomParams(4, 4, 3, 2, rng);
  p.edges.erase(std::remove_if(p.edges.begin(), p.edges.end(),
                               [](const Interaction& e) { return e.user == 2; }),
                p.edges.end());
  for (SheafLayer& layer : p.layers) {
    layer.W = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    layer.b = {0, 0, 0};
  }
  const std::vector<double> x0 = RandomX(8, 3, rng);
  const DiffusionResult r = DiffuseFast(p, x0);
  for (int j = 0; j < 3; ++j) EXPECT_EQ(r.h[2 * 3 + j], x0[2 * 3 + j]);
}

TEST(SheafDiffusion, BitIdenticalForAnyThreadCount) {
  Rng rng(5);
  DiffusionParams p = RandomParams(150, 90, 16, 2, rng);
  const std::vector<double> x0 = RandomX(240, 16, rng);
  omp_set_num_threads(1);
  const DiffusionResult one = DiffuseFast(p, x0);
  omp_set_num_threads(2);
  const DiffusionResult two = DiffuseFast(p, x0);
  EXPECT_EQ(one.h, two.h);
}

TEST(SheafDiffusion, ValidateNamesTheBadField) {
  Rng rng(6);
  DiffusionParams p = RandomParams(3, 3, 2, 1, rng);
  std::vector<double> x0 = RandomX(6, 2, rng);
  p.edges.push_back({0, 5});
  EXPECT_THAT(Validate(p, x0), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("edges")));
  p.edges.back() = p.edges.front();
  EXPECT_THAT(Validate(p, x0), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("duplicate")));
  p.edges.pop_back();
  p.layers[0].W.pop_back();
  EXPECT_THAT(Validate(p, x0), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("W")));
}

TEST(RecommendTopK, FastEqualsFullSortAndNeverRecommendsSeenItems) {
  Rng rng(7);
  for (auto [users, items, k] : {std::tuple{1, 3, 5}, {17, 15, 10}, {130, 200, 20}}) {
    const int d = 7;
    const std::vector<double> hu = RandomX(users, d, rng), hi = RandomX(items, d, rng);
    const UserItems train = UserItems::FromPairs(users, RandomEdges(users, items, 0.2, rng));
    const TopK ref = RecommendReference(hu, hi, users, items, d, train, k, MaskMode::kNegInf);
    const TopK fast = RecommendFast(hu, hi, users, items, d, train, k, MaskMode::kNegInf);
    EXPECT_EQ(ref.items, fast.items);
    for (int u = 0; u < users; ++u) {
      for (int r = 0; r < k; ++r) {
        const int32_t item = fast.items[u * k + r];
        if (item < 0) continue;
        EXPECT_FALSE(std::binary_search(train.items.begin() + train.offsets[u],
                                        train.items.begin() + train.offsets[u + 1], item));
      }
    }
  }
}

// The official code multiplies scores by (1 − seen): when every unseen score is negative, a
// seen item (score 0) is recommended first. −∞ masking never does that.
TEST(RecommendTopK, ZeroMaskReproducesOfficialPitfallNegInfDoesNot) {
  const std::vector<double> hu = {1.0};
  const std::vector<double> hi = {-1.0, -2.0, -3.0};
  const UserItems train = UserItems::FromPairs(1, {{0, 2}});
  const TopK zero = RecommendFast(hu, hi, 1, 3, 1, train, 2, MaskMode::kZero);
  EXPECT_EQ(zero.items, (std::vector<int32_t>{2, 0}));
  const TopK neg = RecommendFast(hu, hi, 1, 3, 1, train, 3, MaskMode::kNegInf);
  EXPECT_EQ(neg.items, (std::vector<int32_t>{0, 1, -1}));
  EXPECT_EQ(neg.scores[2], -std::numeric_limits<double>::infinity());
}

// Hand-computed: 3 users, top-3 lists, K = 2 and 3.
TEST(RankingMetrics, HandComputedThreeUserExample) {
  TopK topk;
  topk.k = 3;
  topk.items = {0, 1, 2,   // user 0: test {1, 5}
                3, 4, 5,   // user 1: test {3}
                7, 8, 9};  // user 2: no test items (skipped)
  const UserItems test = UserItems::FromPairs(3, {{0, 1}, {0, 5}, {1, 3}});
  const std::vector<RankingAtK> m = RankingMetrics(topk, test, {2, 3});
  // K = 2: u0 hits {1} at rank 1: P = 1/2, R = 1/2, DCG = 1/log2 3, IDCG = 1 + 1/log2 3.
  //        u1 hits {3} at rank 0: P = 1/2, R = 1, NDCG = 1.
  const double l3 = 1.0 / std::log2(3.0);
  EXPECT_DOUBLE_EQ(m[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m[0].recall, 0.75);
  EXPECT_DOUBLE_EQ(m[0].f1, 2 * 0.5 * 0.75 / 1.25);
  EXPECT_DOUBLE_EQ(m[0].ndcg, 0.5 * (l3 / (1 + l3) + 1.0));
  EXPECT_DOUBLE_EQ(m[0].hit_rate, 1.0);
  // K = 3: P = (1/3 + 1/3)/2.
  EXPECT_DOUBLE_EQ(m[1].precision, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m[1].recall, 0.75);
}

TEST(HitsAtK, CountsPositivesStrictlyAboveKthNegative) {
  EXPECT_DOUBLE_EQ(HitsAtK({0.9, 0.5, 0.3, 0.1}, {0.8, 0.4, 0.2}, 2), 0.5);  // 2nd neg = 0.4
  EXPECT_DOUBLE_EQ(HitsAtK({0.4}, {0.8, 0.4, 0.2}, 2), 0.0);                  // not strictly
  EXPECT_DOUBLE_EQ(HitsAtK({0.0}, {0.8}, 2), 1.0);                           // < K negatives
}

// On the planted-genre demo graph, untrained LightGCN-style diffusion (unit maps, W = I,
// b = 0) from random embeddings recommends better than the random embeddings themselves.
TEST(SheafDemo, DiffusionBeatsRandomEmbeddingsOnPlantedGraph) {
  const DemoGraph g = MakeDemoGraph(200, 120, 4, 20, 42);
  DiffusionParams p;
  p.num_users = g.num_users;
  p.num_items = g.num_items;
  p.dim = 64;
  p.edges = g.train;
  p.unit_maps = true;
  for (int l = 0; l < 10; ++l) {
    SheafLayer layer;
    layer.W.assign(64 * 64, 0.0);
    for (int j = 0; j < 64; ++j) layer.W[j * 64 + j] = 1.0;
    layer.b.assign(64, 0.0);
    p.layers.push_back(layer);
  }
  Rng rng(9);
  const std::vector<double> x0 = RandomX(g.num_users + g.num_items, 64, rng);
  ASSERT_OK(Validate(p, x0));
  const DiffusionResult r = DiffuseFast(p, x0);
  const UserItems train = UserItems::FromPairs(g.num_users, g.train);
  const UserItems test = UserItems::FromPairs(g.num_users, g.test);
  auto f1 = [&](const std::vector<double>& h) {
    const std::vector<double> hu(h.begin(), h.begin() + g.num_users * 64);
    const std::vector<double> hi(h.begin() + g.num_users * 64, h.end());
    const TopK t = RecommendFast(hu, hi, g.num_users, g.num_items, 64, train, 10, MaskMode::kNegInf);
    return RankingMetrics(t, test, {10})[0].f1;
  };
  const double diffused = f1(r.h), random = f1(x0);
  EXPECT_GT(diffused, 1.5 * random) << diffused << " vs " << random;
}

}  // namespace
}  // namespace chamferdb::sheaf
