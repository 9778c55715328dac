// MBAT-JSON encoder tests at D = 1024: the spec's structural properties (§6.3), the
// numeric kernel (§6.4), an independent leaf-by-leaf reference of the encoding rules
// (§3.4), probing (§3.7), persistence, batching and hostile input.
#include "encoders/mbat_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/rng.h"
#include "common/status_matchers.h"
#include <fmt/format.h>
#include <zlib.h>

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr size_t kD = 1024;
const double kQuasiOrthogonal = 4.0 / std::sqrt(double(kD));  // 0.125

const MbatJsonEncoder& Encoder(MbatOpKind kind) {
  static std::map<MbatOpKind, std::unique_ptr<MbatJsonEncoder>>* encoders =
      new std::map<MbatOpKind, std::unique_ptr<MbatJsonEncoder>>();
  auto& e = (*encoders)[kind];
  if (!e) {
    MbatConfig c;
    c.dim = kD;
    c.seed = 2024;
    c.op_kind = kind;
    e = *MbatJsonEncoder::Create(c);
  }
  return *e;
}

std::vector<float> Enc(const MbatJsonEncoder& enc, const std::string& json) {
  std::vector<float> v(enc.dim());
  absl::Status s = enc.Encode(json, v.data());
  EXPECT_TRUE(s.ok()) << json << ": " << s;
  return v;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double{a[i]} * b[i];
  return s;
}

double Cos(const std::vector<float>& a, const std::vector<float>& b) {
  return Dot(a, b) / std::sqrt(Dot(a, a) * Dot(b, b));
}

class MbatStructure : public ::testing::TestWithParam<MbatOpKind> {
 protected:
  double CosOf(const std::string& a, const std::string& b) {
    const MbatJsonEncoder& e = Encoder(GetParam());
    return Dot(Enc(e, a), Enc(e, b));
  }
};

TEST_P(MbatStructure, ReorderedKeysGiveBitIdenticalVectors) {
  const MbatJsonEncoder& e = Encoder(GetParam());
  const auto a = Enc(e, R"({"b":1,"a":{"y":[1,2,{"q":null}],"x":"s"},"c":true})");
  const auto b = Enc(e, R"({"c":true,"a":{"x":"s","y":[1,2,{"q":null}]},"b":1})");
  EXPECT_EQ(std::memcmp(a.data(), b.data(), kD * sizeof(float)), 0);
}

TEST_P(MbatStructure, SwapsOfNestingRoleAndOrderAreQuasiOrthogonal) {
  EXPECT_LE(std::fabs(CosOf(R"({"a":{"b":"x"}})", R"({"b":{"a":"x"}})")), kQuasiOrthogonal);
  EXPECT_LE(std::fabs(CosOf(R"({"a":"x","b":"y"})", R"({"a":"y","b":"x"})")), kQuasiOrthogonal);
  EXPECT_LE(std::fabs(CosOf(R"({"a":"x"})", R"({"b":"x"})")), kQuasiOrthogonal);
  EXPECT_LE(std::fabs(CosOf(R"({"t":[["a","b"]]})", R"({"t":[["b","a"]]})")), kQuasiOrthogonal);
  EXPECT_LE(std::fabs(CosOf(R"({"a":1})", R"({"a":"1"})")), kQuasiOrthogonal);
  EXPECT_LE(std::fabs(CosOf(R"({"a":1})", R"({"a":true})")), kQuasiOrthogonal);
  EXPECT_LE(std::fabs(CosOf(R"({"a":"x"})", R"({"a":["x"]})")), kQuasiOrthogonal);
  Json fwd = Json::array(), rev = Json::array();
  for (int i = 0; i < 10; ++i) fwd.push_back("item" + std::to_string(i));
  for (int i = 9; i >= 0; --i) rev.push_back("item" + std::to_string(i));
  EXPECT_LE(std::fabs(CosOf(Json{{"t", fwd}}.dump(), Json{{"t", rev}}.dump())), kQuasiOrthogonal);
}

TEST_P(MbatStructure, PartialOverlapScoresLikeOchiai) {
  // [a,b,c] vs [b,a,c] share one (position, value) leaf of three.
  EXPECT_NEAR(CosOf(R"({"t":["a","b","c"]})", R"({"t":["b","a","c"]})"), 1.0 / 3, kQuasiOrthogonal);
  // Appending a 10th element keeps 9 shared leaves: 9/√90.
  Json nine = Json::array(), ten;
  for (int i = 0; i < 9; ++i) nine.push_back(i * 1000);
  ten = nine;
  ten.push_back("new");
  EXPECT_NEAR(CosOf(Json{{"t", nine}}.dump(), Json{{"t", ten}}.dump()), 9 / std::sqrt(90.0),
              kQuasiOrthogonal);
}

