#include "kernels/bures/bures.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "common/status_matchers.h"

namespace chamferdb::bures {
namespace {

using ::chamferdb::testing::StatusIs;

// Random SPD matrix Q diag(λ) Qᵀ with log-uniform eigenvalues spanning condition number
// kappa, and a Haar-ish orthogonal Q from the QR of a Gaussian matrix.
Mat RandomOrthogonal(int n, Rng& rng) {
  Mat g(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) g(i, j) = rng.Normal();
  Eigen::HouseholderQR<Mat> qr(g);
  return qr.householderQ() * Mat::Identity(n, n);
}

Mat FromSpectrum(const Mat& q, const Vec& lambda) {
  const Mat a = q * lambda.asDiagonal() * q.transpose();
  return 0.5 * (a + a.transpose());
}

Vec LogUniformSpectrum(int n, double kappa, double scale, Rng& rng) {
  Vec l(n);
  for (int i = 0; i < n; ++i) {
    const double u = n == 1 ? 0.5 : (i == 0 ? 0.0 : (i == n - 1 ? 1.0 : rng.Uniform()));
    l[i] = scale * std::pow(kappa, u);
  }
  return l;
}

Mat RandomSpd(int n, double kappa, Rng& rng, double scale = 1.0) {
  return FromSpectrum(RandomOrthogonal(n, rng), LogUniformSpectrum(n, kappa, scale, rng));
}

std::vector<Mat> RandomBatch(int count, int n, double kappa, Rng& rng) {
  std::vector<Mat> xs;
  for (int i = 0; i < count; ++i) xs.push_back(RandomSpd(n, kappa, rng));
  return xs;
}

double RelErr(const Mat& a, const Mat& b) { return (a - b).norm() / std::max(b.norm(), 1e-300); }

TEST(BuresDistance, ZeroOnDiagonalAndSymmetric) {
  Rng rng(1);
  const Mat x = RandomSpd(5, 50, rng), y = RandomSpd(5, 50, rng);
  EXPECT_NEAR(DistanceSq(x, x), 0.0, 1e-12);
  EXPECT_NEAR(DistanceSq(x, y), DistanceSq(y, x), 1e-12 * DistanceSq(x, y));
}

TEST(BuresDistance, CommutingClosedFormIsFrobeniusOfSquareRoots) {
  Rng rng(2);
  for (double kappa : {1e1, 1e4, 1e8}) {
    const Mat q = RandomOrthogonal(6, rng);
    const Vec a = LogUniformSpectrum(6, kappa, 1.0, rng), b = LogUniformSpectrum(6, kappa, 1.0, rng);
    const double expected = (a.cwiseSqrt() - b.cwiseSqrt()).squaredNorm();
    const double got = DistanceSq(FromSpectrum(q, a), FromSpectrum(q, b));
    EXPECT_NEAR(got, expected, 1e-9 * (a.sum() + b.sum())) << "kappa " << kappa;
  }
}

TEST(BuresDistance, OneByOneClosedForm) {
  Mat x(1, 1), y(1, 1);
  x << 2.0;
  y << 7.0;
  EXPECT_NEAR(DistanceSq(x, y), std::pow(std::sqrt(2.0) - std::sqrt(7.0), 2), 1e-14);
}

TEST(BuresDistance, TraceFormulaEqualsMetricNormOfLog) {
  Rng rng(3);
  for (int n : {1, 3, 8, 17}) {
    const Mat x = RandomSpd(n, 100, rng), y = RandomSpd(n, 100, rng);
    const double a = DistanceSq(x, y), b = DistanceSqLogNorm(x, y);
    EXPECT_NEAR(a, b, 1e-10 * a + 1e-14) << "n " << n;
  }
}

TEST(BuresMaps, OtMapPushesXToYAndExpInvertsLog) {
  Rng rng(4);
  const Mat x = RandomSpd(7, 30, rng), y = RandomSpd(7, 30, rng);
  const Mat t = OtMap(x, y);
  EXPECT_LT(RelErr(t * x * t, y), 1e-12);
  EXPECT_LT(RelErr(Exp(x, Log(x, y)), y), 1e-12);
  // Geodesic endpoints, and γ(t) = ((1−t)I + tT) X ((1−t)I + tT).
  EXPECT_LT(RelErr(Geodesic(x, y, 0.0), x), 1e-14);
  EXPECT_LT(RelErr(Geodesic(x, y, 1.0), y), 1e-12);
  const Mat a = 0.7 * Mat::Identity(7, 7) + 0.3 * t;
  EXPECT_LT(RelErr(Geodesic(x, y, 0.3), a * x * a), 1e-12);
  // The distance scales linearly along the geodesic.
  const double d = std::sqrt(DistanceSq(x, y));
  EXPECT_NEAR(std::sqrt(DistanceSq(x, Geodesic(x, y, 0.25))), 0.25 * d, 1e-9 * d);
}

TEST(BuresMaps, LyapunovResidualVanishes) {
  Rng rng(5);
  const Mat x = RandomSpd(9, 1e6, rng);
  Mat r(9, 9);
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 9; ++j) r(i, j) = rng.Normal();
  const Mat v = r + r.transpose();
  const Mat l = Lyapunov(x, v);
  EXPECT_LT((x * l + l * x - v).norm(), 1e-10 * v.norm());
  EXPECT_GT(ExpInjectivityMargin(x, Log(x, RandomSpd(9, 10, rng))), 0.0);
}

TEST(BuresBarycenter, OptimalityResidualAndFastMatchesReferenceOnAwkwardSizes) {
  Rng rng(6);
  for (int n : {1, 3, 15, 17}) {
    const std::vector<Mat> xs = RandomBatch(5, n, 20, rng);
    const BarycenterOptions opt{.iters = 0, .tol = 1e-13, .max_iters = 200};
    const BarycenterResult ref = BarycenterReference(xs, {}, opt);
    const BarycenterResult fast = BarycenterFast(xs, {}, opt);
    EXPECT_TRUE(ref.converged);
    EXPECT_LT(ref.residual, 1e-11) << n;
    EXPECT_LT(fast.residual, 1e-11) << n;
    EXPECT_LT(RelErr(fast.mean, ref.mean), 1e-12) << n;
  }
}

TEST(BuresBarycenter, TwoPointsGiveGeodesicMidpoint) {
  Rng rng(7);
  const Mat x = RandomSpd(6, 40, rng), y = RandomSpd(6, 40, rng);
  const BarycenterResult r = BarycenterFast({x, y}, {}, {.iters = 0, .tol = 1e-14});
  EXPECT_LT(RelErr(r.mean, Geodesic(x, y, 0.5)), 1e-12);
  // Weights (1, 3) give γ(3/4).
  const BarycenterResult rw = BarycenterFast({x, y}, {1.0, 3.0}, {.iters = 0, .tol = 1e-14});
  EXPECT_LT(RelErr(rw.mean, Geodesic(x, y, 0.75)), 1e-12);
}

TEST(BuresBarycenter, CommutingInputsGiveSquaredMeanOfRoots) {
  Rng rng(8);
  for (double kappa : {1e2, 1e8}) {
    const Mat q = RandomOrthogonal(5, rng);
    std::vector<Mat> xs;
    Vec root_mean = Vec::Zero(5);
    for (int i = 0; i < 4; ++i) {
      const Vec l = LogUniformSpectrum(5, kappa, 1.0, rng);
      xs.push_back(FromSpectrum(q, l));
      root_mean += 0.25 * l.cwiseSqrt();
    }
    const BarycenterResult r = BarycenterFast(xs, {}, {.iters = 0, .tol = 1e-14});
    const Mat expected = FromSpectrum(q, root_mean.cwiseAbs2());
    EXPECT_LT(RelErr(r.mean, expected), 1e-9) << kappa;
    EXPECT_TRUE(r.mean.allFinite());
  }
}

TEST(BuresBarycenter, OneIterationIsCodeParityAndCloseButNotConverged) {
  Rng rng(9);
  const std::vector<Mat> xs = RandomBatch(8, 5, 30, rng);
  const BarycenterResult one = BarycenterFast(xs, {}, {.iters = 1});
  const BarycenterResult conv = BarycenterFast(xs, {}, {.iters = 0, .tol = 1e-14});
  EXPECT_EQ(one.iterations, 1);
  EXPECT_GT(conv.iterations, 3);
  const double err = RelErr(one.mean, conv.mean);
  EXPECT_GT(err, 1e-6);
  EXPECT_LT(err, 0.1);
}

// Generalized BW: congruence form = trace form tr(M⁻¹X)+tr(M⁻¹Y)−2tr((X^½M⁻¹YM⁻¹X^½)^½), and
// invariance d_{AMAᵀ}(AXAᵀ, AYAᵀ) = d_M(X, Y).
TEST(GeneralizedBures, CongruenceFormEqualsTraceFormAndIsCongruenceInvariant) {
  Rng rng(10);
  const int n = 6;
  const Mat x = RandomSpd(n, 50, rng), y = RandomSpd(n, 50, rng), m = RandomSpd(n, 10, rng);
  const double congr = DistanceSq(Congruence(x, m, -1), Congruence(y, m, -1));
  const Mat mi = m.inverse();
  const Mat xh = SpdSqrt(x);
  const double trace_form =
      (mi * x).trace() + (mi * y).trace() - 2.0 * SpdSqrt(xh * mi * y * mi * xh).trace();
  EXPECT_NEAR(congr, trace_form, 1e-10 * trace_form);
  Mat a(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) a(i, j) = rng.Normal();
  const Mat m2 = a * m * a.transpose(), x2 = a * x * a.transpose(), y2 = a * y * a.transpose();
  const double moved = DistanceSq(Congruence(x2, m2, -1), Congruence(y2, m2, -1));
  EXPECT_NEAR(moved, congr, 1e-8 * congr);
}

BatchNormParams DefaultParams(int n) {
  BatchNormParams p;
  p.m = Mat::Identity(n, n);
  p.b = Mat::Identity(n, n);
  p.running_mean = Mat::Identity(n, n);
  return p;
}

// With the converged barycenter, θ = 1, M = I, B = I and scaling factor 1, the output is the
// centered batch, whose BW barycenter is exactly I.
TEST(BuresBatchNorm, CenteredBatchHasIdentityBarycenter) {
  Rng rng(11);
  const int n = 5;
  const std::vector<Mat> xs = RandomBatch(10, n, 5, rng);
  BatchNormParams p = DefaultParams(n);
  p.bary = {.iters = 0, .tol = 1e-14};
  p.eps = 0;
  p.s = std::sqrt(BatchNormFast(xs, p).var);  // factor s/√var = 1
  const BatchNormResult r = BatchNormFast(xs, p);
  for (double margin : r.center_margin) ASSERT_GE(margin, 0.0);
  const BarycenterResult bc = BarycenterFast(r.y, {}, {.iters = 0, .tol = 1e-14});
  EXPECT_LT((bc.mean - Mat::Identity(n, n)).norm(), 1e-12);
}

// With factor 1 the output barycenter is B when every I + L_B[V_i] ≻ 0; with B = G the layer
// is the identity map.
TEST(BuresBatchNorm, OutputBarycenterIsBiasAndBiasAtMeanIsIdentityMap) {
  Rng rng(12);
  const int n = 4;
  const std::vector<Mat> xs = RandomBatch(8, n, 3, rng);
  BatchNormParams p = DefaultParams(n);
  p.bary = {.iters = 0, .tol = 1e-14};
  p.eps = 0;
  const BatchNormResult probe = BatchNormFast(xs, p);
  p.s = std::sqrt(probe.var);
  p.b = RandomSpd(n, 2, rng, 1.5);
  const BatchNormResult r = BatchNormFast(xs, p);
  for (double margin : r.bias_margin) ASSERT_GT(margin, 0.0);
  const BarycenterResult bc = BarycenterFast(r.y, {}, {.iters = 0, .tol = 1e-14});
  EXPECT_LT(RelErr(bc.mean, p.b), 1e-11);

  p.b = probe.mean;
  const BatchNormResult same = BatchNormFast(xs, p);
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_LT(RelErr(same.y[i], xs[i]), 1e-11) << i;
}

// GBW equivariance: BN(A X_i Aᵀ; M' = A M Aᵀ, B' = A B Aᵀ) = A BN(X_i; M, B) Aᵀ (θ = 1),
// because M'^{−1/2} A M^{1/2} is orthogonal and every BW map commutes with rotations.
TEST(BuresBatchNorm, GeneralizedMetricIsCongruenceEquivariant) {
  Rng rng(13);
  const int n = 4;
  std::vector<Mat> xs = RandomBatch(6, n, 20, rng);
  BatchNormParams p = DefaultParams(n);
  p.m = RandomSpd(n, 5, rng);
  p.b = RandomSpd(n, 3, rng);
  p.running_mean = RandomSpd(n, 3, rng);
  p.s = 0.8;
  const BatchNormResult r = BatchNormFast(xs, p);
  Mat a(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) a(i, j) = rng.Normal() + (i == j ? 2.0 : 0.0);
  BatchNormParams q = p;
  q.m = a * p.m * a.transpose();
  q.b = a * p.b * a.transpose();
  // The running mean lives in the M-frame, where A acts as the rotation M'^{−1/2}AM^{1/2}.
  const Mat rot = SpdInvSqrt(q.m) * a * SpdSqrt(p.m);
  ASSERT_LT((rot.transpose() * rot - Mat::Identity(n, n)).norm(), 1e-10);
  q.running_mean = rot * p.running_mean * rot.transpose();
  std::vector<Mat> moved;
  for (const Mat& x : xs) moved.push_back(a * x * a.transpose());
  const BatchNormResult s = BatchNormFast(moved, q);
  EXPECT_NEAR(s.var, r.var, 1e-10 * r.var);
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_LT(RelErr(s.y[i], a * r.y[i] * a.transpose()), 1e-9) << i;
  }
  EXPECT_LT(RelErr(s.running_mean, rot * r.running_mean * rot.transpose()), 1e-10);
}

