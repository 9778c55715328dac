#include "kernels/bures/bures.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace chamferdb::bures {
namespace {

// Fixed chunk for the batch loops; any chunk size gives the same bits (every item writes its
// own slot), it only bounds scheduling overhead.
constexpr int kChunk = 1;

Mat Sym(const Mat& a) { return 0.5 * (a + a.transpose()); }

Mat Identity(Eigen::Index n) { return Mat::Identity(n, n); }

// Clamp floor for negative powers: keeps 1/λ finite for eigenvalues that roundoff pushed to
// (or below) zero.
double PowerFloor(const Vec& values) {
  const double lmax = std::max(values.cwiseAbs().maxCoeff(), 1e-300);
  return lmax * 1e-30;
}

double PowClamped(double lambda, double p, double floor) {
  if (p > 0) return std::pow(std::max(lambda, 0.0), p);
  return std::pow(std::max(lambda, floor), p);
}

Mat PowerFromEig(const SymEig& e, double p) {
  const double floor = PowerFloor(e.values);
  if (p == 1.0) return e.vectors * e.values.cwiseMax(0.0).asDiagonal() * e.vectors.transpose();
  return Spectral(e, [&](double l) { return PowClamped(l, p, floor); });
}

// Y expressed in an eigenbasis U: UᵀYU.
Mat ToBasis(const Mat& u, const Mat& y) { return u.transpose() * y * u; }
Mat FromBasis(const Mat& u, const Mat& yb) { return u * yb * u.transpose(); }

bool IsExactIdentity(const Mat& m) { return m.isIdentity(0.0); }

std::vector<double> NormalizedWeights(size_t n, const std::vector<double>& w) {
  std::vector<double> out(n, 1.0 / static_cast<double>(n));
  if (w.empty()) return out;
  double total = 0;
  for (double v : w) total += v;
  for (size_t i = 0; i < n; ++i) out[i] = w[i] / total;
  return out;
}

}  // namespace

SymEig Eig(const Mat& x) {
  Eigen::SelfAdjointEigenSolver<Mat> solver(Sym(x));
  return {solver.eigenvalues(), solver.eigenvectors()};
}

Mat SpdPower(const Mat& x, double p) { return PowerFromEig(Eig(x), p); }
Mat SpdSqrt(const Mat& x) { return SpdPower(x, 0.5); }
Mat SpdInvSqrt(const Mat& x) { return SpdPower(x, -0.5); }

absl::Status CheckSpd(const Mat& x, const char* field) {
  if (x.rows() != x.cols() || x.rows() == 0) {
    return absl::InvalidArgumentError(fmt::format("{}: expected a non-empty square matrix", field));
  }
  if (!x.allFinite()) {
    return absl::InvalidArgumentError(fmt::format("{}: non-finite entry", field));
  }
  const double scale = x.cwiseAbs().maxCoeff();
  const double asym = (x - x.transpose()).cwiseAbs().maxCoeff();
  if (asym > 1e-10 * scale) {
    return absl::InvalidArgumentError(
        fmt::format("{}: not symmetric (max |X - Xᵀ| = {:g})", field, asym));
  }
  Eigen::LLT<Mat> llt(Sym(x));
  if (llt.info() != Eigen::Success || scale == 0.0) {
    return absl::InvalidArgumentError(fmt::format("{}: not positive definite", field));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Reference path: each formula of the header, literally, with fresh eigendecompositions.

double DistanceSq(const Mat& x, const Mat& y) {
  const Mat xh = SpdSqrt(x);
  const double d = x.trace() + y.trace() - 2.0 * SpdSqrt(xh * y * xh).trace();
  return std::max(d, 0.0);
}

double DistanceSqLogNorm(const Mat& x, const Mat& y) {
  return std::max(MetricNormSq(x, Log(x, y)), 0.0);
}

namespace {
// C = X^{1/2}(X^{1/2}YX^{1/2})^{1/2}X^{−1/2}.
Mat CrossTerm(const Mat& x, const Mat& y) {
  const SymEig ex = Eig(x);
  const Mat xh = PowerFromEig(ex, 0.5);
  const Mat xih = PowerFromEig(ex, -0.5);
  return xh * SpdSqrt(xh * y * xh) * xih;
}
}  // namespace

Mat OtMap(const Mat& x, const Mat& y) {
  const SymEig ex = Eig(x);
  const Mat xh = PowerFromEig(ex, 0.5);
  const Mat xih = PowerFromEig(ex, -0.5);
  return Sym(xih * SpdSqrt(xh * y * xh) * xih);
}

Mat Geodesic(const Mat& x, const Mat& y, double t) {
  const Mat c = CrossTerm(x, y);
  return Sym((1 - t) * (1 - t) * x + t * t * y + t * (1 - t) * (c + c.transpose()));
}

Mat Log(const Mat& x, const Mat& y) {
  const Mat c = CrossTerm(x, y);
  return Sym(c + c.transpose() - 2.0 * x);
}

Mat Lyapunov(const Mat& x, const Mat& v) {
  const SymEig e = Eig(x);
  Mat vb = ToBasis(e.vectors, v);
  const Eigen::Index n = x.rows();
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < n; ++j) vb(i, j) /= (e.values[i] + e.values[j]);
  }
  return Sym(FromBasis(e.vectors, vb));
}

