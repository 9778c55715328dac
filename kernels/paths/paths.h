// Geometry of closed cubic Bézier paths, the deterministic layer under T2V-NPR ("Text-to-Vector
// Generation with Neural Path Representation", Zhang, Zhao, Liao, SIGGRAPH 2024; official code
// intchous/Text2SVG): regularity metrics (LIVE's Xing loss, Laplacian smoothness,
// self-intersections, area, length, curvature, G1 defects), an anti-aliased rasterizer, and a
// fixed-length descriptor for retrieving similar paths.
//
// Data layout: a path is a cyclic list of 3S points (x, y) read as S cubic segments
// (P_{3s}, P_{3s+1}, P_{3s+2}, P_{3s+3 mod 3S}). A scene is a flat row-major point array
// `points` [Σ 3S_p, 2] with `offsets` [P+1] (path p owns points offsets[p]..offsets[p+1]).
// Image coordinates: x to the right, y down; pixel (r, c) covers [c, c+1) × [r, r+1).
//
// Exactness: orientation tests use an adaptive-precision predicate (double filter, exact
// expansion arithmetic on failure), so the crossing counts of the brute-force and the grid
// paths, and the coverage of the per-pixel and scanline rasterizers, agree exactly.
//
// Thread-safety: pure functions. Rasterization runs OpenMP over fixed bands of rows, each
// band writing its own pixels, so results are identical for any thread count.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace chamferdb::paths {

struct Point {
  double x = 0, y = 0;
};

struct Scene {
  std::vector<Point> points;
  std::vector<int64_t> offsets;  // [P+1], offsets[0] = 0
  int64_t num_paths() const { return static_cast<int64_t>(offsets.size()) - 1; }
  const Point* path(int64_t p) const { return points.data() + offsets[p]; }
  int64_t path_size(int64_t p) const { return offsets[p + 1] - offsets[p]; }
};

// INVALID_ARGUMENT unless offsets start at 0, increase by positive multiples of 3 and end at
// points.size(), and every coordinate is finite.
absl::Status ValidateScene(const Scene& s);

// Applies p' = s·R(θ)·p + (tx, ty) per path; affine: [P] × (θ, s, tx, ty).
Scene ApplyAffine(const Scene& s, const std::vector<std::array<double, 4>>& affine);

// Sign of the orientation of (a, b, c): +1 if c lies left of a→b (counter-clockwise in a
// y-up frame), −1 right, 0 collinear. Exact for all finite doubles.
int Orient(const Point& a, const Point& b, const Point& c);

// Cubic Bézier evaluation and flattening.
Point Bezier(const Point* ctrl, double t);
// Closed polyline of one path: adaptive de Casteljau subdivision until every control point
// lies within `tolerance` of the chord (depth ≤ 16). The first vertex is P_0; the closing
// edge back to it is implicit.
std::vector<Point> Flatten(const Point* path, int64_t num_points, double tolerance);
// Upper estimate of Flatten's vertex count without flattening (second differences shrink 4×
// per subdivision level: 2^⌈log4(2M/τ)⌉ vertices per segment, M the largest second
// difference, capped at 2^16), for request caps.
int64_t EstimateFlattenedVertices(const Point* path, int64_t num_points, double tolerance);

// ---- J1 PathRegularity ----
struct Crossing {
  int64_t edge_a = 0, edge_b = 0;  // polyline edge indices, edge_a < edge_b
  Point at;                        // intersection point (rounded)
};
struct Regularity {
  double xing_loss = 0;             // LIVE: mean over segments of relu(∓sin(e1, e3)), unscaled
  double laplacian = 0;             // ‖P − ½(P_prev + P_next)‖_F over the cyclic point list
  double laplacian_weighted = 0;    // same, rows ×0.1 at corners where 1 − |cos∠| > 0.2
  int64_t self_intersections = 0;   // proper crossings of non-adjacent flattened edges
  int64_t degenerate_contacts = 0;  // touching / collinear-overlap pairs (not counted above)
  std::vector<Crossing> crossings;  // up to max_crossings entries
  double signed_area = 0;           // exact Green's-theorem area of the Bézier path (y-down:
                                    // > 0 means clockwise on screen)
  double perimeter = 0;             // arc length by adaptive Gauss–Legendre
  int turning_number = 0;           // total turning of the flattened polyline / 2π
  double max_curvature = 0;         // max |B'×B''|/|B'|³ over samples_per_segment samples
  double max_g1_defect = 0;         // max angle (radians) between in/out tangents at joints
  int64_t flattened_vertices = 0;
  // Work of the crossing count (see CountCrossingsGrid): pairs + kExactOrientWeight × exact
  // orientation fallbacks. Past RegularityOptions::max_crossing_work the count stops:
  // over_budget is set, the crossing fields stay 0 and crossing_work is a lower bound.
  int64_t crossing_work = 0;
  bool over_budget = false;
};
struct RegularityOptions {
  double flatten_tolerance = 0.05;
  int samples_per_segment = 16;
  int64_t max_crossings = 1000;
  bool brute_force = false;  // O(n²) pair test instead of the uniform-grid broad phase
  // Cap on Regularity::crossing_work. The grid is O(n) for well-spread edges but O(n²) when
  // they pile into a few cells (coordinates spanning many orders of magnitude, long
  // overlapping edges).
  int64_t max_crossing_work = INT64_MAX;
};
Regularity PathRegularity(const Point* path, int64_t num_points, const RegularityOptions& opt);

