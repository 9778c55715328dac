#include "kernels/int8/maxsim.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/int8/quantize.h"

namespace chamferdb::int8 {
namespace {

constexpr size_t kDocChunk = 64;  // documents per OpenMP work item (fixed partition)

}  // namespace

std::vector<int64_t> TopKIndices(const std::vector<float>& values, size_t k) {
  std::vector<int64_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), int64_t{0});
  k = std::min(k, idx.size());
  auto better = [&](int64_t a, int64_t b) {
    if (values[a] != values[b]) return values[a] > values[b];
    return a < b;
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
  idx.resize(k);
  return idx;
}

MaxSimResult Int8MaxSim(const MaxSimQuery& query, const TokenCorpusView& corpus,
                        const MaxSimOptions& options) {
  const size_t nq = query.n;
  const size_t dim = corpus.dim;
  const bool symmetric = query.rows == nullptr || query.quantize;

  // Query codes/scales (symmetric) and ‖q̃_i‖₁.
  std::vector<int8_t> qcodes;
  std::vector<float> qscales;
  std::vector<double> ql1(nq, 0.0);
  if (query.rows != nullptr) {
    for (size_t i = 0; i < nq; ++i) {
      for (size_t l = 0; l < dim; ++l) ql1[i] += std::fabs(static_cast<double>(query.rows[i * dim + l]));
    }
    if (symmetric) {
      qcodes.resize(nq * dim);
      qscales.resize(nq);
      QuantizeRows(query.rows, nq, dim, qcodes.data(), qscales.data());
    }
  } else {
    qcodes.assign(query.codes, query.codes + nq * dim);
    qscales.assign(query.scales, query.scales + nq);
    for (size_t i = 0; i < nq; ++i) {
      ql1[i] = static_cast<double>(L1NormCodes(qcodes.data() + i * dim, dim)) * qscales[i] / 127.0;
    }
  }

  const size_t nd = corpus.num_docs;
  MaxSimResult r;
  r.all_scores.assign(nd, 0.0f);
  r.all_bounds.assign(nd, 0.0f);
  const long long chunks = static_cast<long long>((nd + kDocChunk - 1) / kDocChunk);
  const double eps_f32 = std::ldexp(1.0, -23);

#pragma omp parallel for num_threads(std::max(1, options.threads)) schedule(static)
  for (long long ch = 0; ch < chunks; ++ch) {
    const size_t d0 = static_cast<size_t>(ch) * kDocChunk;
    const size_t d1 = std::min(nd, d0 + kDocChunk);
    const size_t t0 = static_cast<size_t>(corpus.doc_offsets[d0]);
    const size_t t1 = static_cast<size_t>(corpus.doc_offsets[d1]);
    const size_t nt = t1 - t0;
    const int8_t* cd = corpus.codes + t0 * dim;
    // Raw token dot products for this chunk, nq × nt: exact int32 (symmetric) or double.
    std::vector<int32_t> c;
    std::vector<double> dots;
    if (symmetric) {
      c.resize(nq * nt);
      if (options.naive) {
        Int8GemmNTNaive(qcodes.data(), cd, c.data(), nq, nt, dim);
      } else {
        Int8GemmNT(qcodes.data(), cd, c.data(), nq, nt, dim, options.path, 1);
      }
    } else {
      dots.resize(nq * nt);
      for (size_t i = 0; i < nq; ++i) {
        for (size_t j = 0; j < nt; ++j) {
          double s = 0.0;
          for (size_t l = 0; l < dim; ++l) {
            s += static_cast<double>(query.rows[i * dim + l]) * cd[j * dim + l];
          }
          dots[i * nt + j] = s;
        }
      }
    }
    // Per token: sd_j and ‖d̂_j‖₁.
    std::vector<double> sd(nt), dl1(nt);
    for (size_t j = 0; j < nt; ++j) {
      sd[j] = corpus.scales[t0 + j];
      dl1[j] = static_cast<double>(L1NormCodes(cd + j * dim, dim)) * sd[j] / 127.0;
    }
    for (size_t doc = d0; doc < d1; ++doc) {
      const size_t a = static_cast<size_t>(corpus.doc_offsets[doc]) - t0;
      const size_t b = static_cast<size_t>(corpus.doc_offsets[doc + 1]) - t0;
      if (a == b) continue;
      double total = 0.0, bound = 0.0;
      for (size_t i = 0; i < nq; ++i) {
        const double sq = symmetric ? static_cast<double>(qscales[i]) : 0.0;
        // ε_ij = sd_j·(‖q̃_i‖₁/254 + dim·sq_i/254²) + ‖d̂_j‖₁·sq_i/254.
        const double e_sd = ql1[i] / 254.0 + static_cast<double>(dim) * sq / (254.0 * 254.0);
        const double e_dl = sq / 254.0;
        double best = -std::numeric_limits<double>::infinity(), worst_eps = 0.0;
        if (symmetric) {
          // s_ij = sq_i·sd_j·C_ij/16129: take the max of sd_j·C_ij, scale once.
          const int32_t* ci = c.data() + i * nt;
          for (size_t j = a; j < b; ++j) {
            best = std::max(best, sd[j] * static_cast<double>(ci[j]));
            worst_eps = std::max(worst_eps, sd[j] * e_sd + dl1[j] * e_dl);
          }
          best = best * sq / 16129.0;
        } else {
          const double* di = dots.data() + i * nt;
          for (size_t j = a; j < b; ++j) {
            best = std::max(best, di[j] * sd[j]);
            worst_eps = std::max(worst_eps, sd[j] * e_sd);
          }
          best /= 127.0;
        }
        total += best;
        bound += worst_eps;
      }
      const float score = static_cast<float>(total);
      // Cover the float32 rounding of the score and of the bound itself (and the
      // double-precision sums, far smaller).
      const double slack = 2.0 * eps_f32 * (std::fabs(total) + bound) + 1e-30;
      r.all_scores[doc] = score;
      r.all_bounds[doc] = static_cast<float>((bound + slack) * (1.0 + 2.0 * eps_f32));
    }
  }

  r.doc_ids = TopKIndices(r.all_scores, options.k);
  for (int64_t id : r.doc_ids) {
    r.scores.push_back(r.all_scores[id]);
    r.bounds.push_back(r.all_bounds[id]);
  }
  return r;
}

}  // namespace chamferdb::int8
