// JSON records as the CLI reads them (collections of kind JSON): one JSON object per JSONL
// line, its id taken from a named top-level field, exactly as the server derives it
// (server/json_collection.cc: a string is used as is, an integer as its decimal text).
//
// The checks here mirror the collection's MBAT limits so that a bad line is reported with
// its line number before anything is sent; the server stays the authority (it also rejects
// duplicate keys and invalid UTF-8, which a batch re-send then isolates). Nesting depth is
// measured by a flat scan (common/json_depth.h) before nlohmann_json parses anything, so a
// 100,000-deep line cannot exhaust the stack. Nothing throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chamferdb::cli {

// The per-record limits of a JSON collection (encoders/mbat_json.h MbatLimits; the same
// defaults when the collection's config does not list them).
struct JsonRecordLimits {
  uint64_t max_record_bytes = 1 << 20;
  uint32_t max_depth = 64;
  uint64_t max_nodes = 100000;
  uint64_t max_array_length = 10000;
};

// Reads "limits" from a collection's mbat_config_json (CollectionConfig.json); absent
// fields keep the defaults. INVALID_ARGUMENT when the text is not a JSON object.
absl::StatusOr<JsonRecordLimits> JsonLimitsFromMbatConfig(std::string_view mbat_config_json);

// Checks that `text` is one JSON object within `limits`: size (RESOURCE_EXHAUSTED), nesting
// depth, validity, object root (INVALID_ARGUMENT), JSON values and array lengths
// (RESOURCE_EXHAUSTED). The message says what is wrong without location; callers add it.
absl::Status CheckJsonObject(std::string_view text, const JsonRecordLimits& limits);

// CheckJsonObject, then the record's id from its top-level `id_field`: a non-empty string
// or an integer. INVALID_ARGUMENT naming the field otherwise.
absl::StatusOr<std::string> JsonRecordId(std::string_view text, std::string_view id_field,
                                         const JsonRecordLimits& limits);

}  // namespace chamferdb::cli
