// M-FAC: inverse-Hessian-vector products with the empirical Fisher (Frantar, Kurtic,
// Alistarh, "M-FAC: Efficient Matrix-Free Approximations of Second-Order Information",
// NeurIPS 2021; official code IST-DASLab/M-FAC).
//
//   F = λI + (1/m) Σ_{i<m} g_i g_iᵀ,   G = [g_0; …; g_{m−1}] ∈ R^{m×d},   target F⁻¹x.
//
// Static algorithm (Sherman–Morrison chain), O(m²d) precompute, O(dm) per product:
//   v_i = λ⁻¹g_i − Σ_{j<i} (v_j·g_i / q_j)·v_j,   q_i = m + g_i·v_i,
//   F⁻¹x = λ⁻¹x − Σ_i (v_i·x / q_i)·v_i,   (F⁻¹)_kk = λ⁻¹ − Σ_i V_ik²/q_i,
//   (F⁻¹)_kl = λ⁻¹δ_kl − Σ_i V_ik V_il / q_i   (O(m) per entry).
// The precompute is blocked (BLAS-3): a block of rows first subtracts the finished rows'
// contribution with two GEMMs, then finishes its own triangle.
// Dynamic (sliding window) algorithm, O(dm + m²) per product and O(dm + m³) per update:
// a ring buffer G with Gram matrix K = GGᵀ; D = λ⁻¹K + mI is LU-factorized without
// pivoting (D is SPD + mI), U_ij = g_iᵀF_{i−1}⁻¹g_j + mδ_ij, q_i = U_ii, S = U − mI, and
// the coefficients B (v_i = Σ_j B_ij g_j) follow B_i = λ⁻¹e_i − Σ_{j<i} (S_ji/q_j)·B_j.
// The chain runs in slot order; F does not depend on the order of the gradients.
//
// Data layout: G, V are m × d row-major double; vectors x are rows of an r × d matrix.
// Determinism: OpenBLAS GEMM/GEMV (it splits only M/N across threads) plus fixed-order
// loops. Thread-safety: functions are pure; a Window must not be shared across threads
// without external locking.
#pragma once

#include <cstddef>
#include <vector>

namespace chamferdb::mfac {

struct StaticFactor {
  size_t m = 0, d = 0;
  double damp = 0.0;       // λ
  std::vector<double> v;   // m × d
  std::vector<double> q;   // m
};

// REQUIRES m ≥ 1, d ≥ 1, damp > 0, block ≥ 1.
StaticFactor StaticPrecompute(const double* g, size_t m, size_t d, double damp, size_t block = 32);

// out (r × d) = F⁻¹ applied to each row of x (r × d). O(r·d·m).
void StaticApply(const StaticFactor& f, const double* x, size_t r, double* out);
// diag (d) of F⁻¹. O(dm).
void StaticDiag(const StaticFactor& f, double* diag);
// (F⁻¹)_kl. O(m).
double StaticEntry(const StaticFactor& f, size_t k, size_t l);

// The complete state of a Window, for callers that keep it outside the process (the RPC
// layer round-trips it). All matrices row-major; s holds S = U − mI in its upper triangle
// and b the lower-triangular coefficients.
struct WindowState {
  size_t m = 0, d = 0;
  double damp = 0.0;
  size_t next_slot = 0;
  std::vector<double> g;  // m × d
  std::vector<double> k;  // m × m
  std::vector<double> s;  // m × m
  std::vector<double> q;  // m
  std::vector<double> b;  // m × m
};

// Sliding window of the last m gradients.
class Window {
 public:
  // Restores a window from State(). REQUIRES the sizes in `state` to be consistent.
  explicit Window(WindowState state);
  WindowState State() const;

  // REQUIRES m ≥ 1, d ≥ 1, damp > 0; g is the initial full window (m × d).
  Window(const double* g, size_t m, size_t d, double damp);

  // Replaces the oldest gradient (slot `next_slot()`) with g (d values). O(dm + m³).
  void Update(const double* g);
  // out (r × d) = F⁻¹ x for each row of x. O(r·(dm + m²)).
  void Apply(const double* x, size_t r, double* out) const;

  size_t m() const { return m_; }
  size_t d() const { return d_; }
  size_t next_slot() const { return last_; }
  const std::vector<double>& gradients() const { return g_; }  // slot order, m × d
  const std::vector<double>& pivots() const { return q_; }     // q_i = U_ii

 private:
  void Refactor();

  size_t m_, d_;
  double damp_;
  size_t last_ = 0;
  std::vector<double> g_;  // m × d ring buffer
  std::vector<double> k_;  // m × m Gram matrix
  std::vector<double> s_;  // m × m, S = U − mI (upper triangle used)
  std::vector<double> q_;  // m
  std::vector<double> b_;  // m × m lower-triangular coefficients
};

// References. Dense: forms F (d × d) and solves with Eigen's LLT (d ≤ a few thousand).
void DenseApply(const double* g, size_t m, size_t d, double damp, const double* x, size_t r,
                double* out);
// Dense diagonal of F⁻¹ (inverts F).
void DenseDiag(const double* g, size_t m, size_t d, double damp, double* diag);
// Woodbury: F⁻¹x = λ⁻¹x − λ⁻²·Gᵀ(mI + λ⁻¹K)⁻¹(Gx), K = GGᵀ (refactorized per call).
void WoodburyApply(const double* g, size_t m, size_t d, double damp, const double* x, size_t r,
                   double* out);

}  // namespace chamferdb::mfac