INSTANTIATE_TEST_SUITE_P(AllOperators, MbatStructure,
                         ::testing::Values(MbatOpKind::kSrht, MbatOpKind::kSignedPerm,
                                           MbatOpKind::kDenseHaar),
                         [](const auto& info) { return std::string(MbatOpKindName(info.param)); });

// The MAP/BSC-style baseline (binding = element-wise product with a ±1 key vector) commutes,
// so {"a":{"b":x}} and {"b":{"a":x}} collide; MBAT's operators do not.
TEST(MbatBaseline, DiagonalBindingFailsTheNestedSwapTest) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  std::vector<float> x(kD), ab(kD), ba(kD), scratch(kD);
  e.Atom("str", "x", x.data());
  auto da = mbat::OrthoOp::Create(mbat::OpKind::kDiagonal, kD, MbatHash(1, "key-op", "a"));
  auto db = mbat::OrthoOp::Create(mbat::OpKind::kDiagonal, kD, MbatHash(1, "key-op", "b"));
  db->Apply(x.data(), ab.data(), scratch.data());
  da->Apply(ab.data(), ab.data(), scratch.data());
  da->Apply(x.data(), ba.data(), scratch.data());
  db->Apply(ba.data(), ba.data(), scratch.data());
  EXPECT_GT(Cos(ab, ba), 0.999);  // fails |cos| ≤ 4/√D
  const double mbat = Dot(Enc(e, R"({"a":{"b":"x"}})"), Enc(e, R"({"b":{"a":"x"}})"));
  EXPECT_LE(std::fabs(mbat), kQuasiOrthogonal);
}

// Independent reference of §3.4: a recursive encoder over nlohmann's DOM that applies
// S^{i+1} to each element separately (no recurrence) and sums in the spec's order.
std::vector<double> Reference(const MbatJsonEncoder& enc, const Json& v) {
  const MbatConfig& c = enc.config();
  const size_t d = enc.dim();
  std::vector<float> f(d), scratch(d);
  std::vector<double> out(d, 0.0);
  auto add = [&](const std::vector<float>& x, double w) {
    for (size_t i = 0; i < d; ++i) out[i] += w * x[i];
  };
  MbatLeaf leaf;
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it) {  // nlohmann's object is sorted
      const std::vector<double> child = Reference(enc, it.value());
      std::vector<float> cf(child.begin(), child.end());
      enc.KeyOp(it.key())->Apply(cf.data(), f.data(), scratch.data());
      add(f, 1.0);
      add(cf, c.beta_bag);
      enc.Atom("key", it.key(), f.data());
      add(f, c.gamma_keys);
    }
  } else if (v.is_array() && !v.empty()) {
    const size_t n = v.size();
    for (size_t i = 0; i < n; ++i) {
      const std::vector<double> child = Reference(enc, v[i]);
      std::vector<float> cf(child.begin(), child.end());
      add(cf, c.beta_bag);
      const size_t power = c.seq_from == MbatSeqFrom::kStart ? i + 1 : n - i;
      for (size_t p = 0; p < power; ++p) enc.SeqOp().Apply(cf.data(), cf.data(), scratch.data());
      add(cf, 1.0);
    }
  } else {
    if (v.is_null()) leaf.type = MbatLeaf::Type::kNull;
    else if (v.is_boolean()) leaf.type = v.get<bool>() ? MbatLeaf::Type::kTrue : MbatLeaf::Type::kFalse;
    else if (v.is_number()) leaf.type = MbatLeaf::Type::kNumber, leaf.number = v.get<double>();
    else if (v.is_string()) leaf.type = MbatLeaf::Type::kString, leaf.str = v.get<std::string>();
    else if (v.is_object()) leaf.type = MbatLeaf::Type::kEmptyObject;
    else leaf.type = MbatLeaf::Type::kEmptyArray;
    enc.EncodeLeaf(leaf, f.data());
    add(f, 1.0);
    return out;
  }
  if (c.normalize == MbatNormalize::kPerNode) {
    double s = 0;
    for (double x : out) s += x * x;
    for (double& x : out) x /= std::sqrt(s);
  }
  return out;
}

