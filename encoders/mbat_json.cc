#include "encoders/mbat_json.h"

#include "common/json_depth.h"

#include <fmt/format.h>
#include <immintrin.h>
#include <omp.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/cpu_features.h"
#include "common/rng.h"

namespace chamferdb {
namespace {

using Json = nlohmann::json;

constexpr char kMagic[4] = {'C', 'M', 'B', 'J'};
// Encoded by Serialize and re-encoded by Deserialize to detect generator changes.
constexpr std::string_view kCheckRecord =
    R"({"a":[1.5,"x",true,null,{}],"b":{"c":"y","d":[],"e":-40}})";
constexpr double kCheckTolerance = 1e-4;
// |t(x)| is clamped here: beyond it the kernel is ~0 against every ordinary value anyway.
constexpr double kMaxTheta = 1e5;
// Key-operator cache budget (at least 16 operators are always kept).
constexpr size_t kOpCacheBytes = size_t{64} << 20;
// Bound-leaf memo budget (vectors of dim floats) and its admission fingerprint table.
constexpr size_t kLeafMemoBytes = size_t{16} << 20;
constexpr size_t kLeafSeenSlots = 1 << 14;

// ---------------------------------------------------------------------------------------
// Hash (hash id 1): length-prefixed fields, little-endian 8-byte words, SplitMix64 mixing.

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Hasher {
  uint64_t h;
  void Absorb(uint64_t w) { h = Mix((h + 0x9e3779b97f4a7c15ULL) ^ w); }
  void Field(std::string_view s) {
    Absorb(s.size());
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w = 0;
      for (int b = 0; b < 8; ++b) w |= uint64_t{static_cast<unsigned char>(s[i + b])} << (8 * b);
      Absorb(w);
    }
    if (i < s.size()) {
      uint64_t w = 0;
      for (size_t b = 0; i + b < s.size(); ++b) {
        w |= uint64_t{static_cast<unsigned char>(s[i + b])} << (8 * b);
      }
      Absorb(w);
    }
  }
};

// ---------------------------------------------------------------------------------------
// Small vector helpers (fixed order, no FMA contraction: -ffp-contract=off).

double Dot(const float* a, const float* b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

void Axpy(float a, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void ScaleToUnit(float* x, size_t n) {
  const double norm = std::sqrt(Dot(x, x, n));
  if (norm > 0) {
    const float inv = static_cast<float>(1.0 / norm);
    for (size_t i = 0; i < n; ++i) x[i] *= inv;
  }
}

// Nesting depth by a flat scan: common/json_depth.h.
uint32_t FlatDepth(std::string_view text, uint32_t limit) { return JsonNestingDepth(text, limit); }

bool IsBareKeyChar(unsigned char c) {
  return c >= 0x20 && c != '.' && c != '[' && c != ']' && c != '"' && c != '\\' && c != 0x7f;
}

void AppendKey(std::string* out, const std::string& key, bool first) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return IsBareKeyChar(static_cast<unsigned char>(c));
  });
  if (bare) {
    if (!first) out->push_back('.');
    out->append(key);
  } else {
    out->push_back('[');
    out->append(Json(key).dump());
    out->push_back(']');
  }
}

std::vector<std::string> Tokens(std::string_view s) {
  std::vector<std::string> toks;
  std::string cur;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    const bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c >= 0x80;
    if (word) {
      cur.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : ch);
    } else if (!cur.empty()) {
      toks.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) toks.push_back(std::move(cur));
  return toks;
}

// Character 3-grams of " " + lowercase(s) + " " over UTF-8 code points (s is valid UTF-8).
std::vector<std::string> Trigrams(std::string_view s) {
  std::string padded = " ";
  for (char ch : s) padded.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch);
  padded.push_back(' ');
  std::vector<size_t> starts;
  for (size_t i = 0; i < padded.size(); ++i) {
    if ((static_cast<unsigned char>(padded[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  starts.push_back(padded.size());
  const size_t m = starts.size() - 1;  // code points
  std::vector<std::string> grams;
  if (m < 3) {
    grams.push_back(padded);
    return grams;
  }
  for (size_t i = 0; i + 3 <= m; ++i) grams.push_back(padded.substr(starts[i], starts[i + 3] - starts[i]));
  return grams;
}

uint32_t Crc(std::string_view s) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
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
  bool done() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

// -----------------------------------------------------------------------------------------
// Public helpers.

uint64_t MbatHash(uint64_t seed, std::string_view tag, std::string_view token) {
  Hasher h{Mix(seed ^ 0x6d6261742d6a736fULL)};  // "mbat-jso"
  h.Field(tag);
  h.Field(token);
  return Mix(h.h ^ 0x0100000000000000ULL);
}

namespace {

// Cody–Waite reduction by π/2 in four parts (fdlibm's constants: the leading parts have
// trailing zero bits, so k·part is exact for |k| < 2^20), then fdlibm's kernel polynomials
// on |r| ≤ π/4, and a branch-free quadrant fix-up. Rounding k by the 1.5·2^52 trick is
// exact round-to-nearest-even for |x·2/π| < 2^51. Only IEEE +, −, × (no libm), so results
// are identical on every platform; inlined so the numeric encoder's loop vectorizes.
inline void SinCosInline(double x, double* s, double* c) {
  constexpr double kTwoOverPi = 6.36619772367581382433e-01;
  constexpr double kPio2_1 = 1.57079632673412561417e+00;
  constexpr double kPio2_2 = 6.07710050630396597660e-11;
  constexpr double kPio2_3 = 2.02226624871116645580e-21;
  constexpr double kPio2_3t = 8.47842766036889956997e-32;
  constexpr double kRound = 6755399441055744.0;  // 1.5 · 2^52
  const double k = (x * kTwoOverPi + kRound) - kRound;
  const double r = (((x - k * kPio2_1) - k * kPio2_2) - k * kPio2_3) - k * kPio2_3t;
  const double z = r * r;
  const double sr =
      r + r * z *
              (-1.66666666666666324348e-01 +
               z * (8.33333333332248946124e-03 +
                    z * (-1.98412698298579493134e-04 +
                         z * (2.75573137070700676789e-06 +
                              z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))));
  const double cr =
      1.0 - 0.5 * z +
      z * z *
          (4.16666666666666019037e-02 +
           z * (-1.38888888888741095749e-03 +
                z * (2.48015872894767294178e-05 +
                     z * (-2.75573143513906633035e-07 +
                          z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))));
  const int64_t q = static_cast<int64_t>(k) & 3;
  const bool swap = (q & 1) != 0;
  const double sign_s = (q & 2) ? -1.0 : 1.0;
  const double sign_c = ((q + 1) & 2) ? -1.0 : 1.0;
  *s = sign_s * (swap ? cr : sr);
  *c = sign_c * (swap ? sr : cr);
}

// The numeric encoder's rotation, 4 pairs at a time: exactly SinCosInline's operations in
// the same order (no FMA: this function is not compiled for "fma"), so the bits match the
// portable loop. The quadrant k mod 4 is read from the low mantissa bits of x·2/π + 1.5·2^52.
__attribute__((target("avx2"))) void RotateAnchorAvx2(const double* omega, const double* ae,
                                                      const double* ao, double theta,
                                                      size_t half, float* out) {
  const __m256d two_over_pi = _mm256_set1_pd(6.36619772367581382433e-01);
  const __m256d round = _mm256_set1_pd(6755399441055744.0);
  const __m256d p1 = _mm256_set1_pd(1.57079632673412561417e+00);
  const __m256d p2 = _mm256_set1_pd(6.07710050630396597660e-11);
  const __m256d p3 = _mm256_set1_pd(2.02226624871116645580e-21);
  const __m256d p3t = _mm256_set1_pd(8.47842766036889956997e-32);
  const __m256d th = _mm256_set1_pd(theta);
  const __m256i one = _mm256_set1_epi64x(1), two = _mm256_set1_epi64x(2);
  for (size_t j = 0; j < half; j += 4) {
    const __m256d x = _mm256_mul_pd(_mm256_loadu_pd(omega + j), th);
    const __m256d t = _mm256_add_pd(_mm256_mul_pd(x, two_over_pi), round);
    const __m256d k = _mm256_sub_pd(t, round);
    const __m256i q = _mm256_castpd_si256(t);
    __m256d r = _mm256_sub_pd(x, _mm256_mul_pd(k, p1));
    r = _mm256_sub_pd(r, _mm256_mul_pd(k, p2));
    r = _mm256_sub_pd(r, _mm256_mul_pd(k, p3));
    r = _mm256_sub_pd(r, _mm256_mul_pd(k, p3t));
    const __m256d z = _mm256_mul_pd(r, r);
    __m256d ps = _mm256_add_pd(_mm256_set1_pd(-2.50507602534068634195e-08), _mm256_mul_pd(z, _mm256_set1_pd(1.58969099521155010221e-10)));
    ps = _mm256_add_pd(_mm256_set1_pd(2.75573137070700676789e-06), _mm256_mul_pd(z, ps));
    ps = _mm256_add_pd(_mm256_set1_pd(-1.98412698298579493134e-04), _mm256_mul_pd(z, ps));
    ps = _mm256_add_pd(_mm256_set1_pd(8.33333333332248946124e-03), _mm256_mul_pd(z, ps));
    ps = _mm256_add_pd(_mm256_set1_pd(-1.66666666666666324348e-01), _mm256_mul_pd(z, ps));
    const __m256d sr = _mm256_add_pd(r, _mm256_mul_pd(_mm256_mul_pd(r, z), ps));
    __m256d pc = _mm256_add_pd(_mm256_set1_pd(2.08757232129817482790e-09), _mm256_mul_pd(z, _mm256_set1_pd(-1.13596475577881948265e-11)));
    pc = _mm256_add_pd(_mm256_set1_pd(-2.75573143513906633035e-07), _mm256_mul_pd(z, pc));
    pc = _mm256_add_pd(_mm256_set1_pd(2.48015872894767294178e-05), _mm256_mul_pd(z, pc));
    pc = _mm256_add_pd(_mm256_set1_pd(-1.38888888888741095749e-03), _mm256_mul_pd(z, pc));
    pc = _mm256_add_pd(_mm256_set1_pd(4.16666666666666019037e-02), _mm256_mul_pd(z, pc));
    const __m256d cr = _mm256_add_pd(_mm256_sub_pd(_mm256_set1_pd(1.0), _mm256_mul_pd(_mm256_set1_pd(0.5), z)),
                                     _mm256_mul_pd(_mm256_mul_pd(z, z), pc));
    const __m256d swap = _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(q, one), one));
    const __m256d sign_s = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_and_si256(q, two), 62));
    const __m256d sign_c = _mm256_castsi256_pd(
        _mm256_slli_epi64(_mm256_and_si256(_mm256_add_epi64(q, one), two), 62));
    const __m256d sv = _mm256_xor_pd(_mm256_blendv_pd(sr, cr, swap), sign_s);
    const __m256d cv = _mm256_xor_pd(_mm256_blendv_pd(cr, sr, swap), sign_c);
    const __m256d a = _mm256_loadu_pd(ae + j), b = _mm256_loadu_pd(ao + j);
    const __m128 re = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_mul_pd(cv, a), _mm256_mul_pd(sv, b)));
    const __m128 im = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(sv, a), _mm256_mul_pd(cv, b)));
    _mm_storeu_ps(out + 2 * j, _mm_unpacklo_ps(re, im));
    _mm_storeu_ps(out + 2 * j + 4, _mm_unpackhi_ps(re, im));
  }
}

}  // namespace

