#include "kernels/gaunt/gaunt.h"

#include <fftw3.h>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/base/thread_annotations.h"
#include "kernels/sphere/sphere.h"

namespace chamferdb::gaunt {
namespace {

using Complex = std::complex<double>;
using sphere::NumSh;
using sphere::NumTri;
using sphere::ShIndex;
using sphere::TriIndex;

constexpr double kPi = std::numbers::pi;
constexpr double kSqrt2 = std::numbers::sqrt2;

// ---------------------------------------------------------------------------------------
// FFTW planning. The planner is not thread-safe; every plan in this file is created and
// destroyed under one mutex, and fftw_make_planner_thread_safe() additionally serialises
// against planners elsewhere in the process. Execution (fftw_execute_dft_*) is thread-safe.

std::mutex& PlannerMutex() {
  static std::mutex mu;
  return mu;
}

void EnsureThreadSafePlanner() {
  static std::once_flag once;
  std::call_once(once, [] { fftw_make_planner_thread_safe(); });
}

struct PlanDeleter {
  void operator()(fftw_plan_s* p) const {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lock(PlannerMutex());
    fftw_destroy_plan(p);
  }
};
using Plan = std::unique_ptr<fftw_plan_s, PlanDeleter>;

// Buffers handed to new-array execute must share the planning arrays' alignment; all
// buffers come from fftw_malloc (SIMD-aligned), like the planning arrays.
struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};
template <typename T>
using FftwBuffer = std::unique_ptr<T[], FftwFree>;

template <typename T>
FftwBuffer<T> AllocFftw(size_t n) {
  void* p = fftw_malloc(sizeof(T) * std::max<size_t>(n, 1));
  if (p == nullptr) throw std::bad_alloc();
  return FftwBuffer<T>(static_cast<T*>(p));
}

// ---------------------------------------------------------------------------------------
// Table cache: one immutable entry per key, built exactly once (std::call_once per slot);
// concurrent callers with the same key wait for the one build.

using CacheKey = std::tuple<int, int, int, int, int, int>;  // method, l1, l2, lout, nb, na

template <typename T>
class TableCache {
 public:
  // Returns the entry for `key`, building it with `build()` if absent. *hit tells whether
  // it existed already.
  template <typename Build>
  std::shared_ptr<const T> Get(const CacheKey& key, Build build, bool* hit) {
    std::shared_ptr<Slot> slot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = slots_.find(key);
      if (it == slots_.end()) {
        if (slots_.size() >= kCapacity) Evict();
        it = slots_.emplace(key, std::make_shared<Slot>()).first;
        order_.push_back(key);
      }
      slot = it->second;
    }
    *hit = true;
    std::call_once(slot->once, [&] {
      *hit = false;
      slot->value = std::shared_ptr<const T>(build());
    });
    return slot->value;
  }

 private:
  static constexpr size_t kCapacity = 64;
  struct Slot {
    std::once_flag once;
    std::shared_ptr<const T> value;
  };
  void Evict() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Oldest first; callers still holding the entry keep it alive.
    slots_.erase(order_.front());
    order_.erase(order_.begin());
  }
  std::mutex mu_;  // not absl::Mutex: invisible to ThreadSanitizer in Debian's uninstrumented absl
  // Protected by mu_.
  std::map<CacheKey, std::shared_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
  std::vector<CacheKey> order_ ABSL_GUARDED_BY(mu_);  // insertion order, for eviction
};

// Scaled copy of one item's coefficients: out[l,m] = w[l]·in[l,m] (w may be nullptr).
void ScaleByDegree(int lmax, const double* in, const double* w, double* out) {
  for (int l = 0; l <= lmax; ++l) {
    const double s = (w == nullptr) ? 1.0 : w[l];
    for (int m = -l; m <= l; ++m) out[ShIndex(l, m)] = s * in[ShIndex(l, m)];
  }
}

// ---------------------------------------------------------------------------------------
// kDirect: the Gaunt coefficient list.

struct GauntEntry {
  int32_t i1;
  int32_t i2;
  double g;
};

struct DirectTables {
  int lout = 0;
  std::vector<int64_t> offsets;  // per output index i3: entries[offsets[i3], offsets[i3+1])
  std::vector<GauntEntry> entries;
};

// Φ_m(α): 1 (m = 0), √2 cos(mα) (m > 0), √2 sin(|m|α) (m < 0).
double AzimuthalBasis(int m, double alpha) {
  if (m == 0) return 1.0;
  return m > 0 ? kSqrt2 * std::cos(m * alpha) : kSqrt2 * std::sin(-m * alpha);
}

