#include "kernels/paths/paths.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace chamferdb::paths {
namespace {

constexpr double kPi = std::numbers::pi;

Point Sub(const Point& a, const Point& b) { return {a.x - b.x, a.y - b.y}; }
double Cross(const Point& a, const Point& b) { return a.x * b.y - a.y * b.x; }
double Dot(const Point& a, const Point& b) { return a.x * b.x + a.y * b.y; }
double Norm(const Point& a) { return std::hypot(a.x, a.y); }
Point Lerp(const Point& a, const Point& b, double t) {
  return {a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t};
}

// ---- Exact arithmetic for Orient (Shewchuk, "Adaptive Precision Floating-Point
// Arithmetic and Fast Robust Geometric Predicates", 1997). ----

void TwoSum(double a, double b, double* x, double* y) {
  *x = a + b;
  const double bv = *x - a;
  const double av = *x - bv;
  *y = (a - av) + (b - bv);
}
void TwoDiff(double a, double b, double* x, double* y) {
  *x = a - b;
  const double bv = a - *x;
  const double av = *x + bv;
  *y = (a - av) + (bv - b);
}
void TwoProduct(double a, double b, double* x, double* y) {
  *x = a * b;
  *y = std::fma(a, b, -*x);
}

// Sign of the exact sum of `terms` (GROW-EXPANSION with zero elimination: the result is
// a non-overlapping expansion whose largest component carries the sign).
int ExactSumSign(const double* terms, int count) {
  double e[64];
  int len = 0;
  for (int t = 0; t < count; ++t) {
    double q = terms[t];
    int out = 0;
    for (int i = 0; i < len; ++i) {
      double sum, err;
      TwoSum(q, e[i], &sum, &err);
      q = sum;
      if (err != 0.0) e[out++] = err;
    }
    if (q != 0.0) e[out++] = q;
    len = out;
  }
  if (len == 0) return 0;
  return e[len - 1] > 0 ? 1 : -1;
}

// Exact fallbacks taken on this thread (the crossing counts charge them to their budget).
thread_local int64_t g_exact_orient_calls = 0;

int OrientExact(const Point& a, const Point& b, const Point& c) {
  ++g_exact_orient_calls;
  // det = (ax − cx)(by − cy) − (ay − cy)(bx − cx), every difference split exactly.
  double acx[2], bcy[2], acy[2], bcx[2];
  TwoDiff(a.x, c.x, &acx[0], &acx[1]);
  TwoDiff(b.y, c.y, &bcy[0], &bcy[1]);
  TwoDiff(a.y, c.y, &acy[0], &acy[1]);
  TwoDiff(b.x, c.x, &bcx[0], &bcx[1]);
  double terms[16];
  int n = 0;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      TwoProduct(acx[i], bcy[j], &terms[n], &terms[n + 1]);
      n += 2;
      double x, y;
      TwoProduct(acy[i], bcx[j], &x, &y);
      terms[n++] = -x;
      terms[n++] = -y;
    }
  }
  return ExactSumSign(terms, n);
}

}  // namespace

int Orient(const Point& a, const Point& b, const Point& c) {
  const double left = (a.x - c.x) * (b.y - c.y);
  const double right = (a.y - c.y) * (b.x - c.x);
  const double det = left - right;
  const double bound = 3.3306690738754716e-16 * (std::abs(left) + std::abs(right));
  if (det > bound) return 1;
  if (-det > bound) return -1;
  return OrientExact(a, b, c);
}

absl::Status ValidateScene(const Scene& s) {
  if (s.offsets.empty() || s.offsets[0] != 0) {
    return absl::InvalidArgumentError("path_offsets: must start with 0");
  }
  for (size_t p = 1; p < s.offsets.size(); ++p) {
    const int64_t n = s.offsets[p] - s.offsets[p - 1];
    if (n < 3 || n % 3 != 0) {
      return absl::InvalidArgumentError(fmt::format(
          "path_offsets: path {} has {} points; need a positive multiple of 3", p - 1, n));
    }
  }
  if (s.offsets.back() != static_cast<int64_t>(s.points.size())) {
    return absl::InvalidArgumentError(fmt::format("path_offsets: last offset {} != {} points",
                                                  s.offsets.back(), s.points.size()));
  }
  for (size_t i = 0; i < s.points.size(); ++i) {
    if (!std::isfinite(s.points[i].x) || !std::isfinite(s.points[i].y)) {
      return absl::InvalidArgumentError(fmt::format("points[{}]: non-finite coordinate", i));
    }
  }
  return absl::OkStatus();
}

