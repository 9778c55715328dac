// MUVERA Fixed Dimensional Encodings (Dhulipala, Hadian, Jayaram, Lee, Mirrokni:
// "MUVERA: Multi-Vector Retrieval via Fixed Dimensional Encodings", NeurIPS 2024).
//
// The math. Chamfer(Q, P) = Σ_{q∈Q} max_{p∈P} ⟨q, p⟩. For each of r_reps repetitions, k_sim
// Gaussian hyperplanes g_0..g_{k-1} split R^d into B = 2^k_sim buckets (SimHash). Every
// token x is projected to P coordinates by a count-sketch ψ (or kept, when the projection
// is the identity). The query block of bucket b is Σ_{q∈b} ψ(q); the document block is
// the centroid of ψ(p) over p∈b, and an empty document bucket is filled with ψ(p) of the
// point whose sign pattern is nearest in Hamming distance. Blocks are concatenated
// repetition-major: element (rep·B + bucket)·P + j. An optional final count-sketch maps the
// result to d_final coordinates. ⟨FDE_q(Q), FDE_doc(P)⟩ ≈ r_reps · Chamfer(Q, P); with the
// identity projection and filling, every repetition's block product is ≤ Chamfer(Q, P)
// (the paper's Lemma A.3).
//
// chamferdb's conventions (fixed by format version kFdeFormatVersion):
// - Sign bit of hyperplane j is 1 iff ⟨g_j, x⟩ > 0 (strictly; 0 and -0 give 0).
// - Bits are read hyperplane 0 first as the most significant bit, as a Gray code; the bucket
//   id is its binary rank (adjacent ids differ in one hyperplane). Bucket i's sign pattern
//   is i ^ (i >> 1).
// - Inner projection: one (slot, ±1) per input coordinate, unscaled (count-sketch, unbiased
//   for inner products), as in Google's reference; d_proj == dim means the identity.
// - Final projection: count-sketch, unscaled, one (slot, ±1) per FDE coordinate.
// - Fill: documents always, queries never; ties go to the lowest point index.
// - Randomness: common/rng.h, an independent stream per (seed, repetition, purpose).
//   Matrices are generated once per encoder and persisted by Serialize().
// Inputs are not normalized here; the collection normalizes tokens before encoding.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "encoders/encoder.h"

namespace chamferdb {

// Bumped whenever the generated matrices or the encoding change for the same config.
inline constexpr uint32_t kFdeFormatVersion = 1;

struct FdeConfig {
  uint32_t dim = 0;       // input token dimension, 1..kMaxDim
  uint32_t r_reps = 20;   // 1..kMaxReps
  uint32_t k_sim = 5;     // 0..kMaxKSim
  uint32_t d_proj = 16;   // 1..dim (count-sketch) or == dim (identity)
  uint32_t d_final = 0;   // 0 = no final projection, else 1..kMaxOutputDim
  uint64_t seed = 1;

  static constexpr uint32_t kMaxDim = 4096;
  static constexpr uint32_t kMaxReps = 128;
  static constexpr uint32_t kMaxKSim = 10;
  // Cap on r_reps · 2^k_sim · d_proj (before any final projection).
  static constexpr uint64_t kMaxRawDim = uint64_t{1} << 20;
  // Cap on the dimension that goes into the index.
  static constexpr uint64_t kMaxOutputDim = 65536;

  bool identity_projection() const { return d_proj == dim; }
  uint64_t raw_dim() const {
    return k_sim > 30 ? UINT64_MAX : (uint64_t{r_reps} << k_sim) * d_proj;
  }
  uint64_t output_dim() const { return d_final > 0 ? d_final : raw_dim(); }

  // INVALID_ARGUMENT naming the first field out of range (checked before any use as a
  // divisor or size).
  absl::Status Validate() const;
};

// How blocks are aggregated; EncodeDocument and EncodeQuery pick these, Encode exposes them
// for tests of the asymmetric cases.
struct FdeEncodeOptions {
  bool average = false;  // centroid per bucket (documents) instead of sum (queries)
  bool fill_empty = false;  // documents only; INVALID_ARGUMENT with average == false
};

class MuveraFdeEncoder final : public MultiVectorEncoder {
 public:
  // Validates the config and generates the random matrices.
  static absl::StatusOr<std::unique_ptr<MuveraFdeEncoder>> Create(const FdeConfig& config);
  // Rebuilds an encoder from Serialize() output. DATA_LOSS if the blob is truncated or its
  // checksum fails; FAILED_PRECONDITION if it was written by another format version or its
  // matrices differ from what this code generates for the stored config.
  static absl::StatusOr<std::unique_ptr<MuveraFdeEncoder>> Deserialize(std::string_view blob);

  size_t input_dim() const override { return config_.dim; }
  size_t output_dim() const override { return static_cast<size_t>(config_.output_dim()); }
  absl::Status EncodeDocument(FloatMatrixView tokens, float* out) const override;
  absl::Status EncodeQuery(FloatMatrixView tokens, float* out) const override;
  std::string Serialize() const override;

  absl::Status Encode(FloatMatrixView tokens, const FdeEncodeOptions& options, float* out) const;

  const FdeConfig& config() const { return config_; }
  uint32_t num_buckets() const { return 1u << config_.k_sim; }
  uint32_t block_width() const { return config_.d_proj; }

  // The generated matrices, exposed for independent reference implementations in tests.
  // Hyperplane j of repetition rep: dim floats at hyperplanes() + (rep·k_sim + j)·dim.
  const std::vector<float>& hyperplanes() const { return hyperplanes_; }
  // Inner projection of repetition rep, input coordinate c: slot proj_slot()[rep·dim + c]
  // with sign proj_sign()[rep·dim + c] (empty for the identity projection).
  const std::vector<uint32_t>& proj_slot() const { return proj_slot_; }
  const std::vector<int8_t>& proj_sign() const { return proj_sign_; }
  // Final projection: raw coordinate i goes to final_slot()[i] with final_sign()[i].
  const std::vector<uint32_t>& final_slot() const { return final_slot_; }
  const std::vector<int8_t>& final_sign() const { return final_sign_; }

  // Gray code (hyperplane 0 = most significant bit) -> bucket id, and back.
  static uint32_t BucketFromSignBits(uint32_t bits) {
    uint32_t id = bits;
    for (uint32_t shift = 1; shift < 32; shift <<= 1) id ^= id >> shift;
    return id;
  }
  static uint32_t SignBitsFromBucket(uint32_t id) { return id ^ (id >> 1); }

 private:
  explicit MuveraFdeEncoder(const FdeConfig& config) : config_(config) {}
  void Generate();
  // Derives proj_order_/proj_order_sign_/proj_start_ from proj_slot_/proj_sign_.
  void GroupProjection();

  FdeConfig config_;
  std::vector<float> hyperplanes_;  // (r_reps · k_sim) × dim, row-major
  std::vector<uint32_t> proj_slot_;
  std::vector<int8_t> proj_sign_;
  std::vector<uint32_t> final_slot_;
  std::vector<int8_t> final_sign_;
  // Derived, not serialized: per repetition, the input coordinates grouped by inner
  // projection slot (ascending within a slot) with their signs, and each slot's start
  // (r_reps × (d_proj + 1)); see ProjectPackedGrouped in kernels/chamfer/dot.h.
  std::vector<uint32_t> proj_order_;
  std::vector<int8_t> proj_order_sign_;
  std::vector<uint32_t> proj_start_;
};

}  // namespace chamferdb
