#include "common/parallel_for.h"
#include "kernels/vfn/vfn.h"

#include <fmt/format.h>
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <vector>

namespace chamferdb::vfn {
namespace {

using ::chamferdb::ParallelFor;  // common/parallel_for.h

absl::Status ValidateFramesAndEdges(const Frames& f, const EdgeList& e, VfnMethod method,
                                    int threads) {
  if (f.n < 1) return absl::InvalidArgumentError("frames: N must be ≥ 1");
  if (!(f.coord_scale > 0) || !std::isfinite(f.coord_scale)) {
    return absl::InvalidArgumentError("coord_scale must be finite and > 0");
  }
  if (threads < 1) return absl::InvalidArgumentError("threads must be ≥ 1");
  if (method == VfnMethod::kNaive && f.n > kMaxNaiveResidues) {
    return absl::InvalidArgumentError(fmt::format(
        "method naive materialises N×N tensors and accepts N ≤ {}; got {}", kMaxNaiveResidues,
        f.n));
  }
  if (e.e < 0) return absl::InvalidArgumentError("edges: negative count");
  std::vector<int64_t> keys(e.e);
  for (int64_t x = 0; x < e.e; ++x) {
    const int64_t i = e.ij[2 * x], j = e.ij[2 * x + 1];
    if (i < 0 || i >= f.n || j < 0 || j >= f.n) {
      return absl::InvalidArgumentError(
          fmt::format("edges: edge {} = ({}, {}) has an index outside [0, {})", x, i, j, f.n));
    }
    keys[x] = i * f.n + j;
  }
  std::sort(keys.begin(), keys.end());
  if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
    return absl::InvalidArgumentError("edges: duplicate (i, j) pair");
  }
  return absl::OkStatus();
}

// Relative transform T_i⁻¹T_j by the rigid shortcut: rel = R_iᵀR_j, tr = R_iᵀ s(t_j − t_i).
void RelativeRigid(const Frames& f, int64_t i, int64_t j, double* rel, double* tr) {
  const double* ri = f.rot + i * 9;
  const double* rj = f.rot + j * 9;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      rel[a * 3 + b] = ri[0 * 3 + a] * rj[0 * 3 + b] + ri[1 * 3 + a] * rj[1 * 3 + b] +
                       ri[2 * 3 + a] * rj[2 * 3 + b];
  const double d[3] = {f.coord_scale * (f.trans[j * 3] - f.trans[i * 3]),
                       f.coord_scale * (f.trans[j * 3 + 1] - f.trans[i * 3 + 1]),
                       f.coord_scale * (f.trans[j * 3 + 2] - f.trans[i * 3 + 2])};
  for (int a = 0; a < 3; ++a) tr[a] = ri[a] * d[0] + ri[3 + a] * d[1] + ri[6 + a] * d[2];
}

void Apply(const double* rel, const double* tr, const double* p, double* out) {
  for (int a = 0; a < 3; ++a)
    out[a] = rel[a * 3] * p[0] + rel[a * 3 + 1] * p[1] + rel[a * 3 + 2] * p[2] + tr[a];
}

// len, dir and rbf of one edge from its U (kp × 3).
void Finish(const EdgeFeatureParams& p, const double* u, double* len, double* dir,
            double* rbf) {
  for (int a = 0; a < p.kp; ++a) {
    const double l = std::sqrt(u[a * 3] * u[a * 3] + u[a * 3 + 1] * u[a * 3 + 1] +
                               u[a * 3 + 2] * u[a * 3 + 2]);
    len[a] = l;
    for (int c = 0; c < 3; ++c) dir[a * 3 + c] = l > 0 ? u[a * 3 + c] / l : 0.0;
    for (int gi = 0; gi < p.g; ++gi) {
      const double z = (l - p.mu[a * p.g + gi]) / p.sigma[a * p.g + gi];
      rbf[a * p.g + gi] = std::exp(-0.5 * z * z);
    }
  }
}

using Mat4 = Eigen::Matrix4d;

// The 4×4 homogeneous matrix of frame i (naive route).
Mat4 Homogeneous(const Frames& f, int64_t i) {
  Mat4 m = Mat4::Identity();
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) m(a, b) = f.rot[i * 9 + a * 3 + b];
    m(a, 3) = f.coord_scale * f.trans[i * 3 + a];
  }
  return m;
}

