// Concurrent upserts of overlapping ids from two threads (the bulk-load shape of the ingest
// benchmark, where encoding runs outside the collection lock and the commit inside it): the
// end state must equal some serial order of the acknowledged batches, in memory (Get, Count,
// Search) and in RocksDB (a reopened collection rebuilt from storage), and a rejected batch
// must leave no trace. Race detection is probabilistic (30 rounds per thread).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>

#include <unistd.h>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "server/collection.h"
#include "storage/store.h"

namespace chamferdb {
namespace {

constexpr uint32_t kDim = 16;
constexpr uint32_t kTokens = 4;
constexpr int kIds = 24;
constexpr int kRounds = 30;

// Tokens of document `id` as written by (thread, round): deterministic, distinct per writer.
std::vector<float> Tokens(int thread, int round, int id) {
  Rng rng(1000003ull * static_cast<uint64_t>(thread + 1) + 1009ull * static_cast<uint64_t>(round) + static_cast<uint64_t>(id));
  std::vector<float> v(kTokens * kDim);
  for (float& x : v) x = static_cast<float>(rng.Normal());
  return v;
}

std::string Bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

std::string Writer(int thread, int round) { return fmt::format("{{\"w\":\"{}-{}\"}}", thread, round); }

CollectionSpec Spec(IndexKind kind, TokenStorage storage) {
  CollectionSpec s;
  s.name = "c";
  s.id = 7;
  s.fde = {.dim = kDim, .r_reps = 8, .k_sim = 3, .d_proj = 8, .d_final = 0, .seed = 5};
  s.index.kind = kind;
  s.token_storage = storage;
  return s;
}

class ConcurrentUpserts : public ::testing::TestWithParam<std::tuple<IndexKind, TokenStorage>> {};

// The ids batch (thread, round) writes: a pseudo-random half of them, in a shuffled order.
std::vector<int> BatchIds(int thread, int round) {
  Rng rng(77 + 131ull * static_cast<uint64_t>(thread) + 7919ull * static_cast<uint64_t>(round));
  std::vector<int> ids(kIds);
  for (int i = 0; i < kIds; ++i) ids[i] = i;
  for (int i = kIds - 1; i > 0; --i) std::swap(ids[i], ids[rng.UniformInt(static_cast<uint64_t>(i) + 1)]);
  ids.resize(kIds / 2);
  return ids;
}

bool Writes(int thread, int round, int id) {
  const auto ids = BatchIds(thread, round);
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool Bad(int round) { return round % 7 == 3; }  // batches with a NaN, rejected whole

// Whether some serial order of the acknowledged batches, each thread's in program order, ends
// in `writer[id]` = (thread, round) of the batch whose version id holds: every id's writer
// must be the last batch of its thread that wrote the id, placed after the other thread's
// last batch that wrote it; the resulting "before" constraints plus program order must be
// acyclic (Kahn's algorithm over the 2 × kRounds batches).
bool SerialOrderExists(const std::vector<std::pair<int, int>>& writer, std::string* why) {
  auto node = [](int t, int r) { return t * kRounds + r; };
  std::vector<std::vector<int>> next(2 * kRounds);
  for (int t = 0; t < 2; ++t)
    for (int r = 0; r + 1 < kRounds; ++r) next[node(t, r)].push_back(node(t, r + 1));
  for (int id = 0; id < kIds; ++id) {
    const auto [t, r] = writer[id];
    for (int later = r + 1; later < kRounds; ++later) {
      if (!Bad(later) && Writes(t, later, id)) {
        *why = fmt::format("id{} holds ({}, {}) but ({}, {}) overwrote it later", id, t, r, t, later);
        return false;
      }
    }
    for (int r2 = kRounds - 1; r2 >= 0; --r2) {
      if (!Bad(r2) && Writes(1 - t, r2, id)) {
        next[node(1 - t, r2)].push_back(node(t, r));
        break;
      }
    }
  }
  std::vector<int> indegree(2 * kRounds, 0);
  for (const auto& edges : next)
    for (int v : edges) ++indegree[v];
  std::vector<int> ready;
  for (int v = 0; v < 2 * kRounds; ++v)
    if (indegree[v] == 0) ready.push_back(v);
  int seen = 0;
  while (!ready.empty()) {
    const int v = ready.back();
    ready.pop_back();
    ++seen;
    for (int w : next[v])
      if (--indegree[w] == 0) ready.push_back(w);
  }
  if (seen != 2 * kRounds) *why = "the batches' order constraints form a cycle (a batch was applied partly)";
  return seen == 2 * kRounds;
}

TEST_P(ConcurrentUpserts, OverlappingBatchesEndInASerialOrderInMemoryAndInStorage) {
  const auto [kind, storage] = GetParam();
  const std::string dir = ::testing::TempDir() + "/chamferdb_concurrency_" + std::to_string(::getpid()) + "_" +
                          std::to_string(static_cast<int>(kind)) + std::to_string(static_cast<int>(storage));
  std::filesystem::remove_all(dir);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksStore(dir));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Collection> c, Collection::Create(Spec(kind, storage), store.get(), false));
  // Round 0 of thread 0 alone first writes every id, so every id exists at the end.
  {
    std::vector<std::string> ids, vectors;
    for (int id = 0; id < kIds; ++id) {
      ids.push_back("id" + std::to_string(id));
      vectors.push_back(Bytes(Tokens(9, 0, id)));
    }
    std::vector<DocumentInput> docs;
    const std::string meta = Writer(9, 0);
    for (int id = 0; id < kIds; ++id) docs.push_back({ids[id], kTokens, vectors[id], meta});
    ASSERT_OK(c->Upsert(docs, false));
  }

