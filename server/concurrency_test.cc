// Concurrency tests of the data plane: writers, readers and administrative calls running at
// once on one Collection / JsonCollection / Registry over a real RocksDB store. These are
// the tests the ThreadSanitizer job runs (scripts/sanitize.sh --tsan and its CI form); in
// ordinary builds they check the same end-state properties.
//
// Oracle: every writer thread owns a disjoint set of ids and remembers the last acknowledged
// write of each one. A document's content is a pure function of (id, version), and the
// version is in its metadata, so a reader can tell a torn document (vectors of one write,
// metadata of another) from a consistent one at any moment. At the end the collection must
// hold exactly the last acknowledged state of every id — through Get, Scroll, Count, Stats,
// an exhaustive search checked against brute-force Chamfer, and again after reopening the
// store.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "kernels/chamfer/chamfer.h"
#include "server/collection.h"
#include "server/json_collection.h"
#include "server/registry.h"
#include "server/test_tokens.h"
#include "storage/store.h"

namespace chamferdb {
namespace {

constexpr uint32_t kDim = 16;
constexpr int kWriters = 3;
constexpr int kIdsPerWriter = 40;
constexpr int kOpsPerWriter = 150;

std::string TempPath(const std::string& name) {
  const std::string path = ::testing::TempDir() + "/chamferdb_concurrency_" + name + "_" +
                           std::to_string(::getpid());
  std::filesystem::remove_all(path);
  return path;
}

// The content of document `id` at `version`: 1..12 unit tokens, a pure function of both.
std::vector<float> Tokens(const std::string& id, int version) {
  Rng rng(std::hash<std::string>{}(id) * 7919 + static_cast<uint64_t>(version));
  const size_t n = 1 + rng.UniformInt(12);
  return RandomUnitTokens(rng, n, kDim);
}

std::string Id(int writer, int i) { return "w" + std::to_string(writer) + "-" + std::to_string(i); }

std::string Meta(int writer, int version) {
  return nlohmann::json{{"writer", writer}, {"v", version}, {"even", version % 2 == 0}}.dump();
}

// True if `doc` is exactly what some write of its id stored: the vectors of the version its
// metadata names (within the rounding of normalization).
::testing::AssertionResult Consistent(const StoredDocument& doc) {
  const auto meta = nlohmann::json::parse(doc.metadata_json, nullptr, false);
  if (meta.is_discarded() || !meta.contains("v")) return ::testing::AssertionFailure() << doc.id << " metadata " << doc.metadata_json;
  const auto expect = Tokens(doc.id, meta["v"].get<int>());
  if (doc.num_tokens * kDim != expect.size() || doc.vectors.size() != expect.size()) {
    return ::testing::AssertionFailure() << doc.id << ": " << doc.num_tokens << " tokens, version "
                                         << meta["v"] << " has " << expect.size() / kDim;
  }
  for (size_t i = 0; i < expect.size(); ++i) {
    if (std::fabs(doc.vectors[i] - expect[i]) > 1e-5f) {
      return ::testing::AssertionFailure() << doc.id << ": vectors are not those of version " << meta["v"];
    }
  }
  return ::testing::AssertionSuccess();
}

CollectionSpec MultiVectorSpec(IndexKind kind) {
  CollectionSpec s;
  s.name = "c";
  s.id = 7;
  s.fde = {.dim = kDim, .r_reps = 8, .k_sim = 3, .d_proj = 8, .d_final = 0, .seed = 5};
  s.index.kind = kind;
  if (kind == IndexKind::kIvfPq) {
    // Small enough that the index trains in the middle of the run, under concurrent writes.
    s.index.ivf_nlist = 4;
    s.index.pq_m = 8;
    s.index.pq_nbits = 4;
    s.index.ivf_train_threshold = 64;
  }
  return s;
}

class CollectionConcurrencyTest : public ::testing::TestWithParam<IndexKind> {};

TEST_P(CollectionConcurrencyTest, WritersAndReadersEndInTheLastAcknowledgedState) {
  const std::string path = TempPath("collection_" + std::to_string(static_cast<int>(GetParam())));
  ASSERT_OK_AND_ASSIGN(auto store, OpenRocksStore(path));
  const CollectionSpec spec = MultiVectorSpec(GetParam());
  ASSERT_OK_AND_ASSIGN(auto created, Collection::Create(spec, store.get(), false));
  std::shared_ptr<Collection> c = std::move(created);

  // last[w][i]: the version of the last acknowledged write of Id(w, i), or nullopt if its
  // last acknowledged operation was a delete (or it was never written).
  std::vector<std::vector<std::optional<int>>> last(kWriters, std::vector<std::optional<int>>(kIdsPerWriter));
  std::atomic<int> writers_done{0};
  std::atomic<int> reader_checks{0};
  std::vector<std::string> failures[kWriters + 2];

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Rng rng(100 + w);
      int version = 0;
      for (int op = 0; op < kOpsPerWriter; ++op) {
        const size_t batch = 1 + rng.UniformInt(6);
        std::vector<int> picks;
        for (size_t b = 0; b < batch; ++b) {
          const int i = static_cast<int>(rng.UniformInt(kIdsPerWriter));
          if (std::find(picks.begin(), picks.end(), i) == picks.end()) picks.push_back(i);
        }
        if (rng.UniformInt(5) == 0) {
          std::vector<std::string> ids;
          for (int i : picks) ids.push_back(Id(w, i));
          auto deleted = c->Delete(ids, false);
          if (!deleted.ok()) {
            failures[w].push_back("delete: " + deleted.status().ToString());
            continue;
          }
          for (int i : picks) last[w][i].reset();
          continue;
        }
        std::vector<std::string> ids, bytes, metas;
        std::vector<int> versions;
        for (int i : picks) {
          ids.push_back(Id(w, i));
          versions.push_back(++version);
          const auto t = Tokens(ids.back(), version);
          bytes.emplace_back(reinterpret_cast<const char*>(t.data()), t.size() * sizeof(float));
          metas.push_back(Meta(w, version));
        }
        std::vector<DocumentInput> docs;
        for (size_t k = 0; k < ids.size(); ++k) {
          docs.push_back({ids[k], static_cast<uint32_t>(bytes[k].size() / (kDim * sizeof(float))), bytes[k], metas[k]});
        }
        const absl::Status s = c->Upsert(docs, false);
        if (!s.ok()) {
          failures[w].push_back("upsert: " + s.ToString());
          continue;
        }
        for (size_t k = 0; k < picks.size(); ++k) last[w][picks[k]] = versions[k];
      }
      writers_done.fetch_add(1);
    });
  }
  // Readers: every document any read returns is consistent, results are well-formed.
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto& fail = failures[kWriters + r];
      Rng rng(900 + r);
      MetadataFilter even;
      FilterValue yes;
      yes.kind = FilterValue::Kind::kBool;
      yes.bool_value = true;
      FieldCondition field;
      field.path = "even";
      field.values = {yes};
      even.must.push_back(FilterCondition{.field = field, .nested = nullptr});
      while (writers_done.load() < kWriters) {
        const auto q = Tokens("query", static_cast<int>(rng.UniformInt(1000)));
        SearchQuery sq{.tokens = q.data(), .num_tokens = q.size() / kDim, .k = 10, .candidates = 40,
                       .include_metadata = true};
        if (r == 1) sq.filter = &even;
        auto res = c->Search(sq);
        if (!res.ok()) {
          fail.push_back("search: " + res.status().ToString());
          continue;
        }
        std::vector<std::string> ids;
        for (size_t h = 0; h < res->hits.size(); ++h) {
          if (h > 0 && res->hits[h].score > res->hits[h - 1].score) fail.push_back("search hits out of order");
          if (std::find(ids.begin(), ids.end(), res->hits[h].id) != ids.end()) fail.push_back("duplicate hit " + res->hits[h].id);
          ids.push_back(res->hits[h].id);
          if (r == 1 && res->hits[h].metadata_json.find("\"even\":true") == std::string::npos) {
            fail.push_back("filtered hit " + res->hits[h].id + " does not match: " + res->hits[h].metadata_json);
          }
        }
        std::vector<std::string> missing;
        auto got = c->Get(ids, true, &missing);
        if (!got.ok()) {
          fail.push_back("get: " + got.status().ToString());
          continue;
        }
        for (const auto& d : *got) {
          if (auto a = Consistent(d); !a) fail.push_back(a.message());
        }
        ScrollQuery scroll;
        scroll.limit = 25;
        scroll.include_vectors = true;
        scroll.include_metadata = true;
        auto page = c->Scroll(scroll);
        if (!page.ok()) {
          fail.push_back("scroll: " + page.status().ToString());
          continue;
        }
        for (size_t i = 0; i < page->documents.size(); ++i) {
          if (i > 0 && !(page->documents[i - 1].id < page->documents[i].id)) fail.push_back("scroll out of order");
          if (auto a = Consistent(page->documents[i]); !a) fail.push_back(a.message());
        }
        const size_t n = c->Count(nullptr);
        if (n > kWriters * kIdsPerWriter) fail.push_back("count " + std::to_string(n));
        reader_checks.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) {
    for (size_t i = 0; i < std::min<size_t>(f.size(), 5); ++i) ADD_FAILURE() << f[i];
  }
  EXPECT_GT(reader_checks.load(), 0);

  // The final state, through every read path, then again after reopening the store.
  auto check_final = [&](const Collection& coll, const std::string& when) {
    SCOPED_TRACE(when);
    std::vector<std::string> live;
    std::map<std::string, int> version_of;
    for (int w = 0; w < kWriters; ++w) {
      for (int i = 0; i < kIdsPerWriter; ++i) {
        if (last[w][i]) {
          live.push_back(Id(w, i));
          version_of[Id(w, i)] = *last[w][i];
        }
      }
    }
    std::sort(live.begin(), live.end());
    EXPECT_EQ(coll.Count(nullptr), live.size());
    EXPECT_EQ(coll.Stats().documents, live.size());
    std::vector<std::string> all;
    for (int w = 0; w < kWriters; ++w) {
      for (int i = 0; i < kIdsPerWriter; ++i) all.push_back(Id(w, i));
    }
    std::vector<std::string> missing;
    ASSERT_OK_AND_ASSIGN(auto got, coll.Get(all, true, &missing));
    ASSERT_EQ(got.size(), live.size());
    for (const auto& d : got) {
      EXPECT_TRUE(Consistent(d));
      EXPECT_EQ(nlohmann::json::parse(d.metadata_json)["v"].get<int>(), version_of[d.id]) << d.id;
    }
    // Scroll: exactly the live ids, in order.
    std::vector<std::string> scrolled;
    std::string token;
    do {
      ScrollQuery q{.page_token = token, .limit = 17};
      ASSERT_OK_AND_ASSIGN(auto page, coll.Scroll(q));
      for (const auto& d : page.documents) scrolled.push_back(d.id);
      token = page.next_page_token;
    } while (!token.empty());
    EXPECT_EQ(scrolled, live);
    // An exhaustive search equals brute-force Chamfer over the expected final documents.
    const auto q = Tokens("final-query", 1);
    const size_t nq = q.size() / kDim;
    std::vector<std::pair<double, std::string>> exact;
    for (const auto& id : live) {
      const auto t = Tokens(id, version_of[id]);
      exact.push_back({-ChamferReference(q.data(), nq, t.data(), t.size() / kDim, kDim), id});
    }
    std::sort(exact.begin(), exact.end());
    ASSERT_OK_AND_ASSIGN(auto res, coll.Search({.tokens = q.data(), .num_tokens = nq, .k = 10,
                                                .candidates = kWriters * kIdsPerWriter}));
    ASSERT_EQ(res.hits.size(), std::min<size_t>(10, live.size()));
    for (size_t h = 0; h < res.hits.size(); ++h) {
      EXPECT_EQ(res.hits[h].id, exact[h].second) << h;
      EXPECT_NEAR(res.hits[h].score, -exact[h].first, 1e-4);
    }
  };
  check_final(*c, "live");
  c.reset();
  ASSERT_OK_AND_ASSIGN(auto reopened, Collection::Open(spec, store.get()));
  check_final(*reopened, "reopened");
  reopened.reset();
  store.reset();
  std::filesystem::remove_all(path);
}