Scene ApplyAffine(const Scene& s, const std::vector<std::array<double, 4>>& affine) {
  Scene out = s;
  for (int64_t p = 0; p < s.num_paths(); ++p) {
    const auto& [theta, scale, tx, ty] = affine[p];
    const double c = std::cos(theta) * scale, sn = std::sin(theta) * scale;
    for (int64_t i = s.offsets[p]; i < s.offsets[p + 1]; ++i) {
      const Point q = s.points[i];
      out.points[i] = {c * q.x - sn * q.y + tx, sn * q.x + c * q.y + ty};
    }
  }
  return out;
}

Point Bezier(const Point* ctrl, double t) {
  const double u = 1 - t;
  const double b0 = u * u * u, b1 = 3 * u * u * t, b2 = 3 * u * t * t, b3 = t * t * t;
  return {b0 * ctrl[0].x + b1 * ctrl[1].x + b2 * ctrl[2].x + b3 * ctrl[3].x,
          b0 * ctrl[0].y + b1 * ctrl[1].y + b2 * ctrl[2].y + b3 * ctrl[3].y};
}

namespace {

Point BezierDeriv(const Point* c, double t) {
  const double u = 1 - t;
  const Point d0 = Sub(c[1], c[0]), d1 = Sub(c[2], c[1]), d2 = Sub(c[3], c[2]);
  return {3 * (u * u * d0.x + 2 * u * t * d1.x + t * t * d2.x),
          3 * (u * u * d0.y + 2 * u * t * d1.y + t * t * d2.y)};
}

Point BezierDeriv2(const Point* c, double t) {
  const Point e0 = {c[2].x - 2 * c[1].x + c[0].x, c[2].y - 2 * c[1].y + c[0].y};
  const Point e1 = {c[3].x - 2 * c[2].x + c[1].x, c[3].y - 2 * c[2].y + c[1].y};
  return {6 * ((1 - t) * e0.x + t * e1.x), 6 * ((1 - t) * e0.y + t * e1.y)};
}

// The four control points of segment s of a path (wrapping around).
std::array<Point, 4> Segment(const Point* path, int64_t num_points, int64_t s) {
  return {path[3 * s], path[3 * s + 1], path[3 * s + 2], path[(3 * s + 3) % num_points]};
}

double DistToChord(const Point& p, const Point& a, const Point& b) {
  const Point ab = Sub(b, a);
  const double len = Norm(ab);
  if (len == 0) return Norm(Sub(p, a));
  return std::abs(Cross(ab, Sub(p, a))) / len;
}

void FlattenRec(const std::array<Point, 4>& c, double tol, int depth, std::vector<Point>* out) {
  if (depth >= 16 ||
      std::max(DistToChord(c[1], c[0], c[3]), DistToChord(c[2], c[0], c[3])) <= tol) {
    out->push_back(c[0]);
    return;
  }
  const Point p01 = Lerp(c[0], c[1], 0.5), p12 = Lerp(c[1], c[2], 0.5), p23 = Lerp(c[2], c[3], 0.5);
  const Point p012 = Lerp(p01, p12, 0.5), p123 = Lerp(p12, p23, 0.5);
  const Point mid = Lerp(p012, p123, 0.5);
  FlattenRec({c[0], p01, p012, mid}, tol, depth + 1, out);
  FlattenRec({mid, p123, p23, c[3]}, tol, depth + 1, out);
}

}  // namespace

std::vector<Point> Flatten(const Point* path, int64_t num_points, double tolerance) {
  std::vector<Point> out;
  for (int64_t s = 0; s < num_points / 3; ++s) {
    FlattenRec(Segment(path, num_points, s), tolerance, 0, &out);
  }
  return out;
}

