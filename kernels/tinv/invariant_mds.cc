#include "common/parallel_for.h"
#include "kernels/tinv/invariant_mds.h"

#include <fmt/format.h>
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <vector>

namespace chamferdb::tinv {
namespace {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

template <typename Body>
void ParallelItems(int64_t n, int threads, Body body) {
  ::chamferdb::ParallelFor(n, threads, body);  // common/parallel_for.h
}

absl::Status ValidateCommon(int64_t batch, int64_t n, const MdsOptions& o) {
  if (batch < 0) return absl::InvalidArgumentError("batch must be ≥ 0");
  if (n < 1) return absl::InvalidArgumentError(fmt::format("N must be ≥ 1; got {}", n));
  if (!(o.tol > 0 && o.tol < 1)) {
    return absl::InvalidArgumentError(fmt::format("degeneracy_tol must be in (0, 1); got {}", o.tol));
  }
  if (o.threads < 1) return absl::InvalidArgumentError("threads must be ≥ 1");
  return absl::OkStatus();
}

// Sign, degeneracy, non-positivity and scaling of one item. `lam` holds all eigenvalues
// (descending, at least k); `y` is n × k (column a = eigenvector a scaled, or X_c·v_a).
void Canonicalize(const std::vector<double>& lam, Matrix& y, const MdsOptions& o,
                  double* y_out, double* eig_out, int32_t* flags) {
  const int64_t n = y.rows();
  const int k = static_cast<int>(y.cols());
  const double lam1 = std::max(lam[0], 0.0);
  const double gap_tol = o.tol * lam1;
  for (int a = 0; a < k; ++a) {
    int32_t f = 0;
    if (!(lam[a] > gap_tol) || lam1 == 0.0) {
      f |= kFlagNonPositive;
      y.col(a).setZero();
    }
    const bool tie_next = a + 1 < static_cast<int>(lam.size()) && lam[a] - lam[a + 1] < gap_tol;
    const bool tie_prev = a > 0 && lam[a - 1] - lam[a] < gap_tol;
    if (tie_next || tie_prev || lam1 == 0.0) f |= kFlagDegenerate;
    // Sign: third moment, else the largest-magnitude entry.
    double m3 = 0, a3 = 0, amax = 0;
    int64_t imax = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = y(i, a);
      m3 += v * v * v;
      a3 += std::abs(v) * v * v;
      if (std::abs(v) > amax) amax = std::abs(v), imax = i;
    }
    double sign = 1.0;
    if (o.sign_rule == SignRule::kThirdMoment && a3 > 0 && std::abs(m3) >= o.tol * a3) {
      sign = m3 < 0 ? -1.0 : 1.0;
    } else if (amax == 0.0) {
      f |= kFlagSignUnresolved;
    } else {
      sign = y(imax, a) < 0 ? -1.0 : 1.0;
      for (int64_t i = 0; i < n; ++i) {
        const double v = y(i, a);
        if (std::abs(v) >= amax - o.tol * amax && (v < 0) != (y(imax, a) < 0)) {
          f |= kFlagSignUnresolved;
          break;
        }
      }
    }
    if (sign < 0) y.col(a) *= -1.0;
    flags[a] = f;
    eig_out[a] = lam[a];
  }
  if (o.scale == ScaleNorm::kRms) {
    double s = 0;
    for (int a = 0; a < k; ++a) s += std::max(lam[a], 0.0);
    s = std::sqrt(s / static_cast<double>(n));
    if (s > 0) y /= s;
  }
  for (int64_t i = 0; i < n; ++i)
    for (int a = 0; a < k; ++a) y_out[i * k + a] = y(i, a);
}

// Classical MDS of one squared-distance matrix d2 (n × n), top-k columns.
void DistanceRoute(const Matrix& d2, const MdsOptions& o, double* y_out, double* eig_out,
                   int32_t* flags) {
  const int64_t n = d2.rows();
  const Eigen::VectorXd row_mean = d2.rowwise().mean();
  const double grand = row_mean.mean();
  Matrix b(n, n);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < n; ++i)
      b(i, j) = -0.5 * (d2(i, j) - row_mean(i) - row_mean(j) + grand);
  Eigen::SelfAdjointEigenSolver<Matrix> es(b);
  // With fewer points than output dimensions (n < k) the missing eigenpairs are zero.
  std::vector<double> lam(std::max<int64_t>(n, o.k), 0.0);
  Matrix y = Matrix::Zero(n, o.k);
  for (int64_t a = 0; a < n; ++a) lam[a] = es.eigenvalues()(n - 1 - a);
  for (int a = 0; a < o.k && a < n; ++a) {
    y.col(a) = es.eigenvectors().col(n - 1 - a) * std::sqrt(std::max(lam[a], 0.0));
  }
  Canonicalize(lam, y, o, y_out, eig_out, flags);
}

double Stress(int64_t n, int k, const double* dist, const double* y) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double d = 0;
      for (int a = 0; a < k; ++a) {
        const double t = y[i * k + a] - y[j * k + a];
        d += t * t;
      }
      const double e = dist[i * n + j] - std::sqrt(d);
      s += e * e;
    }
  return std::sqrt(s);
}

}  // namespace

