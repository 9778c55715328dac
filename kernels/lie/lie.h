// Lie group decompositions for GL⁺(n), SL(n) and the affine group R² ⋊ G (Mironenco &
// Forré, "Lie Group Decompositions for Equivariant Neural Networks", ICLR 2024).
// Spec: kernels-geometric.md section 3. n ∈ {2, 3}.
//
// Math. Every g with det g > 0 factors uniquely as g = P·R (left polar decomposition):
// P = (g gᵀ)^{1/2} symmetric positive definite, R ∈ SO(n). The Cartan chart writes
// P = exp(X), X symmetric (traceless for SL(n)), and R = exp(Ω), Ω skew (principal branch,
// rotation angle in [0, π] for n = 3, θ ∈ (−π, π] for n = 2). The invariant (Haar) measure
// of GL⁺(n), |det g|^{−n}·Π dg_ij, reads J(X)·dX·dμ_SO(n)(R) in these coordinates with
//   J(X) = Π_{i<j} sinh(λ_i − λ_j)/(λ_i − λ_j)   (λ the eigenvalues of X; up to a constant).
//
// Lie-algebra coordinates xi = vee(X + Ω) with metric factor α > 0 (rgenn's bases for n = 2):
//   GL⁺(2): (√α·X00, √(2α)·X01, √α·X11, θ)          θ ∈ [0, 2π) as in rgenn
//   SL(2):  (√(2α)·X01, θ, √(2α)·X00)
//   GL⁺(3): (√α·X00, √(2α)·X01, √(2α)·X02, √α·X11, √(2α)·X12, √α·X22, ω)
//   SL(3):  (√(2α)·X01, √(2α)·X02, √(2α)·X12, √α·X00, √α·X11, ω)   (X22 = −X00 − X11)
// where ω = (Ω21, Ω02, Ω10) is the rotation vector (axis·angle). The n = 3 layouts are this
// server's (rgenn implements n = 2 only).
//
// Layout: matrices row-major n×n, batches contiguous. Thread-safety: pure functions;
// results are bitwise independent of `threads`.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace chamferdb::lie {

enum class Group { kGLPlus, kSL };
enum class DecomposeMethod {
  kAuto,        // closed form for n = 2, SVD otherwise
  kClosedForm,  // n = 2 only: θ = atan2(g10 − g01, g00 + g11), P = g·Rᵀ
  kSvd,         // g = UΣVᵀ, P = UΣUᵀ, R = UVᵀ (robust for ill-conditioned g)
  kEigh,        // rgenn: eigh(g gᵀ), log P = ½·V log Λ Vᵀ, R = P⁻¹g (squares κ(g))
};
enum class SoSampler { kEquidistant, kUniformAngle, kHaar };

// Coordinates of the Lie algebra: n² (GL⁺) or n² − 1 (SL).
int AlgebraDim(Group group, int n);

struct Decomposition {  // per batch item; arrays sized by the caller
  double* p = nullptr;         // batch × n × n, SPD (det 1 for SL)
  double* r = nullptr;         // batch × n × n, SO(n)
  double* x = nullptr;         // batch × n × n, log P (symmetric; traceless for SL)
  double* omega = nullptr;     // batch × n × n, log R (skew, principal branch)
  double* theta = nullptr;     // batch (n = 2: angle in (−π, π]; n = 3: rotation angle)
  double* xi = nullptr;        // batch × AlgebraDim
  double* log_haar = nullptr;  // batch, log J(X)
};

// INVALID_ARGUMENT (naming the item) when n ∉ {2, 3}, a matrix is non-finite, det g ≤ 0,
// or for SL |det g − 1| > sl_tol; kClosedForm with n ≠ 2; alpha ≤ 0.
absl::Status Decompose(Group group, int n, int64_t batch, const double* g,
                       DecomposeMethod method, double alpha, double sl_tol, int threads,
                       const Decomposition& out);

// g = exp(X)·exp(Ω) from (X, Ω) (x, omega: batch × n × n; X symmetric, Ω skew, X traceless
// for SL, checked to 1e-9 relative), or from xi (batch × AlgebraDim) when xi != nullptr.
absl::Status Compose(Group group, int n, int64_t batch, const double* xi, const double* x,
                     const double* omega, double alpha, double* g);

struct SampleOutput {
  double* g = nullptr;      // count × n × n
  double* g_inv = nullptr;  // count × n × n
  double* x = nullptr;      // count × n × n, X = log P
  double* r = nullptr;      // count × n × n
  double* log_w = nullptr;  // count: log J(X) − log q(X) (+ a constant): importance weights
                            // of Haar-invariant Monte Carlo
};

// rgenn-style sampling: S = exp(Y), Y symmetric with i.i.d. N(0, σ) coordinates in the
// α-orthonormal basis (traceless part for SL), P = S^{1/2}, R from the SO sampler
// (kEquidistant and kUniformAngle need n = 2; kEquidistant is linspace(−π, π, count),
// both endpoints included as in rgenn), g = P·R, g_inv = Rᵀ·P⁻¹.
absl::Status Sample(Group group, int n, int64_t count, uint64_t seed, double sigma,
                    SoSampler sampler, double alpha, const SampleOutput& out);

// Affine lift coordinates (n = 2): for out-samples g_o⁻¹ (o × 2 × 2) and in-samples g̃_i
// (in × 2 × 2), a k×k grid x_uv on [−1, 1]² (k ≥ 2: x = −1 + 2u/(k−1)):
//   coords[o][i][u][v] = [g_o⁻¹·x_uv (2), xi(g_o⁻¹·g̃_i) (AlgebraDim)],
//   mask[o][i][u][v] = 1 if ‖g_o⁻¹·x_uv‖ ≤ 1 else 0 (hard circular mask),
//   vol[i] = 1/|det g̃_i|.
absl::Status AffineLiftCoords(Group group, int64_t num_out, const double* g_out_inv,
                              int64_t num_in, const double* g_in, int k, double alpha,
                              double* coords, double* mask, double* vol);

// log J(X) from the eigenvalues λ (n values).
double LogHaarDensity(int n, const double* lambda);

}  // namespace chamferdb::lie
