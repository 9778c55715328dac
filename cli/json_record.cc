#include "cli/json_record.h"

#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/source.h"
#include "common/json_depth.h"

namespace chamferdb::cli {
namespace {

using nlohmann::json;

constexpr size_t kMaxIdBytes = 512;  // the server's limit (server/collection.h)

// SAX checker: counts JSON values and array elements, rejects duplicate keys (as the
// server's encoder does) and captures the scalar at the top-level key `id_field`. The depth
// was already bounded by the flat scan, so the per-level stack stays small.
class Checker final : public nlohmann::json_sax<json> {
 public:
  enum class IdKind { kAbsent, kString, kInteger, kOther };

  Checker(const JsonRecordLimits& limits, std::string_view id_field) : limits_(limits), id_field_(id_field) {}

  bool null() override { return Value(Kind::kScalar, IdKind::kOther, {}); }
  bool boolean(bool) override { return Value(Kind::kScalar, IdKind::kOther, {}); }
  bool number_integer(number_integer_t v) override { return Value(Kind::kScalar, IdKind::kInteger, std::to_string(v)); }
  // The server reads integer ids as int64 (nlohmann get<int64_t>), so do the same.
  bool number_unsigned(number_unsigned_t v) override {
    return Value(Kind::kScalar, IdKind::kInteger, std::to_string(static_cast<int64_t>(v)));
  }
  bool number_float(number_float_t, const string_t&) override { return Value(Kind::kScalar, IdKind::kOther, {}); }
  bool string(string_t& v) override { return Value(Kind::kScalar, IdKind::kString, v); }
  bool binary(binary_t&) override { return Fail(absl::InvalidArgumentError("binary values are not JSON")); }
  bool start_object(std::size_t) override {
    if (!Value(Kind::kObject, IdKind::kOther, {})) return false;
    levels_.push_back(Level{true, 0, {}});
    return true;
  }
  bool key(string_t& k) override {
    if (!levels_.back().keys.insert(k).second) {
      return Fail(absl::InvalidArgumentError(fmt::format("duplicate key {:?}", k)));
    }
    pending_key_ = k;
    return true;
  }
  bool end_object() override {
    levels_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (!Value(Kind::kArray, IdKind::kOther, {})) return false;
    levels_.push_back(Level{false, 0, {}});
    return true;
  }
  bool end_array() override {
    levels_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
    return Fail(absl::InvalidArgumentError(fmt::format("not valid JSON (at byte {})", position)));
  }

  const absl::Status& status() const { return status_; }
  bool root_seen() const { return root_ != Kind::kNone; }
  bool root_is_object() const { return root_ == Kind::kObject; }
  IdKind id_kind() const { return id_kind_; }
  const std::string& id_text() const { return id_text_; }

 private:
  enum class Kind { kNone, kScalar, kObject, kArray };
  struct Level {
    bool is_object;
    uint64_t elements;
    std::set<std::string> keys;
  };

  bool Fail(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
    return false;
  }

  // Counts one JSON value at the current position.
  bool Value(Kind kind, IdKind id_kind, std::string id_text) {
    if (++nodes_ > limits_.max_nodes) {
      return Fail(absl::ResourceExhaustedError(
          fmt::format("more than {} JSON values (the collection's limits.max_nodes)", limits_.max_nodes)));
    }
    if (levels_.empty()) {
      root_ = kind;
      // Stop at once on a scalar or array root: nothing below it matters.
      if (kind != Kind::kObject) return false;
      return true;
    }
    Level& l = levels_.back();
    if (!l.is_object && ++l.elements > limits_.max_array_length) {
      return Fail(absl::ResourceExhaustedError(fmt::format(
          "an array has more than {} elements (the collection's limits.max_array_length)", limits_.max_array_length)));
    }
    if (levels_.size() == 1 && l.is_object && pending_key_ == id_field_ && !id_field_.empty()) {
      id_kind_ = id_kind;
      id_text_ = std::move(id_text);
    }
    return true;
  }

