// The refine stage of IVF_PQ (IndexConfig::refine, IndexSearchParams::refine_k) against
// independent references: the exact top-k (double-precision inner products of the stored
// vectors, or of their int8-dequantized values) among the first stage's own neighbours.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "index/index.h"
#include "index/refine_dot.h"
#include "kernels/int8/quantize.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;

std::vector<float> Clustered(Rng& rng, size_t n, size_t dim, size_t clusters) {
  std::vector<float> centers(clusters * dim);
  for (float& c : centers) c = static_cast<float>(rng.Normal());
  std::vector<float> x(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng.UniformInt(clusters);
    for (size_t j = 0; j < dim; ++j) x[i * dim + j] = centers[c * dim + j] + 0.7f * static_cast<float>(rng.Normal());
  }
  return x;
}

// The value the refine storage holds for x: x itself (float32) or its int8 round trip.
std::vector<double> Stored(const float* x, size_t dim, RefineStorage storage) {
  std::vector<double> out(x, x + dim);
  if (storage == RefineStorage::kInt8) {
    std::vector<int8_t> codes(dim);
    const float scale = int8::QuantizeRow(x, dim, codes.data());
    for (size_t j = 0; j < dim; ++j) out[j] = double(codes[j]) * scale / 127.0;
  }
  return out;
}

double Dot(const float* q, const std::vector<double>& v) {
  double s = 0;
  for (size_t j = 0; j < v.size(); ++j) s += double(q[j]) * v[j];
  return s;
}

class Refine : public ::testing::TestWithParam<RefineStorage> {};

TEST_P(Refine, ReturnsTheExactTopKAmongTheFirstStageNeighbours) {
  const RefineStorage storage = GetParam();
  Rng rng(77);
  const size_t dim = 48, n = 3000, nq = 20, k = 10, refine_k = 200;
  IndexConfig cfg;
  cfg.kind = IndexKind::kIvfPq;
  cfg.ivf_nlist = 16;
  cfg.pq_m = 6;  // coarse codes (8 dims per 4-bit code): the PQ order is far from exact
  cfg.pq_nbits = 4;
  cfg.ivf_nprobe = 4;
  cfg.ivf_train_threshold = 1500;
  cfg.refine = storage;
  auto created = CreateIndex(cfg, dim);
  ASSERT_OK(created);
  auto& index = *created;
  auto x = Clustered(rng, n, dim, 30);
  std::map<Label, std::vector<double>> stored;
  // Half before training, half after (the refine rows are rebuilt at training, appended
  // after it).
  for (size_t begin = 0; begin < n; begin += 500) {
    std::vector<Label> labels;
    for (size_t i = begin; i < begin + 500; ++i) {
      labels.push_back(static_cast<Label>(7 * i + 1));
      stored[labels.back()] = Stored(&x[i * dim], dim, storage);
    }
    ASSERT_OK(index->Add(&x[begin * dim], labels.data(), labels.size()));
  }
  ASSERT_EQ(index->info().state, IndexState::kReady);
  // Tombstones: removed labels must never come back from either stage.
  std::vector<Label> removed;
  for (size_t i = 0; i < n; i += 9) removed.push_back(static_cast<Label>(7 * i + 1));
  ASSERT_OK(index->Remove(removed.data(), removed.size()));
  for (Label l : removed) stored.erase(l);

  auto queries = Clustered(rng, nq, dim, 30);
  double refined_hits = 0, pq_hits = 0;
  for (size_t q = 0; q < nq; ++q) {
    const float* qv = &queries[q * dim];
    std::vector<std::vector<Neighbor>> first, refined, pq_only;
    ASSERT_OK(index->Search(qv, 1, {.k = refine_k}, &first));
    ASSERT_OK(index->Search(qv, 1, {.k = k, .refine_k = refine_k}, &refined));
    ASSERT_OK(index->Search(qv, 1, {.k = k}, &pq_only));
    ASSERT_EQ(first[0].size(), refine_k);
    // Reference: exact scores of the first stage's neighbours, best k (ties by label).
    std::vector<std::pair<double, Label>> ref;
    for (const Neighbor& nb : first[0]) ref.push_back({-Dot(qv, stored.at(nb.label)), nb.label});
    std::sort(ref.begin(), ref.end());
    ASSERT_EQ(refined[0].size(), k);
    for (size_t j = 0; j < k; ++j) {
      EXPECT_EQ(refined[0][j].label, ref[j].second) << "query " << q << " rank " << j;
      EXPECT_NEAR(refined[0][j].score, -ref[j].first, 1e-4 * (1 + std::abs(ref[j].first)));
    }
    // Against the exact top-k over everything live: refining recovers most of what PQ loses.
    std::vector<std::pair<double, Label>> all;
    for (const auto& [label, v] : stored) all.push_back({-Dot(qv, v), label});
    std::partial_sort(all.begin(), all.begin() + k, all.end());
    std::set<Label> truth;
    for (size_t j = 0; j < k; ++j) truth.insert(all[j].second);
    for (const Neighbor& nb : refined[0]) refined_hits += truth.count(nb.label);
    for (const Neighbor& nb : pq_only[0]) pq_hits += truth.count(nb.label);
  }
  EXPECT_GT(refined_hits, pq_hits + 0.1 * nq * k) << "refined " << refined_hits << " vs PQ " << pq_hits;
}

