#include "kernels/sheaf/sheaf.h"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "common/rng.h"

namespace chamferdb::sheaf {
namespace {

constexpr int64_t kRowChunk = 64;

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

int64_t NumNodes(const DiffusionParams& p) {
  return static_cast<int64_t>(p.num_users) + p.num_items;
}

// F for directed edge src→dst: tanh(w · [x_src ; x_dst]).
double RestrictionMap(const std::vector<double>& w, const double* xs, const double* xd, int d) {
  double s = 0;
  for (int j = 0; j < d; ++j) s += w[j] * xs[j];
  for (int j = 0; j < d; ++j) s += w[d + j] * xd[j];
  return std::tanh(s);
}

// Y = X Wᵀ + b, row-major n × D.
void Affine(const std::vector<double>& x, const SheafLayer& layer, int64_t n, int d,
            std::vector<double>* y) {
  y->assign(n * d, 0.0);
  Eigen::Map<const RowMat> w(layer.W.data(), d, d);
  const int64_t chunks = (n + kRowChunk - 1) / kRowChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = c * kRowChunk, rows = std::min(kRowChunk, n - r0);
    Eigen::Map<const RowMat> xb(x.data() + r0 * d, rows, d);
    Eigen::Map<RowMat> yb(y->data() + r0 * d, rows, d);
    yb.noalias() = xb * w.transpose();
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < d; ++j) yb(r, j) += layer.b[j];
  }
}

void Accumulate(std::vector<double>* sum, const std::vector<double>& x) {
  for (size_t i = 0; i < x.size(); ++i) (*sum)[i] += x[i];
}

void Finish(const DiffusionParams& p, std::vector<double>* sum, const std::vector<double>& last,
            DiffusionResult* r) {
  if (p.aggregate == Aggregate::kLast) {
    r->h = last;
    return;
  }
  const double inv = 1.0 / static_cast<double>(p.layers.size() + 1);
  for (double& v : *sum) v *= inv;
  r->h = std::move(*sum);
}

}  // namespace

absl::Status Validate(const DiffusionParams& p, const std::vector<double>& x0) {
  if (p.num_users < 0 || p.num_items < 0 || NumNodes(p) == 0) {
    return absl::InvalidArgumentError("num_users/num_items: need at least one node");
  }
  if (p.dim < 1) return absl::InvalidArgumentError("x0: embedding dimension must be ≥ 1");
  if (static_cast<int64_t>(x0.size()) != NumNodes(p) * p.dim) {
    return absl::InvalidArgumentError(fmt::format(
        "x0: expected {} × {} values, got {}", NumNodes(p), p.dim, x0.size()));
  }
  for (double v : x0) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError("x0: non-finite value");
  }
  std::vector<int64_t> keys;
  keys.reserve(p.edges.size());
  for (size_t k = 0; k < p.edges.size(); ++k) {
    const Interaction& e = p.edges[k];
    if (e.user < 0 || e.user >= p.num_users || e.item < 0 || e.item >= p.num_items) {
      return absl::InvalidArgumentError(fmt::format(
          "edges[{}]: ({}, {}) outside [0,{}) × [0,{})", k, e.user, e.item, p.num_users,
          p.num_items));
    }
    keys.push_back(static_cast<int64_t>(e.user) * p.num_items + e.item);
  }
  std::sort(keys.begin(), keys.end());
  if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
    return absl::InvalidArgumentError("edges: duplicate (user, item) pair");
  }
  const size_t d = static_cast<size_t>(p.dim);
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const SheafLayer& layer = p.layers[l];
    if (layer.w.size() != 2 * d && !(p.unit_maps && layer.w.empty())) {
      return absl::InvalidArgumentError(fmt::format("layers[{}].w: expected {} values", l, 2 * d));
    }
    if (layer.W.size() != d * d) {
      return absl::InvalidArgumentError(fmt::format("layers[{}].W: expected {}×{}", l, d, d));
    }
    if (layer.b.size() != d) {
      return absl::InvalidArgumentError(fmt::format("layers[{}].b: expected {} values", l, d));
    }
    for (const std::vector<double>* v : {&layer.w, &layer.W, &layer.b}) {
      for (double x : *v) {
        if (!std::isfinite(x)) {
          return absl::InvalidArgumentError(fmt::format("layers[{}]: non-finite weight", l));
        }
      }
    }
  }
  if (!std::isfinite(p.alpha)) return absl::InvalidArgumentError("alpha: not finite");
  return absl::OkStatus();
}

