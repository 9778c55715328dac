#include "index/index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/rng.h"
#include "common/status_matchers.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;

struct Case {
  IndexKind kind;
  double min_recall;  // recall@10 against brute force
};

// Clustered data, so that approximate indexes face a realistic (not uniform) distribution.
std::vector<float> Clustered(Rng& rng, size_t n, size_t dim, size_t clusters) {
  std::vector<float> centers(clusters * dim);
  for (float& c : centers) c = static_cast<float>(rng.Normal());
  std::vector<float> x(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng.UniformInt(clusters);
    for (size_t j = 0; j < dim; ++j)
      x[i * dim + j] = centers[c * dim + j] + 0.5f * static_cast<float>(rng.Normal());
  }
  return x;
}

std::vector<Label> BruteForce(const std::vector<float>& x, const std::vector<Label>& labels,
                              const std::set<Label>& removed, const float* q, size_t dim, size_t k) {
  std::vector<std::pair<double, Label>> scored;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (removed.count(labels[i])) continue;
    double s = 0;
    for (size_t j = 0; j < dim; ++j) s += double(q[j]) * x[i * dim + j];
    scored.push_back({-s, labels[i]});
  }
  std::sort(scored.begin(), scored.end());
  std::vector<Label> out;
  for (size_t i = 0; i < std::min(k, scored.size()); ++i) out.push_back(scored[i].second);
  return out;
}

class IndexContract : public ::testing::TestWithParam<Case> {};

