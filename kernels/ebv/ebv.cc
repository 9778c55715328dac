#include "kernels/ebv/ebv.h"

#include <cblas.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/rng.h"

namespace chamferdb::ebv {
namespace {

void NormalizeRows(double* e, size_t n, size_t d) {
  for (size_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (size_t j = 0; j < d; ++j) s += e[i * d + j] * e[i * d + j];
    const double inv = s > 0.0 ? 1.0 / std::sqrt(s) : 0.0;
    for (size_t j = 0; j < d; ++j) e[i * d + j] *= inv;
  }
}

std::vector<int64_t> TopK(const double* s, size_t n, size_t k) {
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
    if (s[a] != s[b]) return s[a] > s[b];
    return a < b;
  });
  idx.resize(k);
  return idx;
}

}  // namespace

double WelchBound(size_t n, size_t d) {
  if (n <= d) return 0.0;
  return std::sqrt(static_cast<double>(n - d) / (static_cast<double>(d) * static_cast<double>(n - 1)));
}

double LowerBound(size_t n, size_t d) {
  double b = WelchBound(n, d);
  const double nd = static_cast<double>(n), dd = static_cast<double>(d);
  if (nd > dd * (dd + 1) / 2) {
    b = std::max(b, std::sqrt((3 * nd - dd * dd - 2 * dd) / ((dd + 2) * (nd - dd))));
  }
  return b;
}

CosStats BruteForceCosStats(const double* e_in, size_t n, size_t d) {
  std::vector<double> e(e_in, e_in + n * d);
  NormalizeRows(e.data(), n, d);
  CosStats st;
  if (n < 2) return st;
  st.min_abs = 1e300;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      double c = 0.0;
      for (size_t l = 0; l < d; ++l) c += e[i * d + l] * e[j * d + l];
      c = std::fabs(c);
      st.max_abs = std::max(st.max_abs, c);
      st.min_abs = std::min(st.min_abs, c);
      sum += c;
    }
  st.mean_abs = sum / (static_cast<double>(n) * static_cast<double>(n - 1));
  return st;
}

double NaiveLossAndGradient(const double* e, size_t n, size_t d, double tau, double* grad) {
  std::fill(grad, grad + n * d, 0.0);
  double loss = 0.0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      double c = 0.0;
      for (size_t l = 0; l < d; ++l) c += e[i * d + l] * e[j * d + l];
      if (std::fabs(c) > tau) {
        loss += std::fabs(c) - tau;
        const double sgn = c > 0 ? 1.0 : -1.0;
        // d/de_i of relu(|c_ij| − τ) + relu(|c_ji| − τ) = 2·sign(c_ij)·e_j.
        for (size_t l = 0; l < d; ++l) grad[i * d + l] += 2.0 * sgn * e[j * d + l];
      }
    }
  return loss;
}

double BlockedLossAndGradient(const double* e, size_t n, size_t d, double tau, size_t block_rows,
                              double* grad, CosStats* stats) {
  std::vector<double> c(block_rows * n);
  double loss = 0.0, sum = 0.0, mx = 0.0, mn = 1e300;
  for (size_t r0 = 0; r0 < n; r0 += block_rows) {
    const size_t b = std::min(block_rows, n - r0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, n, d, 1.0, e + r0 * d, d, e, d, 0.0,
                c.data(), n);
    for (size_t i = 0; i < b; ++i) {
      double* row = c.data() + i * n;
      row[r0 + i] = 0.0;
      for (size_t j = 0; j < n; ++j) {
        if (j == r0 + i) continue;
        const double a = std::fabs(row[j]);
        sum += a;
        mx = std::max(mx, a);
        mn = std::min(mn, a);
        if (a > tau) {
          loss += a - tau;
          row[j] = row[j] > 0 ? 2.0 : -2.0;
        } else {
          row[j] = 0.0;
        }
      }
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, d, n, 1.0, c.data(), n, e, d, 0.0,
                grad + r0 * d, d);
  }
  if (stats != nullptr) {
    if (n >= 2) {
      stats->max_abs = mx;
      stats->min_abs = mn;
      stats->mean_abs = sum / (static_cast<double>(n) * static_cast<double>(n - 1));
    } else {
      *stats = CosStats{};
    }
  }
  return loss;
}

GenerateResult Generate(const GenerateParams& p) {
  GenerateResult r;
  const size_t n = p.n, d = p.d;
  r.welch_bound = WelchBound(n, d);
  r.lower_bound = LowerBound(n, d);
  Rng rng(p.seed);
  if (p.optimizer == Optimizer::kQrIfNLeD && n <= d) {
    Eigen::MatrixXd g(d, n);
    for (size_t j = 0; j < n; ++j)
      for (size_t i = 0; i < d; ++i) g(i, j) = rng.Normal();
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
    const Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(d, n);
    r.e.resize(n * d);
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < d; ++j) r.e[i * d + j] = q(j, i);
    NormalizeRows(r.e.data(), n, d);
    r.used_qr = true;
    r.stats = BruteForceCosStats(r.e.data(), n, d);
    r.converged = r.stats.max_abs <= p.tau + 1e-4;
    return r;
  }
  r.e.resize(n * d);
  for (auto& x : r.e) x = rng.Normal();
  std::vector<double> grad(n * d);
  for (int64_t step = 0;; ++step) {
    NormalizeRows(r.e.data(), n, d);
    r.final_loss = BlockedLossAndGradient(r.e.data(), n, d, p.tau, p.block_rows, grad.data(), &r.stats);
    r.steps = step;
    if (r.stats.max_abs <= p.tau + 1e-4) {
      r.converged = true;
      break;
    }
    if (step >= p.max_steps) break;
    for (size_t t = 0; t < n * d; ++t) r.e[t] -= p.lr * grad[t];
  }
  return r;
}

Classification Classify(const double* features, size_t b, const double* e_in, size_t n, size_t d,
                        size_t k, bool naive) {
  std::vector<double> f(features, features + b * d), e(e_in, e_in + n * d);
  NormalizeRows(f.data(), b, d);
  NormalizeRows(e.data(), n, d);
  std::vector<double> s(b * n);
  if (naive) {
    for (size_t i = 0; i < b; ++i)
      for (size_t c = 0; c < n; ++c) {
        double v = 0.0;
        for (size_t l = 0; l < d; ++l) v += f[i * d + l] * e[c * d + l];
        s[i * n + c] = v;
      }
  } else {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, n, d, 1.0, f.data(), d, e.data(), d,
                0.0, s.data(), n);
  }
  Classification out;
  for (size_t i = 0; i < b; ++i) {
    for (int64_t id : TopK(s.data() + i * n, n, k)) {
      out.ids.push_back(id);
      out.cosines.push_back(s[i * n + id]);
    }
  }
  return out;
}

}  // namespace chamferdb::ebv
