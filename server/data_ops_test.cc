// Filtered search, scroll, count (both collection kinds), aliases and snapshots, checked
// against brute force over the documents the test itself keeps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <unistd.h>

#include "common/rng.h"
#include "server/test_tokens.h"
#include "common/status_matchers.h"
#include "encoders/muvera_fde.h"
#include "kernels/chamfer/chamfer.h"
#include "server/collection.h"
#include "server/registry.h"
#include "server/snapshot.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint32_t kDim = 16;

struct Doc {
  std::string id;
  std::vector<float> tokens;  // normalized
  int bucket;
  std::string meta;
};

std::vector<float> UnitTokens(Rng& rng, size_t n) { return RandomUnitTokens(rng, n, kDim); }

std::string Bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

CollectionSpec MultiVectorSpec(IndexKind kind) {
  CollectionSpec s;
  s.name = "docs";
  s.id = 1;
  s.fde = {.dim = kDim, .r_reps = 8, .k_sim = 3, .d_proj = 8, .d_final = 0, .seed = 5};
  s.index.kind = kind;
  return s;
}

MetadataFilter BucketBelow(double limit) {
  MetadataFilter f;
  FilterCondition c;
  c.field = FieldCondition{.path = "bucket", .kind = FieldCondition::Kind::kRange, .lt = limit};
  f.must.push_back(c);
  return f;
}

// n documents with metadata {"bucket": i % 1000, "parity": "even"|"odd"}.
std::vector<Doc> MakeDocs(Rng& rng, size_t n) {
  std::vector<Doc> docs(n);
  for (size_t i = 0; i < n; ++i) {
    docs[i].id = fmt::format("doc-{:05}", (i * 7919) % n);  // ids not in insertion order
    docs[i].tokens = UnitTokens(rng, 4 + rng.UniformInt(12));
    docs[i].bucket = static_cast<int>(i % 1000);
    docs[i].meta = fmt::format(R"({{"bucket":{},"parity":"{}"}})", docs[i].bucket, i % 2 ? "odd" : "even");
  }
  return docs;
}

