#include "common/parallel_for.h"
#include "kernels/lie/lie.h"

#include <fmt/format.h>
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <numbers>
#include <vector>

#include "common/rng.h"

namespace chamferdb::lie {
namespace {

using Mat = Eigen::MatrixXd;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr double kPi = std::numbers::pi;

using ::chamferdb::ParallelFor;  // common/parallel_for.h

Mat Load(int n, const double* p) { return Eigen::Map<const RowMat>(p, n, n); }
void Store(const Mat& m, double* p) {
  if (p != nullptr) Eigen::Map<RowMat>(p, m.rows(), m.cols()) = m;
}

// f applied to a symmetric matrix through its eigendecomposition.
template <typename F>
Mat SymFunction(const Mat& s, F f) {
  Eigen::SelfAdjointEigenSolver<Mat> es(0.5 * (s + s.transpose()));
  Eigen::VectorXd v = es.eigenvalues();
  for (int i = 0; i < v.size(); ++i) v(i) = f(v(i));
  return es.eigenvectors() * v.asDiagonal() * es.eigenvectors().transpose();
}

// log of a 2×2 SPD matrix in closed form: log P = α0·I + α1·(P − m·I), with eigenvalues
// m ± r, α1 = atanh(r/m)/r, α0 = ½ log(m² − r²).
Mat Log2x2Spd(const Mat& p) {
  const double a = p(0, 0), b = 0.5 * (p(0, 1) + p(1, 0)), c = p(1, 1);
  const double m = 0.5 * (a + c);
  const double r = std::hypot(0.5 * (a - c), b);
  const double x = r / m;
  const double a1 = x < 1e-4 ? (1 + x * x / 3 + x * x * x * x / 5) / m : std::atanh(x) / r;
  const double a0 = 0.5 * std::log((m - r) * (m + r));
  Mat out(2, 2);
  out << a0 + a1 * (a - m), a1 * b, a1 * b, a0 + a1 * (c - m);
  return out;
}

Mat Rot2(double t) {
  Mat r(2, 2);
  r << std::cos(t), -std::sin(t), std::sin(t), std::cos(t);
  return r;
}

// exp of a skew matrix: rotation by Ω10 (n = 2) or Rodrigues (n = 3).
Mat ExpSkew(const Mat& w) {
  if (w.rows() == 2) return Rot2(0.5 * (w(1, 0) - w(0, 1)));
  const Eigen::Vector3d v(w(2, 1), w(0, 2), w(1, 0));
  const double t = v.norm();
  Mat k = w;
  Mat out = Mat::Identity(3, 3);
  if (t < 1e-8) return out + k + 0.5 * k * k;
  out += std::sin(t) / t * k + (1 - std::cos(t)) / (t * t) * k * k;
  return out;
}

// Principal log of R ∈ SO(n); *angle = θ ∈ (−π, π] (n = 2) or the rotation angle in [0, π].
Mat LogSo(const Mat& r, double* angle) {
  const int n = static_cast<int>(r.rows());
  Mat w = Mat::Zero(n, n);
  if (n == 2) {
    double t = std::atan2(r(1, 0), r(0, 0));
    if (t == -kPi) t = kPi;
    w(1, 0) = t;
    w(0, 1) = -t;
    *angle = t;
    return w;
  }
  const double c = std::clamp(0.5 * (r.trace() - 1), -1.0, 1.0);
  const double t = std::acos(c);
  *angle = t;
  const Eigen::Vector3d s(0.5 * (r(2, 1) - r(1, 2)), 0.5 * (r(0, 2) - r(2, 0)),
                          0.5 * (r(1, 0) - r(0, 1)));  // sinθ·axis
  Eigen::Vector3d v;
  if (t < 1e-6) {
    v = s * (1 + t * t / 6);
  } else if (t < kPi - 1e-4) {
    v = s * (t / std::sin(t));
  } else {
    // Near π the skew part vanishes: the axis comes from the symmetric part
    // (R + Rᵀ)/2 − cosθ·I = (1 − cosθ)·u uᵀ; its sign from the skew part.
    const Mat b = 0.5 * (r + r.transpose()) - c * Mat::Identity(3, 3);
    int col = 0;
    b.diagonal().maxCoeff(&col);
    Eigen::Vector3d u = b.col(col) / std::sqrt(std::max(b(col, col), 1e-300));
    u.normalize();
    if (u.dot(s) < 0) u = -u;
    v = t * u;
  }
  w(2, 1) = v(0), w(1, 2) = -v(0);
  w(0, 2) = v(1), w(2, 0) = -v(1);
  w(1, 0) = v(2), w(0, 1) = -v(2);
  return w;
}

void ToXi(Group group, int n, const Mat& x, const Mat& w, double alpha, double* xi) {
  const double sa = std::sqrt(alpha), s2a = std::sqrt(2 * alpha);
  if (n == 2) {
    double t = w(1, 0);
    if (t < 0) t += 2 * kPi;  // rgenn: θ mod 2π in [0, 2π)
    if (t >= 2 * kPi) t -= 2 * kPi;
    if (group == Group::kGLPlus) {
      xi[0] = sa * x(0, 0), xi[1] = s2a * x(0, 1), xi[2] = sa * x(1, 1), xi[3] = t;
    } else {
      xi[0] = s2a * x(0, 1), xi[1] = t, xi[2] = s2a * x(0, 0);
    }
    return;
  }
  const double om[3] = {w(2, 1), w(0, 2), w(1, 0)};
  if (group == Group::kGLPlus) {
    const double s[6] = {sa * x(0, 0), s2a * x(0, 1), s2a * x(0, 2),
                         sa * x(1, 1), s2a * x(1, 2), sa * x(2, 2)};
    std::copy(s, s + 6, xi);
    std::copy(om, om + 3, xi + 6);
  } else {
    const double s[5] = {s2a * x(0, 1), s2a * x(0, 2), s2a * x(1, 2), sa * x(0, 0), sa * x(1, 1)};
    std::copy(s, s + 5, xi);
    std::copy(om, om + 3, xi + 5);
  }
}

void FromXi(Group group, int n, const double* xi, double alpha, Mat* x, Mat* w) {
  const double sa = std::sqrt(alpha), s2a = std::sqrt(2 * alpha);
  *x = Mat::Zero(n, n);
  *w = Mat::Zero(n, n);
  if (n == 2) {
    double t;
    if (group == Group::kGLPlus) {
      (*x)(0, 0) = xi[0] / sa, (*x)(0, 1) = (*x)(1, 0) = xi[1] / s2a, (*x)(1, 1) = xi[2] / sa;
      t = xi[3];
    } else {
      (*x)(0, 1) = (*x)(1, 0) = xi[0] / s2a, t = xi[1];
      (*x)(0, 0) = xi[2] / s2a, (*x)(1, 1) = -(*x)(0, 0);
    }
    (*w)(1, 0) = t, (*w)(0, 1) = -t;
    return;
  }
  const double* om;
  if (group == Group::kGLPlus) {
    (*x)(0, 0) = xi[0] / sa, (*x)(0, 1) = (*x)(1, 0) = xi[1] / s2a;
    (*x)(0, 2) = (*x)(2, 0) = xi[2] / s2a, (*x)(1, 1) = xi[3] / sa;
    (*x)(1, 2) = (*x)(2, 1) = xi[4] / s2a, (*x)(2, 2) = xi[5] / sa;
    om = xi + 6;
  } else {
    (*x)(0, 1) = (*x)(1, 0) = xi[0] / s2a, (*x)(0, 2) = (*x)(2, 0) = xi[1] / s2a;
    (*x)(1, 2) = (*x)(2, 1) = xi[2] / s2a;
    (*x)(0, 0) = xi[3] / sa, (*x)(1, 1) = xi[4] / sa, (*x)(2, 2) = -(*x)(0, 0) - (*x)(1, 1);
    om = xi + 5;
  }
  (*w)(2, 1) = om[0], (*w)(1, 2) = -om[0];
  (*w)(0, 2) = om[1], (*w)(2, 0) = -om[1];
  (*w)(1, 0) = om[2], (*w)(0, 1) = -om[2];
}

absl::Status CheckCommon(int n, double alpha) {
  if (n != 2 && n != 3) return absl::InvalidArgumentError(fmt::format("n must be 2 or 3; got {}", n));
  if (!(alpha > 0) || !std::isfinite(alpha)) {
    return absl::InvalidArgumentError("alpha must be finite and > 0");
  }
  return absl::OkStatus();
}

// One decomposition; `status` receives a per-item error.
absl::Status DecomposeOne(Group group, int n, const Mat& g, DecomposeMethod method,
                          double sl_tol, Mat* p, Mat* r, Mat* x) {
  const double det = g.determinant();
  if (!g.allFinite()) return absl::InvalidArgumentError("is not finite");
  if (!(det > 0)) return absl::InvalidArgumentError(fmt::format("has det {:.3g} ≤ 0", det));
  if (group == Group::kSL && std::abs(det - 1) > sl_tol) {
    return absl::InvalidArgumentError(
        fmt::format("has det {:.12g}, not 1 within sl_tol {:.3g}", det, sl_tol));
  }
  if (method == DecomposeMethod::kAuto) {
    method = n == 2 ? DecomposeMethod::kClosedForm : DecomposeMethod::kSvd;
  }
  switch (method) {
    case DecomposeMethod::kClosedForm: {
      const double t = std::atan2(g(1, 0) - g(0, 1), g(0, 0) + g(1, 1));
      *r = Rot2(t);
      *p = g * r->transpose();
      *p = 0.5 * (*p + p->transpose());
      *x = Log2x2Spd(*p);
      break;
    }
    case DecomposeMethod::kSvd: {
      Eigen::JacobiSVD<Mat> svd(g, Eigen::ComputeFullU | Eigen::ComputeFullV);
      const Mat& u = svd.matrixU();
      const Eigen::VectorXd s = svd.singularValues();
      *p = u * s.asDiagonal() * u.transpose();
      *r = u * svd.matrixV().transpose();
      *x = u * s.array().log().matrix().asDiagonal() * u.transpose();
      break;
    }
    case DecomposeMethod::kEigh: {
      Eigen::SelfAdjointEigenSolver<Mat> es(g * g.transpose());
      const Mat& v = es.eigenvectors();
      const Eigen::ArrayXd lam = es.eigenvalues().array();
      *x = v * (0.5 * lam.log()).matrix().asDiagonal() * v.transpose();
      *p = v * lam.sqrt().matrix().asDiagonal() * v.transpose();
      *r = v * lam.rsqrt().matrix().asDiagonal() * v.transpose() * g;
      break;
    }
    case DecomposeMethod::kAuto:
      break;
  }
  if (group == Group::kSL) *x -= (x->trace() / n) * Mat::Identity(n, n);
  return absl::OkStatus();
}

// The n = 2 closed form in scalar arithmetic (no dynamic matrices): one atan2, one
// closed-form 2×2 SPD log. Same formulas as DecomposeOne(kClosedForm) + LogSo + ToXi.
void ClosedForm2x2(Group group, const double* g, double alpha, const Decomposition& out,
                   int64_t b) {
  const double t = std::atan2(g[2] - g[1], g[0] + g[3]);
  const double c = std::cos(t), s = std::sin(t);
  // P = g·Rᵀ, symmetrised.
  const double p00 = g[0] * c - g[1] * s, p11 = g[2] * s + g[3] * c;
  const double p01 = 0.5 * ((g[0] * s + g[1] * c) + (g[2] * c - g[3] * s));
  const double m = 0.5 * (p00 + p11), r = std::hypot(0.5 * (p00 - p11), p01);
  const double q = r / m;
  const double a1 = q < 1e-4 ? (1 + q * q / 3 + q * q * q * q / 5) / m : std::atanh(q) / r;
  const double a0 = 0.5 * std::log((m - r) * (m + r));
  double x00 = a0 + a1 * (p00 - m), x11 = a0 + a1 * (p11 - m);
  const double x01 = a1 * p01;
  if (group == Group::kSL) {
    const double tr = 0.5 * (x00 + x11);
    x00 -= tr, x11 -= tr;
  }
  const double theta = t == -kPi ? kPi : t;
  if (out.p) {
    double* o = out.p + b * 4;
    o[0] = p00, o[1] = p01, o[2] = p01, o[3] = p11;
  }
  if (out.r) {
    double* o = out.r + b * 4;
    o[0] = c, o[1] = -s, o[2] = s, o[3] = c;
  }
  if (out.x) {
    double* o = out.x + b * 4;
    o[0] = x00, o[1] = x01, o[2] = x01, o[3] = x11;
  }
  if (out.omega) {
    double* o = out.omega + b * 4;
    o[0] = 0, o[1] = -theta, o[2] = theta, o[3] = 0;
  }
  if (out.theta) out.theta[b] = theta;
  if (out.xi) {
    const double sa = std::sqrt(alpha), s2a = std::sqrt(2 * alpha);
    double t2 = theta < 0 ? theta + 2 * kPi : theta;
    if (t2 >= 2 * kPi) t2 -= 2 * kPi;
    double* o = out.xi + b * AlgebraDim(group, 2);
    if (group == Group::kGLPlus) {
      o[0] = sa * x00, o[1] = s2a * x01, o[2] = sa * x11, o[3] = t2;
    } else {
      o[0] = s2a * x01, o[1] = t2, o[2] = s2a * x00;
    }
  }
  if (out.log_haar) {
    // Eigenvalues of X differ by log((m + r)/(m − r)) = 2·atanh(r/m).
    const double lam[2] = {std::atanh(q), -std::atanh(q)};
    out.log_haar[b] = LogHaarDensity(2, lam);
  }
}

}  // namespace

int AlgebraDim(Group group, int n) { return group == Group::kGLPlus ? n * n : n * n - 1; }

double LogHaarDensity(int n, const double* lambda) {
  double s = 0;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const double d = std::abs(lambda[i] - lambda[j]);
      if (d < 1e-4) {
        s += std::log1p(d * d / 6);
      } else if (d > 20) {
        s += d - std::log(2.0) + std::log1p(-std::exp(-2 * d)) - std::log(d);
      } else {
        s += std::log(std::sinh(d) / d);
      }
    }
  return s;
}

