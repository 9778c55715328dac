#include "kernels/int8/mixed_linear.h"

#include <algorithm>
#include <cmath>

#include "kernels/int8/quantize.h"

namespace chamferdb::int8 {

QuantizedWeight QuantizeWeight(const float* w, size_t out, size_t in) {
  QuantizedWeight q;
  q.out = out;
  q.in = in;
  q.codes.resize(out * in);
  q.scales.resize(out);
  QuantizeRows(w, out, in, q.codes.data(), q.scales.data());
  return q;
}

MixedLinearResult Int8MixedLinear(const float* x, size_t s, size_t h, const QuantizedWeight& wq,
                                  const float* w_full, const float* bias,
                                  const MixedLinearOptions& options) {
  const size_t o = wq.out;
  const float tau = options.threshold;
  const bool decompose = tau > 0.0f;
  MixedLinearResult r;

  // 1. Outlier columns.
  std::vector<char> is_outlier(h, 0);
  if (decompose) {
    for (size_t i = 0; i < s; ++i) {
      for (size_t j = 0; j < h; ++j) {
        if (std::fabs(x[i * h + j]) >= tau) is_outlier[j] = 1;
      }
    }
  }
  for (size_t j = 0; j < h; ++j) {
    if (is_outlier[j]) r.outlier_cols.push_back(static_cast<int32_t>(j));
  }
  const size_t k = r.outlier_cols.size();
  r.int8_fraction = h == 0 ? 1.0 : 1.0 - static_cast<double>(k) / static_cast<double>(h);

  // 2-3. Row statistics and codes.
  std::vector<int8_t> xq(s * h, 0);
  r.cx.assign(s, 0.0f);
  for (size_t i = 0; i < s; ++i) {
    const float* xi = x + i * h;
    float c = 0.0f;
    for (size_t j = 0; j < h; ++j) {
      const float a = std::fabs(xi[j]);
      const bool counts = options.stats == StatsMode::kPaper ? !is_outlier[j]
                                                             : !(decompose && a >= tau);
      if (counts) c = std::fmax(c, a);
    }
    r.cx[i] = c;
    if (c > 0.0f) {
      for (size_t j = 0; j < h; ++j) {
        // In kBnb mode, a non-outlier element of a non-outlier column is < tau ≤ ... and
        // ≤ c; outlier columns are zeroed, so |x| ≤ c holds wherever a code is produced.
        if (!is_outlier[j]) xq[i * h + j] = QuantizeValue(xi[j], c);
      }
    }
  }

  // 5. int32 GEMM.
  r.c.assign(s * o, 0);
  if (options.naive_gemm) {
    Int8GemmNTNaive(xq.data(), wq.codes.data(), r.c.data(), s, o, h);
  } else {
    Int8GemmNT(xq.data(), wq.codes.data(), r.c.data(), s, o, h, options.path, options.threads);
  }

  // Outlier weights gathered as k-contiguous rows: wo[o][t] for column outlier_cols[t].
  std::vector<double> wo(o * k);
  for (size_t oo = 0; oo < o; ++oo) {
    for (size_t t = 0; t < k; ++t) {
      const size_t j = static_cast<size_t>(r.outlier_cols[t]);
      wo[oo * k + t] = options.outlier_weight == OutlierWeight::kFull && w_full != nullptr
                           ? static_cast<double>(w_full[oo * h + j])
                           : static_cast<double>(wq.codes[oo * h + j]) *
                                 static_cast<double>(wq.scales[oo]) / 127.0;
    }
  }

  // 6-7. Dequantize, add the outlier product and bias (float64, rounded once).
  r.y.assign(s * o, 0.0f);
  const long long ss = static_cast<long long>(s);
#pragma omp parallel for num_threads(std::max(1, options.threads)) schedule(static)
  for (long long i = 0; i < ss; ++i) {
    std::vector<double> xo(k);
    for (size_t t = 0; t < k; ++t) xo[t] = x[i * h + static_cast<size_t>(r.outlier_cols[t])];
    const double cxi = r.cx[i];
    for (size_t oo = 0; oo < o; ++oo) {
      double v = static_cast<double>(r.c[i * o + oo]) * cxi * static_cast<double>(wq.scales[oo]) /
                 16129.0;
      const double* w = wo.data() + oo * k;
      for (size_t t = 0; t < k; ++t) v += xo[t] * w[t];
      if (bias != nullptr) v += bias[oo];
      r.y[i * o + oo] = static_cast<float>(v);
    }
  }
  return r;
}

}  // namespace chamferdb::int8
