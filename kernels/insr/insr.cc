#include "kernels/insr/insr.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "common/rng.h"

namespace chamferdb::insr {
namespace {

constexpr int64_t kChunk = 256;
constexpr double kPi = std::numbers::pi;

using Mat = Eigen::MatrixXd;  // column = sample
using RowVec = Eigen::RowVectorXd;

std::vector<int32_t> Dims(const Siren& net) {
  std::vector<int32_t> d = {1};
  for (int32_t l = 0; l < net.sine_layers; ++l) d.push_back(net.hidden);
  d.push_back(1);
  return d;
}

// Offsets of W_ℓ and b_ℓ in the flat parameter vector.
struct Layout {
  std::vector<int32_t> dims;
  std::vector<int64_t> w_off, b_off;
  int64_t total = 0;
  explicit Layout(const Siren& net) : dims(Dims(net)) {
    for (size_t l = 0; l + 1 < dims.size(); ++l) {
      w_off.push_back(total);
      total += int64_t{dims[l]} * dims[l + 1];
      b_off.push_back(total);
      total += dims[l + 1];
    }
  }
  size_t layers() const { return w_off.size(); }
};

Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> W(
    const Layout& lay, const std::vector<double>& theta, size_t l) {
  return {theta.data() + lay.w_off[l], lay.dims[l + 1], lay.dims[l]};
}
Eigen::Map<const Eigen::VectorXd> B(const Layout& lay, const std::vector<double>& theta, size_t l) {
  return {theta.data() + lay.b_off[l], lay.dims[l + 1]};
}

// Forward with tangent for one chunk of samples; keeps what the backward pass needs.
struct Tape {
  std::vector<Mat> h, hd;  // inputs of layer ℓ (h[0] = x, hd[0] = 1)
  std::vector<Mat> zd;     // tangents of the sine layers' pre-activations
  std::vector<Eigen::ArrayXXd> cosz;  // cos(ω z) of the sine layers (sin(ω z) is h[ℓ+1])
  RowVec u, ux;
};

void Forward(const Layout& lay, const std::vector<double>& theta, double omega, const double* xs,
             int64_t n, Tape* t) {
  const size_t L = lay.layers();
  t->h.resize(L);
  t->hd.resize(L);
  t->zd.resize(L - 1);
  t->cosz.resize(L - 1);
  t->h[0] = Eigen::Map<const RowVec>(xs, n);
  t->hd[0] = Mat::Ones(1, n);
  for (size_t l = 0; l + 1 < L; ++l) {
    const Eigen::ArrayXXd wz =
        omega * ((W(lay, theta, l) * t->h[l]).colwise() + B(lay, theta, l)).array();
    t->zd[l] = W(lay, theta, l) * t->hd[l];
    t->h[l + 1] = wz.sin().matrix();
    t->cosz[l] = wz.cos();
    t->hd[l + 1] = (omega * t->cosz[l] * t->zd[l].array()).matrix();
  }
  t->u = ((W(lay, theta, L - 1) * t->h[L - 1]).colwise() + B(lay, theta, L - 1)).row(0);
  t->ux = (W(lay, theta, L - 1) * t->hd[L - 1]).row(0);
}

// Accumulates ∂/∂θ of Σ_i (ubar_i u_i + uxbar_i ∂x u_i) into grad.
void Backward(const Layout& lay, const std::vector<double>& theta, double omega, const Tape& t,
              const RowVec& ubar, const RowVec& uxbar, double* grad) {
  const size_t L = lay.layers();
  auto gw = [&](size_t l) {
    return Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
        grad + lay.w_off[l], lay.dims[l + 1], lay.dims[l]);
  };
  auto gb = [&](size_t l) { return Eigen::Map<Eigen::VectorXd>(grad + lay.b_off[l], lay.dims[l + 1]); };
  // Output layer (linear): u = W h + b, u_x = W ḣ.
  gw(L - 1).noalias() += ubar * t.h[L - 1].transpose();
  gw(L - 1).noalias() += uxbar * t.hd[L - 1].transpose();
  gb(L - 1)(0) += ubar.sum();
  Mat hbar = W(lay, theta, L - 1).transpose() * ubar;
  Mat hdbar = W(lay, theta, L - 1).transpose() * uxbar;
  for (size_t l = L - 1; l-- > 0;) {
    const Eigen::ArrayXXd& c = t.cosz[l];
    const auto s = t.h[l + 1].array();
    // h' = sin(ωz), ḣ' = ω cos(ωz) ż.
    const Mat zbar = (omega * c * hbar.array() - omega * omega * s * t.zd[l].array() * hdbar.array()).matrix();
    const Mat zdbar = (omega * c * hdbar.array()).matrix();
    gw(l).noalias() += zbar * t.h[l].transpose();
    gw(l).noalias() += zdbar * t.hd[l].transpose();
    gb(l) += zbar.rowwise().sum();
    if (l > 0) {
      hbar = W(lay, theta, l).transpose() * zbar;
      hdbar = W(lay, theta, l).transpose() * zdbar;
    }
  }
}

// Per-sample residual and its partials: r, ∂r/∂u, ∂r/∂ux.
struct Residual {
  double r, du, dux;
};
Residual MainResidual(const AdvectionProblem& p, Integrator integ, bool initial_fit, double x,
                      double u, double ux, double up, double uxp) {
  if (initial_fit) return {u - p.U0(x), 1.0, 0.0};
  switch (integ) {
    case Integrator::kExplicitEuler:
      return {u - (up - p.dt * p.a * uxp), 1.0, 0.0};
    case Integrator::kImplicitEuler:
      return {u - up + p.dt * p.a * ux, 1.0, p.dt * p.a};
    case Integrator::kMidpoint:
    default:
      return {(u - up) / p.dt + p.a * (ux + uxp) / 2, 1.0 / p.dt, p.a / 2};
  }
}

// Per-sample scalar forward with tangent (the reference path).
void ForwardScalar(const Layout& lay, const std::vector<double>& theta, double omega, double x,
                   double* u, double* ux) {
  std::vector<double> h = {x}, hd = {1.0};
  for (size_t l = 0; l < lay.layers(); ++l) {
    const int32_t in = lay.dims[l], out = lay.dims[l + 1];
    std::vector<double> nh(out), nhd(out);
    for (int32_t o = 0; o < out; ++o) {
      double z = theta[lay.b_off[l] + o], zd = 0;
      for (int32_t i = 0; i < in; ++i) {
        const double w = theta[lay.w_off[l] + int64_t{o} * in + i];
        z += w * h[i];
        zd += w * hd[i];
      }
      if (l + 1 < lay.layers()) {
        nh[o] = std::sin(omega * z);
        nhd[o] = omega * std::cos(omega * z) * zd;
      } else {
        nh[o] = z;
        nhd[o] = zd;
      }
    }
    h.swap(nh);
    hd.swap(nhd);
  }
  *u = h[0];
  *ux = hd[0];
}

}  // namespace