absl::Status Decompose(Group group, int n, int64_t batch, const double* g,
                       DecomposeMethod method, double alpha, double sl_tol, int threads,
                       const Decomposition& out) {
  if (absl::Status s = CheckCommon(n, alpha); !s.ok()) return s;
  if (method == DecomposeMethod::kClosedForm && n != 2) {
    return absl::InvalidArgumentError("method closed_form needs n = 2");
  }
  if (threads < 1) return absl::InvalidArgumentError("threads must be ≥ 1");
  // Validate every item first so no output is half written on error.
  for (int64_t b = 0; b < batch; ++b) {
    const double* m = g + b * n * n;
    bool finite = true;
    for (int i = 0; i < n * n; ++i) finite &= std::isfinite(m[i]);
    const double det = n == 2 ? m[0] * m[3] - m[1] * m[2]
                              : m[0] * (m[4] * m[8] - m[5] * m[7]) -
                                    m[1] * (m[3] * m[8] - m[5] * m[6]) +
                                    m[2] * (m[3] * m[7] - m[4] * m[6]);
    if (!finite || !(det > 0) || (group == Group::kSL && std::abs(det - 1) > sl_tol)) {
      const Mat gb = Load(n, m);
      Mat p, r, x;
      const absl::Status s = DecomposeOne(group, n, gb, method, sl_tol, &p, &r, &x);
      return absl::InvalidArgumentError(
          s.ok() ? fmt::format("g[{}] has det {:.3g} ≤ 0 or is not finite", b, det)
                 : fmt::format("g[{}] {}", b, std::string(s.message())));
    }
  }
  const int dim = AlgebraDim(group, n);
  const bool scalar_2x2 =
      n == 2 && (method == DecomposeMethod::kAuto || method == DecomposeMethod::kClosedForm);
  ParallelFor(batch, threads, [&](int64_t b) {
    if (scalar_2x2) {
      ClosedForm2x2(group, g + b * 4, alpha, out, b);
      return;
    }
    Mat p, r, x;
    (void)DecomposeOne(group, n, Load(n, g + b * n * n), method, sl_tol, &p, &r, &x);
    double angle = 0;
    const Mat w = LogSo(r, &angle);
    Store(p, out.p ? out.p + b * n * n : nullptr);
    Store(r, out.r ? out.r + b * n * n : nullptr);
    Store(x, out.x ? out.x + b * n * n : nullptr);
    Store(w, out.omega ? out.omega + b * n * n : nullptr);
    if (out.theta) out.theta[b] = angle;
    if (out.xi) ToXi(group, n, x, w, alpha, out.xi + b * dim);
    if (out.log_haar) {
      Eigen::SelfAdjointEigenSolver<Mat> es(x, Eigen::EigenvaluesOnly);
      out.log_haar[b] = LogHaarDensity(n, es.eigenvalues().data());
    }
  });
  return absl::OkStatus();
}

