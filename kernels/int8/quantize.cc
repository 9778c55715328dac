#include "kernels/int8/quantize.h"

#include <cmath>
#include <cstdlib>

namespace chamferdb::int8 {

float QuantizeRow(const float* x, size_t d, int8_t* codes) {
  float c = 0.0f;
  for (size_t j = 0; j < d; ++j) c = std::fmax(c, std::fabs(x[j]));
  QuantizeRowWithScale(x, d, c, codes);
  return c;
}

void QuantizeRowWithScale(const float* x, size_t d, float c, int8_t* codes) {
  if (!(c > 0.0f)) {
    for (size_t j = 0; j < d; ++j) codes[j] = 0;
    return;
  }
  for (size_t j = 0; j < d; ++j) codes[j] = QuantizeValue(x[j], c);
}

void QuantizeRows(const float* x, size_t n, size_t d, int8_t* codes, float* scales) {
  for (size_t i = 0; i < n; ++i) scales[i] = QuantizeRow(x + i * d, d, codes + i * d);
}

void DequantizeRows(const int8_t* codes, const float* scales, size_t n, size_t d, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const float f = scales[i] / 127.0f;
    for (size_t j = 0; j < d; ++j) out[i * d + j] = static_cast<float>(codes[i * d + j]) * f;
  }
}

int64_t L1NormCodes(const int8_t* codes, size_t d) {
  int64_t s = 0;
  for (size_t j = 0; j < d; ++j) s += std::abs(static_cast<int>(codes[j]));
  return s;
}

}  // namespace chamferdb::int8
