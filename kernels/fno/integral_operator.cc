#include "kernels/fno/integral_operator.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace chamferdb::fno {

void QuadratureIntegralOperator(const IntegralKernelParams& k, size_t dim, const double* x,
                                size_t p, const double* y, size_t q, const double* w,
                                const double* v, size_t channels, double* out, int threads) {
  const double inv2l2 = 1.0 / (2.0 * k.length_scale * k.length_scale);
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<double> acc(channels);
#pragma omp for schedule(static)
    for (long long i = 0; i < static_cast<long long>(p); ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const double* xi = x + i * dim;
      for (size_t j = 0; j < q; ++j) {
        const double* yj = y + j * dim;
        double kv;
        if (k.kind == IntegralKernel::kGaussian) {
          double d2 = 0.0;
          for (size_t t = 0; t < dim; ++t) d2 += (xi[t] - yj[t]) * (xi[t] - yj[t]);
          kv = std::exp(-d2 * inv2l2);
        } else {
          double dot = 0.0;
          for (size_t t = 0; t < dim; ++t) dot += xi[t] * yj[t];
          kv = std::pow(k.offset + dot, k.degree);
        }
        if (w != nullptr) kv *= w[j];
        const double* vj = v + j * channels;
        for (size_t c = 0; c < channels; ++c) acc[c] += kv * vj[c];
      }
      std::copy(acc.begin(), acc.end(), out + i * channels);
    }
  }
}

}  // namespace chamferdb::fno
