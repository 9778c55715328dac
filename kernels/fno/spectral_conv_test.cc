#include "kernels/fno/spectral_conv.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"
#include "kernels/fno/integral_operator.h"
#include "kernels/fno/kernel_interp_conv.h"

namespace chamferdb::fno {
namespace {

using cd = std::complex<double>;

struct Case {
  SpectralConv2dShape s;
  std::vector<double> x, bias;
  std::vector<cd> wp, wn;
};

Case MakeCase(SpectralConv2dShape s, uint64_t seed) {
  Case c{s, {}, {}, {}, {}};
  Rng rng(seed);
  c.x.resize(s.batch * s.in_channels * s.height * s.width);
  for (auto& v : c.x) v = rng.Normal();
  const size_t nw = s.in_channels * s.out_channels * s.modes1 * s.modes2;
  c.wp.resize(nw);
  c.wn.resize(nw);
  for (auto& v : c.wp) v = cd(rng.Normal(), rng.Normal());
  for (auto& v : c.wn) v = cd(rng.Normal(), rng.Normal());
  c.bias.resize(s.out_channels);
  for (auto& v : c.bias) v = rng.Normal();
  return c;
}

size_t OutSize(const SpectralConv2dShape& s) {
  return s.batch * s.out_channels * s.out_height * s.out_width;
}

double MaxAbs(const std::vector<double>& v) {
  double m = 0;
  for (double a : v) m = std::max(m, std::fabs(a));
  return m;
}

void ExpectMatchesDirect(const SpectralConv2dShape& s, FftNorm norm, uint64_t seed) {
  ASSERT_TRUE(ValidateSpectralConv2dShape(s).ok());
  Case c = MakeCase(s, seed);
  std::vector<double> fast(OutSize(s)), ref(OutSize(s));
  SpectralConv2d(s, norm, c.x.data(), c.wp.data(), c.wn.data(), c.bias.data(), fast.data(), 2);
  SpectralConv2dDirect(s, norm, c.x.data(), c.wp.data(), c.wn.data(), c.bias.data(), ref.data());
  const double scale = MaxAbs(ref);
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_NEAR(fast[i], ref[i], 1e-12 * scale) << "at " << i;
  }
}

TEST(SpectralConv2d, MatchesDirectDftOnOddSizesAndResolutionChanges) {
  for (FftNorm norm : {FftNorm::kForward, FftNorm::kBackward, FftNorm::kOrtho}) {
    ExpectMatchesDirect({2, 3, 2, 7, 9, 3, 5, 7, 9}, norm, 1);
    ExpectMatchesDirect({2, 3, 2, 7, 9, 3, 5, 12, 10}, norm, 2);
    ExpectMatchesDirect({1, 1, 3, 15, 17, 4, 6, 8, 11}, norm, 3);
  }
}

TEST(SpectralConv2d, MatchesDirectDftWithNyquistRowAndColumn) {
  // m1 = H/2 and m2 = W/2 + 1: the neg corner starts at the Nyquist row and the last
  // column is the Nyquist column, where the C2R convention drops imaginary parts.
  ExpectMatchesDirect({2, 2, 2, 8, 8, 4, 5, 8, 8}, FftNorm::kForward, 4);
  ExpectMatchesDirect({1, 2, 3, 8, 6, 4, 4, 16, 6}, FftNorm::kForward, 5);
  ExpectMatchesDirect({1, 1, 1, 2, 2, 1, 2, 2, 2}, FftNorm::kBackward, 6);  // smallest grid
}

TEST(SpectralConv2d, RejectsOverlappingCornersAndTooManyColumns) {
  EXPECT_FALSE(ValidateSpectralConv2dShape({1, 1, 1, 8, 8, 5, 2, 8, 8}).ok());
  EXPECT_FALSE(ValidateSpectralConv2dShape({1, 1, 1, 8, 8, 2, 6, 8, 8}).ok());
  EXPECT_FALSE(ValidateSpectralConv2dShape({1, 1, 1, 16, 16, 4, 4, 6, 16}).ok());
  EXPECT_FALSE(ValidateSpectralConv2dShape({0, 1, 1, 8, 8, 2, 2, 8, 8}).ok());
}

// A trigonometric polynomial with max |k1|, |k2| < kmax, sampled on an n × n grid of [0,1)².
std::vector<double> BandLimited(size_t n, int kmax, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> a, b, c;
  std::vector<int> k1s, k2s;
  for (int k1 = -(kmax - 1); k1 < kmax; ++k1)
    for (int k2 = 0; k2 < kmax; ++k2) {
      k1s.push_back(k1);
      k2s.push_back(k2);
      a.push_back(rng.Normal());
      b.push_back(rng.Normal());
    }
  std::vector<double> u(n * n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      double v = 0;
      for (size_t t = 0; t < a.size(); ++t) {
        const double th = 2 * std::numbers::pi * (k1s[t] * double(i) / n + k2s[t] * double(j) / n);
        v += a[t] * std::cos(th) + b[t] * std::sin(th);
      }
      u[i * n + j] = v;
    }
  return u;
}

TEST(SpectralConv2d, ExactlyResolutionInvariantOnBandLimitedInputs) {
  // The same weights applied at 32², 64² and 64²→256² (super-resolution) agree at the
  // shared grid points to roundoff with the FORWARD norm.
  const size_t ci = 2, co = 2, m = 6;
  Case base = MakeCase({1, ci, co, 32, 32, m, m, 32, 32}, 7);
  auto run = [&](size_t n, size_t nout) {
    std::vector<double> x;
    for (size_t i = 0; i < ci; ++i) {
      auto u = BandLimited(n, 5, 100 + i);
      x.insert(x.end(), u.begin(), u.end());
    }
    SpectralConv2dShape s{1, ci, co, n, n, m, m, nout, nout};
    std::vector<double> y(co * nout * nout);
    SpectralConv2d(s, FftNorm::kForward, x.data(), base.wp.data(), base.wn.data(),
                   base.bias.data(), y.data(), 1);
    return y;
  };
  auto y32 = run(32, 32), y64 = run(64, 64), up = run(64, 256), y256 = run(256, 256);
  const double scale = MaxAbs(y256);
  for (size_t o = 0; o < co; ++o)
    for (size_t i = 0; i < 32; ++i)
      for (size_t j = 0; j < 32; ++j) {
        const double v = y32[(o * 32 + i) * 32 + j];
        EXPECT_NEAR(v, y64[(o * 64 + 2 * i) * 64 + 2 * j], 1e-12 * scale);
        EXPECT_NEAR(v, y256[(o * 256 + 8 * i) * 256 + 8 * j], 1e-12 * scale);
      }
  for (size_t t = 0; t < up.size(); ++t) ASSERT_NEAR(up[t], y256[t], 1e-12 * scale);
}

TEST(SpectralConv2d, BackwardNormRescalesWithOutputResolution) {
  // Documented pitfall of neuraloperator's default: y changes by HW/(H'W') when H' ≠ H.
  Case c = MakeCase({1, 1, 1, 16, 16, 4, 4, 16, 16}, 8);
  std::vector<double> native(16 * 16), up(32 * 32);
  SpectralConv2d(c.s, FftNorm::kBackward, c.x.data(), c.wp.data(), c.wn.data(), nullptr, native.data());
  SpectralConv2dShape s2 = c.s;
  s2.out_height = s2.out_width = 32;
  SpectralConv2d(s2, FftNorm::kBackward, c.x.data(), c.wp.data(), c.wn.data(), nullptr, up.data());
  for (size_t i = 0; i < 16; ++i)
    for (size_t j = 0; j < 16; ++j)
      EXPECT_NEAR(up[(2 * i) * 32 + 2 * j] * 4.0, native[i * 16 + j], 1e-12 * MaxAbs(native));
}

TEST(SpectralConv2d, TranslationEquivariant) {
  Case c = MakeCase({2, 2, 3, 12, 10, 4, 4, 12, 10}, 9);
  std::vector<double> y(OutSize(c.s)), ys(OutSize(c.s));
  SpectralConv2d(c.s, FftNorm::kForward, c.x.data(), c.wp.data(), c.wn.data(), c.bias.data(), y.data());
  const size_t r1 = 5, r2 = 3, H = 12, W = 10;
  std::vector<double> xs(c.x.size());
  for (size_t p = 0; p < 4; ++p)
    for (size_t i = 0; i < H; ++i)
      for (size_t j = 0; j < W; ++j)
        xs[p * H * W + ((i + r1) % H) * W + (j + r2) % W] = c.x[p * H * W + i * W + j];
  SpectralConv2d(c.s, FftNorm::kForward, xs.data(), c.wp.data(), c.wn.data(), c.bias.data(), ys.data());
  for (size_t p = 0; p < 6; ++p)
    for (size_t i = 0; i < H; ++i)
      for (size_t j = 0; j < W; ++j)
        EXPECT_NEAR(ys[p * H * W + ((i + r1) % H) * W + (j + r2) % W], y[p * H * W + i * W + j], 1e-12);
}

TEST(SpectralConv2d, IdentityWeightsOnAllModesReproduceInputAndZeroWeightsGiveBias) {
  const size_t c = 3, H = 8, W = 6;
  SpectralConv2dShape s{2, c, c, H, W, H / 2, W / 2 + 1, H, W};
  Case k = MakeCase(s, 10);
  std::vector<cd> id(c * c * s.modes1 * s.modes2, cd(0, 0));
  for (size_t i = 0; i < c; ++i)
    for (size_t t = 0; t < s.modes1 * s.modes2; ++t) id[(i * c + i) * s.modes1 * s.modes2 + t] = 1.0;
  std::vector<double> y(OutSize(s));
  SpectralConv2d(s, FftNorm::kForward, k.x.data(), id.data(), id.data(), nullptr, y.data());
  for (size_t t = 0; t < y.size(); ++t) EXPECT_NEAR(y[t], k.x[t], 1e-12);
  std::vector<cd> zero(id.size(), cd(0, 0));
  SpectralConv2d(s, FftNorm::kForward, k.x.data(), zero.data(), zero.data(), k.bias.data(), y.data());
  for (size_t t = 0; t < y.size(); ++t) EXPECT_EQ(y[t], k.bias[(t / (H * W)) % c]);
}

TEST(SpectralConv2d, LinearInInput) {
  Case a = MakeCase({1, 2, 2, 9, 9, 3, 3, 9, 9}, 11), b = MakeCase({1, 2, 2, 9, 9, 3, 3, 9, 9}, 12);
  std::vector<double> sum(a.x.size());
  for (size_t t = 0; t < sum.size(); ++t) sum[t] = 2.0 * a.x[t] - 3.0 * b.x[t];
  std::vector<double> ya(OutSize(a.s)), yb(ya.size()), ys(ya.size());
  SpectralConv2d(a.s, FftNorm::kOrtho, a.x.data(), a.wp.data(), a.wn.data(), nullptr, ya.data());
  SpectralConv2d(a.s, FftNorm::kOrtho, b.x.data(), a.wp.data(), a.wn.data(), nullptr, yb.data());
  SpectralConv2d(a.s, FftNorm::kOrtho, sum.data(), a.wp.data(), a.wn.data(), nullptr, ys.data());
  for (size_t t = 0; t < ys.size(); ++t) EXPECT_NEAR(ys[t], 2.0 * ya[t] - 3.0 * yb[t], 1e-12);
}

TEST(SpectralConv2d, BitIdenticalForAnyThreadCount) {
  Case c = MakeCase({3, 4, 5, 16, 12, 4, 5, 20, 14}, 13);
  std::vector<double> y1(OutSize(c.s)), y2(y1.size());
  SpectralConv2d(c.s, FftNorm::kForward, c.x.data(), c.wp.data(), c.wn.data(), c.bias.data(), y1.data(), 1);
  SpectralConv2d(c.s, FftNorm::kForward, c.x.data(), c.wp.data(), c.wn.data(), c.bias.data(), y2.data(), 2);
  EXPECT_EQ(y1, y2);
}

TEST(FourierResample2d, BandLimitedInputsResampleExactlyBothWays) {
  auto u16 = BandLimited(16, 5, 20), u48 = BandLimited(48, 5, 20), u40 = BandLimited(40, 5, 20);
  std::vector<double> up(48 * 48), down(16 * 16), odd(40 * 40);
  FourierResample2d(1, 16, 16, 48, 48, u16.data(), up.data());
  FourierResample2d(1, 48, 48, 16, 16, u48.data(), down.data());
  FourierResample2d(1, 16, 16, 40, 40, u16.data(), odd.data());
  for (size_t t = 0; t < up.size(); ++t) ASSERT_NEAR(up[t], u48[t], 1e-12 * MaxAbs(u48));
  for (size_t t = 0; t < down.size(); ++t) ASSERT_NEAR(down[t], u16[t], 1e-12 * MaxAbs(u16));
  for (size_t t = 0; t < odd.size(); ++t) ASSERT_NEAR(odd[t], u40[t], 1e-12 * MaxAbs(u40));
}

TEST(FourierResample2d, SameSizeIsIdentity) {
  Rng rng(3);
  std::vector<double> x(2 * 6 * 7), y(x.size());
  for (auto& v : x) v = rng.Normal();
  FourierResample2d(2, 6, 7, 6, 7, x.data(), y.data());
  for (size_t t = 0; t < x.size(); ++t) EXPECT_NEAR(y[t], x[t], 1e-13);
}

}  // namespace
}  // namespace chamferdb::fno

