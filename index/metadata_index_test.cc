#include "index/metadata_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/rng.h"
#include "common/status_matchers.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

// ---- the reference: the filter semantics evaluated directly on the JSON document ----

// Every non-null scalar reached by `path` (dots into objects, arrays transparent).
void Reach(const nlohmann::json& j, const std::vector<std::string>& segs, size_t i, std::vector<nlohmann::json>* out) {
  if (j.is_array()) {
    for (const auto& e : j) Reach(e, segs, i, out);
    return;
  }
  if (i == segs.size()) {
    if (!j.is_null() && !j.is_object()) out->push_back(j);
    return;
  }
  if (j.is_object() && j.contains(segs[i])) Reach(j.at(segs[i]), segs, i + 1, out);
}

bool ValueEquals(const nlohmann::json& v, const FilterValue& f) {
  switch (f.kind) {
    case FilterValue::Kind::kString: return v.is_string() && v.get<std::string>() == f.string_value;
    case FilterValue::Kind::kNumber: return v.is_number() && v.get<double>() == f.number_value;
    case FilterValue::Kind::kBool: return v.is_boolean() && v.get<bool>() == f.bool_value;
  }
  return false;
}

bool RefMatches(const MetadataFilter& f, const nlohmann::json& doc);

bool RefField(const FieldCondition& c, const nlohmann::json& doc) {
  std::vector<std::string> segs;
  size_t start = 0;
  for (size_t dot; (dot = c.path.find('.', start)) != std::string::npos; start = dot + 1) segs.push_back(c.path.substr(start, dot - start));
  segs.push_back(c.path.substr(start));
  std::vector<nlohmann::json> values;
  Reach(doc, segs, 0, &values);
  switch (c.kind) {
    case FieldCondition::Kind::kExists: return values.empty() != c.exists;
    case FieldCondition::Kind::kEquals:
    case FieldCondition::Kind::kAnyOf:
      for (const auto& v : values)
        for (const auto& f : c.values)
          if (ValueEquals(v, f)) return true;
      return false;
    case FieldCondition::Kind::kRange:
      for (const auto& v : values) {
        if (!v.is_number()) continue;
        const double x = v.get<double>();
        if ((!c.gt || x > *c.gt) && (!c.gte || x >= *c.gte) && (!c.lt || x < *c.lt) && (!c.lte || x <= *c.lte)) return true;
      }
      return false;
  }
  return false;
}

bool RefCondition(const FilterCondition& c, const nlohmann::json& doc) {
  return c.nested ? RefMatches(*c.nested, doc) : RefField(*c.field, doc);
}

bool RefMatches(const MetadataFilter& f, const nlohmann::json& doc) {
  for (const auto& c : f.must)
    if (!RefCondition(c, doc)) return false;
  if (!f.should.empty()) {
    bool any = false;
    for (const auto& c : f.should) any = any || RefCondition(c, doc);
    if (!any) return false;
  }
  for (const auto& c : f.must_not)
    if (RefCondition(c, doc)) return false;
  return true;
}

// ---- random documents and filters over a small vocabulary, so conditions hit ----

const char* kLangs[] = {"en", "fr", "de", "ja"};
const char* kTags[] = {"red", "green", "blue", "draft"};

nlohmann::json RandomDoc(Rng& rng) {
  nlohmann::json d = nlohmann::json::object();
  if (rng.UniformInt(10) < 8) d["lang"] = kLangs[rng.UniformInt(4)];
  if (rng.UniformInt(10) < 7) d["year"] = 2000 + static_cast<int>(rng.UniformInt(25));
  if (rng.UniformInt(10) < 5) d["score"] = rng.Uniform() * 10 - 5;
  if (rng.UniformInt(10) < 6) d["public"] = rng.UniformInt(2) == 1;
  if (rng.UniformInt(10) < 2) d["public"] = nullptr;  // null counts as absent
  if (rng.UniformInt(10) < 6) {
    nlohmann::json tags = nlohmann::json::array();
    for (uint64_t i = 0, n = rng.UniformInt(4); i < n; ++i) tags.push_back(kTags[rng.UniformInt(4)]);
    d["tags"] = tags;
  }
  if (rng.UniformInt(10) < 5) {
    d["addr"] = {{"geo", {{"cc", kLangs[rng.UniformInt(4)]}, {"zip", static_cast<int>(rng.UniformInt(5))}}}};
  }
  if (rng.UniformInt(10) < 3) d["items"] = {{{"sku", "a"}, {"qty", 1}}, {{"sku", "b"}, {"qty", static_cast<int>(rng.UniformInt(4))}}};
  if (rng.UniformInt(10) < 2) d["year"] = "2010";  // a string never equals a number
  return d;
}