TEST(MbatEncoder, MatchesTheLeafByLeafReferenceForEveryOption) {
  const std::vector<std::string> records = {
      R"({"a":1})",
      R"({"name":"Ann","age":41,"tags":["x","y","z"],"addr":{"city":"Paris","geo":{"cc":"FR"}}})",
      R"({"items":[{"sku":"A","qty":2},{"sku":"B","qty":1}],"e":{},"f":[],"n":null,"t":true})",
      R"({"m":[[1,2],[3,[4,{"k":"v"}]]],"s":"Hello, wide World","neg":-12.5})",
  };
  MbatConfig base;
  base.dim = kD;
  base.seed = 9;
  std::vector<MbatConfig> configs(6, base);
  configs[1].beta_bag = 0.5f;
  configs[2].gamma_keys = 0.3f;
  configs[3].normalize = MbatNormalize::kPerNode;
  configs[4].seq_from = MbatSeqFrom::kEnd;
  configs[4].str_mode = MbatStringMode::kTokens;
  configs[5].op_kind = MbatOpKind::kSignedPerm;
  configs[5].str_mode = MbatStringMode::kTrigram;
  configs[5].num_transform = MbatNumTransform::kLinear;
  configs[5].num_scale = 10.0;
  for (const MbatConfig& c : configs) {
    auto enc = *MbatJsonEncoder::Create(c);
    for (const std::string& r : records) {
      std::vector<double> ref = Reference(*enc, Json::parse(r));
      double norm = 0;
      for (double x : ref) norm += x * x;
      norm = std::sqrt(norm);
      std::vector<float> got(kD);
      MbatEncodeInfo info;
      ASSERT_OK(enc->Encode(r, got.data(), &info));
      EXPECT_NEAR(info.raw_norm, norm, 1e-4 * norm) << MbatConfigToJson(c) << " " << r;
      double worst = 0;
      for (size_t i = 0; i < kD; ++i) worst = std::max(worst, std::fabs(got[i] - ref[i] / norm));
      EXPECT_LT(worst, 2e-5) << MbatConfigToJson(c) << " " << r;
    }
  }
}

// Repeated (key, leaf) pairs are served from the bound-leaf memo after their second
// sighting; the vectors must keep the bits of a fresh encoder that never saw them.
TEST(MbatEncoder, BoundLeafMemoNeverChangesTheBits) {
  const std::vector<std::string> records = {
      R"({"c":"x","n":5,"flag":true,"o":null,"e":{},"a":{"c":"x","g":{"cc":"FR"}},"t":["x","y"]})",
      R"({"c":"y","n":5,"flag":false,"o":"z","e":[],"a":{"c":"x","g":{"cc":"DE"}},"t":["y"]})",
      R"({"c":"x","n":6.5,"flag":true,"a":{"c":"y","g":{"cc":"FR"}},"i":[{"s":"A","q":2}]})",
  };
  MbatConfig base;
  base.dim = 256;
  base.seed = 4;
  std::vector<MbatConfig> configs(4, base);
  configs[1].op_kind = MbatOpKind::kSignedPerm;
  configs[2].op_kind = MbatOpKind::kDenseHaar;
  configs[2].dim = 64;
  configs[3].beta_bag = 0.5f;
  configs[3].gamma_keys = 0.25f;
  configs[3].str_mode = MbatStringMode::kTrigram;
  for (const MbatConfig& c : configs) {
    auto warm = *MbatJsonEncoder::Create(c);
    for (int round = 0; round < 4; ++round) {  // rounds ≥ 2 hit the memo
      for (const std::string& r : records) {
        auto fresh = *MbatJsonEncoder::Create(c);
        std::vector<float> want(c.dim), got(c.dim);
        ASSERT_OK(fresh->Encode(r, want.data()));
        ASSERT_OK(warm->Encode(r, got.data()));
        ASSERT_EQ(std::memcmp(want.data(), got.data(), c.dim * sizeof(float)), 0)
            << MbatConfigToJson(c) << " round " << round << " " << r;
      }
    }
  }
}

