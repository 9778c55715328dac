#include "kernels/fno/kernel_interp_conv.h"

#include <algorithm>

namespace chamferdb::fno {

std::vector<double> InterpolateKernel(const double* kernel, size_t cout, size_t cin, size_t k,
                                      size_t s, KernelRescale rescale) {
  const size_t kp = s * k - s + 1;
  const double area = rescale == KernelRescale::kAreaRatio
                          ? static_cast<double>(kp * kp) / static_cast<double>(k * k)
                          : static_cast<double>(s * s);
  std::vector<double> out(cout * cin * kp * kp);
  for (size_t oc = 0; oc < cout * cin; ++oc) {
    const double* src = kernel + oc * k * k;
    double* dst = out.data() + oc * kp * kp;
    for (size_t a = 0; a < kp; ++a) {
      // Fine tap a sits at coarse coordinate a / s (corners aligned).
      const size_t a0 = std::min(a / s, k - 1), a1 = std::min(a0 + 1, k - 1);
      const double fa = static_cast<double>(a % s) / static_cast<double>(s);
      for (size_t e = 0; e < kp; ++e) {
        const size_t e0 = std::min(e / s, k - 1), e1 = std::min(e0 + 1, k - 1);
        const double fe = static_cast<double>(e % s) / static_cast<double>(s);
        const double v = (1 - fa) * ((1 - fe) * src[a0 * k + e0] + fe * src[a0 * k + e1]) +
                         fa * ((1 - fe) * src[a1 * k + e0] + fe * src[a1 * k + e1]);
        dst[a * kp + e] = v / area;
      }
    }
  }
  return out;
}

void PeriodicConv2d(const double* x, size_t b, size_t cin, size_t h, size_t w,
                    const double* kernel, size_t cout, size_t kt, const double* bias, double* y,
                    int threads) {
  const long long p = static_cast<long long>(kt - 1) / 2;
  const long long hh = static_cast<long long>(h), ww = static_cast<long long>(w);
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(static)
  for (long long plane = 0; plane < static_cast<long long>(b * cout); ++plane) {
    const size_t bi = plane / cout, o = plane % cout;
    double* out = y + plane * h * w;
    const double b0 = bias != nullptr ? bias[o] : 0.0;
    for (size_t t = 0; t < h * w; ++t) out[t] = b0;
    for (size_t c = 0; c < cin; ++c) {
      const double* xc = x + (bi * cin + c) * h * w;
      const double* kc = kernel + (o * cin + c) * kt * kt;
      for (long long i = 0; i < hh; ++i) {
        for (long long j = 0; j < ww; ++j) {
          double acc = 0.0;
          for (long long a = 0; a < static_cast<long long>(kt); ++a) {
            const long long r = ((i + a - p) % hh + hh) % hh;
            for (long long e = 0; e < static_cast<long long>(kt); ++e) {
              const long long q = ((j + e - p) % ww + ww) % ww;
              acc += kc[a * kt + e] * xc[r * w + q];
            }
          }
          out[i * w + j] += acc;
        }
      }
    }
  }
}

}  // namespace chamferdb::fno