void MbatSinCos(double x, double* s, double* c) { SinCosInline(x, s, c); }

std::string_view MbatOpKindName(MbatOpKind k) {
  switch (k) {
    case MbatOpKind::kSrht: return "srht";
    case MbatOpKind::kDenseHaar: return "dense_haar";
    case MbatOpKind::kSignedPerm: return "signed_perm";
  }
  return "?";
}
std::string_view MbatSeqFromName(MbatSeqFrom k) {
  return k == MbatSeqFrom::kStart ? "start" : "end";
}
std::string_view MbatStringModeName(MbatStringMode k) {
  switch (k) {
    case MbatStringMode::kExact: return "exact";
    case MbatStringMode::kTokens: return "tokens";
    case MbatStringMode::kTrigram: return "trigram";
  }
  return "?";
}
std::string_view MbatNumTransformName(MbatNumTransform k) {
  return k == MbatNumTransform::kSignedLog1p ? "signed_log1p" : "linear";
}
std::string_view MbatNormalizeName(MbatNormalize k) {
  return k == MbatNormalize::kFinal ? "final" : "per_node";
}

absl::Status MbatConfig::Validate() const {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError(std::move(msg)); };
  if (dim < 64 || dim > 16384 || (dim & (dim - 1)) != 0) {
    return bad(fmt::format("mbat.dim {} must be a power of two in 64..16384", dim));
  }
  if (static_cast<uint8_t>(op_kind) > 2) return bad("mbat.op_kind is not one of srht, dense_haar, signed_perm");
  if (op_kind == MbatOpKind::kDenseHaar && dim > 2048) {
    return bad(fmt::format("mbat.dim {} is too large for op_kind dense_haar (max 2048: "
                           "O(D^3) creation, D^2 doubles per key)", dim));
  }
  if (static_cast<uint8_t>(seq_from) > 1) return bad("mbat.seq_from is not start or end");
  if (static_cast<uint8_t>(str_mode) > 2) return bad("mbat.str_mode is not exact, tokens or trigram");
  if (static_cast<uint8_t>(num_transform) > 1) return bad("mbat.num_transform is not signed_log1p or linear");
  if (static_cast<uint8_t>(normalize) > 1) return bad("mbat.normalize is not final or per_node");
  auto weight = [&](const char* name, float w) -> absl::Status {
    if (!(w >= 0.0f && w <= 100.0f)) return bad(fmt::format("mbat.{} {} is outside 0..100", name, w));
    return absl::OkStatus();
  };
  if (auto s = weight("beta_bag", beta_bag); !s.ok()) return s;
  if (auto s = weight("gamma_keys", gamma_keys); !s.ok()) return s;
  if (auto s = weight("w_tok", w_tok); !s.ok()) return s;
  if (auto s = weight("w_tri", w_tri); !s.ok()) return s;
  if (!(num_scale > 0.0 && std::isfinite(num_scale))) {
    return bad(fmt::format("mbat.num_scale {} must be finite and > 0", num_scale));
  }
  if (!(num_sigma >= 1e-3 && num_sigma <= 1e3)) {
    return bad(fmt::format("mbat.num_sigma {} is outside 0.001..1000", num_sigma));
  }
  if (limits.max_record_bytes < 1 || limits.max_record_bytes > (uint64_t{1} << 30)) {
    return bad(fmt::format("mbat.limits.max_record_bytes {} is outside 1..2^30", limits.max_record_bytes));
  }
  if (limits.max_depth < 1 || limits.max_depth > 512) {
    return bad(fmt::format("mbat.limits.max_depth {} is outside 1..512", limits.max_depth));
  }
  if (limits.max_nodes < 1 || limits.max_nodes > 10000000) {
    return bad(fmt::format("mbat.limits.max_nodes {} is outside 1..10^7", limits.max_nodes));
  }
  if (limits.max_array_length < 1 || limits.max_array_length > 10000000) {
    return bad(fmt::format("mbat.limits.max_array_length {} is outside 1..10^7", limits.max_array_length));
  }
  return absl::OkStatus();
}

