#include "server/json_guard.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace chamferdb {

int JsonNestingDepth(std::string_view text, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) return max_depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

absl::Status ValidateJsonObject(std::string_view text, std::string_view what) {
  if (JsonNestingDepth(text, kMaxJsonDepth) > kMaxJsonDepth) {
    return absl::InvalidArgumentError(fmt::format("{} nests deeper than {} levels", what, kMaxJsonDepth));
  }
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(fmt::format("{} is not valid JSON", what));
  if (!j.is_object()) return absl::InvalidArgumentError(fmt::format("{} must be a JSON object", what));
  return absl::OkStatus();
}

}  // namespace chamferdb
