#include "kernels/fno/spectral_conv.h"

#include <fftw3.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numbers>
#include <vector>

namespace chamferdb::fno {
namespace {

using cd = std::complex<double>;

// FFTW's planner is not thread-safe; execution of an existing plan on new arrays is.
std::mutex& PlannerMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}

struct FftwBuffer {
  explicit FftwBuffer(size_t n) : p(static_cast<double*>(fftw_malloc(sizeof(double) * std::max<size_t>(n, 2)))) {}
  ~FftwBuffer() { fftw_free(p); }
  FftwBuffer(const FftwBuffer&) = delete;
  FftwBuffer& operator=(const FftwBuffer&) = delete;
  double* p;
};

// A pair of plans for single planes: r2c on H × W and c2r on H' × W'. FFTW_UNALIGNED lets
// any plane of a larger array be passed to the new-array execute functions.
class PlanePlans {
 public:
  PlanePlans(size_t h, size_t w, size_t ho, size_t wo) {
    FftwBuffer rin(h * w), cin(2 * h * (w / 2 + 1)), rout(ho * wo), cout(2 * ho * (wo / 2 + 1));
    std::lock_guard<std::mutex> lock(PlannerMutex());
    r2c_ = fftw_plan_dft_r2c_2d(static_cast<int>(h), static_cast<int>(w), rin.p,
                                reinterpret_cast<fftw_complex*>(cin.p),
                                FFTW_ESTIMATE | FFTW_UNALIGNED);
    c2r_ = fftw_plan_dft_c2r_2d(static_cast<int>(ho), static_cast<int>(wo),
                                reinterpret_cast<fftw_complex*>(cout.p), rout.p,
                                FFTW_ESTIMATE | FFTW_UNALIGNED);
  }
  ~PlanePlans() {
    std::lock_guard<std::mutex> lock(PlannerMutex());
    fftw_destroy_plan(r2c_);
    fftw_destroy_plan(c2r_);
  }
  void Forward(const double* in, cd* out) const {
    fftw_execute_dft_r2c(r2c_, const_cast<double*>(in), reinterpret_cast<fftw_complex*>(out));
  }
  // Destroys `in`.
  void Inverse(cd* in, double* out) const {
    fftw_execute_dft_c2r(c2r_, reinterpret_cast<fftw_complex*>(in), out);
  }

 private:
  fftw_plan r2c_;
  fftw_plan c2r_;
};

void Scales(FftNorm norm, double n_in, double n_out, double* a_in, double* a_out) {
  switch (norm) {
    case FftNorm::kBackward:
      *a_in = 1.0;
      *a_out = 1.0 / n_out;
      return;
    case FftNorm::kForward:
      *a_in = 1.0 / n_in;
      *a_out = 1.0;
      return;
    case FftNorm::kOrtho:
      *a_in = 1.0 / std::sqrt(n_in);
      *a_out = 1.0 / std::sqrt(n_out);
      return;
  }
}

// Replaces column `c` of an H' × (W'/2+1) half spectrum by its Hermitian part in k1, which
// is what the C2R synthesis formula takes (the imaginary part of the DC/Nyquist data).
void HermitianColumn(cd* spec, size_t ho, size_t wh, size_t c) {
  std::vector<cd> col(ho);
  for (size_t r = 0; r < ho; ++r) col[r] = spec[r * wh + c];
  for (size_t r = 0; r < ho; ++r) {
    spec[r * wh + c] = 0.5 * (col[r] + std::conj(col[(ho - r) % ho]));
  }
}

// Fixed partition for the frequency loop (independent of the thread count).
constexpr long long kFreqChunk = 8;

}  // namespace

