// Fault-injection sweep over the registry and both collection kinds (LevelDB's ErrorEnv
// tests, adapted): a fixed script of creates, upserts, deletes and a drop runs over a
// FaultInjectionStore; for every N the Nth write (or sync write, or the write that fills
// the disk) fails. Checked for each N against an independent model (a map of what was
// acknowledged):
//  - the failing operation reports the injected error to the caller, every other
//    operation succeeds (or fails NOT_FOUND only because the collection's create failed);
//  - the live registry's in-memory state (document counts, the index: each document is
//    its own nearest neighbour, absent ones are never returned) equals the model;
//  - reopening a registry from the underlying store (no faults) shows exactly the model:
//    the failed batch entirely absent, never half of it; acknowledged ones entirely there.
// Read and scan faults while opening make Open fail; they never yield a partial registry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "chamferdb/v1/collections.pb.h"
#include "common/rng.h"
#include "common/status_matchers.h"
#include "server/convert.h"
#include "server/registry.h"
#include "storage/fault_injection_store.h"

namespace chamferdb {
namespace {

using Op = FaultInjectionStore::Op;
constexpr uint32_t kDim = 8;

// Totals over the whole binary, printed at exit (docs/reliability.md quotes them).
uint64_t g_runs = 0, g_faults = 0;
class Totals : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf("fault sweep: %llu script runs and opens, %llu faults injected\n",
                static_cast<unsigned long long>(g_runs), static_cast<unsigned long long>(g_faults));
  }
};
const auto* const kTotals = ::testing::AddGlobalTestEnvironment(new Totals);

struct MvDoc {
  std::vector<float> tokens;  // unit rows
  std::string meta;
};
// The model: what was acknowledged. name -> id -> document (mv) or JSON text (json).
struct Model {
  std::map<std::string, std::map<std::string, MvDoc>> mv;
  std::map<std::string, std::map<std::string, std::string>> js;
};

std::vector<float> UnitTokens(uint64_t seed, size_t n) {
  Rng rng(seed);
  std::vector<float> v(n * kDim);
  for (size_t i = 0; i < n; ++i) {
    double norm = 0;
    for (size_t j = 0; j < kDim; ++j) {
      v[i * kDim + j] = static_cast<float>(rng.Normal());
      norm += double(v[i * kDim + j]) * v[i * kDim + j];
    }
    for (size_t j = 0; j < kDim; ++j) v[i * kDim + j] = static_cast<float>(v[i * kDim + j] / std::sqrt(norm));
  }
  return v;
}

CollectionSpec MvSpec(const std::string& name) {
  v1::CollectionConfig c;
  c.set_name(name);
  c.set_dim(kDim);
  c.mutable_fde()->set_r_reps(2);
  c.mutable_fde()->set_k_sim(2);
  c.mutable_fde()->set_d_proj(4);
  auto s = SpecFromProto(c);
  EXPECT_OK(s);
  return *s;
}

CollectionSpec JsSpec(const std::string& name) {
  v1::CollectionConfig c;
  c.set_name(name);
  c.set_kind(v1::JSON);
  c.set_dim(64);
  auto s = SpecFromProto(c);
  EXPECT_OK(s);
  return *s;
}

// Every id the script ever touches (to detect phantoms by lookup, too).
std::vector<std::string> Universe() {
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back("d" + std::to_string(i));
  for (int i = 0; i < 4; ++i) ids.push_back("r" + std::to_string(i));
  return ids;
}

// One step of the script: runs against the registry, and on success applies itself to the model.
struct Step {
  std::string what;
  std::string collection;  // collection the step needs to exist ("" for create)
  std::function<absl::Status(Registry&, bool sync)> run;
  std::function<void(Model&)> apply;
};

