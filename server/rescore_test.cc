// The final rescore of collections with rescore storage (int8 or float16 tokens in memory,
// a more precise copy in storage): checked against brute-force Chamfer over the original
// tokens (kernels/chamfer ChamferReference, double accumulation).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include "common/rng.h"
#include "server/test_tokens.h"
#include "common/status_matchers.h"
#include "kernels/chamfer/chamfer.h"
#include "server/collection.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint32_t kDim = 32;

void Normalize(float* v) {
  double norm = 0;
  for (uint32_t j = 0; j < kDim; ++j) norm += double(v[j]) * v[j];
  for (uint32_t j = 0; j < kDim; ++j) v[j] = static_cast<float>(v[j] / std::sqrt(norm));
}

std::vector<float> UnitTokens(Rng& rng, size_t n) { return RandomUnitTokens(rng, n, kDim); }

CollectionSpec Spec(TokenStorage tokens, std::optional<TokenStorage> rescore) {
  CollectionSpec s;
  s.name = "r";
  s.id = 7;
  s.fde = {.dim = kDim, .r_reps = 8, .k_sim = 3, .d_proj = 8, .d_final = 0, .seed = 5};
  s.token_storage = tokens;
  s.rescore_storage = rescore;
  return s;
}

// The corpus: groups of near-duplicates (a base document and copies with every token nudged
// by ~1e-3 and renormalized), so int8 tokens (step ≈ absmax / 127) often cannot tell the
// members of a group apart while float32 can.
struct Corpus {
  std::vector<std::string> ids;
  std::vector<std::vector<float>> docs;
  std::deque<std::string> bytes;
  std::vector<DocumentInput> inputs;
};

Corpus MakeCorpus(uint64_t seed, int groups, int copies) {
  Rng rng(seed);
  Corpus c;
  for (int g = 0; g < groups; ++g) {
    const size_t n = 3 + rng.UniformInt(6);
    const auto base = UnitTokens(rng, n);
    for (int k = 0; k < copies; ++k) {
      auto d = base;
      for (size_t t = 0; t < n; ++t) {
        for (uint32_t j = 0; j < kDim; ++j) d[t * kDim + j] += static_cast<float>(1e-3 * rng.Normal());
        Normalize(&d[t * kDim]);
      }
      c.ids.push_back("g" + std::to_string(g) + "_" + std::to_string(k));
      c.docs.push_back(d);
    }
  }
  for (size_t i = 0; i < c.docs.size(); ++i) {
    c.bytes.emplace_back(reinterpret_cast<const char*>(c.docs[i].data()), c.docs[i].size() * 4);
    c.inputs.push_back({c.ids[i], static_cast<uint32_t>(c.docs[i].size() / kDim), c.bytes.back(), ""});
  }
  return c;
}

// A query near one group's base document, so the top k is that group's members, separated
// by float32 score differences far below int8 resolution.
std::vector<float> QueryNear(const Corpus& c, size_t doc, Rng& rng, size_t nq) {
  const size_t n = c.docs[doc].size() / kDim;
  std::vector<float> q(nq * kDim);
  for (size_t i = 0; i < nq; ++i) {
    const size_t t = rng.UniformInt(n);
    for (uint32_t j = 0; j < kDim; ++j) q[i * kDim + j] = c.docs[doc][t * kDim + j] + static_cast<float>(0.3 * rng.Normal() / std::sqrt(kDim));
    Normalize(&q[i * kDim]);
  }
  return q;
}

