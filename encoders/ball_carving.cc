#include "encoders/ball_carving.h"

#include <limits>

namespace chamferdb {

CarvedQuery BallCarve(const float* q, size_t n, size_t dim, float tau) {
  constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  CarvedQuery out;
  out.cluster_of.assign(n, kNone);
  for (size_t c = 0; c < n; ++c) {
    if (out.cluster_of[c] != kNone) continue;
    const uint32_t id = static_cast<uint32_t>(out.clusters++);
    out.cluster_of[c] = id;
    const float* centre = q + c * dim;
    const size_t base = out.tokens.size();
    out.tokens.insert(out.tokens.end(), centre, centre + dim);
    for (size_t j = c + 1; j < n; ++j) {
      if (out.cluster_of[j] != kNone) continue;
      const float* x = q + j * dim;
      double dot = 0;  // double: the threshold test must not depend on summation order
      for (size_t l = 0; l < dim; ++l) dot += static_cast<double>(centre[l]) * x[l];
      if (dot >= static_cast<double>(tau)) {
        out.cluster_of[j] = id;
        for (size_t l = 0; l < dim; ++l) out.tokens[base + l] += x[l];
      }
    }
  }
  return out;
}

}  // namespace chamferdb
