// Gaunt tensor product (GTP) of two spherical-harmonic feature tensors.
//
// Papers: Luo, Chen, Krishnapriyan, "Enabling Efficient Equivariant Operations in the
// Fourier Basis via Gaunt Tensor Products", ICLR 2024 (methods kDirect, kFourier,
// kFourierDirectConv); Xie, Daigavane, Kotak, Smidt, "The Price of Freedom", ICML 2025
// (method kGrid). Spec: /work/shared/specs/kernels-geometric.md sections 1–2.
//
// Math. Read x and y as real-SH coefficients (conventions in kernels/sphere/sphere.h) of
// f = Σ w1[l]·x[l,m]·Y[l,m] and g = Σ w2[l]·y[l,m]·Y[l,m]. The output is
//   z[l3,m3] = wout[l3] · Σ G(l1m1, l2m2, l3m3) · (w1[l1]·x[l1,m1]) · (w2[l2]·y[l2,m2]),
// with G = ∫ Y Y Y dΩ the real Gaunt coefficients: the SH coefficients of f·g up to Lout.
// It is symmetric, bilinear, rotation-equivariant, and zero on paths with l1+l2+l3 odd.
//
// Methods (all exact in exact arithmetic; they agree to round-off):
//   kDirect            sparse contraction with the Gaunt coefficient list (the reference;
//                      coefficients by exact quadrature); per sample O(nnz) ≈ O(L⁵).
//   kFourier           Luo et al.: SH → 2D Fourier (torus), product by FFT (M×M, M the
//                      smallest 7-smooth size ≥ 2(L1+L2)+1), exact projection back. O(L³).
//   kFourierDirectConv the same change of basis with a direct 2D convolution, O(L⁴).
//   kDense             the literal definition: a dense contraction with the full Gaunt
//                      tensor G[(L1+1)²][(L2+1)²][(Lout+1)²], built by exact sphere
//                      quadrature of Y·Y·Y with no selection rule (independent of kDirect's
//                      sparse build); O(L⁶) per sample, L1 + L2 ≤ kMaxDenseDegreeSum.
//   kGrid              Gauss–Legendre sphere grid: synthesis, pointwise product, analysis,
//                      with the exact default grid n_β = ⌊N/2⌋+1, n_α ≥ N+1,
//                      N = L1+L2+Lout (n_α padded to a 7-smooth size). O(L³).
//
// Data layout: row-major, float64.
//   x:    batch × channels × (L1+1)²
//   y:    batch × y_channels × (L2+1)², y_channels ∈ {channels, 1} (1 broadcasts)
//   w1:   channels × (L1+1), w2: channels × (L2+1), wout: channels × (Lout+1); each
//         optional (nullptr means all ones)
//   z:    batch × channels × (Lout+1)²  (written, caller-allocated)
// The coefficient index inside a degree block is sphere::ShIndex(l, m) = l² + l + m.
//
// Caching and thread-safety. Expensive tables (Gaunt list; Fourier a/W tables and FFTW
// plans; grid nodes, Legendre tables and FFTW plans) are built once per
// (method, L1, L2, Lout, grid size) in a process-wide cache guarded by a mutex; entries are
// immutable after construction and shared by concurrent calls. GauntTensorProduct may be
// called from any number of threads at once. Results are bitwise identical for any
// `threads` value: work is split over independent (batch, channel) items only, FFTW plans
// use FFTW_ESTIMATE and run through the new-array execute functions on per-thread buffers.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace chamferdb::gaunt {

enum class GauntMethod { kDirect, kFourier, kFourierDirectConv, kGrid, kDense };

// Largest input degree L1, L2 accepted (all methods), and largest L1 + L2 for kDirect,
// whose table grows as O(L⁵) (≈ 1.1 M entries, 18 MB at L1 = L2 = 16).
inline constexpr int kMaxInputDegree = 48;
inline constexpr int kMaxDirectDegreeSum = 32;
// kDense stores (L1+1)²(L2+1)²(Lout+1)² doubles: 15 MB at L1 = L2 = 8, Lout = 16.
inline constexpr int kMaxDenseDegreeSum = 16;
// Largest grid dimension accepted for explicit n_beta / n_alpha.
inline constexpr int kMaxGridSize = 1024;

struct GauntTPShape {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t y_channels = 1;  // channels or 1
  int l1 = 0;
  int l2 = 0;
  int lout = 0;  // ≤ l1 + l2
};

struct GauntTPWeights {
  const double* w1 = nullptr;    // channels × (l1+1) or nullptr
  const double* w2 = nullptr;    // channels × (l2+1) or nullptr
  const double* wout = nullptr;  // channels × (lout+1) or nullptr
};

struct GauntTPOptions {
  GauntMethod method = GauntMethod::kFourier;
  int threads = 1;  // OpenMP threads over (batch, channel) items; ≥ 1
  // kGrid only: 0 selects the exact default. A smaller grid is accepted (it aliases:
  // useful to document the error mode); n_alpha must still be ≥ 2·max(L1, L2, Lout)+1.
  int n_beta = 0;
  int n_alpha = 0;
};

// Per-call statistics.
struct GauntTPStats {
  bool cache_hit = false;       // tables were already built
  double setup_seconds = 0.0;   // time spent building tables in this call (0 on a hit)
  int fft_size = 0;             // M (kFourier) or n_alpha (kGrid); 0 otherwise
  int n_beta = 0;               // kGrid rings
  int64_t table_entries = 0;    // kDirect: Gaunt non-zeros
};

// Validates the shape and options without computing: INVALID_ARGUMENT naming the field
// (l1, l2, lout, channels, y_channels, threads, n_beta, n_alpha) when out of range.
absl::Status ValidateGauntTP(const GauntTPShape& shape, const GauntTPOptions& options);

// Computes z (see the layout above). Returns the ValidateGauntTP errors; never touches z
// on error. `stats` may be nullptr.
absl::Status GauntTensorProduct(const GauntTPShape& shape, const double* x, const double* y,
                                const GauntTPWeights& weights, const GauntTPOptions& options,
                                double* z, GauntTPStats* stats = nullptr);

// Many-body (MACE-style) product of ν copies of x: z = SH coefficients (up to lout) of f^ν,
// f = Σ w1[l]·x[l,m]·Y[l,m], then × wout[l3]. Runs on the exact sphere grid
// (N = ν·L1 + Lout, n_β = ⌊N/2⌋+1, n_α ≥ N+1): one synthesis, ν−1 pointwise products, one
// analysis. shape.l2 and shape.y_channels are ignored; 2 ≤ nu ≤ kMaxNu, lout ≤ nu·l1,
// nu·l1 ≤ kMaxManyBodyDegree. Cached like kGrid; same threading and determinism.
inline constexpr int kMaxNu = 8;
inline constexpr int kMaxManyBodyDegree = 192;
absl::Status GauntManyBody(const GauntTPShape& shape, int nu, const double* x,
                           const double* w1, const double* wout, int threads, double* z,
                           GauntTPStats* stats = nullptr);

// Estimated floating-point work of one (batch, channel) item, for per-request caps.
double GauntTPCostPerItem(const GauntTPShape& shape, GauntMethod method);

// The real Gaunt coefficient G(l1m1, l2m2, l3m3) = ∫ Y Y Y dΩ by exact quadrature, for
// tests and documentation (slow: builds nothing, caches nothing).
double GauntCoefficient(int l1, int m1, int l2, int m2, int l3, int m3);

}  // namespace chamferdb::gaunt
