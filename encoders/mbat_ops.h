// Orthogonal binding operators and the fast Walsh–Hadamard transform for the MBAT-JSON
// encoder (encoders/mbat_json.h). See docs/mbat.md for the design.
//
// The math. Every operator T is an exactly orthogonal D×D map (TᵀT = I), so binding keeps
// norms and inner products and unbinding is the transpose. Three kinds:
//   kDenseHaar   T = Q, the Q factor of a D×D matrix of N(0,1) entries (own Box–Muller over
//                common/rng.h) with column j multiplied by sign(R_jj) (Mezzadri's fix), so
//                Q is Haar-distributed. O(D³) to create, O(D²) to apply. Test oracle.
//   kSrht        T x = P · H S₃ H S₂ H S₁ x / D^{3/2}: Sᵢ seeded ±1 diagonals, H the
//                unnormalized Sylvester Walsh–Hadamard matrix (H = Hᵀ, H² = D·I), P a seeded
//                permutation, (P y)[i] = y[perm[i]]. Yu et al., "Orthogonal Random Features"
//                (NeurIPS 2016), plus P. O(D log D) to apply.
//   kSignedPerm  T x = s ⊙ x[π]: (T x)[i] = s[i] · x[perm[i]]. O(D).
//   kDiagonal    T x = s ⊙ x. Orthogonal but COMMUTATIVE: exists only so tests can show
//                that it fails the nested-key-swap test; MbatConfig rejects it.
//
// Determinism: parameters come only from raw xoshiro256** words (common/rng.h) seeded with
// the caller's 64-bit seed; the same seed gives the same operator on every platform (the
// dense kind goes through Eigen's QR in double and is bit-stable per build only).
// The fast FWHT performs exactly the reference's additions in the same association, so
// both give identical bits (tests check this).
//
// Thread-safety: an OrthoOp is immutable after Create; Apply/ApplyTranspose are const and
// may run concurrently (they use caller-provided scratch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace chamferdb::mbat {

// In-place unnormalized Walsh–Hadamard transform (Sylvester order) of x[0..n), n a power of
// two (n = 1 is the identity). y = H x with H[i][j] = (−1)^popcount(i & j).
// Plain radix-2 textbook loops: the reference.
void FwhtReference(float* x, size_t n);
// The same transform, same bits, vectorized (AVX2 chosen at run time; portable fallback).
void Fwht(float* x, size_t n);

enum class OpKind : uint8_t { kSrht = 0, kDenseHaar = 1, kSignedPerm = 2, kDiagonal = 3 };

class OrthoOp {
 public:
  // dim: a power of two, 2..65536 (the caller validates). Deterministic in (kind, dim, seed).
  static std::unique_ptr<OrthoOp> Create(OpKind kind, size_t dim, uint64_t seed);

  OpKind kind() const { return kind_; }
  size_t dim() const { return dim_; }

  // y = T x. x and y: dim floats; they may alias. scratch: dim floats, distinct from both.
  void Apply(const float* x, float* y, float* scratch) const;
  // y = Tᵀ x (the inverse). Same contract as Apply.
  void ApplyTranspose(const float* x, float* y, float* scratch) const;
  // acc += T x, the binding step of the encoder (saves one pass over D floats).
  // x and acc must not alias; scratch: dim floats distinct from both.
  void ApplyAdd(const float* x, float* acc, float* scratch) const;

  // Bytes of parameters held (for cache budgeting).
  size_t bytes() const;

  // Parameters, exposed for independent references in tests.
  // kSrht: signs(r) for r = 0,1,2 are S₁, S₂, S₃ (±1.0f each); perm() is P.
  // kSignedPerm: signs(0) is s, perm() is π. kDiagonal: signs(0) is s.
  // kDenseHaar: dense() is Q, row-major D×D.
  const float* signs(int r) const { return signs_.data() + static_cast<size_t>(r) * dim_; }
  const std::vector<uint32_t>& perm() const { return perm_; }
  const std::vector<double>& dense() const { return dense_; }

 private:
  OrthoOp(OpKind kind, size_t dim) : kind_(kind), dim_(dim) {}

  OpKind kind_;
  size_t dim_;
  // kSrht: 3 × dim signs, the last row pre-multiplied by D^{-3/2}. Otherwise 1 × dim.
  std::vector<float> signs_;
  std::vector<float> srht_s3_scaled_;
  std::vector<uint32_t> perm_;
  std::vector<double> dense_;  // kDenseHaar: Q in double, row-major
};

// Fills sign[0..n) with ±1.0f from raw generator bits (bit j of word j/64: 1 → +1).
void RandomSigns(uint64_t seed, size_t n, float* sign);
// A uniformly random permutation of 0..n-1 (Fisher–Yates with unbiased UniformInt).
std::vector<uint32_t> RandomPermutation(uint64_t seed, size_t n);

}  // namespace chamferdb::mbat
