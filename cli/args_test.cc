#include "cli/args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

const std::vector<FlagSpec> kSpecs = {{"collection", true, ""}, {"k", true, ""}, {"resume", false, ""},
                                      {"ratio", true, ""}, {"format", true, ""}};

TEST(ParseArgs, FlagsAndPositionalsInAnyOrder) {
  auto a = ParseArgs({"ingest", "--collection", "c", "f1", "--k=5", "--resume", "f2", "--", "--not-a-flag"}, kSpecs);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->positional(), (std::vector<std::string>{"ingest", "f1", "f2", "--not-a-flag"}));
  EXPECT_EQ(a->Get("collection"), "c");
  EXPECT_EQ(*a->GetUint("k", 10, 1, 100), 5u);
  EXPECT_TRUE(a->Has("resume"));
  EXPECT_EQ(*a->GetUint("missing", 7, 0, 10), 7u);
}

TEST(ParseArgs, BadFlagsAreNamed) {
  EXPECT_THAT(std::string(ParseArgs({"--nope"}, kSpecs).status().message()), HasSubstr("unknown flag --nope"));
  EXPECT_THAT(std::string(ParseArgs({"--collection"}, kSpecs).status().message()), HasSubstr("needs a value"));
  EXPECT_THAT(std::string(ParseArgs({"--resume=1"}, kSpecs).status().message()), HasSubstr("takes no value"));
  EXPECT_THAT(std::string(ParseArgs({"-x"}, kSpecs).status().message()), HasSubstr("unknown flag"));
}

TEST(ParsedArgs, NumbersAndChoicesAreValidated) {
  auto a = ParseArgs({"--k", "0", "--ratio", "1e-3x", "--format", "csv"}, kSpecs);
  ASSERT_TRUE(a.ok());
  EXPECT_THAT(std::string(a->GetUint("k", 10, 1, 100).status().message()), HasSubstr("between 1 and 100"));
  EXPECT_THAT(std::string(a->GetDouble("ratio", 0).status().message()), HasSubstr("not a number"));
  EXPECT_THAT(std::string(a->GetChoice("format", "jsonl", {"jsonl", "npy"}).status().message()),
              HasSubstr("jsonl|npy"));
  auto b = ParseArgs({"--k", "-3"}, kSpecs);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->GetUint("k", 10, 0, 100).ok());
  auto c = ParseArgs({"--k", "99999999999999999999999"}, kSpecs);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->GetUint("k", 10, 0, UINT64_MAX).ok());
}

}  // namespace
}  // namespace chamferdb::cli
