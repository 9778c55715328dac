// Min-of-N timing of one SpGEMM case (C = A·A on the benchmark's matrices), for
// interleaved A/B runs on a shared, noisy machine where the minimum is steadier than
// Google Benchmark's median:
//   spgemm_timing MATRIX REPS METHOD [THREADS]
// MATRIX: er (n = 2^16, 16 per row), rmat (scale 16, edge factor 16), lap (5-point
// Laplacian 512²), band (n = 2^18, 8 random columns per row in [i − 45, i + 30]); METHOD: row_hash, smash_atomic, dense_spa, map (the reference), eigen
// (Eigen's conservative product). Prints the minimum process CPU time and the minimum
// wall time over REPS runs, and nnz(C).
#include <Eigen/SparseCore>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/spgemm/generators.h"
#include "kernels/spgemm/spgemm.h"

namespace {

double CpuMs() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace chamferdb::spgemm;
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s er|rmat|lap|band REPS row_hash|smash_atomic|dense_spa|map|eigen [THREADS]\n", argv[0]);
    return 2;
  }
  const std::string matrix = argv[1], method = argv[3];
  const int reps = std::max(1, std::atoi(argv[2]));
  Options opt;
  opt.threads = argc > 4 ? std::max(1, std::atoi(argv[4])) : 1;
  const bool eigen = method == "eigen";
  if (method == "row_hash") {
    opt.method = Method::kRowHash;
  } else if (method == "smash_atomic") {
    opt.method = Method::kSmashAtomic;
  } else if (method == "dense_spa") {
    opt.method = Method::kDenseSpa;
  } else if (method == "map") {
    opt.method = Method::kReference;
  } else if (!eigen) {
    std::fprintf(stderr, "unknown method %s\n", method.c_str());
    return 2;
  }
  CsrMatrix a;
  if (matrix == "er") {
    a = ErdosRenyi(1 << 16, 16, 1);
  } else if (matrix == "rmat") {
    a = Rmat(16, 16, 2);
  } else if (matrix == "lap") {
    a = Laplacian2d(512);
  } else if (matrix == "band") {  // unsymmetric band: 8 random columns in [i − 45, i + 30]
    chamferdb::Rng rng(3);
    const int64_t n = int64_t{1} << 18;
    std::vector<std::vector<int32_t>> rows(n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t lo = std::max<int64_t>(0, i - 45), hi = std::min<int64_t>(n - 1, i + 30);
      for (int t = 0; t < 8; ++t) rows[i].push_back(static_cast<int32_t>(lo + rng.UniformInt(hi - lo + 1)));
    }
    a = FromRows(rows, n, rng);
  } else {
    std::fprintf(stderr, "unknown matrix %s\n", matrix.c_str());
    return 2;
  }
  using Sp = Eigen::SparseMatrix<double, Eigen::RowMajor, int>;
  std::vector<int> outer(a.row_ptr.begin(), a.row_ptr.end());
  Eigen::Map<const Sp> ea(a.rows, a.cols, static_cast<Eigen::Index>(a.col.size()), outer.data(), a.col.data(),
                          a.val.data());
  double best_cpu = 1e300, best_wall = 1e300;
  size_t nnz = 0;
  for (int r = 0; r < reps; ++r) {
    const double c0 = CpuMs();
    const auto w0 = std::chrono::steady_clock::now();
    if (eigen) {
      const Sp e = ea * ea;
      nnz = static_cast<size_t>(e.nonZeros());
    } else {
      const CsrMatrix c = SpGemm(a.view(), a.view(), opt, nullptr);
      nnz = c.col.size();
    }
    const auto w1 = std::chrono::steady_clock::now();
    best_cpu = std::min(best_cpu, CpuMs() - c0);
    best_wall = std::min(best_wall, std::chrono::duration<double, std::milli>(w1 - w0).count());
  }
  std::printf("%s %s threads=%d reps=%d min_cpu_ms %.1f min_wall_ms %.1f nnz %zu\n", matrix.c_str(), method.c_str(),
              opt.threads, reps, best_cpu, best_wall, nnz);
  return 0;
}