// The exact separable build: θ-integral by Gauss–Legendre over three Nbar, φ-integral by
// the trapezoid rule, both exact for the degrees involved (spec 1.4 T2).
std::unique_ptr<DirectTables> BuildDirectTables(int l1max, int l2max, int lout) {
  auto t = std::make_unique<DirectTables>();
  t->lout = lout;
  const int n_total = l1max + l2max + lout;
  const int lmax = std::max({l1max, l2max, lout});
  const sphere::SphereGrid grid = sphere::MakeSphereGrid(n_total);
  const int nb = grid.n_beta, na = grid.n_alpha;
  std::vector<double> p(static_cast<size_t>(nb) * NumTri(lmax));  // [j][tri]
  for (int j = 0; j < nb; ++j) {
    const double x = grid.x[j];
    sphere::LegendreNbar(lmax, x, std::sqrt(std::max(0.0, 1.0 - x * x)), &p[j * NumTri(lmax)]);
  }
  // phi[m + lmax][q]
  std::vector<double> phi(static_cast<size_t>(2 * lmax + 1) * na);
  for (int m = -lmax; m <= lmax; ++m)
    for (int q = 0; q < na; ++q) phi[(m + lmax) * na + q] = AzimuthalBasis(m, 2 * kPi * q / na);
  auto phi_integral = [&](int m1, int m2, int m3) {
    const double* a = &phi[(m1 + lmax) * na];
    const double* b = &phi[(m2 + lmax) * na];
    const double* c = &phi[(m3 + lmax) * na];
    double s = 0;
    for (int q = 0; q < na; ++q) s += a[q] * b[q] * c[q];
    return s * 2 * kPi / na;
  };

  std::vector<std::vector<GauntEntry>> per_out(NumSh(lout));
  for (int l3 = 0; l3 <= lout; ++l3) {
    for (int l1 = 0; l1 <= l1max; ++l1) {
      for (int l2 = std::abs(l3 - l1); l2 <= std::min(l2max, l1 + l3); ++l2) {
        if ((l1 + l2 + l3) % 2 != 0) continue;
        for (int m1 = -l1; m1 <= l1; ++m1) {
          for (int m2 = -l2; m2 <= l2; ++m2) {
            const int a1 = std::abs(m1), a2 = std::abs(m2);
            const int cand[4] = {a1 + a2, -(a1 + a2), std::abs(a1 - a2), -std::abs(a1 - a2)};
            for (int ci = 0; ci < 4; ++ci) {
              const int m3 = cand[ci];
              if (std::abs(m3) > l3) continue;
              bool dup = false;  // m3 = 0 or a1 + a2 = |a1 - a2| repeat candidates
              for (int cj = 0; cj < ci; ++cj) dup |= (cand[cj] == m3);
              if (dup) continue;
              const double ph = phi_integral(m1, m2, m3);
              if (std::abs(ph) < 1e-12) continue;
              double th = 0;
              for (int j = 0; j < nb; ++j) {
                const double* pj = &p[j * NumTri(lmax)];
                th += grid.weight[j] * pj[TriIndex(l1, a1)] * pj[TriIndex(l2, a2)] *
                      pj[TriIndex(l3, std::abs(m3))];
              }
              const double g = th * ph;
              if (std::abs(g) < 1e-15) continue;
              per_out[ShIndex(l3, m3)].push_back({ShIndex(l1, m1), ShIndex(l2, m2), g});
            }
          }
        }
      }
    }
  }
  t->offsets.assign(NumSh(lout) + 1, 0);
  for (int i = 0; i < NumSh(lout); ++i) t->offsets[i + 1] = t->offsets[i] + per_out[i].size();
  t->entries.reserve(t->offsets.back());
  for (auto& v : per_out) t->entries.insert(t->entries.end(), v.begin(), v.end());
  return t;
}

// kDense: G[i1][i2][i3] by exact quadrature over the full sphere grid of band limit
// L1 + L2 + Lout (no selection rule used).
struct DenseTables {
  int n1 = 0, n2 = 0, n3 = 0;
  std::vector<double> g;  // [i3][i1][i2]
};

std::unique_ptr<DenseTables> BuildDenseTables(int l1, int l2, int lout) {
  auto t = std::make_unique<DenseTables>();
  t->n1 = NumSh(l1), t->n2 = NumSh(l2), t->n3 = NumSh(lout);
  t->g.assign(static_cast<size_t>(t->n1) * t->n2 * t->n3, 0.0);
  const int lmax = std::max({l1, l2, lout});
  const sphere::SphereGrid grid = sphere::MakeSphereGrid(l1 + l2 + lout);
  std::vector<double> y(NumSh(lmax)), outer(static_cast<size_t>(t->n1) * t->n2);
  for (int j = 0; j < grid.n_beta; ++j) {
    const double st = std::sqrt(std::max(0.0, 1 - grid.x[j] * grid.x[j]));
    for (int q = 0; q < grid.n_alpha; ++q) {
      const double a = 2 * kPi * q / grid.n_alpha;
      const double r[3] = {st * std::cos(a), st * std::sin(a), grid.x[j]};
      sphere::RealSh(lmax, r, y.data());
      const double w = grid.weight[j] * 2 * kPi / grid.n_alpha;
      for (int i1 = 0; i1 < t->n1; ++i1)
        for (int i2 = 0; i2 < t->n2; ++i2) outer[i1 * t->n2 + i2] = w * y[i1] * y[i2];
      for (int i3 = 0; i3 < t->n3; ++i3) {
        double* gi = &t->g[static_cast<size_t>(i3) * t->n1 * t->n2];
        const double y3 = y[i3];
        for (size_t k = 0; k < outer.size(); ++k) gi[k] += outer[k] * y3;
      }
    }
  }
  return t;
}

void DenseApply(const DenseTables& t, const double* x, const double* y, double* z) {
  for (int i3 = 0; i3 < t.n3; ++i3) {
    const double* gi = &t.g[static_cast<size_t>(i3) * t.n1 * t.n2];
    double s = 0;
    for (int i1 = 0; i1 < t.n1; ++i1) {
      double row = 0;
      for (int i2 = 0; i2 < t.n2; ++i2) row += gi[i1 * t.n2 + i2] * y[i2];
      s += x[i1] * row;
    }
    z[i3] = s;
  }
}

void DirectApply(const DirectTables& t, const double* x, const double* y, double* z) {
  const int n3 = NumSh(t.lout);
  for (int i3 = 0; i3 < n3; ++i3) {
    double s = 0;
    for (int64_t e = t.offsets[i3]; e < t.offsets[i3 + 1]; ++e) {
      const GauntEntry& g = t.entries[e];
      s += g.g * x[g.i1] * y[g.i2];
    }
    z[i3] = s;
  }
}