TEST_P(IndexContract, RecallAgainstBruteForceBeforeAndAfterRemovalAndCompaction) {
  const Case c = GetParam();
  Rng rng(31);
  const size_t dim = 64, n = 4000, nq = 50, k = 10;
  IndexConfig cfg;
  cfg.kind = c.kind;
  cfg.ivf_nlist = 32;
  cfg.pq_m = 32;
  cfg.ivf_nprobe = 8;
  cfg.ivf_train_threshold = 2000;
  auto created = CreateIndex(cfg, dim);
  ASSERT_OK(created);
  auto& index = *created;
  auto x = Clustered(rng, n, dim, 40);
  std::vector<Label> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<Label>(1000 + 3 * i);
  // Add in uneven batches (IVF_PQ trains in the middle).
  for (size_t begin = 0; begin < n;) {
    const size_t len = std::min<size_t>(n - begin, 1 + rng.UniformInt(700));
    ASSERT_OK(index->Add(x.data() + begin * dim, labels.data() + begin, len));
    begin += len;
  }
  EXPECT_EQ(index->size(), n);
  EXPECT_EQ(index->info().state, IndexState::kReady);
  auto queries = Clustered(rng, nq, dim, 40);

  std::set<Label> removed;
  auto measure = [&](size_t ef) {
    std::vector<std::vector<Neighbor>> out;
    IndexSearchParams p{.k = k, .ef_search = static_cast<uint32_t>(ef), .nprobe = 32};
    EXPECT_OK(index->Search(queries.data(), nq, p, &out));
    size_t hit = 0;
    for (size_t q = 0; q < nq; ++q) {
      auto truth = BruteForce(x, labels, removed, queries.data() + q * dim, dim, k);
      for (const Neighbor& nb : out[q]) {
        EXPECT_EQ(removed.count(nb.label), 0u) << "removed label returned";
        hit += std::count(truth.begin(), truth.end(), nb.label);
      }
      for (size_t j = 1; j < out[q].size(); ++j) EXPECT_GE(out[q][j - 1].score, out[q][j].score);
    }
    return static_cast<double>(hit) / (nq * k);
  };
  EXPECT_GE(measure(256), c.min_recall);

  // A filter (allowed labels) inside the search: only allowed labels come back, and the
  // neighbours are the brute-force top k among the allowed ones.
  for (size_t every : {10, 100}) {
    LabelBitmap allowed(labels.back() + 1);
    std::set<Label> excluded;
    for (size_t i = 0; i < n; ++i) {
      if (i % every == 3) allowed.set(static_cast<size_t>(labels[i]));
      else excluded.insert(labels[i]);
    }
    std::vector<std::vector<Neighbor>> out;
    IndexSearchParams p{.k = k, .ef_search = 256, .nprobe = 32, .allowed = &allowed};
    ASSERT_OK(index->Search(queries.data(), nq, p, &out));
    size_t hit = 0;
    for (size_t q = 0; q < nq; ++q) {
      auto truth = BruteForce(x, labels, excluded, queries.data() + q * dim, dim, k);
      for (const Neighbor& nb : out[q]) {
        EXPECT_TRUE(allowed.test(static_cast<size_t>(nb.label))) << "label outside the filter returned";
        hit += std::count(truth.begin(), truth.end(), nb.label);
      }
    }
    const double recall = static_cast<double>(hit) / (nq * k);
    if (c.kind == IndexKind::kFlat) EXPECT_EQ(recall, 1.0) << "1 in " << every;
    if (every == 10) EXPECT_GE(recall, c.min_recall - 0.1) << "1 in " << every;
  }

  // Remove 60%: enough to trigger compaction.
  std::vector<Label> to_remove;
  for (size_t i = 0; i < n; ++i)
    if (i % 5 < 3) to_remove.push_back(labels[i]);
  ASSERT_OK(index->Remove(to_remove.data(), to_remove.size()));
  removed.insert(to_remove.begin(), to_remove.end());
  EXPECT_EQ(index->size(), n - to_remove.size());
  EXPECT_GE(measure(256), c.min_recall - 0.05);
  ASSERT_OK(index->MaybeCompact());
  EXPECT_EQ(index->info().tombstones, 0u);
  EXPECT_GE(measure(256), c.min_recall - 0.05);

  // Re-adding a removed label is allowed; adding a live one is not.
  ASSERT_OK(index->Add(x.data(), &labels[0], 1));
  EXPECT_THAT(index->Add(x.data(), &labels[0], 1), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

INSTANTIATE_TEST_SUITE_P(AllKinds, IndexContract,
                         ::testing::Values(Case{IndexKind::kFlat, 1.0}, Case{IndexKind::kHnsw, 0.95},
                                           Case{IndexKind::kIvfPq, 0.6}),
                         [](const auto& info) {
                           switch (info.param.kind) {
                             case IndexKind::kFlat: return std::string("Flat");
                             case IndexKind::kHnsw: return std::string("Hnsw");
                             default: return std::string("IvfPq");
                           }
                         });

TEST(IvfPq, SearchesExactlyUntilTrained) {
  IndexConfig cfg;
  cfg.kind = IndexKind::kIvfPq;
  cfg.ivf_nlist = 8;
  cfg.pq_m = 4;
  cfg.ivf_train_threshold = 500;
  auto index = CreateIndex(cfg, 16);
  ASSERT_OK(index);
  Rng rng(5);
  auto x = Clustered(rng, 100, 16, 5);
  std::vector<Label> labels(100);
  for (int i = 0; i < 100; ++i) labels[i] = i;
  ASSERT_OK((*index)->Add(x.data(), labels.data(), 100));
  EXPECT_EQ((*index)->info().state, IndexState::kExact);
  std::vector<std::vector<Neighbor>> out;
  ASSERT_OK((*index)->Search(x.data() + 7 * 16, 1, {.k = 5}, &out));
  EXPECT_EQ(out[0].front().label, BruteForce(x, labels, {}, x.data() + 7 * 16, 16, 1)[0]);
}

TEST(IndexConfig, RejectsBadParametersNamingThem) {
  IndexConfig cfg;
  cfg.kind = IndexKind::kIvfPq;
  cfg.pq_m = 7;
  EXPECT_THAT(CreateIndex(cfg, 64), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("pq_m 7")));
  cfg.pq_m = 0;
  EXPECT_THAT(CreateIndex(cfg, 60), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("pq_m")));
  IndexConfig h;
  h.kind = IndexKind::kHnsw;
  h.hnsw_m = 1000;
  EXPECT_THAT(CreateIndex(h, 8), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("hnsw_m")));
}

TEST(Index, KLargerThanLiveReturnsEverythingOnce) {
  auto index = CreateIndex({}, 4);
  ASSERT_OK(index);
  const float x[8] = {1, 0, 0, 0, 0, 1, 0, 0};
  const Label l[2] = {5, 9};
  ASSERT_OK((*index)->Add(x, l, 2));
  std::vector<std::vector<Neighbor>> out;
  ASSERT_OK((*index)->Search(x, 1, {.k = 50}, &out));
  ASSERT_EQ(out[0].size(), 2u);
  EXPECT_EQ(out[0][0].label, 5);
}

}  // namespace
}  // namespace chamferdb