// ---------------------------------------------------------------- integral operator

namespace chamferdb::fno {
namespace {

// ∫ exp(−(x−y)²/(2ℓ²))·exp(−y²/(2s²)) dy = √(2π)·ℓ·s/√(ℓ²+s²)·exp(−x²/(2(ℓ²+s²))).
double GaussianConvolution(double x, double l, double s) {
  return std::sqrt(2 * std::numbers::pi) * l * s / std::sqrt(l * l + s * s) *
         std::exp(-x * x / (2 * (l * l + s * s)));
}

double MaxErrorWithTrapezoid(size_t n, bool weights) {
  const double L = 12.0, l = 0.7, s = 1.3;
  std::vector<double> y(n), w(n), v(n);
  const double h = 2 * L / (n - 1);
  for (size_t j = 0; j < n; ++j) {
    y[j] = -L + h * j;
    w[j] = (j == 0 || j + 1 == n) ? h / 2 : h;
    v[j] = std::exp(-y[j] * y[j] / (2 * s * s));
  }
  const std::vector<double> x = {-1.5, 0.0, 0.3, 2.0};
  std::vector<double> out(x.size());
  IntegralKernelParams k;
  k.length_scale = l;
  QuadratureIntegralOperator(k, 1, x.data(), x.size(), y.data(), n, weights ? w.data() : nullptr,
                             v.data(), 1, out.data(), 2);
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e = std::max(e, std::fabs(out[i] - GaussianConvolution(x[i], l, s)));
  return e;
}

TEST(QuadratureIntegralOperator, ConvergesToTheAnalyticIntegralWithWeights) {
  const double e20 = MaxErrorWithTrapezoid(20, true), e40 = MaxErrorWithTrapezoid(40, true),
               e200 = MaxErrorWithTrapezoid(200, true);
  EXPECT_LT(e40, e20);
  EXPECT_LT(e200, 1e-12);  // the trapezoid rule is spectrally accurate here
}

TEST(QuadratureIntegralOperator, PlainSumGrowsWithTheResolution) {
  // Without quadrature weights the output scales like N (the CNN failure mode).
  EXPECT_GT(MaxErrorWithTrapezoid(400, false), 2 * MaxErrorWithTrapezoid(200, false));
}

TEST(QuadratureIntegralOperator, PolynomialKernelMatchesDirectSums) {
  const std::vector<double> x = {0.5, -1.0, 2.0, 0.0}, y = {1.0, 2.0, -0.5, 0.25, 0.0, 3.0};
  const std::vector<double> w = {0.1, 0.2, 0.3}, v = {1, 2, 3, 4, 5, 6};
  IntegralKernelParams k;
  k.kind = IntegralKernel::kPolynomial;
  k.offset = 0.5;
  k.degree = 3;
  std::vector<double> out(2 * 2);
  QuadratureIntegralOperator(k, 2, x.data(), 2, y.data(), 3, w.data(), v.data(), 2, out.data());
  for (int i = 0; i < 2; ++i)
    for (int c = 0; c < 2; ++c) {
      double ref = 0;
      for (int j = 0; j < 3; ++j) {
        const double dot = x[2 * i] * y[2 * j] + x[2 * i + 1] * y[2 * j + 1];
        ref += w[j] * std::pow(0.5 + dot, 3) * v[2 * j + c];
      }
      EXPECT_NEAR(out[2 * i + c], ref, 1e-12 * std::fabs(ref));
    }
}

}  // namespace
}  // namespace chamferdb::fno

