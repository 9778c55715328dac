#include "index/metadata_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/absl_fmt.h"

namespace chamferdb {

// ---- LabelBitmap ----

LabelBitmap::LabelBitmap(size_t size, bool value) : size_(size), words_((size + 63) / 64, value ? ~uint64_t{0} : 0) {
  ClearTail();
}

void LabelBitmap::resize(size_t size) {
  if (size <= size_) return;
  size_ = size;
  words_.resize((size + 63) / 64, 0);
}

void LabelBitmap::ClearTail() {
  if (size_ % 64 != 0 && !words_.empty()) words_.back() &= (uint64_t{1} << (size_ % 64)) - 1;
}

size_t LabelBitmap::count() const {
  size_t c = 0;
  for (uint64_t w : words_) c += static_cast<size_t>(std::popcount(w));
  return c;
}

void LabelBitmap::And(const LabelBitmap& o) {
  for (size_t i = 0; i < words_.size(); ++i) words_[i] &= i < o.words_.size() ? o.words_[i] : 0;
}

void LabelBitmap::Or(const LabelBitmap& o) {
  for (size_t i = 0; i < words_.size() && i < o.words_.size(); ++i) words_[i] |= o.words_[i];
  ClearTail();
}

void LabelBitmap::AndNot(const LabelBitmap& o) {
  for (size_t i = 0; i < words_.size() && i < o.words_.size(); ++i) words_[i] &= ~o.words_[i];
}

// ---- validation ----

namespace {

absl::Status ValidateLevel(const MetadataFilter& f, std::string_view what, size_t depth, size_t* conditions) {
  if (depth > FilterLimits::kMaxDepth) {
    return absl::InvalidArgumentError(fmt::format("{}: filters nest deeper than {}", what, FilterLimits::kMaxDepth));
  }
  const std::pair<const std::vector<FilterCondition>*, const char*> groups[] = {
      {&f.must, "must"}, {&f.should, "should"}, {&f.must_not, "must_not"}};
  for (const auto& [list, name] : groups) {
    for (size_t i = 0; i < list->size(); ++i) {
      const FilterCondition& c = (*list)[i];
      const std::string at = fmt::format("{}.{}[{}]", what, name, i);
      if (++*conditions > FilterLimits::kMaxConditions) {
        return absl::InvalidArgumentError(
            fmt::format("{}: a filter may hold at most {} conditions", at, FilterLimits::kMaxConditions));
      }
      if (c.nested) {
        if (absl::Status s = ValidateLevel(*c.nested, at + ".filter", depth + 1, conditions); !s.ok()) return s;
        continue;
      }
      if (!c.field) return absl::InvalidArgumentError(fmt::format("{}: condition is empty (set field or filter)", at));
      const FieldCondition& fc = *c.field;
      if (fc.path.empty()) return absl::InvalidArgumentError(fmt::format("{}.field.path is empty", at));
      if (fc.path.size() > FilterLimits::kMaxPathBytes) {
        return absl::InvalidArgumentError(
            fmt::format("{}.field.path of {} bytes exceeds {}", at, fc.path.size(), FilterLimits::kMaxPathBytes));
      }
      if (fc.path.front() == '.' || fc.path.back() == '.' || fc.path.find("..") != std::string::npos) {
        return absl::InvalidArgumentError(fmt::format("{}.field.path {:?} has an empty segment", at, fc.path));
      }
      if (fc.values.size() > FilterLimits::kMaxValues) {
        return absl::InvalidArgumentError(
            fmt::format("{}.field.any_of has {} values, more than {}", at, fc.values.size(), FilterLimits::kMaxValues));
      }
      for (const FilterValue& v : fc.values) {
        if (v.kind == FilterValue::Kind::kNumber && !std::isfinite(v.number_value)) {
          return absl::InvalidArgumentError(fmt::format("{}.field: match values must be finite numbers", at));
        }
      }
      if (fc.kind == FieldCondition::Kind::kEquals && fc.values.size() != 1) {
        return absl::InvalidArgumentError(fmt::format("{}.field.equals needs exactly one value", at));
      }
      if (fc.kind == FieldCondition::Kind::kRange) {
        if (!fc.gt && !fc.gte && !fc.lt && !fc.lte) {
          return absl::InvalidArgumentError(fmt::format("{}.field.range sets no bound (gt, gte, lt, lte)", at));
        }
        for (const auto& b : {fc.gt, fc.gte, fc.lt, fc.lte}) {
          if (b && std::isnan(*b)) return absl::InvalidArgumentError(fmt::format("{}.field.range bound is NaN", at));
        }
      }
    }
  }
  return absl::OkStatus();
}

// Calls fn(path, value) for every non-null scalar leaf; arrays do not add to the path.
template <typename Fn>
void Leaves(const nlohmann::json& j, std::string* path, Fn&& fn) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const size_t mark = path->size();
      if (!path->empty()) path->push_back('.');
      path->append(it.key());
      Leaves(it.value(), path, fn);
      path->resize(mark);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) Leaves(e, path, fn);
  } else if (!j.is_null() && !path->empty()) {
    fn(*path, j);
  }
}

}  // namespace

