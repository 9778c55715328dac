// MBAT-JSON: one fixed-length vector per JSON record, after S. I. Gallant, "Orthogonal
// Matrices for MBAT Vector Symbolic Architectures, and a 'Soft' VSA Representation for
// JSON" (arXiv 2202.04771) and Gallant & Okaywe, "Representing Objects, Relations, and
// Sequences" (Neural Computation 2013). Spec: /work/shared/specs/mbat-json.md; design,
// limits and measured quality in docs/mbat.md.
//
// The math (MBAT: matrix binding of additive terms). Every key k owns an orthogonal
// operator T_k, arrays share one orthogonal operator S (encoders/mbat_ops.h); values are
// sums ("additive terms") bound by their parent's operator:
//   enc(null|true|false|{}|[]) = atom("lit", literal)
//   enc(string s)   = atom("str", s) [+ w_tok·unit(Σ_t atom("tok", t))]
//                                    [+ w_tri·unit(Σ_g atom("tri", g))]
//   enc(number x)   = R(t(x))·u_num, R(θ) = ⊕_j rot(ω_j θ) on coordinate pairs (2j, 2j+1),
//                     ω_j ~ N(0, 1/σ²), so ⟨enc(x), enc(y)⟩ ≈ exp(−(t(x) − t(y))²/(2σ²))
//   enc(object)     = Σ_{k sorted} T_k·enc(v_k) + γ·Σ_k atom("key", k) + β·Σ_k enc(v_k)
//   enc(array)      = Σ_i S^{i+1}·enc(v_i) + β·Σ_i enc(v_i)       (seq_from = start)
//                     Σ_i S^{n−i}·enc(v_i) + β·Σ_i enc(v_i)       (seq_from = end)
//   record vector r = enc(root) / ‖enc(root)‖₂
// A leaf at path (k₁, k₂, [i], k₃) contributes T_{k₁} T_{k₂} S^{i+1} T_{k₃}·enc(leaf). With
// β = γ = 0, E⟨r_a, r_b⟩ is the Ochiai coefficient over (path, value) leaves, softened by the
// numeric kernel, plus noise of std ≈ 1/√D.
// Atoms: atom(tag, token) has coordinate j = ±1/√D from bit j of the xoshiro256** stream
// seeded by H(seed, tag, token), H = chamferdb's length-prefixed 64-bit hash (hash id 1).
// Operators: T_k from H(seed, "key-op", k); S from H(seed, "seq-op", ""). No
// std::*_distribution anywhere; sin/cos of the numeric encoder are our own polynomials and
// SIMD paths reproduce the portable bits, so srht/signed_perm vectors are bit-identical across
// x86-64 builds with -ffp-contract=off (t(x) calls libm's log1p, the one libm dependence;
// dense_haar goes through Eigen's QR). Serialize stores a check vector that Deserialize
// verifies.
//
// Input rules (documented in docs/mbat.md): the root must be a JSON object; duplicate keys
// are rejected; keys are ordered by their UTF-8 bytes; numbers are doubles (integers beyond
// 2^53 round); text must be valid UTF-8 (nlohmann's parser checks it).
//
// Thread-safety: an encoder is immutable after Create/Deserialize except for internal,
// mutex-protected caches (key operators; bound leaves T_k·enc(v) of repeated (key, value)
// pairs, which change speed, never bits); every const method may be called from many threads.
// MbatPathDictionary is internally synchronized.
// Threads: EncodeBatch uses OpenMP across records (for bulk ingest, not from inside a gRPC
// handler that already runs on a pool thread — pass num_threads = 1 there).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/base/thread_annotations.h"
#include "encoders/mbat_ops.h"