absl::Status Compose(Group group, int n, int64_t batch, const double* xi, const double* x,
                     const double* omega, double alpha, double* g) {
  if (absl::Status s = CheckCommon(n, alpha); !s.ok()) return s;
  const int dim = AlgebraDim(group, n);
  std::vector<Mat> xs(batch), ws(batch);
  for (int64_t b = 0; b < batch; ++b) {
    if (xi != nullptr) {
      for (int c = 0; c < dim; ++c)
        if (!std::isfinite(xi[b * dim + c])) {
          return absl::InvalidArgumentError(fmt::format("xi[{}] is not finite", b));
        }
      FromXi(group, n, xi + b * dim, alpha, &xs[b], &ws[b]);
      continue;
    }
    xs[b] = Load(n, x + b * n * n);
    ws[b] = Load(n, omega + b * n * n);
    if (!xs[b].allFinite() || !ws[b].allFinite()) {
      return absl::InvalidArgumentError(fmt::format("X[{}] / omega[{}] is not finite", b, b));
    }
    const double scale = 1 + xs[b].cwiseAbs().maxCoeff() + ws[b].cwiseAbs().maxCoeff();
    if ((xs[b] - xs[b].transpose()).cwiseAbs().maxCoeff() > 1e-9 * scale) {
      return absl::InvalidArgumentError(fmt::format("X[{}] is not symmetric", b));
    }
    if ((ws[b] + ws[b].transpose()).cwiseAbs().maxCoeff() > 1e-9 * scale) {
      return absl::InvalidArgumentError(fmt::format("omega[{}] is not skew-symmetric", b));
    }
    if (group == Group::kSL && std::abs(xs[b].trace()) > 1e-9 * scale) {
      return absl::InvalidArgumentError(fmt::format("X[{}] is not traceless (SL)", b));
    }
    if (xs[b].cwiseAbs().maxCoeff() > 300) {
      return absl::InvalidArgumentError(fmt::format("X[{}] overflows exp (|X| > 300)", b));
    }
  }
  for (int64_t b = 0; b < batch; ++b) {
    const Mat gb = SymFunction(xs[b], [](double v) { return std::exp(v); }) * ExpSkew(ws[b]);
    Store(gb, g + b * n * n);
  }
  return absl::OkStatus();
}

