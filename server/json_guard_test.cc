#include "server/json_guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status_matchers.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

TEST(JsonGuard, AcceptsObjectsRejectsOthers) {
  EXPECT_OK(ValidateJsonObject(R"({"a": [1, {"b": "]]]}"}]})", "m"));
  EXPECT_THAT(ValidateJsonObject("[]", "m"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("object")));
  EXPECT_THAT(ValidateJsonObject("{\"a\":", "m"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid")));
  EXPECT_THAT(ValidateJsonObject("{\"a\":\"\xff\xfe\"}", "m"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid")));
}

TEST(JsonGuard, HundredThousandDeepNestingIsRejectedWithoutRecursion) {
  std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_THAT(ValidateJsonObject(deep, "metadata"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("deeper than 64")));
  // Brackets inside strings do not count.
  EXPECT_EQ(JsonNestingDepth(R"({"s": "[[[[[[\"[[["})", 64), 1u);
}

}  // namespace
}  // namespace chamferdb