  std::atomic<int> failures{0};
  auto writer = [&](int thread) {
    for (int round = 0; round < kRounds; ++round) {
      const bool bad = Bad(round);
      const std::vector<int> batch = BatchIds(thread, round);
      std::vector<std::string> ids, vectors;
      const std::string meta = bad ? fmt::format("{{\"w\":\"{}-bad\"}}", thread) : Writer(thread, round);
      for (size_t i = 0; i < batch.size(); ++i) {
        ids.push_back("id" + std::to_string(batch[i]));
        auto t = Tokens(thread, round, batch[i]);
        if (bad && i == batch.size() / 2) t[3] = std::nanf("");
        vectors.push_back(Bytes(t));
      }
      std::vector<DocumentInput> docs;
      for (size_t i = 0; i < batch.size(); ++i) docs.push_back({ids[i], kTokens, vectors[i], meta});
      const absl::Status s = c->Upsert(docs, false);
      if (s.ok() == bad) failures.fetch_add(1);
    }
  };
  std::thread a(writer, 0), b(writer, 1);
  a.join();
  b.join();
  ASSERT_EQ(failures.load(), 0);

  std::vector<std::string> all;
  for (int id = 0; id < kIds; ++id) all.push_back("id" + std::to_string(id));
  auto check = [&](const Collection& col, const char* what, std::vector<std::string>* writers_out) {
    SCOPED_TRACE(what);
    std::vector<std::string> missing;
    ASSERT_OK_AND_ASSIGN(std::vector<StoredDocument> got, col.Get(all, true, &missing));
    ASSERT_TRUE(missing.empty());
    ASSERT_EQ(got.size(), static_cast<size_t>(kIds));
    EXPECT_EQ(col.Count(nullptr), static_cast<size_t>(kIds));
    std::vector<std::pair<int, int>> writer(kIds);
    for (int id = 0; id < kIds; ++id) {
      int t = -1, r = -1;
      ASSERT_EQ(std::sscanf(got[id].metadata_json.c_str(), "{\"w\":\"%d-%d\"}", &t, &r), 2) << got[id].metadata_json;
      ASSERT_TRUE((t == 0 || t == 1) && r >= 0 && r < kRounds && !Bad(r) && Writes(t, r, id)) << got[id].metadata_json;
      writer[id] = {t, r};
      writers_out->push_back(got[id].metadata_json);
      // The stored tokens are that writer's (normalized; int8 within its rounding).
      auto expect = Tokens(t, r, id);
      for (uint32_t k = 0; k < kTokens; ++k) {
        double norm = 0;
        for (uint32_t j = 0; j < kDim; ++j) norm += double(expect[k * kDim + j]) * expect[k * kDim + j];
        for (uint32_t j = 0; j < kDim; ++j) {
          EXPECT_NEAR(got[id].vectors[k * kDim + j], expect[k * kDim + j] / std::sqrt(norm), 0.01)
              << all[id] << " token " << k;
        }
      }
      // The index and the packed tokens hold that version only: searching with its tokens
      // finds the document first, with the self-Chamfer score (= number of tokens).
      SearchQuery q;
      q.tokens = got[id].vectors.data();
      q.num_tokens = kTokens;
      q.k = 3;
      q.candidates = kIds;
      ASSERT_OK_AND_ASSIGN(SearchResult res, col.Search(q));
      ASSERT_FALSE(res.hits.empty());
      EXPECT_EQ(res.hits[0].id, all[id]);
      EXPECT_NEAR(res.hits[0].score, static_cast<float>(kTokens), 0.05);
    }
    std::string why;
    EXPECT_TRUE(SerialOrderExists(writer, &why)) << why;
  };
  std::vector<std::string> in_memory, in_storage;
  check(*c, "in memory", &in_memory);
  // Storage agrees: a collection rebuilt from RocksDB shows the same state.
  const CollectionSpec spec = c->spec();
  c.reset();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Collection> reopened, Collection::Open(spec, store.get()));
  check(*reopened, "reopened from RocksDB", &in_storage);
  EXPECT_EQ(in_memory, in_storage);
  reopened.reset();
  store.reset();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Kinds, ConcurrentUpserts,
                         ::testing::Values(std::make_tuple(IndexKind::kFlat, TokenStorage::kFloat32),
                                           std::make_tuple(IndexKind::kFlat, TokenStorage::kInt8),
                                           std::make_tuple(IndexKind::kHnsw, TokenStorage::kInt8)));

}  // namespace
}  // namespace chamferdb