// ---------------------------------------------------------------------------------------
// kFourier / kFourierDirectConv: exact change of basis to the 2D Fourier basis on the
// torus (spec 1.3).

struct FourierTables {
  int l1 = 0, l2 = 0, lout = 0, u_max = 0;  // u_max = U = l1 + l2
  int m = 0;                                // FFT size (7-smooth, ≥ 2U+1)
  int la = 0;                               // degrees covered by `a`: max(l1, l2, lout)
  // a(l,k,u) for |u| ≤ l, stored at a[(TriIndex(l,k))*(2·la+1) + u + la]. Real for even
  // k, purely imaginary for odd k; stored as complex.
  std::vector<Complex> a;
  // The non-zero component (see WIsReal) of W(l,k,u) for l ≤ lout, |u| ≤ U, at
  // wc[TriIndex(l,k)*(2U+1) + u + U].
  std::vector<double> wc;
  Plan c2r;  // M×M complex (M×(M/2+1)) → real
  Plan r2c;  // M×M real → complex
};

// W(l,k,u) is purely real or purely imaginary: a(l,k,·) lives on u' ≡ l (mod 2) and is
// real for even k, imaginary for odd k, while I(n) is real for even n and imaginary for
// odd n. WIsReal tells which; wc stores the non-zero component.
bool WIsReal(int l, int k, int u) { return ((u - l) % 2 == 0) == (k % 2 == 0); }

Complex IntegralSinExp(int n) {  // ∫₀^π e^{inθ} sinθ dθ
  if (n % 2 == 0) return Complex(2.0 / (1.0 - static_cast<double>(n) * n), 0.0);
  if (n == 1) return Complex(0.0, kPi / 2);
  if (n == -1) return Complex(0.0, -kPi / 2);
  return Complex(0.0, 0.0);
}

std::unique_ptr<FourierTables> BuildFourierTables(int l1, int l2, int lout, bool with_fft) {
  auto t = std::make_unique<FourierTables>();
  t->l1 = l1;
  t->l2 = l2;
  t->lout = lout;
  t->u_max = l1 + l2;
  t->la = std::max({l1, l2, lout});
  const int la = t->la, nu = 2 * la + 1, uu = t->u_max, nw = 2 * uu + 1;
  // a(l,k,u) by an exact DFT of the torus-extended Nbar (signed sinθ), Ns ≥ 2l+1 points.
  const int ns = 2 * la + 2;
  std::vector<double> theta_vals(static_cast<size_t>(ns) * NumTri(la));
  for (int j = 0; j < ns; ++j) {
    const double th = 2 * kPi * j / ns;
    sphere::LegendreNbar(la, std::cos(th), std::sin(th), &theta_vals[j * NumTri(la)]);
  }
  t->a.assign(static_cast<size_t>(NumTri(la)) * nu, Complex(0, 0));
  for (int l = 0; l <= la; ++l) {
    for (int k = 0; k <= l; ++k) {
      for (int u = -l; u <= l; ++u) {
        if ((u - l) % 2 != 0) continue;  // a(l,k,u) = 0 unless u ≡ l (mod 2)
        Complex s(0, 0);
        for (int j = 0; j < ns; ++j) {
          const double ang = -2 * kPi * static_cast<double>(u) * j / ns;
          s += theta_vals[j * NumTri(la) + TriIndex(l, k)] * Complex(std::cos(ang), std::sin(ang));
        }
        s /= ns;
        // Enforce the exact structure (real for even k, imaginary for odd k).
        if (k % 2 == 0) s = Complex(s.real(), 0.0);
        else s = Complex(0.0, s.imag());
        t->a[TriIndex(l, k) * nu + u + la] = s;
      }
    }
  }
  t->wc.assign(static_cast<size_t>(NumTri(lout)) * nw, 0.0);
  for (int l = 0; l <= lout; ++l) {
    for (int k = 0; k <= l; ++k) {
      for (int u = -uu; u <= uu; ++u) {
        Complex s(0, 0);
        for (int up = -l; up <= l; ++up) {
          s += t->a[TriIndex(l, k) * nu + up + la] * IntegralSinExp(u + up);
        }
        t->wc[TriIndex(l, k) * nw + u + uu] = WIsReal(l, k, u) ? s.real() : s.imag();
      }
    }
  }
  t->m = sphere::NextSmoothSize(2 * uu + 1);
  if (with_fft) {
    const int m = t->m, mh = m / 2 + 1;
    auto cbuf = AllocFftw<fftw_complex>(static_cast<size_t>(m) * mh);
    auto rbuf = AllocFftw<double>(static_cast<size_t>(m) * m);
    EnsureThreadSafePlanner();
    std::lock_guard<std::mutex> lock(PlannerMutex());
    t->c2r.reset(fftw_plan_dft_c2r_2d(m, m, cbuf.get(), rbuf.get(), FFTW_ESTIMATE));
    t->r2c.reset(fftw_plan_dft_r2c_2d(m, m, rbuf.get(), cbuf.get(), FFTW_ESTIMATE));
    if (!t->c2r || !t->r2c) throw std::runtime_error("FFTW planning failed");
  }
  return t;
}

