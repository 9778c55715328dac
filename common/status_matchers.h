// Test-only helpers for absl::Status (GoogleTest).
#pragma once

#include "common/status_macros.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chamferdb::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// EXPECT_THAT(expr, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dim")))
MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = ::chamferdb::testing::GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()),
                                       result_listener);
}

MATCHER(IsOk, "") {
  const absl::Status& s = ::chamferdb::testing::GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.ok();
}

}  // namespace chamferdb::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::chamferdb::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::chamferdb::testing::IsOk())

// ASSERT_OK_AND_ASSIGN(lhs, expr): asserts that the StatusOr `expr` is OK and moves its value
// into lhs (a declaration such as `auto x` or an existing variable).
#define CHAMFERDB_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                       \
  ASSERT_TRUE(tmp.ok()) << tmp.status();                   \
  lhs = std::move(tmp).value()
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  CHAMFERDB_ASSERT_OK_AND_ASSIGN_IMPL(CHAMFERDB_CONCAT(chamferdb_assert_, __LINE__), lhs, expr)
