#include "kernels/chamfer/chamfer_int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/cpu_features.h"
#include "kernels/chamfer/chamfer.h"
#include "kernels/chamfer/chamfer_int8_paths.h"
#include "kernels/int8/quantize.h"

namespace chamferdb {
namespace {

struct PathI8 {
  const char* name;
  decltype(&chamfer_i8_baseline::ScoreI8) score;
  decltype(&chamfer_i8_baseline::DotsI8) dots;
};

const PathI8& ChosenI8() {
  static const PathI8 path = [] {
    const CpuFeatures& f = GetCpuFeatures();
    if (f.avx512_vnni) return PathI8{"avx512vnni", chamfer_i8_vnni::ScoreI8, chamfer_i8_vnni::DotsI8};
    if (f.avx2_fma) return PathI8{"avx2", chamfer_i8_avx2::ScoreI8, chamfer_i8_avx2::DotsI8};
    return PathI8{"baseline", chamfer_i8_baseline::ScoreI8, chamfer_i8_baseline::DotsI8};
  }();
  return path;
}

size_t Dim4(size_t dim) { return (dim + 3) / 4 * 4; }

}  // namespace

size_t PackedI8Bytes(size_t n, size_t dim) {
  const size_t n_pad = PackedColumns(n);
  return Dim4(dim) * n_pad + 8 * n_pad;
}

void PackTokensI8(const int8_t* codes, const float* scales, size_t n, size_t dim, uint8_t* packed) {
  const size_t n_pad = PackedColumns(n), dim4 = Dim4(dim);
  int8_t* out = reinterpret_cast<int8_t*>(packed);
  for (size_t g = 0; g < dim4 / 4; ++g) {
    for (size_t t = 0; t < n_pad; ++t) {
      const size_t src = t < n ? t : 0;
      for (size_t r = 0; r < 4; ++r) {
        const size_t j = 4 * g + r;
        out[(g * n_pad + t) * 4 + r] = j < dim ? codes[src * dim + j] : 0;
      }
    }
  }
  for (size_t t = 0; t < n_pad; ++t) {
    const size_t src = t < n ? t : 0;
    int32_t sum = 0;
    for (size_t j = 0; j < dim; ++j) sum += codes[src * dim + j];
    const int32_t bias = 128 * sum;
    std::memcpy(packed + i8_layout::ScalesOffset(dim4, n_pad) + 4 * t, &scales[src], 4);
    std::memcpy(packed + i8_layout::BiasOffset(dim4, n_pad) + 4 * t, &bias, 4);
  }
}

QueryI8 QuantizeQueryI8(const float* q, size_t nq, size_t dim) {
  QueryI8 out;
  out.n = nq;
  out.dim = dim;
  out.dim4 = Dim4(dim);
  out.codes.assign(nq * out.dim4, 0);
  out.scales.resize(nq);
  for (size_t i = 0; i < nq; ++i) {
    out.scales[i] = int8::QuantizeRow(q + i * dim, dim, out.codes.data() + i * out.dim4);
  }
  out.biased.resize(out.codes.size());
  out.abs.resize(out.codes.size());
  for (size_t i = 0; i < out.codes.size(); ++i) {
    out.biased[i] = static_cast<uint8_t>(out.codes[i] + 128);
    out.abs[i] = static_cast<uint8_t>(std::abs(static_cast<int>(out.codes[i])));
  }
  return out;
}

float ChamferPackedI8(const QueryI8& q, const uint8_t* packed, size_t n) {
  return ChosenI8().score(q, packed, PackedColumns(n));
}

void ChamferPackedI8Dots(const QueryI8& q, const uint8_t* packed, size_t n, int32_t* out) {
  const size_t n_pad = PackedColumns(n);
  std::vector<int32_t> all(q.n * n_pad);
  ChosenI8().dots(q, packed, n_pad, all.data());
  for (size_t i = 0; i < q.n; ++i) std::copy_n(all.data() + i * n_pad, n, out + i * n);
}

double ChamferI8Bound(const float* q_float, const QueryI8& q, const uint8_t* packed, size_t n) {
  const size_t n_pad = PackedColumns(n), dim = q.dim, dim4 = q.dim4;
  const int8_t* codes = reinterpret_cast<const int8_t*>(packed);
  std::vector<double> sd(n), dl1(n);
  double sd_max = 0;
  for (size_t t = 0; t < n; ++t) {
    float s;
    std::memcpy(&s, packed + i8_layout::ScalesOffset(dim4, n_pad) + 4 * t, 4);
    int64_t l1 = 0;
    for (size_t g = 0; g < dim4 / 4; ++g) {
      for (size_t r = 0; r < 4; ++r) l1 += std::abs(static_cast<int>(codes[(g * n_pad + t) * 4 + r]));
    }
    sd[t] = s;
    dl1[t] = static_cast<double>(l1) * s / 127.0;
    sd_max = std::max(sd_max, sd[t]);
  }
  double bound = 0, magnitude = 0;
  for (size_t i = 0; i < q.n; ++i) {
    double ql1 = 0;
    for (size_t j = 0; j < dim; ++j) ql1 += std::fabs(static_cast<double>(q_float[i * dim + j]));
    const double sq = q.scales[i];
    const double e_sd = ql1 / 254.0 + static_cast<double>(dim) * sq / (254.0 * 254.0);
    const double e_dl = sq / 254.0;
    double worst = 0;
    for (size_t t = 0; t < n; ++t) worst = std::max(worst, sd[t] * e_sd + dl1[t] * e_dl);
    bound += worst;
    // |max_t ŝ_it| ≤ ‖q̂_i‖₁ · max_t sd_t.
    const double qhat_l1 = static_cast<double>(int8::L1NormCodes(q.codes.data() + i * dim4, dim4)) * sq / 127.0;
    magnitude += qhat_l1 * sd_max;
  }
  // Float32 evaluation: per query token a few roundings (cvt, ·sd, ·sq/16129), then nq
  // additions; each relative error ≤ 2^-24.
  const double slack = static_cast<double>(q.n + 6) * std::ldexp(1.0, -23) * magnitude;
  return bound + slack;
}

const char* ChamferI8PathName() { return ChosenI8().name; }

}  // namespace chamferdb
