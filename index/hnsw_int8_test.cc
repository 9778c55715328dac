// int8 HNSW storage (index/hnsw_int8.h): the integer dot product against a 64-bit scalar
// sum, the distance computer against exact double-precision inner products within the
// analytic quantization bound, the storage's exact scan and the HNSW index over it against
// brute force, and removal / compaction / rebuild through the VectorIndex interface.
#include "index/hnsw_int8.h"

#include <faiss/IndexHNSW.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "index/index.h"

namespace chamferdb {
namespace {

std::vector<float> Clustered(Rng& rng, size_t n, size_t dim, size_t clusters) {
  std::vector<float> centers(clusters * dim);
  for (float& c : centers) c = static_cast<float>(rng.Normal());
  std::vector<float> x(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng.UniformInt(clusters);
    for (size_t j = 0; j < dim; ++j) x[i * dim + j] = centers[c * dim + j] + 0.5f * static_cast<float>(rng.Normal());
  }
  return x;
}

// Queries near the data: a random row plus noise (queries from fresh cluster centres would
// sit between the clusters, where graph search is at its weakest for any storage).
std::vector<float> NearRows(Rng& rng, const std::vector<float>& x, size_t dim, size_t nq) {
  std::vector<float> q(nq * dim);
  const size_t n = x.size() / dim;
  for (size_t i = 0; i < nq; ++i) {
    const size_t r = rng.UniformInt(n);
    for (size_t j = 0; j < dim; ++j) q[i * dim + j] = x[r * dim + j] + 0.5f * static_cast<float>(rng.Normal());
  }
  return q;
}

double ExactDot(const float* a, const float* b, size_t dim) {
  double s = 0;
  for (size_t j = 0; j < dim; ++j) s += static_cast<double>(a[j]) * b[j];
  return s;
}

// Brute-force top k by exact (double) inner product over the rows not in `skip`.
std::vector<int64_t> TopK(const std::vector<float>& x, size_t dim, const float* q, size_t k,
                          const std::set<int64_t>& skip = {}) {
  std::vector<std::pair<double, int64_t>> s;
  for (size_t i = 0; i < x.size() / dim; ++i) {
    if (!skip.count(static_cast<int64_t>(i))) s.push_back({-ExactDot(q, x.data() + i * dim, dim), i});
  }
  std::sort(s.begin(), s.end());
  std::vector<int64_t> out;
  for (size_t i = 0; i < std::min(k, s.size()); ++i) out.push_back(s[i].second);
  return out;
}

TEST(DotCodesI8, MatchesA64BitScalarSumForEveryLengthAndExtremeCodes) {
  Rng rng(3);
  for (size_t dim : {1, 7, 31, 32, 63, 64, 65, 127, 128, 129, 191, 2048, 2051}) {
    std::vector<int8_t> a(dim), b(dim);
    for (size_t j = 0; j < dim; ++j) {
      a[j] = static_cast<int8_t>(static_cast<int>(rng.UniformInt(256)) - 128);
      b[j] = static_cast<int8_t>(static_cast<int>(rng.UniformInt(256)) - 128);
    }
    int64_t ref = 0;
    for (size_t j = 0; j < dim; ++j) ref += int64_t{a[j]} * b[j];
    EXPECT_EQ(DotCodesI8(a.data(), b.data(), dim), ref) << "dim " << dim;
    // Extremes: -128·-128, 127·-128 and -128·127 everywhere.
    for (auto [x, y] : {std::pair<int, int>{-128, -128}, {127, -128}, {-128, 127}, {127, 127}}) {
      std::vector<int8_t> u(dim, static_cast<int8_t>(x)), v(dim, static_cast<int8_t>(y));
      EXPECT_EQ(DotCodesI8(u.data(), v.data(), dim), static_cast<int64_t>(x) * y * static_cast<int64_t>(dim))
          << "dim " << dim << " codes " << x << "," << y;
    }
  }
}

TEST(Int8IpStorage, DistancesStayWithinTheQuantizationBoundOfExactDotProducts) {
  Rng rng(7);
  const size_t dim = 200, n = 300;
  auto x = Clustered(rng, n, dim, 8);
  auto queries = Clustered(rng, 20, dim, 8);
  Int8IpStorage storage(dim);
  storage.add(static_cast<faiss::Index::idx_t>(n), x.data());
  ASSERT_EQ(storage.ntotal, static_cast<faiss::Index::idx_t>(n));
  std::unique_ptr<faiss::DistanceComputer> dis(storage.get_distance_computer());
  auto absmax = [&](const float* v) {
    double m = 0;
    for (size_t j = 0; j < dim; ++j) m = std::max(m, std::fabs(static_cast<double>(v[j])));
    return m;
  };
  auto l1 = [&](const float* v) {
    double s = 0;
    for (size_t j = 0; j < dim; ++j) s += std::fabs(static_cast<double>(v[j]));
    return s;
  };
  // |<q^,x^> - <q,x>| <= (c_x·|q|_1 + c_q·|x^|_1) / 254 (+ float rounding of the result);
  // |x^|_1 <= |x|_1 + dim·c_x/254.
  auto bound = [&](const float* q, const float* v) {
    const double cq = absmax(q), cx = absmax(v);
    return (cx * l1(q) + cq * (l1(v) + dim * cx / 254)) / 254 + 1e-5 * (1 + l1(q) * cx);
  };
  double worst_share = 0;
  for (size_t qi = 0; qi < 20; ++qi) {
    const float* q = queries.data() + qi * dim;
    dis->set_query(q);
    for (size_t i = 0; i < n; ++i) {
      const double err = std::fabs((*dis)(static_cast<faiss::Index::idx_t>(i)) - ExactDot(q, x.data() + i * dim, dim));
      const double b = bound(q, x.data() + i * dim);
      ASSERT_LE(err, b) << "query " << qi << " row " << i;
      worst_share = std::max(worst_share, err / b);
    }
  }
  // The bound is not vacuous: typical errors are far below it, but not zero.
  EXPECT_GT(worst_share, 0.0);
  for (size_t i = 0; i < n; i += 13) {
    for (size_t j = 0; j < n; j += 17) {
      const float* a = x.data() + i * dim;
      const float* b = x.data() + j * dim;
      const double err = std::fabs(dis->symmetric_dis(i, j) - ExactDot(a, b, dim));
      ASSERT_LE(err, bound(a, b)) << i << "," << j;
    }
  }
  // Reconstruction is the dequantized row: within c/254 per coordinate.
  std::vector<float> r(dim);
  storage.reconstruct(5, r.data());
  const double c = absmax(x.data() + 5 * dim);
  for (size_t j = 0; j < dim; ++j) EXPECT_LE(std::fabs(r[j] - x[5 * dim + j]), c / 254 + 1e-6);
}

TEST(Int8IpStorage, ExactScanAndHnswOverItFindTheBruteForceNeighbours) {
  Rng rng(11);
  const size_t dim = 128, n = 3000, nq = 40, k = 10;
  // Unit rows: inner product = cosine, where HNSW's graph works well (on raw clustered
  // vectors MIPS favours large norms and HNSW's recall drops for float and int8 alike).
  auto x = Clustered(rng, n, dim, 30);
  auto queries = NearRows(rng, x, dim, nq);
  for (auto* v : {&x, &queries}) {
    for (size_t i = 0; i < v->size() / dim; ++i) {
      float* r = v->data() + i * dim;
      const double norm = std::sqrt(ExactDot(r, r, dim));
      for (size_t j = 0; j < dim; ++j) r[j] = static_cast<float>(r[j] / norm);
    }
  }
  auto* storage = new Int8IpStorage(dim);
  faiss::IndexHNSW hnsw(storage, 16);
  hnsw.own_fields = true;
  hnsw.hnsw.efConstruction = 100;
  hnsw.add(static_cast<faiss::Index::idx_t>(n), x.data());
  std::vector<float> d_scan(nq * k), d_hnsw(nq * k);
  std::vector<faiss::Index::idx_t> l_scan(nq * k), l_hnsw(nq * k);
  storage->search(nq, queries.data(), k, d_scan.data(), l_scan.data());
  faiss::SearchParametersHNSW p;
  p.efSearch = 128;
  hnsw.search(nq, queries.data(), k, d_hnsw.data(), l_hnsw.data(), &p);
  // The same graph construction over float storage: HNSW's own recall on this data.
  faiss::IndexHNSWFlat flat(static_cast<int>(dim), 16, faiss::METRIC_INNER_PRODUCT);
  flat.hnsw.efConstruction = 100;
  flat.add(static_cast<faiss::Index::idx_t>(n), x.data());
  std::vector<float> d_flat(nq * k);
  std::vector<faiss::Index::idx_t> l_flat(nq * k);
  flat.search(nq, queries.data(), k, d_flat.data(), l_flat.data(), &p);
  size_t hit_scan = 0, hit_hnsw = 0, hit_flat = 0;
  for (size_t q = 0; q < nq; ++q) {
    const auto truth = TopK(x, dim, queries.data() + q * dim, k);
    for (size_t j = 0; j < k; ++j) {
      hit_scan += std::count(truth.begin(), truth.end(), l_scan[q * k + j]);
      hit_hnsw += std::count(truth.begin(), truth.end(), l_hnsw[q * k + j]);
      hit_flat += std::count(truth.begin(), truth.end(), l_flat[q * k + j]);
      if (j > 0) {
        EXPECT_GE(d_scan[q * k + j - 1], d_scan[q * k + j]);
      }
    }
  }
  EXPECT_GE(hit_scan / double(nq * k), 0.95);  // int8 ranks like the exact inner product
  std::printf("recall@10: int8 scan %.3f, HNSW int8 %.3f, HNSW float %.3f\n", hit_scan / double(nq * k),
              hit_hnsw / double(nq * k), hit_flat / double(nq * k));
  EXPECT_GE(hit_hnsw / double(nq * k), 0.9);
  // The graph loses little against its own exact scan, and int8 little against float.
  EXPECT_GE(hit_hnsw + 3 * nq * k / 100, hit_scan);
  EXPECT_GE(hit_hnsw + 5 * nq * k / 100, hit_flat);
  // The HNSW's scores are the storage's scores of the same rows.
  std::unique_ptr<faiss::DistanceComputer> dis(storage->get_distance_computer());
  for (size_t q = 0; q < nq; ++q) {
    dis->set_query(queries.data() + q * dim);
    for (size_t j = 0; j < k; ++j) EXPECT_FLOAT_EQ(d_hnsw[q * k + j], (*dis)(l_hnsw[q * k + j]));
  }
}

// Through the VectorIndex interface (index/index.h): HNSW with int8 and float32 storage
// against brute force, before and after removals and the compaction that rebuilds the
// graph from the stored (for int8: dequantized, re-quantized) vectors.
TEST(HnswStorage, Int8RecallMatchesFloat32AndSurvivesRemovalAndCompaction) {
  Rng rng(23);
  const size_t dim = 256, n = 3000, nq = 40, k = 10;
  auto x = Clustered(rng, n, dim, 30);
  auto queries = NearRows(rng, x, dim, nq);
  std::vector<Label> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<Label>(i);
  double recall[2] = {0, 0};
  for (HnswStorage storage : {HnswStorage::kFloat32, HnswStorage::kInt8}) {
    IndexConfig cfg;
    cfg.kind = IndexKind::kHnsw;
    cfg.hnsw_m = 16;
    cfg.hnsw_ef_construction = 100;
    cfg.hnsw_storage = storage;
    auto index = CreateIndex(cfg, dim);
    ASSERT_OK(index);
    for (size_t begin = 0; begin < n; begin += 500) ASSERT_OK((*index)->Add(x.data() + begin * dim, labels.data() + begin, 500));
    std::set<int64_t> removed;
    auto measure = [&] {
      std::vector<std::vector<Neighbor>> out;
      EXPECT_OK((*index)->Search(queries.data(), nq, {.k = k, .ef_search = 128}, &out));
      size_t hit = 0;
      for (size_t q = 0; q < nq; ++q) {
        const auto truth = TopK(x, dim, queries.data() + q * dim, k, removed);
        for (const Neighbor& nb : out[q]) {
          EXPECT_EQ(removed.count(nb.label), 0u);
          hit += std::count(truth.begin(), truth.end(), nb.label);
        }
      }
      return hit / double(nq * k);
    };
    // Raw clustered vectors (MIPS favours large norms): HNSW's own recall here is ~0.85 with
    // either storage; the int8 one is compared with the float one below.
    const double before = measure();
    recall[storage == HnswStorage::kInt8] = before;
    EXPECT_GE(before, 0.75);
    std::vector<Label> gone;
    for (size_t i = 0; i < n; ++i)
      if (i % 3 != 0) gone.push_back(labels[i]);
    ASSERT_OK((*index)->Remove(gone.data(), gone.size()));
    removed.insert(gone.begin(), gone.end());
    EXPECT_GE(measure(), 0.75);
    std::vector<std::vector<Neighbor>> pre;
    ASSERT_OK((*index)->Search(queries.data(), 1, {.k = 5, .ef_search = 256}, &pre));
    ASSERT_OK((*index)->MaybeCompact());
    EXPECT_EQ((*index)->info().tombstones, 0u);
    EXPECT_EQ((*index)->size(), n - gone.size());
    EXPECT_GE(measure(), 0.75);
    // The rebuilt graph scores the same rows identically (re-quantizing a dequantized row
    // gives back its codes): the first query's best hit keeps its score.
    std::vector<std::vector<Neighbor>> post;
    ASSERT_OK((*index)->Search(queries.data(), 1, {.k = 5, .ef_search = 256}, &post));
    ASSERT_FALSE(pre[0].empty());
    ASSERT_FALSE(post[0].empty());
    EXPECT_EQ(pre[0][0].label, post[0][0].label);
    EXPECT_NEAR(pre[0][0].score, post[0][0].score, 1e-4 * std::fabs(pre[0][0].score));
  }
  EXPECT_GE(recall[1], recall[0] - 0.03) << "int8 storage loses recall against float32";
}

TEST(HnswStorage, RebuildFromTheSameVectorsGivesTheSameResults) {
  // Start-up rebuilds the index by re-adding every stored vector (server/collection.cc):
  // the same vectors in the same order give the same graph and answers.
  Rng rng(29);
  const size_t dim = 64, n = 1500;
  auto x = Clustered(rng, n, dim, 10);
  std::vector<Label> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<Label>(7 * i);
  IndexConfig cfg;
  cfg.kind = IndexKind::kHnsw;
  std::vector<std::vector<Neighbor>> out[2];
  for (int round = 0; round < 2; ++round) {
    auto index = CreateIndex(cfg, dim);
    ASSERT_OK(index);
    ASSERT_OK((*index)->Add(x.data(), labels.data(), n));
    ASSERT_OK((*index)->Search(x.data(), 20, {.k = 10}, &out[round]));
  }
  for (size_t q = 0; q < 20; ++q) {
    ASSERT_EQ(out[0][q].size(), out[1][q].size());
    for (size_t j = 0; j < out[0][q].size(); ++j) {
      EXPECT_EQ(out[0][q][j].label, out[1][q][j].label);
      EXPECT_EQ(out[0][q][j].score, out[1][q][j].score);
    }
  }
}

TEST(HnswStorage, DefaultsToInt8ForHnswAndIsRejectedForOtherKinds) {
  IndexConfig h;
  h.kind = IndexKind::kHnsw;
  ASSERT_OK(h.Normalize(32));
  EXPECT_EQ(h.hnsw_storage, HnswStorage::kInt8);
  for (IndexKind kind : {IndexKind::kFlat, IndexKind::kIvfPq}) {
    IndexConfig c;
    c.kind = kind;
    c.hnsw_storage = HnswStorage::kFloat32;
    EXPECT_THAT(CreateIndex(c, 32), testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                                      ::testing::HasSubstr("index.hnsw_storage")));
  }
  // Memory accounting: int8 storage takes about a quarter of float32's vector bytes.
  Rng rng(2);
  auto x = Clustered(rng, 200, 512, 4);
  std::vector<Label> labels(200);
  for (int i = 0; i < 200; ++i) labels[i] = i;
  uint64_t bytes[2];
  for (HnswStorage s : {HnswStorage::kFloat32, HnswStorage::kInt8}) {
    IndexConfig c;
    c.kind = IndexKind::kHnsw;
    c.hnsw_storage = s;
    auto index = CreateIndex(c, 512);
    ASSERT_OK(index);
    ASSERT_OK((*index)->Add(x.data(), labels.data(), 200));
    bytes[s == HnswStorage::kInt8] = (*index)->info().memory_bytes;
  }
  EXPECT_LT(bytes[1], bytes[0] / 2);
}

}  // namespace
}  // namespace chamferdb
