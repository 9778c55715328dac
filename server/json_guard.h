// Safe validation of client JSON (metadata): nesting depth is checked by a flat scan before
// any recursive parser sees the text, so hostile input cannot overflow the stack.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "common/json_depth.h"

namespace chamferdb {

inline constexpr int kMaxJsonDepth = 64;

// OK if `text` is a JSON object (valid UTF-8, depth <= kMaxJsonDepth); INVALID_ARGUMENT
// naming `what` otherwise.
absl::Status ValidateJsonObject(std::string_view text, std::string_view what);


}  // namespace chamferdb
