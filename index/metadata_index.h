// Metadata filtering: an in-memory inverted index from metadata values to labels, and the
// filter it evaluates (the domain form of proto/chamferdb/v1/filter.proto).
//
// Semantics (shared with filter.proto): paths address nested object fields with dots;
// arrays are transparent (a path through an array reaches every element and a condition
// holds when it holds for any reached value); JSON null counts as absent. Strings compare
// bytewise, numbers as doubles, booleans only with booleans.
//
// Data layout: per path, postings (label lists in increasing label order) for each string,
// each number (ordered by value, for ranges), true, false, and "has a non-null value".
// Evaluation builds one bit per label (LabelBitmap) and combines with and/or/and-not, so a
// filter costs O(matching postings + labels / 64), independent of the vector index.
// Labels are assigned in increasing order and never reused (as collections do); removed
// labels stay in the postings until a purge drops them once they are half of all postings.
//
// Thread-safety: none inside; the owning collection's reader/writer lock guards it (Add and
// Remove under the writer lock, Evaluate and Matches under the reader lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "common/types.h"

namespace chamferdb {

// One bit per label.
class LabelBitmap {
 public:
  LabelBitmap() = default;
  explicit LabelBitmap(size_t size, bool value = false);

  size_t size() const { return size_; }
  bool test(size_t i) const { return i < size_ && ((words_[i >> 6] >> (i & 63)) & 1); }
  void set(size_t i) { words_[i >> 6] |= uint64_t{1} << (i & 63); }
  void reset(size_t i) { words_[i >> 6] &= ~(uint64_t{1} << (i & 63)); }
  // Grows (new bits clear); never shrinks.
  void resize(size_t size);
  size_t count() const;
  void And(const LabelBitmap& o);
  void Or(const LabelBitmap& o);
  void AndNot(const LabelBitmap& o);
  // Calls fn(label) for every set bit in increasing order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t w = 0; w < words_.size(); ++w) {
      for (uint64_t bits = words_[w]; bits; bits &= bits - 1) fn(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
    }
  }

 private:
  void ClearTail();
  size_t size_ = 0;
  std::vector<uint64_t> words_;
};

// A scalar a condition compares with.
struct FilterValue {
  enum class Kind { kString, kNumber, kBool };
  Kind kind = Kind::kString;
  std::string string_value;
  double number_value = 0;
  bool bool_value = false;
};

struct FieldCondition {
  enum class Kind { kEquals, kAnyOf, kRange, kExists };
  std::string path;
  Kind kind = Kind::kEquals;
  std::vector<FilterValue> values;  // kEquals: one; kAnyOf: any number (none matches nothing)
  std::optional<double> gt, gte, lt, lte;  // kRange
  bool exists = true;                      // kExists
};

struct MetadataFilter;

// Exactly one of field / nested is set.
struct FilterCondition {
  std::optional<FieldCondition> field;
  std::shared_ptr<const MetadataFilter> nested;
};

// must: all hold; should: at least one holds (when non-empty); must_not: none holds.
struct MetadataFilter {
  std::vector<FilterCondition> must, should, must_not;
};

// Limits checked by ValidateFilter (also documented in filter.proto).
struct FilterLimits {
  static constexpr size_t kMaxDepth = 16;
  static constexpr size_t kMaxConditions = 1024;
  static constexpr size_t kMaxValues = 1024;
  static constexpr size_t kMaxPathBytes = 1024;
};

// INVALID_ARGUMENT (naming the condition, e.g. "filter.must[1].filter.should[0]") for an
// empty path, a range without bounds or with NaN bounds, or limits exceeded.
absl::Status ValidateFilter(const MetadataFilter& filter, std::string_view what = "filter");

class MetadataIndex {
 public:
  // Indexes the scalar leaves of `metadata_json` (a JSON object, or empty for none) under
  // `label`, which must exceed every label added before. INVALID_ARGUMENT if it is not
  // valid JSON (callers validate first, so this means a bug or a corrupt record).
  absl::Status Add(Label label, std::string_view metadata_json);
  // Forgets a label (absent labels are ignored).
  void Remove(Label label);

  // Live labels that match, as a bitmap over [0, num_labels).
  LabelBitmap Evaluate(const MetadataFilter& filter, size_t num_labels) const;
  // Live labels, as a bitmap over [0, num_labels).
  LabelBitmap Live(size_t num_labels) const;

  size_t live() const { return live_count_; }
  uint64_t memory_bytes() const { return memory_bytes_; }

 private:
  struct Postings {
    std::unordered_map<std::string, std::vector<Label>> strings;
    std::map<double, std::vector<Label>> numbers;
    std::vector<Label> trues, falses, present;
  };

  void Post(std::vector<Label>* list, Label label);
  LabelBitmap EvaluateField(const FieldCondition& c, size_t n) const;
  LabelBitmap EvaluateFilter(const MetadataFilter& f, size_t n) const;
  void Purge();

  std::unordered_map<std::string, Postings> paths_;
  LabelBitmap live_;
  std::vector<uint32_t> postings_of_;  // by label: how many postings it owns
  size_t live_count_ = 0;
  uint64_t postings_ = 0, dead_postings_ = 0;
  uint64_t memory_bytes_ = 0;
  int64_t last_label_ = -1;
};

}  // namespace chamferdb