std::vector<Step> Script() {
  std::vector<Step> s;
  auto create = [&](const std::string& name, bool json) {
    s.push_back({"create " + name, "",
                 [=](Registry& r, bool) { return r.Create(json ? JsSpec(name) : MvSpec(name)).status(); },
                 [=](Model& m) {
                   if (json) m.js[name]; else m.mv[name];
                 }});
  };
  auto upsert = [&](const std::string& name, std::vector<std::pair<std::string, uint64_t>> docs) {
    s.push_back({"upsert " + name, name,
                 [=](Registry& r, bool sync) -> absl::Status {
                   auto c = r.Get(name);
                   if (!c.ok()) return c.status();
                   std::vector<std::string> bytes, metas;
                   std::vector<DocumentInput> in;
                   for (const auto& [id, seed] : docs) {
                     auto t = UnitTokens(seed, 1 + seed % 4);
                     bytes.emplace_back(reinterpret_cast<const char*>(t.data()), t.size() * 4);
                     metas.push_back("{\"seed\":" + std::to_string(seed) + "}");
                   }
                   for (size_t i = 0; i < docs.size(); ++i) {
                     in.push_back({docs[i].first, static_cast<uint32_t>(1 + docs[i].second % 4), bytes[i], metas[i]});
                   }
                   return (*c)->Upsert(in, sync);
                 },
                 [=](Model& m) {
                   for (const auto& [id, seed] : docs) {
                     m.mv[name][id] = {UnitTokens(seed, 1 + seed % 4), "{\"seed\":" + std::to_string(seed) + "}"};
                   }
                 }});
  };
  auto upsert_json = [&](const std::string& name, std::vector<std::pair<std::string, int>> recs) {
    auto text = [](const std::string& id, int v) {
      return "{\"id\":\"" + id + "\",\"v\":" + std::to_string(v) + ",\"tag\":\"t" + std::to_string(v % 3) + "\"}";
    };
    s.push_back({"upsert_json " + name, name,
                 [=](Registry& r, bool sync) -> absl::Status {
                   auto c = r.GetJson(name);
                   if (!c.ok()) return c.status();
                   std::vector<std::string> texts;
                   for (const auto& [id, v] : recs) texts.push_back(text(id, v));
                   std::vector<JsonRecordInput> in;
                   for (const auto& t : texts) in.push_back({"", t});
                   return (*c)->Upsert(in, "", sync);
                 },
                 [=](Model& m) {
                   for (const auto& [id, v] : recs) m.js[name][id] = text(id, v);
                 }});
  };
  auto del = [&](const std::string& name, bool json, std::vector<std::string> ids) {
    s.push_back({"delete " + name, name,
                 [=](Registry& r, bool sync) -> absl::Status {
                   if (json) {
                     auto c = r.GetJson(name);
                     if (!c.ok()) return c.status();
                     return (*c)->Delete(ids, sync).status();
                   }
                   auto c = r.Get(name);
                   if (!c.ok()) return c.status();
                   return (*c)->Delete(ids, sync).status();
                 },
                 [=](Model& m) {
                   for (const auto& id : ids) {
                     if (json) m.js[name].erase(id); else m.mv[name].erase(id);
                   }
                 }});
  };
  create("mv", false);
  create("js", true);
  upsert("mv", {{"d0", 10}, {"d1", 11}, {"d2", 12}});
  upsert_json("js", {{"r0", 1}, {"r1", 2}});
  upsert("mv", {{"d1", 21}, {"d3", 13}, {"d4", 14}});  // replaces d1
  del("mv", false, {"d0", "nope"});
  upsert_json("js", {{"r1", 5}, {"r2", 3}});
  del("js", true, {"r0"});
  create("tmp", false);
  upsert("tmp", {{"d5", 15}});
  s.push_back({"drop tmp", "tmp", [](Registry& r, bool) { return r.Drop("tmp"); },
               [](Model& m) { m.mv.erase("tmp"); }});
  upsert("mv", {{"d6", 16}, {"d7", 17}, {"d2", 22}});
  del("mv", false, {"d3"});
  return s;
}

