#include "cli/checkpoint.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

std::string TempPath() {
  char name[] = "/tmp/checkpoint_test_XXXXXX";
  const int fd = mkstemp(name);
  close(fd);
  std::remove(name);
  return name;
}

TEST(RangeSet, AgreesWithAPlainSetUnderRandomInsertions) {
  std::mt19937_64 gen(7);
  for (int trial = 0; trial < 50; ++trial) {
    RangeSet ranges;
    std::set<uint64_t> reference;
    for (int i = 0; i < 300; ++i) {
      const uint64_t b = gen() % 500, len = 1 + gen() % 5;
      ranges.AddRange(b, b + len);
      for (uint64_t p = b; p < b + len; ++p) reference.insert(p);
    }
    EXPECT_EQ(ranges.Count(), reference.size());
    for (uint64_t p = 0; p < 510; ++p) EXPECT_EQ(ranges.Contains(p), reference.count(p) == 1) << p;
    // Stored ranges are disjoint and never adjacent (fully merged).
    uint64_t prev_end = 0;
    bool first = true;
    for (const auto& [b, e] : ranges.ranges()) {
      EXPECT_LT(b, e);
      if (!first) {
        EXPECT_GT(b, prev_end);
      }
      prev_end = e;
      first = false;
    }
  }
}

TEST(Checkpoint, SaveThenLoadRestoresEverySource) {
  const std::string path = TempPath();
  {
    Checkpoint cp(path, "docs");
    auto a = cp.Attach("/data/a.jsonl", "size=10 mtime_ns=1");
    ASSERT_TRUE(a.ok());
    (*a)->done.AddRange(1, 257);
    (*a)->done.Add(300);
    (*a)->rejected = 2;
    auto b = cp.Attach("/data/b.npy", "size=20 mtime_ns=2");
    ASSERT_TRUE(b.ok());
    (*b)->done.AddRange(0, 5);
    ASSERT_TRUE(cp.Save().ok());
  }
  auto loaded = Checkpoint::Load(path, "docs");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto a = loaded->Attach("/data/a.jsonl", "size=10 mtime_ns=1");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->done.Count(), 257u);
  EXPECT_TRUE((*a)->done.Contains(300));
  EXPECT_FALSE((*a)->done.Contains(257));
  EXPECT_EQ((*a)->rejected, 2u);
  auto b = loaded->Attach("/data/b.npy", "size=20 mtime_ns=2");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->done.Count(), 5u);
  std::remove(path.c_str());
}

TEST(Checkpoint, RefusesAnotherCollectionOrAChangedFile) {
  const std::string path = TempPath();
  Checkpoint cp(path, "docs");
  ASSERT_TRUE(cp.Attach("/a", "size=1 mtime_ns=1").ok());
  ASSERT_TRUE(cp.Save().ok());
  EXPECT_EQ(Checkpoint::Load(path, "other").status().code(), absl::StatusCode::kFailedPrecondition);
  auto loaded = Checkpoint::Load(path, "docs");
  ASSERT_TRUE(loaded.ok());
  auto changed = loaded->Attach("/a", "size=2 mtime_ns=5");
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(changed.status().message()), HasSubstr("changed"));
  std::remove(path.c_str());
}

TEST(Checkpoint, MissingIsNotFoundAndCorruptIsDataLoss) {
  const std::string path = TempPath();
  EXPECT_EQ(Checkpoint::Load(path, "docs").status().code(), absl::StatusCode::kNotFound);
  for (const char* text : {"", "{", "[]", R"({"format": "x", "version": 1})",
                           R"({"format": "chamferdb-ingest-checkpoint", "version": 1, "collection": "docs"})",
                           R"({"format": "chamferdb-ingest-checkpoint", "version": 1, "collection": "docs",
                               "sources": {"/a": {"fingerprint": "f", "done": [[5, 2]], "rejected": 0}}})",
                           R"({"format": "chamferdb-ingest-checkpoint", "version": 1, "collection": "docs",
                               "sources": {"/a": {"fingerprint": "f", "done": [[-1, 2]], "rejected": 0}}})"}) {
    std::ofstream(path) << text;
    auto cp = Checkpoint::Load(path, "docs");
    EXPECT_EQ(cp.status().code(), absl::StatusCode::kDataLoss) << text;
    EXPECT_THAT(std::string(cp.status().message()), HasSubstr(path));
  }
  std::remove(path.c_str());
}

TEST(Checkpoint, SaveFailsCleanlyInAMissingDirectory) {
  Checkpoint cp("/nonexistent-dir/x.chamferdb-checkpoint", "docs");
  EXPECT_EQ(cp.Save().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chamferdb::cli