int64_t Siren::NumParams() const { return Layout(*this).total; }

double AdvectionProblem::U0(double x) const {
  switch (ic) {
    case InitialCondition::kSine:
      return std::sin(2 * kPi * k * x / length);
    case InitialCondition::kZero:
      return 0.0;
    case InitialCondition::kGaussian:
    default:
      return std::exp(-(x - mu) * (x - mu) / (2 * sigma * sigma));
  }
}

std::vector<double> InitParams(const Siren& net, uint64_t seed) {
  const Layout lay(net);
  std::vector<double> theta(lay.total);
  Rng rng(seed);
  for (size_t l = 0; l < lay.layers(); ++l) {
    const double fan_in = lay.dims[l];
    const double wb = l == 0 ? 1.0 / fan_in : std::sqrt(6.0 / fan_in) / net.omega;
    const double bb = 1.0 / std::sqrt(fan_in);
    for (int64_t i = lay.w_off[l]; i < lay.b_off[l]; ++i) theta[i] = wb * (2 * rng.Uniform() - 1);
    for (int64_t i = lay.b_off[l]; i < lay.b_off[l] + lay.dims[l + 1]; ++i) {
      theta[i] = bb * (2 * rng.Uniform() - 1);
    }
  }
  return theta;
}

void Evaluate(const Siren& net, const std::vector<double>& theta, const std::vector<double>& xs,
              std::vector<double>* u, std::vector<double>* ux) {
  const Layout lay(net);
  const int64_t n = static_cast<int64_t>(xs.size());
  u->resize(n);
  ux->resize(n);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk, m = std::min(kChunk, n - b);
    Tape t;
    Forward(lay, theta, net.omega, xs.data() + b, m, &t);
    for (int64_t i = 0; i < m; ++i) (*u)[b + i] = t.u(i), (*ux)[b + i] = t.ux(i);
  }
}