absl::Status ValidateSpectralConv2dShape(const SpectralConv2dShape& s) {
  if (s.batch == 0 || s.in_channels == 0 || s.out_channels == 0 || s.height == 0 ||
      s.width == 0 || s.out_height == 0 || s.out_width == 0 || s.modes1 == 0 || s.modes2 == 0) {
    return absl::InvalidArgumentError("every size and mode count must be >= 1");
  }
  const size_t hmin = std::min(s.height, s.out_height), wmin = std::min(s.width, s.out_width);
  if (2 * s.modes1 > hmin) {
    return absl::InvalidArgumentError(fmt::format(
        "modes1 = {} exceeds min(H, H')/2 = {} (the two corners would overlap)", s.modes1,
        hmin / 2));
  }
  if (s.modes2 > wmin / 2 + 1) {
    return absl::InvalidArgumentError(
        fmt::format("modes2 = {} exceeds min(W, W')/2 + 1 = {}", s.modes2, wmin / 2 + 1));
  }
  return absl::OkStatus();
}

void SpectralConv2d(const SpectralConv2dShape& s, FftNorm norm, const double* x,
                    const cd* w_pos, const cd* w_neg, const double* bias, double* y,
                    int threads) {
  threads = std::max(1, threads);
  const size_t B = s.batch, ci = s.in_channels, co = s.out_channels;
  const size_t H = s.height, W = s.width, Ho = s.out_height, Wo = s.out_width;
  const size_t m1 = s.modes1, m2 = s.modes2, wh = W / 2 + 1, who = Wo / 2 + 1;
  const size_t nf = 2 * m1 * m2;  // kept frequencies, index f = kk·m2 + k2, kk < 2·m1
  double a_in = 1.0, a_out = 1.0;
  Scales(norm, static_cast<double>(H * W), static_cast<double>(Ho * Wo), &a_in, &a_out);
  PlanePlans plans(H, W, Ho, Wo);

  // Frequency-major split-complex layouts: xf[f][b][i], wf[f][i][o], yf[f][b][o].
  std::vector<double> xr(nf * B * ci), xi(nf * B * ci);
  std::vector<double> wr(nf * ci * co), wi(nf * ci * co);
  std::vector<double> yr(nf * B * co), yi(nf * B * co);

#pragma omp parallel num_threads(threads)
  {
    std::vector<cd> spec(H * wh);
#pragma omp for schedule(static)
    for (long long p = 0; p < static_cast<long long>(B * ci); ++p) {
      const size_t b = p / ci, i = p % ci;
      plans.Forward(x + p * H * W, spec.data());
      for (size_t kk = 0; kk < 2 * m1; ++kk) {
        const size_t row = kk < m1 ? kk : H - 2 * m1 + kk;
        for (size_t k2 = 0; k2 < m2; ++k2) {
          const cd v = spec[row * wh + k2] * a_in;
          const size_t at = ((kk * m2 + k2) * B + b) * ci + i;
          xr[at] = v.real();
          xi[at] = v.imag();
        }
      }
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < static_cast<long long>(ci * co); ++p) {
      const size_t i = p / co, o = p % co;
      for (size_t kk = 0; kk < 2 * m1; ++kk) {
        const cd* w = kk < m1 ? w_pos + (p * m1 + kk) * m2 : w_neg + (p * m1 + kk - m1) * m2;
        for (size_t k2 = 0; k2 < m2; ++k2) {
          const size_t at = ((kk * m2 + k2) * ci + i) * co + o;
          wr[at] = w[k2].real();
          wi[at] = w[k2].imag();
        }
      }
    }
    // Contraction: for each frequency a [B × Cin] · [Cin × Cout] complex product, summed
    // over i in ascending order.
    const long long chunks = (static_cast<long long>(nf) + kFreqChunk - 1) / kFreqChunk;
    std::vector<double> acc_r(co), acc_i(co);
#pragma omp for schedule(static)
    for (long long c = 0; c < chunks; ++c) {
      const size_t f_end = std::min(nf, static_cast<size_t>((c + 1) * kFreqChunk));
      for (size_t f = c * kFreqChunk; f < f_end; ++f) {
        const double* wrf = wr.data() + f * ci * co;
        const double* wif = wi.data() + f * ci * co;
        for (size_t b = 0; b < B; ++b) {
          std::fill(acc_r.begin(), acc_r.end(), 0.0);
          std::fill(acc_i.begin(), acc_i.end(), 0.0);
          for (size_t i = 0; i < ci; ++i) {
            const double ar = xr[(f * B + b) * ci + i], ai = xi[(f * B + b) * ci + i];
            const double* br = wrf + i * co;
            const double* bi = wif + i * co;
            for (size_t o = 0; o < co; ++o) {
              acc_r[o] += ar * br[o] - ai * bi[o];
              acc_i[o] += ar * bi[o] + ai * br[o];
            }
          }
          std::copy(acc_r.begin(), acc_r.end(), yr.begin() + (f * B + b) * co);
          std::copy(acc_i.begin(), acc_i.end(), yi.begin() + (f * B + b) * co);
        }
      }
    }
    std::vector<cd> ospec(Ho * who);
#pragma omp for schedule(static)
    for (long long p = 0; p < static_cast<long long>(B * co); ++p) {
      const size_t b = p / co, o = p % co;
      std::fill(ospec.begin(), ospec.end(), cd(0.0, 0.0));
      for (size_t kk = 0; kk < 2 * m1; ++kk) {
        const size_t row = kk < m1 ? kk : Ho - 2 * m1 + kk;
        for (size_t k2 = 0; k2 < m2; ++k2) {
          const size_t at = ((kk * m2 + k2) * B + b) * co + o;
          ospec[row * who + k2] = cd(yr[at], yi[at]);
        }
      }
      HermitianColumn(ospec.data(), Ho, who, 0);
      if (Wo % 2 == 0 && m2 == who) HermitianColumn(ospec.data(), Ho, who, Wo / 2);
      double* out = y + p * Ho * Wo;
      plans.Inverse(ospec.data(), out);
      const double add = bias != nullptr ? bias[o] : 0.0;
      for (size_t t = 0; t < Ho * Wo; ++t) out[t] = out[t] * a_out + add;
    }
  }
}