Mat Exp(const Mat& x, const Mat& v) {
  const Mat l = Lyapunov(x, v);
  return Sym(x + v + l * x * l);
}

double MetricNormSq(const Mat& x, const Mat& v) { return 0.5 * (Lyapunov(x, v) * v).trace(); }

double ExpInjectivityMargin(const Mat& x, const Mat& v) {
  const Mat a = Identity(x.rows()) + Lyapunov(x, v);
  return Eigen::SelfAdjointEigenSolver<Mat>(Sym(a), Eigen::EigenvaluesOnly).eigenvalues()[0];
}

Mat TransportToIdentity(const Mat& g, const Mat& v) {
  const SymEig e = Eig(g);
  Mat vb = ToBasis(e.vectors, v);
  for (Eigen::Index i = 0; i < vb.rows(); ++i) {
    for (Eigen::Index j = 0; j < vb.cols(); ++j) {
      vb(i, j) *= std::sqrt(2.0 / (e.values[i] + e.values[j]));
    }
  }
  return Sym(FromBasis(e.vectors, vb));
}

Mat TransportFromIdentity(const Mat& b, const Mat& w) {
  const SymEig e = Eig(b);
  Mat wb = ToBasis(e.vectors, w);
  for (Eigen::Index i = 0; i < wb.rows(); ++i) {
    for (Eigen::Index j = 0; j < wb.cols(); ++j) {
      wb(i, j) *= std::sqrt((e.values[i] + e.values[j]) / 2.0);
    }
  }
  return Sym(FromBasis(e.vectors, wb));
}

Mat Congruence(const Mat& x, const Mat& m, int sign) {
  const Mat r = SpdPower(m, 0.5 * sign);
  return Sym(r * x * r);
}

namespace {

double RelChange(const Mat& a, const Mat& b) {
  const double denom = std::max(b.norm(), 1e-300);
  return (a - b).norm() / denom;
}

Mat WeightedArithmeticMean(const std::vector<Mat>& xs, const std::vector<double>& w) {
  Mat s = Mat::Zero(xs[0].rows(), xs[0].cols());
  for (size_t i = 0; i < xs.size(); ++i) s += w[i] * xs[i];
  return s;
}

// Σ w_i T_{S→X_i} − I from Σ w_i (S^{1/2}X_iS^{1/2})^{1/2} (= `root_sum`) and S^{−1/2}.
double OptimalityResidual(const Mat& sih, const Mat& root_sum) {
  return (sih * root_sum * sih - Identity(sih.rows())).norm();
}

}  // namespace

BarycenterResult BarycenterReference(const std::vector<Mat>& xs,
                                     const std::vector<double>& weights,
                                     const BarycenterOptions& opt) {
  const std::vector<double> w = NormalizedWeights(xs.size(), weights);
  BarycenterResult r;
  Mat s = WeightedArithmeticMean(xs, w);
  const int limit = opt.iters > 0 ? opt.iters : opt.max_iters;
  for (int k = 0; k < limit; ++k) {
    const Mat sh = SpdSqrt(s);
    Mat sum = Mat::Zero(s.rows(), s.cols());
    for (size_t i = 0; i < xs.size(); ++i) sum += w[i] * SpdSqrt(sh * xs[i] * sh);
    const Mat sih = SpdInvSqrt(s);
    const Mat next = Sym(sih * sum * sum * sih);
    r.last_change = RelChange(next, s);
    s = next;
    r.iterations = k + 1;
    if (opt.iters == 0 && r.last_change <= opt.tol) break;
  }
  r.converged = r.last_change <= opt.tol;
  r.mean = s;
  Mat tsum = Mat::Zero(s.rows(), s.cols());
  for (size_t i = 0; i < xs.size(); ++i) tsum += w[i] * OtMap(s, xs[i]);
  r.residual = (tsum - Identity(s.rows())).norm();
  return r;
}