LossTerms LossAndGradient(const Siren& net, const std::vector<double>& theta,
                          const AdvectionProblem& prob, Integrator integ, bool initial_fit,
                          const std::vector<double>& xs, const std::vector<double>& u_prev,
                          const std::vector<double>& ux_prev, const std::vector<double>& xb,
                          std::vector<double>* grad) {
  const Layout lay(net);
  const int64_t n = static_cast<int64_t>(xs.size()), nb = static_cast<int64_t>(xb.size());
  const int64_t main_chunks = (n + kChunk - 1) / kChunk;
  const int64_t bc_chunks = initial_fit ? 0 : (nb + kChunk - 1) / kChunk;
  const int64_t chunks = main_chunks + bc_chunks;
  std::vector<std::vector<double>> g(chunks, std::vector<double>(lay.total, 0.0));
  std::vector<double> loss(chunks, 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const bool bc = c >= main_chunks;
    const int64_t b = (bc ? c - main_chunks : c) * kChunk;
    const int64_t m = std::min(kChunk, (bc ? nb : n) - b);
    const double* x = (bc ? xb.data() : xs.data()) + b;
    Tape t;
    Forward(lay, theta, net.omega, x, m, &t);
    RowVec ubar(m), uxbar(m);
    double s = 0;
    for (int64_t i = 0; i < m; ++i) {
      if (bc) {
        s += t.u(i) * t.u(i);
        ubar(i) = 2 * t.u(i) / nb;
        uxbar(i) = 0;
      } else {
        const Residual r = MainResidual(prob, integ, initial_fit, x[i], t.u(i), t.ux(i),
                                        initial_fit ? 0 : u_prev[b + i],
                                        initial_fit ? 0 : ux_prev[b + i]);
        s += r.r * r.r;
        ubar(i) = 2 * r.r * r.du / n;
        uxbar(i) = 2 * r.r * r.dux / n;
      }
    }
    loss[c] = s;
    Backward(lay, theta, net.omega, t, ubar, uxbar, g[c].data());
  }
  grad->assign(lay.total, 0.0);
  LossTerms out;
  for (int64_t c = 0; c < chunks; ++c) {
    for (int64_t k = 0; k < lay.total; ++k) (*grad)[k] += g[c][k];
    (c >= main_chunks ? out.boundary : out.main) += loss[c];
  }
  out.main /= std::max<int64_t>(n, 1);
  if (nb > 0 && !initial_fit) out.boundary /= nb;
  return out;
}

LossTerms LossReference(const Siren& net, const std::vector<double>& theta,
                        const AdvectionProblem& prob, Integrator integ, bool initial_fit,
                        const std::vector<double>& xs, const std::vector<double>& u_prev,
                        const std::vector<double>& ux_prev, const std::vector<double>& xb) {
  const Layout lay(net);
  LossTerms out;
  for (size_t i = 0; i < xs.size(); ++i) {
    double u, ux;
    ForwardScalar(lay, theta, net.omega, xs[i], &u, &ux);
    const Residual r = MainResidual(prob, integ, initial_fit, xs[i], u, ux,
                                    initial_fit ? 0 : u_prev[i], initial_fit ? 0 : ux_prev[i]);
    out.main += r.r * r.r;
  }
  out.main /= std::max<size_t>(xs.size(), 1);
  if (!initial_fit && !xb.empty()) {
    for (double x : xb) {
      double u, ux;
      ForwardScalar(lay, theta, net.omega, x, &u, &ux);
      out.boundary += u * u;
    }
    out.boundary /= xb.size();
  }
  return out;
}

