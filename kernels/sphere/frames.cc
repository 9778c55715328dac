#include "kernels/sphere/frames.h"

#include <fmt/format.h>

#include <cmath>

namespace chamferdb::sphere {

absl::Status FramesFromBackbone(int64_t n, const double* backbone, double* rot, double* trans) {
  for (int64_t i = 0; i < n; ++i) {
    const double* nn = backbone + i * 9;
    const double* ca = nn + 3;
    const double* c = nn + 6;
    for (int a = 0; a < 9; ++a) {
      if (!std::isfinite(nn[a])) {
        return absl::InvalidArgumentError(fmt::format("backbone: residue {} is not finite", i));
      }
    }
    double e1[3], u[3];
    double n1 = 0, nu = 0;
    for (int a = 0; a < 3; ++a) {
      e1[a] = ca[a] - c[a];
      u[a] = nn[a] - ca[a];
      n1 += e1[a] * e1[a];
      nu += u[a] * u[a];
    }
    n1 = std::sqrt(n1);
    nu = std::sqrt(nu);
    if (!(n1 > 0) || !(nu > 0)) {
      return absl::InvalidArgumentError(
          fmt::format("backbone: residue {} has coincident atoms; no frame", i));
    }
    double dot = 0;
    for (int a = 0; a < 3; ++a) {
      e1[a] /= n1;
      dot += u[a] * e1[a];
    }
    double e2[3], n2 = 0;
    for (int a = 0; a < 3; ++a) {
      e2[a] = u[a] - dot * e1[a];
      n2 += e2[a] * e2[a];
    }
    n2 = std::sqrt(n2);
    if (!(n2 > 1e-9 * nu)) {
      return absl::InvalidArgumentError(
          fmt::format("backbone: residue {} has collinear N, CA, C; no frame", i));
    }
    for (double& v : e2) v /= n2;
    const double e3[3] = {e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
                          e1[0] * e2[1] - e1[1] * e2[0]};
    double* r = rot + i * 9;
    for (int a = 0; a < 3; ++a) {
      r[a * 3 + 0] = e1[a];
      r[a * 3 + 1] = e2[a];
      r[a * 3 + 2] = e3[a];
      trans[i * 3 + a] = ca[a];
    }
  }
  return absl::OkStatus();
}

void ToLocal(const double* rot, const double* origin, const double* p, double* out) {
  const double d[3] = {p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]};
  for (int c = 0; c < 3; ++c) out[c] = rot[c] * d[0] + rot[3 + c] * d[1] + rot[6 + c] * d[2];
}

}  // namespace chamferdb::sphere