TEST(MbatEncoder, NumbersFollowTheGaussianKernel) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  const double sigma = e.config().num_sigma;
  const double tol = 3 * std::sqrt(2.0 / kD);
  std::vector<float> a(kD), b(kD);
  MbatLeaf la{MbatLeaf::Type::kNumber, 50.0, ""};
  e.EncodeLeaf(la, a.data());
  EXPECT_NEAR(Dot(a, a), 1.0, 1e-5);
  std::vector<std::pair<double, double>> kernel_and_cos;
  for (double x = 0; x <= 200; x += 0.5) {
    MbatLeaf lb{MbatLeaf::Type::kNumber, x, ""};
    e.EncodeLeaf(lb, b.data());
    EXPECT_NEAR(Dot(b, b), 1.0, 1e-5);
    const double dt = std::log1p(x) - std::log1p(50.0);
    const double k = std::exp(-dt * dt / (2 * sigma * sigma));
    EXPECT_NEAR(Dot(a, b), k, tol) << "x = " << x;
    kernel_and_cos.push_back({k, Dot(a, b)});
  }
  // Monotone decay wherever the kernel separates two values by more than the noise band.
  for (const auto& [k1, c1] : kernel_and_cos) {
    for (const auto& [k2, c2] : kernel_and_cos) {
      if (k1 > k2 + 2 * tol) {
        EXPECT_GT(c1, c2);
      }
    }
  }
  // Spec §6.4 table: x = 51 → 0.997, 55 → 0.93, 60 → 0.77 (kernel values).
  EXPECT_NEAR(Dot(Enc(e, R"({"n":50})"), Enc(e, R"({"n":55})")), 0.93, tol);
}

TEST(MbatEncoder, SimdNumberPathGivesThePortableBits) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  std::vector<float> a(kD), b(kD);
  Rng rng(12);
  for (int i = 0; i < 300; ++i) {
    const double x = (rng.Uniform() * 2 - 1) * std::pow(10.0, rng.Uniform() * 12 - 3);
    e.EncodeLeaf(MbatLeaf{MbatLeaf::Type::kNumber, x, ""}, a.data());
    e.EncodeNumberPortable(x, b.data());
    ASSERT_EQ(std::memcmp(a.data(), b.data(), kD * sizeof(float)), 0) << x;
  }
}

TEST(MbatEncoder, OwnSinCosMatchesLibm) {
  Rng rng(4);
  for (int i = 0; i < 20000; ++i) {
    const double x = (rng.Uniform() * 2 - 1) * std::ldexp(1.0, static_cast<int>(rng.UniformInt(21)));
    double s, c;
    MbatSinCos(x, &s, &c);
    ASSERT_NEAR(s, std::sin(x), 4e-16 * std::max(1.0, std::fabs(x) / 1e3)) << x;
    ASSERT_NEAR(c, std::cos(x), 4e-16 * std::max(1.0, std::fabs(x) / 1e3)) << x;
  }
}

TEST(MbatEncoder, TokenAndTrigramModesGiveStringOverlapCredit) {
  MbatConfig c;
  c.dim = kD;
  auto exact = *MbatJsonEncoder::Create(c);
  c.str_mode = MbatStringMode::kTokens;
  auto tokens = *MbatJsonEncoder::Create(c);
  c.str_mode = MbatStringMode::kTrigram;
  auto trigram = *MbatJsonEncoder::Create(c);
  const std::string a = R"({"s":"New York City"})", b = R"({"s":"york  city"})";
  const std::string t1 = R"({"s":"hello world"})", t2 = R"({"s":"helo world"})";
  EXPECT_LT(std::fabs(Dot(Enc(*exact, a), Enc(*exact, b))), kQuasiOrthogonal);
  // Token bags: cos of unit bags is 2/√6; weighted by w²/(1 + w²) = 0.2.
  EXPECT_NEAR(Dot(Enc(*tokens, a), Enc(*tokens, b)), 0.2 * 2 / std::sqrt(6.0), kQuasiOrthogonal);
  EXPECT_GT(Dot(Enc(*trigram, t1), Enc(*trigram, t2)), 0.1);
  EXPECT_LT(std::fabs(Dot(Enc(*exact, t1), Enc(*exact, t2))), kQuasiOrthogonal);
}

