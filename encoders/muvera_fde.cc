#include "encoders/muvera_fde.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/rng.h"
#include "kernels/chamfer/chamfer.h"
#include "kernels/chamfer/dot.h"

namespace chamferdb {
namespace {

// Stream purposes for DeriveSeed(seed, repetition, purpose).
constexpr uint64_t kStreamSimHash = 1;
constexpr uint64_t kStreamProjection = 2;
constexpr uint64_t kStreamFinal = 3;

constexpr char kMagic[4] = {'C', 'F', 'D', 'E'};

// Inline bit count: the portable x86-64 baseline has no POPCNT, and std::popcount there is a
// libgcc call that cost ~7% of a document encode.
inline int Popcount32(uint32_t x) {
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0F0F0F0Fu;
  return static_cast<int>((x * 0x01010101u) >> 24);
}

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <typename T>
void PutVector(std::string* out, const std::vector<T>& v) {
  Put<uint64_t>(out, v.size());
  out->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  template <typename T>
  bool Get(T* v) {
    if (s_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, s_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  template <typename T>
  bool GetVector(std::vector<T>* v) {
    uint64_t n;
    if (!Get(&n) || n > (s_.size() - pos_) / sizeof(T)) return false;
    v->resize(n);
    if (n > 0) std::memcpy(v->data(), s_.data() + pos_, n * sizeof(T));  // data() may be null when empty
    pos_ += n * sizeof(T);
    return true;
  }
  bool done() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

uint32_t Crc(std::string_view s) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

}  // namespace

absl::Status FdeConfig::Validate() const {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError(std::move(msg)); };
  if (dim < 1 || dim > kMaxDim) return bad(fmt::format("dim {} is outside 1..{}", dim, kMaxDim));
  if (r_reps < 1 || r_reps > kMaxReps)
    return bad(fmt::format("fde.r_reps {} is outside 1..{}", r_reps, kMaxReps));
  if (k_sim > kMaxKSim) return bad(fmt::format("fde.k_sim {} is outside 0..{}", k_sim, kMaxKSim));
  if (d_proj < 1 || d_proj > dim)
    return bad(fmt::format("fde.d_proj {} is outside 1..dim ({}); d_proj == dim means no "
                           "inner projection",
                           d_proj, dim));
  if (raw_dim() > kMaxRawDim)
    return bad(fmt::format("fde.r_reps * 2^k_sim * d_proj = {} exceeds {}", raw_dim(), kMaxRawDim));
  if (d_final > kMaxOutputDim)
    return bad(fmt::format("fde.d_final {} exceeds {}", d_final, kMaxOutputDim));
  if (d_final == 0 && raw_dim() > kMaxOutputDim)
    return bad(fmt::format("FDE dimension r_reps * 2^k_sim * d_proj = {} exceeds {}; set "
                           "fde.d_final to project it down",
                           raw_dim(), kMaxOutputDim));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MuveraFdeEncoder>> MuveraFdeEncoder::Create(
    const FdeConfig& config) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  std::unique_ptr<MuveraFdeEncoder> enc(new MuveraFdeEncoder(config));
  enc->Generate();
  return enc;
}

void MuveraFdeEncoder::Generate() {
  const FdeConfig& c = config_;
  hyperplanes_.assign(size_t{c.r_reps} * c.k_sim * c.dim, 0.0f);
  for (uint32_t rep = 0; rep < c.r_reps; ++rep) {
    Rng rng(DeriveSeed(c.seed, rep, kStreamSimHash));
    // Hyperplane-major: all dim coordinates of hyperplane 0, then hyperplane 1, ...
    float* g = hyperplanes_.data() + size_t{rep} * c.k_sim * c.dim;
    for (size_t i = 0; i < size_t{c.k_sim} * c.dim; ++i) g[i] = static_cast<float>(rng.Normal());
  }
  proj_slot_.clear();
  proj_sign_.clear();
  if (!c.identity_projection()) {
    proj_slot_.resize(size_t{c.r_reps} * c.dim);
    proj_sign_.resize(size_t{c.r_reps} * c.dim);
    for (uint32_t rep = 0; rep < c.r_reps; ++rep) {
      Rng rng(DeriveSeed(c.seed, rep, kStreamProjection));
      for (uint32_t i = 0; i < c.dim; ++i) {
        proj_slot_[size_t{rep} * c.dim + i] = static_cast<uint32_t>(rng.UniformInt(c.d_proj));
        proj_sign_[size_t{rep} * c.dim + i] = static_cast<int8_t>(rng.Sign());
      }
    }
  }
  GroupProjection();
  final_slot_.clear();
  final_sign_.clear();
  if (c.d_final > 0) {
    const uint64_t raw = c.raw_dim();
    final_slot_.resize(raw);
    final_sign_.resize(raw);
    Rng rng(DeriveSeed(c.seed, 0, kStreamFinal));
    for (uint64_t i = 0; i < raw; ++i) {
      final_slot_[i] = static_cast<uint32_t>(rng.UniformInt(c.d_final));
      final_sign_[i] = static_cast<int8_t>(rng.Sign());
    }
  }
}

void MuveraFdeEncoder::GroupProjection() {
  const FdeConfig& c = config_;
  proj_order_.clear();
  proj_order_sign_.clear();
  proj_start_.clear();
  if (proj_slot_.empty()) return;
  proj_order_.resize(proj_slot_.size());
  proj_order_sign_.resize(proj_slot_.size());
  proj_start_.assign(size_t{c.r_reps} * (c.d_proj + 1), 0);
  for (uint32_t rep = 0; rep < c.r_reps; ++rep) {
    const uint32_t* slot = proj_slot_.data() + size_t{rep} * c.dim;
    uint32_t* start = proj_start_.data() + size_t{rep} * (c.d_proj + 1);
    for (uint32_t j = 0; j < c.dim; ++j) ++start[slot[j] + 1];
    for (uint32_t s = 0; s < c.d_proj; ++s) start[s + 1] += start[s];
    std::vector<uint32_t> fill(start, start + c.d_proj);
    for (uint32_t j = 0; j < c.dim; ++j) {  // ascending j: stable within each slot
      const size_t e = size_t{rep} * c.dim + fill[slot[j]]++;
      proj_order_[e] = j;
      proj_order_sign_[e] = proj_sign_[size_t{rep} * c.dim + j];
    }
  }
}

absl::Status MuveraFdeEncoder::EncodeDocument(FloatMatrixView tokens, float* out) const {
  return Encode(tokens, FdeEncodeOptions{.average = true, .fill_empty = true}, out);
}

absl::Status MuveraFdeEncoder::EncodeQuery(FloatMatrixView tokens, float* out) const {
  return Encode(tokens, FdeEncodeOptions{.average = false, .fill_empty = false}, out);
}

absl::Status MuveraFdeEncoder::Encode(FloatMatrixView tokens, const FdeEncodeOptions& options,
                                      float* out) const {
  const FdeConfig& c = config_;
  if (options.fill_empty && !options.average) {
    return absl::InvalidArgumentError(
        "fill_empty is for documents only: a query FDE must stay linear in its tokens");
  }
  if (tokens.rows == 0) return absl::InvalidArgumentError("token set is empty");
  if (tokens.cols != c.dim) {
    return absl::InvalidArgumentError(
        fmt::format("token dimension {} does not match the encoder's {}", tokens.cols, c.dim));
  }
  const size_t n = tokens.rows;
  const uint32_t k = c.k_sim;
  const uint32_t buckets = 1u << k;
  const uint32_t width = c.d_proj;
  const size_t raw = c.raw_dim();
  const size_t dim = c.dim;

  // Tokens are packed column-major (dim × n_pad, see kernels/chamfer/chamfer.h) so that
  // sketches and projections run as SIMD operations across tokens.
  const size_t n_pad = PackedColumns(n);
  thread_local std::vector<float> xt, sketch, yt, tm, raw_out;
  thread_local std::vector<uint32_t> bits, ids, counts;
  xt.resize(dim * n_pad);
  PackTokensF32(tokens.data, n, dim, xt.data());
  const size_t planes = size_t{c.r_reps} * k;
  sketch.resize(planes * n_pad);
  SketchPacked(xt.data(), n_pad, dim, hyperplanes_.data(), planes, sketch.data());
  float* fde = out;
  if (c.d_final > 0) {
    raw_out.assign(raw, 0.0f);
    fde = raw_out.data();
  } else {
    std::fill(out, out + raw, 0.0f);
  }
  bits.resize(n_pad);
  ids.resize(n);
  tm.resize(n * width);
  counts.resize(buckets);
  if (!c.identity_projection()) yt.resize(size_t{width} * n_pad);

  for (uint32_t rep = 0; rep < c.r_reps; ++rep) {
    float* block0 = fde + size_t{rep} * buckets * width;
    std::fill(counts.begin(), counts.end(), 0u);
    // Sign bits hyperplane by hyperplane, contiguous across tokens (vectorizes).
    std::fill(bits.begin(), bits.end(), 0u);
    for (uint32_t j = 0; j < k; ++j) {
      const float* row = sketch.data() + (size_t{rep} * k + j) * n_pad;
      for (size_t i = 0; i < n_pad; ++i) bits[i] = (bits[i] << 1) | (row[i] > 0.0f ? 1u : 0u);
    }
    for (size_t i = 0; i < n; ++i) {
      ids[i] = BucketFromSignBits(bits[i]);
      ++counts[ids[i]];
    }
    // Projected tokens of this repetition: y_t(i) at proj[t · n_pad + i].
    const float* proj = xt.data();
    if (!c.identity_projection()) {
      ProjectPackedGrouped(xt.data(), n_pad, proj_order_.data() + size_t{rep} * dim,
                           proj_order_sign_.data() + size_t{rep} * dim,
                           proj_start_.data() + size_t{rep} * (width + 1), width, yt.data());
      proj = yt.data();
    }
    // Token-major copy (tm[i · width + t]) so each token adds one contiguous row to its
    // block. Every block coordinate still sums its tokens in ascending order.
    for (uint32_t t = 0; t < width; ++t) {
      const float* row = proj + size_t{t} * n_pad;
      for (size_t i = 0; i < n; ++i) tm[i * width + t] = row[i];
    }
    for (size_t i = 0; i < n; ++i) {
      float* dst = block0 + size_t{ids[i]} * width;
      const float* src = tm.data() + i * width;
      for (uint32_t t = 0; t < width; ++t) dst[t] += src[t];
    }
    if (!options.average) continue;
    for (uint32_t id = 0; id < buckets; ++id) {
      float* block = block0 + size_t{id} * width;
      if (counts[id] > 0) {
        const float inv = 1.0f / static_cast<float>(counts[id]);
        for (uint32_t t = 0; t < width; ++t) block[t] *= inv;
      } else if (options.fill_empty && k > 0) {
        // The first point at the minimum Hamming distance. The bucket is empty, so no
        // point is at distance 0 and the first point at distance 1 is the answer: stop there.
        const uint32_t pattern = SignBitsFromBucket(id);
        size_t best = 0;
        int best_dist = 33;
        for (size_t i = 0; i < n; ++i) {
          const int dist = Popcount32(bits[i] ^ pattern);
          if (dist < best_dist) {
            best_dist = dist;
            best = i;
            if (dist == 1) break;
          }
        }
        std::copy_n(tm.data() + best * width, width, block);
      }
    }
  }

  if (c.d_final > 0) {
    std::fill(out, out + c.d_final, 0.0f);
    // ±1 · x is exact, so the multiply gives the same bits as a branch on the sign (which
    // mispredicts half the time).
    for (size_t i = 0; i < raw; ++i) {
      out[final_slot_[i]] += static_cast<float>(final_sign_[i]) * fde[i];
    }
  }
  return absl::OkStatus();
}

std::string MuveraFdeEncoder::Serialize() const {
  std::string body;
  body.append(kMagic, 4);
  Put<uint32_t>(&body, kFdeFormatVersion);
  Put(&body, config_.dim);
  Put(&body, config_.r_reps);
  Put(&body, config_.k_sim);
  Put(&body, config_.d_proj);
  Put(&body, config_.d_final);
  Put(&body, config_.seed);
  PutVector(&body, hyperplanes_);
  PutVector(&body, proj_slot_);
  PutVector(&body, proj_sign_);
  PutVector(&body, final_slot_);
  PutVector(&body, final_sign_);
  Put<uint32_t>(&body, Crc(body));
  return body;
}

absl::StatusOr<std::unique_ptr<MuveraFdeEncoder>> MuveraFdeEncoder::Deserialize(
    std::string_view blob) {
  if (blob.size() < 12 || std::memcmp(blob.data(), kMagic, 4) != 0) {
    return absl::DataLossError("FDE encoder parameters: bad magic or truncated");
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, blob.data() + blob.size() - 4, 4);
  const std::string_view body = blob.substr(0, blob.size() - 4);
  if (Crc(body) != stored_crc) {
    return absl::DataLossError("FDE encoder parameters: checksum mismatch (corrupt)");
  }
  Reader r(body.substr(4));
  uint32_t version;
  FdeConfig c;
  if (!r.Get(&version)) return absl::DataLossError("FDE encoder parameters: truncated");
  if (version != kFdeFormatVersion) {
    return absl::FailedPreconditionError(fmt::format(
        "FDE encoder parameters have format version {}, this build uses {}; re-create the "
        "collection or run a matching build",
        version, kFdeFormatVersion));
  }
  std::unique_ptr<MuveraFdeEncoder> enc(new MuveraFdeEncoder(c));
  if (!r.Get(&c.dim) || !r.Get(&c.r_reps) || !r.Get(&c.k_sim) || !r.Get(&c.d_proj) ||
      !r.Get(&c.d_final) || !r.Get(&c.seed) || !r.GetVector(&enc->hyperplanes_) ||
      !r.GetVector(&enc->proj_slot_) || !r.GetVector(&enc->proj_sign_) ||
      !r.GetVector(&enc->final_slot_) || !r.GetVector(&enc->final_sign_) || !r.done()) {
    return absl::DataLossError("FDE encoder parameters: truncated or malformed");
  }
  if (absl::Status s = c.Validate(); !s.ok()) {
    return absl::DataLossError("FDE encoder parameters: stored config invalid: " +
                               std::string(s.message()));
  }
  auto fresh = Create(c);
  if (!fresh.ok()) return fresh.status();
  const MuveraFdeEncoder& f = **fresh;
  if (f.hyperplanes_ != enc->hyperplanes_ || f.proj_slot_ != enc->proj_slot_ ||
      f.proj_sign_ != enc->proj_sign_ || f.final_slot_ != enc->final_slot_ ||
      f.final_sign_ != enc->final_sign_) {
    return absl::FailedPreconditionError(
        "FDE encoder parameters differ from what this build generates for the stored config "
        "(random generator changed without a format version bump); refusing to open");
  }
  enc->config_ = c;
  enc->GroupProjection();
  return enc;
}

}  // namespace chamferdb