namespace chamferdb {

// Bumped whenever the vectors change for the same config.
inline constexpr uint32_t kMbatFormatVersion = 1;
// Identifies H, the token hash (fixed by kMbatFormatVersion).
inline constexpr uint32_t kMbatHashId = 1;

enum class MbatOpKind : uint8_t { kSrht = 0, kDenseHaar = 1, kSignedPerm = 2 };
enum class MbatSeqFrom : uint8_t { kStart = 0, kEnd = 1 };
enum class MbatStringMode : uint8_t { kExact = 0, kTokens = 1, kTrigram = 2 };
enum class MbatNumTransform : uint8_t { kSignedLog1p = 0, kLinear = 1 };
enum class MbatNormalize : uint8_t { kFinal = 0, kPerNode = 1 };

// Names used in config JSON and docs: "srht", "dense_haar", "signed_perm"; "start", "end";
// "exact", "tokens", "trigram"; "signed_log1p", "linear"; "final", "per_node".
std::string_view MbatOpKindName(MbatOpKind k);
std::string_view MbatSeqFromName(MbatSeqFrom k);
std::string_view MbatStringModeName(MbatStringMode k);
std::string_view MbatNumTransformName(MbatNumTransform k);
std::string_view MbatNormalizeName(MbatNormalize k);

// Per-record input caps. They do not change vectors, only what is accepted.
struct MbatLimits {
  uint64_t max_record_bytes = 1 << 20;  // 1..2^30; RESOURCE_EXHAUSTED above
  uint32_t max_depth = 64;              // 1..512 nested objects/arrays; INVALID_ARGUMENT above
  uint32_t max_nodes = 100000;          // 1..10^7 JSON values per record; RESOURCE_EXHAUSTED
  uint32_t max_array_length = 10000;    // 1..10^7 elements per array; RESOURCE_EXHAUSTED
};

struct MbatConfig {
  uint32_t dim = 1024;  // power of two, 64..16384 (dense_haar: ..2048)
  uint64_t seed = 1;
  MbatOpKind op_kind = MbatOpKind::kSrht;
  MbatSeqFrom seq_from = MbatSeqFrom::kStart;
  float beta_bag = 0.0f;    // 0..100, weight of unbound values (role-free credit)
  float gamma_keys = 0.0f;  // 0..100, weight of key-presence atoms (schema similarity)
  MbatStringMode str_mode = MbatStringMode::kExact;
  float w_tok = 0.5f;  // 0..100, token-bag weight (str_mode = tokens)
  float w_tri = 0.5f;  // 0..100, trigram-bag weight (str_mode = trigram)
  MbatNumTransform num_transform = MbatNumTransform::kSignedLog1p;
  double num_scale = 1.0;   // linear: t(x) = x / num_scale; > 0
  double num_sigma = 0.25;  // kernel width on t(x), 1e-3..1e3
  MbatNormalize normalize = MbatNormalize::kFinal;
  MbatLimits limits;

  // INVALID_ARGUMENT naming the first bad field.
  absl::Status Validate() const;
};

// Parses {"dim":1024,"seed":7,"op_kind":"srht",...,"limits":{"max_depth":64}}; absent
// fields keep their defaults, unknown fields are INVALID_ARGUMENT. The result is validated.
absl::StatusOr<MbatConfig> MbatConfigFromJson(std::string_view json);
std::string MbatConfigToJson(const MbatConfig& config);

// One step of a probe path: an object key or an array index.
struct MbatPathStep {
  bool is_index = false;
  std::string key;     // when !is_index
  uint32_t index = 0;  // when is_index
};

// Path syntax: steps separated by '.', array indices in brackets, keys with special
// characters quoted: `addr.geo.cc`, `tags[2]`, `items[0].sku`, `["a.b"][1]`, `x["q\"k"]`.
// A bare key is any non-empty run of bytes other than . [ ] " \ and control characters;
// a quoted key uses JSON string syntax. INVALID_ARGUMENT with the byte offset on error.
absl::StatusOr<std::vector<MbatPathStep>> ParseMbatPath(std::string_view path);
// The dictionary key of a path: indices replaced by "[]" (`items[].sku`); keys printed bare
// when possible, else quoted.
std::string MbatPathPattern(const std::vector<MbatPathStep>& steps);

// A JSON leaf: a scalar or an empty container.
struct MbatLeaf {
  enum class Type : uint8_t { kNull, kTrue, kFalse, kNumber, kString, kEmptyObject, kEmptyArray };
  Type type = Type::kNull;
  double number = 0.0;
  std::string str;
  // Canonical JSON text: null, true, 42, 0.5, "text", {}, [].
  std::string ToJson() const;
};

// A (path pattern, leaf) pair of a record, e.g. ("items[].sku", "A-17").
struct MbatPathAtom {
  std::string path;
  MbatLeaf value;
};

// Distinct leaf values seen at each path pattern: the clean-up memory for Probe.
// Internally synchronized: Add and Candidates may run concurrently.
class MbatPathDictionary {
 public:
  // At most max_values_per_path distinct values are kept per path (the first ones seen).
  explicit MbatPathDictionary(size_t max_values_per_path = 4096)
      : max_values_per_path_(max_values_per_path) {}
  void Add(const std::vector<MbatPathAtom>& atoms);
  // Distinct values at `pattern` in insertion order (empty if none).
  std::vector<MbatLeaf> Candidates(const std::string& pattern) const;
  size_t num_paths() const;

