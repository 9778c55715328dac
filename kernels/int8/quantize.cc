#include "kernels/int8/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace chamferdb::int8 {

// The row loops below give exactly QuantizeValue's results in a form the compiler can
// vectorize (the int8 token-storage ingest spent ~15% of its time in libm's fmaxf and
// nearbyint calls): std::max instead of std::fmax (equal for the finite inputs this header
// requires), and round-half-even by adding and subtracting 1.5 * 2^52, which rounds any
// |v| < 2^51 to the nearest integer, ties to even, exactly as nearbyint under FE_TONEAREST.
namespace {

inline double RoundHalfEven(double v) {
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52
  return (v + kMagic) - kMagic;
}

}  // namespace

float QuantizeRow(const float* x, size_t d, int8_t* codes) {
  float c = 0.0f;
  for (size_t j = 0; j < d; ++j) c = std::max(c, std::fabs(x[j]));
  QuantizeRowWithScale(x, d, c, codes);
  return c;
}

void QuantizeRowWithScale(const float* x, size_t d, float c, int8_t* codes) {
  if (!(c > 0.0f)) {
    for (size_t j = 0; j < d; ++j) codes[j] = 0;
    return;
  }
  const double cd = static_cast<double>(c);
  for (size_t j = 0; j < d; ++j) {
    const double q = RoundHalfEven(127.0 * static_cast<double>(x[j]) / cd);
    codes[j] = static_cast<int8_t>(std::min(127.0, std::max(-127.0, q)));
  }
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