absl::Status ValidateFilter(const MetadataFilter& filter, std::string_view what) {
  size_t conditions = 0;
  return ValidateLevel(filter, what, 1, &conditions);
}

// ---- MetadataIndex ----

void MetadataIndex::Post(std::vector<Label>* list, Label label) {
  // A document's leaves are added together, so a repeated (path, value) is the last entry.
  if (!list->empty() && list->back() == label) return;
  list->push_back(label);
  ++postings_of_[label];
  ++postings_;
  memory_bytes_ += sizeof(Label);
}

absl::Status MetadataIndex::Add(Label label, std::string_view metadata_json) {
  if (label <= last_label_) {
    return absl::InvalidArgumentError(fmt::format("metadata label {} is not above {}", label, last_label_));
  }
  nlohmann::json j;
  if (!metadata_json.empty()) {
    j = nlohmann::json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return absl::InvalidArgumentError(fmt::format("metadata of label {} is not valid JSON", label));
  }
  last_label_ = label;
  const size_t n = static_cast<size_t>(label) + 1;
  live_.resize(n);
  if (postings_of_.size() < n) postings_of_.resize(n, 0);
  live_.set(static_cast<size_t>(label));
  ++live_count_;
  std::string path;
  Leaves(j, &path, [&](const std::string& p, const nlohmann::json& v) {
    auto [it, inserted] = paths_.try_emplace(p);
    if (inserted) memory_bytes_ += sizeof(Postings) + p.size() + 64;
    Postings& post = it->second;
    Post(&post.present, label);
    if (v.is_string()) {
      auto [s, fresh] = post.strings.try_emplace(v.get_ref<const std::string&>());
      if (fresh) memory_bytes_ += s->first.size() + 64;
      Post(&s->second, label);
    } else if (v.is_boolean()) {
      Post(v.get<bool>() ? &post.trues : &post.falses, label);
    } else if (v.is_number()) {
      auto [s, fresh] = post.numbers.try_emplace(v.get<double>());
      if (fresh) memory_bytes_ += 64;
      Post(&s->second, label);
    }
  });
  return absl::OkStatus();
}

void MetadataIndex::Remove(Label label) {
  if (label < 0 || !live_.test(static_cast<size_t>(label))) return;
  live_.reset(static_cast<size_t>(label));
  --live_count_;
  dead_postings_ += postings_of_[label];
  postings_of_[label] = 0;
  if (dead_postings_ > 4096 && dead_postings_ * 2 > postings_) Purge();
}

