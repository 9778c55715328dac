// VFN edge features (spec 5.5), K = K' = 16, G = 3, random backbones:
//   naive   all pairs, dense N×N×K×3 transported tensor, 4×4 LU inverses (PyTorch layout)
//   fast    all pairs, streaming per edge
//   fast_knn30  kNN edges (k = 30), streaming
//   ipa_loop    a dedicated IPA point-distance loop (global coordinates) on all pairs,
//               against which fast with W = [I | −I] shows the cost of the K'×2K mixing.
// Counter max_abs_diff: max |len − len_reference| (naive: vs fast; ipa: vs [I|−I] fast).
//
//   build-geometry/kernels/gaunt/bench_geometry --benchmark_filter=Vfn
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "kernels/sphere/frames.h"
#include "kernels/vfn/vfn.h"

namespace chamferdb::vfn {
namespace {

constexpr int kK = 16, kG = 3;

struct Setup {
  int64_t n;
  std::vector<double> rot, trans, q, v, w, wid, mu, sigma;
  std::vector<int64_t> all, knn;
};

Setup Make(int64_t n) {
  Setup s;
  s.n = n;
  Rng rng(n);
  std::vector<double> bb(n * 9);
  // A random-walk chain: CA steps of 3.8 Å, N and C offsets around each CA.
  double ca[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    for (int a = 0; a < 3; ++a) ca[a] += 3.8 / std::sqrt(3.0) * rng.Sign();
    for (int a = 0; a < 3; ++a) {
      bb[i * 9 + a] = ca[a] + 1.4 * rng.Normal() / std::sqrt(3.0);
      bb[i * 9 + 3 + a] = ca[a];
      bb[i * 9 + 6 + a] = ca[a] + 1.5 * rng.Normal() / std::sqrt(3.0);
    }
  }
  s.rot.resize(n * 9);
  s.trans.resize(n * 3);
  (void)sphere::FramesFromBackbone(n, bb.data(), s.rot.data(), s.trans.data());
  for (auto* vec : {&s.q, &s.v}) {
    vec->resize(n * kK * 3);
    for (double& x : *vec) x = rng.Normal();
  }
  s.w.resize(kK * 2 * kK);
  for (double& x : s.w) x = 0.3 * rng.Normal();
  s.wid.assign(kK * 2 * kK, 0.0);
  for (int a = 0; a < kK; ++a) s.wid[a * 2 * kK + a] = 1, s.wid[a * 2 * kK + kK + a] = -1;
  s.mu.resize(kK * kG);
  for (double& x : s.mu) x = 2 * rng.Uniform();
  s.sigma.assign(kK * kG, 0.5);
  s.all.resize(n * (n - 1) * 2);
  AllPairsEdges(n, s.all.data());
  s.knn.resize(n * 30 * 2);
  KnnEdges(n, s.trans.data(), 30, s.knn.data());
  return s;
}

// Output buffers live outside the timed loop (allocation and page faults would dominate).
struct Buffers {
  std::vector<double> u, len, dir, rbf;
};

const std::vector<double>& Lens(const Setup& s, const std::vector<int64_t>& ij, const double* w,
                                VfnMethod m, Buffers& buf) {
  const int64_t e = static_cast<int64_t>(ij.size() / 2);
  buf.u.resize(e * kK * 3);
  buf.len.resize(e * kK);
  buf.dir.resize(e * kK * 3);
  buf.rbf.resize(e * kK * kG);
  auto& u = buf.u;
  auto& len = buf.len;
  auto& dir = buf.dir;
  auto& rbf = buf.rbf;
  EdgeFeatureParams p;
  p.k = p.kp = kK;
  p.g = kG;
  p.w = w;
  p.mu = s.mu.data();
  p.sigma = s.sigma.data();
  (void)VfnEdgeFeatures({s.n, s.rot.data(), s.trans.data(), 0.1}, s.q.data(), s.v.data(),
                        {e, ij.data()}, p, m, 1, {u.data(), len.data(), dir.data(), rbf.data()});
  return len;
}

double MaxDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

enum Variant { kNaive, kFast, kFastKnn, kIpaLoop, kFastIdentity };

void BM_VfnEdgeFeatures(benchmark::State& state, Variant variant) {
  const Setup s = Make(state.range(0));
  std::vector<double> out;
  Buffers buf, check;
  for (auto _ : state) {
    switch (variant) {
      case kNaive: benchmark::DoNotOptimize(Lens(s, s.all, s.w.data(), VfnMethod::kNaive, buf).data()); break;
      case kFast: benchmark::DoNotOptimize(Lens(s, s.all, s.w.data(), VfnMethod::kFast, buf).data()); break;
      case kFastKnn: benchmark::DoNotOptimize(Lens(s, s.knn, s.w.data(), VfnMethod::kFast, buf).data()); break;
      case kFastIdentity: benchmark::DoNotOptimize(Lens(s, s.all, s.wid.data(), VfnMethod::kFast, buf).data()); break;
      case kIpaLoop: {
        const int64_t n = s.n;
        std::vector<double> gq(n * kK * 3), gv(n * kK * 3);
        for (int64_t i = 0; i < n; ++i)
          for (int a = 0; a < kK; ++a)
            for (int r = 0; r < 3; ++r) {
              double x = 0.1 * s.trans[i * 3 + r], y = x;
              for (int c = 0; c < 3; ++c) {
                x += s.rot[i * 9 + r * 3 + c] * s.q[(i * kK + a) * 3 + c];
                y += s.rot[i * 9 + r * 3 + c] * s.v[(i * kK + a) * 3 + c];
              }
              gq[(i * kK + a) * 3 + r] = x;
              gv[(i * kK + a) * 3 + r] = y;
            }
        out.resize(s.all.size() / 2 * kK);
        for (size_t x = 0; x < s.all.size() / 2; ++x) {
          const int64_t i = s.all[2 * x], j = s.all[2 * x + 1];
          for (int a = 0; a < kK; ++a) {
            double d2 = 0;
            for (int r = 0; r < 3; ++r) {
              const double t = gv[(j * kK + a) * 3 + r] - gq[(i * kK + a) * 3 + r];
              d2 += t * t;
            }
            out[x * kK + a] = std::sqrt(d2);
          }
        }
        break;
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  if (variant == kNaive) {
    state.counters["max_abs_diff"] =
        MaxDiff(buf.len, Lens(s, s.all, s.w.data(), VfnMethod::kFast, check));
  } else if (variant == kIpaLoop) {
    state.counters["max_abs_diff"] =
        MaxDiff(out, Lens(s, s.all, s.wid.data(), VfnMethod::kFast, check));
  }
  state.counters["edges"] = static_cast<double>(variant == kFastKnn ? s.knn.size() / 2 : s.all.size() / 2);
}

void Ns(benchmark::internal::Benchmark* b) {
  for (int n : {64, 128, 256}) b->Arg(n);
  b->Unit(benchmark::kMillisecond);
}
BENCHMARK_CAPTURE(BM_VfnEdgeFeatures, naive, kNaive)->Apply(Ns);
BENCHMARK_CAPTURE(BM_VfnEdgeFeatures, fast, kFast)->Apply(Ns);
BENCHMARK_CAPTURE(BM_VfnEdgeFeatures, fast_knn30, kFastKnn)->Apply(Ns);
BENCHMARK_CAPTURE(BM_VfnEdgeFeatures, fast_identity_w, kFastIdentity)->Apply(Ns);
BENCHMARK_CAPTURE(BM_VfnEdgeFeatures, ipa_loop, kIpaLoop)->Apply(Ns);

}  // namespace
}  // namespace chamferdb::vfn