INSTANTIATE_TEST_SUITE_P(Indexes, CollectionConcurrencyTest,
                         ::testing::Values(IndexKind::kFlat, IndexKind::kHnsw, IndexKind::kIvfPq),
                         [](const auto& info) {
                           return std::string(info.param == IndexKind::kFlat   ? "Flat"
                                              : info.param == IndexKind::kHnsw ? "Hnsw"
                                                                               : "IvfPq");
                         });

// Collections created and dropped, aliases flipped, while other threads resolve the alias
// and search through it: every resolution names a collection that exists with its own
// documents, and the registry ends with exactly the expected collections and aliases, also
// after reopening.
TEST(RegistryConcurrencyTest, CreateDropAndAliasFlipsUnderReaders) {
  const std::string path = TempPath("registry");
  ASSERT_OK_AND_ASSIGN(auto store, OpenRocksStore(path));
  ASSERT_OK_AND_ASSIGN(auto registry, Registry::Open(store.get(), false));
  // Two targets with different contents: "blue" holds b-*, "green" holds g-*.
  for (const char* name : {"blue", "green"}) {
    CollectionSpec s = MultiVectorSpec(IndexKind::kFlat);
    s.name = name;
    ASSERT_OK_AND_ASSIGN(auto entry, registry->Create(s));
    std::vector<std::string> ids, bytes;
    for (int i = 0; i < 20; ++i) {
      ids.push_back(std::string(1, name[0]) + "-" + std::to_string(i));
      const auto t = Tokens(ids.back(), 1);
      bytes.emplace_back(reinterpret_cast<const char*>(t.data()), t.size() * sizeof(float));
    }
    std::vector<DocumentInput> docs;
    for (int i = 0; i < 20; ++i) docs.push_back({ids[i], static_cast<uint32_t>(bytes[i].size() / (kDim * 4)), bytes[i], ""});
    ASSERT_OK(entry.multi_vector->Upsert(docs, false));
  }
  ASSERT_OK(registry->SetAlias("live", "blue").status());

  std::atomic<bool> stop{false};
  std::vector<std::string> failures[4];
  // Flipper: 30 alias switches.
  std::thread flipper([&] {
    for (int i = 0; i < 30; ++i) {
      auto s = registry->SetAlias("live", i % 2 == 0 ? "green" : "blue");
      if (!s.ok()) failures[0].push_back("alias: " + s.status().ToString());
    }
  });
  // Creator/dropper: its own collections appear and disappear.
  std::thread creator([&] {
    for (int i = 0; i < 12; ++i) {
      CollectionSpec s = MultiVectorSpec(i % 2 ? IndexKind::kHnsw : IndexKind::kFlat);
      s.name = "tmp" + std::to_string(i);
      auto e = registry->Create(s);
      if (!e.ok()) {
        failures[1].push_back("create: " + e.status().ToString());
        continue;
      }
      if (i % 3 != 0) {
        auto d = registry->Drop(s.name);
        if (!d.ok()) failures[1].push_back("drop: " + d.ToString());
      }
    }
  });
  // Readers through the alias: each search sees one collection's documents only.
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      const auto q = Tokens("q", r);
      while (!stop.load()) {
        auto coll = registry->Get("live");
        if (!coll.ok()) {
          failures[2 + r].push_back("resolve: " + coll.status().ToString());
          continue;
        }
        auto res = (*coll)->Search({.tokens = q.data(), .num_tokens = q.size() / kDim, .k = 20, .candidates = 20});
        if (!res.ok()) {
          failures[2 + r].push_back("search: " + res.status().ToString());
          continue;
        }
        if (res->hits.size() != 20) failures[2 + r].push_back("hits " + std::to_string(res->hits.size()));
        for (const auto& h : res->hits) {
          if (h.id[0] != res->hits[0].id[0]) failures[2 + r].push_back("mixed collections: " + h.id);
        }
        (void)registry->List();
      }
    });
  }
  flipper.join();
  creator.join();
  stop.store(true);
  for (auto& t : readers) t.join();
  for (const auto& f : failures) {
    for (size_t i = 0; i < std::min<size_t>(f.size(), 5); ++i) ADD_FAILURE() << f[i];
  }

  auto check = [](const Registry& reg) {
    std::vector<std::string> names;
    for (const auto& e : reg.List()) names.push_back(e.spec().name);
    EXPECT_EQ(names, (std::vector<std::string>{"blue", "green", "tmp0", "tmp3", "tmp6", "tmp9"}));
    // 30 flips starting from blue, the last (i = 29) to blue.
    EXPECT_EQ(reg.ListAliases(""), (std::vector<std::pair<std::string, std::string>>{{"live", "blue"}}));
  };
  check(*registry);
  registry.reset();
  ASSERT_OK_AND_ASSIGN(registry, Registry::Open(store.get(), false));
  check(*registry);
  registry.reset();
  store.reset();
  std::filesystem::remove_all(path);
}