namespace {

template <typename E>
absl::Status ParseEnum(const Json& v, const char* field, std::initializer_list<E> values,
                       std::string_view (*name)(E), E* out) {
  if (!v.is_string()) return absl::InvalidArgumentError(fmt::format("mbat.{} must be a string", field));
  const std::string s = v.get<std::string>();
  std::string allowed;
  for (E e : values) {
    if (name(e) == s) {
      *out = e;
      return absl::OkStatus();
    }
    if (!allowed.empty()) allowed += ", ";
    allowed += std::string(name(e));
  }
  return absl::InvalidArgumentError(fmt::format("mbat.{} \"{}\" is not one of {}", field, s, allowed));
}

template <typename T>
absl::Status ParseNumber(const Json& v, const char* field, T* out) {
  if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer() || (v.is_number_unsigned() ? false : v.get<int64_t>() < 0)) {
      return absl::InvalidArgumentError(fmt::format("mbat.{} must be a non-negative integer", field));
    }
    const uint64_t u = v.get<uint64_t>();
    if (u > std::numeric_limits<T>::max()) {
      return absl::InvalidArgumentError(fmt::format("mbat.{} {} is too large", field, u));
    }
    *out = static_cast<T>(u);
  } else {
    if (!v.is_number()) return absl::InvalidArgumentError(fmt::format("mbat.{} must be a number", field));
    *out = static_cast<T>(v.get<double>());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MbatConfig> MbatConfigFromJson(std::string_view text) {
  if (text.size() > 65536) return absl::InvalidArgumentError("mbat config is over 64 KiB");
  if (FlatDepth(text, 8) > 8) return absl::InvalidArgumentError("mbat config nests too deeply");
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("mbat config is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("mbat config must be a JSON object");
  MbatConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const Json& v = it.value();
    absl::Status s;
    if (k == "dim") s = ParseNumber(v, "dim", &c.dim);
    else if (k == "seed") s = ParseNumber(v, "seed", &c.seed);
    else if (k == "op_kind")
      s = ParseEnum(v, "op_kind", {MbatOpKind::kSrht, MbatOpKind::kDenseHaar, MbatOpKind::kSignedPerm},
                    MbatOpKindName, &c.op_kind);
    else if (k == "seq_from")
      s = ParseEnum(v, "seq_from", {MbatSeqFrom::kStart, MbatSeqFrom::kEnd}, MbatSeqFromName, &c.seq_from);
    else if (k == "beta_bag") s = ParseNumber(v, "beta_bag", &c.beta_bag);
    else if (k == "gamma_keys") s = ParseNumber(v, "gamma_keys", &c.gamma_keys);
    else if (k == "str_mode")
      s = ParseEnum(v, "str_mode",
                    {MbatStringMode::kExact, MbatStringMode::kTokens, MbatStringMode::kTrigram},
                    MbatStringModeName, &c.str_mode);
    else if (k == "w_tok") s = ParseNumber(v, "w_tok", &c.w_tok);
    else if (k == "w_tri") s = ParseNumber(v, "w_tri", &c.w_tri);
    else if (k == "num_transform")
      s = ParseEnum(v, "num_transform", {MbatNumTransform::kSignedLog1p, MbatNumTransform::kLinear},
                    MbatNumTransformName, &c.num_transform);
    else if (k == "num_scale") s = ParseNumber(v, "num_scale", &c.num_scale);
    else if (k == "num_sigma") s = ParseNumber(v, "num_sigma", &c.num_sigma);
    else if (k == "normalize")
      s = ParseEnum(v, "normalize", {MbatNormalize::kFinal, MbatNormalize::kPerNode},
                    MbatNormalizeName, &c.normalize);
    else if (k == "limits") {
      if (!v.is_object()) return absl::InvalidArgumentError("mbat.limits must be an object");
      for (auto lt = v.begin(); lt != v.end(); ++lt) {
        const std::string& lk = lt.key();
        if (lk == "max_record_bytes") s = ParseNumber(lt.value(), "limits.max_record_bytes", &c.limits.max_record_bytes);
        else if (lk == "max_depth") s = ParseNumber(lt.value(), "limits.max_depth", &c.limits.max_depth);
        else if (lk == "max_nodes") s = ParseNumber(lt.value(), "limits.max_nodes", &c.limits.max_nodes);
        else if (lk == "max_array_length")
          s = ParseNumber(lt.value(), "limits.max_array_length", &c.limits.max_array_length);
        else s = absl::InvalidArgumentError(fmt::format("unknown field mbat.limits.{}", lk));
        if (!s.ok()) return s;
      }
    } else {
      s = absl::InvalidArgumentError(fmt::format("unknown field mbat.{}", k));
    }
    if (!s.ok()) return s;
  }
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return c;
}

std::string MbatConfigToJson(const MbatConfig& c) {
  Json j;
  j["dim"] = c.dim;
  j["seed"] = c.seed;
  j["op_kind"] = std::string(MbatOpKindName(c.op_kind));
  j["seq_from"] = std::string(MbatSeqFromName(c.seq_from));
  j["beta_bag"] = c.beta_bag;
  j["gamma_keys"] = c.gamma_keys;
  j["str_mode"] = std::string(MbatStringModeName(c.str_mode));
  j["w_tok"] = c.w_tok;
  j["w_tri"] = c.w_tri;
  j["num_transform"] = std::string(MbatNumTransformName(c.num_transform));
  j["num_scale"] = c.num_scale;
  j["num_sigma"] = c.num_sigma;
  j["normalize"] = std::string(MbatNormalizeName(c.normalize));
  j["limits"] = {{"max_record_bytes", c.limits.max_record_bytes},
                 {"max_depth", c.limits.max_depth},
                 {"max_nodes", c.limits.max_nodes},
                 {"max_array_length", c.limits.max_array_length}};
  return j.dump();
}

// -----------------------------------------------------------------------------------------
// Paths.

absl::StatusOr<std::vector<MbatPathStep>> ParseMbatPath(std::string_view path) {
  auto err = [&](size_t pos, std::string what) {
    return absl::InvalidArgumentError(
        fmt::format("path \"{}\": {} at offset {}", std::string(path.substr(0, 256)), what, pos));
  };
  if (path.empty()) return absl::InvalidArgumentError("path is empty");
  if (path.size() > 4096) return absl::InvalidArgumentError("path is over 4096 bytes");
  std::vector<MbatPathStep> steps;
  size_t pos = 0;
  bool after_dot = false;
  while (pos < path.size()) {
    const unsigned char c = static_cast<unsigned char>(path[pos]);
    if (c == '[') {
      if (after_dot) return err(pos, "expected a key after '.'");
      ++pos;
      if (pos < path.size() && path[pos] == '"') {
        size_t end = pos + 1;
        bool esc = false;
        for (; end < path.size(); ++end) {
          if (esc) {
            esc = false;
          } else if (path[end] == '\\') {
            esc = true;
          } else if (path[end] == '"') {
            break;
          }
        }
        if (end >= path.size()) return err(pos, "unterminated quoted key");
        Json k = Json::parse(path.substr(pos, end + 1 - pos), nullptr, false);
        if (k.is_discarded() || !k.is_string()) return err(pos, "invalid quoted key");
        pos = end + 1;
        if (pos >= path.size() || path[pos] != ']') return err(pos, "expected ']' after quoted key");
        ++pos;
        steps.push_back(MbatPathStep{false, k.get<std::string>(), 0});
      } else {
        uint64_t v = 0;
        const size_t start = pos;
        while (pos < path.size() && path[pos] >= '0' && path[pos] <= '9') {
          v = v * 10 + static_cast<uint64_t>(path[pos] - '0');
          if (v > 0xffffffffULL) return err(start, "array index too large");
          ++pos;
        }
        if (pos == start) return err(pos, "expected an array index or a quoted key after '['");
        if (pos >= path.size() || path[pos] != ']') return err(pos, "expected ']'");
        ++pos;
        steps.push_back(MbatPathStep{true, "", static_cast<uint32_t>(v)});
      }
    } else if (c == '.') {
      if (steps.empty() || after_dot) return err(pos, "empty key");
      after_dot = true;
      ++pos;
      continue;
    } else if (IsBareKeyChar(c)) {
      if (!steps.empty() && !after_dot) return err(pos, "expected '.' or '[' before a key");
      const size_t start = pos;
      while (pos < path.size() && IsBareKeyChar(static_cast<unsigned char>(path[pos]))) ++pos;
      steps.push_back(MbatPathStep{false, std::string(path.substr(start, pos - start)), 0});
    } else {
      return err(pos, fmt::format("unexpected character '{}'", static_cast<char>(c)));
    }
    after_dot = false;
  }
  if (after_dot) return err(path.size(), "path ends with '.'");
  return steps;
}

std::string MbatPathPattern(const std::vector<MbatPathStep>& steps) {
  std::string out;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].is_index) {
      out += "[]";
    } else {
      AppendKey(&out, steps[i].key, i == 0);
    }
  }
  return out;
}