namespace {

// Maps of one layer for both paths (the per-edge formula is the same; the paths differ in
// how L̃ is assembled and applied).
std::vector<double> LayerMaps(const DiffusionParams& p, const SheafLayer& layer,
                              const std::vector<double>& x) {
  const int64_t e = static_cast<int64_t>(p.edges.size());
  std::vector<double> maps(2 * e, 1.0);
  if (p.unit_maps) return maps;
  const int d = p.dim;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < e; ++k) {
    const double* xu = x.data() + static_cast<int64_t>(p.edges[k].user) * d;
    const double* xi = x.data() + (static_cast<int64_t>(p.num_users) + p.edges[k].item) * d;
    maps[2 * k] = RestrictionMap(layer.w, xu, xi, d);
    maps[2 * k + 1] = RestrictionMap(layer.w, xi, xu, d);
  }
  return maps;
}

}  // namespace

std::vector<double> DenseLaplacian(int32_t num_users, int32_t num_items,
                                   const std::vector<Interaction>& edges,
                                   const std::vector<double>& maps) {
  const int64_t n = static_cast<int64_t>(num_users) + num_items;
  std::vector<double> l(n * n, 0.0);
  for (size_t k = 0; k < edges.size(); ++k) {
    const int64_t a = edges[k].user, b = num_users + edges[k].item;
    const double fa = maps[2 * k], fb = maps[2 * k + 1];
    l[a * n + a] += fa * fa;
    l[b * n + b] += fb * fb;
    l[a * n + b] -= fa * fb;
    l[b * n + a] -= fa * fb;
  }
  return l;
}

DiffusionResult DiffuseReference(const DiffusionParams& p, const std::vector<double>& x0) {
  const int64_t n = NumNodes(p);
  const int d = p.dim;
  DiffusionResult r;
  std::vector<double> x = x0, sum = x0;
  for (const SheafLayer& layer : p.layers) {
    const std::vector<double> maps = LayerMaps(p, layer, x);
    std::vector<double> l = DenseLaplacian(p.num_users, p.num_items, p.edges, maps);
    std::vector<double> dt(n);
    for (int64_t a = 0; a < n; ++a) {
      r.laplacian_diag.push_back(l[a * n + a]);
      dt[a] = 1.0 / std::sqrt(l[a * n + a] + 1.0);
    }
    for (int64_t a = 0; a < n; ++a)
      for (int64_t b = 0; b < n; ++b) l[a * n + b] *= dt[a] * dt[b];
    std::vector<double> y(n * d);
    for (int64_t a = 0; a < n; ++a) {
      for (int j = 0; j < d; ++j) {
        double s = layer.b[j];
        for (int c = 0; c < d; ++c) s += x[a * d + c] * layer.W[j * d + c];
        y[a * d + j] = s;
      }
    }
    for (int64_t a = 0; a < n; ++a) {
      for (int j = 0; j < d; ++j) {
        double z = 0;
        for (int64_t b = 0; b < n; ++b) z += l[a * n + b] * y[b * d + j];
        x[a * d + j] -= p.alpha * z;
      }
    }
    r.maps.insert(r.maps.end(), maps.begin(), maps.end());
    Accumulate(&sum, x);
  }
  Finish(p, &sum, x, &r);
  return r;
}