TEST(BuresBatchNorm, FastMatchesReferenceAcrossModesAndSizes) {
  Rng rng(14);
  for (int n : {1, 3, 15, 17}) {
    for (bool train : {true, false}) {
      for (double theta : {1.0, 0.5, 1.5}) {
        const std::vector<Mat> xs = RandomBatch(4, n, 50, rng);
        BatchNormParams p = DefaultParams(n);
        p.m = RandomSpd(n, 4, rng);
        p.b = RandomSpd(n, 4, rng);
        p.running_mean = RandomSpd(n, 4, rng);
        p.running_var = 0.7;
        p.theta = theta;
        p.s = 1.3;
        p.train = train;
        p.variance_center = theta == 0.5 ? VarianceCenter::kMean : VarianceCenter::kIdentity;
        const BatchNormResult ref = BatchNormReference(xs, p);
        const BatchNormResult fast = BatchNormFast(xs, p);
        SCOPED_TRACE(::testing::Message() << "n " << n << " train " << train << " θ " << theta);
        EXPECT_NEAR(fast.var, ref.var, 1e-10 * ref.var);
        EXPECT_NEAR(fast.running_var, ref.running_var, 1e-10);
        EXPECT_LT(RelErr(fast.mean, ref.mean), 1e-11);
        EXPECT_LT(RelErr(fast.running_mean, ref.running_mean), 1e-11);
        for (size_t i = 0; i < xs.size(); ++i) {
          EXPECT_LT(RelErr(fast.y[i], ref.y[i]), 1e-9) << i;
          EXPECT_NEAR(fast.center_margin[i], ref.center_margin[i], 1e-9);
          EXPECT_NEAR(fast.bias_margin[i], ref.bias_margin[i], 1e-9);
        }
      }
    }
  }
}

