#include "cli/record.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

TEST(ParseRecordJson, ReadsIdVectorsAndCompactMetadata) {
  DocRecord doc;
  ASSERT_TRUE(ParseRecordJson(R"({"id": "d1", "vectors": [[1, 2.5], [-3, 4e-1]], "metadata": {"b": [1, 2], "a": "x"}})",
                              ParseOptions{2}, &doc)
                  .ok());
  EXPECT_EQ(doc.id, "d1");
  EXPECT_EQ(doc.num_tokens, 2u);
  EXPECT_EQ(doc.dim, 2u);
  EXPECT_EQ(doc.vectors, (std::vector<float>{1.f, 2.5f, -3.f, 0.4f}));
  // Same JSON value (key order may differ), compact.
  EXPECT_EQ(nlohmann::json::parse(doc.metadata_json), nlohmann::json::parse(R"({"a": "x", "b": [1, 2]})"));
  EXPECT_EQ(doc.metadata_json.find(' '), std::string::npos);
}

TEST(ParseRecordJson, MetadataIsOptionalAndNullMeansNone) {
  DocRecord doc;
  ASSERT_TRUE(ParseRecordJson(R"({"id": "x", "vectors": [[1]]})", ParseOptions{}, &doc).ok());
  EXPECT_EQ(doc.metadata_json, "");
  ASSERT_TRUE(ParseRecordJson(R"({"id": "x", "vectors": [[1]], "metadata": null})", ParseOptions{}, &doc).ok());
  EXPECT_EQ(doc.metadata_json, "");
}

TEST(ParseRecordJson, EveryBadRecordNamesItsProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"{\"id\": \"a\", \"vectors\": [[1, 2]]", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {R"({"id": 5, "vectors": [[1, 2]]})", "\"id\" is not a string"},
      {R"({"id": "", "vectors": [[1, 2]]})", "id is empty"},
      {R"({"vectors": [[1, 2]]})", "id is empty"},
      {R"({"id": "a"})", "missing \"vectors\""},
      {R"({"id": "a", "vectors": [1, 2]})", "vectors[0] is not an array"},
      {R"({"id": "a", "vectors": "x"})", "not an array of arrays"},
      {R"({"id": "a", "vectors": []})", "no vectors"},
      {R"({"id": "a", "vectors": [[]]})", "zero length"},
      {R"({"id": "a", "vectors": [[1, 2], [3]]})", "vectors[1] has 1 values but vectors[0] has 2"},
      {R"({"id": "a", "vectors": [[1, "2"]]})", "vectors[0][1] is not a number"},
      {R"({"id": "a", "vectors": [[1, true]]})", "vectors[0][1] is not a number"},
      {R"({"id": "a", "vectors": [[1, 1e39]]})", "vectors[0][1] is not finite"},
      {R"({"id": "a", "vectors": [[1, 2, 3]]})", "dimension 3 but the collection's dimension is 2"},
      {R"({"id": "a", "vectors": [[1, 2]], "metadata": [1]})", "\"metadata\" is not a JSON object"},
      {R"({"id": "a", "vectors": [[1, 2]], "extra": 1})", "unknown field \"extra\""},
      {R"({"id": "a", "num_tokens": 2, "vectors": [[1, 2]]})", "\"num_tokens\" is 2 but \"vectors\" has 1 rows"},
      {R"({"id": "a", "num_tokens": "1", "vectors": [[1, 2]]})", "\"num_tokens\" is \"1\""},
  };
  for (const auto& [line, expected] : cases) {
    DocRecord doc;
    absl::Status s = ParseRecordJson(line, ParseOptions{2}, &doc);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << line;
    EXPECT_THAT(std::string(s.message()), HasSubstr(expected)) << line;
  }
}

TEST(ParseRecordJson, AcceptsAConsistentNumTokensAsGetPrintsIt) {
  DocRecord doc;
  ASSERT_TRUE(ParseRecordJson(R"({"id": "a", "num_tokens": 2, "vectors": [[1, 2], [3, 4]]})", ParseOptions{2}, &doc)
                  .ok());
  EXPECT_EQ(doc.num_tokens, 2u);
}

TEST(ParseRecordJson, QueriesMayOmitTheId) {
  DocRecord doc;
  ParseOptions options;
  options.require_id = false;
  EXPECT_TRUE(ParseRecordJson(R"({"vectors": [[1, 2]]})", options, &doc).ok());
}

TEST(FloatForJson, PrintsTheShortestFloatText) {
  EXPECT_EQ(nlohmann::json(FloatForJson(0.1f)).dump(), "0.1");
  EXPECT_EQ(nlohmann::json(FloatForJson(-1.5f)).dump(), "-1.5");
  EXPECT_EQ(static_cast<float>(FloatForJson(1.0f / 3)), 1.0f / 3);
}

}  // namespace
}  // namespace chamferdb::cli