// Exact order (score desc, id asc) of every document, by ChamferReference over `docs`.
std::vector<std::pair<double, std::string>> ExactOrder(const std::vector<std::vector<float>>& docs,
                                                       const std::vector<std::string>& ids, const std::vector<float>& q,
                                                       size_t nq) {
  std::vector<std::pair<double, std::string>> order;
  for (size_t i = 0; i < docs.size(); ++i) {
    order.push_back({ChamferReference(q.data(), nq, docs[i].data(), docs[i].size() / kDim, kDim), ids[i]});
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  return order;
}

// How many of the exact top k a search returned in exactly the exact positions.
int PositionsRight(const SearchResult& r, const std::vector<std::pair<double, std::string>>& exact, size_t k) {
  int right = 0;
  for (size_t j = 0; j < k && j < r.hits.size(); ++j) right += r.hits[j].id == exact[j].second;
  return right;
}

TEST(RescoreTest, Int8WithFloat32RescoreOrdersTheTopKLikeExactFloatChamfer) {
  const Corpus corpus = MakeCorpus(11, 40, 8);
  auto store_i8 = NewMemStore(), store_rs = NewMemStore();
  auto plain = Collection::Create(Spec(TokenStorage::kInt8, std::nullopt), store_i8.get(), false);
  auto rescored = Collection::Create(Spec(TokenStorage::kInt8, TokenStorage::kFloat32), store_rs.get(), false);
  ASSERT_OK(plain);
  ASSERT_OK(rescored);
  ASSERT_OK((*plain)->Upsert(corpus.inputs, false));
  ASSERT_OK((*rescored)->Upsert(corpus.inputs, false));
  const size_t all = corpus.docs.size(), k = 8, nq = 6;
  Rng rng(3);
  int plain_right = 0, rescore_right = 0, total = 0;
  for (int trial = 0; trial < 20; ++trial) {
    const auto q = QueryNear(corpus, rng.UniformInt(all), rng, nq);
    const auto exact = ExactOrder(corpus.docs, corpus.ids, q, nq);
    // Every document reranked, every one rescored: the answer is the exact float32 top k.
    auto full = (*rescored)->Search({.tokens = q.data(), .num_tokens = nq, .k = k, .candidates = all,
                                     .rescore_candidates = std::min<size_t>(all, Limits::kMaxRescoreCandidates)});
    ASSERT_OK(full);
    ASSERT_EQ(full->hits.size(), k);
    for (size_t j = 0; j < k; ++j) {
      EXPECT_EQ(full->hits[j].id, exact[j].second) << "trial " << trial << " rank " << j;
      EXPECT_NEAR(full->hits[j].score, exact[j].first, 2e-5);
    }
    EXPECT_EQ(full->stats.rescored, all);
    // The default rescore (max(4k, 32) of the int8 rerank's best).
    auto def = (*rescored)->Search({.tokens = q.data(), .num_tokens = nq, .k = k, .candidates = all});
    ASSERT_OK(def);
    EXPECT_EQ(def->stats.rescored, 32u);
    for (size_t j = 0; j < k; ++j) EXPECT_NEAR(def->hits[j].score, exact[j].first, 2e-5) << "trial " << trial;
    auto i8 = (*plain)->Search({.tokens = q.data(), .num_tokens = nq, .k = k, .candidates = all});
    ASSERT_OK(i8);
    EXPECT_EQ(i8->stats.rescored, 0u);
    plain_right += PositionsRight(*i8, exact, k);
    rescore_right += PositionsRight(*def, exact, k);
    total += k;
  }
  // The corpus is built so int8 alone misorders near-duplicates; the rescore fixes them.
  EXPECT_EQ(rescore_right, total);
  EXPECT_LT(plain_right, total * 9 / 10) << "the corpus no longer separates int8 from float32";
}

TEST(RescoreTest, Float16CopyIsWhatGetReturnsAndWhatTheRescoreScores) {
  const Corpus corpus = MakeCorpus(12, 10, 4);
  auto store = NewMemStore();
  auto c = Collection::Create(Spec(TokenStorage::kInt8, TokenStorage::kFloat16), store.get(), false);
  ASSERT_OK(c);
  ASSERT_OK((*c)->Upsert(corpus.inputs, false));
  std::vector<std::string> missing;
  auto got = (*c)->Get(corpus.ids, true, &missing);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), corpus.ids.size());
  std::vector<std::vector<float>> halves;
  for (size_t i = 0; i < got->size(); ++i) {
    const auto& v = (*got)[i].vectors;
    ASSERT_EQ(v.size(), corpus.docs[i].size());
    double worst = 0;
    for (size_t j = 0; j < v.size(); ++j) {
      // float16 keeps 11 significant bits: relative error ≤ 2^-11 (normal range), absolute
      // ≤ 2^-25 below it. int8 would be off by up to absmax / 254 ≈ 1e-3 here.
      worst = std::max(worst, std::fabs(double(v[j]) - corpus.docs[i][j]) / std::max(std::fabs(double(corpus.docs[i][j])), 6.2e-5));
    }
    EXPECT_LE(worst, std::ldexp(1.0, -11)) << corpus.ids[i];
    halves.push_back(v);
  }
  Rng rng(4);
  for (int trial = 0; trial < 5; ++trial) {
    const auto q = QueryNear(corpus, rng.UniformInt(corpus.docs.size()), rng, 4);
    const auto exact = ExactOrder(halves, corpus.ids, q, 4);
    auto r = (*c)->Search({.tokens = q.data(), .num_tokens = 4, .k = 5, .candidates = 40, .rescore_candidates = 40});
    ASSERT_OK(r);
    for (size_t j = 0; j < 5; ++j) {
      EXPECT_EQ(r->hits[j].id, exact[j].second);
      EXPECT_NEAR(r->hits[j].score, exact[j].first, 2e-5);
    }
  }
}