std::string MbatLeaf::ToJson() const {
  switch (type) {
    case Type::kNull: return "null";
    case Type::kTrue: return "true";
    case Type::kFalse: return "false";
    case Type::kEmptyObject: return "{}";
    case Type::kEmptyArray: return "[]";
    case Type::kString: return Json(str).dump();
    case Type::kNumber:
      if (number == std::trunc(number) && std::fabs(number) < 9007199254740992.0) {
        return fmt::format("{}", static_cast<int64_t>(number));
      }
      return Json(number).dump();
  }
  return "null";
}

void MbatPathDictionary::Add(const std::vector<MbatPathAtom>& atoms) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const MbatPathAtom& a : atoms) {
    Values& v = paths_[a.path];
    if (v.leaves.size() >= max_values_per_path_) continue;
    std::string key = a.value.ToJson();
    if (v.index.emplace(std::move(key), v.leaves.size()).second) v.leaves.push_back(a.value);
  }
}

std::vector<MbatLeaf> MbatPathDictionary::Candidates(const std::string& pattern) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = paths_.find(pattern);
  if (it == paths_.end()) return {};
  return it->second.leaves;
}

size_t MbatPathDictionary::num_paths() const {
  std::lock_guard<std::mutex> lock(mu_);
  return paths_.size();
}

// -----------------------------------------------------------------------------------------
// Parsing into a flat tree (destruction is never recursive).

struct MbatJsonEncoder::Parsed {
  enum class Kind : uint8_t { kNull, kTrue, kFalse, kNumber, kString, kObject, kArray };
  struct Node {
    Kind kind = Kind::kNull;
    uint32_t parent = UINT32_MAX;
    double number = 0.0;
    std::string str;
    std::vector<uint32_t> kids;
    std::vector<std::string> keys;  // objects: parallel to kids, sorted after parsing
  };
  std::vector<Node> nodes;  // nodes[0] is the root
  uint32_t max_depth = 0;   // containers on the deepest path
  uint32_t num_leaves = 0;

  static bool IsLeaf(const Node& n) {
    return (n.kind != Kind::kObject && n.kind != Kind::kArray) || n.kids.empty();
  }
  // "$.a[3].b" for error messages.
  std::string PathOf(uint32_t node) const {
    std::vector<std::string> parts;
    while (nodes[node].parent != UINT32_MAX) {
      const Node& p = nodes[nodes[node].parent];
      const size_t pos = static_cast<size_t>(std::find(p.kids.begin(), p.kids.end(), node) - p.kids.begin());
      if (p.kind == Kind::kArray) {
        parts.push_back(fmt::format("[{}]", pos));
      } else {
        std::string k;
        AppendKey(&k, p.keys[pos], false);
        parts.push_back(std::move(k));
      }
      node = nodes[node].parent;
    }
    std::string out = "$";
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) out += *it;
    return out;
  }
  MbatLeaf Leaf(uint32_t i) const {
    const Node& n = nodes[i];
    MbatLeaf l;
    switch (n.kind) {
      case Kind::kNull: l.type = MbatLeaf::Type::kNull; break;
      case Kind::kTrue: l.type = MbatLeaf::Type::kTrue; break;
      case Kind::kFalse: l.type = MbatLeaf::Type::kFalse; break;
      case Kind::kNumber: l.type = MbatLeaf::Type::kNumber; l.number = n.number; break;
      case Kind::kString: l.type = MbatLeaf::Type::kString; l.str = n.str; break;
      case Kind::kObject: l.type = MbatLeaf::Type::kEmptyObject; break;
      case Kind::kArray: l.type = MbatLeaf::Type::kEmptyArray; break;
    }
    return l;
  }
};

namespace {

using Parsed = MbatJsonEncoder::Parsed;

class TreeBuilder final : public nlohmann::json_sax<Json> {
 public:
  TreeBuilder(const MbatLimits& limits, Parsed* out) : limits_(limits), out_(out) {}
  absl::Status status() const { return status_; }

  bool null() override { return Add(Parsed::Kind::kNull); }
  bool boolean(bool v) override { return Add(v ? Parsed::Kind::kTrue : Parsed::Kind::kFalse); }
  bool number_integer(number_integer_t v) override { return AddNumber(static_cast<double>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return AddNumber(static_cast<double>(v)); }
  bool number_float(number_float_t v, const string_t& text) override {
    if (!std::isfinite(v)) {
      return Fail(absl::InvalidArgumentError(fmt::format(
          "number {} at {} is outside the double range", text.substr(0, 64), PathHere())));
    }
    return AddNumber(v);
  }
  bool string(string_t& s) override {
    if (!Add(Parsed::Kind::kString)) return false;
    out_->nodes.back().str = std::move(s);
    return true;
  }
  bool binary(binary_t&) override {
    return Fail(absl::InvalidArgumentError("binary values are not JSON"));
  }
  bool start_object(std::size_t) override { return Open(Parsed::Kind::kObject); }
  bool key(string_t& k) override {
    pending_key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return Open(Parsed::Kind::kArray); }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    if (const size_t p = what.find("] "); p != std::string::npos && what.rfind("[json", 0) == 0) {
      what = what.substr(p + 2);
    }
    return Fail(absl::InvalidArgumentError(
        fmt::format("record is not valid JSON (byte {}): {}", position, what)));
  }

 private:
  bool Fail(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
    return false;
  }
  std::string PathHere() const {
    return stack_.empty() ? std::string("$") : out_->PathOf(stack_.back());
  }
  bool Add(Parsed::Kind kind) {
    if (out_->nodes.size() >= limits_.max_nodes) {
      return Fail(absl::ResourceExhaustedError(
          fmt::format("record has more than {} JSON values (limits.max_nodes)", limits_.max_nodes)));
    }
    const uint32_t idx = static_cast<uint32_t>(out_->nodes.size());
    if (!stack_.empty()) {
      Parsed::Node& p = out_->nodes[stack_.back()];
      if (p.kind == Parsed::Kind::kArray && p.kids.size() >= limits_.max_array_length) {
        return Fail(absl::ResourceExhaustedError(
            fmt::format("array at {} has more than {} elements (limits.max_array_length)",
                        PathHere(), limits_.max_array_length)));
      }
      p.kids.push_back(idx);
      if (p.kind == Parsed::Kind::kObject) p.keys.push_back(std::move(pending_key_));
    }
    out_->nodes.emplace_back();
    out_->nodes.back().kind = kind;
    out_->nodes.back().parent = stack_.empty() ? UINT32_MAX : stack_.back();
    return true;
  }
  bool AddNumber(double v) {
    if (!Add(Parsed::Kind::kNumber)) return false;
    out_->nodes.back().number = v;
    return true;
  }
  bool Open(Parsed::Kind kind) {
    if (!Add(kind)) return false;
    stack_.push_back(static_cast<uint32_t>(out_->nodes.size() - 1));
    if (stack_.size() > limits_.max_depth) {
      return Fail(absl::InvalidArgumentError(
          fmt::format("record nests deeper than {} levels (limits.max_depth)", limits_.max_depth)));
    }
    out_->max_depth = std::max(out_->max_depth, static_cast<uint32_t>(stack_.size()));
    return true;
  }

  const MbatLimits& limits_;
  Parsed* out_;
  std::vector<uint32_t> stack_;
  std::string pending_key_;
  absl::Status status_;
};

std::string_view KindName(Parsed::Kind k) {
  switch (k) {
    case Parsed::Kind::kNull: return "null";
    case Parsed::Kind::kTrue:
    case Parsed::Kind::kFalse: return "a boolean";
    case Parsed::Kind::kNumber: return "a number";
    case Parsed::Kind::kString: return "a string";
    case Parsed::Kind::kObject: return "an object";
    case Parsed::Kind::kArray: return "an array";
  }
  return "?";
}

}  // namespace

