#include "common/parallel_for.h"
#include "kernels/sgcn/sgcn.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <numbers>
#include <numeric>
#include <unordered_map>

#include "kernels/sphere/frames.h"
#include "kernels/sphere/sphere.h"

namespace chamferdb::sgcn {
namespace {

using ::chamferdb::ParallelFor;  // common/parallel_for.h

double Dist2(const double* a, const double* b) {
  double s = 0;
  for (int c = 0; c < 3; ++c) s += (a[c] - b[c]) * (a[c] - b[c]);
  return s;
}

struct CellKey {
  int64_t x, y, z;
  bool operator==(const CellKey& o) const { return x == o.x && y == o.y && z == o.z; }
};
struct CellKeyHash {
  size_t operator()(const CellKey& k) const {
    uint64_t h = static_cast<uint64_t>(k.x) * 0x9E3779B97F4A7C15ull;
    h ^= static_cast<uint64_t>(k.y) * 0xC2B2AE3D27D4EB4Full + (h << 6) + (h >> 2);
    h ^= static_cast<uint64_t>(k.z) * 0x165667B19E3779F9ull + (h << 6) + (h >> 2);
    return static_cast<size_t>(h ^ (h >> 31));
  }
};

// All (i, j), i ≠ j, ‖CA_i − CA_j‖ ≤ cutoff, sorted by (i, j): cell list with cells of the
// cutoff size (fast) or all pairs (naive).
// Returns false when more than max_edges edges would be produced.
bool CutoffEdges(int64_t n, const double* ca, double cutoff, bool naive, int64_t max_edges,
                 std::vector<int64_t>* out) {
  std::vector<int64_t>& ij = *out;
  const double c2 = cutoff * cutoff;
  if (naive) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (i != j && Dist2(ca + i * 3, ca + j * 3) <= c2) {
          if (static_cast<int64_t>(ij.size() / 2) >= max_edges) return false;
          ij.push_back(i), ij.push_back(j);
        }
    return true;
  }
  // Cell indices are exact integers (the caller keeps |coordinate| / cutoff < 2^52) and the
  // key is the whole triple: a packed 21-bit key aliased cells 2^21 apart into one bucket, so
  // spread-out points could cost O(n²) distance tests.
  auto cell = [&](int64_t i, int c) { return static_cast<int64_t>(std::floor(ca[i * 3 + c] / cutoff)); };
  auto key = [](int64_t x, int64_t y, int64_t z) { return CellKey{x, y, z}; };
  std::unordered_map<CellKey, std::vector<int64_t>, CellKeyHash> cells;
  for (int64_t i = 0; i < n; ++i) cells[key(cell(i, 0), cell(i, 1), cell(i, 2))].push_back(i);
  std::vector<int64_t> nb;
  for (int64_t i = 0; i < n; ++i) {
    nb.clear();
    const int64_t cx = cell(i, 0), cy = cell(i, 1), cz = cell(i, 2);
    for (int64_t dx = -1; dx <= 1; ++dx)
      for (int64_t dy = -1; dy <= 1; ++dy)
        for (int64_t dz = -1; dz <= 1; ++dz) {
          auto it = cells.find(key(cx + dx, cy + dy, cz + dz));
          if (it == cells.end()) continue;
          for (int64_t j : it->second)
            if (j != i && Dist2(ca + i * 3, ca + j * 3) <= c2) nb.push_back(j);
        }
    std::sort(nb.begin(), nb.end());
    if (static_cast<int64_t>(ij.size() / 2 + nb.size()) > max_edges) return false;
    for (int64_t j : nb) ij.push_back(i), ij.push_back(j);
  }
  return true;
}

// Nbar(l,k)(cosθ) by the explicit sum, long double:
// sqrt((2l+1)/(4π)·(l−k)!/(l+k)!)·(1−x²)^{k/2}·d^k/dx^k P_l(x),
// P_l(x) = 2^{−l} Σ_s (−1)^s C(l,s) C(2l−2s,l) x^{l−2s}.
long double ExplicitNbar(int l, int k, long double x) {
  auto fact = [](int m) {
    long double f = 1;
    for (int i = 2; i <= m; ++i) f *= i;
    return f;
  };
  auto binom = [&](int a, int b) { return fact(a) / (fact(b) * fact(a - b)); };
  long double s = 0;
  for (int t = 0; 2 * t <= l; ++t) {
    const int p = l - 2 * t;
    if (p < k) continue;
    s += ((t % 2) ? -1.0L : 1.0L) * binom(l, t) * binom(2 * l - 2 * t, l) * fact(p) /
         fact(p - k) * std::pow(x, static_cast<long double>(p - k));
  }
  s /= std::pow(2.0L, static_cast<long double>(l));
  const long double norm = std::sqrt((2 * l + 1) / (4 * std::numbers::pi_v<long double>) *
                                     fact(l - k) / fact(l + k));
  return norm * std::pow(1 - x * x, static_cast<long double>(k) / 2) * s;
}

}  // namespace