DiffusionResult DiffuseFast(const DiffusionParams& p, const std::vector<double>& x0) {
  const int64_t n = NumNodes(p);
  const int d = p.dim;
  const int64_t e = static_cast<int64_t>(p.edges.size());
  // CSR over nodes: for node a, its neighbours b with the directed edge ids a→b and b→a.
  std::vector<int64_t> offsets(n + 1, 0);
  for (const Interaction& it : p.edges) {
    ++offsets[it.user + 1];
    ++offsets[static_cast<int64_t>(p.num_users) + it.item + 1];
  }
  std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
  std::vector<int64_t> nbr(2 * e), out_edge(2 * e), in_edge(2 * e);
  {
    std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
    for (int64_t k = 0; k < e; ++k) {
      const int64_t a = p.edges[k].user, b = p.num_users + p.edges[k].item;
      int64_t s = fill[a]++;
      nbr[s] = b, out_edge[s] = 2 * k, in_edge[s] = 2 * k + 1;
      s = fill[b]++;
      nbr[s] = a, out_edge[s] = 2 * k + 1, in_edge[s] = 2 * k;
    }
  }
  const int64_t chunks = (n + kRowChunk - 1) / kRowChunk;
  DiffusionResult r;
  std::vector<double> x = x0, sum = x0, y, diag(n), dt(n), offval(2 * e);
  for (const SheafLayer& layer : p.layers) {
    const std::vector<double> maps = LayerMaps(p, layer, x);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      for (int64_t a = c * kRowChunk; a < std::min(n, (c + 1) * kRowChunk); ++a) {
        double s = 0;
        for (int64_t q = offsets[a]; q < offsets[a + 1]; ++q) s += maps[out_edge[q]] * maps[out_edge[q]];
        diag[a] = s;
        dt[a] = 1.0 / std::sqrt(s + 1.0);
      }
    }
    Affine(x, layer, n, d, &y);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      std::vector<double> z(d);
      for (int64_t a = c * kRowChunk; a < std::min(n, (c + 1) * kRowChunk); ++a) {
        const double daa = dt[a] * dt[a] * diag[a];
        for (int j = 0; j < d; ++j) z[j] = daa * y[a * d + j];
        for (int64_t q = offsets[a]; q < offsets[a + 1]; ++q) {
          const int64_t b = nbr[q];
          const double lab = -maps[out_edge[q]] * maps[in_edge[q]] * dt[a] * dt[b];
          const double* yb = y.data() + b * d;
          for (int j = 0; j < d; ++j) z[j] += lab * yb[j];
        }
        for (int j = 0; j < d; ++j) x[a * d + j] -= p.alpha * z[j];
      }
    }
    r.laplacian_diag.insert(r.laplacian_diag.end(), diag.begin(), diag.end());
    r.maps.insert(r.maps.end(), maps.begin(), maps.end());
    Accumulate(&sum, x);
  }
  Finish(p, &sum, x, &r);
  return r;
}

// ---------------------------------------------------------------------------------------
// Ranking.

UserItems UserItems::FromPairs(int32_t num_users, const std::vector<Interaction>& pairs) {
  UserItems u;
  u.offsets.assign(num_users + 1, 0);
  for (const Interaction& it : pairs) ++u.offsets[it.user + 1];
  std::partial_sum(u.offsets.begin(), u.offsets.end(), u.offsets.begin());
  u.items.resize(pairs.size());
  std::vector<int64_t> fill(u.offsets.begin(), u.offsets.end() - 1);
  for (const Interaction& it : pairs) u.items[fill[it.user]++] = it.item;
  for (int32_t q = 0; q < num_users; ++q) {
    std::sort(u.items.begin() + u.offsets[q], u.items.begin() + u.offsets[q + 1]);
  }
  return u;
}

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Applies the mask to one user's score row; returns the number of candidates (items that
// may be recommended).
int64_t MaskRow(const UserItems& train, int32_t user, MaskMode mask, double* scores,
                std::vector<char>* excluded, int32_t num_items) {
  std::fill(excluded->begin(), excluded->end(), 0);
  if (train.offsets.empty()) return num_items;
  int64_t seen = 0;
  for (int64_t q = train.offsets[user]; q < train.offsets[user + 1]; ++q) {
    const int32_t i = train.items[q];
    if (mask == MaskMode::kZero) {
      scores[i] = 0.0;
    } else if (!(*excluded)[i]) {
      (*excluded)[i] = 1;
      ++seen;
    }
  }
  return num_items - seen;
}

