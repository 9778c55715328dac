#include "index/ivf_kernels.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "common/cpu_features.h"
#include "index/ivf_kernels_impl.h"

namespace chamferdb {

namespace ivf_portable {

void ArgmaxIP(const float* x, size_t nx, const float* y, size_t ny, size_t d, int64_t* best, float* score) {
  for (size_t i = 0; i < nx; ++i) {
    const float* xi = x + i * d;
    best[i] = -1;
    score[i] = -std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < ny; ++j) {
      const float* yj = y + j * d;
      float s = 0;
      for (size_t t = 0; t < d; ++t) s += xi[t] * yj[t];
      if (s > score[i] || best[i] < 0) {
        score[i] = s;
        best[i] = static_cast<int64_t>(j);
      }
    }
  }
}

void NearestL2(const float* x, const float* ct, size_t m, size_t ksub, size_t dsub, uint32_t* index,
               float* distance) {
  std::vector<float> dist(ksub);
  for (size_t s = 0; s < m; ++s) {
    const float* xs = x + s * dsub;
    const float* cs = ct + s * (dsub + 1) * ksub;
    std::copy(cs + dsub * ksub, cs + (dsub + 1) * ksub, dist.begin());  // ‖c‖²
    for (size_t t = 0; t < dsub; ++t) {
      const float xv = -2.0f * xs[t];
      const float* row = cs + t * ksub;
      for (size_t k = 0; k < ksub; ++k) dist[k] += xv * row[k];
    }
    size_t best = 0;
    for (size_t k = 1; k < ksub; ++k)
      if (dist[k] < dist[best]) best = k;
    index[s] = static_cast<uint32_t>(best);
    if (distance) {
      float xx = 0;
      for (size_t t = 0; t < dsub; ++t) xx += xs[t] * xs[t];
      distance[s] = std::max(0.0f, dist[best] + xx);
    }
  }
}

}  // namespace ivf_portable

namespace {

bool UseAvx512() {
  static const bool use = GetCpuFeatures().avx512;
  return use;
}

// Rows per OpenMP chunk; below two chunks the caller's thread does the work alone.
constexpr size_t kRowsPerChunk = 32;

}  // namespace

void ArgmaxInnerProduct(const float* x, size_t nx, const float* y, size_t ny, size_t d, int64_t* best,
                        float* score) {
  auto fn = UseAvx512() ? ivf_avx512::ArgmaxIP : ivf_portable::ArgmaxIP;
  const int64_t chunks = static_cast<int64_t>((nx + kRowsPerChunk - 1) / kRowsPerChunk);
#pragma omp parallel for schedule(dynamic, 1) if (chunks >= 2)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = static_cast<size_t>(c) * kRowsPerChunk;
    const size_t rows = std::min(kRowsPerChunk, nx - begin);
    fn(x + begin * d, rows, y, ny, d, best + begin, score + begin);
  }
}

PqEncoder::PqEncoder(const float* centroids, size_t m, size_t ksub, size_t dsub)
    : m_(m), ksub_(ksub), dsub_(dsub), transposed_(m * ksub * (dsub + 1)) {
  for (size_t s = 0; s < m; ++s) {
    float* out = transposed_.data() + s * (dsub + 1) * ksub;
    for (size_t k = 0; k < ksub; ++k) {
      const float* c = centroids + (s * ksub + k) * dsub;
      float norm = 0;
      for (size_t t = 0; t < dsub; ++t) {
        out[t * ksub + k] = c[t];
        norm += c[t] * c[t];
      }
      out[dsub * ksub + k] = norm;
    }
  }
}

void PqEncoder::Assign(const float* x, size_t n, uint32_t* index, float* distance) const {
  auto fn = UseAvx512() && ksub_ % 16 == 0 ? ivf_avx512::NearestL2 : ivf_portable::NearestL2;
  const size_t d = m_ * dsub_;
  const int64_t rows = static_cast<int64_t>(n);
#pragma omp parallel for schedule(dynamic, 16) if (rows >= 2 * static_cast<int64_t>(kRowsPerChunk))
  for (int64_t i = 0; i < rows; ++i) {
    fn(x + i * d, transposed_.data(), m_, ksub_, dsub_, index + i * m_, distance ? distance + i * m_ : nullptr);
  }
}

void PqEncoder::Encode(const float* x, size_t n, size_t nbits, uint8_t* codes) const {
  std::vector<uint32_t> index(n * m_);
  Assign(x, n, index.data(), nullptr);
  const size_t code_size = (m_ * nbits + 7) / 8;
  if (nbits == 8) {
    for (size_t i = 0; i < n * m_; ++i) codes[i] = static_cast<uint8_t>(index[i]);
    return;
  }
  // Bit stream, least significant bit first (faiss::PQEncoderGeneric's packing).
  for (size_t i = 0; i < n; ++i) {
    uint8_t* code = codes + i * code_size;
    std::fill(code, code + code_size, uint8_t{0});
    size_t bit = 0;
    for (size_t s = 0; s < m_; ++s) {
      const uint32_t v = index[i * m_ + s];
      for (size_t b = 0; b < nbits; ++b, ++bit) {
        if ((v >> b) & 1u) code[bit / 8] = static_cast<uint8_t>(code[bit / 8] | (1u << (bit % 8)));
      }
    }
  }
}

}  // namespace chamferdb