absl::Status SphericalGraphFeatures(int64_t n, const double* backbone, const FeatureOptions& o,
                                    SgcnMethod method, GraphFeatures* out) {
  if (n < 1) return absl::InvalidArgumentError("backbone: R must be ≥ 1");
  if (o.lmax < 0 || o.lmax > kMaxDegree) {
    return absl::InvalidArgumentError(
        fmt::format("lmax must be in [0, {}]; got {}", kMaxDegree, o.lmax));
  }
  if (o.threads < 1) return absl::InvalidArgumentError("threads must be ≥ 1");
  if (method == SgcnMethod::kNaive && n > kMaxNaiveResidues) {
    return absl::InvalidArgumentError(
        fmt::format("method naive accepts R ≤ {}; got {}", kMaxNaiveResidues, n));
  }
  const bool by_cutoff = o.cutoff > 0;
  if (by_cutoff == (o.edges != nullptr)) {
    return absl::InvalidArgumentError("cutoff / edges: give exactly one of them");
  }
  if (o.radial == Radial::kEdgeWeight && (by_cutoff || o.edge_weight == nullptr)) {
    return absl::InvalidArgumentError("radial edge_weight needs explicit edges with edge_weight");
  }
  if (o.radial == Radial::kRbf && (o.rbf_centres.empty() || !(o.rbf_width > 0))) {
    return absl::InvalidArgumentError("radial rbf needs ≥ 1 centre and rbf_width > 0");
  }
  GraphFeatures& g = *out;
  g = GraphFeatures();
  g.n = n;
  g.lmax = o.lmax;
  g.rot.resize(n * 9);
  g.origin.resize(n * 3);
  if (absl::Status s = sphere::FramesFromBackbone(n, backbone, g.rot.data(), g.origin.data());
      !s.ok()) {
    return s;
  }
  if (by_cutoff) {
    // Cell indices floor(coordinate / cutoff) must be exact int64 values (a tiny cutoff on
    // large coordinates overflowed the conversion: undefined behaviour, kernels_fuzz).
    for (int64_t i = 0; i < 3 * n; ++i) {
      if (!(std::abs(g.origin[i]) / o.cutoff < 0x1p52)) {
        return absl::InvalidArgumentError(fmt::format(
            "cutoff: {} is too small for the backbone (CA) coordinate {}: |coordinate| / cutoff must stay below 2^52",
            o.cutoff, g.origin[i]));
      }
    }
    if (!CutoffEdges(n, g.origin.data(), o.cutoff, method == SgcnMethod::kNaive, o.max_edges,
                     &g.edges)) {
      return absl::ResourceExhaustedError(fmt::format(
          "cutoff: the graph has more than {} edges; lower the cutoff", o.max_edges));
    }
  } else {
    g.edges.assign(o.edges, o.edges + 2 * o.e);
    std::vector<int64_t> keys(o.e);
    for (int64_t x = 0; x < o.e; ++x) {
      const int64_t i = g.edges[2 * x], j = g.edges[2 * x + 1];
      if (i < 0 || i >= n || j < 0 || j >= n || i == j) {
        return absl::InvalidArgumentError(fmt::format(
            "edges: edge {} = ({}, {}) is a self-loop or outside [0, {})", x, i, j, n));
      }
      keys[x] = i * n + j;
    }
    std::sort(keys.begin(), keys.end());
    if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
      return absl::InvalidArgumentError("edges: duplicate (i, j) pair");
    }
  }
  const int64_t e = g.num_edges();
  const int ns = sphere::NumSh(o.lmax);
  g.local.resize(e * 3);
  g.sph.resize(e * 3);
  g.y.resize(e * ns);
  for (int64_t x = 0; x < e; ++x) {
    const int64_t i = g.edges[2 * x], j = g.edges[2 * x + 1];
    if (Dist2(g.origin.data() + i * 3, g.origin.data() + j * 3) == 0) {
      return absl::InvalidArgumentError(
          fmt::format("edges: residues {} and {} have the same CA; no direction", i, j));
    }
  }
  ParallelFor(e, o.threads, [&](int64_t x) {
    const int64_t i = g.edges[2 * x], j = g.edges[2 * x + 1];
    double* d = &g.local[x * 3];
    sphere::ToLocal(&g.rot[i * 9], &g.origin[i * 3], &g.origin[j * 3], d);
    const double r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    const double theta = std::acos(std::clamp(d[2] / r, -1.0, 1.0));
    const double phi = std::atan2(d[1], d[0]);
    g.sph[x * 3] = r, g.sph[x * 3 + 1] = theta, g.sph[x * 3 + 2] = phi;
    double* yx = &g.y[x * ns];
    if (method == SgcnMethod::kFast) {
      const double u[3] = {d[0] / r, d[1] / r, d[2] / r};
      sphere::RealSh(o.lmax, u, yx);
    } else {
      const long double ct = std::cos(static_cast<long double>(theta));
      for (int l = 0; l <= o.lmax; ++l) {
        yx[sphere::ShIndex(l, 0)] = static_cast<double>(ExplicitNbar(l, 0, ct));
        for (int k = 1; k <= l; ++k) {
          const long double p = std::sqrt(2.0L) * ExplicitNbar(l, k, ct);
          yx[sphere::ShIndex(l, k)] = static_cast<double>(p * std::cos(k * static_cast<long double>(phi)));
          yx[sphere::ShIndex(l, -k)] = static_cast<double>(p * std::sin(k * static_cast<long double>(phi)));
        }
      }
    }
  });
  switch (o.radial) {
    case Radial::kNone:
      g.kr = 1;
      g.rad.assign(e, 1.0);
      break;
    case Radial::kEdgeWeight:
      g.kr = 1;
      g.rad.assign(o.edge_weight, o.edge_weight + e);
      break;
    case Radial::kRbf: {
      g.kr = static_cast<int>(o.rbf_centres.size());
      g.rad.resize(e * g.kr);
      for (int64_t x = 0; x < e; ++x)
        for (int c = 0; c < g.kr; ++c) {
          const double z = (g.sph[x * 3] - o.rbf_centres[c]) / o.rbf_width;
          g.rad[x * g.kr + c] = std::exp(-0.5 * z * z);
        }
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status SphericalGraphConv(const GraphFeatures& g, const ConvParams& p, SgcnMethod method,
                                double* h) {
  if (p.f < 1 || p.fp < 1) return absl::InvalidArgumentError("F and F' must be ≥ 1");
  if (p.threads < 1) return absl::InvalidArgumentError("threads must be ≥ 1");
  if (method == SgcnMethod::kNaive && g.n > kMaxNaiveResidues) {
    return absl::InvalidArgumentError(
        fmt::format("method naive accepts R ≤ {}; got {}", kMaxNaiveResidues, g.n));
  }
  const int64_t n = g.n, e = g.num_edges();
  const int ns = sphere::NumSh(g.lmax), kr = g.kr, f = p.f, fp = p.fp;
  const int nt = ns * kr;  // (t, κ) channels, flat t·kr + κ
  std::vector<double> indeg(n, 0.0);
  for (int64_t x = 0; x < e; ++x) indeg[g.edges[2 * x]] += 1;
  auto activate = [&](double v) {
    switch (p.activation) {
      case Activation::kRelu: return v > 0 ? v : 0.0;
      case Activation::kElu: return v > 0 ? v : std::expm1(v);
      case Activation::kNone: break;
    }
    return v;
  };
  if (method == SgcnMethod::kFast) {
    std::vector<int64_t> start(n + 1, 0), order(e);
    for (int64_t x = 0; x < e; ++x) ++start[g.edges[2 * x] + 1];
    std::partial_sum(start.begin(), start.end(), start.begin());
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t x = 0; x < e; ++x) order[fill[g.edges[2 * x]]++] = x;
    ParallelFor(n, p.threads, [&](int64_t i) {
      // Aggregate first: M[t·kr+κ][:] = ν Σ_j rad·Y_t·X_j, then H_i = X_i W0 + Σ M W + b.
      std::vector<double> m(static_cast<size_t>(nt) * f, 0.0);
      for (int64_t s = start[i]; s < start[i + 1]; ++s) {
        const int64_t x = order[s], j = g.edges[2 * x + 1];
        const double* xj = p.x + j * f;
        for (int t = 0; t < ns; ++t)
          for (int c = 0; c < kr; ++c) {
            const double coef = g.y[x * ns + t] * g.rad[x * kr + c];
            double* mt = &m[(t * kr + c) * f];
            for (int a = 0; a < f; ++a) mt[a] += coef * xj[a];
          }
      }
      const double nu = (p.normalize_rows && indeg[i] > 0) ? 1.0 / indeg[i] : 1.0;
      double* hi = h + i * fp;
      for (int b = 0; b < fp; ++b) hi[b] = p.bias ? p.bias[b] : 0.0;
      for (int a = 0; a < f; ++a) {
        const double xa = p.x[i * f + a];
        for (int b = 0; b < fp; ++b) hi[b] += xa * p.w0[a * fp + b];
      }
      for (int tc = 0; tc < nt; ++tc)
        for (int a = 0; a < f; ++a) {
          const double ma = nu * m[tc * f + a];
          if (ma == 0) continue;
          const double* wr = p.w + (static_cast<int64_t>(tc) * f + a) * fp;
          for (int b = 0; b < fp; ++b) hi[b] += ma * wr[b];
        }
      for (int b = 0; b < fp; ++b) hi[b] = activate(hi[b]);
    });
  } else {
    // Dense S_{t,κ}[i][j] = ν_i·rad·Y_t, then H = X W0 + Σ S (X W_{t,κ}) + b, as in PyTorch.
    std::vector<double> out(n * fp, 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int b = 0; b < fp; ++b) {
        double s = p.bias ? p.bias[b] : 0.0;
        for (int a = 0; a < f; ++a) s += p.x[i * f + a] * p.w0[a * fp + b];
        out[i * fp + b] = s;
      }
    std::vector<double> dense(static_cast<size_t>(n) * n), xw(n * fp);
    for (int tc = 0; tc < nt; ++tc) {
      const int t = tc / kr, c = tc % kr;
      std::fill(dense.begin(), dense.end(), 0.0);
      for (int64_t x = 0; x < e; ++x) {
        const int64_t i = g.edges[2 * x], j = g.edges[2 * x + 1];
        const double nu = (p.normalize_rows && indeg[i] > 0) ? 1.0 / indeg[i] : 1.0;
        dense[i * n + j] += nu * g.rad[x * kr + c] * g.y[x * ns + t];
      }
      const double* wt = p.w + static_cast<int64_t>(tc) * f * fp;
      for (int64_t j = 0; j < n; ++j)
        for (int b = 0; b < fp; ++b) {
          double s = 0;
          for (int a = 0; a < f; ++a) s += p.x[j * f + a] * wt[a * fp + b];
          xw[j * fp + b] = s;
        }
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const double sij = dense[i * n + j];
          if (sij == 0) continue;
          for (int b = 0; b < fp; ++b) out[i * fp + b] += sij * xw[j * fp + b];
        }
    }
    for (int64_t i = 0; i < n * fp; ++i) h[i] = activate(out[i]);
  }
  return absl::OkStatus();
}

}  // namespace chamferdb::sgcn
