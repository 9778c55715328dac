#include "cli/connection.h"

#include <atomic>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "chamferdb/v1/collections.grpc.pb.h"
#include "cli/ingest.h"

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

TEST(Backoff, DoublesFromTheInitialDelayUpToTheCap) {
  RetryPolicy p;
  p.initial_backoff = std::chrono::milliseconds(100);
  p.max_backoff = std::chrono::milliseconds(1000);
  EXPECT_EQ(Backoff(p, 0).count(), 100);
  EXPECT_EQ(Backoff(p, 1).count(), 200);
  EXPECT_EQ(Backoff(p, 3).count(), 800);
  EXPECT_EQ(Backoff(p, 4).count(), 1000);
  EXPECT_EQ(Backoff(p, 60).count(), 1000);
}

TEST(IsRetryable, OnlyTransientCodes) {
  EXPECT_TRUE(IsRetryable(grpc::UNAVAILABLE));
  EXPECT_TRUE(IsRetryable(grpc::RESOURCE_EXHAUSTED));
  EXPECT_TRUE(IsRetryable(grpc::DEADLINE_EXCEEDED));
  EXPECT_FALSE(IsRetryable(grpc::INVALID_ARGUMENT));
  EXPECT_FALSE(IsRetryable(grpc::NOT_FOUND));
  EXPECT_FALSE(IsRetryable(grpc::UNAUTHENTICATED));
}

TEST(CallWithRetry, RetriesTransientFailuresThenStopsAtTheBound) {
  ConnectionOptions o;
  o.server = "127.0.0.1:1";
  auto conn = Connection::Create(o);
  ASSERT_TRUE(conn.ok());
  RetryPolicy p;
  p.max_attempts = 4;
  p.initial_backoff = std::chrono::milliseconds(1);
  int calls = 0;
  std::atomic<uint64_t> retries{0};
  grpc::Status s = conn->CallWithRetry(
      p, [&](grpc::ClientContext*) { return ++calls < 3 ? grpc::Status(grpc::UNAVAILABLE, "down") : grpc::Status::OK; },
      &retries);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(retries.load(), 2u);
  calls = 0;
  s = conn->CallWithRetry(p, [&](grpc::ClientContext*) { ++calls; return grpc::Status(grpc::UNAVAILABLE, "down"); });
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE);
  EXPECT_EQ(calls, 4);
  calls = 0;
  s = conn->CallWithRetry(p, [&](grpc::ClientContext*) { ++calls; return grpc::Status(grpc::INVALID_ARGUMENT, "bad"); });
  EXPECT_EQ(calls, 1);
}

TEST(CallWithRetry, UnavailableOverAReadyChannelWaitsTheFullBackoff) {
  // A server that answers UNAVAILABLE over a working connection must not be retried at once:
  // the reconnect wait applies only to channels that are not READY.
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  v1::Collections::Service service;  // every method UNIMPLEMENTED; the server needs one
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  ConnectionOptions o;
  o.server = "127.0.0.1:" + std::to_string(port);
  auto conn = Connection::Create(o);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(conn->channel()->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30)));
  RetryPolicy p;
  p.max_attempts = 3;
  p.initial_backoff = std::chrono::milliseconds(60);
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  grpc::Status s = conn->CallWithRetry(p, [&](grpc::ClientContext*) {
    ++calls;
    return grpc::Status(grpc::UNAVAILABLE, "draining");
  });
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE);
  EXPECT_EQ(calls, 3);
  EXPECT_GE(elapsed, std::chrono::milliseconds(60 + 120));  // both backoffs were waited
  server->Shutdown();
}

TEST(CallWithRetry, ContextsCarryTheConfiguredDeadline) {
  ConnectionOptions o;
  o.server = "127.0.0.1:1";
  o.api_key = "k123";
  o.timeout_seconds = 5;
  auto conn = Connection::Create(o);
  ASSERT_TRUE(conn.ok());
  auto ctx = conn->NewContext();
  const auto left = ctx->deadline() - std::chrono::system_clock::now();
  EXPECT_GT(left, std::chrono::seconds(4));
  EXPECT_LE(left, std::chrono::seconds(5));
}

TEST(Connection, BadTlsFlagsAreReportedBeforeConnecting) {
  ConnectionOptions o;
  o.tls_ca = "/nonexistent/ca.pem";
  EXPECT_EQ(Connection::Create(o).status().code(), absl::StatusCode::kNotFound);
  o.tls_ca = "/etc/hostname";
  EXPECT_THAT(std::string(Connection::Create(o).status().message()), HasSubstr("not a PEM file"));
  o = ConnectionOptions();
  o.tls_cert = "/x";
  EXPECT_THAT(std::string(Connection::Create(o).status().message()), HasSubstr("--tls-key"));
}

TEST(RejectedDocumentIndex, FindsTheIndexTheServerNames) {
  EXPECT_EQ(RejectedDocumentIndex("documents[3]: vectors has 7 values"), 3);
  EXPECT_EQ(RejectedDocumentIndex("stream message 2 (after 10 documents applied): documents[12]: x"), 12);
  EXPECT_EQ(RejectedDocumentIndex("documents is empty"), -1);
  EXPECT_EQ(RejectedDocumentIndex("documents[]: x"), -1);
  EXPECT_EQ(RejectedDocumentIndex("documents[4"), -1);
}

}  // namespace
}  // namespace chamferdb::cli
