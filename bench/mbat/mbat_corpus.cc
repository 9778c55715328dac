#include "bench/mbat/mbat_corpus.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <string_view>

#include "encoders/mbat_ops.h"

namespace chamferdb::mbat_bench {
namespace {

using Json = nlohmann::json;

std::string Pick(Rng& rng, const char* prefix, uint64_t n) {
  return fmt::format("{}{}", prefix, rng.UniformInt(n));
}

void Walk(const Json& v, const std::string& path, std::vector<Leaf>* out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      Walk(it.value(), path.empty() ? it.key() : path + "." + it.key(), out);
    }
  } else if (v.is_array() && !v.empty()) {
    for (size_t i = 0; i < v.size(); ++i) Walk(v[i], fmt::format("{}[{}]", path, i), out);
  } else {
    out->push_back(Leaf{path, v});
  }
}

// Leaf locations as JSON pointers, in the same order as Leaves().
void Pointers(const Json& v, const Json::json_pointer& p, std::vector<Json::json_pointer>* out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it) Pointers(it.value(), p / it.key(), out);
  } else if (v.is_array() && !v.empty()) {
    for (size_t i = 0; i < v.size(); ++i) Pointers(v[i], p / i, out);
  } else {
    out->push_back(p);
  }
}

double SignedLog1p(double x) { return std::copysign(std::log1p(std::fabs(x)), x); }

std::vector<double> Ranks(const std::vector<double>& x) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(x.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
    const double avg = 0.5 * (double(i) + double(j)) + 1;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

}  // namespace

Json CorpusGenerator::Record() {
  Json r;
  for (int f = 0; f < 8; ++f) r[fmt::format("c{}", f)] = fmt::format("c{}_{}", f, rng_.UniformInt(40));
  r["n_int"] = rng_.UniformInt(1001);
  r["flag"] = rng_.UniformInt(2) == 1;
  r["opt"] = rng_.UniformInt(2) == 0 ? Json(nullptr) : Json(Pick(rng_, "opt", 10));
  r["addr"] = {{"city", Pick(rng_, "city", 40)},
               {"zip", Pick(rng_, "z", 100)},
               {"geo", {{"cc", Pick(rng_, "cc", 20)}}}};
  // "3–6 of 30 tokens": distinct tokens in random order (partial Fisher–Yates).
  Json tags = Json::array();
  const uint64_t nt = 3 + rng_.UniformInt(4);
  int tok[30];
  for (int i = 0; i < 30; ++i) tok[i] = i;
  for (uint64_t i = 0; i < nt; ++i) {
    std::swap(tok[i], tok[i + rng_.UniformInt(30 - i)]);
    tags.push_back(fmt::format("t{}", tok[i]));
  }
  r["tags"] = tags;
  Json items = Json::array();
  const uint64_t ni = 1 + rng_.UniformInt(3);
  for (uint64_t i = 0; i < ni; ++i) {
    items.push_back({{"sku", Pick(rng_, "sku", 50)}, {"qty", 1 + rng_.UniformInt(10)}});
  }
  r["items"] = items;
  return r;
}

Json CorpusGenerator::FreshValue(const std::string& field, const Json& old) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    Json v;
    if (field.size() == 2 && field[0] == 'c') {
      v = fmt::format("{}_{}", field, rng_.UniformInt(40));
    } else if (field == "n_int") {
      v = rng_.UniformInt(1001);
    } else if (field == "flag") {
      v = !old.get<bool>();
    } else if (field == "opt") {
      v = rng_.UniformInt(3) == 0 ? Json(nullptr) : Json(Pick(rng_, "opt", 10));
    } else if (field == "city") {
      v = Pick(rng_, "city", 40);
    } else if (field == "zip") {
      v = Pick(rng_, "z", 100);
    } else if (field == "cc") {
      v = Pick(rng_, "cc", 20);
    } else if (field == "sku") {
      v = Pick(rng_, "sku", 50);
    } else if (field == "qty") {
      v = 1 + rng_.UniformInt(10);
    } else {
      v = "fresh";
    }
    if (v != old) return v;
  }
  return Json("fresh");
}

