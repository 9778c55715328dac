// Renders closed cubic Bézier paths with the scanline kernel and writes a PNG (via Cairo's
// PNG writer), printing each path's regularity metrics.
//
//   paths_render out.png                 # built-in demo scene (circle, star, figure-eight, blob)
//   paths_render scene.json out.png
//
// scene.json: {"width": 256, "height": 256, "samples": 4, "fill_rule": "nonzero"|"evenodd",
//              "paths": [{"points": [[x, y], ...], "rgba": [r, g, b, a]}, ...]}
// (3S points per path, read as S cubic segments; colours in [0, 1]).
#include <cairo.h>
#include <fmt/format.h>

#include <cmath>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>

#include "kernels/paths/paths.h"

using namespace chamferdb::paths;

namespace {

nlohmann::json DemoScene() {
  constexpr double k = 0.5522847498307936, pi = std::numbers::pi;
  nlohmann::json circle = nlohmann::json::array();
  for (int q = 0; q < 4; ++q) {
    const double a0 = q * pi / 2, a1 = (q + 1) * pi / 2, r = 60, cx = 80, cy = 80;
    circle.push_back({cx + r * std::cos(a0), cy + r * std::sin(a0)});
    circle.push_back({cx + r * std::cos(a0) - k * r * std::sin(a0), cy + r * std::sin(a0) + k * r * std::cos(a0)});
    circle.push_back({cx + r * std::cos(a1) + k * r * std::sin(a1), cy + r * std::sin(a1) - k * r * std::cos(a1)});
  }
  nlohmann::json star = nlohmann::json::array();
  for (int i = 0; i < 5; ++i) {
    const double a = -pi / 2 + i * 4 * pi / 5, b = -pi / 2 + (i + 1) * 4 * pi / 5;
    const double ax = 176 + 62 * std::cos(a), ay = 84 + 62 * std::sin(a);
    const double bx = 176 + 62 * std::cos(b), by = 84 + 62 * std::sin(b);
    star.push_back({ax, ay});
    star.push_back({ax + (bx - ax) / 3, ay + (by - ay) / 3});
    star.push_back({ax + 2 * (bx - ax) / 3, ay + 2 * (by - ay) / 3});
  }
  // Lemniscate of Gerono through 16 samples (off the crossing), as a Catmull–Rom spline.
  std::vector<std::array<double, 2>> v;
  for (int i = 0; i < 16; ++i) {
    const double t = 2 * pi * (i + 0.3) / 16;
    v.push_back({128 + 80 * std::sin(t), 200 + 40 * std::sin(t) * std::cos(t)});
  }
  nlohmann::json eight = nlohmann::json::array();
  for (int i = 0; i < 16; ++i) {
    const auto &a = v[(i + 15) % 16], &b = v[i], &c = v[(i + 1) % 16], &d = v[(i + 2) % 16];
    eight.push_back({b[0], b[1]});
    eight.push_back({b[0] + (c[0] - a[0]) / 6, b[1] + (c[1] - a[1]) / 6});
    eight.push_back({c[0] - (d[0] - b[0]) / 6, c[1] - (d[1] - b[1]) / 6});
  }
  return {{"width", 256}, {"height", 256}, {"samples", 4}, {"fill_rule", "evenodd"},
          {"paths",
           {{{"points", circle}, {"rgba", {0.9, 0.2, 0.2, 1.0}}},
            {{"points", star}, {"rgba", {0.1, 0.3, 0.9, 0.7}}},
            {{"points", eight}, {"rgba", {0.1, 0.6, 0.2, 0.8}}}}}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    fmt::print(stderr, "usage: paths_render [scene.json] out.png\n");
    return 2;
  }
  nlohmann::json j;
  if (argc == 3) {
    std::ifstream in(argv[1]);
    j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) {
      fmt::print(stderr, "{}: not valid JSON\n", argv[1]);
      return 1;
    }
  } else {
    j = DemoScene();
  }
  const std::string out = argv[argc - 1];
  RasterOptions opt;
  opt.width = j.value("width", 256);
  opt.height = j.value("height", 256);
  opt.samples = j.value("samples", 4);
  opt.fill_rule = j.value("fill_rule", std::string("nonzero")) == "evenodd" ? FillRule::kEvenOdd
                                                                             : FillRule::kNonZero;
  if (opt.width < 1 || opt.height < 1 || opt.width > 8192 || opt.height > 8192 || opt.samples < 1 ||
      opt.samples > 16) {
    fmt::print(stderr, "width/height must be in [1, 8192] and samples in [1, 16]\n");
    return 1;
  }
  Scene scene;
  scene.offsets = {0};
  std::vector<std::array<double, 4>> rgba;
  for (const auto& p : j.value("paths", nlohmann::json::array())) {
    for (const auto& xy : p.at("points")) scene.points.push_back({xy.at(0).get<double>(), xy.at(1).get<double>()});
    scene.offsets.push_back(static_cast<int64_t>(scene.points.size()));
    const auto c = p.value("rgba", std::vector<double>{0, 0, 0, 1});
    rgba.push_back({c.at(0), c.at(1), c.at(2), c.at(3)});
  }
  if (auto st = ValidateScene(scene); !st.ok()) {
    fmt::print(stderr, "{}\n", std::string(st.message()));
    return 1;
  }
  const std::vector<float> img = RasterizeScene(scene, rgba, opt, false);
  for (int64_t p = 0; p < scene.num_paths(); ++p) {
    const Regularity r = PathRegularity(scene.path(p), scene.path_size(p), {});
    fmt::print("path {}: crossings={} contacts={} xing={:.4f} laplacian={:.3f} area={:.2f} perimeter={:.2f} "
               "turning={} max_g1_defect={:.3f} rad\n",
               p, r.self_intersections, r.degenerate_contacts, r.xing_loss, r.laplacian, r.signed_area, r.perimeter,
               r.turning_number, r.max_g1_defect);
  }
  // Premultiplied RGBA floats → Cairo ARGB32 (premultiplied, native-endian 0xAARRGGBB) on white.
  cairo_surface_t* surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, opt.width, opt.height);
  unsigned char* data = cairo_image_surface_get_data(surf);
  const int stride = cairo_image_surface_get_stride(surf);
  auto to8 = [](float v) { return static_cast<uint32_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255)); };
  for (int r = 0; r < opt.height; ++r) {
    auto* row = reinterpret_cast<uint32_t*>(data + r * stride);
    for (int c = 0; c < opt.width; ++c) {
      const float* px = &img[(static_cast<size_t>(r) * opt.width + c) * 4];
      const float bg = 1.0f - px[3];  // composite over opaque white
      row[c] = (0xFFu << 24) | (to8(px[0] + bg) << 16) | (to8(px[1] + bg) << 8) | to8(px[2] + bg);
    }
  }
  cairo_surface_mark_dirty(surf);
  const cairo_status_t st = cairo_surface_write_to_png(surf, out.c_str());
  cairo_surface_destroy(surf);
  if (st != CAIRO_STATUS_SUCCESS) {
    fmt::print(stderr, "writing {}: {}\n", out, cairo_status_to_string(st));
    return 1;
  }
  fmt::print("wrote {} ({}x{})\n", out, opt.width, opt.height);
  return 0;
}
