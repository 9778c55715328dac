#include "cli/record.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace chamferdb::cli {

using nlohmann::json;

absl::Status ParseRecordJson(std::string_view line, const ParseOptions& options, DocRecord* out) {
  *out = DocRecord{};
  json j = json::parse(line.begin(), line.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key != "id" && key != "vectors" && key != "metadata" && key != "num_tokens") {
      return absl::InvalidArgumentError(
          fmt::format("unknown field {:?} (expected id, vectors, metadata, num_tokens)", key));
    }
  }
  if (auto it = j.find("id"); it != j.end()) {
    if (!it->is_string()) return absl::InvalidArgumentError("\"id\" is not a string");
    out->id = it->get<std::string>();
  }
  auto vit = j.find("vectors");
  if (vit == j.end()) return absl::InvalidArgumentError("missing \"vectors\"");
  if (!vit->is_array()) return absl::InvalidArgumentError("\"vectors\" is not an array of arrays");
  if (vit->size() > std::numeric_limits<uint32_t>::max()) return absl::InvalidArgumentError("too many vectors");
  out->num_tokens = static_cast<uint32_t>(vit->size());
  for (size_t t = 0; t < vit->size(); ++t) {
    const json& row = (*vit)[t];
    if (!row.is_array()) return absl::InvalidArgumentError(fmt::format("vectors[{}] is not an array", t));
    if (t == 0) {
      if (row.size() > std::numeric_limits<uint32_t>::max()) return absl::InvalidArgumentError("vector too long");
      out->dim = static_cast<uint32_t>(row.size());
      out->vectors.reserve(static_cast<size_t>(out->num_tokens) * out->dim);
    } else if (row.size() != out->dim) {
      return absl::InvalidArgumentError(
          fmt::format("vectors[{}] has {} values but vectors[0] has {}", t, row.size(), out->dim));
    }
    for (size_t c = 0; c < row.size(); ++c) {
      if (!row[c].is_number()) return absl::InvalidArgumentError(fmt::format("vectors[{}][{}] is not a number", t, c));
      out->vectors.push_back(static_cast<float>(row[c].get<double>()));
    }
  }
  // Optional, as `get` prints it: must agree with the vectors.
  if (auto it = j.find("num_tokens"); it != j.end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() != out->num_tokens) {
      return absl::InvalidArgumentError(
          fmt::format("\"num_tokens\" is {} but \"vectors\" has {} rows", it->dump(), out->num_tokens));
    }
  }
  if (auto it = j.find("metadata"); it != j.end() && !it->is_null()) {
    if (!options.allow_metadata) return absl::InvalidArgumentError("\"metadata\" is not accepted here");
    if (!it->is_object()) return absl::InvalidArgumentError("\"metadata\" is not a JSON object");
    out->metadata_json = it->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return ValidateRecord(*out, options);
}

absl::Status ValidateRecord(const DocRecord& doc, const ParseOptions& options) {
  if (options.require_id && doc.id.empty()) return absl::InvalidArgumentError("id is empty");
  if (doc.num_tokens == 0) return absl::InvalidArgumentError("no vectors");
  if (doc.dim == 0) return absl::InvalidArgumentError("vectors have zero length");
  if (options.expected_dim != 0 && doc.dim != options.expected_dim) {
    return absl::InvalidArgumentError(
        fmt::format("vectors have dimension {} but the collection's dimension is {}", doc.dim, options.expected_dim));
  }
  if (doc.vectors.size() != static_cast<size_t>(doc.num_tokens) * doc.dim) {
    return absl::InvalidArgumentError("vectors size disagrees with num_tokens * dim");
  }
  for (size_t i = 0; i < doc.vectors.size(); ++i) {
    if (!std::isfinite(doc.vectors[i])) {
      return absl::InvalidArgumentError(fmt::format("vectors[{}][{}] is not finite as float32 ({})", i / doc.dim,
                                                    i % doc.dim, doc.vectors[i]));
    }
  }
  return absl::OkStatus();
}

double FloatForJson(float v) {
  if (!std::isfinite(v)) return static_cast<double>(v);
  const std::string text = fmt::format("{}", v);  // shortest round-trip representation
  return std::strtod(text.c_str(), nullptr);
}

}  // namespace chamferdb::cli
