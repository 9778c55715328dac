#include "server/admission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "server/handler.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(Admission, AdmitsUpToTheLimitThenRefusesNamingIt) {
  AdmissionController a(3);
  std::vector<AdmissionController::Ticket> held(3);
  for (auto& t : held) ASSERT_OK(a.TryAdmit("Search.Search", &t));
  EXPECT_EQ(a.in_flight(), 3u);
  AdmissionController::Ticket extra;
  EXPECT_THAT(a.TryAdmit("Search.Search", &extra),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("Search.Search"), HasSubstr("limit is 3"), HasSubstr("--max-concurrent-requests"))));
  EXPECT_EQ(a.in_flight(), 3u);  // a refusal holds no slot
  EXPECT_EQ(a.rejected(), 1u);
  held[1].Release();
  held[1].Release();  // idempotent
  EXPECT_EQ(a.in_flight(), 2u);
  EXPECT_OK(a.TryAdmit("Search.Search", &extra));
  {
    AdmissionController::Ticket moved = std::move(extra);  // the slot moves with the ticket
    EXPECT_EQ(a.in_flight(), 3u);
  }
  EXPECT_EQ(a.in_flight(), 2u);
}

TEST(Admission, ZeroMeansUnlimited) {
  AdmissionController a(0);
  std::vector<AdmissionController::Ticket> held(1000);
  for (auto& t : held) ASSERT_OK(a.TryAdmit("x", &t));
  EXPECT_EQ(a.in_flight(), 1000u);
}

TEST(Admission, ConcurrentCallersNeverExceedTheLimit) {
  constexpr uint32_t kLimit = 4;
  AdmissionController a(kLimit);
  std::atomic<int> inside{0}, max_inside{0}, admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        AdmissionController::Ticket ticket;
        if (!a.TryAdmit("x", &ticket).ok()) {
          ++refused;
          continue;
        }
        ++admitted;
        const int now = ++inside;
        int prev = max_inside.load();
        while (now > prev && !max_inside.compare_exchange_weak(prev, now)) {
        }
        std::this_thread::yield();
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_inside.load(), static_cast<int>(kLimit));
  EXPECT_EQ(admitted + refused, 16 * 2000);
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(a.in_flight(), 0u);
  EXPECT_EQ(a.rejected(), static_cast<uint64_t>(refused.load()));
}

TEST(Admission, DefaultIsAFewTimesTheCores) {
  const uint32_t cores = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_EQ(DefaultMaxConcurrentRequests(), std::max(8u, 4 * cores));
}

TEST(Admission, RunHandlerRefusesBeyondTheLimitButNotMetadataReads) {
  GlobalAdmission().set_limit(1);
  grpc::Status inner, inner_exempt;
  bool ran_inner = false;
  grpc::Status outer = RunHandler(nullptr, "Search.Search", [&]() -> absl::Status {
    EXPECT_EQ(GlobalAdmission().in_flight(), 1u);
    inner = RunHandler(nullptr, "Documents.Upsert", [&]() -> absl::Status {
      ran_inner = true;
      return absl::OkStatus();
    });
    inner_exempt = RunHandler(nullptr, "Collections.List", [&]() -> absl::Status { return absl::OkStatus(); });
    return absl::OkStatus();
  });
  GlobalAdmission().set_limit(0);
  EXPECT_TRUE(outer.ok());
  EXPECT_EQ(inner.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(inner.error_message(), HasSubstr("Documents.Upsert"));
  EXPECT_FALSE(ran_inner) << "a refused request must do no work";
  EXPECT_TRUE(inner_exempt.ok());
  EXPECT_EQ(GlobalAdmission().in_flight(), 0u);  // released after the handler, also on errors
}

TEST(Admission, SlotIsReleasedWhenTheHandlerThrows) {
  GlobalAdmission().set_limit(1);
  grpc::Status s = RunHandler(nullptr, "Search.Search", []() -> absl::Status { throw std::runtime_error("boom"); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(GlobalAdmission().in_flight(), 0u);
  s = RunHandler(nullptr, "Search.Search", []() -> absl::Status { return absl::OkStatus(); });
  EXPECT_TRUE(s.ok());
  GlobalAdmission().set_limit(0);
}

TEST(Admission, CheckRequestAliveOutsideARequestIsOk) {
  EXPECT_OK(CheckRequestAlive("anything"));
  EXPECT_OK(CheckContextAlive(nullptr, "x", "y"));
}

}  // namespace
}  // namespace chamferdb
