#include "kernels/mfac/mfac.h"

#include <cblas.h>

#include <Eigen/Dense>
#include <algorithm>

namespace chamferdb::mfac {
namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

double Dot(const double* a, const double* b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

StaticFactor StaticPrecompute(const double* g, size_t m, size_t d, double damp, size_t block) {
  StaticFactor f;
  f.m = m;
  f.d = d;
  f.damp = damp;
  f.v.assign(g, g + m * d);
  f.q.assign(m, 0.0);
  const double inv = 1.0 / damp;
  for (double& x : f.v) x *= inv;  // v_i starts as λ⁻¹g_i
  std::vector<double> p;
  for (size_t b0 = 0; b0 < m; b0 += block) {
    const size_t bs = std::min(block, m - b0);
    if (b0 > 0) {
      // P[j, i] = v_j·g_{b0+i} for finished rows j < b0; then V_blk −= (P/q)ᵀ V_done.
      p.assign(b0 * bs, 0.0);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b0, bs, d, 1.0, f.v.data(), d,
                  g + b0 * d, d, 0.0, p.data(), bs);
      for (size_t j = 0; j < b0; ++j)
        for (size_t i = 0; i < bs; ++i) p[j * bs + i] /= f.q[j];
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, bs, d, b0, -1.0, p.data(), bs,
                  f.v.data(), d, 1.0, f.v.data() + b0 * d, d);
    }
    // The triangle inside the block, in order.
    for (size_t i = b0; i < b0 + bs; ++i) {
      const double* gi = g + i * d;
      double* vi = f.v.data() + i * d;
      for (size_t j = b0; j < i; ++j) {
        const double* vj = f.v.data() + j * d;
        const double c = Dot(vj, gi, d) / f.q[j];
        for (size_t t = 0; t < d; ++t) vi[t] -= c * vj[t];
      }
      f.q[i] = static_cast<double>(m) + Dot(gi, vi, d);
    }
  }
  return f;
}

void StaticApply(const StaticFactor& f, const double* x, size_t r, double* out) {
  // C = X Vᵀ (r × m), scaled by 1/q, then out = λ⁻¹X − C Vᵀᵀ.
  std::vector<double> c(r * f.m);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, f.m, f.d, 1.0, x, f.d, f.v.data(), f.d,
              0.0, c.data(), f.m);
  for (size_t a = 0; a < r; ++a)
    for (size_t i = 0; i < f.m; ++i) c[a * f.m + i] /= f.q[i];
  const double inv = 1.0 / f.damp;
  for (size_t t = 0; t < r * f.d; ++t) out[t] = inv * x[t];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r, f.d, f.m, -1.0, c.data(), f.m,
              f.v.data(), f.d, 1.0, out, f.d);
}

void StaticDiag(const StaticFactor& f, double* diag) {
  const double inv = 1.0 / f.damp;
  for (size_t k = 0; k < f.d; ++k) diag[k] = inv;
  for (size_t i = 0; i < f.m; ++i) {
    const double* vi = f.v.data() + i * f.d;
    const double w = 1.0 / f.q[i];
    for (size_t k = 0; k < f.d; ++k) diag[k] -= vi[k] * vi[k] * w;
  }
}

double StaticEntry(const StaticFactor& f, size_t k, size_t l) {
  double s = k == l ? 1.0 / f.damp : 0.0;
  for (size_t i = 0; i < f.m; ++i) s -= f.v[i * f.d + k] * f.v[i * f.d + l] / f.q[i];
  return s;
}

Window::Window(const double* g, size_t m, size_t d, double damp)
    : m_(m), d_(d), damp_(damp), g_(g, g + m * d), k_(m * m), s_(m * m), q_(m), b_(m * m) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0, g_.data(), d, g_.data(), d,
              0.0, k_.data(), m);
  Refactor();
}

Window::Window(WindowState st)
    : m_(st.m), d_(st.d), damp_(st.damp), last_(st.next_slot), g_(std::move(st.g)),
      k_(std::move(st.k)), s_(std::move(st.s)), q_(std::move(st.q)), b_(std::move(st.b)) {}

WindowState Window::State() const {
  return WindowState{m_, d_, damp_, last_, g_, k_, s_, q_, b_};
}

void Window::Update(const double* g) {
  std::copy(g, g + d_, g_.begin() + last_ * d_);
  std::vector<double> col(m_);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, m_, d_, 1.0, g_.data(), d_, g, 1, 0.0, col.data(), 1);
  for (size_t i = 0; i < m_; ++i) {
    k_[last_ * m_ + i] = col[i];
    k_[i * m_ + last_] = col[i];
  }
  last_ = (last_ + 1) % m_;
  Refactor();
}