// sh2f for one item, columns v ≥ 0 only (f is real on the torus, so F[u][−v] = conj
// F[−u][v]). Writes F[u + lx][v] for |u| ≤ lx, 0 ≤ v ≤ lx into f (zeroed by the caller),
// row stride `stride`.
void ShToFourierHalf(const FourierTables& t, int lx, const double* x, Complex* f, int stride) {
  const int nu = 2 * t.la + 1;
  for (int l = 0; l <= lx; ++l) {
    for (int k = 0; k <= l; ++k) {
      const Complex* a = &t.a[TriIndex(l, k) * nu + t.la];
      const Complex c = (k == 0) ? Complex(x[ShIndex(l, 0)], 0.0)
                                 : Complex(x[ShIndex(l, k)], -x[ShIndex(l, -k)]) / kSqrt2;
      for (int u = -l; u <= l; u += 2) f[(u + lx) * stride + k] += a[u] * c;
    }
  }
}

// f2sh from H[u][v] given for |u| ≤ U and 0 ≤ v ≤ lout via the accessor h(u, v)
// (H[u][−v] = conj H[−u][v] since h is real). Per order k the complex sums of spec 1.3
// reduce to real dot products of length 2U+1 with wc, one per output coefficient.
template <typename HAt>
void FourierToSh(const FourierTables& t, HAt h, double* z) {
  const int uu = t.u_max, nw = 2 * uu + 1;
  std::vector<double> cos_part(2 * nw), sin_part(2 * nw);  // [l parity][u + U]
  for (int k = 0; k <= t.lout; ++k) {
    for (int u = -uu; u <= uu; ++u) {
      const Complex hp = h(u, k);
      const Complex hm = std::conj(h(-u, k));  // H[u][−k]
      const Complex p = (k == 0) ? hp : hp + hm;
      const Complex q = hp - hm;
      for (int parity = 0; parity < 2; ++parity) {
        // Re(P·W) and Re(i·Q·W) with W = wc (real) or W = i·wc (imaginary).
        const bool real = WIsReal(parity, k, u);
        cos_part[parity * nw + u + uu] = real ? p.real() : -p.imag();
        sin_part[parity * nw + u + uu] = real ? -q.imag() : -q.real();
      }
    }
    for (int l = k; l <= t.lout; ++l) {
      const double* wc = &t.wc[static_cast<size_t>(TriIndex(l, k)) * nw];
      const double* cp = &cos_part[(l % 2) * nw];
      const double* sp = &sin_part[(l % 2) * nw];
      double zc = 0, zs = 0;
      for (int i = 0; i < nw; ++i) {
        zc += wc[i] * cp[i];
        zs += wc[i] * sp[i];
      }
      if (k == 0) {
        z[ShIndex(l, 0)] = 2 * kPi * zc;
      } else {
        z[ShIndex(l, k)] = kSqrt2 * kPi * zc;
        z[ShIndex(l, -k)] = kSqrt2 * kPi * zs;
      }
    }
  }
}

struct FourierScratch {
  FftwBuffer<fftw_complex> cf, cg;
  FftwBuffer<double> rf, rg;
};

void FourierFftApply(const FourierTables& t, const double* x, const double* y, double* z,
                     FourierScratch& s) {
  const int m = t.m, mh = m / 2 + 1;
  Complex* cf = reinterpret_cast<Complex*>(s.cf.get());
  Complex* cg = reinterpret_cast<Complex*>(s.cg.get());
  // Spectra with wrap-around rows: row (u mod M), column v ≥ 0.
  auto load = [&](int lx, const double* coef, Complex* c) {
    std::fill(c, c + static_cast<size_t>(m) * mh, Complex(0, 0));
    // Rows u ∈ [−lx, lx] are contiguous after a shift; write through a small staging.
    std::vector<Complex> stage(static_cast<size_t>(2 * lx + 1) * (lx + 1), Complex(0, 0));
    ShToFourierHalf(t, lx, coef, stage.data(), lx + 1);
    for (int u = -lx; u <= lx; ++u) {
      Complex* row = c + static_cast<size_t>((u + m) % m) * mh;
      for (int v = 0; v <= lx; ++v) row[v] = stage[(u + lx) * (lx + 1) + v];
    }
  };
  load(t.l1, x, cf);
  load(t.l2, y, cg);
  fftw_execute_dft_c2r(t.c2r.get(), s.cf.get(), s.rf.get());
  fftw_execute_dft_c2r(t.c2r.get(), s.cg.get(), s.rg.get());
  const size_t n = static_cast<size_t>(m) * m;
  const double inv = 1.0 / (static_cast<double>(m) * m);
  for (size_t i = 0; i < n; ++i) s.rf[i] *= s.rg[i] * inv;
  fftw_execute_dft_r2c(t.r2c.get(), s.rf.get(), s.cf.get());
  FourierToSh(t, [&](int u, int v) { return cf[static_cast<size_t>((u + m) % m) * mh + v]; }, z);
}

void FourierDirectConvApply(const FourierTables& t, const double* x, const double* y,
                            double* z) {
  // Full F (all v) for both inputs, then the linear 2D convolution restricted to v ≥ 0.
  auto full = [&](int lx, const double* coef) {
    const int n = 2 * lx + 1;
    std::vector<Complex> half(static_cast<size_t>(n) * (lx + 1), Complex(0, 0));
    ShToFourierHalf(t, lx, coef, half.data(), lx + 1);
    std::vector<Complex> f(static_cast<size_t>(n) * n);
    for (int u = -lx; u <= lx; ++u)
      for (int v = -lx; v <= lx; ++v)
        f[(u + lx) * n + v + lx] =
            v >= 0 ? half[(u + lx) * (lx + 1) + v] : std::conj(half[(-u + lx) * (lx + 1) - v]);
    return f;
  };
  const std::vector<Complex> f = full(t.l1, x), g = full(t.l2, y);
  const int uu = t.u_max, n1 = 2 * t.l1 + 1, n2 = 2 * t.l2 + 1;
  std::vector<Complex> h(static_cast<size_t>(2 * uu + 1) * (t.lout + 1), Complex(0, 0));
  for (int u1 = -t.l1; u1 <= t.l1; ++u1)
    for (int v1 = -t.l1; v1 <= t.l1; ++v1) {
      const Complex fv = f[(u1 + t.l1) * n1 + v1 + t.l1];
      for (int u2 = -t.l2; u2 <= t.l2; ++u2)
        for (int v2 = -t.l2; v2 <= t.l2; ++v2) {
          const int v = v1 + v2;
          if (v < 0 || v > t.lout) continue;
          h[(u1 + u2 + uu) * (t.lout + 1) + v] += fv * g[(u2 + t.l2) * n2 + v2 + t.l2];
        }
    }
  FourierToSh(t, [&](int u, int v) { return h[(u + uu) * (t.lout + 1) + v]; }, z);
}

