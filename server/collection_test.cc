#include "server/collection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>

#include "common/rng.h"
#include "server/test_tokens.h"
#include "common/status_matchers.h"
#include "kernels/chamfer/chamfer.h"
#include "server/registry.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

// Wraps a store and fails every write while `fail_writes` is set (disk full, I/O error).
class FailingStore final : public Store {
 public:
  explicit FailingStore(std::unique_ptr<Store> base) : base_(std::move(base)) {}
  bool fail_writes = false;
  absl::StatusOr<std::optional<std::string>> Get(std::string_view k) const override { return base_->Get(k); }
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(const std::vector<std::string>& k) const override {
    return base_->MultiGet(k);
  }
  absl::Status Write(const WriteBatch& b, bool sync) override {
    if (fail_writes) return absl::ResourceExhaustedError("injected: no space left on device");
    return base_->Write(b, sync);
  }
  absl::Status Scan(std::string_view p, std::string_view s,
                    const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    return base_->Scan(p, s, fn);
  }
  uint64_t ApproximateSize(std::string_view p) const override { return base_->ApproximateSize(p); }
  absl::Status Flush() override { return base_->Flush(); }

 private:
  std::unique_ptr<Store> base_;
};

constexpr uint32_t kDim = 16;

std::string Bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

std::vector<float> UnitTokens(Rng& rng, size_t n) { return RandomUnitTokens(rng, n, kDim); }

CollectionSpec Spec(TokenStorage storage = TokenStorage::kFloat32) {
  CollectionSpec s;
  s.name = "c";
  s.id = 1;
  s.fde = {.dim = kDim, .r_reps = 10, .k_sim = 3, .d_proj = 8, .d_final = 0, .seed = 3};
  s.token_storage = storage;
  return s;
}

class CollectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<FailingStore>(NewMemStore());
    auto c = Collection::Create(Spec(), store_.get(), false);
    ASSERT_OK(c);
    c_ = std::move(c).value();
  }
  absl::Status Put(const std::string& id, const std::vector<float>& tokens, const std::string& meta = "") {
    const std::string bytes = Bytes(tokens);
    keep_.push_back(bytes);
    return c_->Upsert({DocumentInput{id, static_cast<uint32_t>(tokens.size() / kDim), keep_.back(), meta}}, false);
  }
  std::unique_ptr<FailingStore> store_;
  std::unique_ptr<Collection> c_;
  std::deque<std::string> keep_;
};

TEST_F(CollectionTest, ExhaustiveCandidatesReturnExactChamferTopK) {
  Rng rng(1);
  std::vector<std::vector<float>> docs;
  for (int i = 0; i < 60; ++i) {
    docs.push_back(UnitTokens(rng, 1 + rng.UniformInt(12)));
    ASSERT_OK(Put("d" + std::to_string(i), docs.back()));
  }
  for (int trial = 0; trial < 10; ++trial) {
    auto q = UnitTokens(rng, 5);
    // Brute force with the independent reference.
    std::vector<std::pair<double, int>> exact;
    for (int i = 0; i < 60; ++i) exact.push_back({-ChamferReference(q.data(), 5, docs[i].data(), docs[i].size() / kDim, kDim), i});
    std::sort(exact.begin(), exact.end());
    auto r = c_->Search({.tokens = q.data(), .num_tokens = 5, .k = 5, .candidates = 60});
    ASSERT_OK(r);
    ASSERT_EQ(r->hits.size(), 5u);
    for (int j = 0; j < 5; ++j) {
      EXPECT_EQ(r->hits[j].id, "d" + std::to_string(exact[j].second));
      EXPECT_NEAR(r->hits[j].score, -exact[j].first, 1e-4);
    }
    EXPECT_EQ(r->stats.candidates, 60u);
  }
}

TEST_F(CollectionTest, UpsertReplacesByIdAndTheOldVectorLeavesTheIndex) {
  Rng rng(2);
  auto a = UnitTokens(rng, 4), b = UnitTokens(rng, 3);
  ASSERT_OK(Put("x", a, R"({"v":1})"));
  ASSERT_OK(Put("x", b, R"({"v":2})"));
  EXPECT_EQ(c_->Stats().documents, 1u);
  EXPECT_EQ(c_->Stats().token_vectors, 3u);
  auto r = c_->Search({.tokens = a.data(), .num_tokens = 4, .k = 10, .include_metadata = true});
  ASSERT_OK(r);
  ASSERT_EQ(r->hits.size(), 1u);
  EXPECT_EQ(r->hits[0].metadata_json, R"({"v":2})");
  EXPECT_NEAR(r->hits[0].score, ChamferReference(a.data(), 4, b.data(), 3, kDim), 1e-4);
}