BarycenterResult BarycenterFast(const std::vector<Mat>& xs, const std::vector<double>& weights,
                                const BarycenterOptions& opt) {
  const std::vector<double> w = NormalizedWeights(xs.size(), weights);
  const int n_items = static_cast<int>(xs.size());
  const Eigen::Index n = xs[0].rows();
  BarycenterResult r;
  Mat s = WeightedArithmeticMean(xs, w);
  std::vector<Mat> roots(xs.size());
  // Σ w_i (S^{1/2} X_i S^{1/2})^{1/2} at the current s, summed serially in index order.
  auto root_sum = [&](const Mat& sh) {
#pragma omp parallel for schedule(dynamic, kChunk)
    for (int i = 0; i < n_items; ++i) {
      const Mat a = sh * xs[i] * sh;
      roots[i] = PowerFromEig(Eig(a), 0.5);
    }
    Mat sum = Mat::Zero(n, n);
    for (int i = 0; i < n_items; ++i) sum += w[i] * roots[i];
    return sum;
  };
  const int limit = opt.iters > 0 ? opt.iters : opt.max_iters;
  SymEig es = Eig(s);
  Mat sh = PowerFromEig(es, 0.5);
  Mat sih = PowerFromEig(es, -0.5);
  for (int k = 0; k < limit; ++k) {
    const Mat sum = root_sum(sh);
    const Mat next = Sym(sih * sum * sum * sih);
    r.last_change = RelChange(next, s);
    s = next;
    es = Eig(s);
    sh = PowerFromEig(es, 0.5);
    sih = PowerFromEig(es, -0.5);
    r.iterations = k + 1;
    if (opt.iters == 0 && r.last_change <= opt.tol) break;
  }
  r.converged = r.last_change <= opt.tol;
  r.mean = s;
  r.residual = OptimalityResidual(sih, root_sum(sh));
  return r;
}

// ---------------------------------------------------------------------------------------
// Batch normalization.

namespace {

// Running statistics and variance, shared by both paths (they differ only in how the
// per-item maps are evaluated).
struct Stats {
  Mat g;
  double var = 0;
  Mat running_mean;
  double running_var = 0;
  int bary_iterations = 0;
};

template <typename BaryFn, typename DistFn>
Stats ComputeStats(const std::vector<Mat>& xc, const BatchNormParams& p, BaryFn bary,
                   DistFn dist_sq) {
  Stats st;
  if (!p.train) {
    st.g = p.running_mean;
    st.var = p.running_var;
    st.running_mean = p.running_mean;
    st.running_var = p.running_var;
    return st;
  }
  BarycenterResult br = bary(xc, std::vector<double>{}, p.bary);
  st.g = br.mean;
  st.bary_iterations = br.iterations;
  const Mat center = p.variance_center == VarianceCenter::kIdentity
                         ? Identity(xc[0].rows())
                         : st.g;
  std::vector<double> d(xc.size());
  const int n_items = static_cast<int>(xc.size());
#pragma omp parallel for schedule(dynamic, kChunk)
  for (int i = 0; i < n_items; ++i) d[i] = dist_sq(xc[i], center);
  double total = 0;
  for (double v : d) total += v;
  st.var = total / static_cast<double>(xc.size()) / (p.theta * p.theta);
  st.running_mean = Geodesic(p.running_mean, st.g, p.momentum);
  st.running_var = (1 - p.momentum) * p.running_var + p.momentum * st.var;
  return st;
}

Mat LogIdentity(const Mat& z) { return 2.0 * SpdSqrt(z) - 2.0 * Identity(z.rows()); }
Mat ExpIdentity(const Mat& w) {
  return Sym(Identity(w.rows()) + w + 0.25 * w * w);
}

}  // namespace

BatchNormResult BatchNormReference(const std::vector<Mat>& xs, const BatchNormParams& p) {
  const Eigen::Index n = xs[0].rows();
  std::vector<Mat> xc(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) xc[i] = Congruence(SpdPower(xs[i], p.theta), p.m, -1);
  const Mat bc = Congruence(SpdPower(p.b, p.theta), p.m, -1);
  Stats st = ComputeStats(xc, p, BarycenterReference, DistanceSq);
  const double factor = p.s / std::sqrt(st.var + p.eps);

  BatchNormResult r;
  r.y.resize(xs.size());
  r.center_margin.resize(xs.size());
  r.bias_margin.resize(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const Mat w = TransportToIdentity(st.g, Log(st.g, xc[i]));
    r.center_margin[i] =
        Eig(Identity(n) + 0.5 * w).values[0];
    const Mat z = ExpIdentity(w);
    const Mat z2 = ExpIdentity(factor * LogIdentity(z));
    const Mat v = TransportFromIdentity(bc, LogIdentity(z2));
    r.bias_margin[i] = ExpInjectivityMargin(bc, v);
    const Mat y = Congruence(Exp(bc, v), p.m, +1);
    r.y[i] = p.theta == 1.0 ? y : SpdPower(y, 1.0 / p.theta);
  }
  r.mean = st.g;
  r.var = st.var;
  r.running_mean = st.running_mean;
  r.running_var = st.running_var;
  r.bary_iterations = st.bary_iterations;
  return r;
}