TEST(MbatEncoder, ContainmentScoreIsTheSharedFractionOfTheQuery) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  Json rec;
  for (int i = 0; i < 20; ++i) rec["f" + std::to_string(i)] = "v" + std::to_string(i);
  std::vector<float> r(kD), q(kD);
  MbatEncodeInfo info;
  ASSERT_OK(e.Encode(rec.dump(), r.data(), &info));
  EXPECT_EQ(info.num_leaves, 20u);
  auto score = [&](const Json& query) {
    EXPECT_OK(e.EncodeQuery(query.dump(), MbatQueryMode::kContainment, q.data()));
    return MbatContainmentScore(static_cast<float>(Dot(q, r)), info.raw_norm);
  };
  const Json full = {{"f1", "v1"}, {"f5", "v5"}, {"f7", "v7"}, {"f9", "v9"}, {"f11", "v11"}};
  const Json half = {{"f1", "v1"}, {"f5", "v5"}, {"f7", "other"}, {"f9", "x"}};
  EXPECT_NEAR(score(full), 1.0, 0.15);
  EXPECT_NEAR(score(half), 0.5, 0.15);
  EXPECT_NEAR(score(Json{{"zz", 1}}), 0.0, 0.15);
  // Cosine mode is the plain record encoding: shared/√(Lq·Lr) = 5/√100.
  ASSERT_OK(e.EncodeQuery(full.dump(), MbatQueryMode::kCosine, q.data()));
  EXPECT_NEAR(Dot(q, r), 5 / std::sqrt(100.0), kQuasiOrthogonal);
}

TEST(MbatProbe, RecoversTheFieldsOfThirtyTwoFieldRecords) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  MbatPathDictionary dict;
  Rng rng(8);
  std::vector<Json> records;
  for (int r = 0; r < 40; ++r) {
    Json rec;
    for (int f = 0; f < 32; ++f) {
      rec[fmt::format("field{:02d}", f)] = fmt::format("f{}v{}", f, rng.UniformInt(40));
    }
    records.push_back(rec);
  }
  // Every value of the 40-way vocabulary is in the dictionary.
  for (int f = 0; f < 32; ++f) {
    std::vector<MbatPathAtom> all;
    for (int v = 0; v < 40; ++v) {
      all.push_back({fmt::format("field{:02d}", f), MbatLeaf{MbatLeaf::Type::kString, 0, fmt::format("f{}v{}", f, v)}});
    }
    dict.Add(all);
  }
  int correct = 0, total = 0;
  std::vector<float> vec(kD);
  for (const Json& rec : records) {
    ASSERT_OK(e.Encode(rec.dump(), vec.data()));
    for (int f = 0; f < 32; ++f) {
      const std::string path = fmt::format("field{:02d}", f);
      auto hits = e.Probe(vec.data(), path, dict, 3);
      ASSERT_OK(hits);
      ASSERT_EQ(hits->size(), 3u);
      const bool ok = (*hits)[0].value.str == rec[path].get<std::string>();
      // The spec's bar: every field of a 32-field record (the first one here) decodes.
      if (&rec == &records[0]) EXPECT_TRUE(ok) << path;
      correct += ok;
      ++total;
    }
  }
  // Over 1,280 probes the signal is 1/√32 against noise √(31/32)/√D (z ≈ 5.7), so a
  // few 40-way clean-ups in ten thousand go wrong (measured: 2 of 1,280, see docs/mbat.md).
  EXPECT_GE(double(correct) / total, 0.995) << correct << " of " << total;
}

