// int8 HNSW storage (index/hnsw_int8.h): the integer dot product against a 64-bit scalar
// sum, the distance computer against exact double-precision inner products within the
// analytic quantization bound, the storage's exact scan and the HNSW index over it against
// brute force, and removal / compaction / rebuild through the VectorIndex interface; the
// graph builder (Int8Hnsw): its similarities against a scalar reference, its neighbour
// heuristic against the heuristic's definition, and its graphs' structure and recall.
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
#include "kernels/int8/quantize.h"

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
  // Search distances keep the float query: |<q,x^> - <q,x>| <= c_x·|q|_1 / 254.
  std::unique_ptr<faiss::DistanceComputer> search(storage.NewInnerProductComputer());
  for (size_t qi = 0; qi < 20; ++qi) {
    const float* q = queries.data() + qi * dim;
    search->set_query(q);
    for (size_t i = 0; i < n; ++i) {
      const float* v = x.data() + i * dim;
      const double err = std::fabs((*search)(static_cast<faiss::Index::idx_t>(i)) - ExactDot(q, v, dim));
      ASSERT_LE(err, absmax(v) * l1(q) / 254 + 1e-5 * (1 + l1(q) * absmax(v))) << "query " << qi << " row " << i;
    }
  }
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

// Scales each dim-long row of *v to unit L2 norm (norm in double).
void NormalizeRows(std::vector<float>* v, size_t dim) {
  for (size_t i = 0; i < v->size() / dim; ++i) {
    float* r = v->data() + i * dim;
    const double norm = std::sqrt(ExactDot(r, r, dim));
    for (size_t j = 0; j < dim; ++j) r[j] = static_cast<float>(r[j] / norm);
  }
}

