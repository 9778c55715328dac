// Shared spherical machinery of the geometry kernels: real spherical harmonics (RSH),
// exact Gauss–Legendre sphere quadrature, Wigner-D matrices by projection, random
// rotations and 7-smooth FFT sizes.
//
// Conventions (spec kernels-geometric.md section 0, used by every geometry kernel):
//  * Orthonormal real SH, z the polar axis, no Condon–Shortley phase:
//      Y[l,0]  = Nbar(l,0)(cosθ, sinθ)
//      Y[l,+k] = √2 · Nbar(l,k) · cos(kφ),   Y[l,−k] = √2 · Nbar(l,k) · sin(kφ)   (k ≥ 1)
//    where Nbar(l,k) is the associated Legendre function times
//    sqrt((2l+1)/(4π) · (l−k)!/(l+k)!), without the (−1)^k phase.
//  * Flat index ShIndex(l, m) = l² + l + m; a band limit L gives (L+1)² coefficients.
//  * Triangular index TriIndex(l, k) = l(l+1)/2 + k (0 ≤ k ≤ l) for Nbar tables.
//  * Rotations act on functions by (R·f)(r) = f(Rᵀ r); a 3×3 matrix is row-major.
//
// Thread-safety: every function here is pure (no shared state) and may be called
// concurrently.
#pragma once

#include <cstdint>
#include <vector>

namespace chamferdb::sphere {

inline constexpr int ShIndex(int l, int m) { return l * l + l + m; }
inline constexpr int NumSh(int lmax) { return (lmax + 1) * (lmax + 1); }
inline constexpr int TriIndex(int l, int k) { return l * (l + 1) / 2 + k; }
inline constexpr int NumTri(int lmax) { return (lmax + 1) * (lmax + 2) / 2; }

// Nbar(l,k)(x, s) for 0 ≤ k ≤ l ≤ lmax into out[TriIndex(l,k)] (NumTri(lmax) values),
// by the stable normalised recurrence (no factorials). x = cosθ; s = sinθ may be negative,
// which gives the analytic continuation to θ ∈ (π, 2π) used by the Fourier method.
void LegendreNbar(int lmax, double x, double s, double* out);

// Nbar(l,k)(x, s) / s^k, a polynomial in x (the same recurrence with s = 1 on the diagonal).
void LegendreNbarReduced(int lmax, double x, double* out);

// Y[ShIndex(l,m)](r) for l ≤ lmax at the unit vector r = (r[0], r[1], r[2]); writes
// NumSh(lmax) values. No atan2 and no division by sinθ: uses s^k·cos(kφ) = Re (x+iy)^k.
// r is used as given (the caller normalises it).
void RealSh(int lmax, const double* r, double* out);

// Gauss–Legendre nodes x[0..n) (descending cosθ: x[0] close to +1) and weights w (sum 2),
// by Newton iteration on P_n. n ≥ 1.
void GaussLegendre(int n, std::vector<double>* x, std::vector<double>* w);

// Exact quadrature on S²: n_beta Gauss–Legendre rings in cosθ × n_alpha equispaced
// longitudes α_q = 2πq/n_alpha (weight 2π/n_alpha). Integrates every function of band
// limit ≤ N exactly when n_beta ≥ ⌊N/2⌋+1 and n_alpha ≥ N+1.
struct SphereGrid {
  int n_beta = 0;
  int n_alpha = 0;
  std::vector<double> x;       // cosθ_j, size n_beta
  std::vector<double> weight;  // Gauss–Legendre weight w_j, size n_beta (sum 2)
};
SphereGrid MakeSphereGrid(int band_limit);
SphereGrid MakeSphereGrid(int n_beta, int n_alpha);

// Smallest 7-smooth integer (2^a 3^b 5^c 7^d) ≥ n (n ≥ 1).
int NextSmoothSize(int n);

// Block-diagonal Wigner-D matrix of the rotation R (row-major 3×3) in this RSH basis,
// D[i][j] = ∫ Y_i(r) · Y_j(Rᵀ r) dΩ, computed by exact quadrature (band limit 2·lmax),
// so it matches this module's convention by construction. Returns a dense row-major
// NumSh(lmax) × NumSh(lmax) matrix; entries coupling different degrees are exactly 0.
std::vector<double> WignerD(int lmax, const double* rot);

// Rotation matrix (row-major 3×3) of the unit quaternion q (w, x, y, z); q is normalised.
void QuaternionToRotation(const double* q, double* rot);

// A uniformly random rotation (normalised Gaussian quaternion) from the given seed.
void RandomRotation(uint64_t seed, double* rot);

}  // namespace chamferdb::sphere