// ---------------------------------------------------------------------------------------
// kGrid: Gauss–Legendre sphere grid (spec 2.3).

struct GridTables {
  int l1 = 0, l2 = 0, lout = 0, lmax = 0;
  int nb = 0, na = 0, nh = 0;  // rings, longitudes, na/2+1
  std::vector<double> p;       // Nbar at ring j: p[j*NumTri(lmax) + TriIndex(l,k)]
  std::vector<double> wp;      // weight_j · Nbar, same layout (for the analysis)
  Plan c2r;                    // nb transforms of length na, complex (nh) → real
  Plan r2c;
};

std::unique_ptr<GridTables> BuildGridTables(int l1, int l2, int lout, int nb, int na) {
  auto t = std::make_unique<GridTables>();
  t->l1 = l1;
  t->l2 = l2;
  t->lout = lout;
  t->lmax = std::max({l1, l2, lout});
  t->nb = nb;
  t->na = na;
  t->nh = na / 2 + 1;
  const sphere::SphereGrid grid = sphere::MakeSphereGrid(nb, na);
  const int nt = NumTri(t->lmax);
  t->p.resize(static_cast<size_t>(nb) * nt);
  t->wp.resize(t->p.size());
  for (int j = 0; j < nb; ++j) {
    const double x = grid.x[j];
    sphere::LegendreNbar(t->lmax, x, std::sqrt(std::max(0.0, 1.0 - x * x)), &t->p[j * nt]);
    for (int i = 0; i < nt; ++i) t->wp[j * nt + i] = grid.weight[j] * t->p[j * nt + i];
  }
  auto cbuf = AllocFftw<fftw_complex>(static_cast<size_t>(nb) * t->nh);
  auto rbuf = AllocFftw<double>(static_cast<size_t>(nb) * na);
  EnsureThreadSafePlanner();
  std::lock_guard<std::mutex> lock(PlannerMutex());
  int n[1] = {na};
  t->c2r.reset(fftw_plan_many_dft_c2r(1, n, nb, cbuf.get(), nullptr, 1, t->nh, rbuf.get(),
                                      nullptr, 1, na, FFTW_ESTIMATE));
  t->r2c.reset(fftw_plan_many_dft_r2c(1, n, nb, rbuf.get(), nullptr, 1, na, cbuf.get(),
                                      nullptr, 1, t->nh, FFTW_ESTIMATE));
  if (!t->c2r || !t->r2c) throw std::runtime_error("FFTW planning failed");
  return t;
}

struct GridScratch {
  FftwBuffer<fftw_complex> c;
  FftwBuffer<double> rf, rg;
};

// Synthesis of one input onto the grid: per ring the Legendre sums, then a c2r.
void GridSynthesis(const GridTables& t, int lx, const double* coef, GridScratch& s, double* out) {
  const int nt = NumTri(t.lmax);
  Complex* c = reinterpret_cast<Complex*>(s.c.get());
  std::fill(c, c + static_cast<size_t>(t.nb) * t.nh, Complex(0, 0));
  for (int j = 0; j < t.nb; ++j) {
    const double* pj = &t.p[j * nt];
    Complex* cj = c + static_cast<size_t>(j) * t.nh;
    double s0 = 0;
    for (int l = 0; l <= lx; ++l) s0 += coef[ShIndex(l, 0)] * pj[TriIndex(l, 0)];
    cj[0] = Complex(s0, 0);
    for (int k = 1; k <= lx; ++k) {
      double sc = 0, ss = 0;
      for (int l = k; l <= lx; ++l) {
        sc += coef[ShIndex(l, k)] * pj[TriIndex(l, k)];
        ss += coef[ShIndex(l, -k)] * pj[TriIndex(l, k)];
      }
      // f = S0 + √2 Σ (Sc cos kα + Ss sin kα) = S0 + 2 Re Σ ((Sc − i Ss)/√2) e^{ikα}.
      cj[k] = Complex(sc, -ss) / kSqrt2;
    }
  }
  fftw_execute_dft_c2r(t.c2r.get(), s.c.get(), out);
}

// Analysis of the product values in s.rf into z (lout of the tables):
// z[l,±k] = Σ_j w_j Nbar_j(l,k) c_j[±k], summed in ring order j.
void GridAnalysis(const GridTables& t, GridScratch& s, double* z) {
  fftw_execute_dft_r2c(t.r2c.get(), s.rf.get(), s.c.get());
  const Complex* c = reinterpret_cast<const Complex*>(s.c.get());
  const int nt = NumTri(t.lmax);
  const double scale = 2 * kPi / t.na;
  std::fill(z, z + NumSh(t.lout), 0.0);
  for (int j = 0; j < t.nb; ++j) {
    const double* wpj = &t.wp[j * nt];
    const Complex* cj = c + static_cast<size_t>(j) * t.nh;
    const double c0 = scale * cj[0].real();
    for (int l = 0; l <= t.lout; ++l) z[ShIndex(l, 0)] += wpj[TriIndex(l, 0)] * c0;
    for (int k = 1; k <= t.lout; ++k) {
      const double cp = scale * kSqrt2 * cj[k].real();
      const double cm = -scale * kSqrt2 * cj[k].imag();
      for (int l = k; l <= t.lout; ++l) {
        z[ShIndex(l, k)] += wpj[TriIndex(l, k)] * cp;
        z[ShIndex(l, -k)] += wpj[TriIndex(l, k)] * cm;
      }
    }
  }
}