absl::Status InvariantMdsFromPoints(int64_t batch, int64_t n, int d, const double* points,
                                    const MdsOptions& options, MdsMethod method,
                                    const MdsOutput& out) {
  if (absl::Status s = ValidateCommon(batch, n, options); !s.ok()) return s;
  if (d < 1 || d > kMaxDim) {
    return absl::InvalidArgumentError(fmt::format("d must be in [1, {}]; got {}", kMaxDim, d));
  }
  MdsOptions o = options;
  if (o.k == 0) o.k = d;
  if (o.k < 1 || o.k > d) {
    return absl::InvalidArgumentError(fmt::format("k must be in [1, d = {}]; got {}", d, o.k));
  }
  if (method == MdsMethod::kDistance && n > kMaxDistanceN) {
    return absl::InvalidArgumentError(fmt::format(
        "N = {} exceeds {} for the O(N³) distance route", n, kMaxDistanceN));
  }
  for (int64_t i = 0; i < batch * n * d; ++i) {
    if (!std::isfinite(points[i])) {
      return absl::InvalidArgumentError(fmt::format("points: non-finite value at {}", i));
    }
  }
  const int k = o.k;
  ParallelItems(batch, o.threads, [&](int64_t b) {
    const double* p = points + b * n * d;
    Matrix xc(n, d);
    for (int j = 0; j < d; ++j) {
      double mean = 0;
      for (int64_t i = 0; i < n; ++i) mean += p[i * d + j];
      mean /= static_cast<double>(n);
      for (int64_t i = 0; i < n; ++i) xc(i, j) = p[i * d + j] - mean;
    }
    double* y_out = out.y + b * n * k;
    double* eig_out = out.eigvals + b * k;
    int32_t* flags = out.flags + b * k;
    if (method == MdsMethod::kCoordinates) {
      const Matrix c = xc.transpose() * xc;  // d × d, equals the non-zero spectrum of B
      Eigen::SelfAdjointEigenSolver<Matrix> es(c);
      std::vector<double> lam(d);
      Matrix v(d, k);
      for (int a = 0; a < d; ++a) lam[a] = es.eigenvalues()(d - 1 - a);
      for (int a = 0; a < k; ++a) v.col(a) = es.eigenvectors().col(d - 1 - a);
      Matrix y = xc * v;
      Canonicalize(lam, y, o, y_out, eig_out, flags);
    } else {
      Matrix d2(n, n);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < n; ++i) d2(i, j) = (xc.row(i) - xc.row(j)).squaredNorm();
      DistanceRoute(d2, o, y_out, eig_out, flags);
    }
    if (out.stress != nullptr) {
      if (method == MdsMethod::kDistance) {
        std::vector<double> dist(n * n);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < n; ++j) dist[i * n + j] = (xc.row(i) - xc.row(j)).norm();
        out.stress[b] = Stress(n, k, dist.data(), y_out);
      } else {
        out.stress[b] = 0.0;  // not computed on the linear-time route
      }
    }
  });
  return absl::OkStatus();
}

absl::Status InvariantMdsFromDistances(int64_t batch, int64_t n, const double* dist,
                                       const MdsOptions& options, const MdsOutput& out) {
  if (absl::Status s = ValidateCommon(batch, n, options); !s.ok()) return s;
  if (n > kMaxDistanceN) {
    return absl::InvalidArgumentError(
        fmt::format("N = {} exceeds {} for the O(N³) distance route", n, kMaxDistanceN));
  }
  if (options.k < 1 || options.k > n) {
    return absl::InvalidArgumentError(
        fmt::format("k must be in [1, N = {}] for distance input; got {}", n, options.k));
  }
  for (int64_t b = 0; b < batch; ++b) {
    const double* dm = dist + b * n * n;
    double scale = 0;
    for (int64_t i = 0; i < n * n; ++i) {
      if (!std::isfinite(dm[i]) || dm[i] < 0) {
        return absl::InvalidArgumentError(fmt::format(
            "dist: entry {} of item {} is negative or non-finite", i, b));
      }
      scale = std::max(scale, dm[i]);
    }
    for (int64_t i = 0; i < n; ++i) {
      if (dm[i * n + i] > 1e-12 * scale) {
        return absl::InvalidArgumentError(
            fmt::format("dist: item {} has a non-zero diagonal at {}", b, i));
      }
      for (int64_t j = 0; j < i; ++j) {
        if (std::abs(dm[i * n + j] - dm[j * n + i]) > 1e-12 * scale) {
          return absl::InvalidArgumentError(
              fmt::format("dist: item {} is not symmetric at ({}, {})", b, i, j));
        }
      }
    }
  }
  const int k = options.k;
  ParallelItems(batch, options.threads, [&](int64_t b) {
    const double* dm = dist + b * n * n;
    Matrix d2(n, n);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < n; ++i) {
        // Symmetrise exactly so the eigensolver sees a symmetric matrix.
        const double v = 0.5 * (dm[i * n + j] + dm[j * n + i]);
        d2(i, j) = v * v;
      }
    double* y_out = out.y + b * n * k;
    DistanceRoute(d2, options, y_out, out.eigvals + b * k, out.flags + b * k);
    if (out.stress != nullptr) out.stress[b] = Stress(n, k, dm, y_out);
  });
  return absl::OkStatus();
}

}  // namespace chamferdb::tinv