TEST_F(CollectionTest, BadDocumentFailsTheWholeBatchNamingIt) {
  Rng rng(3);
  auto good = UnitTokens(rng, 2);
  std::vector<float> nan_tokens = good;
  nan_tokens[5] = NAN;
  const std::string gb = Bytes(good), nb = Bytes(nan_tokens);
  EXPECT_THAT(c_->Upsert({{"ok", 2, gb, ""}, {"bad", 2, nb, ""}}, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("documents[1]")));
  EXPECT_EQ(c_->Stats().documents, 0u);  // nothing of the batch applied

  EXPECT_THAT(c_->Upsert({{"", 2, gb, ""}}, false), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id is empty")));
  const std::string long_id(Limits::kMaxIdBytes + 1, 'x');
  EXPECT_THAT(c_->Upsert({{long_id, 2, gb, ""}}, false), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds")));
  EXPECT_THAT(c_->Upsert({{"z", 0, "", ""}}, false), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_tokens is 0")));
  EXPECT_THAT(c_->Upsert({{"m", 3, gb, ""}}, false), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dimension mismatch")));
  EXPECT_THAT(c_->Upsert({{"t", static_cast<uint32_t>(Limits::kMaxTokensPerDocument + 1), gb, ""}}, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
  EXPECT_THAT(c_->Upsert({{"j", 2, gb, "[1,2]"}}, false), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON object")));
  EXPECT_THAT(c_->Upsert({{"j", 2, gb, "{bad"}}, false), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
  EXPECT_THAT(c_->Upsert({{"d", 2, gb, ""}, {"d", 2, gb, ""}}, false), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  std::vector<float> zero(kDim * 2, 0.0f);
  const std::string zb = Bytes(zero);
  EXPECT_THAT(c_->Upsert({{"zero", 2, zb, ""}}, false), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zero norm")));
  EXPECT_EQ(c_->Stats().documents, 0u);
}

TEST_F(CollectionTest, FailedStorageWriteLeavesNoHalfState) {
  Rng rng(4);
  auto a = UnitTokens(rng, 3);
  ASSERT_OK(Put("keep", a));
  store_->fail_writes = true;
  EXPECT_THAT(Put("new", UnitTokens(rng, 2)), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("no space")));
  EXPECT_THAT(Put("keep", UnitTokens(rng, 2)), StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
  EXPECT_THAT(c_->Delete({"keep"}, false), StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
  store_->fail_writes = false;
  EXPECT_EQ(c_->Stats().documents, 1u);
  EXPECT_EQ(c_->Stats().token_vectors, 3u);
  auto r = c_->Search({.tokens = a.data(), .num_tokens = 3, .k = 10});
  ASSERT_OK(r);
  ASSERT_EQ(r->hits.size(), 1u);
  EXPECT_EQ(r->hits[0].id, "keep");
  EXPECT_NEAR(r->hits[0].score, 3.0f, 1e-4);  // unchanged tokens: self-Chamfer of unit tokens
}

TEST_F(CollectionTest, DeleteGetAndReopenRebuildsTheSameState) {
  Rng rng(5);
  std::vector<std::vector<float>> docs;
  for (int i = 0; i < 20; ++i) {
    docs.push_back(UnitTokens(rng, 2 + i % 5));
    ASSERT_OK(Put("d" + std::to_string(i), docs.back(), R"({"i":)" + std::to_string(i) + "}"));
  }
  auto n = c_->Delete({"d3", "d4", "missing", "d3"}, false);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 2u);
  std::vector<std::string> missing;
  auto got = c_->Get({"d0", "d3", "d7"}, true, &missing);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ(missing, std::vector<std::string>{"d3"});
  EXPECT_EQ((*got)[1].metadata_json, R"({"i":7})");
  ASSERT_EQ((*got)[1].vectors.size(), docs[7].size());
  for (size_t i = 0; i < docs[7].size(); ++i) EXPECT_NEAR((*got)[1].vectors[i], docs[7][i], 1e-6);

  auto reopened = Collection::Open(c_->spec(), store_.get());
  ASSERT_OK(reopened);
  EXPECT_EQ((*reopened)->Stats().documents, 18u);
  EXPECT_EQ((*reopened)->Stats().token_vectors, c_->Stats().token_vectors);
  auto q = UnitTokens(rng, 3);
  auto r1 = c_->Search({.tokens = q.data(), .num_tokens = 3, .k = 5, .candidates = 18});
  auto r2 = (*reopened)->Search({.tokens = q.data(), .num_tokens = 3, .k = 5, .candidates = 18});
  ASSERT_OK(r1);
  ASSERT_OK(r2);
  for (int j = 0; j < 5; ++j) {
    EXPECT_EQ(r1->hits[j].id, r2->hits[j].id);
    EXPECT_EQ(r1->hits[j].score, r2->hits[j].score);
  }
}

TEST_F(CollectionTest, SearchRejectsBadQueries) {
  Rng rng(6);
  ASSERT_OK(Put("a", UnitTokens(rng, 2)));
  auto q = UnitTokens(rng, 2);
  EXPECT_THAT(c_->Search({.tokens = q.data(), .num_tokens = 2, .k = 0}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k 0")));
  EXPECT_THAT(c_->Search({.tokens = q.data(), .num_tokens = 2, .k = Limits::kMaxK + 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k 1001")));
  EXPECT_THAT(c_->Search({.tokens = q.data(), .num_tokens = 0, .k = 1}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_tokens is 0")));
  q[0] = INFINITY;
  EXPECT_THAT(c_->Search({.tokens = q.data(), .num_tokens = 2, .k = 1}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("inf")));
}

TEST(CollectionHalf, Float16StorageScoresTheRoundedTokens) {
  auto store = NewMemStore();
  auto c = Collection::Create(Spec(TokenStorage::kFloat16), store.get(), false);
  ASSERT_OK(c);
  Rng rng(7);
  auto d = UnitTokens(rng, 6), q = UnitTokens(rng, 4);
  const std::string b = Bytes(d);
  ASSERT_OK((*c)->Upsert({{"h", 6, b, ""}}, false));
  std::vector<std::string> missing;
  auto got = (*c)->Get({"h"}, true, &missing);
  ASSERT_OK(got);
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR((*got)[0].vectors[i], d[i], 1e-3);
  auto r = (*c)->Search({.tokens = q.data(), .num_tokens = 4, .k = 1});
  ASSERT_OK(r);
  EXPECT_NEAR(r->hits[0].score, ChamferReference(q.data(), 4, (*got)[0].vectors.data(), 6, kDim), 1e-4);
}

TEST(RegistryTest, CreateDuplicateDropAndReopen) {
  auto store = NewMemStore();
  auto reg = Registry::Open(store.get(), false);
  ASSERT_OK(reg);
  ASSERT_OK((*reg)->Create(Spec()));
  EXPECT_THAT((*reg)->Create(Spec()), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("\"c\"")));
  CollectionSpec bad = Spec();
  bad.name = "no spaces";
  EXPECT_THAT((*reg)->Create(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("may only contain")));
  EXPECT_THAT((*reg)->Get("nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  Rng rng(8);
  auto t = UnitTokens(rng, 2);
  const std::string b = Bytes(t);
  ASSERT_OK((*reg)->Get("c").value()->Upsert({{"a", 2, b, ""}}, false));
  auto reopened = Registry::Open(store.get(), false);
  ASSERT_OK(reopened);
  EXPECT_EQ((*reopened)->Get("c").value()->Stats().documents, 1u);
  ASSERT_OK((*reopened)->Drop("c"));
  EXPECT_THAT((*reopened)->Drop("c"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  // Nothing of the dropped collection is left in storage.
  size_t keys = 0;
  ASSERT_OK(store->Scan("", "", [&](std::string_view, std::string_view) { return ++keys, true; }));
  EXPECT_EQ(keys, 0u);
}

TEST(RegistryTest, CorruptEncoderParametersRefuseToOpenWithDataLoss) {
  auto store = NewMemStore();
  {
    auto reg = Registry::Open(store.get(), false);
    ASSERT_OK(reg);
    ASSERT_OK((*reg)->Create(Spec()));
  }
  auto blob = store->Get(Collection::EncoderKey(1));
  ASSERT_OK(blob);
  std::string bad = **blob;
  bad[bad.size() / 2] ^= 1;
  WriteBatch wb;
  wb.Put(Collection::EncoderKey(1), bad);
  ASSERT_OK(store->Write(wb, false));
  EXPECT_THAT(Registry::Open(store.get(), false), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("\"c\"")));
}

TEST(RegistryTest, CorruptDocumentRecordIsDataLossNamingTheKey) {
  auto store = NewMemStore();
  {
    auto reg = Registry::Open(store.get(), false);
    ASSERT_OK(reg);
    ASSERT_OK((*reg)->Create(Spec()));
    Rng rng(9);
    auto t = UnitTokens(rng, 2);
    const std::string b = Bytes(t);
    ASSERT_OK((*reg)->Get("c").value()->Upsert({{"victim", 2, b, ""}}, false));
  }
  const std::string key = Collection::DocPrefix(1) + "victim";
  std::string rec = *store->Get(key).value();
  rec[rec.size() / 2] ^= 0x40;
  WriteBatch wb;
  wb.Put(key, rec);
  ASSERT_OK(store->Write(wb, false));
  EXPECT_THAT(Registry::Open(store.get(), false), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("victim")));
}

}  // namespace
}  // namespace chamferdb