// Proper crossings among the edges of a closed polyline (adjacent edges excluded).
// Reference: all pairs. Fast: uniform grid of ~√n × √n cells over the bounding box, pairs
// deduplicated by testing each pair only in the first cell both edges share.
int64_t CountCrossingsBruteForce(const std::vector<Point>& poly, int64_t* degenerate,
                                 std::vector<Crossing>* out, int64_t max_out,
                                 int64_t max_work = INT64_MAX, int64_t* work = nullptr);
// Work budget (both versions): the pairs to test (brute force: n(n−1)/2; grid: cell
// insertions + candidate pairs, counted before any test) plus kExactOrientWeight per exact
// orientation fallback taken while testing (≈ 7× a whole ordinary pair test; near-collinear
// or wide-ranging coordinates take it). Over max_work: −1, out unchanged, *work (when
// non-null) a lower bound above max_work; else *work is the exact total.
inline constexpr int64_t kExactOrientWeight = 8;
int64_t CountCrossingsGrid(const std::vector<Point>& poly, int64_t* degenerate,
                           std::vector<Crossing>* out, int64_t max_out, int64_t max_work = INT64_MAX,
                           int64_t* work = nullptr);

// ---- J2 RasterizePaths ----
enum class FillRule { kNonZero = 0, kEvenOdd = 1 };
struct RasterOptions {
  int32_t width = 0, height = 0;
  int32_t samples = 4;  // s: s×s samples per pixel at ((c + (i+½)/s), (r + (j+½)/s))
  FillRule fill_rule = FillRule::kNonZero;
  double flatten_tolerance = 0.05;
};
// Coverage of one path: [H, W] fractions in [0, 1] (count of covered samples / s²).
std::vector<float> CoverageReference(const std::vector<Point>& poly, const RasterOptions& opt);
std::vector<float> CoverageScanline(const std::vector<Point>& poly, const RasterOptions& opt);
// Composites the paths in order (later on top), source-over, colour = straight RGBA in
// [0, 1] per path. Returns premultiplied RGBA [H, W, 4].
std::vector<float> RasterizeScene(const Scene& scene, const std::vector<std::array<double, 4>>& rgba,
                                  const RasterOptions& opt, bool reference);

// ---- J3 PathDescriptor ----
struct DescriptorOptions {
  int32_t resample = 128;     // M arc-length samples
  int32_t harmonics = 16;     // K elliptic Fourier harmonics → 4K numbers
  int32_t raster = 32;        // R×R coverage raster of the normalized shape (0 = none)
};
// Descriptor = [4K normalized EFD coefficients (Kuhl–Giardina: first-harmonic rotation,
// start point and scale removed), R² coverage values of the shape normalized to its RMS
// radius], L2-normalized per block and concatenated, then L2-normalized. Invariant to
// translation, uniform scale, rotation, start point and traversal direction.
std::vector<double> PathDescriptor(const Point* path, int64_t num_points,
                                   const DescriptorOptions& opt);
// The flattening tolerance PathDescriptor uses: 1e-4 × the control points' RMS radius
// (similarity invariant, so flattening decisions do not change under rotation or scale).
double DescriptorFlattenTolerance(const Point* path, int64_t num_points);
// Arc-length resampling of the flattened path to m points, starting at P_0.
std::vector<Point> ResampleByArcLength(const Point* path, int64_t num_points, int32_t m);

}  // namespace chamferdb::paths
