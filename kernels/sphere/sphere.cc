#include "kernels/sphere/sphere.h"

#include <cmath>
#include <numbers>

#include "common/rng.h"

namespace chamferdb::sphere {
namespace {

constexpr double kPi = std::numbers::pi;

// Shared recurrence; diag_s is the factor applied on the diagonal (s or 1).
void NbarRecurrence(int lmax, double x, double diag_s, double* out) {
  out[0] = 1.0 / std::sqrt(4.0 * kPi);
  for (int k = 0; k <= lmax; ++k) {
    if (k > 0) {
      out[TriIndex(k, k)] =
          std::sqrt((2.0 * k + 1.0) / (2.0 * k)) * diag_s * out[TriIndex(k - 1, k - 1)];
    }
    if (k + 1 <= lmax) {
      out[TriIndex(k + 1, k)] = std::sqrt(2.0 * k + 3.0) * x * out[TriIndex(k, k)];
    }
    for (int l = k + 2; l <= lmax; ++l) {
      const double ll = static_cast<double>(l) * l;
      const double kk = static_cast<double>(k) * k;
      const double a = std::sqrt((4.0 * ll - 1.0) / (ll - kk));
      const double lm1 = static_cast<double>(l - 1) * (l - 1);
      const double b = std::sqrt((lm1 - kk) / (4.0 * lm1 - 1.0));
      out[TriIndex(l, k)] = a * (x * out[TriIndex(l - 1, k)] - b * out[TriIndex(l - 2, k)]);
    }
  }
}

}  // namespace

void LegendreNbar(int lmax, double x, double s, double* out) { NbarRecurrence(lmax, x, s, out); }

void LegendreNbarReduced(int lmax, double x, double* out) { NbarRecurrence(lmax, x, 1.0, out); }

void RealSh(int lmax, const double* r, double* out) {
  std::vector<double> p(NumTri(lmax));
  LegendreNbarReduced(lmax, r[2], p.data());
  double re = 1.0, im = 0.0;  // (x + iy)^k
  for (int k = 0; k <= lmax; ++k) {
    if (k == 0) {
      for (int l = 0; l <= lmax; ++l) out[ShIndex(l, 0)] = p[TriIndex(l, 0)];
    } else {
      const double nre = re * r[0] - im * r[1];
      const double nim = re * r[1] + im * r[0];
      re = nre;
      im = nim;
      for (int l = k; l <= lmax; ++l) {
        const double c = std::numbers::sqrt2 * p[TriIndex(l, k)];
        out[ShIndex(l, k)] = c * re;
        out[ShIndex(l, -k)] = c * im;
      }
    }
  }
}

void GaussLegendre(int n, std::vector<double>* x, std::vector<double>* w) {
  x->assign(n, 0.0);
  w->assign(n, 0.0);
  for (int i = 0; i < (n + 1) / 2; ++i) {
    double z = std::cos(kPi * (i + 0.75) / (n + 0.5));
    double dp = 0.0;
    for (int iter = 0; iter < 100; ++iter) {
      double p0 = 1.0, p1 = z;  // P_0, P_1
      for (int j = 2; j <= n; ++j) {
        const double p2 = ((2.0 * j - 1.0) * z * p1 - (j - 1.0) * p0) / j;
        p0 = p1;
        p1 = p2;
      }
      // p1 = P_n(z), p0 = P_{n-1}(z).
      dp = n * (z * p1 - p0) / (z * z - 1.0);
      const double dz = p1 / dp;
      z -= dz;
      if (std::abs(dz) < 1e-16) break;
    }
    // Recompute the derivative at the converged node for the weight.
    double p0 = 1.0, p1 = z;
    for (int j = 2; j <= n; ++j) {
      const double p2 = ((2.0 * j - 1.0) * z * p1 - (j - 1.0) * p0) / j;
      p0 = p1;
      p1 = p2;
    }
    dp = n * (z * p1 - p0) / (z * z - 1.0);
    const double wi = 2.0 / ((1.0 - z * z) * dp * dp);
    (*x)[i] = z;
    (*x)[n - 1 - i] = -z;
    (*w)[i] = wi;
    (*w)[n - 1 - i] = wi;
  }
  if (n % 2 == 1) (*x)[n / 2] = 0.0;
}

SphereGrid MakeSphereGrid(int n_beta, int n_alpha) {
  SphereGrid g;
  g.n_beta = n_beta;
  g.n_alpha = n_alpha;
  GaussLegendre(n_beta, &g.x, &g.weight);
  return g;
}

SphereGrid MakeSphereGrid(int band_limit) {
  return MakeSphereGrid(band_limit / 2 + 1, band_limit + 1);
}

int NextSmoothSize(int n) {
  for (int m = n < 1 ? 1 : n;; ++m) {
    int r = m;
    for (int p : {2, 3, 5, 7}) {
      while (r % p == 0) r /= p;
    }
    if (r == 1) return m;
  }
}

std::vector<double> WignerD(int lmax, const double* rot) {
  const int n = NumSh(lmax);
  std::vector<double> d(static_cast<size_t>(n) * n, 0.0);
  const SphereGrid g = MakeSphereGrid(2 * lmax);
  std::vector<double> yi(n), yj(n);
  for (int j = 0; j < g.n_beta; ++j) {
    const double z = g.x[j];
    const double s = std::sqrt(std::max(0.0, 1.0 - z * z));
    for (int q = 0; q < g.n_alpha; ++q) {
      const double alpha = 2.0 * kPi * q / g.n_alpha;
      const double r[3] = {s * std::cos(alpha), s * std::sin(alpha), z};
      // Rᵀ r: column-wise product with the row-major matrix.
      const double rt[3] = {rot[0] * r[0] + rot[3] * r[1] + rot[6] * r[2],
                            rot[1] * r[0] + rot[4] * r[1] + rot[7] * r[2],
                            rot[2] * r[0] + rot[5] * r[1] + rot[8] * r[2]};
      RealSh(lmax, r, yi.data());
      RealSh(lmax, rt, yj.data());
      const double wq = g.weight[j] * 2.0 * kPi / g.n_alpha;
      for (int l = 0; l <= lmax; ++l) {
        for (int a = l * l; a < (l + 1) * (l + 1); ++a) {
          for (int b = l * l; b < (l + 1) * (l + 1); ++b) {
            d[static_cast<size_t>(a) * n + b] += wq * yi[a] * yj[b];
          }
        }
      }
    }
  }
  return d;
}

void QuaternionToRotation(const double* q, double* rot) {
  const double norm = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  const double w = q[0] / norm, x = q[1] / norm, y = q[2] / norm, z = q[3] / norm;
  rot[0] = 1 - 2 * (y * y + z * z);
  rot[1] = 2 * (x * y - w * z);
  rot[2] = 2 * (x * z + w * y);
  rot[3] = 2 * (x * y + w * z);
  rot[4] = 1 - 2 * (x * x + z * z);
  rot[5] = 2 * (y * z - w * x);
  rot[6] = 2 * (x * z - w * y);
  rot[7] = 2 * (y * z + w * x);
  rot[8] = 1 - 2 * (x * x + y * y);
}

void RandomRotation(uint64_t seed, double* rot) {
  Rng rng(seed);
  double q[4];
  for (double& v : q) v = rng.Normal();
  QuaternionToRotation(q, rot);
}

}  // namespace chamferdb::sphere