void SpectralConv2dDirect(const SpectralConv2dShape& s, FftNorm norm, const double* x,
                          const cd* w_pos, const cd* w_neg, const double* bias, double* y) {
  const size_t B = s.batch, ci = s.in_channels, co = s.out_channels;
  const size_t H = s.height, W = s.width, Ho = s.out_height, Wo = s.out_width;
  const size_t m1 = s.modes1, m2 = s.modes2;
  double a_in = 1.0, a_out = 1.0;
  Scales(norm, static_cast<double>(H * W), static_cast<double>(Ho * Wo), &a_in, &a_out);
  auto table = [](size_t n) {
    std::vector<cd> t(n);
    for (size_t j = 0; j < n; ++j) {
      const double th = 2.0 * std::numbers::pi * static_cast<double>(j) / static_cast<double>(n);
      t[j] = cd(std::cos(th), std::sin(th));  // e^{+2πi j/n}
    }
    return t;
  };
  const auto eh = table(H), ew = table(W), eho = table(Ho), ewo = table(Wo);
  // Signed frequency of kept row kk.
  auto freq1 = [&](size_t kk) { return kk < m1 ? static_cast<long long>(kk) : static_cast<long long>(kk) - 2 * static_cast<long long>(m1); };
  auto mod = [](long long a, size_t n) { const long long r = a % static_cast<long long>(n); return static_cast<size_t>(r < 0 ? r + static_cast<long long>(n) : r); };

  // 1. Kept coefficients by explicit sums: c_k = α_in Σ_n x_n e^{−2πi(k1 n1/H + k2 n2/W)}.
  std::vector<cd> xhat(B * ci * 2 * m1 * m2);
  for (size_t p = 0; p < B * ci; ++p) {
    const double* u = x + p * H * W;
    for (size_t kk = 0; kk < 2 * m1; ++kk) {
      for (size_t k2 = 0; k2 < m2; ++k2) {
        cd sum(0.0, 0.0);
        for (size_t n1 = 0; n1 < H; ++n1) {
          const cd e1 = std::conj(eh[mod(freq1(kk) * static_cast<long long>(n1), H)]);
          for (size_t n2 = 0; n2 < W; ++n2) {
            sum += u[n1 * W + n2] * e1 * std::conj(ew[(k2 * n2) % W]);
          }
        }
        xhat[(p * 2 * m1 + kk) * m2 + k2] = a_in * sum;
      }
    }
  }
  // 2. Ŷ[b, o, k] = Σ_i X̂[b, i, k]·W[i, o, k].
  std::vector<cd> yhat(B * co * 2 * m1 * m2, cd(0.0, 0.0));
  for (size_t b = 0; b < B; ++b)
    for (size_t o = 0; o < co; ++o)
      for (size_t kk = 0; kk < 2 * m1; ++kk)
        for (size_t k2 = 0; k2 < m2; ++k2) {
          cd sum(0.0, 0.0);
          for (size_t i = 0; i < ci; ++i) {
            const cd w = kk < m1 ? w_pos[((i * co + o) * m1 + kk) * m2 + k2]
                                 : w_neg[((i * co + o) * m1 + kk - m1) * m2 + k2];
            sum += xhat[((b * ci + i) * 2 * m1 + kk) * m2 + k2] * w;
          }
          yhat[((b * co + o) * 2 * m1 + kk) * m2 + k2] = sum;
        }
  // 3. y(n) = α_out Σ_k c(k2) Re(Ŷ_k e^{2πi(k1 n1/H' + k2 n2/W')}) + bias.
  for (size_t b = 0; b < B; ++b)
    for (size_t o = 0; o < co; ++o) {
      const cd* yh = yhat.data() + (b * co + o) * 2 * m1 * m2;
      double* out = y + (b * co + o) * Ho * Wo;
      for (size_t n1 = 0; n1 < Ho; ++n1)
        for (size_t n2 = 0; n2 < Wo; ++n2) {
          double v = 0.0;
          for (size_t kk = 0; kk < 2 * m1; ++kk) {
            const cd e1 = eho[mod(freq1(kk) * static_cast<long long>(n1), Ho)];
            for (size_t k2 = 0; k2 < m2; ++k2) {
              const double c = (k2 == 0 || (Wo % 2 == 0 && k2 == Wo / 2)) ? 1.0 : 2.0;
              v += c * (yh[kk * m2 + k2] * e1 * ewo[(k2 * n2) % Wo]).real();
            }
          }
          out[n1 * Wo + n2] = a_out * v + (bias != nullptr ? bias[o] : 0.0);
        }
    }
}