// Checks a registry (live or reopened) against the model: collections, every document's
// stored bytes, document counts, and the in-memory index (self-search / absent never hit).
void ExpectMatches(const Registry& r, const Model& m, const std::string& where) {
  SCOPED_TRACE(where);
  std::set<std::string> names;
  for (const auto& e : r.List()) names.insert(e.spec().name);
  std::set<std::string> want;
  for (const auto& [n, _] : m.mv) want.insert(n);
  for (const auto& [n, _] : m.js) want.insert(n);
  EXPECT_EQ(names, want);
  for (const auto& [name, docs] : m.mv) {
    auto c = r.Get(name);
    ASSERT_OK(c);
    EXPECT_EQ((*c)->Stats().documents, docs.size()) << name;
    std::vector<std::string> missing;
    auto got = (*c)->Get(Universe(), true, &missing);
    ASSERT_OK(got);
    ASSERT_EQ(got->size(), docs.size()) << name << ": phantom or lost documents";
    for (const auto& d : *got) {
      auto it = docs.find(d.id);
      ASSERT_NE(it, docs.end()) << "phantom " << d.id;
      EXPECT_EQ(d.metadata_json, it->second.meta);
      ASSERT_EQ(d.vectors.size(), it->second.tokens.size());
      for (size_t i = 0; i < d.vectors.size(); ++i) EXPECT_NEAR(d.vectors[i], it->second.tokens[i], 1e-6);
    }
    // The index (memory) agrees: each acknowledged document is its own top hit with
    // Chamfer = its token count; a document of the universe not in the model is never hit.
    for (int seed : {10, 11, 12, 13, 14, 15, 16, 17, 21, 22}) {
      auto q = UnitTokens(seed, 1 + seed % 4);
      auto res = (*c)->Search({.tokens = q.data(), .num_tokens = q.size() / kDim, .k = 10, .candidates = 100});
      if (docs.empty()) {
        if (res.ok()) EXPECT_TRUE(res->hits.empty());
        continue;
      }
      ASSERT_OK(res);
      EXPECT_EQ(res->hits.size(), docs.size());
      std::string owner;
      for (const auto& [id, d] : docs) {
        if (d.tokens == q) owner = id;
      }
      for (const auto& h : res->hits) EXPECT_TRUE(docs.count(h.id)) << "index returned absent " << h.id;
      if (!owner.empty()) {
        EXPECT_EQ(res->hits[0].id, owner);
        EXPECT_NEAR(res->hits[0].score, static_cast<float>(q.size() / kDim), 1e-4);
      }
    }
  }
  for (const auto& [name, recs] : m.js) {
    auto c = r.GetJson(name);
    ASSERT_OK(c);
    EXPECT_EQ((*c)->Stats().documents, recs.size()) << name;
    std::vector<std::string> missing;
    auto got = (*c)->Get(Universe(), &missing);
    ASSERT_OK(got);
    ASSERT_EQ(got->size(), recs.size());
    for (const auto& rec : *got) {
      auto it = recs.find(rec.id);
      ASSERT_NE(it, recs.end()) << "phantom " << rec.id;
      EXPECT_EQ(rec.json, it->second);
    }
    for (const auto& [id, text] : recs) {
      auto res = (*c)->Search({.json = text, .k = 10, .candidates = 100});
      ASSERT_OK(res);
      EXPECT_EQ(res->size(), recs.size());
      ASSERT_FALSE(res->empty());
      EXPECT_EQ((*res)[0].id, id);
      for (const auto& h : *res) EXPECT_TRUE(recs.count(h.id)) << "index returned absent " << h.id;
    }
  }
}

struct SweepResult {
  int failed_ops = 0;
  bool fault_fired = false;
};

// Runs the script with a fault armed by `arm`; checks the live and reopened state.
SweepResult RunScript(const std::function<void(FaultInjectionStore&)>& arm, bool sync, const std::string& label) {
  SCOPED_TRACE(label);
  SweepResult out;
  auto base = NewMemStore();
  FaultInjectionStore faulty(base.get());
  auto reg = Registry::Open(&faulty, sync);
  EXPECT_OK(reg);
  if (!reg.ok()) return out;
  arm(faulty);
  Model model;
  const uint64_t injected_before = faulty.injected();
  for (const Step& step : Script()) {
    const bool exists = step.collection.empty() || model.mv.count(step.collection) || model.js.count(step.collection);
    const uint64_t before = faulty.injected();
    absl::Status s = step.run(**reg, sync);
    const bool this_fault = faulty.injected() != before;
    if (s.ok()) {
      EXPECT_FALSE(this_fault) << step.what << ": a write failed but the operation reported success";
      EXPECT_TRUE(exists) << step.what;
      step.apply(model);
    } else {
      ++out.failed_ops;
      if (exists) {
        EXPECT_TRUE(this_fault) << step.what << " failed without an injected fault: " << s;
        EXPECT_TRUE(s.code() == absl::StatusCode::kUnavailable || s.code() == absl::StatusCode::kResourceExhausted) << s;
        EXPECT_THAT(std::string(s.message()), ::testing::AnyOf(::testing::HasSubstr("injected")))
            << "the storage error must reach the caller";
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << step.what << ": " << s;
      }
    }
  }
  out.fault_fired = faulty.injected() != injected_before;
  ++g_runs;
  g_faults += faulty.injected();
  faulty.Heal();
  ExpectMatches(**reg, model, "live registry after the fault");
  auto reopened = Registry::Open(base.get(), sync);
  EXPECT_OK(reopened);
  if (reopened.ok()) ExpectMatches(**reopened, model, "reopened from the underlying store");
  return out;
}

