#include "kernels/evonorm/evonorm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace chamferdb::evonorm {
namespace {

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
long double SigmoidL(long double z) { return 1.0L / (1.0L + std::exp(-z)); }

// Two-pass mean/variance of `count` floats (double accumulators, fixed order).
void PlaneSums(const float* x, size_t count, double* sum) {
  double s = 0.0;
  for (size_t t = 0; t < count; ++t) s += x[t];
  *sum = s;
}
double PlaneSqDev(const float* x, size_t count, double mean) {
  double s = 0.0;
  for (size_t t = 0; t < count; ++t) {
    const double d = x[t] - mean;
    s += d * d;
  }
  return s;
}

void UpdateRunningVar(const Shape& s, const Params& p, double batch_var, float* running_var) {
  const double rv = *running_var;
  if (p.convention == Convention::kTfOfficial) {
    *running_var = static_cast<float>(rv - (rv - batch_var) * p.momentum);
  } else {
    const double n = static_cast<double>(s.n * s.h * s.w);
    *running_var = static_cast<float>(rv * (1.0 - p.momentum) + batch_var * p.momentum * n / (n - 1.0));
  }
}

}  // namespace

absl::Status ResolveParams(const Shape& s, Params* p) {
  if (s.n == 0 || s.c == 0 || s.h == 0 || s.w == 0) {
    return absl::InvalidArgumentError("x must have N, C, H, W >= 1");
  }
  if (p->eps < 0.0) {
    p->eps = p->convention == Convention::kTimm && p->variant == Variant::kB0 ? 1e-3 : 1e-5;
  }
  if (!(p->eps > 0.0) || !std::isfinite(p->eps)) {
    return absl::InvalidArgumentError(fmt::format("eps must be positive, got {}", p->eps));
  }
  if (!(p->momentum >= 0.0 && p->momentum <= 1.0)) {
    return absl::InvalidArgumentError(fmt::format("momentum must be in [0, 1], got {}", p->momentum));
  }
  if (p->variant == Variant::kS0) {
    if (p->groups < 0) return absl::InvalidArgumentError("groups must be >= 0");
    int g = p->groups == 0 ? 32 : p->groups;
    if (p->convention == Convention::kTfOfficial) {
      g = std::min<int>(g, static_cast<int>(s.c));
      while (s.c % g != 0) --g;
    } else {
      if (p->groups == 0) g = std::min<int>(32, static_cast<int>(s.c));
      if (s.c % g != 0) {
        return absl::InvalidArgumentError(
            fmt::format("groups = {} does not divide C = {} (timm convention)", g, s.c));
      }
    }
    p->groups = g;
  }
  if (p->variant == Variant::kB0 && p->mode == Mode::kTrain && p->convention == Convention::kTimm &&
      s.n * s.h * s.w < 2) {
    return absl::InvalidArgumentError("timm B0 TRAIN needs N·H·W >= 2 (unbiased running variance)");
  }
  return absl::OkStatus();
}

void EvoNorm(const Shape& s, const Params& p, const float* x, const float* gamma,
             const float* beta, const float* v, float* running_var, float* y, int threads,
             float* batch_var) {
  threads = std::max(1, threads);
  const size_t hw = s.h * s.w;
  const long long planes = static_cast<long long>(s.n * s.c);
  if (!p.nonlinearity) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long long pl = 0; pl < planes; ++pl) {
      const size_t c = pl % s.c;
      for (size_t t = 0; t < hw; ++t) {
        y[pl * hw + t] = static_cast<float>(static_cast<double>(x[pl * hw + t]) * gamma[c] + beta[c]);
      }
    }
    return;
  }
  if (p.variant == Variant::kB0) {
    std::vector<double> plane_sum(planes), plane_mean(planes), plane_var(planes), plane_dev(planes);
    std::vector<double> chan_mean(s.c), left(s.c);
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(static)
      for (long long pl = 0; pl < planes; ++pl) {
        PlaneSums(x + pl * hw, hw, &plane_sum[pl]);
        plane_mean[pl] = plane_sum[pl] / static_cast<double>(hw);
        plane_var[pl] = PlaneSqDev(x + pl * hw, hw, plane_mean[pl]) / static_cast<double>(hw);
      }
      if (p.mode == Mode::kTrain) {
#pragma omp single
        for (size_t c = 0; c < s.c; ++c) {
          double tot = 0.0;
          for (size_t n = 0; n < s.n; ++n) tot += plane_sum[n * s.c + c];
          chan_mean[c] = tot / static_cast<double>(s.n * hw);
        }
#pragma omp for schedule(static)
        for (long long pl = 0; pl < planes; ++pl) {
          plane_dev[pl] = PlaneSqDev(x + pl * hw, hw, chan_mean[pl % s.c]);
        }
#pragma omp single
        for (size_t c = 0; c < s.c; ++c) {
          double tot = 0.0;
          for (size_t n = 0; n < s.n; ++n) tot += plane_dev[n * s.c + c];
          const double var = tot / static_cast<double>(s.n * hw);
          if (batch_var != nullptr) batch_var[c] = static_cast<float>(var);
          left[c] = std::sqrt(var + p.eps);
          UpdateRunningVar(s, p, var, running_var + c);
        }
      } else {
#pragma omp single
        for (size_t c = 0; c < s.c; ++c) left[c] = std::sqrt(static_cast<double>(running_var[c]) + p.eps);
      }
#pragma omp for schedule(static)
      for (long long pl = 0; pl < planes; ++pl) {
        const size_t c = pl % s.c;
        const double inst = std::sqrt(plane_var[pl] + p.eps), vc = v[c], g = gamma[c], b = beta[c];
        for (size_t t = 0; t < hw; ++t) {
          const double xv = x[pl * hw + t];
          const double den = std::max(left[c], vc * xv + inst);
          y[pl * hw + t] = static_cast<float>(xv / den * g + b);
        }
      }
    }
    return;
  }
  // S0: group std per (n, group) over C/g planes.
  const size_t g = static_cast<size_t>(p.groups), cg = s.c / g, block = cg * hw;
  const long long blocks = static_cast<long long>(s.n * g);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long long bl = 0; bl < blocks; ++bl) {
    const float* xb = x + bl * block;  // planes of one group are contiguous in NCHW
    double sum;
    PlaneSums(xb, block, &sum);
    const double mean = sum / static_cast<double>(block);
    const double var = PlaneSqDev(xb, block, mean) / static_cast<double>(block);
    const double inv_std = 1.0 / std::sqrt(var + p.eps);
    for (size_t k = 0; k < cg; ++k) {
      const size_t c = (bl % g) * cg + k;
      const double vc = v[c], gm = gamma[c], b = beta[c];
      for (size_t t = 0; t < hw; ++t) {
        const double xv = xb[k * hw + t];
        y[bl * block + k * hw + t] = static_cast<float>(xv * Sigmoid(vc * xv) * inv_std * gm + b);
      }
    }
  }
}