// JSON records: concurrent upserts/deletes of disjoint ids and searches; the end state is the
// last acknowledged write of every id.
TEST(JsonCollectionConcurrencyTest, WritersAndReadersEndInTheLastAcknowledgedState) {
  const std::string path = TempPath("json");
  ASSERT_OK_AND_ASSIGN(auto store, OpenRocksStore(path));
  ASSERT_OK_AND_ASSIGN(auto registry, Registry::Open(store.get(), false));
  CollectionSpec s;
  s.name = "records";
  s.kind = CollectionKindDomain::kJson;
  s.fde.dim = 256;
  ASSERT_OK_AND_ASSIGN(auto entry, registry->Create(s));
  std::shared_ptr<JsonCollection> c = entry.json;
  ASSERT_NE(c, nullptr);

  std::vector<std::map<std::string, std::optional<int>>> last(kWriters);
  std::atomic<int> done{0};
  std::vector<std::string> failures[kWriters + 1];
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Rng rng(300 + w);
      for (int op = 0; op < 100; ++op) {
        const std::string id = Id(w, static_cast<int>(rng.UniformInt(20)));
        if (rng.UniformInt(4) == 0) {
          auto d = c->Delete({id}, false);
          if (!d.ok()) failures[w].push_back(d.status().ToString());
          else last[w][id].reset();
          continue;
        }
        const std::string text =
            nlohmann::json{{"id", id}, {"writer", w}, {"v", op}, {"tag", "t" + std::to_string(op % 7)}}.dump();
        const absl::Status st = c->Upsert({JsonRecordInput{.id = "", .json = text}}, "", false);
        if (!st.ok()) failures[w].push_back(st.ToString());
        else last[w][id] = op;
      }
      done.fetch_add(1);
    });
  }
  threads.emplace_back([&] {
    while (done.load() < kWriters) {
      JsonSearchQuery q;
      q.json = R"({"tag":"t3"})";
      q.k = 5;
      auto res = c->Search(q);
      if (!res.ok()) failures[kWriters].push_back(res.status().ToString());
      (void)c->Count(nullptr);
    }
  });
  for (auto& t : threads) t.join();
  for (const auto& f : failures) {
    for (size_t i = 0; i < std::min<size_t>(f.size(), 5); ++i) ADD_FAILURE() << f[i];
  }
  std::vector<std::string> ids;
  std::map<std::string, int> version_of;
  for (int w = 0; w < kWriters; ++w) {
    for (const auto& [id, v] : last[w]) {
      ids.push_back(id);
      if (v) version_of[id] = *v;
    }
  }
  std::vector<std::string> missing;
  ASSERT_OK_AND_ASSIGN(auto got, c->Get(ids, &missing));
  EXPECT_EQ(got.size(), version_of.size());
  EXPECT_EQ(c->Count(nullptr), version_of.size());
  for (const auto& r : got) {
    EXPECT_EQ(nlohmann::json::parse(r.json)["v"].get<int>(), version_of[r.id]) << r.id;
  }
  c.reset();
  entry = {};
  registry.reset();
  store.reset();
  std::filesystem::remove_all(path);
}

}  // namespace
}  // namespace chamferdb
