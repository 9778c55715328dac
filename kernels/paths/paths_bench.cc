// T2V-NPR path benchmarks (spec (j)): a seeded scene of P random closed paths (S = 10
// segments each) at 224² (the code's render size).
//   crossings: O(n²) brute force vs the uniform-grid broad phase; counter count_mismatch
//              (must be 0) over all paths.
//   raster: per-pixel winding test vs the scanline rasterizer (1 and 2 threads) vs Cairo;
//           counters: max_diff_vs_reference (must be 0; 64-path scene only, the reference
//           is slow) and mean_abs_diff_vs_cairo (alpha, 4×4 samples vs Cairo's own AA).
#include <benchmark/benchmark.h>
#include <cairo.h>
#include <omp.h>

#include <cmath>

#include "common/rng.h"
#include "kernels/paths/paths.h"

namespace chamferdb::paths {
namespace {

constexpr int kSize = 224;

std::vector<std::vector<Point>> MakeScene(int paths) {
  Rng rng(DeriveSeed(11, paths, 0));
  std::vector<std::vector<Point>> out;
  for (int p = 0; p < paths; ++p) {
    const double cx = 20 + 184 * rng.Uniform(), cy = 20 + 184 * rng.Uniform(), r = 8 + 20 * rng.Uniform();
    std::vector<Point> path;
    for (int i = 0; i < 30; ++i) path.push_back({cx + r * (2 * rng.Uniform() - 1), cy + r * (2 * rng.Uniform() - 1)});
    out.push_back(path);
  }
  return out;
}

void BM_CrossingsBruteForce(benchmark::State& state) {
  const auto scene = MakeScene(static_cast<int>(state.range(0)));
  std::vector<std::vector<Point>> polys;
  for (const auto& p : scene) polys.push_back(Flatten(p.data(), p.size(), 0.05));
  for (auto _ : state) {
    int64_t total = 0;
    for (const auto& poly : polys) total += CountCrossingsBruteForce(poly, nullptr, nullptr, 0);
    benchmark::DoNotOptimize(total);
  }
  state.counters["paths/s"] = benchmark::Counter(scene.size(), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_CrossingsGrid(benchmark::State& state) {
  const auto scene = MakeScene(static_cast<int>(state.range(0)));
  std::vector<std::vector<Point>> polys;
  for (const auto& p : scene) polys.push_back(Flatten(p.data(), p.size(), 0.05));
  for (auto _ : state) {
    int64_t total = 0;
    for (const auto& poly : polys) total += CountCrossingsGrid(poly, nullptr, nullptr, 0);
    benchmark::DoNotOptimize(total);
  }
  int64_t mismatch = 0;
  for (const auto& poly : polys) {
    mismatch += CountCrossingsGrid(poly, nullptr, nullptr, 0) != CountCrossingsBruteForce(poly, nullptr, nullptr, 0);
  }
  state.counters["count_mismatch"] = mismatch;
  state.counters["paths/s"] = benchmark::Counter(scene.size(), benchmark::Counter::kIsIterationInvariantRate);
}

std::vector<float> CairoAlpha(const std::vector<std::vector<Point>>& scene) {
  cairo_surface_t* surf = cairo_image_surface_create(CAIRO_FORMAT_A8, kSize, kSize);
  cairo_t* cr = cairo_create(surf);
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_BEST);
  cairo_set_fill_rule(cr, CAIRO_FILL_RULE_WINDING);
  for (const auto& path : scene) {
    const size_t n = path.size();
    cairo_move_to(cr, path[0].x, path[0].y);
    for (size_t s = 0; s < n / 3; ++s) {
      const Point &c1 = path[3 * s + 1], &c2 = path[3 * s + 2], &e = path[(3 * s + 3) % n];
      cairo_curve_to(cr, c1.x, c1.y, c2.x, c2.y, e.x, e.y);
    }
    cairo_close_path(cr);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.5);
    cairo_fill(cr);
  }
  cairo_surface_flush(surf);
  std::vector<float> out(kSize * kSize);
  const unsigned char* d = cairo_image_surface_get_data(surf);
  const int stride = cairo_image_surface_get_stride(surf);
  for (int r = 0; r < kSize; ++r)
    for (int c = 0; c < kSize; ++c) out[r * kSize + c] = d[r * stride + c] / 255.0f;
  cairo_destroy(cr);
  cairo_surface_destroy(surf);
  return out;
}

Scene ToScene(const std::vector<std::vector<Point>>& paths) {
  Scene s;
  s.offsets = {0};
  for (const auto& p : paths) {
    s.points.insert(s.points.end(), p.begin(), p.end());
    s.offsets.push_back(static_cast<int64_t>(s.points.size()));
  }
  return s;
}

void RasterBench(benchmark::State& state, int mode) {
  const auto paths = MakeScene(static_cast<int>(state.range(0)));
  const Scene scene = ToScene(paths);
  const std::vector<std::array<double, 4>> rgba(paths.size(), {0, 0, 0, 0.5});
  RasterOptions opt;
  opt.width = opt.height = kSize;
  opt.samples = 4;
  omp_set_num_threads(mode == 2 ? 2 : 1);
  std::vector<float> img;
  std::vector<float> cairo;
  for (auto _ : state) {
    if (mode == 3) {
      cairo = CairoAlpha(paths);
      benchmark::DoNotOptimize(cairo.data());
    } else {
      img = RasterizeScene(scene, rgba, opt, mode == 0);
      benchmark::DoNotOptimize(img.data());
    }
  }
  if (mode == 1 || mode == 2) {
    // The per-pixel reference costs ~30 s for 64 paths, so it is computed once (64 paths).
    static const std::vector<float>* ref64 = nullptr;
    if (paths.size() == 64) {
      if (ref64 == nullptr) ref64 = new std::vector<float>(RasterizeScene(scene, rgba, opt, true));
      double worst = 0;
      for (size_t i = 0; i < img.size(); ++i) worst = std::max(worst, double(std::abs(img[i] - (*ref64)[i])));
      state.counters["max_diff_vs_reference"] = worst;
    }
    const std::vector<float> ca = CairoAlpha(paths);
    double mean = 0;
    for (size_t i = 0; i < ca.size(); ++i) mean += std::abs(img[4 * i + 3] - ca[i]);
    state.counters["mean_abs_diff_vs_cairo"] = mean / ca.size();
  }
  state.counters["Mpixel/s"] = benchmark::Counter(kSize * kSize * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
  omp_set_num_threads(1);
}
void BM_RasterPerPixelWinding(benchmark::State& s) { RasterBench(s, 0); }
void BM_RasterScanline1Thread(benchmark::State& s) { RasterBench(s, 1); }
void BM_RasterScanline2Threads(benchmark::State& s) { RasterBench(s, 2); }
void BM_RasterCairo(benchmark::State& s) { RasterBench(s, 3); }

BENCHMARK(BM_CrossingsBruteForce)->Arg(64)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CrossingsGrid)->Arg(64)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RasterPerPixelWinding)->Arg(64)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_RasterScanline1Thread)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RasterScanline2Threads)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RasterCairo)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace chamferdb::paths
