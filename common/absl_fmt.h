// Lets fmt/spdlog format absl::string_view (e.g. absl::Status::message()): Debian's abseil
// has its own string_view type, which fmt does not know.
#pragma once

#include <fmt/format.h>

#include "absl/strings/string_view.h"

template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};
