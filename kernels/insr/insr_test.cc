#include "kernels/insr/insr.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <numbers>

#include "common/rng.h"

namespace chamferdb::insr {
namespace {

std::vector<double> Uniform(int n, double lo, double hi, Rng& rng) {
  std::vector<double> x(n);
  for (double& v : x) v = lo + (hi - lo) * rng.Uniform();
  return x;
}

TEST(InsrSiren, OfficialNetworkHas901Parameters) {
  EXPECT_EQ(Siren{}.NumParams(), 901);
  EXPECT_EQ((Siren{.hidden = 8, .sine_layers = 2}).NumParams(), 16 + 72 + 9);
}

// Central finite differences of the plain per-sample loss (an independent forward) against
// the manual reverse-over-forward gradient, for every parameter and every loss form.
TEST(InsrGradient, ManualBackwardMatchesFiniteDifferencesOnEveryParameter) {
  const Siren net;
  AdvectionProblem prob;
  Rng rng(1);
  const std::vector<double> theta = InitParams(net, 7);
  std::vector<double> theta_prev = theta;
  for (double& v : theta_prev) v += 0.01 * rng.Normal();
  const std::vector<double> xs = Uniform(37, -2, 2, rng);
  std::vector<double> xb = Uniform(10, 1.9999, 2, rng);
  for (int i = 0; i < 5; ++i) xb[i] = -xb[i];
  std::vector<double> up, uxp;
  Evaluate(net, theta_prev, xs, &up, &uxp);
  for (int mode = 0; mode < 4; ++mode) {
    const bool initial = mode == 3;
    const Integrator integ = static_cast<Integrator>(initial ? 0 : mode);
    std::vector<double> grad;
    const LossTerms fast = LossAndGradient(net, theta, prob, integ, initial, xs, up, uxp, xb, &grad);
    const LossTerms ref = LossReference(net, theta, prob, integ, initial, xs, up, uxp, xb);
    EXPECT_NEAR(fast.main, ref.main, 1e-12 * std::max(1.0, ref.main));
    EXPECT_NEAR(fast.boundary, ref.boundary, 1e-12 * std::max(1.0, ref.boundary));
    double worst = 0;
    std::vector<double> t = theta;
    for (size_t k = 0; k < t.size(); ++k) {
      const double h = 1e-6;
      t[k] = theta[k] + h;
      const LossTerms p = LossReference(net, t, prob, integ, initial, xs, up, uxp, xb);
      t[k] = theta[k] - h;
      const LossTerms m = LossReference(net, t, prob, integ, initial, xs, up, uxp, xb);
      t[k] = theta[k];
      const double fd = ((p.main + p.boundary) - (m.main + m.boundary)) / (2 * h);
      const double scale = std::max({std::abs(fd), std::abs(grad[k]), 1e-3 * (ref.main + 1e-12)});
      worst = std::max(worst, std::abs(fd - grad[k]) / scale);
    }
    EXPECT_LT(worst, 1e-6) << "mode " << mode;
  }
}

TEST(InsrGradient, TangentMatchesFiniteDifferenceInX) {
  const Siren net;
  const std::vector<double> theta = InitParams(net, 3);
  std::vector<double> xs = {-1.3, -0.2, 0.0, 0.77, 1.9};
  std::vector<double> u, ux, up, uxp, um, uxm;
  Evaluate(net, theta, xs, &u, &ux);
  const double h = 1e-6;
  std::vector<double> xp = xs, xm = xs;
  for (size_t i = 0; i < xs.size(); ++i) xp[i] += h, xm[i] -= h;
  Evaluate(net, theta, xp, &up, &uxp);
  Evaluate(net, theta, xm, &um, &uxm);
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_NEAR(ux[i], (up[i] - um[i]) / (2 * h), 1e-6 * std::max(1.0, std::abs(ux[i])));
  }
}

TEST(InsrSolve, ZeroInitialConditionWithZeroOutputLayerStaysExactlyZero) {
  const Siren net;
  AdvectionProblem prob;
  prob.ic = InitialCondition::kZero;
  std::vector<double> theta = InitParams(net, 5);
  for (size_t k = theta.size() - 21; k < theta.size(); ++k) theta[k] = 0.0;  // W_out, b_out
  SolveOptions opt;
  opt.n_steps = 3;
  opt.n_samples = 300;
  opt.max_iters = 20;
  opt.n_eval = 50;
  const SolveResult r = Solve(net, prob, Integrator::kMidpoint, opt, &theta);
  for (double v : r.u_eval) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(r.theta, theta);
}

TEST(InsrSolve, BitIdenticalForAnyThreadCount) {
  const Siren net;
  AdvectionProblem prob;
  SolveOptions opt;
  opt.n_steps = 2;
  opt.n_samples = 600;
  opt.max_iters = 8;
  opt.n_eval = 64;
  opt.seed = 9;
  omp_set_num_threads(1);
  const SolveResult one = Solve(net, prob, Integrator::kMidpoint, opt, nullptr);
  omp_set_num_threads(2);
  const SolveResult two = Solve(net, prob, Integrator::kMidpoint, opt, nullptr);
  EXPECT_EQ(one.theta, two.theta);
  EXPECT_EQ(one.steps.back().final_loss, two.steps.back().final_loss);
}

// Short run against the analytic solution u0(x − a t): after fitting u0 and a few midpoint
// steps the error stays at the level of the initial fit, and the bump's mass is conserved.
TEST(InsrSolve, TracksAnalyticSolutionOverAFewSteps) {
  const Siren net;
  AdvectionProblem prob;
  // A wider bump than the paper's σ = 0.1 so a short fit suffices in CI, centred so that it
  // is ≈ 0 at the Dirichlet boundary (as the paper's bump is).
  prob.sigma = 0.3;
  prob.mu = -0.5;
  SolveOptions opt;
  opt.n_steps = 3;
  opt.n_samples = 256;
  opt.max_iters = 200;
  opt.lr = 1e-3;
  opt.n_eval = 401;
  opt.seed = 1;
  const SolveResult r = Solve(net, prob, Integrator::kMidpoint, opt, nullptr);
  ASSERT_EQ(r.steps.size(), 4u);
  const double peak = 1.0;
  for (const StepReport& s : r.steps) {
    std::printf("step %d iters %d loss %.3g L2 %.3g Linf %.3g mass %.4f\n", s.step, s.iterations,
                s.final_loss, s.l2_error, s.linf_error, s.mass);
  }
  EXPECT_LT(r.steps[0].l2_error, 0.02 * peak);
  EXPECT_LT(r.steps.back().l2_error, 0.05 * peak);
  const double mass = prob.sigma * std::sqrt(2 * std::numbers::pi);
  EXPECT_NEAR(r.steps.back().mass, mass, 0.05 * mass);
  // The classical baselines at 901 DOF, same dt, behave as documented: CN-central is far more
  // accurate than the diffusive implicit upwind.
  const std::vector<double> cn = FiniteDifferenceErrors(prob, FdScheme::kCrankNicolsonCentral, 901, 3, 401);
  const std::vector<double> up = FiniteDifferenceErrors(prob, FdScheme::kImplicitUpwind, 901, 3, 401);
  EXPECT_LT(cn.back(), up.back());
  EXPECT_LT(cn[0], 1e-4);
}

TEST(InsrFiniteDifference, ZeroVelocityKeepsTheInitialCondition) {
  AdvectionProblem prob;
  prob.a = 0;
  const std::vector<double> e = FiniteDifferenceErrors(prob, FdScheme::kCrankNicolsonCentral, 901, 10, 200);
  EXPECT_NEAR(e.back(), e.front(), 1e-15);
}

}  // namespace
}  // namespace chamferdb::insr
