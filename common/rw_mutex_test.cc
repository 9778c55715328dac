#include "common/rw_mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

namespace chamferdb {
namespace {

TEST(WriterPriorityMutex, SharedHoldersCoexistAndExcludeWriters) {
  WriterPriorityMutex mu;
  ASSERT_TRUE(mu.try_lock_shared());
  ASSERT_TRUE(mu.try_lock_shared());  // a second reader (no writer waiting)
  EXPECT_FALSE(mu.try_lock());
  mu.unlock_shared();
  EXPECT_FALSE(mu.try_lock());  // one reader still inside
  mu.unlock_shared();
  ASSERT_TRUE(mu.try_lock());
  EXPECT_FALSE(mu.try_lock_shared());
  EXPECT_FALSE(mu.try_lock());
  mu.unlock();
  EXPECT_TRUE(mu.try_lock_shared());
  mu.unlock_shared();
}

// The property the collections need: once a writer waits, a reader that arrives later waits
// for the writer. A reader-preferring lock (std::shared_mutex on glibc) admits the later
// reader, so the poll below never sees the writer queued and the test fails.
TEST(WriterPriorityMutex, QueuedWriterHoldsOffLaterReaders) {
  WriterPriorityMutex mu;
  std::mutex order_mu;
  std::vector<std::string> order;
  auto record = [&](const char* who) {
    std::lock_guard<std::mutex> lock(order_mu);
    order.push_back(who);
  };

  mu.lock_shared();  // the reader already inside
  std::thread writer([&] {
    std::unique_lock lock(mu);
    record("writer");
  });
  // Wait until the writer is queued: from then on, new shared acquisitions are refused.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool queued = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!mu.try_lock_shared()) {
      queued = true;
      break;
    }
    mu.unlock_shared();
    std::this_thread::yield();
  }
  if (!queued) {
    mu.unlock_shared();
    writer.join();
    FAIL() << "a waiting writer never held off a new reader";
  }
  std::thread late_reader([&] {
    std::shared_lock lock(mu);
    record("late reader");
  });
  mu.unlock_shared();
  writer.join();
  late_reader.join();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "writer");
  EXPECT_EQ(order[1], "late reader");
}

// Mutual exclusion under contention: writers keep two fields equal (updating them one after
// the other); readers must never see them differ, and no increment is lost.
TEST(WriterPriorityMutex, ReadersNeverSeeAHalfWrite) {
  WriterPriorityMutex mu;
  int64_t a = 0, b = 0;
  std::atomic<bool> torn{false};
  constexpr int kWriters = 2, kReaders = 3, kWrites = 20000;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < kWrites; ++i) {
        std::unique_lock lock(mu);
        ++a;
        ++b;
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      for (int i = 0; i < kWrites; ++i) {
        std::shared_lock lock(mu);
        if (a != b) torn = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(torn.load());
  EXPECT_EQ(a, int64_t{kWriters} * kWrites);
  EXPECT_EQ(b, a);
}

}  // namespace
}  // namespace chamferdb
