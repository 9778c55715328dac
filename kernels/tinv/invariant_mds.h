// Invariant, distance-preserving point representations by modified classical MDS (TinvNN:
// Zhang, Wang, Zhang, Cui, Zhu, arXiv 2112.12345). Spec: kernels-geometric.md section 6.
//
// Math. Classical MDS embeds the double-centred Gram matrix B = −½·J·D⁽²⁾·J (J = I − 11ᵀ/N)
// by its top-k eigenpairs, Y[:,a] = u_a·sqrt(λ_a). The embedding is unique only up to O(k);
// TinvNN removes that freedom, so Y is invariant to translation and O(d) (reflections
// included), equivariant to permutations, and ‖Y_i − Y_j‖ = ‖X_i − X_j‖ when k = d.
// Canonicalisation used here (the paper's exact rule could not be read; this one is
// documented and tested):
//   sign: flip column a so that Σ_i Y_ia³ > 0 (kThirdMoment); if |Σ Y³| < tol·Σ|Y|³, or
//         with kMaxAbs, make the entry of largest |Y_ia| positive; when two entries tie in
//         magnitude (within tol·max|Y|) with opposite signs, set kFlagSignUnresolved.
//   degeneracy: λ_a − λ_{a+1} < tol·λ_1 (or λ_{a−1} − λ_a) sets kFlagDegenerate: the basis
//         of that eigenspace is not canonical (symmetric shapes).
//   scale (kRms): Y /= sqrt(Σ_{a<k} λ_a / N), making the output scale invariant.
//
// Methods (same output up to round-off on Euclidean input):
//   kCoordinates: centre X, eigen-decompose the d×d matrix X_cᵀX_c, Y = X_c·V.
//                 O(N·d² + d³) — the linear-time route. Requires k ≤ d.
//   kDistance:    build D (from points or given), double-centre, full symmetric
//                 eigendecomposition of the N×N matrix (Eigen). O(N³) — the reference,
//                 and the only route for non-Euclidean distances (e.g. graph geodesics).
//
// Layout (row-major float64): points batch × N × d; dist batch × N × N (symmetric, zero
// diagonal, ≥ 0); Y batch × N × k; eigvals batch × k (descending); flags batch × k.
// Thread-safety: pure functions; batch items run on `threads` OpenMP threads, each item
// serially, so results are bitwise independent of the thread count.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace chamferdb::tinv {

enum class MdsMethod { kCoordinates, kDistance };
enum class SignRule { kThirdMoment, kMaxAbs };
enum class ScaleNorm { kNone, kRms };

inline constexpr int32_t kFlagDegenerate = 1;      // eigenvalue ties a neighbour
inline constexpr int32_t kFlagSignUnresolved = 2;  // sign could not be fixed
inline constexpr int32_t kFlagNonPositive = 4;     // λ ≤ 0 (non-Euclidean): column zeroed

// Caps: the O(N³) distance route accepts N ≤ kMaxDistanceN; dimensions d ≤ kMaxDim.
inline constexpr int64_t kMaxDistanceN = 2048;
inline constexpr int kMaxDim = 64;

struct MdsOptions {
  int k = 0;  // output dimensions; 0 means d (points) — required ≥ 1 for distances
  SignRule sign_rule = SignRule::kThirdMoment;
  ScaleNorm scale = ScaleNorm::kNone;
  double tol = 1e-8;  // relative tolerance of the degeneracy and sign tests, in (0, 1)
  int threads = 1;
};

struct MdsOutput {
  double* y = nullptr;         // batch × N × k
  double* eigvals = nullptr;   // batch × k
  int32_t* flags = nullptr;    // batch × k
  double* stress = nullptr;    // batch, ‖D − D(Y)‖_F (kDistance only; may be nullptr)
};

// From coordinates (points: batch × n × d). Errors: INVALID_ARGUMENT for n < 1, d outside
// [1, kMaxDim], k outside [1, d] (k ≤ min(d, n) is not required: extra columns of a
// rank-deficient cloud come out zero and flagged), tol outside (0, 1), threads < 1, or
// (kDistance) n > kMaxDistanceN.
absl::Status InvariantMdsFromPoints(int64_t batch, int64_t n, int d, const double* points,
                                    const MdsOptions& options, MdsMethod method,
                                    const MdsOutput& out);

// From a distance matrix (dist: batch × n × n), always the O(N³) route. Errors as above,
// k in [1, n], n ≤ kMaxDistanceN; INVALID_ARGUMENT when dist is not symmetric (to 1e-12
// relative), has a non-zero diagonal or negative entries.
absl::Status InvariantMdsFromDistances(int64_t batch, int64_t n, const double* dist,
                                       const MdsOptions& options, const MdsOutput& out);

}  // namespace chamferdb::tinv
