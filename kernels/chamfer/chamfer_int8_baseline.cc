// The portable int8 Chamfer path: plain loops over the packed layout, exact int32 dots.
#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/chamfer/chamfer_int8_paths.h"

namespace chamferdb::chamfer_i8_baseline {
namespace {

// dots[t] = ⟨a_i, b_t⟩ for the 16 tokens of chunk c.
void Chunk(const int8_t* a, const int8_t* codes, size_t groups, size_t n_pad, size_t c, int32_t* dots) {
  for (size_t t = 0; t < 16; ++t) dots[t] = 0;
  for (size_t g = 0; g < groups; ++g) {
    const int8_t* row = codes + (g * n_pad + c * 16) * 4;
    const int8_t* ag = a + 4 * g;
    for (size_t t = 0; t < 16; ++t) {
      int32_t s = 0;
      for (size_t r = 0; r < 4; ++r) s += int32_t{ag[r]} * row[t * 4 + r];
      dots[t] += s;
    }
  }
}

}  // namespace

float ScoreI8(const QueryI8& q, const uint8_t* packed, size_t n_pad) {
  const int8_t* codes = reinterpret_cast<const int8_t*>(packed);
  const size_t groups = i8_layout::Groups(q.dim4);
  float scales[16];
  int32_t dots[16];
  float total = 0.0f;
  for (size_t i = 0; i < q.n; ++i) {
    float m = -std::numeric_limits<float>::infinity();
    for (size_t c = 0; c < n_pad / 16; ++c) {
      Chunk(q.codes.data() + i * q.dim4, codes, groups, n_pad, c, dots);
      std::memcpy(scales, packed + i8_layout::ScalesOffset(q.dim4, n_pad) + 64 * c, 64);
      for (size_t t = 0; t < 16; ++t) {
        const float s = static_cast<float>(dots[t]) * scales[t];
        m = s > m ? s : m;
      }
    }
    total += m * (q.scales[i] / 16129.0f);
  }
  return total;
}

void DotsI8(const QueryI8& q, const uint8_t* packed, size_t n_pad, int32_t* out) {
  const int8_t* codes = reinterpret_cast<const int8_t*>(packed);
  for (size_t i = 0; i < q.n; ++i) {
    for (size_t c = 0; c < n_pad / 16; ++c) {
      Chunk(q.codes.data() + i * q.dim4, codes, i8_layout::Groups(q.dim4), n_pad, c, out + i * n_pad + c * 16);
    }
  }
}

}  // namespace chamferdb::chamfer_i8_baseline
