// Quadrature integral operator — the "integral transform" principle of neural operators
// (Berner, Liu-Schiaffini et al. 2025, "Principled Approaches for Extending Neural
// Architectures to Function Spaces"):
//
//   (K v)(x_i) = Σ_j w_j · κ(x_i, y_j) · v(y_j)
//
// on arbitrary point sets, with the quadrature weights w_j supplied by the caller (1/N on a
// uniform periodic grid, cell areas on a mesh, trapezoid weights on an interval). With
// correct weights the output converges to the integral ∫ κ(x, y) v(y) dy as the
// discretization is refined; with w_j = 1 (a plain sum, as in a CNN) it grows with N —
// the failure mode the paper warns about.
//
// Kernels: kGaussian κ = exp(−‖x − y‖² / (2ℓ²)); kPolynomial κ = (c + x·y)^p.
// Data layout (row-major double): x [P, dim], y [Q, dim], w [Q], v [Q, C], out [P, C].
// Determinism: each output row is summed over j in ascending order by one thread.
// Thread-safety: pure function.
#pragma once

#include <cstddef>

namespace chamferdb::fno {

enum class IntegralKernel { kGaussian, kPolynomial };

struct IntegralKernelParams {
  IntegralKernel kind = IntegralKernel::kGaussian;
  double length_scale = 1.0;  // ℓ > 0 (Gaussian)
  double offset = 1.0;        // c (polynomial)
  int degree = 2;             // p ≥ 0 (polynomial)
};

// REQUIRES valid params; w may be null (all weights 1).
void QuadratureIntegralOperator(const IntegralKernelParams& k, size_t dim, const double* x,
                                size_t p, const double* y, size_t q, const double* w,
                                const double* v, size_t channels, double* out, int threads = 1);

}  // namespace chamferdb::fno