TEST(BuresBatchNorm, IllConditionedInputStaysFinite) {
  Rng rng(15);
  for (double kappa : {1e2, 1e5, 1e8}) {
    const int n = 12;
    const std::vector<Mat> xs = RandomBatch(6, n, kappa, rng);
    BatchNormParams p = DefaultParams(n);
    p.theta = 0.5;
    p.m = RandomSpd(n, 10, rng);
    const BatchNormResult r = BatchNormFast(xs, p);
    EXPECT_TRUE(std::isfinite(r.var)) << kappa;
    EXPECT_TRUE(r.mean.allFinite());
    for (const Mat& y : r.y) EXPECT_TRUE(y.allFinite()) << kappa;
    const BarycenterResult b = BarycenterFast(xs, {}, {.iters = 0, .tol = 1e-12});
    EXPECT_TRUE(b.mean.allFinite());
  }
}

TEST(BuresBatchNorm, BitIdenticalForAnyThreadCount) {
  Rng rng(16);
  const std::vector<Mat> xs = RandomBatch(9, 6, 100, rng);
  BatchNormParams p = DefaultParams(6);
  p.bary = {.iters = 0, .tol = 1e-13};
  omp_set_num_threads(1);
  const BatchNormResult one = BatchNormFast(xs, p);
  omp_set_num_threads(2);
  const BatchNormResult two = BatchNormFast(xs, p);
  EXPECT_EQ(one.var, two.var);
  EXPECT_TRUE(one.mean == two.mean);
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_TRUE(one.y[i] == two.y[i]);
}

TEST(BuresCheckSpd, RejectsAsymmetricIndefiniteAndNonFinite) {
  Mat a(2, 2);
  a << 1, 2, 0, 1;
  EXPECT_THAT(CheckSpd(a, "X"), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("X")));
  a << 1, 2, 2, 1;
  EXPECT_THAT(CheckSpd(a, "X"), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("positive")));
  a << 1, 0, 0, NAN;
  EXPECT_THAT(CheckSpd(a, "X"), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  a << 2, 1, 1, 2;
  EXPECT_OK(CheckSpd(a, "X"));
}

}  // namespace
}  // namespace chamferdb::bures