absl::Status MbatJsonEncoder::ParseRecord(std::string_view json, Parsed* parsed) const {
  const MbatLimits& lim = config_.limits;
  if (json.size() > lim.max_record_bytes) {
    return absl::ResourceExhaustedError(fmt::format(
        "record is {} bytes, over the limit of {} (limits.max_record_bytes)", json.size(),
        lim.max_record_bytes));
  }
  // Flat scan first: no recursive code ever sees a deeper document.
  if (FlatDepth(json, lim.max_depth) > lim.max_depth) {
    return absl::InvalidArgumentError(
        fmt::format("record nests deeper than {} levels (limits.max_depth)", lim.max_depth));
  }
  TreeBuilder builder(lim, parsed);
  const bool ok = Json::sax_parse(json, &builder, nlohmann::detail::input_format_t::json,
                                  /*strict=*/true);
  if (!ok || !builder.status().ok()) {
    if (!builder.status().ok()) return builder.status();
    return absl::InvalidArgumentError("record is not valid JSON");
  }
  if (parsed->nodes.empty()) return absl::InvalidArgumentError("record is empty");
  if (parsed->nodes[0].kind != Parsed::Kind::kObject) {
    return absl::InvalidArgumentError(fmt::format(
        "record root must be a JSON object, got {}", KindName(parsed->nodes[0].kind)));
  }
  // Canonical member order (UTF-8 byte order); duplicate keys are rejected.
  std::vector<uint32_t> order;
  for (uint32_t i = 0; i < parsed->nodes.size(); ++i) {
    Parsed::Node& n = parsed->nodes[i];
    if (Parsed::IsLeaf(n)) ++parsed->num_leaves;
    if (n.kind != Parsed::Kind::kObject || n.kids.size() < 2) continue;
    order.resize(n.kids.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return n.keys[a] < n.keys[b]; });
    for (size_t k = 1; k < order.size(); ++k) {
      if (n.keys[order[k]] == n.keys[order[k - 1]]) {
        return absl::InvalidArgumentError(fmt::format("duplicate key {} in the object at {}",
                                                      Json(n.keys[order[k]]).dump(), parsed->PathOf(i)));
      }
    }
    std::vector<uint32_t> kids(n.kids.size());
    std::vector<std::string> keys(n.kids.size());
    for (size_t k = 0; k < order.size(); ++k) {
      kids[k] = n.kids[order[k]];
      keys[k] = std::move(n.keys[order[k]]);
    }
    n.kids = std::move(kids);
    n.keys = std::move(keys);
  }
  return absl::OkStatus();
}

// -----------------------------------------------------------------------------------------
// Encoder.

struct MbatJsonEncoder::Workspace {
  size_t dim = 0;
  std::vector<float> buf;
  // Per nesting level l: the child vector and the bag accumulator; plus scratch and tmp.
  float* child(uint32_t l) { return buf.data() + (2 * size_t{l}) * dim; }
  float* bag(uint32_t l) { return buf.data() + (2 * size_t{l} + 1) * dim; }
  float* scratch(uint32_t levels) { return buf.data() + 2 * size_t{levels} * dim; }
  float* tmp(uint32_t levels) { return buf.data() + (2 * size_t{levels} + 1) * dim; }
  uint32_t levels = 0;
  std::string memo_key;
  void Reserve(size_t d, uint32_t lv) {
    dim = d;
    levels = lv;
    const size_t need = (2 * size_t{lv} + 2) * d;
    if (buf.size() < need) buf.resize(need);
  }
};

absl::StatusOr<std::unique_ptr<MbatJsonEncoder>> MbatJsonEncoder::Create(const MbatConfig& config) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  std::unique_ptr<MbatJsonEncoder> enc(new MbatJsonEncoder(config));
  enc->Init();
  return enc;
}

void MbatJsonEncoder::Init() {
  switch (config_.op_kind) {
    case MbatOpKind::kSrht: op_kind_ = mbat::OpKind::kSrht; break;
    case MbatOpKind::kDenseHaar: op_kind_ = mbat::OpKind::kDenseHaar; break;
    case MbatOpKind::kSignedPerm: op_kind_ = mbat::OpKind::kSignedPerm; break;
  }
  const size_t d = config_.dim;
  seq_op_ = mbat::OrthoOp::Create(op_kind_, d, MbatHash(config_.seed, "seq-op", ""));
  number_anchor_.resize(d);
  Atom("lit", "number-anchor", number_anchor_.data());
  anchor_even_.resize(d / 2);
  anchor_odd_.resize(d / 2);
  for (size_t j = 0; j < d / 2; ++j) {
    anchor_even_[j] = number_anchor_[2 * j];
    anchor_odd_[j] = number_anchor_[2 * j + 1];
  }
  max_bound_leaves_ = std::max<size_t>(64, kLeafMemoBytes / (d * sizeof(float)));
  leaf_seen_.reset(new std::atomic<uint64_t>[kLeafSeenSlots]);
  for (size_t i = 0; i < kLeafSeenSlots; ++i) leaf_seen_[i].store(0, std::memory_order_relaxed);
  omega_.resize(d / 2);
  Rng rng(MbatHash(config_.seed, "num-omega", ""));
  for (double& w : omega_) w = rng.Normal() / config_.num_sigma;
}

std::shared_ptr<const mbat::OrthoOp> MbatJsonEncoder::KeyOp(std::string_view key) const {
  std::string k(key);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(k);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.op;
    }
  }
  // Built outside the lock (a dense operator takes long); a racing duplicate is identical.
  std::shared_ptr<const mbat::OrthoOp> op =
      mbat::OrthoOp::Create(op_kind_, config_.dim, MbatHash(config_.seed, "key-op", key));
  std::lock_guard<std::mutex> lock(cache_mu_);
  auto it = cache_.find(k);
  if (it != cache_.end()) return it->second.op;
  lru_.push_front(k);
  cache_.emplace(std::move(k), CacheEntry{op, lru_.begin()});
  cache_bytes_ += op->bytes();
  const size_t budget = std::max(kOpCacheBytes, 16 * op->bytes());
  while (cache_bytes_ > budget && cache_.size() > 1) {
    auto victim = cache_.find(lru_.back());
    cache_bytes_ -= victim->second.op->bytes();
    cache_.erase(victim);
    lru_.pop_back();
  }
  return op;
}

namespace {
// kSignTable[byte][b] = +1 if bit b of byte is set, else −1: expands 8 atom bits at a time.
struct SignTable {
  float v[256][8];
  SignTable() {
    for (int byte = 0; byte < 256; ++byte) {
      for (int b = 0; b < 8; ++b) v[byte][b] = ((byte >> b) & 1) ? 1.0f : -1.0f;
    }
  }
};
const SignTable kSignTable;
}  // namespace

namespace {

// out[w + j] = (bit j of the w/64-th generator word) ? s : −s, or acc += that with `add`:
// one masked blend per 16 coordinates, the same values as the sign-table loop below.
__attribute__((target("avx512f,avx512bw"))) void ExpandSignsAvx512(Rng& rng, size_t d, float s,
                                                                   bool add, float* out) {
  const __m512 pos = _mm512_set1_ps(s), neg = _mm512_set1_ps(-s);
  for (size_t w = 0; w < d; w += 64) {
    const uint64_t u = rng.NextU64();
    for (size_t k = 0; k < 4; ++k) {
      const __m512 v = _mm512_mask_blend_ps(static_cast<__mmask16>(u >> (16 * k)), neg, pos);
      float* o = out + w + 16 * k;
      _mm512_storeu_ps(o, add ? _mm512_add_ps(_mm512_loadu_ps(o), v) : v);
    }
  }
}

void ExpandSignsPortable(Rng& rng, size_t d, float s, bool add, float* out) {
  for (size_t w = 0; w < d; w += 64) {
    const uint64_t u = rng.NextU64();
    for (size_t k = 0; k < 8; ++k) {
      const float* sign = kSignTable.v[(u >> (8 * k)) & 0xff];
      float* o = out + w + 8 * k;
      if (add) {
        for (int b = 0; b < 8; ++b) o[b] += sign[b] * s;
      } else {
        for (int b = 0; b < 8; ++b) o[b] = sign[b] * s;
      }
    }
  }
}

void ExpandSigns(Rng& rng, size_t d, float s, bool add, float* out) {
  static const bool avx512 = GetCpuFeatures().avx512;
  if (avx512) {
    ExpandSignsAvx512(rng, d, s, add, out);
  } else {
    ExpandSignsPortable(rng, d, s, add, out);
  }
}

}  // namespace