// Dense [N][N][m][3] tensor of T_i⁻¹T_j applied to pts_j (m points per residue), with the
// inverses from a general LU.
std::vector<double> DenseTransported(const Frames& f, const double* pts, int m) {
  const int64_t n = f.n;
  std::vector<Mat4> inv(n), fwd(n);
  for (int64_t i = 0; i < n; ++i) {
    fwd[i] = Homogeneous(f, i);
    inv[i] = fwd[i].partialPivLu().inverse();
  }
  std::vector<double> dense(static_cast<size_t>(n) * n * m * 3);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const Mat4 rel = inv[i] * fwd[j];
      for (int c = 0; c < m; ++c) {
        const Eigen::Vector4d x(pts[(j * m + c) * 3], pts[(j * m + c) * 3 + 1],
                                pts[(j * m + c) * 3 + 2], 1.0);
        const Eigen::Vector4d y = rel * x;
        double* o = &dense[((i * n + j) * m + c) * 3];
        o[0] = y(0), o[1] = y(1), o[2] = y(2);
      }
    }
  return dense;
}

}  // namespace

absl::Status VfnEdgeFeatures(const Frames& f, const double* q, const double* v,
                             const EdgeList& edges, const EdgeFeatureParams& p,
                             VfnMethod method, int threads, const EdgeFeatureOutput& out) {
  if (absl::Status s = ValidateFramesAndEdges(f, edges, method, threads); !s.ok()) return s;
  if (p.k < 1 || p.k > kMaxAtoms || p.kp < 1 || p.kp > kMaxAtoms) {
    return absl::InvalidArgumentError(fmt::format(
        "K and K' must be in [1, {}]; got K = {}, K' = {}", kMaxAtoms, p.k, p.kp));
  }
  if (p.g < 0 || p.g > kMaxRbf) {
    return absl::InvalidArgumentError(fmt::format("G must be in [0, {}]; got {}", kMaxRbf, p.g));
  }
  if (p.residual && p.kp != p.k) {
    return absl::InvalidArgumentError("residual needs K' == K");
  }
  for (int x = 0; x < p.kp * p.g; ++x) {
    if (!(p.sigma[x] > 0) || !std::isfinite(p.sigma[x]) || !std::isfinite(p.mu[x])) {
      return absl::InvalidArgumentError(
          fmt::format("sigma must be finite and > 0 (and mu finite); entry {}", x));
    }
  }
  const int k = p.k, kp = p.kp;

  if (method == VfnMethod::kFast) {
    // W acts on channels and T_i⁻¹T_j on xyz, so they commute: with W = [Wv | Wq] (plus I
    // on Wv for the residual), U = Rrel·(Wv·v_j) + rowsum(Wv)·trel + Wq·q_i. The two
    // products are per residue, leaving 12·K' flops per edge instead of 6·K·K'.
    std::vector<double> wv_v(f.n * kp * 3), wq_q(f.n * kp * 3), rowsum(kp, 0.0);
    for (int a = 0; a < kp; ++a) {
      for (int b = 0; b < k; ++b) rowsum[a] += p.w[a * 2 * k + b];
      if (p.residual) rowsum[a] += 1.0;
    }
    ParallelFor(f.n, threads, [&](int64_t i) {
      for (int a = 0; a < kp; ++a) {
        const double* wa = p.w + a * 2 * k;
        double av[3] = {0, 0, 0}, aq[3] = {0, 0, 0};
        for (int b = 0; b < k; ++b)
          for (int c = 0; c < 3; ++c) {
            av[c] += wa[b] * v[(i * k + b) * 3 + c];
            aq[c] += wa[k + b] * q[(i * k + b) * 3 + c];
          }
        if (p.residual)
          for (int c = 0; c < 3; ++c) av[c] += v[(i * k + a) * 3 + c];
        for (int c = 0; c < 3; ++c) {
          wv_v[(i * kp + a) * 3 + c] = av[c];
          wq_q[(i * kp + a) * 3 + c] = aq[c];
        }
      }
    });
    ParallelFor(edges.e, threads, [&](int64_t x) {
      const int64_t i = edges.ij[2 * x], j = edges.ij[2 * x + 1];
      double rel[9], tr[3];
      RelativeRigid(f, i, j, rel, tr);
      double* u = out.u + x * kp * 3;
      for (int a = 0; a < kp; ++a) {
        const double* av = &wv_v[(j * kp + a) * 3];
        const double* aq = &wq_q[(i * kp + a) * 3];
        for (int c = 0; c < 3; ++c)
          u[a * 3 + c] = rel[c * 3] * av[0] + rel[c * 3 + 1] * av[1] + rel[c * 3 + 2] * av[2] +
                         rowsum[a] * tr[c] + aq[c];
      }
      Finish(p, u, out.len + x * kp, out.dir + x * kp * 3,
             p.g > 0 ? out.rbf + x * kp * p.g : nullptr);
    });
  } else {
    // Dense [N][N][K][3], then per edge the stacked 2K×3 matrix times Wᵀ as a matrix product.
    const std::vector<double> dense = DenseTransported(f, v, k);
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
        w(p.w, kp, 2 * k);
    for (int64_t x = 0; x < edges.e; ++x) {
      const int64_t i = edges.ij[2 * x], j = edges.ij[2 * x + 1];
      Eigen::Matrix<double, Eigen::Dynamic, 3, Eigen::RowMajor> stacked(2 * k, 3);
      for (int b = 0; b < k; ++b)
        for (int c = 0; c < 3; ++c) {
          stacked(b, c) = dense[((i * f.n + j) * k + b) * 3 + c];
          stacked(k + b, c) = q[(i * k + b) * 3 + c];
        }
      Eigen::Matrix<double, Eigen::Dynamic, 3, Eigen::RowMajor> u = w * stacked;
      if (p.residual) u += stacked.topRows(k);
      double* uo = out.u + x * kp * 3;
      for (int a = 0; a < kp; ++a)
        for (int c = 0; c < 3; ++c) uo[a * 3 + c] = u(a, c);
      Finish(p, uo, out.len + x * kp, out.dir + x * kp * 3,
             p.g > 0 ? out.rbf + x * kp * p.g : nullptr);
    }
  }
  return absl::OkStatus();
}