Json CorpusGenerator::Perturb(const Json& r, int m) {
  Json out = r;
  std::vector<Json::json_pointer> ptrs;
  Pointers(out, Json::json_pointer(), &ptrs);
  m = std::min<int>(m, static_cast<int>(ptrs.size()));
  for (int i = 0; i < m; ++i) {  // partial Fisher–Yates: m distinct leaves
    const size_t j = i + rng_.UniformInt(ptrs.size() - i);
    std::swap(ptrs[i], ptrs[j]);
    const Json::json_pointer& p = ptrs[i];
    std::string field = p.back();
    if (!field.empty() && std::isdigit(static_cast<unsigned char>(field[0]))) {
      // A tags element: a token not already in the array (tags stay distinct).
      const Json& arr = out[p.parent_pointer()];
      Json v;
      do {
        v = Pick(rng_, "t", 30);
      } while (std::find(arr.begin(), arr.end(), v) != arr.end());
      out[p] = v;
      continue;
    }
    out[p] = FreshValue(field, out[p]);
  }
  return out;
}

std::vector<Leaf> Leaves(const Json& record) {
  std::vector<Leaf> out;
  Walk(record, "", &out);
  return out;
}

PairTruth Compare(const std::vector<Leaf>& a, const std::vector<Leaf>& b, double sigma) {
  std::map<std::string_view, const Json*> bm;
  for (const Leaf& l : b) bm[l.path] = &l.value;
  double shared = 0, soft = 0;
  for (const Leaf& l : a) {
    auto it = bm.find(l.path);
    if (it == bm.end()) continue;
    const Json& bv = *it->second;
    if (l.value == bv) {
      shared += 1;
      soft += 1;
    } else if (l.value.is_number() && bv.is_number() && !l.value.is_boolean()) {
      const double dt = SignedLog1p(l.value.get<double>()) - SignedLog1p(bv.get<double>());
      soft += std::exp(-dt * dt / (2 * sigma * sigma));
    }
  }
  PairTruth t;
  const double na = a.size(), nb = b.size();
  t.jaccard = shared / (na + nb - shared);
  t.ochiai = shared / std::sqrt(na * nb);
  t.soft_ochiai = soft / std::sqrt(na * nb);
  return t;
}

double Pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = x.size();
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

double Spearman(const std::vector<double>& x, const std::vector<double>& y) {
  return Pearson(Ranks(x), Ranks(y));
}

namespace {

// The idealized encoder: every (exact path, non-numeric value) leaf gets an independent
// Gaussian random unit vector of R^D, and a number at a path gets the encoder's own
// kernel vector enc(x) under an independent random signed permutation per path, so leaf
// vectors of distinct paths are independent and numbers at one path keep the kernel. A
// record is the normalized sum of its leaves: E cos = soft Ochiai, and the residual is the
// irreducible cross-talk of random codes at dimension D (what a perfectly random MBAT
// binding would give). Its Pearson(cos, soft Ochiai) is the ceiling for this pair set.
class IdealEncoder {
 public:
  IdealEncoder(const MbatJsonEncoder& enc, uint64_t seed) : enc_(enc), seed_(seed), d_(enc.dim()) {}

  void Encode(const std::vector<Leaf>& leaves, float* out) {
    std::vector<double> acc(d_, 0.0);
    std::vector<float> num(d_);
    for (const Leaf& l : leaves) {
      if (l.value.is_number() && !l.value.is_boolean()) {
        MbatLeaf leaf;
        leaf.type = MbatLeaf::Type::kNumber;
        leaf.number = l.value.get<double>();
        enc_.EncodeLeaf(leaf, num.data());
        const PathOp& op = Op(l.path);
        for (size_t i = 0; i < d_; ++i) acc[i] += op.sign[i] * num[op.perm[i]];
      } else {
        const std::vector<float>& v = Atom(l.path + "\x1f" + l.value.dump());
        for (size_t i = 0; i < d_; ++i) acc[i] += v[i];
      }
    }
    double n2 = 0;
    for (double x : acc) n2 += x * x;
    const double inv = 1.0 / std::sqrt(n2);
    for (size_t i = 0; i < d_; ++i) out[i] = static_cast<float>(acc[i] * inv);
  }

