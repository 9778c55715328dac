#include "kernels/chamfer/chamfer.h"

#include <algorithm>
#include <limits>

#include "common/cpu_features.h"
#include "common/half.h"
#include "kernels/chamfer/chamfer_paths.h"
#include "kernels/chamfer/dot.h"

namespace chamferdb {
namespace {

struct Path {
  const char* name;
  decltype(&chamfer_baseline::ChamferPackedF32) f32;
  decltype(&chamfer_baseline::ChamferPackedF16) f16;
  decltype(&chamfer_baseline::DotMany) dot_many;
  decltype(&chamfer_baseline::SketchPacked) sketch;
  decltype(&chamfer_baseline::ProjectPacked) project;
  decltype(&chamfer_baseline::ProjectPackedGrouped) project_grouped;
};

const Path& Chosen() {
  static const Path path = [] {
    const CpuFeatures& f = GetCpuFeatures();
    if (f.avx512) {
      return Path{"avx512", chamfer_avx512::ChamferPackedF32, chamfer_avx512::ChamferPackedF16,
                  chamfer_avx512::DotMany, chamfer_avx512::SketchPacked, chamfer_avx512::ProjectPacked,
                  chamfer_avx512::ProjectPackedGrouped};
    }
    if (f.avx2_fma) {
      return Path{"avx2", chamfer_avx2::ChamferPackedF32, chamfer_avx2::ChamferPackedF16,
                  chamfer_avx2::DotMany, chamfer_avx2::SketchPacked, chamfer_avx2::ProjectPacked,
                  chamfer_avx2::ProjectPackedGrouped};
    }
    return Path{"baseline", chamfer_baseline::ChamferPackedF32,
                chamfer_baseline::ChamferPackedF16, chamfer_baseline::DotMany, chamfer_baseline::SketchPacked, chamfer_baseline::ProjectPacked,
                chamfer_baseline::ProjectPackedGrouped};
  }();
  return path;
}

template <typename In, typename T, typename Convert>
void Pack(const In* tokens, size_t n, size_t dim, T* packed, Convert convert) {
  const size_t n_pad = PackedColumns(n);
  for (size_t j = 0; j < dim; ++j) {
    T* row = packed + j * n_pad;
    for (size_t t = 0; t < n; ++t) row[t] = convert(tokens[t * dim + j]);
    for (size_t t = n; t < n_pad; ++t) row[t] = row[0];
  }
}

}  // namespace

double ChamferReference(const float* q, size_t nq, const float* p, size_t np, size_t dim) {
  double total = 0.0;
  for (size_t i = 0; i < nq; ++i) {
    double best = -std::numeric_limits<double>::infinity();
    for (size_t t = 0; t < np; ++t) {
      double s = 0.0;
      for (size_t j = 0; j < dim; ++j) s += static_cast<double>(q[i * dim + j]) * p[t * dim + j];
      best = std::max(best, s);
    }
    total += best;
  }
  return total;
}

void PackTokensF32(const float* tokens, size_t n, size_t dim, float* packed) {
  Pack(tokens, n, dim, packed, [](float v) { return v; });
}

void PackTokensF16(const float* tokens, size_t n, size_t dim, uint16_t* packed) {
  Pack(tokens, n, dim, packed, [](float v) { return FloatToHalf(v); });
}

void PackHalvesF16(const uint16_t* halves, size_t n, size_t dim, uint16_t* packed) {
  Pack(halves, n, dim, packed, [](uint16_t v) { return v; });
}

float ChamferPackedF32(const float* q, size_t nq, const float* packed, size_t n_pad,
                       size_t dim) {
  return Chosen().f32(q, nq, packed, n_pad, dim);
}

float ChamferPackedF16(const float* q, size_t nq, const uint16_t* packed, size_t n_pad,
                       size_t dim) {
  return Chosen().f16(q, nq, packed, n_pad, dim);
}

void DotMany(const float* x, const float* rows, size_t nrows, size_t dim, float* out) {
  Chosen().dot_many(x, rows, nrows, dim, out);
}

void SketchPacked(const float* xt, size_t n_pad, size_t dim, const float* planes, size_t nplanes,
                  float* out) {
  Chosen().sketch(xt, n_pad, dim, planes, nplanes, out);
}

void ProjectPacked(const float* xt, size_t n_pad, size_t dim, const uint32_t* slot, const int8_t* sign,
                   size_t width, float* yt) {
  Chosen().project(xt, n_pad, dim, slot, sign, width, yt);
}

void ProjectPackedGrouped(const float* xt, size_t n_pad, const uint32_t* order, const int8_t* sign,
                          const uint32_t* start, size_t width, float* yt) {
  Chosen().project_grouped(xt, n_pad, order, sign, start, width, yt);
}

const char* ChamferPathName() { return Chosen().name; }

}  // namespace chamferdb