// ---------------------------------------------------------------- kernel interpolation
namespace chamferdb::fno {
namespace {

std::vector<double> SmoothGrid(size_t n) {
  std::vector<double> u(n * n);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      const double a = 2 * std::numbers::pi * i / n, b = 2 * std::numbers::pi * j / n;
      u[i * n + j] = std::sin(a) * std::cos(2 * b) + 0.5 * std::cos(a + b);
    }
  return u;
}

// Max |conv at s·N subsampled − conv at N| for a k × k kernel on a smooth periodic input.
double ResolutionGap(const std::vector<double>& k, size_t kt, size_t n, size_t s, KernelRescale r) {
  auto coarse_x = SmoothGrid(n), fine_x = SmoothGrid(s * n);
  std::vector<double> coarse(n * n), fine(s * n * s * n);
  PeriodicConv2d(coarse_x.data(), 1, 1, n, n, k.data(), 1, kt, nullptr, coarse.data());
  auto kf = InterpolateKernel(k.data(), 1, 1, kt, s, r);
  PeriodicConv2d(fine_x.data(), 1, 1, s * n, s * n, kf.data(), 1, kt * s - s + 1, nullptr, fine.data());
  double e = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) e = std::max(e, std::fabs(fine[(s * i) * s * n + s * j] - coarse[i * n + j]));
  return e;
}

