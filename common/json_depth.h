// Nesting depth of JSON text by a flat scan, so hostile input (e.g. 100,000 nested arrays)
// is rejected before any recursive parser sees it. Used by server metadata validation and
// by the MBAT-JSON encoder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace chamferdb {

// Depth of arrays/objects, ignoring brackets inside strings; returns as soon as the depth
// passes `limit` (the result is then limit + 1). Unbalanced closers never go below zero.
inline uint32_t JsonNestingDepth(std::string_view text, uint32_t limit) {
  uint32_t depth = 0, max_depth = 0;
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
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace chamferdb
