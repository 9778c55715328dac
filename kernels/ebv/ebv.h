// Equiangular Basis Vectors (Shen, Sun, Wei, "Equiangular Basis Vectors", CVPR 2023):
// N unit vectors in R^d that are as orthogonal as possible, used as fixed class vectors;
// an input is classified by its nearest EBV (largest cosine).
//
// Generation (the official Generate_EBV.py, run in float64 here): E starts as seeded
// Gaussian rows; each step renormalizes the rows, computes C = E·Eᵀ by row blocks
// (diagonal zeroed), the hinge loss Σ_{i≠j} relu(|c_ij| − τ) and its gradient
// G = 2·S·E with S = sign(C)·[|C| > τ] (the normalized E is the parameter, as in the
// official code), stops when max|c_ij| ≤ τ + 1e-4, otherwise E ← E − lr·G.
// When N ≤ d an exactly orthonormal set exists: kQrIfNLeD returns the Q factor of a
// Gaussian d × N matrix (Householder QR) instead, with max|cos| ~ 1e-16.
// Quality limits: for N > d, max|cos| ≥ Welch bound √((N − d)/(d(N − 1))); for
// N > d(d + 1)/2 also the Levenshtein bound √((3N − d² − 2d)/((d + 2)(N − d))). Below
// ~1.2–1.6× Welch the official SGD does not converge; that is reported, not hidden.
//
// Data layout: E is N × d row-major double; features B × d. GEMMs by OpenBLAS, which
// splits only the M/N dimensions across its threads, so results do not depend on the
// thread count. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chamferdb::ebv {

enum class Optimizer { kOfficialSgd, kQrIfNLeD };

struct GenerateParams {
  size_t n = 1000, d = 1000;
  double tau = 0.002;
  Optimizer optimizer = Optimizer::kQrIfNLeD;
  double lr = 1e-3;
  int64_t max_steps = 100000;
  size_t block_rows = 130;
  uint64_t seed = 42;
};

struct CosStats {
  double max_abs = 0.0, mean_abs = 0.0, min_abs = 0.0;  // over i ≠ j (0 when N < 2)
};

struct GenerateResult {
  std::vector<double> e;  // N × d, unit rows
  CosStats stats;
  int64_t steps = 0;      // SGD updates taken
  bool converged = false; // max|cos| ≤ τ + 1e-4
  bool used_qr = false;
  double welch_bound = 0.0;  // 0 when N ≤ d
  double lower_bound = 0.0;  // max(Welch, Levenshtein when it applies)
  double final_loss = 0.0;
};

// REQUIRES n ≥ 1, d ≥ 1, block_rows ≥ 1, tau ≥ 0, lr > 0.
GenerateResult Generate(const GenerateParams& p);

double WelchBound(size_t n, size_t d);
double LowerBound(size_t n, size_t d);  // the larger of Welch and (when it applies) Levenshtein

// Brute-force O(N²d) statistics of the off-diagonal |cos| of the rows of e (normalized here).
CosStats BruteForceCosStats(const double* e, size_t n, size_t d);

// One official step's loss and gradient by plain triple loops (the test reference).
// e must have unit rows. grad: N × d.
double NaiveLossAndGradient(const double* e, size_t n, size_t d, double tau, double* grad);
// The same through the blocked GEMM path used by Generate.
double BlockedLossAndGradient(const double* e, size_t n, size_t d, double tau, size_t block_rows,
                              double* grad, CosStats* stats);

struct Classification {
  std::vector<int64_t> ids;     // B × k class ids, best first (ties: smaller id)
  std::vector<double> cosines;  // B × k
};

// Nearest EBVs: cos(f̂_b, ê_c) for every class, top-k. Zero feature rows score 0 everywhere.
// REQUIRES 1 ≤ k ≤ N. naive: plain loops instead of the GEMM.
Classification Classify(const double* features, size_t b, const double* e, size_t n, size_t d,
                        size_t k, bool naive = false);

}  // namespace chamferdb::ebv
