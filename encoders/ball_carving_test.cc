#include "encoders/ball_carving.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "kernels/chamfer/chamfer.h"

namespace chamferdb {
namespace {

double Dot(const float* a, const float* b, size_t dim) {
  double s = 0;
  for (size_t l = 0; l < dim; ++l) s += double(a[l]) * b[l];
  return s;
}

// Unit tokens around a few directions, so clusters at τ = 0.7 are non-trivial.
std::vector<float> ClusteredUnitTokens(Rng& rng, size_t n, size_t dim, size_t centres, double noise) {
  std::vector<float> c(centres * dim), q(n * dim);
  for (float& v : c) v = static_cast<float>(rng.Normal());
  for (size_t i = 0; i < n; ++i) {
    const size_t k = rng.UniformInt(centres);
    double s = 0;
    for (size_t l = 0; l < dim; ++l) {
      q[i * dim + l] = static_cast<float>(c[k * dim + l] / std::sqrt(double(dim)) + noise * rng.Normal() / std::sqrt(double(dim)));
      s += double(q[i * dim + l]) * q[i * dim + l];
    }
    for (size_t l = 0; l < dim; ++l) q[i * dim + l] = static_cast<float>(q[i * dim + l] / std::sqrt(s));
  }
  return q;
}

TEST(BallCarving, ClustersRespectTheThresholdAndPartitionTheTokens) {
  Rng rng(31);
  for (float tau : {0.3f, 0.5f, 0.7f, 0.9f}) {
    for (size_t n : {1, 2, 17, 32, 100}) {
      const size_t dim = 24;
      auto q = ClusteredUnitTokens(rng, n, dim, 5, 0.6);
      const CarvedQuery c = BallCarve(q.data(), n, dim, tau);
      ASSERT_EQ(c.cluster_of.size(), n);
      ASSERT_EQ(c.tokens.size(), c.clusters * dim);
      // The centre of a cluster is its first member in input order (independent recount).
      std::vector<long> centre(c.clusters, -1);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_LT(c.cluster_of[i], c.clusters);
        if (centre[c.cluster_of[i]] < 0) centre[c.cluster_of[i]] = static_cast<long>(i);
      }
      for (size_t i = 0; i < n; ++i) {
        const long ctr = centre[c.cluster_of[i]];
        ASSERT_GE(Dot(q.data() + ctr * dim, q.data() + i * dim, dim), tau) << "token " << i << " tau " << tau;
      }
      // Centres are mutually below τ, in either order.
      for (size_t a = 0; a < c.clusters; ++a) {
        for (size_t b = a + 1; b < c.clusters; ++b) {
          ASSERT_LT(Dot(q.data() + centre[a] * dim, q.data() + centre[b] * dim, dim), tau);
        }
      }
      // Greedy maximality: a token is absorbed by the FIRST earlier centre it is close to.
      for (size_t i = 0; i < n; ++i) {
        for (size_t a = 0; a < c.cluster_of[i]; ++a) {
          if (centre[a] < static_cast<long>(i)) {
            ASSERT_LT(Dot(q.data() + centre[a] * dim, q.data() + i * dim, dim), tau);
          }
        }
      }
      // Each output token is the sum of its members.
      std::vector<double> sums(c.clusters * dim, 0.0);
      for (size_t i = 0; i < n; ++i) {
        for (size_t l = 0; l < dim; ++l) sums[c.cluster_of[i] * dim + l] += q[i * dim + l];
      }
      for (size_t k = 0; k < sums.size(); ++k) ASSERT_NEAR(c.tokens[k], sums[k], 1e-5);
    }
  }
}

TEST(BallCarving, ThresholdAboveOneIsTheIdentityOnUnitTokens) {
  Rng rng(32);
  const size_t n = 32, dim = 16;
  auto q = ClusteredUnitTokens(rng, n, dim, 2, 0.05);  // very close tokens, still not merged
  const CarvedQuery c = BallCarve(q.data(), n, dim, 1.01f);
  ASSERT_EQ(c.clusters, n);
  EXPECT_EQ(c.tokens, q);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(c.cluster_of[i], i);
}

TEST(BallCarving, DuplicatesMergeAndVeryLowThresholdGivesOneCluster) {
  const size_t dim = 3;
  const std::vector<float> q = {1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0};
  const CarvedQuery c = BallCarve(q.data(), 4, dim, 0.7f);
  ASSERT_EQ(c.clusters, 2u);
  EXPECT_EQ(c.cluster_of, (std::vector<uint32_t>{0, 1, 0, 1}));
  EXPECT_EQ(c.tokens, (std::vector<float>{2, 0, 0, 0, 2, 0}));
  const CarvedQuery all = BallCarve(q.data(), 4, dim, -1.0f);  // every ⟨q, q′⟩ ≥ 0 > −1
  EXPECT_EQ(all.clusters, 1u);
  EXPECT_EQ(all.tokens, (std::vector<float>{2, 2, 0}));
}

TEST(BallCarving, CarvedChamferNeverExceedsTheFullChamfer) {
  // Σ_C max_p ⟨Σ q, p⟩ ≤ Σ_C Σ_{q∈C} max_p ⟨q, p⟩ = Chamfer(Q, P).
  Rng rng(33);
  for (int trial = 0; trial < 20; ++trial) {
    const size_t n = 32, np = 40, dim = 32;
    auto q = ClusteredUnitTokens(rng, n, dim, 4, 0.5);
    auto p = ClusteredUnitTokens(rng, np, dim, 6, 0.8);
    const CarvedQuery c = BallCarve(q.data(), n, dim, 0.7f);
    ASSERT_LT(c.clusters, n);  // this data has merges
    EXPECT_LE(ChamferReference(c.tokens.data(), c.clusters, p.data(), np, dim),
              ChamferReference(q.data(), n, p.data(), np, dim) + 1e-9);
  }
}

}  // namespace
}  // namespace chamferdb
