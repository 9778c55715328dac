// Vector field network (VFN) operator on frame-anchored virtual atoms (Mao et al., "De
// novo Protein Design Using Geometric Vector Field Networks", ICLR 2024).
// Spec: kernels-geometric.md section 5.
//
// Every residue i has a rigid frame T_i = (R_i, s·t_i) (s = coord_scale, 0.1 in VFN-Diff)
// and K virtual atoms in its own frame: q_i (centre side) and v_i (neighbour side). For an
// edge i ← j the neighbour's atoms are moved into i's frame, p_jk = T_i⁻¹·T_j·v_jk =
// R_iᵀ(R_j·v_jk + s·(t_j − t_i)), stacked with q_i, and mixed by the vector field operator
//   U[a] = Σ_b W[a][b]·[p_j ; q_i][b]   (+ p_j[a] when `residual`, K' = K),
// a K'×2K matrix applied identically to x, y and z. Then len = ‖U‖, dir = U/len (0 when
// len = 0) and Gaussian RBFs g = exp(−½((len − μ)/σ)²). Everything lives in local frames,
// so all outputs are invariant to a global rigid motion of the frames.
// With W = [I | −I], no residual: len_ijk = ‖(R_j v_jk + s t_j) − (R_i q_ik + s t_i)‖, the
// IPA point distance.
//
// VfnAggregate: α = softmax over the incoming edges of each i (max-subtracted; masked edges
// get α = 0), o_scalar[i,h] = Σ_j α_ijh·val_j,h, o_vec[i,h,c] = Σ_j α_ijh·T_i⁻¹T_j·vv_jc.
//
// Methods: kFast streams edges (rigid inverse Rᵀ, per-edge 3×3 products; aggregation over a
// CSR of edges grouped by destination, parallel over destinations). kNaive mirrors the
// PyTorch code: 4×4 homogeneous matrices inverted by a general LU, the dense N×N×2K×3 (or
// N×N×Kv×3) transported tensor materialised, dense N×N softmax; N ≤ kMaxNaiveResidues.
//
// Layout (row-major, float64): rot N×3×3, trans N×3, q and v N×K×3, edges E×2 (dst i,
// src j), w K'×2K, mu and sigma K'×G, u E×K'×3, len E×K', dir E×K'×3, rbf E×K'×G;
// logits E×H, edge_mask E (0/1, optional), val N×H×D, vv N×Kv×3, alpha E×H,
// o_scalar N×H×D, o_vec N×H×Kv×3.
// Thread-safety: pure functions; results are bitwise independent of `threads`.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace chamferdb::vfn {

enum class VfnMethod { kFast, kNaive };

inline constexpr int64_t kMaxNaiveResidues = 256;
inline constexpr int kMaxAtoms = 256;  // K, K', Kv
inline constexpr int kMaxRbf = 64;     // G

struct Frames {
  int64_t n = 0;
  const double* rot = nullptr;    // n × 3 × 3
  const double* trans = nullptr;  // n × 3
  double coord_scale = 1.0;       // translations are multiplied by this (> 0)
};

struct EdgeList {
  int64_t e = 0;
  const int64_t* ij = nullptr;  // e × 2: (destination i, source j); no duplicate pairs
};

struct EdgeFeatureParams {
  int k = 0;            // virtual atoms per residue
  int kp = 0;           // K', output vectors
  int g = 0;            // Gaussians per output vector (0: no rbf)
  const double* w = nullptr;      // kp × 2k
  bool residual = false;          // needs kp == k
  const double* mu = nullptr;     // kp × g
  const double* sigma = nullptr;  // kp × g, > 0
};

struct EdgeFeatureOutput {
  double* u = nullptr;    // e × kp × 3
  double* len = nullptr;  // e × kp
  double* dir = nullptr;  // e × kp × 3
  double* rbf = nullptr;  // e × kp × g (may be nullptr when g == 0)
};

// INVALID_ARGUMENT for bad sizes (k, kp in [1, kMaxAtoms], g in [0, kMaxRbf]), residual
// with kp != k, sigma ≤ 0, coord_scale ≤ 0, edge indices outside [0, n) or duplicated, or
// (kNaive) n > kMaxNaiveResidues.
absl::Status VfnEdgeFeatures(const Frames& frames, const double* q, const double* v,
                             const EdgeList& edges, const EdgeFeatureParams& params,
                             VfnMethod method, int threads, const EdgeFeatureOutput& out);

struct AggregateInput {
  int h = 0;                      // heads
  int d = 0;                      // scalar value width (0: no scalar values)
  int kv = 0;                     // vector values per residue (0: none)
  const double* logits = nullptr; // e × h
  const uint8_t* edge_mask = nullptr;  // e, optional (nullptr = all edges on)
  const double* val = nullptr;    // n × h × d
  const double* vv = nullptr;     // n × kv × 3 (local coordinates of each residue)
};

struct AggregateOutput {
  double* alpha = nullptr;     // e × h
  double* o_scalar = nullptr;  // n × h × d
  double* o_vec = nullptr;     // n × h × kv × 3
};

// Errors as VfnEdgeFeatures (edges, sizes h in [1, 256], d ≥ 0, kv in [0, kMaxAtoms]).
absl::Status VfnAggregate(const Frames& frames, const EdgeList& edges, const AggregateInput& in,
                          VfnMethod method, int threads, const AggregateOutput& out);

// All ordered pairs (i, j), i ≠ j, sorted by i then j: n·(n−1) edges.
void AllPairsEdges(int64_t n, int64_t* ij);
// For each i its k nearest j ≠ i by ‖t_i − t_j‖ (ties by smaller j), sorted by i then
// distance: n·k edges; requires 1 ≤ k < n.
void KnnEdges(int64_t n, const double* trans, int k, int64_t* ij);

}  // namespace chamferdb::vfn
