#include "kernels/vfn/vfn.h"

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/sphere/frames.h"
#include "kernels/sphere/sphere.h"

namespace chamferdb::vfn {
namespace {

using ::chamferdb::testing::StatusIs;

std::vector<double> Gaussian(size_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = scale * rng.Normal();
  return v;
}

struct Structure {
  int64_t n;
  std::vector<double> backbone, rot, trans;
};

Structure RandomStructure(int64_t n, uint64_t seed) {
  Structure s{n, Gaussian(n * 9, seed, 6.0), std::vector<double>(n * 9),
              std::vector<double>(n * 3)};
  EXPECT_TRUE(sphere::FramesFromBackbone(n, s.backbone.data(), s.rot.data(), s.trans.data()).ok());
  return s;
}

struct EdgeOut {
  std::vector<double> u, len, dir, rbf;
};

EdgeOut Features(const Frames& f, const std::vector<double>& q, const std::vector<double>& v,
                 const std::vector<int64_t>& ij, const EdgeFeatureParams& p, VfnMethod m,
                 int threads = 1) {
  const int64_t e = static_cast<int64_t>(ij.size() / 2);
  EdgeOut o{std::vector<double>(e * p.kp * 3), std::vector<double>(e * p.kp),
            std::vector<double>(e * p.kp * 3), std::vector<double>(e * p.kp * p.g)};
  const absl::Status st = VfnEdgeFeatures(f, q.data(), v.data(), {e, ij.data()}, p, m, threads,
                                          {o.u.data(), o.len.data(), o.dir.data(), o.rbf.data()});
  EXPECT_TRUE(st.ok()) << st;
  return o;
}

double MaxDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

std::vector<int64_t> AllPairs(int64_t n) {
  std::vector<int64_t> ij(n * (n - 1) * 2);
  AllPairsEdges(n, ij.data());
  return ij;
}

// With W = [I | −I] and no residual, len is the IPA point distance in global coordinates.
TEST(VfnEdgeFeatures, IdentityMinusIdentityGivesIpaPointDistances) {
  const int64_t n = 9;
  const int k = 5;
  const Structure s = RandomStructure(n, 1);
  const double scale = 0.1;
  const Frames f{n, s.rot.data(), s.trans.data(), scale};
  const auto q = Gaussian(n * k * 3, 2), v = Gaussian(n * k * 3, 3);
  std::vector<double> w(k * 2 * k, 0.0);
  for (int a = 0; a < k; ++a) w[a * 2 * k + a] = 1.0, w[a * 2 * k + k + a] = -1.0;
  EdgeFeatureParams p;
  p.k = p.kp = k;
  p.w = w.data();
  const auto ij = AllPairs(n);
  for (VfnMethod m : {VfnMethod::kFast, VfnMethod::kNaive}) {
    const EdgeOut o = Features(f, q, v, ij, p, m);
    for (size_t x = 0; x < ij.size() / 2; ++x) {
      const int64_t i = ij[2 * x], j = ij[2 * x + 1];
      for (int a = 0; a < k; ++a) {
        double gi[3], gj[3], d2 = 0;
        for (int r = 0; r < 3; ++r) {
          gi[r] = scale * s.trans[i * 3 + r];
          gj[r] = scale * s.trans[j * 3 + r];
          for (int c = 0; c < 3; ++c) {
            gi[r] += s.rot[i * 9 + r * 3 + c] * q[(i * k + a) * 3 + c];
            gj[r] += s.rot[j * 9 + r * 3 + c] * v[(j * k + a) * 3 + c];
          }
          d2 += (gj[r] - gi[r]) * (gj[r] - gi[r]);
        }
        EXPECT_NEAR(o.len[x * k + a], std::sqrt(d2), 1e-13);
      }
    }
  }
}

EdgeFeatureParams RandomParams(int k, int kp, int g, bool residual, std::vector<double>* store) {
  store->clear();
  const auto w = Gaussian(kp * 2 * k, 11, 0.5);
  const auto mu = Gaussian(kp * g, 12, 1.0);
  store->insert(store->end(), w.begin(), w.end());
  store->insert(store->end(), mu.begin(), mu.end());
  for (int x = 0; x < kp * g; ++x) store->push_back(0.5 + 0.1 * x);
  EdgeFeatureParams p;
  p.k = k;
  p.kp = kp;
  p.g = g;
  p.residual = residual;
  p.w = store->data();
  p.mu = store->data() + kp * 2 * k;
  p.sigma = store->data() + kp * 2 * k + kp * g;
  return p;
}

TEST(VfnEdgeFeatures, FastEqualsNaiveDenseHomogeneousRoute) {
  const int64_t n = 11;
  const Structure s = RandomStructure(n, 4);
  const Frames f{n, s.rot.data(), s.trans.data(), 0.1};
  std::vector<double> store;
  for (auto [k, kp, residual] : {std::tuple{4, 4, true}, {3, 7, false}, {1, 1, false}}) {
    const EdgeFeatureParams p = RandomParams(k, kp, 3, residual, &store);
    const auto q = Gaussian(n * k * 3, 5), v = Gaussian(n * k * 3, 6);
    const auto ij = AllPairs(n);
    const EdgeOut a = Features(f, q, v, ij, p, VfnMethod::kFast, 2);
    const EdgeOut b = Features(f, q, v, ij, p, VfnMethod::kNaive);
    EXPECT_LE(MaxDiff(a.u, b.u), 1e-12);
    EXPECT_LE(MaxDiff(a.len, b.len), 1e-12);
    EXPECT_LE(MaxDiff(a.dir, b.dir), 1e-12);
    EXPECT_LE(MaxDiff(a.rbf, b.rbf), 1e-12);
  }
}

// A global rigid motion of all frames changes nothing.
TEST(VfnEdgeFeatures, IsInvariantToGlobalRigidMotions) {
  const int64_t n = 10;
  const int k = 4;
  Structure s = RandomStructure(n, 7);
  double qrot[9];
  sphere::RandomRotation(8, qrot);
  const double shift[3] = {3.0, -7.0, 12.0};
  std::vector<double> rot2(n * 9), trans2(n * 3);
  for (int64_t i = 0; i < n; ++i)
    for (int r = 0; r < 3; ++r) {
      trans2[i * 3 + r] = shift[r];
      for (int c = 0; c < 3; ++c) {
        trans2[i * 3 + r] += qrot[r * 3 + c] * s.trans[i * 3 + c];
        rot2[i * 9 + r * 3 + c] = 0;
        for (int t = 0; t < 3; ++t) rot2[i * 9 + r * 3 + c] += qrot[r * 3 + t] * s.rot[i * 9 + t * 3 + c];
      }
    }
  std::vector<double> store;
  const EdgeFeatureParams p = RandomParams(k, k, 3, true, &store);
  const auto q = Gaussian(n * k * 3, 9), v = Gaussian(n * k * 3, 10);
  std::vector<int64_t> ij(n * 3 * 2);
  KnnEdges(n, s.trans.data(), 3, ij.data());
  const EdgeOut a = Features({n, s.rot.data(), s.trans.data(), 0.1}, q, v, ij, p, VfnMethod::kFast);
  const EdgeOut b = Features({n, rot2.data(), trans2.data(), 0.1}, q, v, ij, p, VfnMethod::kFast);
  EXPECT_LE(MaxDiff(a.u, b.u), 1e-12);
  EXPECT_LE(MaxDiff(a.rbf, b.rbf), 1e-12);
  // Aggregation outputs too.
  const int h = 2, d = 3, kv = 2;
  const auto logits = Gaussian(ij.size() / 2 * h, 13), val = Gaussian(n * h * d, 14),
             vv = Gaussian(n * kv * 3, 15);
  auto agg = [&](const double* rot, const double* trans) {
    std::vector<double> alpha(ij.size() / 2 * h), os(n * h * d), ov(n * h * kv * 3);
    EXPECT_OK(VfnAggregate({n, rot, trans, 0.1}, {static_cast<int64_t>(ij.size() / 2), ij.data()},
                           {h, d, kv, logits.data(), nullptr, val.data(), vv.data()},
                           VfnMethod::kFast, 1, {alpha.data(), os.data(), ov.data()}));
    return ov;
  };
  EXPECT_LE(MaxDiff(agg(s.rot.data(), s.trans.data()), agg(rot2.data(), trans2.data())), 1e-12);
}

// Reflecting the backbone and rebuilding frames gives U' = F·U, with U computed on the
// original structure with mirrored atoms (F·q, F·v), F = diag(1, 1, −1).
TEST(VfnEdgeFeatures, ReflectionActsAsTheLocalMirror) {
  const int64_t n = 8;
  const int k = 3;
  Structure s = RandomStructure(n, 16);
  Structure r{n, s.backbone, std::vector<double>(n * 9), std::vector<double>(n * 3)};
  double qrot[9];
  sphere::RandomRotation(17, qrot);
  for (int64_t a = 0; a < n * 3; ++a) {
    const double* x = &s.backbone[a * 3];
    for (int row = 0; row < 3; ++row)  // Q' = −Q: det −1
      r.backbone[a * 3 + row] =
          -(qrot[row * 3] * x[0] + qrot[row * 3 + 1] * x[1] + qrot[row * 3 + 2] * x[2]);
  }
  ASSERT_OK(sphere::FramesFromBackbone(n, r.backbone.data(), r.rot.data(), r.trans.data()));
  std::vector<double> store;
  const EdgeFeatureParams p = RandomParams(k, k, 2, true, &store);
  const auto q = Gaussian(n * k * 3, 18), v = Gaussian(n * k * 3, 19);
  auto mirror = [](std::vector<double> x) {
    for (size_t i = 2; i < x.size(); i += 3) x[i] = -x[i];
    return x;
  };
  const auto ij = AllPairs(n);
  const EdgeOut refl = Features({n, r.rot.data(), r.trans.data(), 1.0}, q, v, ij, p, VfnMethod::kFast);
  const EdgeOut orig = Features({n, s.rot.data(), s.trans.data(), 1.0}, mirror(q), mirror(v), ij,
                                p, VfnMethod::kFast);
  EXPECT_LE(MaxDiff(refl.u, mirror(orig.u)), 1e-12);
  EXPECT_LE(MaxDiff(refl.len, orig.len), 1e-12);
}

TEST(VfnAggregate, SoftmaxPropertiesAndFastEqualsNaive) {
  const int64_t n = 9;
  const Structure s = RandomStructure(n, 20);
  const Frames f{n, s.rot.data(), s.trans.data(), 0.1};
  std::vector<int64_t> ij(n * 4 * 2);
  KnnEdges(n, s.trans.data(), 4, ij.data());
  const int64_t e = n * 4;
  const int h = 3, d = 2, kv = 2;
  auto logits = Gaussian(e * h, 21, 3.0);
  const auto val = Gaussian(n * h * d, 22), vv = Gaussian(n * kv * 3, 23);
  std::vector<uint8_t> mask(e, 1);
  mask[1] = mask[6] = mask[17] = 0;
  struct Out {
    std::vector<double> alpha, os, ov;
  };
  auto run = [&](const std::vector<double>& lg, VfnMethod m, int threads) {
    Out o{std::vector<double>(e * h), std::vector<double>(n * h * d),
          std::vector<double>(n * h * kv * 3)};
    EXPECT_OK(VfnAggregate(f, {e, ij.data()}, {h, d, kv, lg.data(), mask.data(), val.data(), vv.data()},
                           m, threads, {o.alpha.data(), o.os.data(), o.ov.data()}));
    return o;
  };
  const Out fast = run(logits, VfnMethod::kFast, 2), naive = run(logits, VfnMethod::kNaive, 1);
  EXPECT_LE(MaxDiff(fast.alpha, naive.alpha), 1e-14);
  EXPECT_LE(MaxDiff(fast.os, naive.os), 1e-12);
  EXPECT_LE(MaxDiff(fast.ov, naive.ov), 1e-12);
  for (int64_t i = 0; i < n; ++i)
    for (int hh = 0; hh < h; ++hh) {
      double sum = 0;
      for (int64_t x = 0; x < e; ++x)
        if (ij[2 * x] == i) sum += fast.alpha[x * h + hh];
      EXPECT_NEAR(sum, 1.0, 1e-14);
    }
  for (int64_t x : {1, 6, 17})
    for (int hh = 0; hh < h; ++hh) EXPECT_EQ(fast.alpha[x * h + hh], 0.0);
  // Adding a per-node constant to the logits changes nothing.
  for (int64_t x = 0; x < e; ++x)
    for (int hh = 0; hh < h; ++hh) logits[x * h + hh] += 10.0 * static_cast<double>(ij[2 * x]) - 4.0;
  const Out shifted = run(logits, VfnMethod::kFast, 1);
  EXPECT_LE(MaxDiff(shifted.alpha, fast.alpha), 1e-13);
  EXPECT_LE(MaxDiff(shifted.os, fast.os), 1e-12);
}

TEST(Vfn, RejectsBadInput) {
  const int64_t n = 3;
  const Structure s = RandomStructure(n, 30);
  const Frames f{n, s.rot.data(), s.trans.data(), 1.0};
  std::vector<double> q(n * 2 * 3), v(q), w(2 * 4), u(100), len(100), dir(100);
  EdgeFeatureParams p;
  p.k = p.kp = 2;
  p.w = w.data();
  const EdgeFeatureOutput out{u.data(), len.data(), dir.data(), nullptr};
  std::vector<int64_t> bad = {0, 3};
  EXPECT_THAT(VfnEdgeFeatures(f, q.data(), v.data(), {1, bad.data()}, p, VfnMethod::kFast, 1, out),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("edges")));
  std::vector<int64_t> dup = {0, 1, 0, 1};
  EXPECT_THAT(VfnEdgeFeatures(f, q.data(), v.data(), {2, dup.data()}, p, VfnMethod::kFast, 1, out),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("duplicate")));
  p.kp = 1;
  p.residual = true;
  std::vector<int64_t> ok = {0, 1};
  EXPECT_THAT(VfnEdgeFeatures(f, q.data(), v.data(), {1, ok.data()}, p, VfnMethod::kFast, 1, out),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("residual")));
}

}  // namespace
}  // namespace chamferdb::vfn