absl::Status Ingest(Collection* c, const std::vector<Doc>& docs) {
  for (size_t begin = 0; begin < docs.size(); begin += 500) {
    std::vector<std::string> bytes;
    std::vector<DocumentInput> batch;
    const size_t end = std::min(docs.size(), begin + 500);
    bytes.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) bytes.push_back(Bytes(docs[i].tokens));
    for (size_t i = begin; i < end; ++i) {
      batch.push_back({docs[i].id, static_cast<uint32_t>(docs[i].tokens.size() / kDim), bytes[i - begin], docs[i].meta});
    }
    if (absl::Status s = c->Upsert(batch, false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Exact Chamfer top k among the documents with bucket < limit (ties by id).
std::vector<std::string> ExactTopK(const std::vector<Doc>& docs, const std::vector<float>& q, double limit, size_t k) {
  std::vector<std::pair<double, std::string>> scored;
  for (const Doc& d : docs) {
    if (d.bucket >= limit) continue;
    scored.push_back({-ChamferReference(q.data(), q.size() / kDim, d.tokens.data(), d.tokens.size() / kDim, kDim), d.id});
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < std::min(k, scored.size()); ++i) out.push_back(scored[i].second);
  return out;
}

class FilteredSearchTest : public ::testing::TestWithParam<IndexKind> {};

// At filters matching 50%, 5% and 0.1% of the collection, the filtered search returns
// exactly the exact-Chamfer top k among the matching documents when the candidate budget
// covers the matches, and k matching hits (never a non-matching one) at the default budget.
TEST_P(FilteredSearchTest, ExactTopKAmongMatchesAtEverySelectivity) {
  Rng rng(DeriveSeed(11, static_cast<uint64_t>(GetParam()), 0));
  auto store = NewMemStore();
  ASSERT_OK_AND_ASSIGN(auto c, Collection::Create(MultiVectorSpec(GetParam()), store.get(), false));
  const std::vector<Doc> docs = MakeDocs(rng, 2000);
  ASSERT_OK(Ingest(c.get(), docs));
  for (double limit : {500.0, 50.0, 1.0}) {  // 50%, 5%, 0.1% (2 documents)
    const MetadataFilter f = BucketBelow(limit);
    const size_t matches = static_cast<size_t>(2 * limit);
    EXPECT_EQ(c->Count(&f), matches);
    for (int t = 0; t < 10; ++t) {
      // A query near a matching document, so the filtered top k is not arbitrary.
      const Doc& target = docs[static_cast<size_t>(rng.UniformInt(static_cast<uint64_t>(limit)))];
      std::vector<float> q = UnitTokens(rng, 6);
      std::copy_n(target.tokens.begin(), std::min<size_t>(4 * kDim, target.tokens.size()), q.begin());
      const auto truth = ExactTopK(docs, q, limit, 10);
      SearchQuery sq{.tokens = q.data(), .num_tokens = q.size() / kDim, .k = 10, .candidates = matches, .filter = &f};
      ASSERT_OK_AND_ASSIGN(SearchResult full, c->Search(sq));
      std::vector<std::string> got;
      for (const auto& h : full.hits) got.push_back(h.id);
      EXPECT_EQ(got, truth) << "limit " << limit;
      EXPECT_EQ(full.stats.filter_matches, matches);
      // Every match reranked directly: the index is skipped, so no FDE score (documented).
      EXPECT_TRUE(full.stats.filter_exhaustive);
      for (const auto& h : full.hits) EXPECT_EQ(h.fde_score, 0.0f);
      // Default budget: k matching hits (never one outside the filter), and the document
      // the query was made from first (its tokens dominate the query).
      sq.candidates = 0;
      ASSERT_OK_AND_ASSIGN(SearchResult def, c->Search(sq));
      ASSERT_EQ(def.hits.size(), std::min<size_t>(10, matches));
      EXPECT_EQ(def.hits[0].id, truth[0]) << "limit " << limit;
      for (const auto& h : def.hits) {
        auto it = std::find_if(docs.begin(), docs.end(), [&](const Doc& d) { return d.id == h.id; });
        ASSERT_NE(it, docs.end());
        EXPECT_LT(it->bucket, limit) << "a document outside the filter was returned";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, FilteredSearchTest, ::testing::Values(IndexKind::kFlat, IndexKind::kHnsw),
                         [](const auto& info) { return std::string(info.param == IndexKind::kFlat ? "Flat" : "Hnsw"); });

// The index path (more matches than candidates) filters inside the FLAT scan: without
// rerank the hits are exactly the brute-force FDE top k among the matching documents.
TEST(FilteredSearch, FlatIndexPathIsTheFdeTopKAmongMatches) {
  Rng rng(5);
  auto store = NewMemStore();
  const CollectionSpec spec = MultiVectorSpec(IndexKind::kFlat);
  ASSERT_OK_AND_ASSIGN(auto c, Collection::Create(spec, store.get(), false));
  const std::vector<Doc> docs = MakeDocs(rng, 2000);
  ASSERT_OK(Ingest(c.get(), docs));
  ASSERT_OK_AND_ASSIGN(auto encoder, MuveraFdeEncoder::Create(spec.fde));
  const MetadataFilter f = BucketBelow(500);
  for (int t = 0; t < 5; ++t) {
    std::vector<float> q = UnitTokens(rng, 5);
    std::vector<float> qf(encoder->output_dim()), df(encoder->output_dim());
    ASSERT_OK(encoder->EncodeQuery({q.data(), 5, kDim}, qf.data()));
    std::vector<std::pair<double, std::string>> scored;
    for (const Doc& d : docs) {
      if (d.bucket >= 500) continue;
      ASSERT_OK(encoder->EncodeDocument({d.tokens.data(), d.tokens.size() / kDim, kDim}, df.data()));
      double dot = 0;
      for (size_t j = 0; j < qf.size(); ++j) dot += double(qf[j]) * df[j];
      scored.push_back({-dot, d.id});
    }
    std::sort(scored.begin(), scored.end());
    SearchQuery sq{.tokens = q.data(), .num_tokens = 5, .k = 10, .rerank = false, .filter = &f};
    ASSERT_OK_AND_ASSIGN(SearchResult r, c->Search(sq));
    ASSERT_EQ(r.hits.size(), 10u);
    EXPECT_FALSE(r.stats.filter_exhaustive);
    for (size_t i = 0; i < 10; ++i) {
      // Float vs double accumulation may swap near-ties: compare scores, not only ids.
      EXPECT_NEAR(r.hits[i].score, -scored[i].first, 1e-4);
      EXPECT_NEAR(r.hits[i].fde_score, -scored[i].first, 1e-4);
    }
  }
}

TEST(FilteredSearch, UpsertAndDeleteMoveDocumentsInAndOutOfFilters) {
  Rng rng(8);
  auto store = NewMemStore();
  ASSERT_OK_AND_ASSIGN(auto c, Collection::Create(MultiVectorSpec(IndexKind::kHnsw), store.get(), false));
  std::vector<Doc> docs = MakeDocs(rng, 300);
  ASSERT_OK(Ingest(c.get(), docs));
  MetadataFilter odd;
  FilterCondition cond;
  cond.field = FieldCondition{.path = "parity", .kind = FieldCondition::Kind::kEquals,
                              .values = {FilterValue{.kind = FilterValue::Kind::kString, .string_value = "odd"}}};
  odd.must.push_back(cond);
  EXPECT_EQ(c->Count(&odd), 150u);
  // Flip three documents to "odd" by upserting them with new metadata; delete two odd ones.
  std::vector<Doc> flips;
  for (Doc& d : docs) {
    if (flips.size() < 3 && d.meta.find("even") != std::string::npos) {
      d.meta = fmt::format(R"({{"bucket":{},"parity":"odd"}})", d.bucket);
      flips.push_back(d);
    }
  }
  ASSERT_OK(Ingest(c.get(), flips));
  std::vector<std::string> dead;
  for (const Doc& d : docs) {
    if (dead.size() < 2 && d.meta.find("odd") != std::string::npos && d.id != flips[0].id) dead.push_back(d.id);
  }
  ASSERT_OK_AND_ASSIGN(size_t deleted, c->Delete(dead, false));
  EXPECT_EQ(deleted, 2u);
  EXPECT_EQ(c->Count(&odd), 151u);
  EXPECT_EQ(c->Count(nullptr), 298u);
  // The flipped document is found under the filter; the deleted ones never are.
  SearchQuery sq{.tokens = flips[0].tokens.data(), .num_tokens = flips[0].tokens.size() / kDim, .k = 200, .filter = &odd};
  ASSERT_OK_AND_ASSIGN(SearchResult r, c->Search(sq));
  EXPECT_EQ(r.hits.at(0).id, flips[0].id);
  for (const auto& h : r.hits) EXPECT_TRUE(std::find(dead.begin(), dead.end(), h.id) == dead.end());
}

TEST(Scroll, PagesThroughEveryDocumentInIdOrderWithAndWithoutFilter) {
  Rng rng(9);
  auto store = NewMemStore();
  ASSERT_OK_AND_ASSIGN(auto c, Collection::Create(MultiVectorSpec(IndexKind::kFlat), store.get(), false));
  const std::vector<Doc> docs = MakeDocs(rng, 250);
  ASSERT_OK(Ingest(c.get(), docs));
  for (const bool filtered : {false, true}) {
    const MetadataFilter f = BucketBelow(40);
    std::vector<std::string> want;
    for (const Doc& d : docs) {
      if (!filtered || d.bucket < 40) want.push_back(d.id);
    }
    std::sort(want.begin(), want.end());
    std::vector<std::string> got;
    std::string token;
    int pages = 0;
    do {
      ScrollQuery q{.page_token = token, .limit = 7, .filter = filtered ? &f : nullptr, .include_metadata = true};
      ASSERT_OK_AND_ASSIGN(auto page, c->Scroll(q));
      ASSERT_LE(page.documents.size(), 7u);
      for (const auto& d : page.documents) {
        got.push_back(d.id);
        EXPECT_NE(d.metadata_json.find("bucket"), std::string::npos);
      }
      token = page.next_page_token;
      ASSERT_LT(++pages, 100);
    } while (!token.empty());
    EXPECT_EQ(got, want) << (filtered ? "filtered" : "all");
    EXPECT_EQ(pages, static_cast<int>((want.size() + 6) / 7));
  }
  ScrollQuery bad{.page_token = "zz", .limit = 5};
  EXPECT_THAT(c->Scroll(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  ScrollQuery huge{.limit = 5000};
  EXPECT_THAT(c->Scroll(huge), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
  // Vectors come back as stored (what Get returns).
  ScrollQuery with_vectors{.limit = 1, .include_vectors = true};
  ASSERT_OK_AND_ASSIGN(auto first, c->Scroll(with_vectors));
  std::vector<std::string> missing;
  ASSERT_OK_AND_ASSIGN(auto stored, c->Get({first.documents[0].id}, true, &missing));
  EXPECT_EQ(first.documents[0].vectors, stored[0].vectors);
  EXPECT_EQ(first.documents[0].vectors.size(), static_cast<size_t>(first.documents[0].num_tokens) * kDim);
}

CollectionSpec JsonSpec() {
  CollectionSpec s;
  s.name = "records";
  s.id = 2;
  s.kind = CollectionKindDomain::kJson;
  s.fde.dim = 256;
  s.mbat_config_json = R"({"dim":256,"seed":3})";
  return s;
}

TEST(JsonFilters, SearchScrollAndCountHonourTheRecordsFields) {
  auto store = NewMemStore();
  ASSERT_OK_AND_ASSIGN(auto c, JsonCollection::Create(JsonSpec(), store.get()));
  std::vector<std::string> jsons;
  for (int i = 0; i < 120; ++i) {
    jsons.push_back(fmt::format(R"({{"id":"r{:03}","city":"{}","stars":{},"tags":["t{}","all"]}})", i,
                                i % 3 == 0 ? "paris" : "rome", i % 5, i % 4));
  }
  std::vector<JsonRecordInput> in;
  for (const auto& j : jsons) in.push_back({"", j});
  ASSERT_OK(c->Upsert(in, "", false));
  MetadataFilter f;
  FilterCondition city, stars;
  city.field = FieldCondition{.path = "city", .kind = FieldCondition::Kind::kEquals,
                              .values = {FilterValue{.kind = FilterValue::Kind::kString, .string_value = "paris"}}};
  stars.field = FieldCondition{.path = "stars", .kind = FieldCondition::Kind::kRange, .gte = 3};
  f.must = {city, stars};
  // Brute force: i % 3 == 0 and i % 5 >= 3.
  std::vector<std::string> want;
  for (int i = 0; i < 120; ++i) {
    if (i % 3 == 0 && i % 5 >= 3) want.push_back(fmt::format("r{:03}", i));
  }
  EXPECT_EQ(c->Count(&f), want.size());
  EXPECT_EQ(c->Count(nullptr), 120u);
  JsonSearchQuery q{.json = R"({"city":"rome","stars":4})", .k = 100, .filter = &f};
  ASSERT_OK_AND_ASSIGN(auto hits, c->Search(q));
  std::vector<std::string> got;
  for (const auto& h : hits) got.push_back(h.id);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);  // every match (fewer than k), nothing else
  ScrollQuery sq{.limit = 5, .filter = &f, .include_metadata = true};
  std::vector<std::string> scrolled;
  std::string token;
  do {
    sq.page_token = token;
    ASSERT_OK_AND_ASSIGN(auto page, c->Scroll(sq));
    for (const auto& r : page.documents) {
      scrolled.push_back(r.id);
      EXPECT_NE(r.json.find("paris"), std::string::npos);
    }
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_EQ(scrolled, want);
}

// ---- registry: aliases and snapshots ----

class RegistryOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / fmt::format("chamferdb_ops_{}_{}", ::getpid(), counter_++);
    std::filesystem::remove_all(dir_);
    store_ = NewMemStore();
    ASSERT_OK_AND_ASSIGN(registry_, Registry::Open(store_.get(), false));
    snapshots_ = std::make_unique<SnapshotManager>((dir_ / "snapshots").string());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<SnapshotManager> snapshots_;
};

TEST_F(RegistryOpsTest, AliasesSwitchAtomicallyPersistAndGuardDrops) {
  CollectionSpec blue = MultiVectorSpec(IndexKind::kFlat), green = MultiVectorSpec(IndexKind::kFlat);
  blue.name = "blue";
  green.name = "green";
  ASSERT_OK(registry_->Create(blue).status());
  ASSERT_OK(registry_->Create(green).status());
  ASSERT_OK_AND_ASSIGN(std::string prev, registry_->SetAlias("live", "blue"));
  EXPECT_EQ(prev, "");
  ASSERT_OK_AND_ASSIGN(auto via_alias, registry_->Get("live"));
  EXPECT_EQ(via_alias->spec().name, "blue");
  ASSERT_OK_AND_ASSIGN(prev, registry_->SetAlias("live", "green"));
  EXPECT_EQ(prev, "blue");
  ASSERT_OK_AND_ASSIGN(via_alias, registry_->Get("live"));
  EXPECT_EQ(via_alias->spec().name, "green");
  EXPECT_THAT(registry_->Drop("green"), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("\"live\"")));
  ASSERT_OK(registry_->Drop("blue"));  // no alias points at it any more
  EXPECT_THAT(registry_->SetAlias("green", "green"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name of a collection")));
  EXPECT_THAT(registry_->SetAlias("x", "live"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is an alias")));
  EXPECT_THAT(registry_->SetAlias("x", "nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  CollectionSpec clash = MultiVectorSpec(IndexKind::kFlat);
  clash.name = "live";
  EXPECT_THAT(registry_->Create(clash).status(), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("alias")));
  // Persisted: a reopened registry resolves the alias.
  registry_.reset();
  ASSERT_OK_AND_ASSIGN(registry_, Registry::Open(store_.get(), false));
  ASSERT_OK_AND_ASSIGN(via_alias, registry_->Get("live"));
  EXPECT_EQ(via_alias->spec().name, "green");
  ASSERT_OK(registry_->DeleteAlias("live"));
  EXPECT_THAT(registry_->Get("live").status(), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(registry_->DeleteAlias("live"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

// Write, snapshot, write more, restore: the restored collection is exactly the snapshot's
// state (same ids, vectors, metadata, and the same search answers as at snapshot time).
TEST_F(RegistryOpsTest, SnapshotRestoreReproducesThePointInTimeState) {
  Rng rng(21);
  CollectionSpec spec = MultiVectorSpec(IndexKind::kHnsw);
  ASSERT_OK_AND_ASSIGN(auto entry, registry_->Create(spec));
  const std::vector<Doc> docs = MakeDocs(rng, 300);
  ASSERT_OK(Ingest(entry.multi_vector.get(), docs));
  std::vector<float> q = UnitTokens(rng, 4);
  SearchQuery sq{.tokens = q.data(), .num_tokens = 4, .k = 10};
  ASSERT_OK_AND_ASSIGN(SearchResult before, entry.multi_vector->Search(sq));
  std::vector<std::string> ids;
  for (const Doc& d : docs) ids.push_back(d.id);
  std::vector<std::string> missing;
  ASSERT_OK_AND_ASSIGN(auto at_snapshot, entry.multi_vector->Get(ids, true, &missing));
  ASSERT_OK_AND_ASSIGN(SnapshotInfo snap, snapshots_->Create(entry.spec(), *store_));
  EXPECT_EQ(snap.documents, 300u);
  // Later writes: an upsert replacing a document, a delete, a new document.
  std::vector<Doc> later = {docs[0]};
  later[0].tokens = UnitTokens(rng, 3);
  later.push_back(Doc{"zz-new", UnitTokens(rng, 3), 1, "{}"});
  ASSERT_OK(Ingest(entry.multi_vector.get(), later));
  ASSERT_OK(entry.multi_vector->Delete({docs[1].id}, false).status());

  ASSERT_EQ(snapshots_->List("").size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::string path, snapshots_->PathOf(snap.name));
  ASSERT_OK_AND_ASSIGN(auto restored, registry_->Restore(path, "docs-restored"));
  Collection& r = *restored.multi_vector;
  EXPECT_EQ(r.Count(nullptr), 300u);
  ASSERT_OK_AND_ASSIGN(auto got, r.Get(ids, true, &missing));
  ASSERT_TRUE(missing.empty());
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(got[i].vectors, at_snapshot[i].vectors) << docs[i].id;  // bit for bit
    EXPECT_EQ(got[i].metadata_json, docs[i].meta);
  }
  ASSERT_OK_AND_ASSIGN(SearchResult after, r.Search(sq));
  ASSERT_EQ(after.hits.size(), before.hits.size());
  for (size_t i = 0; i < after.hits.size(); ++i) {
    EXPECT_EQ(after.hits[i].id, before.hits[i].id);
    EXPECT_EQ(after.hits[i].score, before.hits[i].score);
  }
  // The source kept its later writes; the restored collection survives a reopen.
  EXPECT_EQ(entry.multi_vector->Count(nullptr), 300u);
  EXPECT_THAT(registry_->Restore(path, "docs-restored").status(), StatusIs(absl::StatusCode::kAlreadyExists, ::testing::_));
  registry_.reset();
  ASSERT_OK_AND_ASSIGN(registry_, Registry::Open(store_.get(), false));
  ASSERT_OK_AND_ASSIGN(auto reopened, registry_->Get("docs-restored"));
  EXPECT_EQ(reopened->Count(nullptr), 300u);
  EXPECT_EQ(reopened->spec().restored_from, snap.uuid);
  ASSERT_OK(snapshots_->Delete(snap.name));
  EXPECT_TRUE(snapshots_->List("").empty());
  EXPECT_THAT(snapshots_->Delete(snap.name), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(RegistryOpsTest, DamagedSnapshotsAreRefusedNamingTheFileAndLeaveNoTrace) {
  Rng rng(22);
  CollectionSpec spec = MultiVectorSpec(IndexKind::kFlat);
  ASSERT_OK_AND_ASSIGN(auto entry, registry_->Create(spec));
  ASSERT_OK(Ingest(entry.multi_vector.get(), MakeDocs(rng, 50)));
  ASSERT_OK_AND_ASSIGN(SnapshotInfo snap, snapshots_->Create(entry.spec(), *store_));
  const std::string data = snap.path + "/data.cdbsnap";
  const auto size = std::filesystem::file_size(data);
  auto flip = [&](uint64_t offset) {
    std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char b;
    f.read(&b, 1);
    b ^= 0x10;
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&b, 1);
  };
  for (uint64_t offset : {uint64_t{3}, size / 2, size - 2}) {
    flip(offset);
    EXPECT_THAT(registry_->Restore(snap.path, "bad").status(),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("data.cdbsnap")));
    flip(offset);  // repair
  }
  std::filesystem::resize_file(data, size - 10);
  EXPECT_THAT(registry_->Restore(snap.path, "bad").status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  // Nothing of the failed restores is left: no collection, no documents beyond the source's.
  EXPECT_THAT(registry_->Get("bad").status(), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  size_t doc_keys = 0;
  ASSERT_OK(store_->Scan("D/", "", [&](std::string_view, std::string_view) { return ++doc_keys, true; }));
  EXPECT_EQ(doc_keys, 50u);
  // A damaged manifest is refused too.
  {
    std::fstream f(snap.path + "/manifest.json", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.write("#", 1);
  }
  EXPECT_THAT(registry_->Restore(snap.path, "bad").status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("manifest.json")));
}

// A restore interrupted part way (crash) leaves staged documents under a marker; the next
// open removes them and the collection never appears.
TEST_F(RegistryOpsTest, UnfinishedRestoreIsClearedAtOpen) {
  WriteBatch staged;
  std::string marker = "R/";
  for (int i = 0; i < 7; ++i) marker.push_back('\0');
  marker.push_back('\x09');
  staged.Put(marker, "ghost");
  staged.Put(Collection::EncoderKey(9), "x");
  staged.Put(Collection::DocPrefix(9) + "a", "y");
  ASSERT_OK(store_->Write(staged, false));
  registry_.reset();
  ASSERT_OK_AND_ASSIGN(registry_, Registry::Open(store_.get(), false));
  size_t keys = 0;
  for (const char* p : {"R/", "D/", "E/"}) {
    ASSERT_OK(store_->Scan(p, "", [&](std::string_view, std::string_view) { return ++keys, true; }));
  }
  EXPECT_EQ(keys, 0u);
}

}  // namespace
}  // namespace chamferdb