void GridApply(const GridTables& t, const double* x, const double* y, double* z,
               GridScratch& s) {
  GridSynthesis(t, t.l1, x, s, s.rf.get());
  GridSynthesis(t, t.l2, y, s, s.rg.get());
  const size_t n = static_cast<size_t>(t.nb) * t.na;
  for (size_t i = 0; i < n; ++i) s.rf[i] *= s.rg[i];
  GridAnalysis(t, s, z);
}

// ---------------------------------------------------------------------------------------

TableCache<DirectTables>& DirectCache() {
  static auto* c = new TableCache<DirectTables>();
  return *c;
}
TableCache<FourierTables>& FourierCache() {
  static auto* c = new TableCache<FourierTables>();
  return *c;
}
TableCache<DenseTables>& DenseCache() {
  static auto* c = new TableCache<DenseTables>();
  return *c;
}
TableCache<GridTables>& GridCache() {
  static auto* c = new TableCache<GridTables>();
  return *c;
}

void DefaultGrid(const GauntTPShape& s, const GauntTPOptions& o, int* nb, int* na) {
  const int n_total = s.l1 + s.l2 + s.lout;
  const int lmax = std::max({s.l1, s.l2, s.lout});
  *nb = o.n_beta > 0 ? o.n_beta : n_total / 2 + 1;
  *na = o.n_alpha > 0 ? o.n_alpha : sphere::NextSmoothSize(std::max(n_total + 1, 2 * lmax + 1));
}