TEST(RescoreTest, ReopenedCollectionRebuildsAndRescoresTheSame) {
  const Corpus corpus = MakeCorpus(13, 12, 5);
  auto store = NewMemStore();
  const auto spec = Spec(TokenStorage::kFloat16, TokenStorage::kFloat32);
  std::vector<float> q;
  SearchResult before;
  {
    auto c = Collection::Create(spec, store.get(), false);
    ASSERT_OK(c);
    ASSERT_OK((*c)->Upsert(corpus.inputs, false));
    ASSERT_OK((*c)->Delete({corpus.ids[0]}, false));
    Rng rng(5);
    q = QueryNear(corpus, 7, rng, 3);
    auto r = (*c)->Search({.tokens = q.data(), .num_tokens = 3, .k = 6, .candidates = 59, .rescore_candidates = 59});
    ASSERT_OK(r);
    before = *r;
  }
  // The spec round-trips through its JSON form, as the registry stores it.
  auto respec = CollectionSpec::FromJson(spec.ToJson());
  ASSERT_OK(respec);
  ASSERT_TRUE(respec->rescore_storage.has_value());
  EXPECT_EQ(*respec->rescore_storage, TokenStorage::kFloat32);
  auto c = Collection::Open(*respec, store.get());
  ASSERT_OK(c);
  auto after = (*c)->Search({.tokens = q.data(), .num_tokens = 3, .k = 6, .candidates = 59, .rescore_candidates = 59});
  ASSERT_OK(after);
  ASSERT_EQ(after->hits.size(), before.hits.size());
  auto docs = corpus.docs;
  auto ids = corpus.ids;
  docs.erase(docs.begin());
  ids.erase(ids.begin());
  const auto exact = ExactOrder(docs, ids, q, 3);
  for (size_t j = 0; j < after->hits.size(); ++j) {
    EXPECT_EQ(after->hits[j].id, before.hits[j].id);
    EXPECT_EQ(after->hits[j].score, before.hits[j].score);
    EXPECT_EQ(after->hits[j].id, exact[j].second);
    EXPECT_NEAR(after->hits[j].score, exact[j].first, 2e-5);
  }
  // A spec that lost its rescore storage does not open over records that have one.
  auto stripped = *respec;
  stripped.rescore_storage.reset();
  EXPECT_THAT(Collection::Open(stripped, store.get()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("rescore storage")));
}

TEST(RescoreTest, BadSpecsAndRequestsAreInvalidArgumentNamingTheField) {
  auto store = NewMemStore();
  EXPECT_THAT(Collection::Create(Spec(TokenStorage::kFloat32, TokenStorage::kFloat32), store.get(), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rescore_storage")));
  EXPECT_THAT(Collection::Create(Spec(TokenStorage::kFloat16, TokenStorage::kFloat16), store.get(), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rescore_storage")));
  EXPECT_THAT(Collection::Create(Spec(TokenStorage::kInt8, TokenStorage::kInt8), store.get(), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rescore_storage")));

  const Corpus corpus = MakeCorpus(14, 5, 4);
  auto plain = Collection::Create(Spec(TokenStorage::kInt8, std::nullopt), store.get(), false);
  ASSERT_OK(plain);
  ASSERT_OK((*plain)->Upsert(corpus.inputs, false));
  Rng rng(6);
  const auto q = QueryNear(corpus, 0, rng, 2);
  EXPECT_THAT((*plain)->Search({.tokens = q.data(), .num_tokens = 2, .k = 3, .rescore_candidates = 5}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rescore_candidates needs a collection with rescore_storage")));

  auto store2 = NewMemStore();
  auto c = Collection::Create(Spec(TokenStorage::kInt8, TokenStorage::kFloat16), store2.get(), false);
  ASSERT_OK(c);
  ASSERT_OK((*c)->Upsert(corpus.inputs, false));
  EXPECT_THAT((*c)->Search({.tokens = q.data(), .num_tokens = 2, .k = 3, .candidates = 10, .rescore_candidates = 2}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rescore_candidates 2 is outside k (3)..10")));
  EXPECT_THAT((*c)->Search({.tokens = q.data(), .num_tokens = 2, .k = 3, .candidates = 10, .rescore_candidates = 11}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rescore_candidates 11")));
  EXPECT_THAT((*c)->Search({.tokens = q.data(), .num_tokens = 2, .k = 3, .rerank = false, .rescore_candidates = 3}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rerank")));
  // Without rerank there is nothing to rescore: FDE order, no rescore by default.
  auto fde_only = (*c)->Search({.tokens = q.data(), .num_tokens = 2, .k = 3, .rerank = false});
  ASSERT_OK(fde_only);
  EXPECT_EQ(fde_only->stats.rescored, 0u);
  // A default rescore never exceeds the reranked candidates.
  auto small = (*c)->Search({.tokens = q.data(), .num_tokens = 2, .k = 3, .candidates = 12});
  ASSERT_OK(small);
  EXPECT_EQ(small->stats.rescored, 12u);
}

}  // namespace
}  // namespace chamferdb