int64_t EstimateFlattenedVertices(const Point* path, int64_t num_points, double tolerance) {
  int64_t total = 0;
  for (int64_t s = 0; s < num_points / 3; ++s) {
    const auto c = Segment(path, num_points, s);
    const double m = std::max(Norm({c[0].x - 2 * c[1].x + c[2].x, c[0].y - 2 * c[1].y + c[2].y}),
                              Norm({c[1].x - 2 * c[2].x + c[3].x, c[1].y - 2 * c[2].y + c[3].y}));
    int levels = 0;
    double d = 2 * m;
    while (d > tolerance && levels < 16) d *= 0.25, ++levels;
    total += int64_t{1} << levels;
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// Self-intersections.

namespace {

bool OnSegment(const Point& a, const Point& b, const Point& p) {
  return std::min(a.x, b.x) <= p.x && p.x <= std::max(a.x, b.x) && std::min(a.y, b.y) <= p.y &&
         p.y <= std::max(a.y, b.y);
}

enum class PairKind { kNone, kProper, kDegenerate };

PairKind ClassifyPair(const Point& a, const Point& b, const Point& c, const Point& d) {
  const int o1 = Orient(a, b, c), o2 = Orient(a, b, d), o3 = Orient(c, d, a), o4 = Orient(c, d, b);
  if (o1 * o2 < 0 && o3 * o4 < 0) return PairKind::kProper;
  if ((o1 == 0 && OnSegment(a, b, c)) || (o2 == 0 && OnSegment(a, b, d)) ||
      (o3 == 0 && OnSegment(c, d, a)) || (o4 == 0 && OnSegment(c, d, b))) {
    return PairKind::kDegenerate;
  }
  return PairKind::kNone;
}

Point IntersectionPoint(const Point& a, const Point& b, const Point& c, const Point& d) {
  const Point r = Sub(b, a), s = Sub(d, c);
  const double t = Cross(Sub(c, a), s) / Cross(r, s);
  return {a.x + t * r.x, a.y + t * r.y};
}

bool Adjacent(int64_t i, int64_t j, int64_t n) {
  return j == i + 1 || (i == 0 && j == n - 1) || i == j;
}

struct PairCounter {
  const std::vector<Point>& poly;
  int64_t n;
  int64_t crossings = 0, degenerate = 0;
  std::vector<Crossing>* out;
  int64_t max_out;

  void Test(int64_t i, int64_t j) {
    const Point &a = poly[i], &b = poly[(i + 1) % n], &c = poly[j], &d = poly[(j + 1) % n];
    const PairKind k = ClassifyPair(a, b, c, d);
    if (k == PairKind::kProper) {
      ++crossings;
      if (out && static_cast<int64_t>(out->size()) < max_out) {
        out->push_back({i, j, IntersectionPoint(a, b, c, d)});
      }
    } else if (k == PairKind::kDegenerate) {
      ++degenerate;
    }
  }
};

bool ZeroLength(const std::vector<Point>& poly, int64_t i) {
  const Point &a = poly[i], &b = poly[(i + 1) % poly.size()];
  return a.x == b.x && a.y == b.y;
}

}  // namespace

int64_t CountCrossingsBruteForce(const std::vector<Point>& poly, int64_t* degenerate,
                                 std::vector<Crossing>* out, int64_t max_out, int64_t max_work,
                                 int64_t* work) {
  const int64_t n = static_cast<int64_t>(poly.size());
  const int64_t pairs = n > 1 ? n * (n - 1) / 2 : 0;
  if (work) *work = pairs;
  if (degenerate) *degenerate = 0;
  if (pairs > max_work) return -1;
  const size_t out0 = out ? out->size() : 0;
  const int64_t exact0 = g_exact_orient_calls;
  PairCounter pc{poly, n, 0, 0, out, max_out};
  for (int64_t i = 0; i < n; ++i) {
    if (ZeroLength(poly, i)) continue;
    for (int64_t j = i + 1; j < n; ++j) {
      if (Adjacent(i, j, n) || ZeroLength(poly, j)) continue;
      pc.Test(i, j);
    }
    const int64_t used = pairs + kExactOrientWeight * (g_exact_orient_calls - exact0);
    if (work) *work = used;
    if (used > max_work) {
      if (out) out->resize(out0);
      return -1;
    }
  }
  if (degenerate) *degenerate = pc.degenerate;
  return pc.crossings;
}

int64_t CountCrossingsGrid(const std::vector<Point>& poly, int64_t* degenerate,
                           std::vector<Crossing>* out, int64_t max_out, int64_t max_work,
                           int64_t* work) {
  const int64_t n = static_cast<int64_t>(poly.size());
  if (work) *work = 0;
  if (n < 4) {
    if (degenerate) *degenerate = 0;
    return 0;
  }
  double x0 = poly[0].x, x1 = x0, y0 = poly[0].y, y1 = y0;
  for (const Point& p : poly) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  const int64_t g = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(double(n)))));
  const double cw = (x1 - x0) / g, ch = (y1 - y0) / g;
  auto cell_x = [&](double x) {
    if (cw <= 0) return int64_t{0};
    return std::clamp<int64_t>(static_cast<int64_t>((x - x0) / cw), 0, g - 1);
  };
  auto cell_y = [&](double y) {
    if (ch <= 0) return int64_t{0};
    return std::clamp<int64_t>(static_cast<int64_t>((y - y0) / ch), 0, g - 1);
  };
  // Cell range of each edge's bounding box (conservative: cell_x is monotone, so the range
  // covers every cell the closed box touches).
  std::vector<std::array<int64_t, 4>> range(n);
  // Work first: cell insertions (each ≤ g² ≤ 2^22 for n ≤ 2^22, so the sum fits), then the
  // candidate pairs per cell; nothing is binned or tested when the total is over max_work
  // (the count stops early, so *work is then only a lower bound). While testing, every exact
  // orientation fallback adds kExactOrientWeight; past max_work the count stops (−1).
  int64_t total = 0;
  std::vector<int64_t> fill(g * g, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (ZeroLength(poly, i)) continue;
    const Point &a = poly[i], &b = poly[(i + 1) % n];
    range[i] = {cell_x(std::min(a.x, b.x)), cell_x(std::max(a.x, b.x)),
                cell_y(std::min(a.y, b.y)), cell_y(std::max(a.y, b.y))};
    total += (range[i][1] - range[i][0] + 1) * (range[i][3] - range[i][2] + 1);
    if (total > max_work) break;
  }
  if (total <= max_work) {
    for (int64_t i = 0; i < n && total <= max_work; ++i) {
      if (ZeroLength(poly, i)) continue;
      for (int64_t cy = range[i][2]; cy <= range[i][3]; ++cy)
        for (int64_t cx = range[i][0]; cx <= range[i][1]; ++cx) ++fill[cy * g + cx];
    }
    for (int64_t c = 0; c < g * g && total <= max_work; ++c) total += fill[c] * (fill[c] - 1) / 2;
  }
  if (work) *work = total;
  if (total > max_work) {
    if (degenerate) *degenerate = 0;
    return -1;
  }
  std::vector<std::vector<int64_t>> cells(g * g);
  for (int64_t i = 0; i < n; ++i) {
    if (ZeroLength(poly, i)) continue;
    for (int64_t cy = range[i][2]; cy <= range[i][3]; ++cy)
      for (int64_t cx = range[i][0]; cx <= range[i][1]; ++cx) cells[cy * g + cx].push_back(i);
  }
  PairCounter pc{poly, n, 0, 0, nullptr, 0};
  std::vector<Crossing> found;
  if (out) pc.out = &found, pc.max_out = INT64_MAX;
  const int64_t exact0 = g_exact_orient_calls;
  auto over_budget = [&] {
    const int64_t used = total + kExactOrientWeight * (g_exact_orient_calls - exact0);
    if (work) *work = used;
    return used > max_work;
  };
  for (int64_t cy = 0; cy < g; ++cy) {
    for (int64_t cx = 0; cx < g; ++cx) {
      const std::vector<int64_t>& list = cells[cy * g + cx];
      for (size_t u = 0; u < list.size(); ++u) {
        if (over_budget()) {
          if (degenerate) *degenerate = 0;
          return -1;
        }
        for (size_t v = u + 1; v < list.size(); ++v) {
          const int64_t i = std::min(list[u], list[v]), j = std::max(list[u], list[v]);
          if (Adjacent(i, j, n)) continue;
          // Test each pair once: in the lowest cell both boxes share.
          if (std::max(range[i][0], range[j][0]) != cx || std::max(range[i][2], range[j][2]) != cy) {
            continue;
          }
          pc.Test(i, j);
        }
      }
    }
  }
  if (over_budget()) {
    if (degenerate) *degenerate = 0;
    return -1;
  }
  if (out) {
    std::sort(found.begin(), found.end(), [](const Crossing& a, const Crossing& b) {
      return a.edge_a != b.edge_a ? a.edge_a < b.edge_a : a.edge_b < b.edge_b;
    });
    for (const Crossing& c : found) {
      if (static_cast<int64_t>(out->size()) >= max_out) break;
      out->push_back(c);
    }
  }
  if (degenerate) *degenerate = pc.degenerate;
  return pc.crossings;
}