BatchNormResult BatchNormFast(const std::vector<Mat>& xs, const BatchNormParams& p) {
  const Eigen::Index n = xs[0].rows();
  const int n_items = static_cast<int>(xs.size());
  const bool plain = IsExactIdentity(p.m);
  const bool no_power = p.theta == 1.0;
  Mat mih, mh;
  if (!plain) {
    const SymEig em = Eig(p.m);
    mih = PowerFromEig(em, -0.5);
    mh = PowerFromEig(em, 0.5);
  }
  auto into_frame = [&](const Mat& a) -> Mat {
    Mat t = no_power ? a : PowerFromEig(Eig(a), p.theta);
    return plain ? t : Sym(mih * t * mih);
  };

  std::vector<Mat> xc(xs.size());
#pragma omp parallel for schedule(dynamic, kChunk)
  for (int i = 0; i < n_items; ++i) xc[i] = into_frame(xs[i]);
  const SymEig eb = Eig(into_frame(p.b));

  // d²(X, I) = tr X + n − 2 tr X^{1/2}: one eigensolve, no products.
  auto dist_sq = [&](const Mat& x, const Mat& center) -> double {
    if (center.isIdentity(0.0)) {
      const Vec ev = Eig(x).values.cwiseMax(0.0);
      return std::max(ev.sum() + static_cast<double>(n) - 2.0 * ev.cwiseSqrt().sum(), 0.0);
    }
    return DistanceSq(x, center);
  };
  Stats st = ComputeStats(xc, p, BarycenterFast, dist_sq);
  const double factor = p.s / std::sqrt(st.var + p.eps);

  // G's eigenbasis serves G^{±1/2}, Log_G and Γ_{G→I}.
  const SymEig eg = Eig(st.g);
  const Mat gh = PowerFromEig(eg, 0.5);
  const Mat gih = PowerFromEig(eg, -0.5);
  Mat to_identity(n, n), from_identity(n, n), lyap(n, n);
  for (Eigen::Index a = 0; a < n; ++a) {
    for (Eigen::Index b = 0; b < n; ++b) {
      to_identity(a, b) = std::sqrt(2.0 / (eg.values[a] + eg.values[b]));
      from_identity(a, b) = std::sqrt((eb.values[a] + eb.values[b]) / 2.0);
      lyap(a, b) = 1.0 / (eb.values[a] + eb.values[b]);
    }
  }
  const Mat beta = eb.values.asDiagonal();

  BatchNormResult r;
  r.y.resize(xs.size());
  r.center_margin.resize(xs.size());
  r.bias_margin.resize(xs.size());
#pragma omp parallel for schedule(dynamic, kChunk)
  for (int i = 0; i < n_items; ++i) {
    // Log_G X = C + Cᵀ − 2G with C = G^{1/2} (G^{1/2} X G^{1/2})^{1/2} G^{−1/2}.
    const Mat c = gh * PowerFromEig(Eig(gh * xc[i] * gh), 0.5) * gih;
    const Mat v = c + c.transpose() - 2.0 * st.g;
    // Γ_{G→I} in G's basis, back to the standard basis for W's own eigensolve.
    const Mat w = Sym(FromBasis(eg.vectors, to_identity.cwiseProduct(ToBasis(eg.vectors, v))));
    // Log_I(Exp_I W) = 2|I + W/2| − 2I, then the scaling and the second Exp_I/Log_I round
    // trip are spectral functions of W too: one eigensolve covers steps 5–6.
    const SymEig ew = Eig(w);
    r.center_margin[i] = 1.0 + 0.5 * ew.values[0];
    const Mat vb_std = Spectral(ew, [&](double l) {
      const double a = 2.0 * std::abs(1.0 + 0.5 * l) - 2.0;
      return 2.0 * std::abs(1.0 + 0.5 * factor * a) - 2.0;
    });
    // Γ_{I→B} and Exp_B, both in B's basis.
    const Mat u = from_identity.cwiseProduct(ToBasis(eb.vectors, vb_std));
    const Mat l = lyap.cwiseProduct(u);
    r.bias_margin[i] =
        Eigen::SelfAdjointEigenSolver<Mat>(Sym(Identity(n) + l), Eigen::EigenvaluesOnly)
            .eigenvalues()[0];
    const Mat yb = beta + u + l * beta * l;
    Mat y = Sym(FromBasis(eb.vectors, yb));
    if (!plain) y = Sym(mh * y * mh);
    r.y[i] = no_power ? y : PowerFromEig(Eig(y), 1.0 / p.theta);
  }
  r.mean = st.g;
  r.var = st.var;
  r.running_mean = st.running_mean;
  r.running_var = st.running_var;
  r.bary_iterations = st.bary_iterations;
  return r;
}

}  // namespace chamferdb::bures