TEST(KernelInterpConv2d, QuadratureRescaledGapShrinksForKernelsVanishingOnTheBorder) {
  // 5 × 5 kernel with a zero border ring.
  const std::vector<double> k = {0, 0, 0, 0, 0,   0, 0.2, 0.5, 0.1, 0,  0, 0.4, 1.0, -0.3, 0,
                                 0, 0.1, 0.6, 0.2, 0,  0, 0, 0, 0, 0};
  const auto r = KernelRescale::kQuadratureRatio;
  const double e16 = ResolutionGap(k, 5, 16, 2, r), e32 = ResolutionGap(k, 5, 32, 2, r),
               e64 = ResolutionGap(k, 5, 64, 2, r);
  EXPECT_LT(e32, e16 / 3);  // O(1/N²)
  EXPECT_LT(e64, e32 / 3);
  EXPECT_LT(ResolutionGap(k, 5, 64, 3, r), ResolutionGap(k, 5, 16, 3, r) / 10);  // s = 3 too
}

TEST(KernelInterpConv2d, AreaRatioOrNonZeroBorderLeavesAConstantGap) {
  const std::vector<double> k = {0.1, 0.2, 0.1, 0.3, 1.0, -0.2, 0.05, 0.1, 0.4};
  for (auto r : {KernelRescale::kQuadratureRatio, KernelRescale::kAreaRatio}) {
    const double e32 = ResolutionGap(k, 3, 32, 2, r), e128 = ResolutionGap(k, 3, 128, 2, r);
    EXPECT_GT(e128, 0.05);       // does not vanish with N
    EXPECT_GT(e128, 0.5 * e32);  // and does not shrink
  }
}