// ---------------------------------------------------------------------------------------
// Regularity metrics.

namespace {

double SafeSin(const Point& a, const Point& b) {
  const double na = Norm(a), nb = Norm(b);
  if (na == 0 || nb == 0) return 0.0;
  return Cross(a, b) / (na * nb);
}

// ∫_0^1 |B'(t)| dt by adaptive 5-point Gauss–Legendre.
double GaussLegendre5(const std::array<Point, 4>& c, double a, double b) {
  static constexpr double kX[5] = {0.0, -0.5384693101056831, 0.5384693101056831,
                                   -0.9061798459386640, 0.9061798459386640};
  static constexpr double kW[5] = {0.5688888888888889, 0.4786286704993665, 0.4786286704993665,
                                   0.2369268850561891, 0.2369268850561891};
  const double h = 0.5 * (b - a), m = 0.5 * (a + b);
  double s = 0;
  for (int i = 0; i < 5; ++i) s += kW[i] * Norm(BezierDeriv(c.data(), m + h * kX[i]));
  return s * h;
}

double ArcLength(const std::array<Point, 4>& c, double a, double b, double whole, int depth) {
  const double m = 0.5 * (a + b);
  const double left = GaussLegendre5(c, a, m), right = GaussLegendre5(c, m, b);
  if (depth >= 30 || std::abs(left + right - whole) <= 1e-14 * std::max(1.0, std::abs(whole))) {
    return left + right;
  }
  return ArcLength(c, a, m, left, depth + 1) + ArcLength(c, m, b, right, depth + 1);
}

// ½∫(x y' − y x') dt over one cubic: a degree-5 polynomial, so 3-point Gauss–Legendre is exact.
double SegmentArea(const std::array<Point, 4>& c) {
  static constexpr double kX[3] = {-0.7745966692414834, 0.0, 0.7745966692414834};
  static constexpr double kW[3] = {5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0};
  double s = 0;
  for (int i = 0; i < 3; ++i) {
    const double t = 0.5 * (kX[i] + 1);
    const Point p = Bezier(c.data(), t), d = BezierDeriv(c.data(), t);
    s += kW[i] * 0.5 * (p.x * d.y - p.y * d.x);
  }
  return 0.5 * s;
}

}  // namespace