  const JsonRecordLimits& limits_;
  std::string id_field_;
  std::vector<Level> levels_;
  std::string pending_key_;
  uint64_t nodes_ = 0;
  Kind root_ = Kind::kNone;
  IdKind id_kind_ = IdKind::kAbsent;
  std::string id_text_;
  absl::Status status_;
};

const char* KindOfFirstByte(std::string_view text) {
  for (char c : text) {
    switch (c) {
      case ' ': case '\t': case '\n': case '\r': continue;
      case '[': return "an array";
      case '"': return "a string";
      case 't': case 'f': return "a boolean";
      case 'n': return "null";
      default: return "a number";
    }
  }
  return "empty";
}

absl::Status Check(std::string_view text, const JsonRecordLimits& limits, Checker* checker) {
  if (text.size() > limits.max_record_bytes) {
    return absl::ResourceExhaustedError(fmt::format("record is {} bytes, over the collection's limit of {} "
                                                    "(limits.max_record_bytes)",
                                                    text.size(), limits.max_record_bytes));
  }
  if (JsonNestingDepth(text, limits.max_depth) > limits.max_depth) {
    return absl::InvalidArgumentError(
        fmt::format("nests deeper than {} levels (the collection's limits.max_depth)", limits.max_depth));
  }
  const bool ok = json::sax_parse(text, checker, nlohmann::detail::input_format_t::json, /*strict=*/true);
  if (checker->root_seen() && !checker->root_is_object()) {
    return absl::InvalidArgumentError(fmt::format("not a JSON object (it is {})", KindOfFirstByte(text)));
  }
  if (!checker->status().ok()) return checker->status();
  if (!ok) return absl::InvalidArgumentError("not valid JSON");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JsonRecordLimits> JsonLimitsFromMbatConfig(std::string_view mbat_config_json) {
  JsonRecordLimits limits;
  if (mbat_config_json.empty()) return limits;
  const json j = json::parse(mbat_config_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("the collection's MBAT config is not a JSON object");
  auto it = j.find("limits");
  if (it == j.end() || !it->is_object()) return limits;
  auto get = [&](const char* name, auto* out) {
    auto f = it->find(name);
    if (f != it->end() && f->is_number_unsigned()) *out = static_cast<std::remove_reference_t<decltype(*out)>>(f->get<uint64_t>());
  };
  get("max_record_bytes", &limits.max_record_bytes);
  get("max_depth", &limits.max_depth);
  get("max_nodes", &limits.max_nodes);
  get("max_array_length", &limits.max_array_length);
  return limits;
}

absl::Status CheckJsonObject(std::string_view text, const JsonRecordLimits& limits) {
  Checker checker(limits, "");
  return Check(text, limits, &checker);
}

absl::StatusOr<std::string> JsonRecordId(std::string_view text, std::string_view id_field, const JsonRecordLimits& limits) {
  Checker checker(limits, id_field);
  if (absl::Status s = Check(text, limits, &checker); !s.ok()) return s;
  if (checker.id_kind() == Checker::IdKind::kAbsent) {
    return absl::InvalidArgumentError(fmt::format("record has no {:?} field (its id)", id_field));
  }
  if (checker.id_kind() == Checker::IdKind::kOther) {
    return absl::InvalidArgumentError(fmt::format("id field {:?} is not a string or an integer", id_field));
  }
  const std::string& id = checker.id_text();
  if (id.empty() || id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(
        fmt::format("id field {:?} is empty or longer than {} bytes", id_field, kMaxIdBytes));
  }
  return id;
}

absl::StatusOr<std::unique_ptr<RecordSource>> OpenJsonRecordsSource(const std::string& path,
                                                                    const JsonRecordSourceOptions& options) {
  return OpenJsonlLineSource(path, [options](std::string&& line, uint64_t line_no, SourceItem* item) {
    item->doc = DocRecord{};
    item->problem = absl::OkStatus();
    if (options.id_field.empty()) {
      item->problem = CheckJsonObject(line, options.limits);
      item->doc.id = fmt::format("{}", line_no);
    } else {
      absl::StatusOr<std::string> id = JsonRecordId(line, options.id_field, options.limits);
      if (id.ok()) {
        item->doc.id = *std::move(id);
      } else {
        item->problem = id.status();
      }
    }
    item->json = std::move(line);
  });
}

}  // namespace chamferdb::cli