FilterValue RandomValue(Rng& rng, const std::string& path) {
  FilterValue v;
  if (path == "lang" || path == "addr.geo.cc") {
    v.kind = FilterValue::Kind::kString;
    v.string_value = kLangs[rng.UniformInt(4)];
  } else if (path == "tags" || path == "items.sku") {
    v.kind = FilterValue::Kind::kString;
    v.string_value = path == "tags" ? kTags[rng.UniformInt(4)] : (rng.UniformInt(2) ? "a" : "b");
  } else if (path == "public") {
    v.kind = FilterValue::Kind::kBool;
    v.bool_value = rng.UniformInt(2) == 1;
  } else {
    v.kind = FilterValue::Kind::kNumber;
    v.number_value = path == "year" ? 2000 + static_cast<double>(rng.UniformInt(25)) : static_cast<double>(rng.UniformInt(5));
  }
  return v;
}

MetadataFilter RandomFilter(Rng& rng, int depth);

FilterCondition RandomCondition(Rng& rng, int depth) {
  FilterCondition c;
  if (depth < 3 && rng.UniformInt(5) == 0) {
    c.nested = std::make_shared<MetadataFilter>(RandomFilter(rng, depth + 1));
    return c;
  }
  static const char* kPaths[] = {"lang", "year", "score", "public", "tags", "addr.geo.cc", "addr.geo.zip", "items.sku", "items.qty", "missing"};
  FieldCondition f;
  f.path = kPaths[rng.UniformInt(10)];
  switch (rng.UniformInt(4)) {
    case 0: f.kind = FieldCondition::Kind::kEquals; f.values = {RandomValue(rng, f.path)}; break;
    case 1:
      f.kind = FieldCondition::Kind::kAnyOf;
      for (uint64_t i = 0, n = rng.UniformInt(4); i < n; ++i) f.values.push_back(RandomValue(rng, f.path));
      break;
    case 2: {
      f.kind = FieldCondition::Kind::kRange;
      const double a = f.path == "year" ? 2000 + static_cast<double>(rng.UniformInt(25)) : rng.Uniform() * 10 - 5;
      const double b = a + (f.path == "year" ? static_cast<double>(rng.UniformInt(8)) : rng.Uniform() * 4);
      if (rng.UniformInt(2)) f.gte = a; else f.gt = a;
      if (rng.UniformInt(3)) { if (rng.UniformInt(2)) f.lte = b; else f.lt = b; }
      break;
    }
    default: f.kind = FieldCondition::Kind::kExists; f.exists = rng.UniformInt(2) == 1; break;
  }
  c.field = f;
  return c;
}

MetadataFilter RandomFilter(Rng& rng, int depth) {
  MetadataFilter f;
  for (uint64_t i = 0, n = rng.UniformInt(3); i < n; ++i) f.must.push_back(RandomCondition(rng, depth));
  for (uint64_t i = 0, n = rng.UniformInt(3); i < n; ++i) f.should.push_back(RandomCondition(rng, depth));
  for (uint64_t i = 0, n = rng.UniformInt(2); i < n; ++i) f.must_not.push_back(RandomCondition(rng, depth));
  return f;
}

TEST(LabelBitmapTest, SetCountAndCombine) {
  LabelBitmap a(130), b(130, true);
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(b.count(), 130u);
  a.set(0), a.set(64), a.set(129);
  EXPECT_TRUE(a.test(129));
  EXPECT_FALSE(a.test(130));  // out of range reads as clear
  b.AndNot(a);
  EXPECT_EQ(b.count(), 127u);
  b.Or(a);
  EXPECT_EQ(b.count(), 130u);
  std::vector<size_t> seen;
  a.ForEach([&](size_t i) { seen.push_back(i); });
  EXPECT_EQ(seen, (std::vector<size_t>{0, 64, 129}));
}

