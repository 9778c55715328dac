// Collection search with an IVF_PQ refine stage (IndexConfig::refine,
// SearchQuery::refine_candidates): validation, spec persistence, and exactness when the
// first stage covers the whole collection (checked against the double-precision Chamfer
// reference, independent of the FDE and the index).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <deque>

#include "common/rng.h"
#include "server/test_tokens.h"
#include "common/status_matchers.h"
#include "kernels/chamfer/chamfer.h"
#include "server/collection.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint32_t kDim = 16;

std::vector<float> UnitTokens(Rng& rng, size_t n) { return RandomUnitTokens(rng, n, kDim); }

CollectionSpec RefineSpec(RefineStorage refine) {
  CollectionSpec s;
  s.name = "r";
  s.id = 4;
  s.fde = {.dim = kDim, .r_reps = 4, .k_sim = 2, .d_proj = 8, .d_final = 0, .seed = 3};  // 128 dims
  s.index.kind = IndexKind::kIvfPq;
  s.index.ivf_nlist = 4;
  s.index.pq_m = 16;
  s.index.pq_nbits = 4;
  s.index.ivf_nprobe = 4;
  s.index.ivf_train_threshold = 200;
  s.index.refine = refine;
  return s;
}

TEST(RefineSearch, WholeCollectionFirstStageGivesTheExactChamferTopK) {
  auto store = NewMemStore();
  auto c = Collection::Create(RefineSpec(RefineStorage::kInt8), store.get(), false);
  ASSERT_OK(c);
  Rng rng(11);
  std::vector<std::vector<float>> docs;
  std::deque<std::string> keep, ids;  // DocumentInput holds views
  std::vector<DocumentInput> batch;
  const int n = 300;
  for (int i = 0; i < n; ++i) {
    docs.push_back(UnitTokens(rng, 1 + rng.UniformInt(8)));
    keep.emplace_back(reinterpret_cast<const char*>(docs.back().data()), docs.back().size() * 4);
    ids.push_back("d" + std::to_string(i));
    batch.push_back({ids.back(), static_cast<uint32_t>(docs.back().size() / kDim), keep.back(), ""});
  }
  ASSERT_OK((*c)->Upsert(batch, false));
  ASSERT_EQ((*c)->Stats().index_state, IndexState::kReady);
  for (int trial = 0; trial < 5; ++trial) {
    auto q = UnitTokens(rng, 4);
    std::vector<std::pair<double, int>> exact;
    for (int i = 0; i < n; ++i)
      exact.push_back({-ChamferReference(q.data(), 4, docs[i].data(), docs[i].size() / kDim, kDim), i});
    std::sort(exact.begin(), exact.end());
    auto r = (*c)->Search({.tokens = q.data(), .num_tokens = 4, .k = 5, .candidates = n, .refine_candidates = n});
    ASSERT_OK(r);
    ASSERT_EQ(r->hits.size(), 5u);
    for (int j = 0; j < 5; ++j) EXPECT_EQ(r->hits[j].id, "d" + std::to_string(exact[j].second)) << "rank " << j;
    EXPECT_EQ(r->stats.candidates, static_cast<uint32_t>(n));
    // The default (4 × candidates) and an explicit narrower refine both answer.
    ASSERT_OK((*c)->Search({.tokens = q.data(), .num_tokens = 4, .k = 5, .candidates = 20}));
    auto narrow = (*c)->Search({.tokens = q.data(), .num_tokens = 4, .k = 5, .candidates = 20, .refine_candidates = 40});
    ASSERT_OK(narrow);
    EXPECT_EQ(narrow->stats.candidates, 20u);
  }
}

TEST(RefineSearch, RejectsBadRefineCandidatesNamingTheField) {
  auto store = NewMemStore();
  auto with = Collection::Create(RefineSpec(RefineStorage::kFloat32), store.get(), false);
  ASSERT_OK(with);
  Rng rng(12);
  auto d = UnitTokens(rng, 3), q = UnitTokens(rng, 2);
  const std::string bytes(reinterpret_cast<const char*>(d.data()), d.size() * 4);
  ASSERT_OK((*with)->Upsert({{"a", 3, bytes, ""}}, false));
  EXPECT_THAT((*with)->Search({.tokens = q.data(), .num_tokens = 2, .k = 5, .candidates = 100, .refine_candidates = 50}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("refine_candidates 50 is outside candidates (100)")));
  EXPECT_THAT((*with)->Search({.tokens = q.data(), .num_tokens = 2, .k = 5, .refine_candidates = Limits::kMaxRefineCandidates + 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("refine_candidates 100001")));
  CollectionSpec plain = RefineSpec(RefineStorage::kNone);
  plain.id = 5;
  auto without = Collection::Create(plain, store.get(), false);
  ASSERT_OK(without);
  ASSERT_OK((*without)->Upsert({{"a", 3, bytes, ""}}, false));
  EXPECT_THAT((*without)->Search({.tokens = q.data(), .num_tokens = 2, .k = 5, .refine_candidates = 1000}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("refine_candidates needs a collection with index.refine_storage")));
  // Refine storage is for IVF_PQ only.
  CollectionSpec hnsw = RefineSpec(RefineStorage::kInt8);
  hnsw.id = 6;
  hnsw.index.kind = IndexKind::kHnsw;
  EXPECT_THAT(Collection::Create(hnsw, store.get(), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("refine_storage applies to IVF_PQ only")));
}

TEST(RefineSearch, SpecRoundTripsAndOldSpecsHaveNoRefine) {
  const CollectionSpec s = RefineSpec(RefineStorage::kInt8);
  auto back = CollectionSpec::FromJson(s.ToJson());
  ASSERT_OK(back);
  EXPECT_EQ(back->index.refine, RefineStorage::kInt8);
  // A spec written before the field existed.
  std::string old = RefineSpec(RefineStorage::kNone).ToJson();
  const std::string key = ",\"refine_storage\":0";
  ASSERT_NE(old.find(key), std::string::npos);
  old.erase(old.find(key), key.size());
  auto parsed = CollectionSpec::FromJson(old);
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->index.refine, RefineStorage::kNone);
}

}  // namespace
}  // namespace chamferdb