void MetadataIndex::Purge() {
  auto clean = [&](std::vector<Label>* list) {
    std::erase_if(*list, [&](Label l) { return !live_.test(static_cast<size_t>(l)); });
    list->shrink_to_fit();
  };
  for (auto pit = paths_.begin(); pit != paths_.end();) {
    Postings& p = pit->second;
    for (auto it = p.strings.begin(); it != p.strings.end();) {
      clean(&it->second);
      it = it->second.empty() ? p.strings.erase(it) : std::next(it);
    }
    for (auto it = p.numbers.begin(); it != p.numbers.end();) {
      clean(&it->second);
      it = it->second.empty() ? p.numbers.erase(it) : std::next(it);
    }
    clean(&p.trues);
    clean(&p.falses);
    clean(&p.present);
    pit = p.present.empty() ? paths_.erase(pit) : std::next(pit);
  }
  postings_ -= dead_postings_;
  dead_postings_ = 0;
  // Re-estimate memory from what is left.
  memory_bytes_ = postings_ * sizeof(Label);
  for (const auto& [path, p] : paths_) {
    memory_bytes_ += sizeof(Postings) + path.size() + 64 + p.numbers.size() * 64;
    for (const auto& [s, list] : p.strings) memory_bytes_ += s.size() + 64;
  }
}

LabelBitmap MetadataIndex::Live(size_t num_labels) const {
  LabelBitmap b(num_labels);
  live_.ForEach([&](size_t l) {
    if (l < num_labels) b.set(l);
  });
  return b;
}

LabelBitmap MetadataIndex::EvaluateField(const FieldCondition& c, size_t n) const {
  LabelBitmap out(n);
  auto it = paths_.find(c.path);
  if (it == paths_.end()) {
    if (c.kind == FieldCondition::Kind::kExists && !c.exists) out = LabelBitmap(n, true);
    return out;
  }
  const Postings& p = it->second;
  auto mark = [&](const std::vector<Label>& list) {
    for (Label l : list) {
      if (static_cast<size_t>(l) < n) out.set(static_cast<size_t>(l));
    }
  };
  auto mark_value = [&](const FilterValue& v) {
    switch (v.kind) {
      case FilterValue::Kind::kString: {
        auto s = p.strings.find(v.string_value);
        if (s != p.strings.end()) mark(s->second);
        break;
      }
      case FilterValue::Kind::kNumber: {
        auto s = p.numbers.find(v.number_value);
        if (s != p.numbers.end()) mark(s->second);
        break;
      }
      case FilterValue::Kind::kBool: mark(v.bool_value ? p.trues : p.falses); break;
    }
  };
  switch (c.kind) {
    case FieldCondition::Kind::kEquals:
    case FieldCondition::Kind::kAnyOf:
      for (const FilterValue& v : c.values) mark_value(v);
      break;
    case FieldCondition::Kind::kRange: {
      double lo = -HUGE_VAL, hi = HUGE_VAL;
      bool lo_open = false, hi_open = false;
      if (c.gte) lo = *c.gte;
      if (c.gt && (!c.gte || *c.gt >= *c.gte)) lo = *c.gt, lo_open = true;
      if (c.lte) hi = *c.lte;
      if (c.lt && (!c.lte || *c.lt <= *c.lte)) hi = *c.lt, hi_open = true;
      for (auto s = lo_open ? p.numbers.upper_bound(lo) : p.numbers.lower_bound(lo); s != p.numbers.end(); ++s) {
        if (s->first > hi || (hi_open && s->first == hi)) break;
        mark(s->second);
      }
      break;
    }
    case FieldCondition::Kind::kExists:
      mark(p.present);
      if (!c.exists) {
        LabelBitmap all(n, true);
        all.AndNot(out);
        out = std::move(all);
      }
      break;
  }
  return out;
}

LabelBitmap MetadataIndex::EvaluateFilter(const MetadataFilter& f, size_t n) const {
  auto eval = [&](const FilterCondition& c) { return c.nested ? EvaluateFilter(*c.nested, n) : EvaluateField(*c.field, n); };
  LabelBitmap out(n, true);
  for (const auto& c : f.must) out.And(eval(c));
  if (!f.should.empty()) {
    LabelBitmap any(n);
    for (const auto& c : f.should) any.Or(eval(c));
    out.And(any);
  }
  for (const auto& c : f.must_not) out.AndNot(eval(c));
  return out;
}

LabelBitmap MetadataIndex::Evaluate(const MetadataFilter& filter, size_t num_labels) const {
  LabelBitmap out = EvaluateFilter(filter, num_labels);
  out.And(Live(num_labels));
  return out;
}

}  // namespace chamferdb