void MbatJsonEncoder::Atom(std::string_view tag, std::string_view token, float* out) const {
  const size_t d = config_.dim;
  const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  Rng rng(MbatHash(config_.seed, tag, token));
  ExpandSigns(rng, d, s, /*add=*/false, out);
}

void MbatJsonEncoder::AddAtom(std::string_view tag, std::string_view token, float weight,
                              float* acc) const {
  const size_t d = config_.dim;
  const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))) * weight;
  Rng rng(MbatHash(config_.seed, tag, token));
  ExpandSigns(rng, d, s, /*add=*/true, acc);
}

void MbatJsonEncoder::AddBag(std::string_view tag, const std::vector<std::string>& grams,
                             float weight, float* acc, float* tmp) const {
  if (grams.empty()) return;
  const size_t d = config_.dim;
  std::fill(tmp, tmp + d, 0.0f);
  for (const std::string& g : grams) AddAtom(tag, g, 1.0f, tmp);
  const double norm = std::sqrt(Dot(tmp, tmp, d));
  if (norm > 0) Axpy(static_cast<float>(weight / norm), tmp, acc, d);
}

void MbatJsonEncoder::EncodeNumberPortable(double x, float* out) const {
  const double theta = NumberTransform(x);
  for (size_t j = 0; j < config_.dim / 2; ++j) {
    double s, c;
    SinCosInline(omega_[j] * theta, &s, &c);
    const double a = anchor_even_[j], b = anchor_odd_[j];
    out[2 * j] = static_cast<float>(c * a - s * b);
    out[2 * j + 1] = static_cast<float>(s * a + c * b);
  }
}

double MbatJsonEncoder::NumberTransform(double x) const {
  double t;
  if (config_.num_transform == MbatNumTransform::kSignedLog1p) {
    t = std::copysign(std::log1p(std::fabs(x)), x);
  } else {
    t = x / config_.num_scale;
  }
  return std::clamp(t, -kMaxTheta, kMaxTheta);
}

void MbatJsonEncoder::EncodeLeaf(const MbatLeaf& leaf, float* out) const {
  const size_t d = config_.dim;
  switch (leaf.type) {
    case MbatLeaf::Type::kNull: Atom("lit", "null", out); return;
    case MbatLeaf::Type::kTrue: Atom("lit", "true", out); return;
    case MbatLeaf::Type::kFalse: Atom("lit", "false", out); return;
    case MbatLeaf::Type::kEmptyObject: Atom("lit", "{}", out); return;
    case MbatLeaf::Type::kEmptyArray: Atom("lit", "[]", out); return;
    case MbatLeaf::Type::kNumber: {
      const double theta = NumberTransform(leaf.number);
      static const bool avx2 = GetCpuFeatures().avx2_fma;
      if (avx2) {
        RotateAnchorAvx2(omega_.data(), anchor_even_.data(), anchor_odd_.data(), theta, d / 2, out);
      } else {
        EncodeNumberPortable(leaf.number, out);
      }
      return;
    }
    case MbatLeaf::Type::kString: {
      Atom("str", leaf.str, out);
      if (config_.str_mode == MbatStringMode::kExact) return;
      std::vector<float> tmp(d);
      if (config_.str_mode == MbatStringMode::kTokens) {
        AddBag("tok", Tokens(leaf.str), config_.w_tok, out, tmp.data());
      } else {
        AddBag("tri", Trigrams(leaf.str), config_.w_tri, out, tmp.data());
      }
      return;
    }
  }
}

bool MbatJsonEncoder::AddBoundLeaf(const std::string& memo_key, float* out) const {
  std::shared_lock<std::shared_mutex> lock(leaf_mu_);
  auto it = bound_leaves_.find(memo_key);
  if (it == bound_leaves_.end()) return false;
  const float* y = it->second.data();
  for (size_t j = 0; j < config_.dim; ++j) out[j] += y[j];
  return true;
}

bool MbatJsonEncoder::SeenBefore(uint64_t fingerprint) const {
  std::atomic<uint64_t>& slot = leaf_seen_[fingerprint & (kLeafSeenSlots - 1)];
  if (slot.load(std::memory_order_relaxed) == fingerprint) return true;
  slot.store(fingerprint, std::memory_order_relaxed);
  return false;
}

void MbatJsonEncoder::RememberBoundLeaf(const std::string& memo_key, uint64_t fingerprint,
                                        const float* y) const {
  if (!SeenBefore(fingerprint)) return;
  std::unique_lock<std::shared_mutex> lock(leaf_mu_);
  if (bound_leaves_.size() >= max_bound_leaves_) bound_leaves_.clear();
  bound_leaves_.try_emplace(memo_key, y, y + config_.dim);
}

namespace {

// "key\0<kind><value>" for a memoizable leaf (every scalar and empty container).
void LeafMemoKey(const std::string& key, const Parsed::Node& n, std::string* out) {
  out->assign(key);
  out->push_back('\0');
  out->push_back(static_cast<char>('0' + static_cast<int>(n.kind)));
  if (n.kind == Parsed::Kind::kString) {
    out->append(n.str);
  } else if (n.kind == Parsed::Kind::kNumber) {
    out->append(reinterpret_cast<const char*>(&n.number), sizeof(double));
  }
}

}  // namespace

void MbatJsonEncoder::EncodeNode(const Parsed& p, uint32_t node, uint32_t depth, float* out,
                                 Workspace& ws) const {
  const size_t d = config_.dim;
  const Parsed::Node& n = p.nodes[node];
  const bool container = n.kind == Parsed::Kind::kObject || n.kind == Parsed::Kind::kArray;
  if (!container || n.kids.empty()) {
    if (n.kind == Parsed::Kind::kString && config_.str_mode != MbatStringMode::kExact) {
      Atom("str", n.str, out);
      float* tmp = ws.tmp(ws.levels);
      if (config_.str_mode == MbatStringMode::kTokens) {
        AddBag("tok", Tokens(n.str), config_.w_tok, out, tmp);
      } else {
        AddBag("tri", Trigrams(n.str), config_.w_tri, out, tmp);
      }
      return;
    }
    EncodeLeaf(p.Leaf(node), out);
    return;
  }
  float* child = ws.child(depth + 1);
  float* scratch = ws.scratch(ws.levels);
  const float beta = config_.beta_bag;
  std::fill(out, out + d, 0.0f);
  if (n.kind == Parsed::Kind::kObject) {
    for (size_t i = 0; i < n.kids.size(); ++i) {
      const Parsed::Node& kid = p.nodes[n.kids[i]];
      if (Parsed::IsLeaf(kid)) {
        // T_k·enc(leaf) from the memo when this (key, leaf) was bound before: same bits.
        LeafMemoKey(n.keys[i], kid, &ws.memo_key);
        const bool hit = AddBoundLeaf(ws.memo_key, out);
        if (!hit || beta != 0.0f) EncodeNode(p, n.kids[i], depth + 1, child, ws);
        if (!hit) {
          float* bound = ws.tmp(ws.levels);
          KeyOp(n.keys[i])->Apply(child, bound, scratch);
          for (size_t j = 0; j < d; ++j) out[j] += bound[j];
          RememberBoundLeaf(ws.memo_key, MbatHash(config_.seed, "memo", ws.memo_key), bound);
        }
      } else {
        EncodeNode(p, n.kids[i], depth + 1, child, ws);
        KeyOp(n.keys[i])->ApplyAdd(child, out, scratch);
      }
      if (beta != 0.0f) Axpy(beta, child, out, d);
      if (config_.gamma_keys != 0.0f) AddAtom("key", n.keys[i], config_.gamma_keys, out);
    }
  } else {
    float* bag = ws.bag(depth);
    if (beta != 0.0f) std::fill(bag, bag + d, 0.0f);
    const size_t m = n.kids.size();
    const bool from_start = config_.seq_from == MbatSeqFrom::kStart;
    // acc = S·(acc + enc(v)), last element first (start) or first element first (end).
    for (size_t step = 0; step < m; ++step) {
      const size_t i = from_start ? m - 1 - step : step;
      EncodeNode(p, n.kids[i], depth + 1, child, ws);
      for (size_t j = 0; j < d; ++j) out[j] += child[j];
      seq_op_->Apply(out, out, scratch);
      if (beta != 0.0f) Axpy(beta, child, bag, d);
    }
    if (beta != 0.0f) {
      for (size_t j = 0; j < d; ++j) out[j] += bag[j];
    }
  }
  if (config_.normalize == MbatNormalize::kPerNode) ScaleToUnit(out, d);
}

