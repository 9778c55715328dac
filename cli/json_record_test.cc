#include "cli/json_record.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/ingest.h"

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

JsonRecordLimits Small() {
  JsonRecordLimits l;
  l.max_record_bytes = 200;
  l.max_depth = 3;
  l.max_nodes = 12;
  l.max_array_length = 4;
  return l;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(JsonRecordId, TakesTheIdLikeTheServerDoes) {
  const JsonRecordLimits l;
  EXPECT_EQ(*JsonRecordId(R"({"id": "a-1", "x": {"id": "inner"}})", "id", l), "a-1");
  EXPECT_EQ(*JsonRecordId(R"({"n": 1, "sku": 42})", "sku", l), "42");
  EXPECT_EQ(*JsonRecordId(R"({"sku": -7})", "sku", l), "-7");
  // Integers above int64 wrap exactly as nlohmann's get<int64_t> does on the server.
  EXPECT_EQ(*JsonRecordId(R"({"sku": 18446744073709551615})", "sku", l), "-1");
  EXPECT_EQ(*JsonRecordId(R"({"k": "é ü"})", "k", l), "é ü");
}

TEST(JsonRecordId, RefusesMissingOrNonScalarIds) {
  const JsonRecordLimits l;
  EXPECT_THAT(Message(JsonRecordId(R"({"x": 1})", "id", l).status()), HasSubstr("no \"id\" field"));
  // Only a top-level field counts.
  EXPECT_THAT(Message(JsonRecordId(R"({"x": {"id": "a"}})", "id", l).status()), HasSubstr("no \"id\" field"));
  for (const char* bad : {R"({"id": 1.5})", R"({"id": true})", R"({"id": null})", R"({"id": [1]})",
                          R"({"id": {"a": 1}})"}) {
    EXPECT_THAT(Message(JsonRecordId(bad, "id", l).status()), HasSubstr("not a string or an integer")) << bad;
  }
  EXPECT_THAT(Message(JsonRecordId(R"({"id": ""})", "id", l).status()), HasSubstr("empty or longer than 512"));
  EXPECT_THAT(Message(JsonRecordId("{\"id\": \"" + std::string(513, 'x') + "\"}", "id", l).status()),
              HasSubstr("empty or longer than 512"));
  EXPECT_TRUE(JsonRecordId("{\"id\": \"" + std::string(512, 'x') + "\"}", "id", l).ok());
}

TEST(CheckJsonObject, NamesWhatIsWrong) {
  const JsonRecordLimits l;
  EXPECT_TRUE(CheckJsonObject(R"({"a": [1, {"b": null}], "c": "d"})", l).ok());
  EXPECT_THAT(Message(CheckJsonObject("[1, 2]", l)), HasSubstr("not a JSON object (it is an array)"));
  EXPECT_THAT(Message(CheckJsonObject("  42", l)), HasSubstr("not a JSON object (it is a number)"));
  EXPECT_THAT(Message(CheckJsonObject(R"("s")", l)), HasSubstr("it is a string"));
  EXPECT_THAT(Message(CheckJsonObject("null", l)), HasSubstr("it is null"));
  EXPECT_THAT(Message(CheckJsonObject(R"({"a": )", l)), HasSubstr("not valid JSON"));
  EXPECT_THAT(Message(CheckJsonObject(R"({"a": 1} x)", l)), HasSubstr("not valid JSON"));
  EXPECT_THAT(Message(CheckJsonObject("", l)), HasSubstr("not valid JSON"));
  EXPECT_THAT(Message(CheckJsonObject("{\"a\": \"\xff\"}", l)), HasSubstr("not valid JSON"));  // invalid UTF-8
  EXPECT_THAT(Message(CheckJsonObject(R"({"a": 1, "b": {"a": 2}, "a": 3})", l)), HasSubstr("duplicate key \"a\""));
  EXPECT_TRUE(CheckJsonObject(R"({"a": {"a": {"a": 1}}})", l).ok());  // same key at different levels
}

TEST(CheckJsonObject, EnforcesTheCollectionLimits) {
  const JsonRecordLimits l = Small();
  EXPECT_TRUE(CheckJsonObject(R"({"a": {"b": [1, 2, 3, 4]}})", l).ok());  // depth 3, 4 elements, 7 values
  absl::Status s = CheckJsonObject(R"({"a": {"b": [[1]]}})", l);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), HasSubstr("deeper than 3"));
  s = CheckJsonObject(R"({"a": [1, 2, 3, 4, 5]})", l);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Message(s), HasSubstr("more than 4 elements"));
  // 13 values: the root, 6 keys' values, 6 array elements.
  s = CheckJsonObject(R"({"a": 1, "b": 2, "c": 3, "d": [1, 2, 3], "e": [4, 5, 6], "f": 7})", l);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Message(s), HasSubstr("more than 12 JSON values"));
  EXPECT_TRUE(CheckJsonObject(R"({"a": 1, "b": 2, "c": 3, "d": [1, 2, 3], "e": [4, 5, 6]})", l).ok());
  s = CheckJsonObject("{\"a\": \"" + std::string(200, 'x') + "\"}", l);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Message(s), HasSubstr("over the collection's limit of 200"));
}

TEST(CheckJsonObject, DeepNestingIsRefusedWithoutRecursion) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_THAT(Message(CheckJsonObject("{\"a\": " + deep + "}", JsonRecordLimits())), HasSubstr("deeper than 64"));
  // Brackets inside strings do not count.
  EXPECT_TRUE(CheckJsonObject("{\"a\": \"" + std::string(1000, '[') + "\"}", JsonRecordLimits()).ok());
}

TEST(JsonLimitsFromMbatConfig, ReadsTheLimitsOrKeepsDefaults) {
  auto l = JsonLimitsFromMbatConfig(R"({"dim": 256, "limits": {"max_depth": 8, "max_nodes": 99}})");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->max_depth, 8u);
  EXPECT_EQ(l->max_nodes, 99u);
  EXPECT_EQ(l->max_record_bytes, JsonRecordLimits().max_record_bytes);
  EXPECT_EQ(l->max_array_length, JsonRecordLimits().max_array_length);
  EXPECT_EQ(JsonLimitsFromMbatConfig("")->max_depth, 64u);
  EXPECT_FALSE(JsonLimitsFromMbatConfig("[1]").ok());
}

TEST(RejectedRecordIndex, FindsTheIndexTheServerNames) {
  EXPECT_EQ(RejectedRecordIndex("records[3]: record has no id and no \"id\" field"), 3);
  EXPECT_EQ(RejectedRecordIndex("records: record 17: record nests deeper than 64 levels"), 17);
  EXPECT_EQ(RejectedRecordIndex("records is empty"), -1);
  EXPECT_EQ(RejectedRecordIndex("records: record has more than"), -1);
  EXPECT_EQ(RejectedRecordIndex("records[]: x"), -1);
  EXPECT_EQ(RejectedRecordIndex("12000 records in one batch exceed the limit of 10000"), -1);
}

}  // namespace
}  // namespace chamferdb::cli
