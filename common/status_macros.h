// Error-propagation macros for absl::Status / absl::StatusOr.
//
// RETURN_IF_ERROR(expr): evaluates expr (a Status); returns it from the enclosing function
// when it is not OK.
// ASSIGN_OR_RETURN(lhs, expr): evaluates expr (a StatusOr<T>); returns its status when not
// OK, otherwise moves the value into lhs (which may be a declaration: `auto x`).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CHAMFERDB_CONCAT_INNER(a, b) a##b
#define CHAMFERDB_CONCAT(a, b) CHAMFERDB_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                                   \
  do {                                                          \
    ::absl::Status chamferdb_status_ = (expr);                  \
    if (!chamferdb_status_.ok()) return chamferdb_status_;      \
  } while (0)

#define CHAMFERDB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return tmp.status();                   \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  CHAMFERDB_ASSIGN_OR_RETURN_IMPL(CHAMFERDB_CONCAT(chamferdb_statusor_, __LINE__), lhs, expr)