// The index agrees with the direct evaluation on every document for many random filters,
// including after removals and the purge they trigger.
TEST(MetadataIndexTest, MatchesDirectEvaluationOnRandomFilters) {
  Rng rng(DeriveSeed(42, 1, 0));
  const size_t n = 6000;
  std::vector<nlohmann::json> docs(n);
  MetadataIndex index;
  for (size_t i = 0; i < n; ++i) {
    docs[i] = RandomDoc(rng);
    ASSERT_OK(index.Add(static_cast<Label>(i), i % 97 == 0 ? "" : docs[i].dump()));
    if (i % 97 == 0) docs[i] = nlohmann::json::object();
  }
  std::vector<bool> live(n, true);
  for (int round = 0; round < 2; ++round) {
    for (int t = 0; t < 150; ++t) {
      const MetadataFilter f = RandomFilter(rng, 1);
      ASSERT_OK(ValidateFilter(f));
      const LabelBitmap got = index.Evaluate(f, n);
      size_t expected_count = 0;
      for (size_t i = 0; i < n; ++i) {
        const bool want = live[i] && RefMatches(f, docs[i]);
        expected_count += want;
        ASSERT_EQ(got.test(i), want) << "round " << round << " filter " << t << " doc " << i << " " << docs[i].dump();
      }
      EXPECT_EQ(got.count(), expected_count);
    }
    // Remove two thirds (enough to purge) and check again.
    for (size_t i = 0; i < n; ++i) {
      if (i % 3 != 0 && live[i]) {
        index.Remove(static_cast<Label>(i));
        live[i] = false;
      }
    }
    EXPECT_EQ(index.live(), static_cast<size_t>(std::count(live.begin(), live.end(), true)));
  }
}

TEST(MetadataIndexTest, SemanticsSpelledOut) {
  MetadataIndex index;
  ASSERT_OK(index.Add(0, R"({"tags":["red","blue"],"n":3,"s":"3","b":true,"z":null,"o":{"k":[{"v":1},{"v":2}]}})"));
  ASSERT_OK(index.Add(1, R"({"tags":"red","n":3.0})"));
  ASSERT_OK(index.Add(5, ""));  // labels may skip
  auto eq = [](std::string path, FilterValue v) {
    FilterCondition c;
    c.field = FieldCondition{.path = std::move(path), .kind = FieldCondition::Kind::kEquals, .values = {std::move(v)}};
    return c;
  };
  auto num = [](double d) { return FilterValue{.kind = FilterValue::Kind::kNumber, .number_value = d}; };
  auto str = [](std::string s) { return FilterValue{.kind = FilterValue::Kind::kString, .string_value = std::move(s)}; };
  auto matches = [&](const FilterCondition& c) {
    MetadataFilter f;
    f.must = {c};
    std::vector<size_t> out;
    index.Evaluate(f, 6).ForEach([&](size_t l) { out.push_back(l); });
    return out;
  };
  EXPECT_EQ(matches(eq("tags", str("blue"))), (std::vector<size_t>{0}));   // any array element
  EXPECT_EQ(matches(eq("tags", str("red"))), (std::vector<size_t>{0, 1}));  // array or scalar
  EXPECT_EQ(matches(eq("n", num(3))), (std::vector<size_t>{0, 1}));         // 3 == 3.0
  EXPECT_EQ(matches(eq("s", num(3))), (std::vector<size_t>{}));             // "3" != 3
  EXPECT_EQ(matches(eq("o.k.v", num(2))), (std::vector<size_t>{0}));        // through an array of objects
  FilterCondition exists_z;
  exists_z.field = FieldCondition{.path = "z", .kind = FieldCondition::Kind::kExists, .exists = false};
  EXPECT_EQ(matches(exists_z), (std::vector<size_t>{0, 1, 5}));  // null is absent
  FilterCondition range;
  range.field = FieldCondition{.path = "n", .kind = FieldCondition::Kind::kRange, .gt = 3};
  EXPECT_EQ(matches(range), (std::vector<size_t>{}));
  range.field->gt.reset();
  range.field->gte = 3;
  EXPECT_EQ(matches(range), (std::vector<size_t>{0, 1}));
  EXPECT_THAT(index.Add(5, "{}"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not above")));
}

TEST(MetadataIndexTest, ValidationNamesTheCondition) {
  MetadataFilter f;
  FilterCondition ok, bad;
  ok.field = FieldCondition{.path = "a", .kind = FieldCondition::Kind::kExists};
  bad.field = FieldCondition{.path = "a", .kind = FieldCondition::Kind::kRange};
  f.must = {ok};
  f.should = {ok, bad};
  EXPECT_THAT(ValidateFilter(f), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("filter.should[1].field.range")));
  bad.field = FieldCondition{.path = "a..b", .kind = FieldCondition::Kind::kExists};
  f.should = {bad};
  EXPECT_THAT(ValidateFilter(f), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty segment")));
  // Depth: 17 levels of nesting are refused, without recursion trouble.
  MetadataFilter deep;
  deep.must = {ok};
  for (int i = 0; i < 20; ++i) {
    MetadataFilter outer;
    FilterCondition c;
    c.nested = std::make_shared<MetadataFilter>(deep);
    outer.must = {c};
    deep = outer;
  }
  EXPECT_THAT(ValidateFilter(deep), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nest deeper")));
}

}  // namespace
}  // namespace chamferdb