TEST(KernelInterpConv2d, ScaleOneIsTheIdentityResizeAndConvMatchesDirectSum) {
  const std::vector<double> k = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(InterpolateKernel(k.data(), 1, 1, 3, 1), k);
  auto kf = InterpolateKernel(k.data(), 1, 1, 3, 2, KernelRescale::kAreaRatio);  // 5 × 5, / (5/3)²
  EXPECT_NEAR(kf[0], 1.0 * 9 / 25, 1e-15);
  EXPECT_NEAR(kf[1], 1.5 * 9 / 25, 1e-15);
  EXPECT_NEAR(kf[6], 3.0 * 9 / 25, 1e-15);  // centre of the first 2 × 2 cell
  // A delta input reproduces the (flipped) kernel around it.
  std::vector<double> x(25, 0.0), y(25);
  x[12] = 1.0;
  PeriodicConv2d(x.data(), 1, 1, 5, 5, k.data(), 1, 3, nullptr, y.data());
  EXPECT_EQ(y[12], 5.0);
  EXPECT_EQ(y[6], 9.0);   // y[1,1] = K[2,2]·x[2,2]
  EXPECT_EQ(y[18], 1.0);  // y[3,3] = K[0,0]·x[2,2]
}

}  // namespace
}  // namespace chamferdb::fno
