#include "server/json_guard.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace chamferdb {


absl::Status ValidateJsonObject(std::string_view text, std::string_view what) {
  if (JsonNestingDepth(text, kMaxJsonDepth) > static_cast<uint32_t>(kMaxJsonDepth)) {
    return absl::InvalidArgumentError(fmt::format("{} nests deeper than {} levels", what, kMaxJsonDepth));
  }
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(fmt::format("{} is not valid JSON", what));
  if (!j.is_object()) return absl::InvalidArgumentError(fmt::format("{} must be a JSON object", what));
  return absl::OkStatus();
}

}  // namespace chamferdb