 private:
  struct Values {
    std::vector<MbatLeaf> leaves;
    std::unordered_map<std::string, size_t> index;  // ToJson() -> position
  };
  const size_t max_values_per_path_;
  // std mutexes, not absl::Mutex: Debian's absl is not built for ThreadSanitizer, which then
  // cannot see absl's locking and reports the guarded accesses as races.
  mutable std::mutex mu_;
  std::unordered_map<std::string, Values> paths_ ABSL_GUARDED_BY(mu_);
};

struct MbatProbeHit {
  MbatLeaf value;
  float similarity = 0.0f;  // cosine between the unbound vector and enc(value)
};

// Per-record side information.
struct MbatEncodeInfo {
  double raw_norm = 0.0;     // ‖enc(root)‖₂ before the final normalization
  uint32_t num_leaves = 0;   // scalars and empty containers
};

enum class MbatQueryMode : uint8_t {
  // The query is encoded exactly like a record: ⟨q, r⟩ = cosine ≈ shared/√(L_q·L_r).
  kCosine = 0,
  // q = enc(query)/‖enc(query)‖²; then ⟨q, r⟩·raw_norm(record) ≈ shared/L_q, the fraction of
  // the query's leaves the record contains (see MbatContainmentScore).
  kContainment = 1,
};

// Containment score of a record from the inner product of a kContainment query with the
// record's stored unit vector and the record's MbatEncodeInfo::raw_norm.
inline float MbatContainmentScore(float inner_product, double record_raw_norm) {
  return static_cast<float>(inner_product * record_raw_norm);
}

class MbatJsonEncoder {
 public:
  // Validates the config (INVALID_ARGUMENT) and builds the shared operators.
  static absl::StatusOr<std::unique_ptr<MbatJsonEncoder>> Create(const MbatConfig& config);
  // Rebuilds an encoder from Serialize() output. DATA_LOSS if truncated, corrupt or its
  // stored config is invalid; FAILED_PRECONDITION if written by another format version or
  // hash, or if this build encodes the stored check record differently (generator change).
  static absl::StatusOr<std::unique_ptr<MbatJsonEncoder>> Deserialize(std::string_view blob);
  // Version, config, hash id and a check record's vector; CRC-32 protected.
  std::string Serialize() const;

  const MbatConfig& config() const { return config_; }
  size_t dim() const { return config_.dim; }

  // Encodes one record into out (dim() floats, unit norm). INVALID_ARGUMENT for invalid
  // JSON or UTF-8, a non-object root, duplicate keys, non-finite numbers, nesting deeper
  // than limits.max_depth; RESOURCE_EXHAUSTED for records over max_record_bytes, more than
  // max_nodes values or an array over max_array_length. out is unspecified on error.
  absl::Status Encode(std::string_view json, float* out, MbatEncodeInfo* info = nullptr) const;
  // Encodes a query (possibly partial); see MbatQueryMode. Same errors as Encode.
  absl::Status EncodeQuery(std::string_view json, MbatQueryMode mode, float* out,
                           MbatEncodeInfo* info = nullptr) const;
  // Encodes records[i] into out[i·dim() .. (i+1)·dim()), in parallel over records with
  // OpenMP (num_threads 0 = OpenMP's default). Output bits do not depend on the thread
  // count. infos: nullptr or records.size() entries. On error returns the error of the
  // lowest failing index, prefixed "record <i>: "; other rows are still written.
  absl::Status EncodeBatch(std::span<const std::string_view> records, float* out,
                           MbatEncodeInfo* infos = nullptr, int num_threads = 0) const;

  // The (path pattern, leaf) pairs of a record, for MbatPathDictionary::Add. Same
  // validation as Encode.
  absl::StatusOr<std::vector<MbatPathAtom>> CollectAtoms(std::string_view json) const;

  // Unbinds `path` from vec (dim() floats, a record vector): out = (T_{k_n})ᵀ…(T_{k_1})ᵀ vec,
  // with (Sᵀ)^{i+1} for an index step (seq_from = start; end-anchored arrays cannot be
  // addressed by a start index and give INVALID_ARGUMENT). INVALID_ARGUMENT for a bad path
  // or an index ≥ limits.max_array_length.
  absl::Status Unbind(const float* vec, std::string_view path, float* out) const;
  // Unbinds `path` and ranks the dictionary's values at that path by cosine with the
  // unbound vector; returns the best min(top_n, #candidates), best first (ties: earlier
  // dictionary entry first). NOT_FOUND if the dictionary has no value at the path;
  // INVALID_ARGUMENT for a bad path or top_n == 0.
  absl::StatusOr<std::vector<MbatProbeHit>> Probe(const float* vec, std::string_view path,
                                                  const MbatPathDictionary& dictionary,
                                                  size_t top_n) const;