absl::Status MbatJsonEncoder::EncodeParsed(const Parsed& parsed, float* out,
                                           MbatEncodeInfo* info) const {
  thread_local Workspace ws;
  ws.Reserve(config_.dim, parsed.max_depth + 2);
  EncodeNode(parsed, 0, 0, out, ws);
  const double norm = std::sqrt(Dot(out, out, config_.dim));
  if (!(norm > 0) || !std::isfinite(norm)) {
    return absl::InvalidArgumentError("record encodes to a zero or non-finite vector");
  }
  const float inv = static_cast<float>(1.0 / norm);
  for (size_t i = 0; i < config_.dim; ++i) out[i] *= inv;
  if (info != nullptr) {
    info->raw_norm = norm;
    info->num_leaves = parsed.num_leaves;
  }
  return absl::OkStatus();
}

absl::Status MbatJsonEncoder::Encode(std::string_view json, float* out,
                                     MbatEncodeInfo* info) const {
  try {
    Parsed parsed;
    if (absl::Status s = ParseRecord(json, &parsed); !s.ok()) return s;
    return EncodeParsed(parsed, out, info);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while encoding a record");
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format("unexpected error while encoding a record: {}", e.what()));
  }
}

absl::Status MbatJsonEncoder::EncodeQuery(std::string_view json, MbatQueryMode mode, float* out,
                                          MbatEncodeInfo* info) const {
  MbatEncodeInfo local;
  if (absl::Status s = Encode(json, out, &local); !s.ok()) return s;
  if (mode == MbatQueryMode::kContainment) {
    // out is enc/‖enc‖; we want enc/‖enc‖² = out/‖enc‖.
    const float inv = static_cast<float>(1.0 / local.raw_norm);
    for (size_t i = 0; i < config_.dim; ++i) out[i] *= inv;
  }
  if (info != nullptr) *info = local;
  return absl::OkStatus();
}

absl::Status MbatJsonEncoder::EncodeBatch(std::span<const std::string_view> records, float* out,
                                          MbatEncodeInfo* infos, int num_threads) const {
  const int64_t n = static_cast<int64_t>(records.size());
  std::vector<absl::Status> status(records.size());
  const int threads = num_threads > 0 ? num_threads : omp_get_max_threads();
  const size_t d = config_.dim;
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    // Encode catches everything, so nothing escapes the parallel region.
    status[i] = Encode(records[i], out + static_cast<size_t>(i) * d,
                       infos != nullptr ? infos + i : nullptr);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!status[i].ok()) {
      return absl::Status(status[i].code(), fmt::format("record {}: {}", i, std::string(status[i].message())));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MbatPathAtom>> MbatJsonEncoder::CollectAtoms(std::string_view json) const {
  try {
    Parsed parsed;
    if (absl::Status s = ParseRecord(json, &parsed); !s.ok()) return s;
    std::vector<MbatPathAtom> atoms;
    // Iterative walk in document (sorted-key) order.
    std::vector<std::pair<uint32_t, std::string>> stack = {{0, ""}};
    while (!stack.empty()) {
      auto [idx, path] = std::move(stack.back());
      stack.pop_back();
      const Parsed::Node& n = parsed.nodes[idx];
      if (Parsed::IsLeaf(n)) {
        if (idx != 0) atoms.push_back(MbatPathAtom{path, parsed.Leaf(idx)});
        continue;
      }
      for (size_t i = n.kids.size(); i-- > 0;) {
        std::string child = path;
        if (n.kind == Parsed::Kind::kArray) {
          child += "[]";
        } else {
          AppendKey(&child, n.keys[i], path.empty());
        }
        stack.emplace_back(n.kids[i], std::move(child));
      }
    }
    return atoms;
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while reading a record");
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format("unexpected error while reading a record: {}", e.what()));
  }
}

absl::Status MbatJsonEncoder::UnbindSteps(const std::vector<MbatPathStep>& steps,
                                          const float* vec, float* out) const {
  const size_t d = config_.dim;
  std::vector<float> scratch(d);
  std::memmove(out, vec, d * sizeof(float));
  for (const MbatPathStep& st : steps) {
    if (st.is_index) {
      if (config_.seq_from != MbatSeqFrom::kStart) {
        return absl::InvalidArgumentError(
            "array positions are counted from the end (seq_from = end); an index path cannot be "
            "unbound without the array's length");
      }
      if (st.index >= config_.limits.max_array_length) {
        return absl::InvalidArgumentError(fmt::format(
            "path index {} is not below limits.max_array_length {}", st.index,
            config_.limits.max_array_length));
      }
      for (uint32_t r = 0; r <= st.index; ++r) seq_op_->ApplyTranspose(out, out, scratch.data());
    } else {
      KeyOp(st.key)->ApplyTranspose(out, out, scratch.data());
    }
  }
  return absl::OkStatus();
}

absl::Status MbatJsonEncoder::BindPath(const std::vector<MbatPathStep>& steps, const float* x,
                                       float* out) const {
  const size_t d = config_.dim;
  std::vector<float> scratch(d);
  std::memmove(out, x, d * sizeof(float));
  for (size_t k = steps.size(); k-- > 0;) {
    const MbatPathStep& st = steps[k];
    if (st.is_index) {
      if (config_.seq_from != MbatSeqFrom::kStart || st.index >= config_.limits.max_array_length) {
        return absl::InvalidArgumentError("path index cannot be bound");
      }
      for (uint32_t r = 0; r <= st.index; ++r) seq_op_->Apply(out, out, scratch.data());
    } else {
      KeyOp(st.key)->Apply(out, out, scratch.data());
    }
  }
  return absl::OkStatus();
}

absl::Status MbatJsonEncoder::Unbind(const float* vec, std::string_view path, float* out) const {
  auto steps = ParseMbatPath(path);
  if (!steps.ok()) return steps.status();
  return UnbindSteps(*steps, vec, out);
}

absl::StatusOr<std::vector<MbatProbeHit>> MbatJsonEncoder::ProbeJointly(
    const float* vec, const std::vector<std::string>& paths, const MbatPathDictionary& dictionary,
    int rounds) const {
  if (rounds < 0 || rounds > 8) return absl::InvalidArgumentError("rounds must be in 0..8");
  if (paths.empty()) return absl::InvalidArgumentError("no paths to probe");
  if (paths.size() > 4096) return absl::InvalidArgumentError("more than 4096 paths to probe");
  const size_t d = config_.dim;
  const size_t m = paths.size();
  struct PathState {
    std::vector<MbatPathStep> steps;
    std::vector<MbatLeaf> leaves;
    std::vector<float> unit;  // candidates' unit encodings, leaves.size() × d
    size_t best = 0;
    double amplitude = 0, similarity = 0;
    std::vector<float> contribution;  // amplitude · M_path · unit[best]
  };
  std::vector<PathState> st(m);
  for (size_t p = 0; p < m; ++p) {
    auto steps = ParseMbatPath(paths[p]);
    if (!steps.ok()) return steps.status();
    st[p].steps = std::move(*steps);
    const std::string pattern = MbatPathPattern(st[p].steps);
    st[p].leaves = dictionary.Candidates(pattern);
    if (st[p].leaves.empty()) {
      return absl::NotFoundError(fmt::format("the dictionary has no values at path {}", pattern));
    }
    st[p].unit.resize(st[p].leaves.size() * d);
    for (size_t c = 0; c < st[p].leaves.size(); ++c) {
      float* e = st[p].unit.data() + c * d;
      EncodeLeaf(st[p].leaves[c], e);
      ScaleToUnit(e, d);
    }
  }
  std::vector<float> total(d, 0.0f), residual(d), u(d);
  for (int round = 0; round <= rounds; ++round) {
    for (size_t p = 0; p < m; ++p) {
      PathState& s = st[p];
      // residual = vec − Σ_{q≠p} contribution_q (round 0: vec itself).
      for (size_t i = 0; i < d; ++i) residual[i] = vec[i] - total[i];
      if (round > 0) Axpy(1.0f, s.contribution.data(), residual.data(), d);
      if (absl::Status status = UnbindSteps(s.steps, residual.data(), u.data()); !status.ok()) {
        return status;
      }
      const double un = std::sqrt(Dot(u.data(), u.data(), d));
      double best = -2;
      for (size_t c = 0; c < s.leaves.size(); ++c) {
        const double ip = Dot(u.data(), s.unit.data() + c * d, d);
        if (ip > best) {
          best = ip;
          s.best = c;
        }
      }
      s.amplitude = best;
      s.similarity = un > 0 ? best / un : 0;
    }
    // Jacobi update: every path's contribution from this round's guesses.
    std::fill(total.begin(), total.end(), 0.0f);
    for (PathState& s : st) {
      s.contribution.resize(d);
      const float* e = s.unit.data() + s.best * d;
      for (size_t i = 0; i < d; ++i) u[i] = static_cast<float>(s.amplitude) * e[i];
      if (absl::Status status = BindPath(s.steps, u.data(), s.contribution.data()); !status.ok()) {
        return status;
      }
      Axpy(1.0f, s.contribution.data(), total.data(), d);
    }
  }
  std::vector<MbatProbeHit> hits;
  for (PathState& s : st) hits.push_back(MbatProbeHit{s.leaves[s.best], static_cast<float>(s.similarity)});
  return hits;
}