absl::Status Sample(Group group, int n, int64_t count, uint64_t seed, double sigma,
                    SoSampler sampler, double alpha, const SampleOutput& out) {
  if (absl::Status s = CheckCommon(n, alpha); !s.ok()) return s;
  if (!(sigma > 0) || !std::isfinite(sigma)) {
    return absl::InvalidArgumentError("sigma_spd must be finite and > 0");
  }
  if (sampler != SoSampler::kHaar && n != 2) {
    return absl::InvalidArgumentError("so_sampler equidistant / uniform_angle need n = 2");
  }
  Rng rng(seed);
  const double sd = std::sqrt(sigma);
  for (int64_t c = 0; c < count; ++c) {
    // Y in the α-orthonormal basis of Sym(n): diagonal E_ii/√α, off-diagonal (E_ij+E_ji)/√(2α).
    Mat y = Mat::Zero(n, n);
    for (int i = 0; i < n; ++i) {
      y(i, i) = sd * rng.Normal() / std::sqrt(alpha);
      for (int j = i + 1; j < n; ++j) y(i, j) = y(j, i) = sd * rng.Normal() / std::sqrt(2 * alpha);
    }
    if (group == Group::kSL) y -= (y.trace() / n) * Mat::Identity(n, n);
    const Mat x = 0.5 * y;  // P = S^{1/2} = exp(Y/2)
    Mat r;
    switch (sampler) {
      case SoSampler::kEquidistant:
        r = Rot2(count == 1 ? 0.0 : -kPi + 2 * kPi * static_cast<double>(c) / (count - 1));
        break;
      case SoSampler::kUniformAngle:
        r = Rot2(kPi * (2 * rng.Uniform() - 1));
        break;
      case SoSampler::kHaar: {
        Mat a(n, n);
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j) a(i, j) = rng.Normal();
        Eigen::HouseholderQR<Mat> qr(a);
        Mat q = qr.householderQ();
        const Mat rr = qr.matrixQR().triangularView<Eigen::Upper>();
        for (int j = 0; j < n; ++j)
          if (rr(j, j) < 0) q.col(j) *= -1;
        if (q.determinant() < 0) q.col(0) *= -1;
        r = q;
        break;
      }
    }
    const Mat p = SymFunction(x, [](double v) { return std::exp(v); });
    const Mat pinv = SymFunction(x, [](double v) { return std::exp(-v); });
    Store(p * r, out.g + c * n * n);
    Store(r.transpose() * pinv, out.g_inv + c * n * n);
    Store(x, out.x ? out.x + c * n * n : nullptr);
    Store(r, out.r ? out.r + c * n * n : nullptr);
    if (out.log_w) {
      Eigen::SelfAdjointEigenSolver<Mat> es(x, Eigen::EigenvaluesOnly);
      const double log_q = -alpha * y.squaredNorm() / (2 * sigma);
      out.log_w[c] = LogHaarDensity(n, es.eigenvalues().data()) - log_q;
    }
  }
  return absl::OkStatus();
}

