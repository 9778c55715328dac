// Documents and queries as the CLI reads them, and the JSONL record parser.
//
// JSONL record (one per line): {"id": "...", "vectors": [[f, f, ...], ...], "metadata": {...}}
// "metadata" is optional (an object or null) and is forwarded as compact JSON text; an optional
// "num_tokens" (as `get` prints it) must equal the number of vectors. Parsing
// uses nlohmann_json; every problem is an INVALID_ARGUMENT status whose message says what is
// wrong with the record (the caller adds file and line). Nothing throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace chamferdb::cli {

struct DocRecord {
  std::string id;
  uint32_t num_tokens = 0;
  uint32_t dim = 0;
  std::vector<float> vectors;  // num_tokens * dim, row-major
  std::string metadata_json;   // empty: none
};

struct ParseOptions {
  uint32_t expected_dim = 0;  // 0: any (all rows must still agree)
  bool require_id = true;     // queries may omit the id
  bool allow_metadata = true;
};

// Parses one JSONL line into `out`.
absl::Status ParseRecordJson(std::string_view line, const ParseOptions& options, DocRecord* out);

// Checks what the server would reject: a non-empty id (when required), at least one token,
// dim == expected_dim (when non-zero), every value finite.
absl::Status ValidateRecord(const DocRecord& doc, const ParseOptions& options);

// Shortest text that reads back as the same float, as a JSON-ready double (e.g. 0.1f -> 0.1).
double FloatForJson(float v);

}  // namespace chamferdb::cli