bool Better(double sa, int32_t a, double sb, int32_t b) {
  return sa > sb || (sa == sb && a < b);
}

void WriteRow(const std::vector<int32_t>& order, const double* scores, int32_t k, int32_t user,
              TopK* out) {
  for (int32_t r = 0; r < k; ++r) {
    const size_t slot = static_cast<size_t>(user) * k + r;
    if (r < static_cast<int32_t>(order.size())) {
      out->items[slot] = order[r];
      out->scores[slot] = scores[order[r]];
    } else {
      out->items[slot] = -1;
      out->scores[slot] = kNegInf;
    }
  }
}

}  // namespace

TopK RecommendReference(const std::vector<double>& h_users, const std::vector<double>& h_items,
                        int32_t num_users, int32_t num_items, int32_t dim,
                        const UserItems& train, int32_t k, MaskMode mask) {
  TopK out;
  out.k = k;
  out.items.resize(static_cast<size_t>(num_users) * k);
  out.scores.resize(out.items.size());
  std::vector<double> scores(num_items);
  std::vector<char> excluded(num_items);
  for (int32_t u = 0; u < num_users; ++u) {
    for (int32_t i = 0; i < num_items; ++i) {
      double s = 0;
      for (int32_t j = 0; j < dim; ++j) {
        s += h_users[static_cast<size_t>(u) * dim + j] * h_items[static_cast<size_t>(i) * dim + j];
      }
      scores[i] = s;
    }
    MaskRow(train, u, mask, scores.data(), &excluded, num_items);
    std::vector<int32_t> order;
    for (int32_t i = 0; i < num_items; ++i)
      if (!excluded[i]) order.push_back(i);
    std::sort(order.begin(), order.end(),
              [&](int32_t a, int32_t b) { return Better(scores[a], a, scores[b], b); });
    if (static_cast<int32_t>(order.size()) > k) order.resize(k);
    WriteRow(order, scores.data(), k, u, &out);
  }
  return out;
}

TopK RecommendFast(const std::vector<double>& h_users, const std::vector<double>& h_items,
                   int32_t num_users, int32_t num_items, int32_t dim, const UserItems& train,
                   int32_t k, MaskMode mask) {
  TopK out;
  out.k = k;
  out.items.resize(static_cast<size_t>(num_users) * k);
  out.scores.resize(out.items.size());
  Eigen::Map<const RowMat> hi(h_items.data(), num_items, dim);
  const int64_t chunks = (num_users + kRowChunk - 1) / kRowChunk;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t u0 = c * kRowChunk, rows = std::min<int64_t>(kRowChunk, num_users - u0);
    Eigen::Map<const RowMat> hu(h_users.data() + u0 * dim, rows, dim);
    // The GEMM's rounding differs from the reference's dot products in the last bits, which
    // can only swap items whose scores tie to within an ulp.
    const RowMat block = hu * hi.transpose();
    std::vector<double> scores(num_items);
    std::vector<char> excluded(num_items);
    std::vector<int32_t> order;
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t u = static_cast<int32_t>(u0 + r);
      for (int32_t i = 0; i < num_items; ++i) scores[i] = block(r, i);
      MaskRow(train, u, mask, scores.data(), &excluded, num_items);
      order.clear();
      for (int32_t i = 0; i < num_items; ++i)
        if (!excluded[i]) order.push_back(i);
      auto better = [&](int32_t a, int32_t b) { return Better(scores[a], a, scores[b], b); };
      if (static_cast<int32_t>(order.size()) > k) {
        std::nth_element(order.begin(), order.begin() + k, order.end(), better);
        order.resize(k);
      }
      std::sort(order.begin(), order.end(), better);
      WriteRow(order, scores.data(), k, u, &out);
    }
  }
  return out;
}

