#include "storage/fault_injection_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "common/status_matchers.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using Op = FaultInjectionStore::Op;

WriteBatch OnePut(const std::string& k, const std::string& v = "v") {
  WriteBatch b;
  b.Put(k, v);
  return b;
}

// Every key of the store, read through the base (not the wrapper).
std::vector<std::string> Keys(const Store& s) {
  std::vector<std::string> keys;
  EXPECT_OK(s.Scan("", "", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  }));
  return keys;
}

TEST(FaultInjectionStore, NthWriteFailsAndAppliesNothingOthersPass) {
  auto base = NewMemStore();
  FaultInjectionStore f(base.get());
  f.FailNth(Op::kWrite, 3);
  for (int i = 1; i <= 5; ++i) {
    WriteBatch b;
    b.Put("a" + std::to_string(i), "x");
    b.Put("b" + std::to_string(i), "y");
    absl::Status s = f.Write(b, false);
    if (i == 3) {
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr("write #3")));
    } else {
      EXPECT_OK(s);
    }
  }
  EXPECT_THAT(Keys(*base), ::testing::ElementsAre("a1", "a2", "a4", "a5", "b1", "b2", "b4", "b5"));
  EXPECT_EQ(f.calls(Op::kWrite), 5u);
  EXPECT_EQ(f.injected(), 1u);
}

TEST(FaultInjectionStore, CountsFromArmingAndStickyKeepsFailing) {
  auto base = NewMemStore();
  FaultInjectionStore f(base.get());
  ASSERT_OK(f.Write(OnePut("k0"), false));
  f.FailNth(Op::kWrite, 2, /*sticky=*/true);
  EXPECT_OK(f.Write(OnePut("k1"), false));
  EXPECT_FALSE(f.Write(OnePut("k2"), false).ok());
  EXPECT_FALSE(f.Write(OnePut("k3"), false).ok());
  f.Heal();
  EXPECT_OK(f.Write(OnePut("k4"), false));
  EXPECT_THAT(Keys(*base), ::testing::ElementsAre("k0", "k1", "k4"));
  EXPECT_EQ(f.injected(), 2u);
}

TEST(FaultInjectionStore, SyncFaultCountsOnlySyncWrites) {
  auto base = NewMemStore();
  FaultInjectionStore f(base.get());
  f.FailNth(Op::kSync, 2);
  EXPECT_OK(f.Write(OnePut("a"), true));    // sync #1
  EXPECT_OK(f.Write(OnePut("b"), false));   // not counted
  EXPECT_OK(f.Write(OnePut("c"), false));   // not counted
  EXPECT_THAT(f.Write(OnePut("d"), true), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));  // sync #2
  EXPECT_OK(f.Write(OnePut("e"), true));
  EXPECT_THAT(Keys(*base), ::testing::ElementsAre("a", "b", "c", "e"));
  EXPECT_EQ(f.calls(Op::kSync), 3u);
  EXPECT_EQ(f.calls(Op::kWrite), 5u);
}

TEST(FaultInjectionStore, DiskFullAndBudget) {
  auto base = NewMemStore();
  FaultInjectionStore f(base.get());
  f.SetDiskFull(true);
  EXPECT_THAT(f.Write(OnePut("a"), false),
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::HasSubstr("no space left")));
  auto got = f.Get("a");  // reads still work
  ASSERT_OK(got);
  EXPECT_FALSE(got->has_value());
  f.SetDiskFull(false);
  // Budget 10 bytes: "k1"+"1234" = 6 fits, the next 6 does not, a 4-byte batch still does.
  f.SetDiskBudget(10);
  EXPECT_OK(f.Write(OnePut("k1", "1234"), false));
  EXPECT_THAT(f.Write(OnePut("k2", "1234"), false), StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
  EXPECT_OK(f.Write(OnePut("k3", "12"), false));
  EXPECT_THAT(Keys(*base), ::testing::ElementsAre("k1", "k3"));
}

TEST(FaultInjectionStore, ReadAndScanFaults) {
  auto base = NewMemStore();
  for (int i = 0; i < 5; ++i) ASSERT_OK(base->Write(OnePut("k" + std::to_string(i)), false));
  FaultInjectionStore f(base.get());
  f.FailNth(Op::kRead, 2);
  EXPECT_OK(f.Get("k0"));
  EXPECT_THAT(f.MultiGet({"k0", "k1"}), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_OK(f.MultiGet({"k0", "k1"}));

  f.FailNth(Op::kScan, 1);
  int rows = 0;
  EXPECT_THAT(f.Scan("k", "", [&](auto, auto) { return ++rows, true; }), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_EQ(rows, 0);
  // Mid-scan failure: 3 rows delivered, then the error.
  f.FailNthScanAfter(1, 3);
  EXPECT_THAT(f.Scan("k", "", [&](auto, auto) { return ++rows, true; }), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_EQ(rows, 3);
  rows = 0;
  EXPECT_OK(f.Scan("k", "", [&](auto, auto) { return ++rows, true; }));
  EXPECT_EQ(rows, 5);
}

TEST(FaultInjectionStore, ExactlyOneOfManyConcurrentWritesFails) {
  auto base = NewMemStore();
  FaultInjectionStore f(base.get());
  f.FailNth(Op::kWrite, 50);
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        if (!f.Write(OnePut(std::to_string(t) + "/" + std::to_string(i)), false).ok()) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 1);
  EXPECT_EQ(Keys(*base).size(), 99u);
}

}  // namespace
}  // namespace chamferdb