void Window::Refactor() {
  const size_t m = m_;
  const double inv = 1.0 / damp_, mm = static_cast<double>(m);
  // LU of D = λ⁻¹K + mI without pivoting; keep U (upper) in u.
  std::vector<double> u(m * m);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < m; ++j) u[i * m + j] = inv * k_[i * m + j] + (i == j ? mm : 0.0);
  for (size_t p = 0; p < m; ++p) {
    const double piv = u[p * m + p];
    for (size_t i = p + 1; i < m; ++i) {
      const double l = u[i * m + p] / piv;
      if (l == 0.0) continue;
      for (size_t j = p; j < m; ++j) u[i * m + j] -= l * u[p * m + j];
    }
  }
  for (size_t i = 0; i < m; ++i) {
    q_[i] = u[i * m + i];
    for (size_t j = 0; j < m; ++j) s_[i * m + j] = j >= i ? u[i * m + j] - (i == j ? mm : 0.0) : 0.0;
  }
  // B_i = λ⁻¹e_i − Σ_{j<i} (S_ji/q_j)·B_j.
  std::fill(b_.begin(), b_.end(), 0.0);
  for (size_t i = 0; i < m; ++i) {
    double* bi = b_.data() + i * m;
    bi[i] = inv;
    for (size_t j = 0; j < i; ++j) {
      const double c = s_[j * m + i] / q_[j];
      const double* bj = b_.data() + j * m;
      for (size_t t = 0; t <= j; ++t) bi[t] -= c * bj[t];
    }
  }
}

void Window::Apply(const double* x, size_t r, double* out) const {
  const size_t m = m_, d = d_;
  const double inv = 1.0 / damp_;
  // C = λ⁻¹ X Gᵀ (r × m).
  std::vector<double> c(r * m);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, m, d, inv, x, d, g_.data(), d, 0.0,
              c.data(), m);
  std::vector<double> w(r * m);
  for (size_t a = 0; a < r; ++a) {
    double* ca = c.data() + a * m;
    // Forward substitution: afterwards c_i = v_i·x.
    for (size_t i = 0; i < m; ++i) {
      const double ci = ca[i] / q_[i];
      for (size_t t = i + 1; t < m; ++t) ca[t] -= s_[i * m + t] * ci;
    }
    // w = Bᵀ(c ⊘ q).
    double* wa = w.data() + a * m;
    for (size_t t = 0; t < m; ++t) wa[t] = 0.0;
    for (size_t i = 0; i < m; ++i) {
      const double ci = ca[i] / q_[i];
      for (size_t t = 0; t <= i; ++t) wa[t] += b_[i * m + t] * ci;
    }
  }
  for (size_t t = 0; t < r * d; ++t) out[t] = inv * x[t];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r, d, m, -1.0, w.data(), m, g_.data(), d,
              1.0, out, d);
}

namespace {
RowMat DenseFisher(const double* g, size_t m, size_t d, double damp) {
  Eigen::Map<const RowMat> gm(g, m, d);
  RowMat f = (gm.transpose() * gm) / static_cast<double>(m);
  f.diagonal().array() += damp;
  return f;
}
}  // namespace

void DenseApply(const double* g, size_t m, size_t d, double damp, const double* x, size_t r,
                double* out) {
  const RowMat f = DenseFisher(g, m, d, damp);
  Eigen::LLT<RowMat> llt(f);
  Eigen::Map<const RowMat> xm(x, r, d);
  Eigen::Map<RowMat> om(out, r, d);
  om = llt.solve(xm.transpose()).transpose();
}

void DenseDiag(const double* g, size_t m, size_t d, double damp, double* diag) {
  const RowMat f = DenseFisher(g, m, d, damp);
  const RowMat inv = Eigen::LLT<RowMat>(f).solve(RowMat::Identity(d, d));
  for (size_t k = 0; k < d; ++k) diag[k] = inv(k, k);
}

void WoodburyApply(const double* g, size_t m, size_t d, double damp, const double* x, size_t r,
                   double* out) {
  Eigen::Map<const RowMat> gm(g, m, d);
  Eigen::Map<const RowMat> xm(x, r, d);
  Eigen::Map<RowMat> om(out, r, d);
  const double inv = 1.0 / damp;
  RowMat small = inv * (gm * gm.transpose());
  small.diagonal().array() += static_cast<double>(m);
  const RowMat gx = gm * xm.transpose();  // m × r
  const RowMat y = Eigen::LLT<RowMat>(small).solve(gx);
  om = inv * xm - inv * inv * (gm.transpose() * y).transpose();
}

}  // namespace chamferdb::mfac
