// INSR: time integration of a PDE whose state is the weights of a small SIREN MLP
// ("Implicit Neural Spatial Representations for Time-dependent PDEs", Chen, Wu, Grinspun,
// Zheng, Chen, ICML 2023; official code honglin-c/INSR-PDE, advection/). This is the
// paper's 1-D advection example u_t + a·u_x = 0 on x ∈ [−L/2, L/2]:
//
//   network   u_θ(x) = W_L h_{L−1} + b_L,  h_0 = x,  h_ℓ = sin(ω (W_ℓ h_{ℓ−1} + b_ℓ))
//             (default 1 → 20 → 20 → 20 → 1 with three sine layers, ω = 30, 901 weights)
//   step n    θ ← argmin mean_x r(x)² + mean_{x_b} u_θ(x_b)²  (Adam from θ_{n−1}), with
//             MIDPOINT   r = (u_θ − u_prev)/dt + a (∂x u_θ + ∂x u_prev)/2
//             EXPLICIT   r = u_θ − (u_prev − dt·a·∂x u_prev)
//             IMPLICIT   r = u_θ − u_prev + dt·a·∂x u_θ
//   step 0    θ ← argmin mean_x (u_θ(x) − u0(x))²
//
// Derivatives are hand-written: one forward pass carries the tangent ḣ = ∂h/∂x next to h
// (u and ∂x u together), and the backward pass is reverse-over-forward through both, so
// the loss that contains ∂x u_θ is differentiated exactly (no autodiff library).
//
// Parameter layout (flat, f64): for each layer ℓ, W_ℓ (out × in, row-major) then b_ℓ.
// Determinism: samples come from Rng(DeriveSeed(seed, step, iteration)); the batch is cut
// into fixed 256-sample chunks whose gradients are summed in chunk order, so results are
// bit-identical for any OpenMP thread count.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

namespace chamferdb::insr {

struct Siren {
  int32_t hidden = 20;
  int32_t sine_layers = 3;  // first layer + (sine_layers − 1) hidden layers
  double omega = 30.0;
  int64_t NumParams() const;
};

// PyTorch/SIREN initialization: first W ~ U(±1/fan_in); other W ~ U(±√(6/fan_in)/ω);
// biases ~ U(±1/√fan_in).
std::vector<double> InitParams(const Siren& net, uint64_t seed);

// u and ∂x u at the points xs.
void Evaluate(const Siren& net, const std::vector<double>& theta, const std::vector<double>& xs,
              std::vector<double>* u, std::vector<double>* ux);

enum class Integrator { kMidpoint = 0, kExplicitEuler = 1, kImplicitEuler = 2 };
enum class InitialCondition { kGaussian = 0, kSine = 1, kZero = 2 };

struct AdvectionProblem {
  double a = 0.25;         // velocity
  double length = 4.0;     // L
  double dt = 0.05;
  InitialCondition ic = InitialCondition::kGaussian;
  double mu = -1.5, sigma = 0.1;  // Gaussian
  double k = 1.0;                 // sine: sin(2πk x / L)
  double U0(double x) const;
  double Exact(double x, double t) const { return U0(x - a * t); }
};

// One loss evaluation for fixed samples: value and gradient ∂loss/∂θ. `prev` holds
// u_prev and ∂x u_prev at xs (unused at step 0). Losses are means over the samples.
struct LossTerms {
  double main = 0, boundary = 0;
};
LossTerms LossAndGradient(const Siren& net, const std::vector<double>& theta,
                          const AdvectionProblem& prob, Integrator integ, bool initial_fit,
                          const std::vector<double>& xs, const std::vector<double>& u_prev,
                          const std::vector<double>& ux_prev, const std::vector<double>& xb,
                          std::vector<double>* grad);
// The same loss by plain per-sample loops with no gradient (reference for tests/bench).
LossTerms LossReference(const Siren& net, const std::vector<double>& theta,
                        const AdvectionProblem& prob, Integrator integ, bool initial_fit,
                        const std::vector<double>& xs, const std::vector<double>& u_prev,
                        const std::vector<double>& ux_prev, const std::vector<double>& xb);

struct SolveOptions {
  int32_t n_steps = 240;
  int32_t n_samples = 5000;
  int32_t max_iters = 20000;
  double lr = 1e-4;
  int32_t plateau_patience = 500;  // ReduceLROnPlateau(factor 0.1, threshold 1e-4 rel, min 1e-8)
  double min_lr = 1e-8;
  int32_t n_eval = 901;            // cell-centred evaluation points
  uint64_t seed = 0;
  // Finite-difference gradients instead of the manual backward (2P+1 loss evaluations per
  // iteration; for the benchmark's naive case only).
  bool finite_difference_gradient = false;
};

struct StepReport {
  int32_t step = 0;         // 0 = initial fit
  int32_t iterations = 0;
  double final_loss = 0;    // main loss at the last iteration
  double l2_error = 0;      // RMS error against u0(x − a t) on the evaluation grid
  double linf_error = 0;
  double mass = 0;          // ∫u dx by the midpoint rule on the evaluation grid
};

struct SolveResult {
  std::vector<StepReport> steps;         // n_steps + 1 entries
  std::vector<double> theta;             // final parameters
  std::vector<double> u_eval;            // final u on the evaluation grid
  std::vector<double> x_eval;
};
// Runs step 0 (fit of u0, skipped when theta0 is given) and n_steps time steps.
SolveResult Solve(const Siren& net, const AdvectionProblem& prob, Integrator integ,
                  const SolveOptions& opt, const std::vector<double>* theta0);

// Classical baselines on `points` grid nodes over [−L/2, L/2] (Dirichlet u = 0 at both ends),
// same dt: Crank–Nicolson in time with central differences in space (the midpoint rule the
// INSR step uses, non-dissipative), and implicit (backward Euler) first-order upwind
// (unconditionally stable, diffusive). Returns the RMS error against the exact solution on
// the cell-centred evaluation grid (linear interpolation) after each step.
enum class FdScheme { kCrankNicolsonCentral = 0, kImplicitUpwind = 1 };
std::vector<double> FiniteDifferenceErrors(const AdvectionProblem& prob, FdScheme scheme,
                                           int32_t points, int32_t n_steps, int32_t n_eval,
                                           std::vector<double>* linf = nullptr);

}  // namespace chamferdb::insr