TEST_P(Refine, WholeIndexAsFirstStageIsBruteForceAndSurvivesCompaction) {
  const RefineStorage storage = GetParam();
  Rng rng(78);
  const size_t dim = 32, n = 2400, k = 15;
  IndexConfig cfg;
  cfg.kind = IndexKind::kIvfPq;
  cfg.ivf_nlist = 8;
  cfg.pq_m = 4;
  cfg.pq_nbits = 4;
  cfg.ivf_train_threshold = 1000;
  cfg.refine = storage;
  auto created = CreateIndex(cfg, dim);
  ASSERT_OK(created);
  auto& index = *created;
  auto x = Clustered(rng, n, dim, 12);
  std::vector<Label> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<Label>(i);
  ASSERT_OK(index->Add(x.data(), labels.data(), n));
  auto check = [&](const std::set<Label>& removed) {
    auto queries = Clustered(rng, 5, dim, 12);
    for (size_t q = 0; q < 5; ++q) {
      const float* qv = &queries[q * dim];
      std::vector<std::pair<double, Label>> all;
      for (size_t i = 0; i < n; ++i)
        if (!removed.count(labels[i])) all.push_back({-Dot(qv, Stored(&x[i * dim], dim, storage)), labels[i]});
      std::sort(all.begin(), all.end());
      std::vector<std::vector<Neighbor>> out;
      ASSERT_OK(index->Search(qv, 1, {.k = k, .nprobe = 8, .refine_k = n}, &out));
      ASSERT_EQ(out[0].size(), k);
      for (size_t j = 0; j < k; ++j) EXPECT_EQ(out[0][j].label, all[j].second) << "query " << q << " rank " << j;
    }
  };
  check({});
  // Remove two thirds (IVF compaction purges the inverted lists in place), re-add a few.
  std::vector<Label> gone;
  for (size_t i = 0; i < n; ++i)
    if (i % 3) gone.push_back(labels[i]);
  ASSERT_OK(index->Remove(gone.data(), gone.size()));
  ASSERT_OK(index->MaybeCompact());
  EXPECT_EQ(index->info().tombstones, 0u);
  ASSERT_OK(index->Add(&x[1 * dim], &labels[1], 1));
  std::set<Label> removed(gone.begin(), gone.end());
  removed.erase(labels[1]);
  check(removed);
}

INSTANTIATE_TEST_SUITE_P(Storage, Refine, ::testing::Values(RefineStorage::kFloat32, RefineStorage::kInt8),
                         [](const auto& info) {
                           return std::string(info.param == RefineStorage::kInt8 ? "Int8" : "Float32");
                         });

TEST(Refine, UntrainedIndexIsExactAndRefineIsOnlyForIvfPq) {
  IndexConfig cfg;
  cfg.kind = IndexKind::kIvfPq;
  cfg.ivf_nlist = 8;
  cfg.pq_m = 4;
  cfg.pq_nbits = 4;
  cfg.ivf_train_threshold = 1000;
  cfg.refine = RefineStorage::kInt8;
  auto created = CreateIndex(cfg, 16);
  ASSERT_OK(created);
  Rng rng(3);
  auto x = Clustered(rng, 200, 16, 4);
  std::vector<Label> labels(200);
  for (int i = 0; i < 200; ++i) labels[i] = i;
  ASSERT_OK((*created)->Add(x.data(), labels.data(), 200));
  std::vector<std::vector<Neighbor>> plain, refined;
  ASSERT_OK((*created)->Search(x.data(), 1, {.k = 5}, &plain));
  ASSERT_OK((*created)->Search(x.data(), 1, {.k = 5, .refine_k = 50}, &refined));
  ASSERT_EQ(plain[0].size(), 5u);
  for (size_t j = 0; j < 5; ++j) EXPECT_EQ(plain[0][j].label, refined[0][j].label);
  EXPECT_GT((*created)->info().memory_bytes, 200u * (16 + 4));

  for (IndexKind kind : {IndexKind::kFlat, IndexKind::kHnsw}) {
    IndexConfig bad;
    bad.kind = kind;
    bad.refine = RefineStorage::kFloat32;
    EXPECT_THAT(CreateIndex(bad, 16),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("refine_storage applies to IVF_PQ")));
  }
}

TEST(DotI8Row, MatchesDoublePrecisionOnAwkwardSizes) {
  Rng rng(9);
  for (size_t dim : {1, 7, 15, 16, 17, 31, 32, 33, 100, 2048}) {
    std::vector<float> q(dim);
    std::vector<int8_t> c(dim);
    double ref = 0, mag = 0;
    for (size_t j = 0; j < dim; ++j) {
      q[j] = static_cast<float>(rng.Normal());
      c[j] = static_cast<int8_t>(static_cast<int>(rng.UniformInt(255)) - 127);
      ref += double(q[j]) * c[j];
      mag += std::abs(double(q[j]) * c[j]);
    }
    const float scale = 0.37f;
    ref *= scale / 127.0;
    EXPECT_NEAR(DotI8Row(q.data(), c.data(), scale, dim), ref, 1e-6 * mag * scale / 127.0 + 1e-6) << "dim " << dim;
  }
  // The ±127 extremes and a zero row.
  std::vector<float> ones(64, 1.0f);
  std::vector<int8_t> hi(64, 127), lo(64, -127), zero(64, 0);
  EXPECT_FLOAT_EQ(DotI8Row(ones.data(), hi.data(), 2.0f, 64), 128.0f);
  EXPECT_FLOAT_EQ(DotI8Row(ones.data(), lo.data(), 2.0f, 64), -128.0f);
  EXPECT_EQ(DotI8Row(ones.data(), zero.data(), 2.0f, 64), 0.0f);
}

}  // namespace
}  // namespace chamferdb