namespace {

// PyTorch's ReduceLROnPlateau(mode=min, factor, patience, threshold=1e-4 rel, min_lr, eps=1e-8).
struct Plateau {
  double lr, factor = 0.1, min_lr;
  int32_t patience;
  double best = std::numeric_limits<double>::infinity();
  int32_t bad = 0, since_best = 0;
  bool Step(double loss) {  // returns true when training should stop early
    if (loss < best * (1 - 1e-4)) {
      best = loss;
      bad = 0;
      since_best = 0;
    } else {
      ++bad;
      ++since_best;
    }
    if (bad > patience) {
      const double next = std::max(lr * factor, min_lr);
      if (lr - next > 1e-8 * 1e-8) lr = next;
      bad = 0;
    }
    return lr <= min_lr * (1 + 1e-12) && since_best >= patience;
  }
};

std::vector<double> FiniteDifferenceGradient(const Siren& net, std::vector<double> theta,
                                             const AdvectionProblem& prob, Integrator integ,
                                             bool initial_fit, const std::vector<double>& xs,
                                             const std::vector<double>& up,
                                             const std::vector<double>& uxp,
                                             const std::vector<double>& xb) {
  std::vector<double> g(theta.size());
  for (size_t k = 0; k < theta.size(); ++k) {
    const double h = 1e-6 * std::max(1.0, std::abs(theta[k]));
    const double keep = theta[k];
    theta[k] = keep + h;
    const LossTerms p = LossReference(net, theta, prob, integ, initial_fit, xs, up, uxp, xb);
    theta[k] = keep - h;
    const LossTerms m = LossReference(net, theta, prob, integ, initial_fit, xs, up, uxp, xb);
    theta[k] = keep;
    g[k] = ((p.main + p.boundary) - (m.main + m.boundary)) / (2 * h);
  }
  return g;
}

}  // namespace

SolveResult Solve(const Siren& net, const AdvectionProblem& prob, Integrator integ,
                  const SolveOptions& opt, const std::vector<double>* theta0) {
  SolveResult res;
  const double half = prob.length / 2;
  for (int32_t k = 0; k < opt.n_eval; ++k) res.x_eval.push_back(-half + (k + 0.5) * prob.length / opt.n_eval);
  std::vector<double> theta = theta0 ? *theta0 : InitParams(net, DeriveSeed(opt.seed, 0, ~0ull));
  const int32_t n_bc = std::max(opt.n_samples / 100, 10);

  auto evaluate_step = [&](int32_t step, int32_t iters, double loss) {
    StepReport rep;
    rep.step = step;
    rep.iterations = iters;
    rep.final_loss = loss;
    std::vector<double> u, ux;
    Evaluate(net, theta, res.x_eval, &u, &ux);
    double se = 0, mass = 0;
    for (size_t k = 0; k < u.size(); ++k) {
      const double e = u[k] - prob.Exact(res.x_eval[k], step * prob.dt);
      se += e * e;
      rep.linf_error = std::max(rep.linf_error, std::abs(e));
      mass += u[k] * prob.length / opt.n_eval;
    }
    rep.l2_error = std::sqrt(se / u.size());
    rep.mass = mass;
    res.steps.push_back(rep);
    res.u_eval = std::move(u);
  };

  for (int32_t step = theta0 ? 1 : 0; step <= opt.n_steps; ++step) {
    const bool initial = step == 0;
    const std::vector<double> theta_prev = theta;
    std::vector<double> m(theta.size(), 0.0), v(theta.size(), 0.0), grad, up, uxp;
    Plateau sched{opt.lr, 0.1, opt.min_lr, opt.plateau_patience};
    double last = 0;
    int32_t it = 0;
    std::vector<double> xs(opt.n_samples), xb(initial ? 0 : 2 * (n_bc / 2));
    for (; it < opt.max_iters; ++it) {
      Rng rng(DeriveSeed(opt.seed, static_cast<uint64_t>(step), static_cast<uint64_t>(it)));
      for (double& x : xs) x = -half + prob.length * rng.Uniform();
      for (size_t j = 0; j < xb.size(); ++j) {
        const double off = 1e-4 * half * rng.Uniform();
        xb[j] = j < xb.size() / 2 ? -half + off : half - off;
      }
      if (!initial) Evaluate(net, theta_prev, xs, &up, &uxp);
      LossTerms lt;
      if (opt.finite_difference_gradient) {
        lt = LossReference(net, theta, prob, integ, initial, xs, up, uxp, xb);
        grad = FiniteDifferenceGradient(net, theta, prob, integ, initial, xs, up, uxp, xb);
      } else {
        lt = LossAndGradient(net, theta, prob, integ, initial, xs, up, uxp, xb, &grad);
      }
      last = lt.main;
      // Adam (β = 0.9, 0.999, ε = 1e-8) with bias correction, reset every time step.
      const double b1 = 0.9, b2 = 0.999, t = it + 1;
      const double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
      for (size_t k = 0; k < theta.size(); ++k) {
        m[k] = b1 * m[k] + (1 - b1) * grad[k];
        v[k] = b2 * v[k] + (1 - b2) * grad[k] * grad[k];
        theta[k] -= sched.lr * (m[k] / c1) / (std::sqrt(v[k] / c2) + 1e-8);
      }
      if (sched.Step(lt.main)) {
        ++it;
        break;
      }
    }
    evaluate_step(step, it, last);
  }
  res.theta = theta;
  return res;
}