// Runs body(item, thread) for item in [0, n) on `threads` OpenMP threads, static schedule.
// Exceptions (bad_alloc) never cross the OpenMP region: the first is captured and rethrown
// after it, where RunHandler turns it into a status.
template <typename Body>
void ParallelItems(int64_t n, int threads, Body body) {
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  std::exception_ptr error;
  std::mutex error_mu;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    try {
      body(i, omp_get_thread_num());
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

absl::Status ValidateGauntTP(const GauntTPShape& s, const GauntTPOptions& o) {
  if (s.batch < 0) return absl::InvalidArgumentError("batch must be ≥ 0");
  if (s.channels < 1) return absl::InvalidArgumentError("channels must be ≥ 1");
  if (s.y_channels != s.channels && s.y_channels != 1) {
    return absl::InvalidArgumentError(fmt::format(
        "y_channels must equal channels ({}) or be 1 (broadcast); got {}", s.channels,
        s.y_channels));
  }
  if (s.l1 < 0 || s.l1 > kMaxInputDegree) {
    return absl::InvalidArgumentError(
        fmt::format("l1 must be in [0, {}]; got {}", kMaxInputDegree, s.l1));
  }
  if (s.l2 < 0 || s.l2 > kMaxInputDegree) {
    return absl::InvalidArgumentError(
        fmt::format("l2 must be in [0, {}]; got {}", kMaxInputDegree, s.l2));
  }
  if (s.lout < 0 || s.lout > s.l1 + s.l2) {
    return absl::InvalidArgumentError(
        fmt::format("lout must be in [0, l1 + l2 = {}]; got {}", s.l1 + s.l2, s.lout));
  }
  if (o.threads < 1) return absl::InvalidArgumentError("threads must be ≥ 1");
  if (o.method == GauntMethod::kDirect && s.l1 + s.l2 > kMaxDirectDegreeSum) {
    return absl::InvalidArgumentError(fmt::format(
        "method direct supports l1 + l2 ≤ {} (its table grows as L⁵); got {}",
        kMaxDirectDegreeSum, s.l1 + s.l2));
  }
  if (o.method == GauntMethod::kDense && s.l1 + s.l2 > kMaxDenseDegreeSum) {
    return absl::InvalidArgumentError(fmt::format(
        "method dense supports l1 + l2 ≤ {} (its table grows as L⁶); got {}",
        kMaxDenseDegreeSum, s.l1 + s.l2));
  }
  if (o.method != GauntMethod::kGrid && (o.n_beta != 0 || o.n_alpha != 0)) {
    return absl::InvalidArgumentError("n_beta / n_alpha apply to method grid only");
  }
  if (o.method == GauntMethod::kGrid) {
    const int lmax = std::max({s.l1, s.l2, s.lout});
    if (o.n_beta < 0 || o.n_beta > kMaxGridSize) {
      return absl::InvalidArgumentError(
          fmt::format("n_beta must be in [0, {}] (0 = exact default); got {}", kMaxGridSize,
                      o.n_beta));
    }
    if (o.n_alpha != 0 && (o.n_alpha < 2 * lmax + 1 || o.n_alpha > kMaxGridSize)) {
      return absl::InvalidArgumentError(fmt::format(
          "n_alpha must be 0 (exact default) or in [2·max(l1,l2,lout)+1 = {}, {}]; got {}",
          2 * lmax + 1, kMaxGridSize, o.n_alpha));
    }
  }
  return absl::OkStatus();
}

double GauntTPCostPerItem(const GauntTPShape& s, GauntMethod method) {
  const double l = std::max({s.l1, s.l2, s.lout / 2, 1});
  switch (method) {
    case GauntMethod::kDirect:
      return 2.0 * 0.35 * std::pow(l + 1, 5);  // ≈ nnz MACs (1.1 M at L = 16)
    case GauntMethod::kDense:
      return 2.0 * NumSh(s.l1) * NumSh(s.l2) * NumSh(s.lout);
    case GauntMethod::kFourierDirectConv:
      return 8.0 * std::pow(2 * l + 1, 4) / 2;
    case GauntMethod::kFourier: {
      const double m = sphere::NextSmoothSize(2 * (s.l1 + s.l2) + 1);
      return 15.0 * m * m * std::log2(m) + 16.0 * std::pow(l + 1, 3);
    }
    case GauntMethod::kGrid: {
      const double n = s.l1 + s.l2 + s.lout + 1;
      return 5.0 * n * n * std::log2(n) + 6.0 * n * std::pow(l + 1, 2);
    }
  }
  return 0;
}

absl::Status GauntTensorProduct(const GauntTPShape& s, const double* x, const double* y,
                                const GauntTPWeights& wt, const GauntTPOptions& o, double* z,
                                GauntTPStats* stats) {
  if (absl::Status st = ValidateGauntTP(s, o); !st.ok()) return st;
  GauntTPStats local;
  GauntTPStats& st = stats != nullptr ? *stats : local;
  st = GauntTPStats();
  const auto t0 = std::chrono::steady_clock::now();
  const int n1 = NumSh(s.l1), n2 = NumSh(s.l2), n3 = NumSh(s.lout);
  const int64_t items = s.batch * s.channels;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(o.threads, items)));

  // Per-thread scaled copies of x, y and of the output.
  std::vector<std::vector<double>> xs(threads, std::vector<double>(n1)),
      ys(threads, std::vector<double>(n2));
  auto prepare = [&](int64_t item, int th) {
    const int64_t b = item / s.channels, c = item % s.channels;
    const int64_t yc = (s.y_channels == 1) ? 0 : c;
    ScaleByDegree(s.l1, x + item * n1, wt.w1 ? wt.w1 + c * (s.l1 + 1) : nullptr,
                  xs[th].data());
    ScaleByDegree(s.l2, y + (b * s.y_channels + yc) * n2,
                  wt.w2 ? wt.w2 + c * (s.l2 + 1) : nullptr, ys[th].data());
  };
  auto finish = [&](int64_t item, double* zi) {
    if (wt.wout == nullptr) return;
    const int64_t c = item % s.channels;
    for (int l = 0; l <= s.lout; ++l)
      for (int m = -l; m <= l; ++m) zi[ShIndex(l, m)] *= wt.wout[c * (s.lout + 1) + l];
  };
  auto mark_setup = [&](bool hit) {
    st.cache_hit = hit;
    if (!hit) {
      st.setup_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  };

  switch (o.method) {
    case GauntMethod::kDirect: {
      bool hit = false;
      auto t = DirectCache().Get({0, s.l1, s.l2, s.lout, 0, 0},
                                 [&] { return BuildDirectTables(s.l1, s.l2, s.lout); }, &hit);
      mark_setup(hit);
      st.table_entries = static_cast<int64_t>(t->entries.size());
      ParallelItems(items, threads, [&](int64_t item, int th) {
        prepare(item, th);
        DirectApply(*t, xs[th].data(), ys[th].data(), z + item * n3);
        finish(item, z + item * n3);
      });
      break;
    }
    case GauntMethod::kDense: {
      bool hit = false;
      auto t = DenseCache().Get({4, s.l1, s.l2, s.lout, 0, 0},
                                [&] { return BuildDenseTables(s.l1, s.l2, s.lout); }, &hit);
      mark_setup(hit);
      st.table_entries = static_cast<int64_t>(t->g.size());
      ParallelItems(items, threads, [&](int64_t item, int th) {
        prepare(item, th);
        DenseApply(*t, xs[th].data(), ys[th].data(), z + item * n3);
        finish(item, z + item * n3);
      });
      break;
    }
    case GauntMethod::kFourier:
    case GauntMethod::kFourierDirectConv: {
      const bool fft = o.method == GauntMethod::kFourier;
      bool hit = false;
      // Both variants share the tables; the FFT variant also needs plans.
      auto t = FourierCache().Get({fft ? 1 : 2, s.l1, s.l2, s.lout, 0, 0},
                                  [&] { return BuildFourierTables(s.l1, s.l2, s.lout, fft); },
                                  &hit);
      mark_setup(hit);
      if (fft) {
        st.fft_size = t->m;
        const size_t mm = static_cast<size_t>(t->m), mh = mm / 2 + 1;
        std::vector<FourierScratch> scratch(threads);
        for (auto& sc : scratch) {
          sc.cf = AllocFftw<fftw_complex>(mm * mh);
          sc.cg = AllocFftw<fftw_complex>(mm * mh);
          sc.rf = AllocFftw<double>(mm * mm);
          sc.rg = AllocFftw<double>(mm * mm);
        }
        ParallelItems(items, threads, [&](int64_t item, int th) {
          prepare(item, th);
          FourierFftApply(*t, xs[th].data(), ys[th].data(), z + item * n3, scratch[th]);
          finish(item, z + item * n3);
        });
      } else {
        ParallelItems(items, threads, [&](int64_t item, int th) {
          prepare(item, th);
          FourierDirectConvApply(*t, xs[th].data(), ys[th].data(), z + item * n3);
          finish(item, z + item * n3);
        });
      }
      break;
    }
    case GauntMethod::kGrid: {
      int nb = 0, na = 0;
      DefaultGrid(s, o, &nb, &na);
      bool hit = false;
      auto t = GridCache().Get({3, s.l1, s.l2, s.lout, nb, na},
                               [&] { return BuildGridTables(s.l1, s.l2, s.lout, nb, na); },
                               &hit);
      mark_setup(hit);
      st.fft_size = na;
      st.n_beta = nb;
      std::vector<GridScratch> scratch(threads);
      for (auto& sc : scratch) {
        sc.c = AllocFftw<fftw_complex>(static_cast<size_t>(nb) * t->nh);
        sc.rf = AllocFftw<double>(static_cast<size_t>(nb) * na);
        sc.rg = AllocFftw<double>(static_cast<size_t>(nb) * na);
      }
      ParallelItems(items, threads, [&](int64_t item, int th) {
        prepare(item, th);
        GridApply(*t, xs[th].data(), ys[th].data(), z + item * n3, scratch[th]);
        finish(item, z + item * n3);
      });
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status GauntManyBody(const GauntTPShape& s, int nu, const double* x, const double* w1,
                           const double* wout, int threads, double* z, GauntTPStats* stats) {
  if (nu < 2 || nu > kMaxNu) {
    return absl::InvalidArgumentError(fmt::format("nu must be in [2, {}]; got {}", kMaxNu, nu));
  }
  if (s.batch < 0 || s.channels < 1) {
    return absl::InvalidArgumentError("batch must be ≥ 0 and channels ≥ 1");
  }
  if (s.l1 < 0 || s.l1 > kMaxInputDegree || nu * s.l1 > kMaxManyBodyDegree) {
    return absl::InvalidArgumentError(fmt::format(
        "l1 must be in [0, {}] with nu·l1 ≤ {}; got l1 = {}, nu = {}", kMaxInputDegree,
        kMaxManyBodyDegree, s.l1, nu));
  }
  if (s.lout < 0 || s.lout > nu * s.l1) {
    return absl::InvalidArgumentError(
        fmt::format("lout must be in [0, nu·l1 = {}]; got {}", nu * s.l1, s.lout));
  }
  if (threads < 1) return absl::InvalidArgumentError("threads must be ≥ 1");
  GauntTPStats local;
  GauntTPStats& st = stats != nullptr ? *stats : local;
  st = GauntTPStats();
  const auto t0 = std::chrono::steady_clock::now();
  const int n_total = nu * s.l1 + s.lout;
  const int nb = n_total / 2 + 1;
  const int na = sphere::NextSmoothSize(std::max(n_total + 1, 2 * std::max(s.l1, s.lout) + 1));
  bool hit = false;
  // Keyed apart from two-input grids: (5, l1, nu, lout).
  auto t = GridCache().Get({5, s.l1, nu, s.lout, nb, na},
                           [&] { return BuildGridTables(s.l1, s.l1, s.lout, nb, na); }, &hit);
  st.cache_hit = hit;
  if (!hit) {
    st.setup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  st.fft_size = na;
  st.n_beta = nb;
  const int n1 = NumSh(s.l1), n3 = NumSh(s.lout);
  const int64_t items = s.batch * s.channels;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, items)));
  std::vector<GridScratch> scratch(threads);
  std::vector<std::vector<double>> xs(threads, std::vector<double>(n1));
  for (auto& sc : scratch) {
    sc.c = AllocFftw<fftw_complex>(static_cast<size_t>(nb) * t->nh);
    sc.rf = AllocFftw<double>(static_cast<size_t>(nb) * na);
    sc.rg = AllocFftw<double>(static_cast<size_t>(nb) * na);
  }
  const size_t grid_points = static_cast<size_t>(nb) * na;
  ParallelItems(items, threads, [&](int64_t item, int th) {
    const int64_t c = item % s.channels;
    GridScratch& sc = scratch[th];
    ScaleByDegree(s.l1, x + item * n1, w1 ? w1 + c * (s.l1 + 1) : nullptr, xs[th].data());
    GridSynthesis(*t, s.l1, xs[th].data(), sc, sc.rg.get());
    // rf = f^ν by ν − 1 multiplications in a fixed order.
    std::copy(sc.rg.get(), sc.rg.get() + grid_points, sc.rf.get());
    for (int p = 1; p < nu; ++p)
      for (size_t i = 0; i < grid_points; ++i) sc.rf[i] *= sc.rg[i];
    GridAnalysis(*t, sc, z + item * n3);
    if (wout != nullptr)
      for (int l = 0; l <= s.lout; ++l)
        for (int m = -l; m <= l; ++m) z[item * n3 + ShIndex(l, m)] *= wout[c * (s.lout + 1) + l];
  });
  return absl::OkStatus();
}

double GauntCoefficient(int l1, int m1, int l2, int m2, int l3, int m3) {
  const int n_total = l1 + l2 + l3;
  const int lmax = std::max({l1, l2, l3});
  const sphere::SphereGrid g = sphere::MakeSphereGrid(n_total);
  std::vector<double> y(NumSh(lmax));
  double s = 0;
  for (int j = 0; j < g.n_beta; ++j) {
    const double st = std::sqrt(std::max(0.0, 1 - g.x[j] * g.x[j]));
    for (int q = 0; q < g.n_alpha; ++q) {
      const double a = 2 * kPi * q / g.n_alpha;
      const double r[3] = {st * std::cos(a), st * std::sin(a), g.x[j]};
      sphere::RealSh(lmax, r, y.data());
      s += g.weight[j] * (2 * kPi / g.n_alpha) * y[ShIndex(l1, m1)] * y[ShIndex(l2, m2)] *
           y[ShIndex(l3, m3)];
    }
  }
  return s;
}

}  // namespace chamferdb::gaunt
