// Spherical graph convolutions on residue graphs (S-GCN: Igashov, Pavlichenko, Grudinin,
// "Spherical convolutions on molecular graphs for protein model quality assessment",
// 2020/21). Spec: kernels-geometric.md section 4.
//
// Features. Each residue i gets the backbone frame of kernels/sphere/frames.h (origin CA,
// e1 = CA − C, e2 towards N, e3 = e1 × e2; server-defined: the original featurizer's axes
// are not public). For an edge i ← j: d_ij = R_iᵀ(CA_j − CA_i), (r, θ, φ) its spherical
// coordinates in that frame, and Y[E][(L+1)²] the real SH (sphere.h conventions) of d/|d|.
// All are invariant to global rigid motions; a reflection maps Y[l,m] → (−1)^{l+|m|}Y[l,m].
// Radial channels rad[E][Kr]: kNone (Kr = 1, all ones), kEdgeWeight (Kr = 1, client weights
// such as Voronoi contact areas), kRbf (Kr centres c, width w: exp(−(r − c)²/(2w²))).
//
// Convolution (the S-GCN layer with radial channels):
//   H_i = act( X_i·W0 + Σ_{t,κ} M_i[t,κ]·W[t,κ] + b ),
//   M_i[t,κ] = ν_i · Σ_{j: i←j} rad_ij[κ]·Y_t(ij)·X_j,   ν_i = 1 or 1/indeg(i) (row).
//
// Methods: kFast — cell-list neighbour search, SH by the normalised recurrence, CSR by
// destination and aggregate-first contraction, parallel over residues. kNaive — all-pairs
// search, angles by acos/atan2, Legendre functions by the explicit factorial sum in long
// double, dense R×R matrices S_{t,κ} and dense products, as in the original PyTorch layer.
//
// Layout (row-major float64): backbone R×3×3 (N, CA, C); edges E×2 (i, j); rot R×3×3;
// origin R×3; local E×3; sph E×3 (r, θ, φ); y E×(L+1)²; rad E×Kr; x R×F; w0 F×F';
// w ((L+1)²·Kr)×F×F' with flat index t·Kr + κ; bias F'; h R×F'.
// Thread-safety: pure functions; results are bitwise independent of `threads`.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace chamferdb::sgcn {

enum class SgcnMethod { kFast, kNaive };
enum class Radial { kNone, kEdgeWeight, kRbf };
enum class Activation { kNone, kRelu, kElu };

inline constexpr int kMaxDegree = 16;         // L
inline constexpr int64_t kMaxNaiveResidues = 2048;

struct GraphFeatures {
  int64_t n = 0;
  int lmax = 0;
  int kr = 1;
  std::vector<double> rot, origin;  // R×3×3, R×3
  std::vector<int64_t> edges;       // E×2, sorted by (i, j) when built from a cutoff
  std::vector<double> local, sph, y, rad;
  int64_t num_edges() const { return static_cast<int64_t>(edges.size() / 2); }
};

struct FeatureOptions {
  int lmax = 4;
  double cutoff = 0;              // > 0: build edges from CA distances (both directions)
  const int64_t* edges = nullptr; // else: e × 2 explicit edges (i ≠ j, no duplicates)
  int64_t e = 0;
  Radial radial = Radial::kNone;
  const double* edge_weight = nullptr;  // kEdgeWeight: e values
  std::vector<double> rbf_centres;      // kRbf
  double rbf_width = 1.0;               // kRbf, > 0
  int64_t max_edges = int64_t{1} << 24; // cutoff graphs larger than this: RESOURCE_EXHAUSTED
  int threads = 1;
};

// INVALID_ARGUMENT for a degenerate backbone residue, lmax outside [0, kMaxDegree], bad
// edges (index range, self-loop, duplicate, coincident CA atoms), neither or both of
// cutoff / edges, bad radial parameters, or (kNaive) n > kMaxNaiveResidues;
// RESOURCE_EXHAUSTED when the cutoff graph has more than max_edges edges.
absl::Status SphericalGraphFeatures(int64_t n, const double* backbone,
                                    const FeatureOptions& options, SgcnMethod method,
                                    GraphFeatures* out);

struct ConvParams {
  int f = 0, fp = 0;               // F, F'
  const double* x = nullptr;       // R × F
  const double* w0 = nullptr;      // F × F'
  const double* w = nullptr;       // ((L+1)²·Kr) × F × F'
  const double* bias = nullptr;    // F' or nullptr
  Activation activation = Activation::kNone;
  bool normalize_rows = false;
  int threads = 1;
};

// h: R × F'. INVALID_ARGUMENT for F, F' < 1.
absl::Status SphericalGraphConv(const GraphFeatures& g, const ConvParams& p, SgcnMethod method,
                                double* h);

}  // namespace chamferdb::sgcn
