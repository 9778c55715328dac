// Concurrent upserts of the same ids from two threads (the bulk-load shape of the ingest
// benchmark, where encoding runs outside the collection lock and the commit inside it): the
// end state must equal some serial order of the acknowledged batches, in memory (Get, Count,
// Search) and in RocksDB (a reopened collection rebuilt from storage), and a rejected batch
// must leave no trace.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
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

TEST_P(ConcurrentUpserts, OverlappingBatchesEndInASerialOrderInMemoryAndInStorage) {
  const auto [kind, storage] = GetParam();
  const std::string dir = ::testing::TempDir() + "/chamferdb_concurrency_" + std::to_string(::getpid()) + "_" +
                          std::to_string(static_cast<int>(kind)) + std::to_string(static_cast<int>(storage));
  std::filesystem::remove_all(dir);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksStore(dir));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Collection> c, Collection::Create(Spec(kind, storage), store.get(), false));

  // Each batch writes every id, so atomic batches leave all ids from the same (thread, round).
  // Every 7th round a thread also sends a batch with one NaN coordinate, which must be
  // rejected as a whole (its writer tag "t-bad" must never appear).
  std::atomic<int> failures{0};
  auto writer = [&](int thread) {
    for (int round = 0; round < kRounds; ++round) {
      const bool bad = round % 7 == 3;
      std::vector<std::string> ids, vectors;
      std::vector<DocumentInput> docs;
      const std::string meta = bad ? fmt::format("{{\"w\":\"{}-bad\"}}", thread) : Writer(thread, round);
      for (int id = 0; id < kIds; ++id) {
        ids.push_back("id" + std::to_string((id * 7 + round) % kIds));  // a different order each round
        auto t = Tokens(thread, round, (id * 7 + round) % kIds);
        if (bad && id == kIds / 2) t[3] = std::nanf("");
        vectors.push_back(Bytes(t));
      }
      for (int id = 0; id < kIds; ++id) docs.push_back({ids[id], kTokens, vectors[id], meta});
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
  auto check = [&](const Collection& col, const char* what, std::string* writer_out) {
    SCOPED_TRACE(what);
    std::vector<std::string> missing;
    ASSERT_OK_AND_ASSIGN(std::vector<StoredDocument> got, col.Get(all, true, &missing));
    ASSERT_TRUE(missing.empty());
    ASSERT_EQ(got.size(), static_cast<size_t>(kIds));
    EXPECT_EQ(col.Count(nullptr), static_cast<size_t>(kIds));
    // One writer for every id, and it is one of the two threads' last batches.
    const std::string w = got[0].metadata_json;
    EXPECT_TRUE(w == Writer(0, kRounds - 1) || w == Writer(1, kRounds - 1)) << w;
    const int thread = w == Writer(0, kRounds - 1) ? 0 : 1;
    *writer_out = w;
    for (int id = 0; id < kIds; ++id) {
      EXPECT_EQ(got[id].metadata_json, w) << all[id];
      // The stored tokens are that writer's (normalized; int8 within its rounding).
      auto expect = Tokens(thread, kRounds - 1, id);
      for (uint32_t t = 0; t < kTokens; ++t) {
        double norm = 0;
        for (uint32_t j = 0; j < kDim; ++j) norm += double(expect[t * kDim + j]) * expect[t * kDim + j];
        for (uint32_t j = 0; j < kDim; ++j) {
          EXPECT_NEAR(got[id].vectors[t * kDim + j], expect[t * kDim + j] / std::sqrt(norm), 0.01)
              << all[id] << " token " << t;
        }
      }
      // The index and the packed tokens hold that version only: searching with its tokens
      // finds the document first, with the self-Chamfer score (= number of tokens).
      SearchQuery q;
      q.tokens = got[id].vectors.data();
      q.num_tokens = kTokens;
      q.k = 3;
      q.candidates = kIds;
      ASSERT_OK_AND_ASSIGN(SearchResult r, col.Search(q));
      ASSERT_FALSE(r.hits.empty());
      EXPECT_EQ(r.hits[0].id, all[id]);
      EXPECT_NEAR(r.hits[0].score, static_cast<float>(kTokens), 0.05);
    }
  };
  std::string in_memory, in_storage;
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
