// Bures–Wasserstein (BW) geometry of SPD matrices and the GBWBN batch normalization layer
// (Wang, Jin, Chen et al., "Learning to Normalize on the SPD Manifold under Bures–Wasserstein
// Geometry", CVPR 2025; official code jjscc/GBWBN, spd/functional.py and spd/nn.py).
//
// The maths (X, Y, S SPD n×n; every formula below is implemented literally by the reference
// path and by cached eigendecompositions in the fast path):
//   d²(X,Y)    = tr X + tr Y − 2 tr (X^{1/2} Y X^{1/2})^{1/2}
//   C          = X^{1/2} (X^{1/2} Y X^{1/2})^{1/2} X^{−1/2},  T_{X→Y} = X^{−1/2}(X^{1/2}YX^{1/2})^{1/2}X^{−1/2}
//   γ(t)       = (1−t)² X + t² Y + t(1−t)(C + Cᵀ)                      (geodesic X→Y)
//   Log_X(Y)   = C + Cᵀ − 2X,   Exp_X(V) = X + V + L_X[V] X L_X[V],   X L + L X = V
//   ‖V‖²_X     = ½ tr(L_X[V] V),  and d²(X,Y) = ‖Log_X Y‖²_X
//   barycenter = fixed point S ← S^{−1/2} (Σ w_i (S^{1/2} X_i S^{1/2})^{1/2})² S^{−1/2}
//                (Álvarez-Esteban et al. 2016); at optimality Σ w_i T_{S→X_i} = I.
// Generalized BW with an SPD metric parameter M: every operation is "congruence by M^{−1/2},
// BW operation, congruence by M^{1/2}" (tangent vectors transform the same way).
//
// Data layout: Eigen column-major dense matrices (symmetric, so row/column-major agree);
// batches are std::vector<Eigen::MatrixXd>. Inputs must be SPD: the functions clamp
// eigenvalues (sqrt at 0, negative powers at λ_max·1e−30) so that ill-conditioned input
// (κ up to 1e8 and beyond) yields finite output, never NaN, but they do not validate;
// callers validate with CheckSpd() once at the boundary.
//
// Thread-safety: every function is pure (no shared state). The fast batch functions run
// an OpenMP loop over the batch; per-item results land in their own slots and are summed
// serially in index order, so results are bit-identical for any thread count. Eigen's own
// GEMM threading is disabled for this library (EIGEN_DONT_PARALLELIZE).
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chamferdb::bures {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

// Symmetric eigendecomposition X = U diag(values) Uᵀ (values ascending).
struct SymEig {
  Vec values;
  Mat vectors;
};
SymEig Eig(const Mat& x);
// U diag(f(values)) Uᵀ.
template <typename F>
Mat Spectral(const SymEig& e, F f) {
  Vec fv(e.values.size());
  for (Eigen::Index i = 0; i < fv.size(); ++i) fv[i] = f(e.values[i]);
  return e.vectors * fv.asDiagonal() * e.vectors.transpose();
}

// X^p for SPD X (eigenvalues clamped as stated above).
Mat SpdPower(const Mat& x, double p);
Mat SpdSqrt(const Mat& x);
Mat SpdInvSqrt(const Mat& x);

// OK if x is square, finite, symmetric to 1e-10 relative and Cholesky-factorizable;
// otherwise INVALID_ARGUMENT naming `field`.
absl::Status CheckSpd(const Mat& x, const char* field);

// ---- Point-wise geometry (reference path: plain compositions, no caching). ----
// Squared BW distance by the trace formula, clamped at 0.
double DistanceSq(const Mat& x, const Mat& y);
// Squared BW distance as ‖Log_X Y‖²_X (an independent second formula, for cross-checks).
double DistanceSqLogNorm(const Mat& x, const Mat& y);
Mat OtMap(const Mat& x, const Mat& y);
Mat Geodesic(const Mat& x, const Mat& y, double t);
Mat Log(const Mat& x, const Mat& y);
Mat Exp(const Mat& x, const Mat& v);
// L with X L + L X = V, in X's eigenbasis.
Mat Lyapunov(const Mat& x, const Mat& v);
double MetricNormSq(const Mat& x, const Mat& v);
// Smallest eigenvalue of I + L_X[V]: Log_X(Exp_X V) = V iff it is > 0.
double ExpInjectivityMargin(const Mat& x, const Mat& v);
// Parallel transports used by GBWBN: Γ_{G→I}(V) = U[√(2/(σ_i+σ_j)) (UᵀVU)_ij]Uᵀ and
// Γ_{I→B}(W) = U_B[√((β_i+β_j)/2) (U_BᵀWU_B)_ij]U_Bᵀ.
Mat TransportToIdentity(const Mat& g, const Mat& v);
Mat TransportFromIdentity(const Mat& b, const Mat& w);

// Congruence m^{sign/2} x m^{sign/2} (sign = −1: into the GBW frame; +1: back out).
Mat Congruence(const Mat& x, const Mat& m, int sign);

// ---- Barycenter ----
struct BarycenterOptions {
  // Fixed-point iterations. 0 = iterate until the relative change ‖S_{k+1}−S_k‖_F/‖S_k‖_F
  // is ≤ tol or max_iters is reached. ≥ 1 = exactly that many (1 = official-code parity).
  int iters = 0;
  double tol = 1e-12;
  int max_iters = 200;
};
struct BarycenterResult {
  Mat mean;
  int iterations = 0;
  double last_change = 0;  // relative change of the last iteration
  double residual = 0;     // ‖Σ w_i T_{S→X_i} − I‖_F at the returned S
  bool converged = false;  // last_change ≤ tol
};
// Weighted barycenter, started from the weighted arithmetic mean. weights: empty (uniform)
// or xs.size() non-negative numbers summing to > 0 (normalized here). REQUIRES: xs non-empty,
// all n×n SPD.
BarycenterResult BarycenterReference(const std::vector<Mat>& xs, const std::vector<double>& weights,
                                     const BarycenterOptions& opt);
// Same iteration; OpenMP over the batch, square roots computed once per iteration and
// S's eigendecomposition reused for S^{1/2} and S^{−1/2}.
BarycenterResult BarycenterFast(const std::vector<Mat>& xs, const std::vector<double>& weights,
                                const BarycenterOptions& opt);

// ---- GBWBN batch normalization (training or inference forward of one channel) ----
enum class VarianceCenter { kIdentity = 0, kMean = 1 };
struct BatchNormParams {
  Mat m;                   // metric parameter M, n×n SPD (identity = plain BW)
  Mat b;                   // bias B, n×n SPD
  double theta = 1.0;      // power deformation, ≠ 0
  double s = 1.0;          // scaling factor
  double eps = 1e-5;
  bool train = true;
  Mat running_mean;        // n×n SPD, in the M-congruent frame (as the official code keeps it)
  double running_var = 1.0;
  double momentum = 0.1;
  BarycenterOptions bary{.iters = 1};
  VarianceCenter variance_center = VarianceCenter::kIdentity;  // kIdentity = code parity
};
struct BatchNormResult {
  std::vector<Mat> y;
  Mat mean;                 // batch barycenter G (M-frame); running_mean in eval mode
  double var = 0;           // batch variance; running_var in eval mode
  Mat running_mean;         // updated (train) or unchanged (eval)
  double running_var = 0;
  int bary_iterations = 0;
  std::vector<double> center_margin;  // λ_min(I + W_i/2): ≥ 0 ⇒ Log_I(Exp_I W_i) = W_i
  std::vector<double> bias_margin;    // λ_min(I + L_B[Γ_{I→B} W_i]): > 0 ⇒ Exp_B injective
};
// Pipeline (official BatchNormSPD.forward):
//  X_i ← M^{−1/2} X_i^θ M^{−1/2};  B' = M^{−1/2} B^θ M^{−1/2}
//  train: G = barycenter(X), var = mean_i d²(X_i, I or G)/θ², running stats updated along
//         the BW geodesic / linearly with `momentum`; eval: G, var = running stats
//  W_i = Log_I(Exp_I(Γ_{G→I} Log_G X_i));  V_i = Log_I(Exp_I(s/√(var+ε) · W_i))
//  Y_i = (M^{1/2} Exp_{B'}(Γ_{I→B'} V_i) M^{1/2})^{1/θ}
// REQUIRES: xs non-empty, all matrices n×n SPD, theta ≠ 0, var + eps > 0.
BatchNormResult BatchNormReference(const std::vector<Mat>& xs, const BatchNormParams& p);
// Same outputs with eigendecompositions cached (G's basis for Log and Γ, one eigensolve of
// W_i for both Exp/Log round trips and the scaling, B's basis for Γ and Exp) and OpenMP
// over the batch.
BatchNormResult BatchNormFast(const std::vector<Mat>& xs, const BatchNormParams& p);

}  // namespace chamferdb::bures