Regularity PathRegularity(const Point* path, int64_t num_points, const RegularityOptions& opt) {
  Regularity r;
  const int64_t segments = num_points / 3;
  // LIVE Xing loss.
  double xing = 0;
  for (int64_t s = 0; s < segments; ++s) {
    const auto c = Segment(path, num_points, s);
    const Point e1 = Sub(c[1], c[0]), e2 = Sub(c[2], c[1]), e3 = Sub(c[3], c[2]);
    const double s13 = SafeSin(e1, e3);
    xing += SafeSin(e1, e2) >= 0 ? std::max(0.0, -s13) : std::max(0.0, s13);
  }
  r.xing_loss = xing / static_cast<double>(segments);
  // Laplacian smoothness over the cyclic control-point list (T2V-NPR losses.py).
  double lap = 0, lapw = 0;
  for (int64_t i = 0; i < num_points; ++i) {
    const Point& prev = path[(i + num_points - 1) % num_points];
    const Point& next = path[(i + 1) % num_points];
    const Point d = {path[i].x - 0.5 * (prev.x + next.x), path[i].y - 0.5 * (prev.y + next.y)};
    const double e = Dot(d, d);
    lap += e;
    const Point u = Sub(path[i], prev), v = Sub(next, path[i]);
    const double nu = Norm(u), nv = Norm(v);
    const double cosang = nu > 0 && nv > 0 ? Dot(u, v) / (nu * nv) : 1.0;
    const double w = 1.0 - std::abs(cosang) > 0.2 ? 0.1 : 1.0;
    lapw += w * w * e;
  }
  r.laplacian = std::sqrt(lap);
  r.laplacian_weighted = std::sqrt(lapw);
  // Area, length, curvature, G1 continuity.
  for (int64_t s = 0; s < segments; ++s) {
    const auto c = Segment(path, num_points, s);
    r.signed_area += SegmentArea(c);
    r.perimeter += ArcLength(c, 0, 1, GaussLegendre5(c, 0, 1), 0);
    for (int k = 0; k < opt.samples_per_segment; ++k) {
      const double t = static_cast<double>(k) / opt.samples_per_segment;
      const Point d1 = BezierDeriv(c.data(), t), d2 = BezierDeriv2(c.data(), t);
      const double speed = Norm(d1);
      if (speed > 0) r.max_curvature = std::max(r.max_curvature, std::abs(Cross(d1, d2)) / (speed * speed * speed));
    }
    // Joint at P_{3s}: incoming tangent from the previous segment, outgoing of this one
    // (falling back to the next control point when a handle has zero length).
    const Point& joint = path[3 * s];
    Point in = Sub(joint, path[(3 * s + num_points - 1) % num_points]);
    if (Norm(in) == 0) in = Sub(joint, path[(3 * s + num_points - 2) % num_points]);
    Point outv = Sub(path[3 * s + 1], joint);
    if (Norm(outv) == 0) outv = Sub(path[3 * s + 2], joint);
    if (Norm(in) > 0 && Norm(outv) > 0) {
      r.max_g1_defect = std::max(r.max_g1_defect, std::atan2(std::abs(Cross(in, outv)), Dot(in, outv)));
    }
  }
  // Flattened curve: crossings and turning number.
  const std::vector<Point> poly = Flatten(path, num_points, opt.flatten_tolerance);
  r.flattened_vertices = static_cast<int64_t>(poly.size());
  if (opt.brute_force) {
    r.self_intersections = CountCrossingsBruteForce(poly, &r.degenerate_contacts, &r.crossings,
                                                    opt.max_crossings, opt.max_crossing_work,
                                                    &r.crossing_work);
    if (r.self_intersections < 0) {
      r.self_intersections = 0;
      r.over_budget = true;
    }
  } else {
    r.self_intersections = CountCrossingsGrid(poly, &r.degenerate_contacts, &r.crossings, opt.max_crossings,
                                              opt.max_crossing_work, &r.crossing_work);
    if (r.self_intersections < 0) {
      r.self_intersections = 0;
      r.over_budget = true;
    }
  }
  std::vector<Point> edges;
  for (size_t i = 0; i < poly.size(); ++i) {
    const Point e = Sub(poly[(i + 1) % poly.size()], poly[i]);
    if (e.x != 0 || e.y != 0) edges.push_back(e);
  }
  double turning = 0;
  for (size_t i = 0; i < edges.size(); ++i) {
    const Point& a = edges[i];
    const Point& b = edges[(i + 1) % edges.size()];
    turning += std::atan2(Cross(a, b), Dot(a, b));
  }
  r.turning_number = static_cast<int>(std::lround(turning / (2 * kPi)));
  return r;
}