void EvoNormReference(const Shape& s, const Params& p, const float* x, const float* gamma,
                      const float* beta, const float* v, float* running_var, float* y) {
  using ld = long double;
  const size_t N = s.n, C = s.c, HW = s.h * s.w;
  auto at = [&](size_t n, size_t c, size_t t) -> ld { return x[(n * C + c) * HW + t]; };
  auto mean_var = [](auto&& values, size_t count, ld* mean, ld* var) {
    ld m = 0;
    for (size_t i = 0; i < count; ++i) m += values(i);
    m /= count;
    ld q = 0;
    for (size_t i = 0; i < count; ++i) q += (values(i) - m) * (values(i) - m);
    *mean = m;
    *var = q / count;
  };
  if (!p.nonlinearity) {
    for (size_t n = 0; n < N; ++n)
      for (size_t c = 0; c < C; ++c)
        for (size_t t = 0; t < HW; ++t)
          y[(n * C + c) * HW + t] = static_cast<float>(at(n, c, t) * gamma[c] + beta[c]);
    return;
  }
  const ld eps = p.eps;
  if (p.variant == Variant::kB0) {
    std::vector<ld> left(C);
    for (size_t c = 0; c < C; ++c) {
      if (p.mode == Mode::kTrain) {
        ld m, var;
        mean_var([&](size_t i) { return at(i / HW, c, i % HW); }, N * HW, &m, &var);
        left[c] = std::sqrt(var + eps);
        const ld rv = running_var[c], mom = p.momentum;
        if (p.convention == Convention::kTfOfficial) {
          running_var[c] = static_cast<float>(rv - (rv - var) * mom);
        } else {
          const ld cnt = static_cast<ld>(N * HW);
          running_var[c] = static_cast<float>(rv * (1 - mom) + var * mom * cnt / (cnt - 1));
        }
      } else {
        left[c] = std::sqrt(static_cast<ld>(running_var[c]) + eps);
      }
    }
    for (size_t n = 0; n < N; ++n)
      for (size_t c = 0; c < C; ++c)
        for (size_t t = 0; t < HW; ++t) {
          // Instance statistics recomputed for every element (deliberately naive).
          ld m, var;
          mean_var([&](size_t i) { return at(n, c, i); }, HW, &m, &var);
          const ld xv = at(n, c, t);
          const ld right = static_cast<ld>(v[c]) * xv + std::sqrt(var + eps);
          y[(n * C + c) * HW + t] = static_cast<float>(xv / std::max(left[c], right) * gamma[c] + beta[c]);
        }
    return;
  }
  const size_t G = static_cast<size_t>(p.groups), CG = C / G;
  for (size_t n = 0; n < N; ++n)
    for (size_t gi = 0; gi < G; ++gi) {
      ld m, var;
      mean_var([&](size_t i) { return at(n, gi * CG + i / HW, i % HW); }, CG * HW, &m, &var);
      for (size_t k = 0; k < CG; ++k) {
        const size_t c = gi * CG + k;
        for (size_t t = 0; t < HW; ++t) {
          const ld xv = at(n, c, t);
          y[(n * C + c) * HW + t] = static_cast<float>(
              xv * SigmoidL(static_cast<ld>(v[c]) * xv) / std::sqrt(var + eps) * gamma[c] + beta[c]);
        }
      }
    }
}

}  // namespace chamferdb::evonorm