int CountWrites(Op op, bool sync) {
  auto base = NewMemStore();
  FaultInjectionStore faulty(base.get());
  auto reg = Registry::Open(&faulty, sync);
  EXPECT_OK(reg);
  const uint64_t before = faulty.calls(op);
  for (const Step& step : Script()) EXPECT_OK(step.run(**reg, sync)) << step.what;
  return static_cast<int>(faulty.calls(op) - before);
}

TEST(FaultSweep, NoFaultRunMatchesModel) {
  auto r = RunScript([](FaultInjectionStore&) {}, false, "no fault");
  EXPECT_EQ(r.failed_ops, 0);
}

TEST(FaultSweep, NthWriteFails) {
  const int writes = CountWrites(Op::kWrite, false);
  ASSERT_EQ(writes, 13);  // one storage batch per operation: 3 creates + 10 data/drop steps
  for (int n = 1; n <= writes; ++n) {
    auto r = RunScript([n](FaultInjectionStore& f) { f.FailNth(Op::kWrite, n); }, false, "write #" + std::to_string(n));
    EXPECT_TRUE(r.fault_fired);
    EXPECT_GE(r.failed_ops, 1);
  }
}

TEST(FaultSweep, NthSyncWriteFailsWithSync) {
  const int syncs = CountWrites(Op::kSync, true);
  ASSERT_EQ(syncs, 13);
  for (int n = 1; n <= syncs; ++n) {
    auto r = RunScript([n](FaultInjectionStore& f) { f.FailNth(Op::kSync, n); }, true, "sync #" + std::to_string(n));
    EXPECT_TRUE(r.fault_fired);
  }
}

TEST(FaultSweep, DeadDiskFromTheNthWrite) {
  for (int n = 1; n <= 13; n += 3) {
    RunScript([n](FaultInjectionStore& f) { f.FailNth(Op::kWrite, n, /*sticky=*/true); }, false,
              "sticky write #" + std::to_string(n));
  }
}

TEST(FaultSweep, DiskFullAtEveryBudget) {
  // Budgets from 0 up to past the whole script's bytes: the disk fills in a different
  // operation each time (then stays full: later writes fail too).
  for (uint64_t budget : {0ull, 100ull, 1000ull, 3000ull, 6000ull, 10000ull, 20000ull, 40000ull, 1ull << 30}) {
    RunScript([budget](FaultInjectionStore& f) { f.SetDiskBudget(budget); }, false,
              "disk budget " + std::to_string(budget));
  }
}

TEST(FaultSweep, ReadAndScanFaultsDuringOpenFailTheOpen) {
  auto base = NewMemStore();
  {
    auto reg = Registry::Open(base.get(), false);
    ASSERT_OK(reg);
    for (const Step& step : Script()) ASSERT_OK(step.run(**reg, false));
  }
  FaultInjectionStore counter(base.get());
  ASSERT_OK(Registry::Open(&counter, false));
  const int reads = static_cast<int>(counter.calls(Op::kRead));
  const int scans = static_cast<int>(counter.calls(Op::kScan));
  ASSERT_GT(reads + scans, 0);
  for (int n = 1; n <= reads; ++n) {
    FaultInjectionStore f(base.get());
    f.FailNth(Op::kRead, n);
    EXPECT_THAT(Registry::Open(&f, false), ::chamferdb::testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::_))
        << "read #" << n;
    ++g_runs;
    g_faults += f.injected();
  }
  for (int n = 1; n <= scans; ++n) {
    for (uint64_t after : {0, 1}) {
      FaultInjectionStore f(base.get());
      f.FailNthScanAfter(n, after);
      auto r = Registry::Open(&f, false);
      ++g_runs;
      g_faults += f.injected();
      // A scan with at most `after` rows completes before the fault can cut it.
      if (f.injected() > 0) {
        EXPECT_THAT(r, ::chamferdb::testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::_))
            << "scan #" << n << " after " << after << " rows";
      } else {
        EXPECT_OK(r);
      }
    }
  }
  // Read faults after open reach the caller of Get.
  FaultInjectionStore f(base.get());
  auto reg = Registry::Open(&f, false);
  ASSERT_OK(reg);
  auto c = (*reg)->Get("mv");
  ASSERT_OK(c);
  f.FailNth(Op::kRead, 1);
  std::vector<std::string> missing;
  EXPECT_THAT((*c)->Get({"d1"}, false, &missing), ::chamferdb::testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  auto j = (*reg)->GetJson("js");
  ASSERT_OK(j);
  f.FailNth(Op::kRead, 1);
  EXPECT_THAT((*j)->Get({"r1"}, &missing), ::chamferdb::testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

}  // namespace
}  // namespace chamferdb