absl::StatusOr<std::vector<MbatProbeHit>> MbatJsonEncoder::Probe(
    const float* vec, std::string_view path, const MbatPathDictionary& dictionary,
    size_t top_n) const {
  if (top_n == 0) return absl::InvalidArgumentError("top_n must be at least 1");
  auto steps = ParseMbatPath(path);
  if (!steps.ok()) return steps.status();
  const std::string pattern = MbatPathPattern(*steps);
  std::vector<MbatLeaf> candidates = dictionary.Candidates(pattern);
  if (candidates.empty()) {
    return absl::NotFoundError(fmt::format("the dictionary has no values at path {}", pattern));
  }
  const size_t d = config_.dim;
  std::vector<float> v(d), e(d);
  if (absl::Status s = Unbind(vec, path, v.data()); !s.ok()) return s;
  const double vn = std::sqrt(Dot(v.data(), v.data(), d));
  std::vector<MbatProbeHit> hits;
  hits.reserve(candidates.size());
  for (MbatLeaf& leaf : candidates) {
    EncodeLeaf(leaf, e.data());
    const double en = std::sqrt(Dot(e.data(), e.data(), d));
    const double sim = (vn > 0 && en > 0) ? Dot(v.data(), e.data(), d) / (vn * en) : 0.0;
    hits.push_back(MbatProbeHit{std::move(leaf), static_cast<float>(sim)});
  }
  std::stable_sort(hits.begin(), hits.end(),
                   [](const MbatProbeHit& a, const MbatProbeHit& b) { return a.similarity > b.similarity; });
  if (hits.size() > top_n) hits.resize(top_n);
  return hits;
}

// -----------------------------------------------------------------------------------------
// Persistence.

std::string MbatJsonEncoder::Serialize() const {
  const MbatConfig& c = config_;
  std::string body(kMagic, 4);
  Put<uint32_t>(&body, kMbatFormatVersion);
  Put<uint32_t>(&body, kMbatHashId);
  Put(&body, c.dim);
  Put(&body, c.seed);
  Put<uint8_t>(&body, static_cast<uint8_t>(c.op_kind));
  Put<uint8_t>(&body, static_cast<uint8_t>(c.seq_from));
  Put(&body, c.beta_bag);
  Put(&body, c.gamma_keys);
  Put<uint8_t>(&body, static_cast<uint8_t>(c.str_mode));
  Put(&body, c.w_tok);
  Put(&body, c.w_tri);
  Put<uint8_t>(&body, static_cast<uint8_t>(c.num_transform));
  Put(&body, c.num_scale);
  Put(&body, c.num_sigma);
  Put<uint8_t>(&body, static_cast<uint8_t>(c.normalize));
  Put(&body, c.limits.max_record_bytes);
  Put(&body, c.limits.max_depth);
  Put(&body, c.limits.max_nodes);
  Put(&body, c.limits.max_array_length);
  std::vector<float> check(c.dim);
  // The check record is within every valid limit set except tiny ones; fall back to zeros.
  if (!Encode(kCheckRecord, check.data()).ok()) std::fill(check.begin(), check.end(), 0.0f);
  Put<uint32_t>(&body, c.dim);
  body.append(reinterpret_cast<const char*>(check.data()), check.size() * sizeof(float));
  Put<uint32_t>(&body, Crc(body));
  return body;
}

absl::StatusOr<std::unique_ptr<MbatJsonEncoder>> MbatJsonEncoder::Deserialize(std::string_view blob) {
  if (blob.size() < 16 || std::memcmp(blob.data(), kMagic, 4) != 0) {
    return absl::DataLossError("MBAT encoder parameters: bad magic or truncated");
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, blob.data() + blob.size() - 4, 4);
  const std::string_view body = blob.substr(0, blob.size() - 4);
  if (Crc(body) != stored_crc) {
    return absl::DataLossError("MBAT encoder parameters: checksum mismatch (corrupt)");
  }
  Reader r(body.substr(4));
  uint32_t version = 0, hash_id = 0;
  if (!r.Get(&version) || !r.Get(&hash_id)) return absl::DataLossError("MBAT encoder parameters: truncated");
  if (version != kMbatFormatVersion || hash_id != kMbatHashId) {
    return absl::FailedPreconditionError(fmt::format(
        "MBAT encoder parameters have format version {} / hash {}, this build uses {} / {}; "
        "re-encode the collection or run a matching build",
        version, hash_id, kMbatFormatVersion, kMbatHashId));
  }
  MbatConfig c;
  uint8_t op, seq, str, num, norm;
  uint32_t check_dim = 0;
  if (!r.Get(&c.dim) || !r.Get(&c.seed) || !r.Get(&op) || !r.Get(&seq) || !r.Get(&c.beta_bag) ||
      !r.Get(&c.gamma_keys) || !r.Get(&str) || !r.Get(&c.w_tok) || !r.Get(&c.w_tri) ||
      !r.Get(&num) || !r.Get(&c.num_scale) || !r.Get(&c.num_sigma) || !r.Get(&norm) ||
      !r.Get(&c.limits.max_record_bytes) || !r.Get(&c.limits.max_depth) ||
      !r.Get(&c.limits.max_nodes) || !r.Get(&c.limits.max_array_length) || !r.Get(&check_dim)) {
    return absl::DataLossError("MBAT encoder parameters: truncated or malformed");
  }
  c.op_kind = static_cast<MbatOpKind>(op);
  c.seq_from = static_cast<MbatSeqFrom>(seq);
  c.str_mode = static_cast<MbatStringMode>(str);
  c.num_transform = static_cast<MbatNumTransform>(num);
  c.normalize = static_cast<MbatNormalize>(norm);
  if (absl::Status s = c.Validate(); !s.ok()) {
    return absl::DataLossError("MBAT encoder parameters: stored config invalid: " + std::string(s.message()));
  }
  std::vector<float> check(check_dim);
  if (check_dim != c.dim) return absl::DataLossError("MBAT encoder parameters: malformed check vector");
  for (float& x : check) {
    if (!r.Get(&x)) return absl::DataLossError("MBAT encoder parameters: truncated check vector");
  }
  if (!r.done()) return absl::DataLossError("MBAT encoder parameters: trailing bytes");
  auto enc = Create(c);
  if (!enc.ok()) return enc.status();
  std::vector<float> fresh(c.dim);
  if (!(*enc)->Encode(kCheckRecord, fresh.data()).ok()) std::fill(fresh.begin(), fresh.end(), 0.0f);
  double max_diff = 0;
  for (size_t i = 0; i < c.dim; ++i) max_diff = std::max(max_diff, static_cast<double>(std::fabs(fresh[i] - check[i])));
  if (!(max_diff <= kCheckTolerance)) {
    return absl::FailedPreconditionError(fmt::format(
        "MBAT encoder: this build encodes the check record differently (max difference {}) "
        "from the build that created the collection; refusing to mix vectors",
        max_diff));
  }
  return enc;
}

}  // namespace chamferdb