// ---------------------------------------------------------------------------------------
// Rasterization.

namespace {

bool Inside(int winding, FillRule rule) {
  return rule == FillRule::kNonZero ? winding != 0 : (winding & 1) != 0;
}

double SampleCoord(int64_t g, int32_t s) { return (static_cast<double>(g) + 0.5) / s; }

}  // namespace

std::vector<float> CoverageReference(const std::vector<Point>& poly, const RasterOptions& opt) {
  const int32_t s = opt.samples;
  std::vector<float> cov(static_cast<size_t>(opt.width) * opt.height, 0.0f);
  const int64_t n = static_cast<int64_t>(poly.size());
  for (int32_t r = 0; r < opt.height; ++r) {
    for (int32_t c = 0; c < opt.width; ++c) {
      int count = 0;
      for (int j = 0; j < s; ++j) {
        for (int i = 0; i < s; ++i) {
          const Point p = {SampleCoord(int64_t{c} * s + i, s), SampleCoord(int64_t{r} * s + j, s)};
          // Sunday's winding number with half-open edges in y.
          int w = 0;
          for (int64_t e = 0; e < n; ++e) {
            const Point &a = poly[e], &b = poly[(e + 1) % n];
            if (a.y <= p.y) {
              if (b.y > p.y && Orient(a, b, p) > 0) ++w;
            } else if (b.y <= p.y && Orient(a, b, p) < 0) {
              --w;
            }
          }
          count += Inside(w, opt.fill_rule);
        }
      }
      cov[static_cast<size_t>(r) * opt.width + c] = static_cast<float>(count) / (s * s);
    }
  }
  return cov;
}