  // Probes several paths of one record jointly ("explaining away"): after a first pass like
  // Probe, each round subtracts every other path's current best value, bound to its path
  // and scaled by its fitted amplitude, before unbinding again. When `paths` lists the
  // record's leaves this removes most of the cross-talk noise (see docs/mbat.md). Returns
  // the best value per path, in the order of `paths`. Same errors as Probe; rounds 0..8
  // (0 = independent probes).
  absl::StatusOr<std::vector<MbatProbeHit>> ProbeJointly(const float* vec,
                                                         const std::vector<std::string>& paths,
                                                         const MbatPathDictionary& dictionary,
                                                         int rounds = 2) const;

  // Building blocks, exposed for independent references in tests (out: dim() floats).
  void Atom(std::string_view tag, std::string_view token, float* out) const;
  void EncodeLeaf(const MbatLeaf& leaf, float* out) const;
  // enc(number x) by the portable scalar loop (EncodeLeaf uses an AVX2 loop with the same
  // bits when the CPU has it; tests compare the two).
  void EncodeNumberPortable(double x, float* out) const;
  // t(x) of the configured number transform.
  double NumberTransform(double x) const;
  // T_k (operator of object key k) and S (the array operator).
  std::shared_ptr<const mbat::OrthoOp> KeyOp(std::string_view key) const;
  const mbat::OrthoOp& SeqOp() const { return *seq_op_; }

 // Implementation detail (the parsed record tree), declared here for the .cc file only.
  struct Parsed;

 private:
  struct Workspace;
  explicit MbatJsonEncoder(const MbatConfig& config) : config_(config) {}
  void Init();
  absl::Status ParseRecord(std::string_view json, Parsed* parsed) const;
  absl::Status EncodeParsed(const Parsed& parsed, float* out, MbatEncodeInfo* info) const;
  void EncodeNode(const Parsed& p, uint32_t node, uint32_t depth, float* out,
                  Workspace& ws) const;
  // out = M_path x (forward binding, innermost operator first); x, out may alias.
  absl::Status BindPath(const std::vector<MbatPathStep>& steps, const float* x, float* out) const;
  absl::Status UnbindSteps(const std::vector<MbatPathStep>& steps, const float* vec,
                           float* out) const;
  void AddAtom(std::string_view tag, std::string_view token, float weight, float* acc) const;
  void AddBag(std::string_view tag, const std::vector<std::string>& grams, float weight,
              float* acc, float* tmp) const;

  MbatConfig config_;
  mbat::OpKind op_kind_ = mbat::OpKind::kSrht;
  std::unique_ptr<const mbat::OrthoOp> seq_op_;
  std::vector<float> number_anchor_;  // u_num
  std::vector<double> anchor_even_, anchor_odd_;  // u_num[2j], u_num[2j+1] (dim/2 each)
  std::vector<double> omega_;         // dim/2 rotation frequencies

  // LRU cache of key operators, bounded by bytes (regenerated on a miss: they are pure
  // functions of (seed, key)).
  struct CacheEntry {
    std::shared_ptr<const mbat::OrthoOp> op;
    std::list<std::string>::iterator lru;
  };
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, CacheEntry> cache_ ABSL_GUARDED_BY(cache_mu_);
  mutable std::list<std::string> lru_ ABSL_GUARDED_BY(cache_mu_);  // front = most recent
  mutable size_t cache_bytes_ ABSL_GUARDED_BY(cache_mu_) = 0;

  // Memo of bound leaves: "key\0<kind><value>" → y with T_key·enc(leaf) = y, as
  // OrthoOp::Apply computes it, so out += y gives the bits of ApplyAdd. Admitted on the
  // second sighting of a (key, leaf) (fingerprints in leaf_seen_, a racy hint that never
  // affects output); cleared when it reaches max_bound_leaves_ entries.
  bool AddBoundLeaf(const std::string& memo_key, float* out) const;
  void RememberBoundLeaf(const std::string& memo_key, uint64_t fingerprint, const float* y) const;
  bool SeenBefore(uint64_t fingerprint) const;
  mutable std::shared_mutex leaf_mu_;
  mutable std::unordered_map<std::string, std::vector<float>> bound_leaves_ ABSL_GUARDED_BY(leaf_mu_);
  size_t max_bound_leaves_ = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> leaf_seen_;  // kLeafSeenSlots fingerprints
};

// Exposed for tests: chamferdb's 64-bit token hash H(seed, tag, token) (hash id 1) and the
// sin/cos used by the numeric encoder (|x| ≤ 2^20 to full double accuracy; deterministic
// beyond).
uint64_t MbatHash(uint64_t seed, std::string_view tag, std::string_view token);
void MbatSinCos(double x, double* s, double* c);

}  // namespace chamferdb