absl::Status VfnAggregate(const Frames& f, const EdgeList& edges, const AggregateInput& in,
                          VfnMethod method, int threads, const AggregateOutput& out) {
  if (absl::Status s = ValidateFramesAndEdges(f, edges, method, threads); !s.ok()) return s;
  if (in.h < 1 || in.h > 256 || in.d < 0 || in.kv < 0 || in.kv > kMaxAtoms) {
    return absl::InvalidArgumentError(fmt::format(
        "H must be in [1, 256], D ≥ 0, Kv in [0, {}]; got H = {}, D = {}, Kv = {}", kMaxAtoms,
        in.h, in.d, in.kv));
  }
  for (int64_t x = 0; x < edges.e * in.h; ++x) {
    if (!std::isfinite(in.logits[x])) {
      return absl::InvalidArgumentError(fmt::format("logits: non-finite value at {}", x));
    }
  }
  const int64_t n = f.n;
  const int h = in.h, d = in.d, kv = in.kv;
  auto on = [&](int64_t x) { return in.edge_mask == nullptr || in.edge_mask[x] != 0; };
  std::fill(out.o_scalar, out.o_scalar + n * h * d, 0.0);
  std::fill(out.o_vec, out.o_vec + n * h * kv * 3, 0.0);
  if (method == VfnMethod::kFast) {
    // CSR by destination, edges of one destination in input order.
    std::vector<int64_t> start(n + 1, 0), order(edges.e);
    for (int64_t x = 0; x < edges.e; ++x) ++start[edges.ij[2 * x] + 1];
    std::partial_sum(start.begin(), start.end(), start.begin());
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t x = 0; x < edges.e; ++x) order[fill[edges.ij[2 * x]]++] = x;
    ParallelFor(n, threads, [&](int64_t i) {
      const int64_t b = start[i], e = start[i + 1];
      double transported[kMaxAtoms * 3];
      for (int hh = 0; hh < h; ++hh) {
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t s = b; s < e; ++s)
          if (on(order[s])) mx = std::max(mx, in.logits[order[s] * h + hh]);
        double sum = 0;
        for (int64_t s = b; s < e; ++s) {
          const int64_t x = order[s];
          const double a = on(x) ? std::exp(in.logits[x * h + hh] - mx) : 0.0;
          out.alpha[x * h + hh] = a;
          sum += a;
        }
        for (int64_t s = b; s < e; ++s)
          if (sum > 0) out.alpha[order[s] * h + hh] /= sum;
      }
      double* os = out.o_scalar + i * h * d;
      double* ov = out.o_vec + i * h * kv * 3;
      for (int64_t s = b; s < e; ++s) {
        const int64_t x = order[s], j = edges.ij[2 * x + 1];
        if (!on(x)) continue;
        double rel[9], tr[3];
        RelativeRigid(f, i, j, rel, tr);
        for (int c = 0; c < kv; ++c) Apply(rel, tr, in.vv + (j * kv + c) * 3, &transported[c * 3]);
        for (int hh = 0; hh < h; ++hh) {
          const double a = out.alpha[x * h + hh];
          const double* vj = in.val + (j * h + hh) * d;
          for (int t = 0; t < d; ++t) os[hh * d + t] += a * vj[t];
          for (int t = 0; t < kv * 3; ++t) ov[hh * kv * 3 + t] += a * transported[t];
        }
      }
    });
  } else {
    // Dense N×N logits per head (−∞ where no edge), row softmax, dense products.
    const double ninf = -std::numeric_limits<double>::infinity();
    std::vector<double> dense_logit(static_cast<size_t>(n) * n * h, ninf);
    for (int64_t x = 0; x < edges.e; ++x)
      if (on(x))
        for (int hh = 0; hh < h; ++hh)
          dense_logit[(edges.ij[2 * x] * n + edges.ij[2 * x + 1]) * h + hh] =
              in.logits[x * h + hh];
    std::vector<double> dense_alpha(dense_logit.size(), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int hh = 0; hh < h; ++hh) {
        double mx = ninf;
        for (int64_t j = 0; j < n; ++j) mx = std::max(mx, dense_logit[(i * n + j) * h + hh]);
        if (mx == ninf) continue;
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += std::exp(dense_logit[(i * n + j) * h + hh] - mx);
        for (int64_t j = 0; j < n; ++j)
          dense_alpha[(i * n + j) * h + hh] = std::exp(dense_logit[(i * n + j) * h + hh] - mx) / sum;
      }
    for (int64_t x = 0; x < edges.e; ++x)
      for (int hh = 0; hh < h; ++hh)
        out.alpha[x * h + hh] = dense_alpha[(edges.ij[2 * x] * n + edges.ij[2 * x + 1]) * h + hh];
    const std::vector<double> dense_vv =
        kv > 0 ? DenseTransported(f, in.vv, kv) : std::vector<double>();
    for (int64_t i = 0; i < n; ++i)
      for (int hh = 0; hh < h; ++hh)
        for (int64_t j = 0; j < n; ++j) {
          const double a = dense_alpha[(i * n + j) * h + hh];
          if (a == 0) continue;
          for (int t = 0; t < d; ++t)
            out.o_scalar[(i * h + hh) * d + t] += a * in.val[(j * h + hh) * d + t];
          for (int t = 0; t < kv * 3; ++t)
            out.o_vec[(i * h + hh) * kv * 3 + t] += a * dense_vv[(i * n + j) * kv * 3 + t];
        }
  }
  return absl::OkStatus();
}

void AllPairsEdges(int64_t n, int64_t* ij) {
  int64_t x = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) ij[2 * x] = i, ij[2 * x + 1] = j, ++x;
}

void KnnEdges(int64_t n, const double* t, int k, int64_t* ij) {
  std::vector<std::pair<double, int64_t>> cand(n - 1);
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double d2 = 0;
      for (int a = 0; a < 3; ++a) d2 += (t[i * 3 + a] - t[j * 3 + a]) * (t[i * 3 + a] - t[j * 3 + a]);
      cand[c++] = {d2, j};
    }
    std::partial_sort(cand.begin(), cand.begin() + k, cand.end());
    for (int r = 0; r < k; ++r) ij[2 * (i * k + r)] = i, ij[2 * (i * k + r) + 1] = cand[r].second;
  }
}

}  // namespace chamferdb::vfn