std::vector<float> CoverageScanline(const std::vector<Point>& poly, const RasterOptions& opt) {
  const int32_t s = opt.samples;
  const int64_t cols = int64_t{opt.width} * s;
  std::vector<float> cov(static_cast<size_t>(opt.width) * opt.height, 0.0f);
  const int64_t n = static_cast<int64_t>(poly.size());
  double ymin = 0, ymax = -1;
  if (n > 0) {
    ymin = ymax = poly[0].y;
    for (const Point& p : poly) ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
  }
#pragma omp parallel for schedule(dynamic, 8)
  for (int32_t r = 0; r < opt.height; ++r) {
    std::vector<int32_t> counts(opt.width, 0);
    std::vector<std::pair<int64_t, int>> events;  // (first sample not counted, direction)
    for (int j = 0; j < s; ++j) {
      const double py = SampleCoord(int64_t{r} * s + j, s);
      if (py < ymin || py >= ymax) continue;
      events.clear();
      int total = 0;
      for (int64_t e = 0; e < n; ++e) {
        const Point &a = poly[e], &b = poly[(e + 1) % n];
        int dir = 0;
        if (a.y <= py && b.y > py) dir = 1;
        else if (a.y > py && b.y <= py) dir = -1;
        if (dir == 0) continue;
        // Samples counted by this edge form a prefix g < G* (see the reference's rule:
        // Orient > 0 for dir = +1, Orient < 0 for dir = −1, both hold left of the edge).
        auto counted = [&](int64_t g) {
          const int o = Orient(a, b, {SampleCoord(g, s), py});
          return dir > 0 ? o > 0 : o < 0;
        };
        const double xc = a.x + (py - a.y) * (b.x - a.x) / (b.y - a.y);
        int64_t g = static_cast<int64_t>(std::clamp(std::ceil(xc * s - 0.5), -1.0, double(cols)));
        g = std::clamp<int64_t>(g, 0, cols);
        while (g > 0 && !counted(g - 1)) --g;
        while (g < cols && counted(g)) ++g;
        if (g > 0) events.emplace_back(g, dir), total += dir;
      }
      if (events.empty()) continue;
      std::sort(events.begin(), events.end());
      // Winding at sample g = Σ dir over events with G* > g.
      int w = total;
      int64_t g = 0;
      for (size_t k = 0; k <= events.size(); ++k) {
        const int64_t end = k < events.size() ? events[k].first : cols;
        if (Inside(w, opt.fill_rule)) {
          for (int64_t q = g; q < end; ++q) ++counts[q / s];
        }
        g = end;
        if (k < events.size()) w -= events[k].second;
      }
    }
    for (int32_t c = 0; c < opt.width; ++c) {
      cov[static_cast<size_t>(r) * opt.width + c] = static_cast<float>(counts[c]) / (s * s);
    }
  }
  return cov;
}

std::vector<float> RasterizeScene(const Scene& scene, const std::vector<std::array<double, 4>>& rgba,
                                  const RasterOptions& opt, bool reference) {
  const size_t pixels = static_cast<size_t>(opt.width) * opt.height;
  std::vector<float> img(pixels * 4, 0.0f);
  for (int64_t p = 0; p < scene.num_paths(); ++p) {
    const std::vector<Point> poly = Flatten(scene.path(p), scene.path_size(p), opt.flatten_tolerance);
    const std::vector<float> cov =
        reference ? CoverageReference(poly, opt) : CoverageScanline(poly, opt);
    const auto& col = rgba[p];
    for (size_t i = 0; i < pixels; ++i) {
      if (cov[i] == 0.0f) continue;
      const float a = static_cast<float>(col[3]) * cov[i];
      for (int ch = 0; ch < 3; ++ch) {
        img[4 * i + ch] = static_cast<float>(col[ch]) * a + img[4 * i + ch] * (1.0f - a);
      }
      img[4 * i + 3] = a + img[4 * i + 3] * (1.0f - a);
    }
  }
  return img;
}

// ---------------------------------------------------------------------------------------
// Descriptor.

namespace {

// Control-point RMS radius about their mean: invariant to rotation and translation,
// proportional to scale, so flattening decisions are similarity invariant.
double ControlRms(const Point* path, int64_t n) {
  Point m{0, 0};
  for (int64_t i = 0; i < n; ++i) m.x += path[i].x, m.y += path[i].y;
  m.x /= n, m.y /= n;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += Dot(Sub(path[i], m), Sub(path[i], m));
  return std::sqrt(s / n);
}

std::vector<Point> ResamplePolyline(const std::vector<Point>& poly, int64_t start, int32_t m) {
  const int64_t n = static_cast<int64_t>(poly.size());
  std::vector<double> cum(n + 1, 0.0);
  for (int64_t k = 0; k < n; ++k) {
    cum[k + 1] = cum[k] + Norm(Sub(poly[(start + k + 1) % n], poly[(start + k) % n]));
  }
  const double total = cum[n];
  std::vector<Point> out(m);
  int64_t k = 0;
  for (int32_t q = 0; q < m; ++q) {
    const double target = total * q / m;
    while (k < n - 1 && cum[k + 1] < target) ++k;
    const double len = cum[k + 1] - cum[k];
    const double t = len > 0 ? (target - cum[k]) / len : 0.0;
    out[q] = Lerp(poly[(start + k) % n], poly[(start + k + 1) % n], t);
  }
  return out;
}

double PolygonArea(const std::vector<Point>& p) {
  double a = 0;
  for (size_t i = 0; i < p.size(); ++i) a += Cross(p[i], p[(i + 1) % p.size()]);
  return 0.5 * a;
}

void NormalizeBlock(std::vector<double>* v, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += (*v)[i] * (*v)[i];
  if (s == 0) return;
  const double inv = 1.0 / std::sqrt(s);
  for (size_t i = begin; i < end; ++i) (*v)[i] *= inv;
}

}  // namespace

