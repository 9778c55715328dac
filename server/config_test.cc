#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/status_matchers.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ServerConfig, DefaultsAndFlags) {
  auto c = ServerConfig::Parse({"chamferdb"}, {});
  ASSERT_OK(c);
  EXPECT_EQ(c->listen, "127.0.0.1:50051");
  EXPECT_EQ(c->data_dir, "./data");
  EXPECT_FALSE(c->sync);
  auto f = ServerConfig::Parse({"chamferdb", "--listen", "0.0.0.0:9000", "--data-dir=/tmp/x", "--sync"}, {});
  ASSERT_OK(f);
  EXPECT_EQ(f->listen, "0.0.0.0:9000");
  EXPECT_EQ(f->data_dir, "/tmp/x");
  EXPECT_TRUE(f->sync);
}

TEST(ServerConfig, PrecedenceIsFileThenEnvironmentThenFlags) {
  const std::string path = ::testing::TempDir() + "/chamferdb_test.conf";
  std::ofstream(path) << "# comment\nlisten = 127.0.0.1:1111\ndata-dir = /from/file\nlog-level = debug\n";
  auto c = ServerConfig::Parse({"chamferdb", "--config", path, "--listen", "127.0.0.1:3333"},
                               {{"CHAMFERDB_LISTEN", "127.0.0.1:2222"}, {"CHAMFERDB_DATA_DIR", "/from/env"}});
  ASSERT_OK(c);
  EXPECT_EQ(c->listen, "127.0.0.1:3333");
  EXPECT_EQ(c->data_dir, "/from/env");
  EXPECT_EQ(c->log_level, "debug");
}

TEST(ServerConfig, BadValuesNameTheFlag) {
  EXPECT_THAT(ServerConfig::Parse({"x", "--listen", "nonsense"}, {}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--listen")));
  EXPECT_THAT(ServerConfig::Parse({"x", "--max-message-mb", "lots"}, {}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--max-message-mb")));
  EXPECT_THAT(ServerConfig::Parse({"x", "--bogus"}, {}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--bogus")));
  EXPECT_THAT(ServerConfig::Parse({"x", "--log-level", "loud"}, {}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--log-level")));
  EXPECT_THAT(ServerConfig::Parse({"x"}, {{"CHAMFERDB_SYNC", "maybe"}}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CHAMFERDB_SYNC")));
  EXPECT_THAT(ServerConfig::Parse({"x", "--help"}, {}), StatusIs(absl::StatusCode::kCancelled, HasSubstr("usage")));
}

}  // namespace
}  // namespace chamferdb