 private:
  struct PathOp {
    std::vector<float> sign;
    std::vector<uint32_t> perm;
  };
  uint64_t Key(const std::string& s) const { return MbatHash(seed_, "ideal", s); }
  const std::vector<float>& Atom(const std::string& key) {
    auto it = atoms_.find(key);
    if (it != atoms_.end()) return it->second;
    Rng rng(Key(key));
    std::vector<float> v(d_);
    double n2 = 0;
    std::vector<double> g(d_);
    for (size_t i = 0; i < d_; ++i) {
      g[i] = rng.Normal();
      n2 += g[i] * g[i];
    }
    for (size_t i = 0; i < d_; ++i) v[i] = static_cast<float>(g[i] / std::sqrt(n2));
    return atoms_.emplace(key, std::move(v)).first->second;
  }
  const PathOp& Op(const std::string& path) {
    auto it = ops_.find(path);
    if (it != ops_.end()) return it->second;
    PathOp op;
    op.sign.resize(d_);
    mbat::RandomSigns(Key("sign:" + path), d_, op.sign.data());
    op.perm = mbat::RandomPermutation(Key("perm:" + path), d_);
    return ops_.emplace(path, std::move(op)).first->second;
  }
  const MbatJsonEncoder& enc_;
  uint64_t seed_;
  size_t d_;
  std::map<std::string, std::vector<float>> atoms_;
  std::map<std::string, PathOp> ops_;
};

double Std(const std::vector<double>& x) {
  const double m = std::accumulate(x.begin(), x.end(), 0.0) / x.size();
  double v = 0;
  for (double a : x) v += (a - m) * (a - m);
  return std::sqrt(v / x.size());
}

}  // namespace