std::vector<RankingAtK> RankingMetrics(const TopK& topk, const UserItems& test,
                                       const std::vector<int32_t>& ks) {
  const int32_t num_users = static_cast<int32_t>(test.offsets.size()) - 1;
  std::vector<RankingAtK> out;
  for (int32_t k : ks) {
    RankingAtK m;
    m.k = k;
    int64_t counted = 0;
    double p_sum = 0, r_sum = 0, n_sum = 0, h_sum = 0;
    for (int32_t u = 0; u < num_users; ++u) {
      const int64_t b = test.offsets[u], e = test.offsets[u + 1];
      if (e == b) continue;
      ++counted;
      int64_t hits = 0;
      double dcg = 0;
      for (int32_t r = 0; r < k; ++r) {
        const int32_t item = topk.items[static_cast<size_t>(u) * topk.k + r];
        if (item >= 0 && std::binary_search(test.items.begin() + b, test.items.begin() + e, item)) {
          ++hits;
          dcg += 1.0 / std::log2(r + 2.0);
        }
      }
      double idcg = 0;
      for (int64_t r = 0; r < std::min<int64_t>(k, e - b); ++r) idcg += 1.0 / std::log2(r + 2.0);
      p_sum += static_cast<double>(hits) / k;
      r_sum += static_cast<double>(hits) / static_cast<double>(e - b);
      n_sum += dcg / idcg;
      h_sum += hits > 0 ? 1.0 : 0.0;
    }
    if (counted > 0) {
      m.precision = p_sum / counted;
      m.recall = r_sum / counted;
      m.ndcg = n_sum / counted;
      m.hit_rate = h_sum / counted;
      m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0;
    }
    out.push_back(m);
  }
  return out;
}

double HitsAtK(const std::vector<double>& pos, const std::vector<double>& neg, int32_t k) {
  if (static_cast<int64_t>(neg.size()) < k) return 1.0;
  std::vector<double> n = neg;
  std::nth_element(n.begin(), n.begin() + (k - 1), n.end(), std::greater<double>());
  const double kth = n[k - 1];
  if (pos.empty()) return 0.0;
  int64_t above = 0;
  for (double v : pos) above += v > kth ? 1 : 0;
  return static_cast<double>(above) / static_cast<double>(pos.size());
}

// ---------------------------------------------------------------------------------------
// Demo data.

DemoGraph MakeDemoGraph(int32_t num_users, int32_t num_items, int32_t genres, int32_t per_user,
                        uint64_t seed) {
  DemoGraph g;
  g.num_users = num_users;
  g.num_items = num_items;
  Rng rng(seed);
  g.item_genre.resize(num_items);
  std::vector<std::vector<int32_t>> by_genre(genres);
  for (int32_t i = 0; i < num_items; ++i) {
    g.item_genre[i] = i % genres;
    by_genre[i % genres].push_back(i);
  }
  // Zipf-like popularity inside a genre: rank r drawn with probability ∝ 1/(r+1).
  auto zipf = [&](size_t size) {
    double h = 0;
    for (size_t r = 0; r < size; ++r) h += 1.0 / (r + 1);
    double u = rng.Uniform() * h;
    for (size_t r = 0; r < size; ++r) {
      u -= 1.0 / (r + 1);
      if (u <= 0) return r;
    }
    return size - 1;
  };
  g.user_genre.resize(num_users);
  for (int32_t u = 0; u < num_users; ++u) {
    const int32_t genre = static_cast<int32_t>(rng.UniformInt(genres));
    g.user_genre[u] = genre;
    std::vector<int32_t> chosen;
    int guard = 0;
    while (static_cast<int32_t>(chosen.size()) < std::min(per_user, num_items) && guard++ < 100 * per_user) {
      int32_t item;
      if (rng.Uniform() < 0.8) {
        item = by_genre[genre][zipf(by_genre[genre].size())];
      } else {
        item = static_cast<int32_t>(rng.UniformInt(num_items));
      }
      if (std::find(chosen.begin(), chosen.end(), item) == chosen.end()) chosen.push_back(item);
    }
    for (int32_t item : chosen) {
      (rng.Uniform() < 0.8 ? g.train : g.test).push_back({u, item});
    }
  }
  return g;
}

}  // namespace chamferdb::sheaf