TEST(Int8IpStorage, ExactScanAndHnswOverItFindTheBruteForceNeighbours) {
  Rng rng(11);
  const size_t dim = 128, n = 3000, nq = 40, k = 10;
  // Unit rows: inner product = cosine, where HNSW's graph works well (on raw clustered
  // vectors MIPS favours large norms and HNSW's recall drops for float and int8 alike).
  auto x = Clustered(rng, n, dim, 30);
  auto queries = NearRows(rng, x, dim, nq);
  NormalizeRows(&x, dim);
  NormalizeRows(&queries, dim);
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

TEST(HnswStorage, RebuildFromTheSameVectorsGivesTheSameScoresAndNeighbours) {
  // Start-up rebuilds the index by re-adding every stored vector (server/collection.cc). A
  // label's score depends on its vector only (not on the graph, which a parallel build may
  // wire differently), and the rebuilt graph finds (nearly) the same neighbours.
  Rng rng(29);
  const size_t dim = 64, n = 1500, nq = 20;
  auto x = Clustered(rng, n, dim, 10);
  auto queries = NearRows(rng, x, dim, nq);
  std::vector<Label> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<Label>(7 * i);
  IndexConfig cfg;
  cfg.kind = IndexKind::kHnsw;
  std::vector<std::vector<Neighbor>> out[2];
  for (int round = 0; round < 2; ++round) {
    auto index = CreateIndex(cfg, dim);
    ASSERT_OK(index);
    ASSERT_OK((*index)->Add(x.data(), labels.data(), n));
    ASSERT_OK((*index)->Search(queries.data(), nq, {.k = 10}, &out[round]));
  }
  size_t same = 0;
  for (size_t q = 0; q < nq; ++q) {
    for (const Neighbor& a : out[0][q]) {
      for (const Neighbor& b : out[1][q]) {
        if (a.label != b.label) continue;
        ++same;
        EXPECT_EQ(a.score, b.score) << "label " << a.label;
      }
    }
  }
  EXPECT_GE(same, nq * 10 * 95 / 100);
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

TEST(Int8IpStorage, GraphDistancesUseThePrefixAndSearchDistancesEveryCoordinate) {
  Rng rng(13);
  const size_t dim = 96, n = 50, prefix = 20;
  auto x = Clustered(rng, n, dim, 3);
  auto queries = Clustered(rng, 5, dim, 3);
  Int8IpStorage storage(dim, prefix);
  EXPECT_EQ(storage.graph_dims(), prefix);
  storage.add(static_cast<faiss::Index::idx_t>(n), x.data());
  // Reference: codes from the quantizer (kernels/int8, tested there), scalar sums.
  std::vector<int8_t> codes(n * dim), qc(dim);
  std::vector<float> scales(n);
  for (size_t i = 0; i < n; ++i) scales[i] = int8::QuantizeRow(x.data() + i * dim, dim, codes.data() + i * dim);
  auto dot = [&](const int8_t* a, const int8_t* b, size_t len) {
    int64_t s = 0;
    for (size_t j = 0; j < len; ++j) s += int64_t{a[j]} * b[j];
    return static_cast<double>(s);
  };
  std::unique_ptr<faiss::DistanceComputer> graph(storage.get_distance_computer());
  std::unique_ptr<faiss::DistanceComputer> full(storage.NewInnerProductComputer());
  for (size_t qi = 0; qi < 5; ++qi) {
    const float cq = int8::QuantizeRow(queries.data() + qi * dim, dim, qc.data());
    graph->set_query(queries.data() + qi * dim);
    full->set_query(queries.data() + qi * dim);
    for (size_t i = 0; i < n; ++i) {
      const double f = double(cq) * scales[i] / (127.0 * 127.0);
      const double want_graph = dot(qc.data(), codes.data() + i * dim, prefix) * f;
      double want_full = 0;  // float query, dequantized row
      for (size_t j = 0; j < dim; ++j) want_full += double(queries[qi * dim + j]) * codes[i * dim + j] * scales[i] / 127.0;
      EXPECT_NEAR((*graph)(i), want_graph, 1e-5 * (1 + std::fabs(want_graph)));
      EXPECT_NEAR((*full)(i), want_full, 1e-5 * (1 + std::fabs(want_full)));
    }
  }
  const double f01 = double(scales[0]) * scales[1] / (127.0 * 127.0);
  EXPECT_NEAR(graph->symmetric_dis(0, 1), dot(codes.data(), codes.data() + dim, prefix) * f01, 1e-4);
}

// Vectors that are random projections of low-dimensional clustered data (as MUVERA's final
// projection makes FDEs): the index builds its int8 graph on the first HnswGraphDims(2048) =
// 512 coordinates, searches on all 2048, and finds the brute-force neighbours about as well
// as the float32 graph built on every coordinate.
TEST(HnswStorage, GraphOnAPrefixOfProjectedVectorsKeepsRecall) {
  ASSERT_EQ(HnswGraphDims(2048), 512u);
  ASSERT_EQ(HnswGraphDims(1024), 1024u);
  Rng rng(17);
  const size_t low = 48, dim = 2048, n = 1500, nq = 30, k = 10;
  auto base = Clustered(rng, n, low, 20);
  auto qbase = NearRows(rng, base, low, nq);
  std::vector<float> proj(low * dim);
  for (float& p : proj) p = rng.UniformInt(2) ? 1.0f : -1.0f;
  auto project = [&](const std::vector<float>& v) {
    std::vector<float> out(v.size() / low * dim, 0.0f);
    for (size_t i = 0; i < v.size() / low; ++i)
      for (size_t a = 0; a < low; ++a)
        for (size_t j = 0; j < dim; ++j) out[i * dim + j] += v[i * low + a] * proj[a * dim + j];
    return out;
  };
  const auto x = project(base), queries = project(qbase);
  std::vector<Label> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<Label>(i);
  double recall[2];
  for (HnswStorage storage : {HnswStorage::kFloat32, HnswStorage::kInt8}) {
    IndexConfig cfg;
    cfg.kind = IndexKind::kHnsw;
    cfg.hnsw_m = 16;
    cfg.hnsw_ef_construction = 64;
    cfg.hnsw_storage = storage;
    auto index = CreateIndex(cfg, dim);
    ASSERT_OK(index);
    ASSERT_OK((*index)->Add(x.data(), labels.data(), n));
    std::vector<std::vector<Neighbor>> out;
    ASSERT_OK((*index)->Search(queries.data(), nq, {.k = k, .ef_search = 64}, &out));
    size_t hit = 0;
    for (size_t q = 0; q < nq; ++q) {
      const auto truth = TopK(x, dim, queries.data() + q * dim, k);
      for (const Neighbor& nb : out[q]) hit += std::count(truth.begin(), truth.end(), nb.label);
    }
    recall[storage == HnswStorage::kInt8] = hit / double(nq * k);
  }
  EXPECT_GE(recall[1], 0.9) << "float32 graph: " << recall[0];
  EXPECT_GE(recall[1], recall[0] - 0.03) << "float32 graph: " << recall[0];
}

// Reference graph similarity: a 64-bit scalar sum of the prefix codes (independent of the
// SIMD kernels) times the documented scale (c_a/127)·(c_b/127).
float RefGraphSim(const Int8IpStorage& s, int64_t a, int64_t b) {
  const size_t d = static_cast<size_t>(s.d);
  int64_t dot = 0;
  for (size_t j = 0; j < s.graph_dims(); ++j) dot += int64_t{s.codes()[a * d + j]} * s.codes()[b * d + j];
  return static_cast<float>(dot) * ((s.scales()[a] * (1.0f / 127.0f)) * (s.scales()[b] * (1.0f / 127.0f)));
}

// Points reachable from the entry point over level-0 links.
size_t Reachable(const faiss::HNSW& g, size_t n) {
  std::vector<uint8_t> reached(n, 0);
  std::vector<int> todo = {g.entry_point};
  reached[g.entry_point] = 1;
  size_t count = 1;
  while (!todo.empty()) {
    const int c = todo.back();
    todo.pop_back();
    size_t b, e;
    g.neighbor_range(c, 0, &b, &e);
    for (size_t j = b; j < e && g.neighbors[j] >= 0; ++j) {
      if (!reached[g.neighbors[j]]) {
        reached[g.neighbors[j]] = 1;
        ++count;
        todo.push_back(g.neighbors[j]);
      }
    }
  }
  return count;
}

TEST(Int8Hnsw, GraphSimilarityIsTheScaledPrefixDotAndSymmetric) {
  Rng rng(23);
  for (size_t prefix : {1, 20, 64, 100, 300}) {
    const size_t dim = 300, n = 40;
    auto x = Clustered(rng, n, dim, 4);
    Int8IpStorage s(dim, prefix);
    s.add(static_cast<faiss::Index::idx_t>(n), x.data());
    for (size_t i = 0; i < n; ++i) {
      int32_t sum = 0;
      for (size_t j = 0; j < prefix; ++j) sum += s.codes()[i * dim + j];
      ASSERT_EQ(s.graph_sums()[i], sum);
      for (size_t k = 0; k < n; ++k) {
        ASSERT_EQ(GraphSimilarity(s, i, k), RefGraphSim(s, i, k)) << prefix;
        ASSERT_EQ(GraphSimilarity(s, i, k), GraphSimilarity(s, k, i));
      }
    }
  }
}

// The heuristic's defining property, checked pair by pair with the reference similarity:
// a kept candidate has no earlier kept one closer to it than the base is; a dropped one
// (before the list filled up) has one; at most max_keep are kept, in candidate order; and
// with fewer candidates than max_keep everything is kept (FAISS's behaviour).
TEST(Int8Hnsw, SelectNeighborsKeepsExactlyTheHeuristicsChoice) {
  Rng rng(29);
  for (size_t prefix : {7, 64, 130}) {
    const size_t dim = 130, n = 400;
    auto x = Clustered(rng, n, dim, 6);  // clusters: many candidates shadow each other
    Int8IpStorage s(dim, prefix);
    s.add(static_cast<faiss::Index::idx_t>(n), x.data());
    for (int trial = 0; trial < 20; ++trial) {
      const int32_t base = static_cast<int32_t>(rng.UniformInt(n));
      std::vector<std::pair<float, int32_t>> cands;
      for (int32_t i = 0; i < static_cast<int32_t>(n); ++i) {
        if (i != base && rng.UniformInt(3) == 0) cands.push_back({RefGraphSim(s, base, i), i});
      }
      std::sort(cands.begin(), cands.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      const size_t max_keep = trial % 2 == 0 ? 8 : 60;  // of ~130 candidates
      const auto kept = SelectNeighbors(s, cands, max_keep);
      ASSERT_LE(kept.size(), max_keep);
      ASSERT_FALSE(kept.empty());
      size_t next = 0;  // position in kept
      bool full = false;
      for (const auto& c : cands) {
        if (full) break;
        bool shadowed = false;
        for (size_t k = 0; k < next; ++k) shadowed = shadowed || RefGraphSim(s, c.second, kept[k].second) > c.first;
        if (next < kept.size() && kept[next] == c) {
          EXPECT_FALSE(shadowed) << "kept " << c.second;
          full = ++next == max_keep;
        } else {
          EXPECT_TRUE(shadowed) << "dropped " << c.second;
        }
      }
      EXPECT_EQ(next, kept.size()) << "kept ones must be candidates, in candidate order";
      std::vector<std::pair<float, int32_t>> few(cands.begin(), cands.begin() + 5);
      EXPECT_EQ(SelectNeighbors(s, few, 6), few);
    }
  }
}

// Structure of a graph built by Int8Hnsw (one thread and two, one batch and many): every
// list holds valid, distinct rows other than its owner, packed before the -1 padding, and no
// more than the level allows; the entry point sits on the top level; every point is
// reachable from the entry point on level 0; and the search (FAISS's own IndexHNSW::search
// over the graph) finds the brute-force neighbours about as well as on the graph FAISS's own
// builder makes from the same storage.
TEST(Int8Hnsw, GraphIsWellFormedAndFindsTheBruteForceNeighbours) {
  Rng rng(31);
  const size_t dim = 128, n = 3000, nq = 40, k = 10;
  auto x = Clustered(rng, n, dim, 30);
  auto queries = NearRows(rng, x, dim, nq);
  NormalizeRows(&x, dim);
  NormalizeRows(&queries, dim);
  auto recall_of = [&](faiss::IndexHNSW& index) {
    faiss::SearchParametersHNSW p;
    p.efSearch = 64;
    index.hnsw.efSearch = 64;
    std::vector<float> dist(nq * k);
    std::vector<faiss::Index::idx_t> rows(nq * k);
    index.search(nq, queries.data(), k, dist.data(), rows.data(), &p);
    size_t hit = 0;
    for (size_t q = 0; q < nq; ++q) {
      const auto truth = TopK(x, dim, queries.data() + q * dim, k);
      for (size_t j = 0; j < k; ++j) hit += std::count(truth.begin(), truth.end(), rows[q * k + j]);
    }
    return hit / double(nq * k);
  };
  faiss::IndexHNSW reference(new Int8IpStorage(dim), 16);
  reference.own_fields = true;
  reference.hnsw.efConstruction = 64;
  reference.add(static_cast<faiss::Index::idx_t>(n), x.data());
  const double faiss_recall = recall_of(reference);
  std::printf("FAISS-built graph: %zu of %zu reachable\n", Reachable(reference.hnsw, n), n);
  for (int threads : {1, 2}) {
    for (size_t batch : {n, size_t{256}}) {
      Int8Hnsw index(new Int8IpStorage(dim), 16);
      index.set_build_threads(threads);
      index.hnsw.efConstruction = 64;
      for (size_t b = 0; b < n; b += batch) {
        index.add(static_cast<faiss::Index::idx_t>(std::min(batch, n - b)), x.data() + b * dim);
      }
      ASSERT_EQ(index.ntotal, static_cast<faiss::Index::idx_t>(n));
      const faiss::HNSW& g = index.hnsw;
      ASSERT_EQ(g.levels.size(), n);
      int top = 0;
      for (size_t i = 0; i < n; ++i) top = std::max(top, g.levels[i] - 1);
      EXPECT_EQ(g.max_level, top);
      ASSERT_GE(g.entry_point, 0);
      EXPECT_EQ(g.levels[g.entry_point] - 1, top);
      for (size_t i = 0; i < n; ++i) {
        for (int level = 0; level < g.levels[i]; ++level) {
          size_t b, e;
          g.neighbor_range(static_cast<faiss::Index::idx_t>(i), level, &b, &e);
          ASSERT_EQ(e - b, static_cast<size_t>(g.nb_neighbors(level)));
          std::set<int> seen;
          bool padding = false;
          for (size_t j = b; j < e; ++j) {
            const int v = g.neighbors[j];
            if (v < 0) {
              padding = true;
              continue;
            }
            ASSERT_FALSE(padding) << "link after padding at row " << i;
            ASSERT_LT(v, static_cast<int>(n));
            ASSERT_NE(v, static_cast<int>(i));
            ASSERT_GT(g.levels[v], level) << "link to a row without this level";
            ASSERT_TRUE(seen.insert(v).second) << "duplicate link at row " << i;
          }
        }
      }
      // HNSW can orphan a point when pruned reverse links drop it from every list (FAISS's
      // builder too); nearly all must stay reachable.
      const size_t count = Reachable(g, n);
      EXPECT_GE(count, n - n / 500) << "threads " << threads << " batch " << batch;
      const double recall = recall_of(index);
      std::printf("threads %d batch %zu: recall@10 %.3f (FAISS-built graph %.3f)\n", threads, batch, recall,
                  faiss_recall);
      EXPECT_GE(recall, 0.9);
      EXPECT_GE(recall, faiss_recall - 0.03);
    }
  }
}

TEST(HnswSearch, PerRequestEfWidensTheBeam) {
  // Queries from fresh cluster centres (between the data's clusters) are hard for a graph
  // search: a beam of k finds a fraction of the true top k, a wider beam finds more. (FAISS
  // 1.7.3's IndexHNSW::search ignored the per-request ef; both results were equal.)
  Rng rng(41);
  const size_t dim = 64, n = 4000, nq = 30, k = 10;
  auto x = Clustered(rng, n, dim, 40);
  auto queries = Clustered(rng, nq, dim, 40);
  std::vector<Label> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<Label>(i);
  for (HnswStorage storage : {HnswStorage::kFloat32, HnswStorage::kInt8}) {
    IndexConfig cfg;
    cfg.kind = IndexKind::kHnsw;
    cfg.hnsw_m = 8;
    cfg.hnsw_ef_construction = 40;
    cfg.hnsw_storage = storage;
    auto index = CreateIndex(cfg, dim);
    ASSERT_OK(index);
    ASSERT_OK((*index)->Add(x.data(), labels.data(), n));
    auto recall = [&](uint32_t ef) {
      std::vector<std::vector<Neighbor>> out;
      EXPECT_OK((*index)->Search(queries.data(), nq, {.k = k, .ef_search = ef}, &out));
      size_t hit = 0;
      for (size_t q = 0; q < nq; ++q) {
        const auto truth = TopK(x, dim, queries.data() + q * dim, k);
        EXPECT_EQ(out[q].size(), k);
        for (const Neighbor& nb : out[q]) hit += std::count(truth.begin(), truth.end(), nb.label);
      }
      return hit / double(nq * k);
    };
    const double narrow = recall(static_cast<uint32_t>(k)), wide = recall(1000);
    EXPECT_GE(wide, narrow + 0.1) << "narrow " << narrow << " wide " << wide;
    EXPECT_GE(wide, 0.8);
  }
}

}  // namespace
}  // namespace chamferdb