QualityReport EvaluateQuality(const MbatJsonEncoder& encoder, const QualityOptions& o) {
  CorpusGenerator gen(o.seed);
  std::vector<Json> db, queries;
  std::vector<int> family, level;  // per db record: query index (or -1) and m
  for (int i = 0; i < o.db_size; ++i) {
    db.push_back(gen.Record());
    family.push_back(-1);
    level.push_back(0);
  }
  for (int q = 0; q < o.num_queries; ++q) {
    queries.push_back(gen.Record());
    for (int m = 1; m <= o.max_perturb; ++m) {
      db.push_back(gen.Perturb(queries.back(), m));
      family.push_back(q);
      level.push_back(m);
    }
  }
  std::vector<std::string> db_text, q_text;
  for (const Json& r : db) db_text.push_back(r.dump());
  for (const Json& r : queries) q_text.push_back(r.dump());
  std::vector<std::string_view> db_view(db_text.begin(), db_text.end()),
      q_view(q_text.begin(), q_text.end());
  const size_t d = encoder.dim();
  std::vector<float> dbv(db.size() * d), qv(queries.size() * d);
  QualityReport rep;
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status s = encoder.EncodeBatch(db_view, dbv.data());
  rep.encode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.encoded = db.size();
  if (s.ok()) s = encoder.EncodeBatch(q_view, qv.data());
  if (!s.ok()) {
    fmt::print(stderr, "encoding failed: {}\n", std::string(s.message()));
    return rep;
  }
  std::vector<std::vector<Leaf>> db_leaves, q_leaves;
  for (const Json& r : db) db_leaves.push_back(Leaves(r));
  for (const Json& r : queries) q_leaves.push_back(Leaves(r));

  std::vector<float> ideal_db(db.size() * d), ideal_q(queries.size() * d);
  {
    IdealEncoder ideal(encoder, o.seed ^ 0x1dea1);
    for (size_t i = 0; i < db.size(); ++i) ideal.Encode(db_leaves[i], ideal_db.data() + i * d);
    for (size_t q = 0; q < queries.size(); ++q) ideal.Encode(q_leaves[q], ideal_q.data() + q * d);
  }
  std::vector<double> cos_all, soft_all, jac_all, cos_rel, jac_rel, resid, cos_fam, soft_fam;
  std::vector<double> ideal_all, cos_pool, soft_pool, jac_pool, ideal_pool;
  double recall_sum = 0, kendall_sum = 0;
  for (size_t q = 0; q < queries.size(); ++q) {
    std::vector<std::pair<double, size_t>> scored;
    std::vector<std::pair<int, double>> fam;  // (m, cos)
    for (size_t i = 0; i < db.size(); ++i) {
      double c = 0;
      const float* a = qv.data() + q * d;
      const float* b = dbv.data() + i * d;
      for (size_t j = 0; j < d; ++j) c += double{a[j]} * b[j];
      scored.push_back({c, i});
      const PairTruth t = Compare(q_leaves[q], db_leaves[i], encoder.config().num_sigma);
      double ci = 0;
      for (size_t j = 0; j < d; ++j) ci += double{ideal_q[q * d + j]} * ideal_db[i * d + j];
      ideal_all.push_back(ci);
      if (family[i] >= 0) {  // the pool of graded variants of all queries
        cos_pool.push_back(c);
        soft_pool.push_back(t.soft_ochiai);
        jac_pool.push_back(t.jaccard);
        ideal_pool.push_back(ci);
      }
      cos_all.push_back(c);
      soft_all.push_back(t.soft_ochiai);
      jac_all.push_back(t.jaccard);
      resid.push_back(c - t.soft_ochiai);
      if (t.jaccard >= 0.15) {
        cos_rel.push_back(c);
        jac_rel.push_back(t.jaccard);
      }
      if (family[i] == static_cast<int>(q)) {
        fam.push_back({level[i], c});
        cos_fam.push_back(c);
        soft_fam.push_back(t.soft_ochiai);
      }
    }
    std::partial_sort(scored.begin(), scored.begin() + 10, scored.end(),
                      [](const auto& x, const auto& y) { return x.first > y.first; });
    int found = 0, relevant = 0;
    for (size_t i = 0; i < db.size(); ++i) {
      relevant += family[i] == static_cast<int>(q) && level[i] <= o.near_dup_max_m;
    }
    for (int k = 0; k < 10; ++k) {
      const size_t i = scored[k].second;
      found += family[i] == static_cast<int>(q) && level[i] <= o.near_dup_max_m;
    }
    recall_sum += relevant > 0 ? double(found) / relevant : 1.0;
    // Kendall τ between cos and −m.
    int conc = 0, disc = 0;
    for (size_t a = 0; a < fam.size(); ++a) {
      for (size_t b = a + 1; b < fam.size(); ++b) {
        const double s1 = (fam[a].first < fam[b].first) ? 1 : -1;
        const double s2 = (fam[a].second > fam[b].second) ? 1 : -1;
        (s1 == s2 ? conc : disc)++;
      }
    }
    kendall_sum += fam.size() > 1 ? double(conc - disc) / (conc + disc) : 1.0;
  }
  rep.pairs = cos_all.size();
  rep.related_pairs = cos_rel.size();
  rep.pearson_soft_ochiai = Pearson(cos_all, soft_all);
  rep.pearson_family = Pearson(cos_fam, soft_fam);
  {
    const double m = std::accumulate(soft_all.begin(), soft_all.end(), 0.0) / soft_all.size();
    double v = 0;
    for (double x : soft_all) v += (x - m) * (x - m);
    rep.truth_std = std::sqrt(v / soft_all.size());
  }
  rep.spearman_jaccard_all = Spearman(cos_all, jac_all);
  rep.ideal_pearson_all = Pearson(ideal_all, soft_all);
  rep.pearson_pool = Pearson(cos_pool, soft_pool);
  rep.truth_std_pool = Std(soft_pool);
  rep.spearman_jaccard_pool = Spearman(cos_pool, jac_pool);
  rep.ideal_pearson_pool = Pearson(ideal_pool, soft_pool);
  rep.pool_pairs = cos_pool.size();
  {
    std::vector<double> r(ideal_all.size());
    for (size_t k = 0; k < r.size(); ++k) r[k] = ideal_all[k] - soft_all[k];
    rep.ideal_residual_std = Std(r);
  }
  rep.spearman_jaccard_related = cos_rel.size() > 2 ? Spearman(cos_rel, jac_rel) : 0;
  const double mr = std::accumulate(resid.begin(), resid.end(), 0.0) / resid.size();
  double vr = 0;
  for (double r : resid) vr += (r - mr) * (r - mr);
  rep.residual_std = std::sqrt(vr / resid.size());
  rep.recall_at_10 = recall_sum / queries.size();
  rep.kendall_family = kendall_sum / queries.size();

  // Probe: dictionary from the database's atoms; every non-numeric leaf of every query.
  MbatPathDictionary dict;
  for (const std::string& t : db_text) {
    auto atoms = encoder.CollectAtoms(t);
    if (atoms.ok()) dict.Add(*atoms);
  }
  for (const std::string& t : q_text) {
    auto atoms = encoder.CollectAtoms(t);
    if (atoms.ok()) dict.Add(*atoms);
  }
  size_t correct = 0;
  for (size_t q = 0; q < queries.size(); ++q) {
    for (const Leaf& l : q_leaves[q]) {
      if (l.value.is_number()) continue;
      auto hits = encoder.Probe(qv.data() + q * d, l.path, dict, 1);
      ++rep.probes;
      if (hits.ok() && (*hits)[0].value.ToJson() == l.value.dump()) ++correct;
    }
  }
  rep.probe_accuracy = rep.probes ? double(correct) / rep.probes : 0;
  return rep;
}

}  // namespace chamferdb::mbat_bench