void FourierResample2d(size_t planes, size_t height, size_t width, size_t out_height,
                       size_t out_width, const double* x, double* y, int threads) {
  threads = std::max(1, threads);
  const size_t H = height, W = width, Ho = out_height, Wo = out_width;
  const size_t wh = W / 2 + 1, who = Wo / 2 + 1;
  // Kept signed row frequencies |k1| ≤ K1 (plus the Nyquist row if H == H' is even) and
  // columns k2 ≤ K2 (plus the Nyquist column if W == W' is even).
  const size_t K1 = (std::min(H, Ho) - 1) / 2, K2 = (std::min(W, Wo) - 1) / 2;
  const bool nyq_row = H == Ho && H % 2 == 0, nyq_col = W == Wo && W % 2 == 0;
  const double a_in = 1.0 / static_cast<double>(H * W);
  PlanePlans plans(H, W, Ho, Wo);
#pragma omp parallel num_threads(threads)
  {
    std::vector<cd> spec(H * wh), ospec(Ho * who);
#pragma omp for schedule(static)
    for (long long p = 0; p < static_cast<long long>(planes); ++p) {
      plans.Forward(x + p * H * W, spec.data());
      std::fill(ospec.begin(), ospec.end(), cd(0.0, 0.0));
      auto copy_row = [&](size_t in_row, size_t out_row) {
        const size_t cols = nyq_col ? wh : K2 + 1;
        for (size_t k2 = 0; k2 < cols; ++k2) ospec[out_row * who + k2] = spec[in_row * wh + k2] * a_in;
      };
      for (size_t k = 0; k <= K1; ++k) copy_row(k, k);
      for (size_t k = 1; k <= K1; ++k) copy_row(H - k, Ho - k);
      if (nyq_row) copy_row(H / 2, Ho / 2);
      plans.Inverse(ospec.data(), y + p * Ho * Wo);
    }
  }
}

}  // namespace chamferdb::fno
