#include "common/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/rng.h"

namespace chamferdb {
namespace {

// GCC's _Float16 (software-emulated on the x86-64 baseline) is the independent reference.
TEST(Half, EncodeMatchesCompilerFloat16OnRandomAndEdgeValues) {
  Rng rng(5);
  std::vector<float> values = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65520.0f, 1e-8f,
                               5.96e-8f, 6.1e-5f, 1e9f, -1e9f, 0.333333f, 2.9802322e-8f};
  for (int i = 0; i < 200000; ++i) {
    const float mag = static_cast<float>(std::ldexp(rng.Uniform(), static_cast<int>(rng.UniformInt(50)) - 30));
    values.push_back(rng.Sign() * mag);
  }
  for (float v : values) {
    const _Float16 ref = static_cast<_Float16>(v);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    ASSERT_EQ(FloatToHalf(v), ref_bits) << "value " << v;
  }
}

TEST(Half, DecodeOfEveryHalfMatchesCompilerAndRoundTrips) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    _Float16 ref;
    std::memcpy(&ref, &h, 2);
    const float decoded = HalfToFloat(h);
    if (std::isnan(static_cast<float>(ref))) {
      EXPECT_TRUE(std::isnan(decoded));
      continue;
    }
    ASSERT_EQ(decoded, static_cast<float>(ref)) << bits;
    ASSERT_EQ(FloatToHalf(decoded), h) << bits;
  }
}

}  // namespace
}  // namespace chamferdb