double DescriptorFlattenTolerance(const Point* path, int64_t num_points) {
  return std::max(ControlRms(path, num_points), 1e-300) * 1e-4;
}

std::vector<Point> ResampleByArcLength(const Point* path, int64_t num_points, int32_t m) {
  return ResamplePolyline(Flatten(path, num_points, DescriptorFlattenTolerance(path, num_points)), 0, m);
}

std::vector<double> PathDescriptor(const Point* path, int64_t num_points,
                                   const DescriptorOptions& opt) {
  std::vector<Point> poly = Flatten(path, num_points, DescriptorFlattenTolerance(path, num_points));
  // Canonical orientation: positive shoelace area (reverse otherwise).
  if (PolygonArea(poly) < 0) std::reverse(poly.begin(), poly.end());
  Point centroid{0, 0};
  for (const Point& p : poly) centroid.x += p.x, centroid.y += p.y;
  centroid.x /= poly.size(), centroid.y /= poly.size();
  int64_t start = 0;
  double far = -1;
  for (size_t i = 0; i < poly.size(); ++i) {
    const double d = Dot(Sub(poly[i], centroid), Sub(poly[i], centroid));
    if (d > far) far = d, start = static_cast<int64_t>(i);
  }
  std::vector<Point> pts = ResamplePolyline(poly, start, opt.resample);
  // Center on the samples' mean, scale to unit RMS radius, rotate the start point onto +x.
  Point mean{0, 0};
  for (const Point& p : pts) mean.x += p.x, mean.y += p.y;
  mean.x /= pts.size(), mean.y /= pts.size();
  double rms = 0;
  for (Point& p : pts) p = Sub(p, mean), rms += Dot(p, p);
  rms = std::sqrt(rms / pts.size());
  if (rms == 0) rms = 1;
  const double ang = std::atan2(pts[0].y, pts[0].x);
  const double ca = std::cos(-ang) / rms, sa = std::sin(-ang) / rms;
  for (Point& p : pts) p = {ca * p.x - sa * p.y, sa * p.x + ca * p.y};

  const int32_t k_h = opt.harmonics, m = opt.resample;
  std::vector<double> desc(4 * k_h, 0.0);
  // Elliptic Fourier coefficients (Kuhl & Giardina 1982) of the closed polygon.
  std::vector<double> dt(m), cumt(m + 1, 0.0);
  for (int32_t i = 0; i < m; ++i) {
    dt[i] = Norm(Sub(pts[(i + 1) % m], pts[i]));
    cumt[i + 1] = cumt[i] + dt[i];
  }
  const double period = cumt[m];
  for (int32_t h = 1; h <= k_h && period > 0; ++h) {
    const double w = 2 * kPi * h / period;
    double a = 0, b = 0, c = 0, d = 0;
    for (int32_t i = 0; i < m; ++i) {
      if (dt[i] == 0) continue;
      const Point dp = Sub(pts[(i + 1) % m], pts[i]);
      const double cx = dp.x / dt[i], cy = dp.y / dt[i];
      const double dcos = std::cos(w * cumt[i + 1]) - std::cos(w * cumt[i]);
      const double dsin = std::sin(w * cumt[i + 1]) - std::sin(w * cumt[i]);
      a += cx * dcos, b += cx * dsin, c += cy * dcos, d += cy * dsin;
    }
    const double f = period / (2 * h * h * kPi * kPi);
    desc[4 * (h - 1) + 0] = f * a;
    desc[4 * (h - 1) + 1] = f * b;
    desc[4 * (h - 1) + 2] = f * c;
    desc[4 * (h - 1) + 3] = f * d;
  }
  NormalizeBlock(&desc, 0, desc.size());
  if (opt.raster > 0) {
    double rmax = 0;
    for (const Point& p : pts) rmax = std::max(rmax, Norm(p));
    const double scale = opt.raster / (2.0 * std::max(rmax, 1e-300));
    std::vector<Point> img;
    img.reserve(pts.size());
    for (const Point& p : pts) img.push_back({(p.x * scale) + opt.raster / 2.0, (p.y * scale) + opt.raster / 2.0});
    RasterOptions ro;
    ro.width = ro.height = opt.raster;
    ro.samples = 4;
    const std::vector<float> cov = CoverageScanline(img, ro);
    const size_t off = desc.size();
    desc.insert(desc.end(), cov.begin(), cov.end());
    NormalizeBlock(&desc, off, desc.size());
    for (double& v : desc) v *= std::sqrt(0.5);
  }
  return desc;
}

}  // namespace chamferdb::paths