absl::Status AffineLiftCoords(Group group, int64_t num_out, const double* g_out_inv,
                              int64_t num_in, const double* g_in, int k, double alpha,
                              double* coords, double* mask, double* vol) {
  if (absl::Status s = CheckCommon(2, alpha); !s.ok()) return s;
  if (k < 2 || k > 64) return absl::InvalidArgumentError("kernel_size must be in [2, 64]");
  const int dim = AlgebraDim(group, 2);
  for (int64_t i = 0; i < num_in; ++i) {
    const double det = Load(2, g_in + i * 4).determinant();
    if (!(det > 0) || !std::isfinite(det)) {
      return absl::InvalidArgumentError(fmt::format("g_in[{}] has det {:.3g} ≤ 0", i, det));
    }
    vol[i] = 1.0 / det;
  }
  std::vector<double> xi(static_cast<size_t>(num_out) * num_in * dim);
  for (int64_t o = 0; o < num_out; ++o) {
    const Mat go = Load(2, g_out_inv + o * 4);
    for (int64_t i = 0; i < num_in; ++i) {
      const Mat h = go * Load(2, g_in + i * 4);
      Mat p, r, x;
      absl::Status s = DecomposeOne(group, 2, h, DecomposeMethod::kClosedForm, 1e-6, &p, &r, &x);
      if (!s.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("g_out_inv[{}]·g_in[{}] {}", o, i, std::string(s.message())));
      }
      double angle;
      ToXi(group, 2, x, LogSo(r, &angle), alpha, &xi[(o * num_in + i) * dim]);
    }
  }
  for (int64_t o = 0; o < num_out; ++o) {
    const double* a = g_out_inv + o * 4;
    for (int64_t i = 0; i < num_in; ++i)
      for (int u = 0; u < k; ++u)
        for (int v = 0; v < k; ++v) {
          const double px = -1 + 2.0 * u / (k - 1), py = -1 + 2.0 * v / (k - 1);
          const double qx = a[0] * px + a[1] * py, qy = a[2] * px + a[3] * py;
          const int64_t cell = ((o * num_in + i) * k + u) * k + v;
          double* c = coords + cell * (2 + dim);
          c[0] = qx, c[1] = qy;
          for (int d = 0; d < dim; ++d) c[2 + d] = xi[(o * num_in + i) * dim + d];
          mask[cell] = (qx * qx + qy * qy <= 1.0) ? 1.0 : 0.0;
        }
  }
  return absl::OkStatus();
}

}  // namespace chamferdb::lie