std::vector<double> FiniteDifferenceErrors(const AdvectionProblem& prob, FdScheme scheme,
                                           int32_t points, int32_t n_steps, int32_t n_eval,
                                           std::vector<double>* linf) {
  const int32_t n = points;
  const double half = prob.length / 2, dx = prob.length / (n - 1);
  std::vector<double> u(n), x(n);
  for (int32_t j = 0; j < n; ++j) x[j] = -half + j * dx, u[j] = prob.U0(x[j]);
  u[0] = u[n - 1] = 0;
  std::vector<double> errs;
  if (linf) linf->clear();
  auto record = [&](int32_t step) {
    double se = 0, mx = 0;
    for (int32_t k = 0; k < n_eval; ++k) {
      const double xe = -half + (k + 0.5) * prob.length / n_eval;
      const double f = (xe + half) / dx;
      const int32_t j = std::min(static_cast<int32_t>(f), n - 2);
      const double w = f - j;
      const double e = (1 - w) * u[j] + w * u[j + 1] - prob.Exact(xe, step * prob.dt);
      se += e * e;
      mx = std::max(mx, std::abs(e));
    }
    errs.push_back(std::sqrt(se / n_eval));
    if (linf) linf->push_back(mx);
  };
  record(0);
  std::vector<double> rhs(n), cp(n), dp(n);
  for (int32_t step = 1; step <= n_steps; ++step) {
    if (scheme == FdScheme::kCrankNicolsonCentral) {
      // (I + cS) u^{n+1} = (I − cS) u^n, S u_j = u_{j+1} − u_{j−1}, c = a dt / (4 dx).
      const double c = prob.a * prob.dt / (4 * dx);
      for (int32_t j = 1; j < n - 1; ++j) rhs[j] = u[j] - c * (u[j + 1] - u[j - 1]);
      // Thomas on interior rows: sub = −c, diag = 1, super = +c (pivots ≥ 1).
      cp[1] = c;
      dp[1] = rhs[1];
      for (int32_t j = 2; j < n - 1; ++j) {
        const double denom = 1 - (-c) * cp[j - 1];
        cp[j] = c / denom;
        dp[j] = (rhs[j] - (-c) * dp[j - 1]) / denom;
      }
      u[n - 2] = dp[n - 2];
      for (int32_t j = n - 3; j >= 1; --j) u[j] = dp[j] - cp[j] * u[j + 1];
      u[0] = u[n - 1] = 0;
    } else {
      const double lam = std::abs(prob.a) * prob.dt / dx;
      if (prob.a >= 0) {
        u[0] = 0;
        for (int32_t j = 1; j < n; ++j) u[j] = (u[j] + lam * u[j - 1]) / (1 + lam);
      } else {
        u[n - 1] = 0;
        for (int32_t j = n - 2; j >= 0; --j) u[j] = (u[j] + lam * u[j + 1]) / (1 + lam);
      }
    }
    record(step);
  }
  return errs;
}

}  // namespace chamferdb::insr