TEST(MbatProbe, JointProbingRemovesTheCrossTalkErrors) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  MbatPathDictionary dict;
  std::vector<std::string> paths;
  for (int f = 0; f < 32; ++f) {
    std::vector<MbatPathAtom> all;
    paths.push_back(fmt::format("field{:02d}", f));
    for (int v = 0; v < 40; ++v) {
      all.push_back({paths.back(), MbatLeaf{MbatLeaf::Type::kString, 0, fmt::format("f{}v{}", f, v)}});
    }
    dict.Add(all);
  }
  Rng rng(8);  // the same records as RecoversTheFieldsOfThirtyTwoFieldRecords
  int independent = 0, joint = 0, total = 0;
  std::vector<float> vec(kD);
  for (int r = 0; r < 40; ++r) {
    Json rec;
    for (int f = 0; f < 32; ++f) rec[paths[f]] = fmt::format("f{}v{}", f, rng.UniformInt(40));
    ASSERT_OK(e.Encode(rec.dump(), vec.data()));
    auto once = e.ProbeJointly(vec.data(), paths, dict, 0);
    auto twice = e.ProbeJointly(vec.data(), paths, dict, 2);
    ASSERT_OK(once);
    ASSERT_OK(twice);
    for (int f = 0; f < 32; ++f) {
      const std::string truth = rec[paths[f]].get<std::string>();
      independent += (*once)[f].value.str == truth;
      joint += (*twice)[f].value.str == truth;
      ++total;
    }
  }
  EXPECT_LT(independent, total);  // cross-talk costs a few fields (see the test above)
  EXPECT_EQ(joint, total);
  EXPECT_THAT(e.ProbeJointly(vec.data(), {"field00", "nope"}, dict, 2),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_THAT(e.ProbeJointly(vec.data(), paths, dict, 9),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rounds")));
}

TEST(MbatProbe, ReadsNestedPathsAndArrayPositions) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  MbatPathDictionary dict;
  const std::vector<std::string> recs = {
      R"({"addr":{"city":"Lyon","geo":{"cc":"FR"}},"tags":["red","blue","green","cyan"],"items":[{"sku":"A1","qty":2},{"sku":"B7","qty":10}],"n":120})",
      R"({"addr":{"city":"Oslo","geo":{"cc":"NO"}},"tags":["cyan","red","blue"],"items":[{"sku":"C3","qty":1}],"n":7})",
      R"({"addr":{"city":"Rome","geo":{"cc":"IT"}},"tags":["green"],"items":[{"sku":"B7","qty":5}],"n":1000})"};
  for (const auto& r : recs) dict.Add(*e.CollectAtoms(r));
  std::vector<float> v(kD);
  ASSERT_OK(e.Encode(recs[0], v.data()));
  auto top = [&](const std::string& path) { return (*e.Probe(v.data(), path, dict, 1))[0].value.ToJson(); };
  EXPECT_EQ(top("addr.geo.cc"), "\"FR\"");
  EXPECT_EQ(top("addr.city"), "\"Lyon\"");
  EXPECT_EQ(top("tags[0]"), "\"red\"");
  EXPECT_EQ(top("tags[2]"), "\"green\"");
  EXPECT_EQ(top("tags[3]"), "\"cyan\"");
  EXPECT_EQ(top("items[1].sku"), "\"B7\"");
  EXPECT_EQ(top("items[1].qty"), "10");
  EXPECT_EQ(top("n"), "120");
  EXPECT_THAT(e.Probe(v.data(), "nothing.here", dict, 1), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nothing.here")));
  EXPECT_THAT(e.Probe(v.data(), "tags[", dict, 1), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offset")));
  EXPECT_THAT(e.Probe(v.data(), "tags[1]", dict, 0), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_n")));
}

TEST(MbatPath, ParsesKeysIndicesAndQuotedKeys) {
  auto p = ParseMbatPath(R"(addr.geo["c.c"][12].x-y)");
  ASSERT_OK(p);
  ASSERT_EQ(p->size(), 5u);
  EXPECT_EQ((*p)[0].key, "addr");
  EXPECT_EQ((*p)[2].key, "c.c");
  EXPECT_TRUE((*p)[3].is_index);
  EXPECT_EQ((*p)[3].index, 12u);
  EXPECT_EQ((*p)[4].key, "x-y");
  EXPECT_EQ(MbatPathPattern(*p), R"(addr.geo["c.c"][].x-y)");
  auto q = ParseMbatPath(R"(["a\"b"][0])");
  ASSERT_OK(q);
  EXPECT_EQ((*q)[0].key, "a\"b");
  for (const char* bad : {"", ".a", "a.", "a..b", "a[", "a[x]", "a[1", "a]", "a[1]b", "[\"x",
                          "a[99999999999]", "a\"b", "a.[1]"}) {
    EXPECT_THAT(ParseMbatPath(bad), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_)) << bad;
  }
  EXPECT_THAT(ParseMbatPath("a..b"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty key at offset 2")));
}

TEST(MbatPath, CollectAtomsUsesTheProbePatterns) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  auto atoms = e.CollectAtoms(R"({"b":[1,{"c.d":null}],"a":{"x":"s","e":{}}})");
  ASSERT_OK(atoms);
  std::vector<std::string> got;
  for (const auto& a : *atoms) got.push_back(a.path + "=" + a.value.ToJson());
  EXPECT_THAT(got, ::testing::ElementsAre("a.e={}", "a.x=\"s\"", "b[]=1", "b[][\"c.d\"]=null"));
}

TEST(MbatInputLimits, HostileInputGivesErrorsNamingTheProblem) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  std::vector<float> v(kD);
  auto code = [&](const std::string& j) { return e.Encode(j, v.data()); };
  using absl::StatusCode;
  EXPECT_THAT(code("{\"a\":"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
  EXPECT_THAT(code(""), StatusIs(StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
  EXPECT_THAT(code("{} x"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
  EXPECT_THAT(code("[1,2]"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("root must be a JSON object, got an array")));
  EXPECT_THAT(code("\"s\""), StatusIs(StatusCode::kInvalidArgument, HasSubstr("got a string")));
  EXPECT_THAT(code("3"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("got a number")));
  EXPECT_THAT(code(std::string(100000, '[') + std::string(100000, ']')),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("nests deeper than 64")));
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1" + std::string(100000, '}');
  EXPECT_THAT(code(deep), StatusIs(StatusCode::kInvalidArgument, HasSubstr("nests deeper")));
  // Unbalanced: the flat scan never sees a deep prefix hidden after a closing bracket.
  EXPECT_THAT(code("]]]]" + std::string(100000, '[')), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(code("{\"a\":\"\xff\xfe\"}"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  EXPECT_THAT(code("{\"a\":\"\xc3\"}"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  EXPECT_THAT(code(R"({"a":1,"b":{"k":1,"k":2}})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("duplicate key \"k\" in the object at $.b")));
  EXPECT_THAT(code(R"({"a":1e400})"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("overflow")));
  EXPECT_THAT(code(R"({"a":NaN})"), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(code("{\"s\":\"" + std::string(2 << 20, 'x') + "\"}"),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_record_bytes")));
  Json big = Json::array();
  for (int i = 0; i <= 10000; ++i) big.push_back(i);
  EXPECT_THAT(code(Json{{"x", {{"y", big}}}}.dump()),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("array at $.x.y has more than 10000")));
  Json wide = Json::array();
  for (int i = 0; i < 11; ++i) wide.push_back(std::vector<int>(9999, 0));
  EXPECT_THAT(code(Json{{"w", wide}}.dump()), StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_nodes")));
  // At the limits, records are accepted.
  std::string ok_deep;
  for (int i = 0; i < 63; ++i) ok_deep += "{\"a\":";
  ok_deep += "[1]" + std::string(63, '}');
  EXPECT_OK(code(ok_deep));
  EXPECT_OK(code("{}"));
  EXPECT_OK(code(R"({"a":"\u00e9\ud83d\ude00"})"));
}

TEST(MbatPersistence, SerializeRoundTripsAndRejectsCorruption) {
  MbatConfig c;
  c.dim = 256;
  c.seed = 77;
  c.beta_bag = 0.25f;
  c.str_mode = MbatStringMode::kTrigram;
  c.limits.max_depth = 10;
  auto enc = *MbatJsonEncoder::Create(c);
  const std::string blob = enc->Serialize();
  auto back = MbatJsonEncoder::Deserialize(blob);
  ASSERT_OK(back);
  EXPECT_EQ(MbatConfigToJson((*back)->config()), MbatConfigToJson(c));
  const std::string rec = R"({"a":[1,"two",{"three":3.5}],"b":"Bee"})";
  std::vector<float> x(256), y(256);
  ASSERT_OK(enc->Encode(rec, x.data()));
  ASSERT_OK((*back)->Encode(rec, y.data()));
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0);

  std::string flipped = blob;
  flipped[20] ^= 1;
  EXPECT_THAT(MbatJsonEncoder::Deserialize(flipped), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
  EXPECT_THAT(MbatJsonEncoder::Deserialize(blob.substr(0, 30)), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
  EXPECT_THAT(MbatJsonEncoder::Deserialize("junk"), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
  // Another format version (valid checksum) is refused as a precondition, not corruption.
  std::string other = blob.substr(0, blob.size() - 4);
  other[4] = 99;
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(other.data()), static_cast<uInt>(other.size())));
  other.append(reinterpret_cast<const char*>(&crc), 4);
  EXPECT_THAT(MbatJsonEncoder::Deserialize(other), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("format version 99")));
  // A check vector this build does not reproduce (as after a generator change).
  std::string changed = blob.substr(0, blob.size() - 4);
  changed[changed.size() - 5] ^= 0x40;  // exponent byte of a check float
  const uint32_t crc2 = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(changed.data()), static_cast<uInt>(changed.size())));
  changed.append(reinterpret_cast<const char*>(&crc2), 4);
  EXPECT_THAT(MbatJsonEncoder::Deserialize(changed), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("check record")));
}

TEST(MbatConfigValidation, ValidationNamesTheField) {
  MbatConfig c;
  c.dim = 1000;
  EXPECT_THAT(MbatJsonEncoder::Create(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mbat.dim 1000")));
  c = MbatConfig();
  c.op_kind = MbatOpKind::kDenseHaar;
  c.dim = 4096;
  EXPECT_THAT(MbatJsonEncoder::Create(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dense_haar")));
  c = MbatConfig();
  c.num_sigma = 0;
  EXPECT_THAT(MbatJsonEncoder::Create(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_sigma")));
  c = MbatConfig();
  c.beta_bag = std::nanf("");
  EXPECT_THAT(MbatJsonEncoder::Create(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("beta_bag")));
  auto parsed = MbatConfigFromJson(R"({"dim":256,"op_kind":"signed_perm","str_mode":"tokens","limits":{"max_depth":8}})");
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->dim, 256u);
  EXPECT_EQ(parsed->op_kind, MbatOpKind::kSignedPerm);
  EXPECT_EQ(parsed->limits.max_depth, 8u);
  auto again = MbatConfigFromJson(MbatConfigToJson(*parsed));
  ASSERT_OK(again);
  EXPECT_EQ(MbatConfigToJson(*again), MbatConfigToJson(*parsed));
  EXPECT_THAT(MbatConfigFromJson(R"({"dims":256})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown field mbat.dims")));
  EXPECT_THAT(MbatConfigFromJson(R"({"op_kind":"haar"})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("srht, dense_haar, signed_perm")));
  EXPECT_THAT(MbatConfigFromJson(R"({"dim":-4})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mbat.dim")));
}

TEST(MbatBatch, MatchesSingleEncodesBitForBitWhateverTheThreadCount) {
  const MbatJsonEncoder& e = Encoder(MbatOpKind::kSrht);
  std::vector<std::string> texts;
  Rng rng(3);
  for (int i = 0; i < 150; ++i) {
    Json r;
    r["id"] = i;
    r["cat"] = "c" + std::to_string(rng.UniformInt(10));
    r["tags"] = {"t" + std::to_string(rng.UniformInt(5)), "t" + std::to_string(rng.UniformInt(5))};
    r["key" + std::to_string(rng.UniformInt(300))] = rng.Uniform();
    texts.push_back(r.dump());
  }
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> one(views.size() * kD), two(views.size() * kD), single(kD);
  std::vector<MbatEncodeInfo> infos(views.size());
  ASSERT_OK(e.EncodeBatch(views, one.data(), infos.data(), 1));
  ASSERT_OK(e.EncodeBatch(views, two.data(), nullptr, 2));
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
  for (size_t i = 0; i < views.size(); i += 37) {
    MbatEncodeInfo info;
    ASSERT_OK(e.Encode(views[i], single.data(), &info));
    EXPECT_EQ(std::memcmp(single.data(), one.data() + i * kD, kD * sizeof(float)), 0);
    EXPECT_EQ(info.raw_norm, infos[i].raw_norm);
  }
  texts[7] = "[1]";
  texts[50] = "{";
  views.assign(texts.begin(), texts.end());
  EXPECT_THAT(e.EncodeBatch(views, one.data(), nullptr, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record 7: record root")));
}

}  // namespace
}  // namespace chamferdb

namespace chamferdb {
namespace {

// Format freeze: the vectors of format version 1 must never change silently (stored
// collections would mix incompatible vectors). These digests were recorded when version 1
// was fixed; a change to the hash, PRNG, operators, sin/cos or summation order fails here
// and must come with a kMbatFormatVersion bump.
TEST(MbatFormat, VectorsAreFrozenForFormatVersion1) {
  const std::string record =
      R"({"name":"Ann","age":41.5,"tags":["x","y"],"addr":{"geo":{"cc":"FR"}},"ok":true,"n":null})";
  for (auto [kind, digest] : {std::pair{MbatOpKind::kSrht, uint64_t{0xe58880d1bb4ba01aULL}},
                              std::pair{MbatOpKind::kSignedPerm, uint64_t{0x1485bc7dd21b0c6aULL}}}) {
    MbatConfig c;
    c.dim = 1024;
    c.seed = 7;
    c.op_kind = kind;
    auto enc = *MbatJsonEncoder::Create(c);
    std::vector<float> v(c.dim);
    ASSERT_OK(enc->Encode(record, v.data()));
    const uint64_t got = MbatHash(0, "digest",
                                  std::string_view(reinterpret_cast<const char*>(v.data()),
                                                   v.size() * sizeof(float)));
    EXPECT_EQ(got, digest) << MbatOpKindName(kind) << " 0x" << std::hex << got;
  }
}

}  // namespace
}  // namespace chamferdb
