// The rerank candidate limit (Limits::kMaxCandidates): accepted at the limit, rejected with
// INVALID_ARGUMENT naming `candidates` above it, and a search that reranks more candidates
// than the old limit (10,000) returns the exact Chamfer top-k (checked against the
// double-precision reference, independent of the FDE, the index and the fast kernels).
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

constexpr uint32_t kDim = 8;
constexpr size_t kOldLimit = 10000;

std::vector<float> UnitTokens(Rng& rng, size_t n) { return RandomUnitTokens(rng, n, kDim); }

CollectionSpec FlatSpec(uint64_t id) {
  CollectionSpec s;
  s.name = "limit" + std::to_string(id);
  s.id = id;
  s.fde = {.dim = kDim, .r_reps = 2, .k_sim = 2, .d_proj = 4, .d_final = 0, .seed = 5};
  s.index.kind = IndexKind::kFlat;
  return s;
}

TEST(CandidateLimitSearch, LimitIsAboveTheOldOneAndBelowTheRefineLimit) {
  static_assert(Limits::kMaxCandidates > kOldLimit);
  static_assert(Limits::kMaxCandidates <= Limits::kMaxRefineCandidates);
  // A default search never asks for more than the old limit (k ≤ kMaxK).
  EXPECT_EQ(DefaultCandidates(Limits::kMaxK), 10 * Limits::kMaxK);
}

TEST(CandidateLimitSearch, AcceptedAtTheLimitRejectedAboveNamingCandidates) {
  auto store = NewMemStore();
  auto c = Collection::Create(FlatSpec(7), store.get(), false);
  ASSERT_OK(c);
  Rng rng(21);
  auto d = UnitTokens(rng, 3), q = UnitTokens(rng, 2);
  const std::string bytes(reinterpret_cast<const char*>(d.data()), d.size() * 4);
  ASSERT_OK((*c)->Upsert({{"a", 3, bytes, ""}}, false));
  auto at = (*c)->Search({.tokens = q.data(), .num_tokens = 2, .k = 5, .candidates = Limits::kMaxCandidates});
  ASSERT_OK(at);
  ASSERT_EQ(at->hits.size(), 1u);
  EXPECT_EQ(at->hits[0].id, "a");
  const std::string above = std::to_string(Limits::kMaxCandidates + 1);
  EXPECT_THAT((*c)->Search({.tokens = q.data(), .num_tokens = 2, .k = 5, .candidates = Limits::kMaxCandidates + 1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("candidates " + above + " exceeds the limit of " + std::to_string(Limits::kMaxCandidates))));
}

TEST(CandidateLimitSearch, RerankOfMoreThanTheOldLimitGivesTheExactTopK) {
  auto store = NewMemStore();
  auto c = Collection::Create(FlatSpec(8), store.get(), false);
  ASSERT_OK(c);
  Rng rng(22);
  const size_t n = kOldLimit + 1500;
  std::vector<std::vector<float>> docs;
  std::deque<std::string> keep, ids;  // DocumentInput holds views
  std::vector<DocumentInput> batch;
  for (size_t i = 0; i < n; ++i) {
    docs.push_back(UnitTokens(rng, 1 + rng.UniformInt(3)));
    keep.emplace_back(reinterpret_cast<const char*>(docs.back().data()), docs.back().size() * 4);
    ids.push_back("d" + std::to_string(i));
    batch.push_back({ids.back(), static_cast<uint32_t>(docs.back().size() / kDim), keep.back(), ""});
    if (batch.size() == Limits::kMaxDocumentsPerBatch || i + 1 == n) {
      ASSERT_OK((*c)->Upsert(batch, false));
      batch.clear();
    }
  }
  ASSERT_EQ((*c)->Stats().documents, n);
  for (int trial = 0; trial < 3; ++trial) {
    auto q = UnitTokens(rng, 3);
    std::vector<std::pair<double, size_t>> exact;
    for (size_t i = 0; i < n; ++i)
      exact.push_back({-ChamferReference(q.data(), 3, docs[i].data(), docs[i].size() / kDim, kDim), i});
    std::sort(exact.begin(), exact.end());
    // Every document is a candidate, so the answer is the exact top-k whatever the FDE ranks.
    auto r = (*c)->Search({.tokens = q.data(), .num_tokens = 3, .k = 10, .candidates = n});
    ASSERT_OK(r);
    EXPECT_EQ(r->stats.candidates, n);
    ASSERT_EQ(r->hits.size(), 10u);
    for (size_t j = 0; j < 10; ++j) {
      EXPECT_EQ(r->hits[j].id, "d" + std::to_string(exact[j].second)) << "rank " << j;
      EXPECT_NEAR(r->hits[j].score, -exact[j].first, 1e-4) << "rank " << j;
    }
  }
}

}  // namespace
}  // namespace chamferdb
