// VectorIndex on FAISS 1.7.3: IndexFlatIP, IndexHNSW over an int8 storage (index/hnsw_int8.h) or a flat
// inner-product storage with SIMD distances, and IndexIVFPQ
// (inner product, trained once enough vectors exist; exact flat search until then).
//
// FAISS keeps its own sequential row ids; this adapter maps rows <-> labels and implements
// Remove with tombstones (HNSW cannot delete), which searches skip through an IDSelector
// passed in per-request SearchParameters. MaybeCompact rebuilds Flat/HNSW from their
// stored vectors, and removes tombstoned entries from IVF inverted lists in place.
// Every FAISS call goes through Guard(), so FAISS exceptions become absl::Status here.
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <fmt/format.h>

#include <omp.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <queue>
#include <unordered_map>

#include "common/parallel_for.h"
#include "index/hnsw_int8.h"
#include "index/index.h"
#include "index/ivf_kernels.h"
#include "index/refine_dot.h"
#include "kernels/chamfer/dot.h"
#include "kernels/int8/quantize.h"

namespace chamferdb {
namespace {

using idx_t = faiss::Index::idx_t;

template <typename Fn>
absl::Status Guard(const char* what, Fn&& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(fmt::format("faiss {}: {}", what, e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(fmt::format("faiss {}: out of memory", what));
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format("faiss {}: {}", what, e.what()));
  }
}

// Inner products for FAISS's graph search through the project's SIMD dot product (Debian's
// FAISS is built for the generic x86-64 target, where its fvec_inner_product is scalar;
// profiles of HNSW search and construction on 10240-dim FDEs spent ~40-90% there).
class SimdIPDistance final : public faiss::FlatCodesDistanceComputer {
 public:
  SimdIPDistance(const float* xb, size_t dim)
      : faiss::FlatCodesDistanceComputer(reinterpret_cast<const uint8_t*>(xb), dim * sizeof(float)),
        xb_(xb),
        dim_(dim) {}
  void set_query(const float* x) override { q_ = x; }
  float distance_to_code(const uint8_t* code) override {
    float out;
    DotMany(q_, reinterpret_cast<const float*>(code), 1, dim_, &out);
    return out;
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    float out;
    DotMany(xb_ + i * dim_, xb_ + j * dim_, 1, dim_, &out);
    return out;
  }

 private:
  const float* xb_;
  size_t dim_;
  const float* q_ = nullptr;
};

// One query's k best members by inner product over FAISS's HNSW graph, with a beam of ef
// (the HNSW search of Malkov & Yashunin: greedy descent through the upper levels, then a
// best-first search of level 0 that stops when its best unexpanded node is worse than the
// ef-th best node seen). FAISS 1.7.3's own IndexHNSW::search sizes its beam from the shared
// hnsw.efSearch and ignores SearchParametersHNSW::efSearch for it, so a per-request ef
// (and the collection's widening of ef under selective filters) had no effect; this search
// takes ef per call and never mutates the index. Non-members (tombstones, filtered-out
// labels) are traversed but never returned. Writes k scores and rows (missing: -inf, -1).
void HnswBeamSearch(const faiss::IndexHNSW& index, const float* query, size_t k, size_t ef,
                    const faiss::IDSelector* sel, float* scores, idx_t* rows) {
  std::fill(scores, scores + k, -std::numeric_limits<float>::infinity());
  std::fill(rows, rows + k, idx_t{-1});
  const faiss::HNSW& g = index.hnsw;
  if (k == 0 || g.entry_point < 0 || index.ntotal == 0) return;
  ef = std::max(ef, k);
  // Similarities (higher is better): the storage's own computer, not FAISS's negated one.
  const auto* i8 = dynamic_cast<const Int8IpStorage*>(index.storage);
  std::unique_ptr<faiss::DistanceComputer> dis(i8 != nullptr ? i8->NewInnerProductComputer()
                                                             : index.storage->get_distance_computer());
  dis->set_query(query);
  idx_t cur = g.entry_point;
  float cur_s = (*dis)(cur);
  for (int level = g.max_level; level >= 1; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      size_t begin, end;
      g.neighbor_range(cur, level, &begin, &end);
      for (size_t i = begin; i < end && g.neighbors[i] >= 0; ++i) {
        const idx_t v = g.neighbors[i];
        const float sv = (*dis)(v);
        if (sv > cur_s) {
          cur_s = sv;
          cur = v;
          moved = true;
        }
      }
    }
  }
  using Item = std::pair<float, idx_t>;
  std::priority_queue<Item> frontier;                                  // best first
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> beam;  // worst first, ≤ ef
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> best;  // members, ≤ k
  std::vector<uint8_t> visited(static_cast<size_t>(index.ntotal), 0);
  auto offer = [&](float sv, idx_t v) {
    if (sel == nullptr || sel->is_member(v)) {
      if (best.size() < k) {
        best.push({sv, v});
      } else if (!best.empty() && sv > best.top().first) {
        best.pop();
        best.push({sv, v});
      }
    }
  };
  visited[cur] = 1;
  frontier.push({cur_s, cur});
  beam.push({cur_s, cur});
  offer(cur_s, cur);
  while (!frontier.empty()) {
    const auto [s, c] = frontier.top();
    if (beam.size() >= ef && s < beam.top().first) break;
    frontier.pop();
    size_t begin, end;
    g.neighbor_range(c, 0, &begin, &end);
    for (size_t i = begin; i < end && g.neighbors[i] >= 0; ++i) {
      const idx_t v = g.neighbors[i];
      if (visited[v]) continue;
      visited[v] = 1;
      const float sv = (*dis)(v);
      if (beam.size() < ef || sv > beam.top().first) {
        frontier.push({sv, v});
        beam.push({sv, v});
        if (beam.size() > ef) beam.pop();
      }
      offer(sv, v);
    }
  }
  for (size_t j = best.size(); !best.empty();) {
    --j;
    scores[j] = best.top().first;
    rows[j] = best.top().second;
    best.pop();
  }
}

// IndexFlatIP whose distance computer (used by HNSW over it) is SimdIPDistance.
struct SimdFlatIP final : faiss::IndexFlatIP {
  explicit SimdFlatIP(idx_t d) : faiss::IndexFlatIP(d) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
    return new SimdIPDistance(get_xb(), static_cast<size_t>(d));
  }
};

// Nearest-centroid search for FAISS's k-means (faiss::Clustering asks its index for the one
// nearest centroid of every training vector): the coarse quantizer's k-means (inner
// product: IndexIVF clusters with the quantizer's metric) and each PQ sub-quantizer's
// (squared L2), through index/ivf_kernels.h instead of FAISS's BLAS calls.
struct NearestCentroidIndex final : faiss::Index {
  NearestCentroidIndex(idx_t d, faiss::MetricType metric) : faiss::Index(d, metric) {}
  void add(idx_t n, const float* x) override {
    centroids.insert(centroids.end(), x, x + n * d);
    ntotal += n;
    encoder.reset();
  }
  void reset() override {
    centroids.clear();
    ntotal = 0;
    encoder.reset();
  }
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* /*params*/) const override {
    FAISS_THROW_IF_NOT_MSG(k == 1 && ntotal > 0, "NearestCentroidIndex: k must be 1 and the index not empty");
    if (metric_type == faiss::METRIC_INNER_PRODUCT) {
      ArgmaxInnerProduct(x, static_cast<size_t>(n), centroids.data(), static_cast<size_t>(ntotal),
                         static_cast<size_t>(d), labels, distances);
      return;
    }
    if (!encoder) encoder = std::make_unique<PqEncoder>(centroids.data(), 1, static_cast<size_t>(ntotal), static_cast<size_t>(d));
    std::vector<uint32_t> index(static_cast<size_t>(n));
    encoder->Assign(x, static_cast<size_t>(n), index.data(), distances);
    for (idx_t i = 0; i < n; ++i) labels[i] = static_cast<idx_t>(index[i]);
  }
  std::vector<float> centroids;
  mutable std::unique_ptr<PqEncoder> encoder;  // built on the first search after an add
};

// The IVF coarse quantizer: FAISS's flat inner-product index, except that nearest-centroid
// queries (k = 1: the assignment of training vectors in IndexIVFPQ::train_residual) go
// through index/ivf_kernels.h instead of OpenBLAS.
struct CoarseQuantizer final : faiss::IndexFlatIP {
  explicit CoarseQuantizer(idx_t d) : faiss::IndexFlatIP(d) {}
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params) const override {
    if (k != 1 || params != nullptr || ntotal == 0) {
      faiss::IndexFlatIP::search(n, x, k, distances, labels, params);
      return;
    }
    ArgmaxInnerProduct(x, static_cast<size_t>(n), get_xb(), static_cast<size_t>(ntotal), static_cast<size_t>(d),
                       labels, distances);
  }
};

// Members of the search: rows that are not tombstoned and, with a filter, whose label is
// allowed.
struct LiveRows final : faiss::IDSelector {
  const std::vector<uint8_t>* deleted = nullptr;
  const std::vector<Label>* row_label = nullptr;
  const LabelBitmap* allowed = nullptr;
  bool is_member(idx_t id) const override {
    if (id < 0 || static_cast<size_t>(id) >= deleted->size() || (*deleted)[id]) return false;
    return allowed == nullptr || allowed->test(static_cast<size_t>((*row_label)[id]));
  }
};

class FaissIndex final : public VectorIndex {
 public:
  FaissIndex(const IndexConfig& config, size_t dim) : config_(config), dim_(dim) {}

  absl::Status Init() { return Guard("create", [&] { index_ = NewEmpty(/*trained_ivf=*/false); }); }

  size_t dim() const override { return dim_; }

  absl::Status Add(const float* x, const Label* labels, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      if (label_row_.count(labels[i])) {
        return absl::InvalidArgumentError(fmt::format("label {} is already in the index", labels[i]));
      }
    }
    const idx_t first = static_cast<idx_t>(row_label_.size());
    absl::Status s = Guard("add", [&] {
      if (ivf_trained_) {
        AddTrainedIvf(static_cast<faiss::IndexIVFPQ*>(index_.get()), x, n, first);
      } else {
        index_->add(static_cast<idx_t>(n), x);
      }
    });
    if (!s.ok()) return s;
    AppendRefine(x, n);
    for (size_t i = 0; i < n; ++i) {
      label_row_[labels[i]] = first + static_cast<idx_t>(i);
      row_label_.push_back(labels[i]);
      deleted_.push_back(0);
    }
    live_ += n;
    if (config_.kind == IndexKind::kIvfPq && !ivf_trained_ && live_ >= config_.ivf_train_threshold) {
      return TrainIvf();
    }
    return absl::OkStatus();
  }

  absl::Status Remove(const Label* labels, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      auto it = label_row_.find(labels[i]);
      if (it == label_row_.end()) continue;
      deleted_[it->second] = 1;
      label_row_.erase(it);
      --live_;
      ++tombstones_;
    }
    return absl::OkStatus();
  }

  absl::Status Search(const float* queries, size_t nq, const IndexSearchParams& params,
                      std::vector<std::vector<Neighbor>>* out) const override {
    out->assign(nq, {});
    if (live_ == 0 || params.k == 0) return absl::OkStatus();
    const size_t k = std::min(params.k, live_);
    if (ivf_trained_ && config_.refine != RefineStorage::kNone && params.refine_k > k) {
      return SearchRefined(queries, nq, params, k, out);
    }
    if (const auto* flat = dynamic_cast<const faiss::IndexFlat*>(index_.get())) {
      return SearchFlat(flat->get_xb(), queries, nq, k, params.allowed, out);
    }
    std::vector<float> dist(nq * k);
    std::vector<idx_t> rows(nq * k);
    LiveRows sel = Members(params.allowed);
    faiss::IDSelector* selector = tombstones_ > 0 || params.allowed ? &sel : nullptr;
    faiss::SearchParametersHNSW hnsw;
    faiss::SearchParametersIVF ivf;
    faiss::SearchParameters plain;
    faiss::SearchParameters* sp = &plain;
    if (config_.kind == IndexKind::kHnsw) {
      hnsw.efSearch = static_cast<int>(std::max<size_t>(params.ef_search ? params.ef_search : config_.hnsw_ef_search, k));
      sp = &hnsw;
    } else if (ivf_trained_) {
      ivf.nprobe = std::min<size_t>(params.nprobe ? params.nprobe : config_.ivf_nprobe, config_.ivf_nlist);
      sp = &ivf;
    }
    sp->sel = selector;
    absl::Status s = Guard("search", [&] {
      if (config_.kind == IndexKind::kHnsw) {
        const auto* h = static_cast<const faiss::IndexHNSW*>(index_.get());
        for (size_t q = 0; q < nq; ++q) {
          HnswBeamSearch(*h, queries + q * dim_, k, static_cast<size_t>(hnsw.efSearch), selector, dist.data() + q * k,
                         rows.data() + q * k);
        }
      } else {
        index_->search(static_cast<idx_t>(nq), queries, static_cast<idx_t>(k), dist.data(), rows.data(), sp);
      }
    });
    if (!s.ok()) return s;
    for (size_t q = 0; q < nq; ++q) {
      auto& hits = (*out)[q];
      for (size_t j = 0; j < k; ++j) {
        const idx_t r = rows[q * k + j];
        if (!sel.is_member(r)) continue;
        hits.push_back({row_label_[r], dist[q * k + j]});
      }
      std::stable_sort(hits.begin(), hits.end(), [](const Neighbor& a, const Neighbor& b) {
        return a.score != b.score ? a.score > b.score : a.label < b.label;
      });
    }
    return absl::OkStatus();
  }

  size_t size() const override { return live_; }

  IndexInfo info() const override {
    IndexInfo i;
    i.kind = config_.kind;
    i.state = config_.kind == IndexKind::kIvfPq && !ivf_trained_ ? IndexState::kExact : IndexState::kReady;
    i.live = live_;
    i.tombstones = tombstones_;
    const uint64_t rows = row_label_.size();
    uint64_t bytes = rows * (sizeof(Label) + 1 + 16);  // maps and bitmap
    if (ivf_trained_) {
      const uint64_t code = (uint64_t{config_.pq_m} * config_.pq_nbits + 7) / 8;
      bytes += (rows - compacted_ivf_) * (code + sizeof(idx_t)) + uint64_t{config_.ivf_nlist} * dim_ * 4 +
               (uint64_t{1} << config_.pq_nbits) * dim_ * 4;
    } else if (config_.kind == IndexKind::kHnsw && config_.hnsw_storage == HnswStorage::kInt8) {
      bytes += rows * (dim_ + 8) + rows * config_.hnsw_m * 2 * 4 * 1.1;  // codes, scale, graph prefix sum, links
    } else {
      bytes += rows * dim_ * 4;
      if (config_.kind == IndexKind::kHnsw) bytes += rows * config_.hnsw_m * 2 * 4 * 1.1;
    }
    i.memory_bytes = bytes + refine_f32_.size() * sizeof(float) + refine_i8_.size() + refine_scale_.size() * sizeof(float);
    return i;
  }

  absl::Status MaybeCompact() override {
    if (tombstones_ < 1024 || tombstones_ < live_) return absl::OkStatus();
    if (ivf_trained_) {
      std::vector<idx_t> dead;
      for (size_t r = 0; r < deleted_.size(); ++r)
        if (deleted_[r] && row_label_[r] != kRemoved) dead.push_back(static_cast<idx_t>(r));
      absl::Status s = Guard("remove", [&] {
        faiss::IDSelectorBatch batch(dead.size(), dead.data());
        index_->remove_ids(batch);
      });
      if (!s.ok()) return s;
      for (idx_t r : dead) row_label_[r] = kRemoved;
      compacted_ivf_ += dead.size();
      tombstones_ = 0;
      return absl::OkStatus();
    }
    // Flat / HNSW / untrained IVF: rebuild from the stored vectors of live rows.
    std::vector<float> live_vectors;
    std::vector<Label> live_labels;
    absl::Status s = CollectLive(&live_vectors, &live_labels);
    if (!s.ok()) return s;
    std::unique_ptr<faiss::Index> fresh;
    s = Guard("rebuild", [&] {
      fresh = NewEmpty(false);
      fresh->add(static_cast<idx_t>(live_labels.size()), live_vectors.data());
    });
    if (!s.ok()) return s;
    index_ = std::move(fresh);
    ResetRows(live_labels);
    RebuildRefine(live_vectors.data());
    return absl::OkStatus();
  }

 private:
  static constexpr Label kRemoved = -1;
  static constexpr int kTrainIterations = 10;

  static constexpr int64_t kParallelRefine = 1024;

  // The search's members: live rows, and with a filter only allowed labels.
  LiveRows Members(const LabelBitmap* allowed) const {
    LiveRows sel;
    sel.deleted = &deleted_;
    sel.row_label = &row_label_;
    sel.allowed = allowed;
    return sel;
  }

  // Refine storage (row-major, one row per FAISS row, tombstoned rows included).
  void AppendRefine(const float* x, size_t n) {
    if (config_.refine == RefineStorage::kFloat32) {
      refine_f32_.insert(refine_f32_.end(), x, x + n * dim_);
    } else if (config_.refine == RefineStorage::kInt8) {
      const size_t old = refine_scale_.size();
      refine_i8_.resize((old + n) * dim_);
      refine_scale_.resize(old + n);
      int8::QuantizeRows(x, n, dim_, refine_i8_.data() + old * dim_, refine_scale_.data() + old);
    }
  }

  // After ResetRows: rows are the live vectors in order.
  void RebuildRefine(const float* live_vectors) {
    refine_f32_.clear();
    refine_i8_.clear();
    refine_scale_.clear();
    AppendRefine(live_vectors, live_);
  }

  float RefineScore(const float* q, idx_t row) const {
    if (config_.refine == RefineStorage::kFloat32) {
      float out;
      DotMany(q, refine_f32_.data() + static_cast<size_t>(row) * dim_, 1, dim_, &out);
      return out;
    }
    return DotI8Row(q, refine_i8_.data() + static_cast<size_t>(row) * dim_, refine_scale_[row], dim_);
  }

  // Two-stage search: the PQ search with refine_k neighbours, then exact re-scoring. Works
  // on FAISS rows throughout (no label map lookups, no sort of the first stage); only the
  // best k are turned into labels.
  absl::Status SearchRefined(const float* queries, size_t nq, const IndexSearchParams& params, size_t k,
                             std::vector<std::vector<Neighbor>>* out) const {
    const size_t kk = std::min(params.refine_k, live_);
    std::vector<float> dist(nq * kk);
    std::vector<idx_t> rows(nq * kk);
    LiveRows sel = Members(params.allowed);
    faiss::SearchParametersIVF ivf;
    ivf.nprobe = std::min<size_t>(params.nprobe ? params.nprobe : config_.ivf_nprobe, config_.ivf_nlist);
    ivf.sel = tombstones_ > 0 || params.allowed ? &sel : nullptr;
    absl::Status s = Guard("search", [&] {
      index_->search(static_cast<idx_t>(nq), queries, static_cast<idx_t>(kk), dist.data(), rows.data(), &ivf);
    });
    if (!s.ok()) return s;
    std::vector<std::pair<float, idx_t>> scored;
    for (size_t q = 0; q < nq; ++q) {
      scored.clear();
      for (size_t j = 0; j < kk; ++j) {
        const idx_t r = rows[q * kk + j];
        if (sel.is_member(r)) scored.push_back({0.0f, r});
      }
      const int64_t nh = static_cast<int64_t>(scored.size());
      // Like the Chamfer rerank, a large refine is split across the cores (each neighbour
      // scored independently, so the result does not depend on the split).
      const int threads = nh >= kParallelRefine ? BulkThreads() : 1;
#pragma omp parallel for schedule(static, 64) num_threads(threads)
      for (int64_t i = 0; i < nh; ++i) scored[i].first = RefineScore(queries + q * dim_, scored[i].second);
      const size_t keep = std::min(k, scored.size());
      std::partial_sort(scored.begin(), scored.begin() + keep, scored.end(),
                        [&](const std::pair<float, idx_t>& a, const std::pair<float, idx_t>& b) {
                          return a.first != b.first ? a.first > b.first : row_label_[a.second] < row_label_[b.second];
                        });
      auto& hits = (*out)[q];
      for (size_t j = 0; j < keep; ++j) hits.push_back({row_label_[scored[j].second], scored[j].first});
    }
    return absl::OkStatus();
  }

  // Exact search over the flat vectors with the project's SIMD dot products on the calling
  // thread (FAISS's single-query path is scalar here and opens an OpenMP team).
  absl::Status SearchFlat(const float* xb, const float* queries, size_t nq, size_t k,
                          const LabelBitmap* allowed, std::vector<std::vector<Neighbor>>* out) const {
    const size_t rows = row_label_.size();
    std::vector<float> scores(rows);
    std::vector<std::pair<float, Label>> cand;
    for (size_t q = 0; q < nq; ++q) {
      DotMany(queries + q * dim_, xb, rows, dim_, scores.data());
      cand.clear();
      cand.reserve(live_);
      for (size_t r = 0; r < rows; ++r) {
        if (!deleted_[r] && (allowed == nullptr || allowed->test(static_cast<size_t>(row_label_[r])))) {
          cand.emplace_back(scores[r], row_label_[r]);
        }
      }
      auto better = [](const std::pair<float, Label>& a, const std::pair<float, Label>& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      };
      const size_t kk = std::min(k, cand.size());
      std::partial_sort(cand.begin(), cand.begin() + kk, cand.end(), better);
      auto& hits = (*out)[q];
      for (size_t j = 0; j < kk; ++j) hits.push_back({cand[j].second, cand[j].first});
    }
    return absl::OkStatus();
  }

  std::unique_ptr<faiss::Index> NewEmpty(bool trained_ivf) const {
    const int d = static_cast<int>(dim_);
    if (config_.kind == IndexKind::kHnsw) {
      // int8 storage: the graph is built by Int8Hnsw (index/hnsw_int8.h), not by FAISS.
      std::unique_ptr<faiss::IndexHNSW> h;
      if (config_.hnsw_storage == HnswStorage::kInt8) {
        h = std::make_unique<Int8Hnsw>(new Int8IpStorage(d, HnswGraphDims(dim_)), static_cast<int>(config_.hnsw_m));
      } else {
        h = std::make_unique<faiss::IndexHNSW>(new SimdFlatIP(d), static_cast<int>(config_.hnsw_m));
      }
      h->own_fields = true;
      h->hnsw.efConstruction = static_cast<int>(config_.hnsw_ef_construction);
      h->hnsw.efSearch = static_cast<int>(config_.hnsw_ef_search);
      return h;
    }
    return std::make_unique<faiss::IndexFlatIP>(d);
  }

  absl::Status CollectLive(std::vector<float>* vectors, std::vector<Label>* labels) const {
    vectors->resize(live_ * dim_);
    labels->clear();
    labels->reserve(live_);
    return Guard("reconstruct", [&] {
      size_t j = 0;
      for (size_t r = 0; r < row_label_.size(); ++r) {
        if (deleted_[r]) continue;
        index_->reconstruct(static_cast<idx_t>(r), vectors->data() + j * dim_);
        labels->push_back(row_label_[r]);
        ++j;
      }
    });
  }

  void ResetRows(const std::vector<Label>& labels) {
    row_label_ = labels;
    deleted_.assign(labels.size(), 0);
    label_row_.clear();
    for (size_t r = 0; r < labels.size(); ++r) label_row_[labels[r]] = static_cast<idx_t>(r);
    live_ = labels.size();
    tombstones_ = 0;
  }

  // IndexIVFPQ::add_with_ids for rows first.. first + n - 1 (FAISS ids = rows), with the
  // coarse assignment and the PQ encoding of the residuals done by index/ivf_kernels.h:
  // the same steps as FAISS's add_core_o (assign to the nearest centroid by inner product,
  // residual = x - centroid, PQ-encode the residual, append to the list), without its
  // scalar PQ loop and BLAS calls. The whole batch is encoded in one pass.
  void AddTrainedIvf(faiss::IndexIVFPQ* ivf, const float* x, size_t n, idx_t first) {
    FAISS_THROW_IF_NOT(ivf->by_residual && pq_encoder_ != nullptr);
    const auto* quantizer = dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer);
    FAISS_THROW_IF_NOT(quantizer != nullptr);
    const float* centroids = quantizer->get_xb();
    constexpr size_t kBlock = 4096;  // bounds the residual buffer
    std::vector<int64_t> list(std::min(n, kBlock));
    std::vector<float> score(list.size());
    std::vector<float> residual(list.size() * dim_);
    std::vector<uint8_t> codes(list.size() * ivf->code_size);
    for (size_t begin = 0; begin < n; begin += kBlock) {
      const size_t m = std::min(kBlock, n - begin);
      const float* xb = x + begin * dim_;
      ArgmaxInnerProduct(xb, m, centroids, ivf->nlist, dim_, list.data(), score.data());
      for (size_t i = 0; i < m; ++i) {
        const float* c = centroids + static_cast<size_t>(list[i]) * dim_;
        for (size_t j = 0; j < dim_; ++j) residual[i * dim_ + j] = xb[i * dim_ + j] - c[j];
      }
      pq_encoder_->Encode(residual.data(), m, ivf->pq.nbits, codes.data());
      for (size_t i = 0; i < m; ++i) {
        ivf->invlists->add_entry(static_cast<size_t>(list[i]), first + static_cast<idx_t>(begin + i),
                                 codes.data() + i * ivf->code_size);
      }
    }
    ivf->ntotal += static_cast<idx_t>(n);
  }

  absl::Status TrainIvf() {
    std::vector<float> live_vectors;
    std::vector<Label> live_labels;
    absl::Status s = CollectLive(&live_vectors, &live_labels);
    if (!s.ok()) return s;
    const size_t n = live_labels.size();
    // Deterministic sample of at most kMaxTrain vectors, evenly strided.
    constexpr size_t kMaxTrain = 20000;
    std::vector<float> sample;
    const float* train = live_vectors.data();
    size_t n_train = n;
    if (n > kMaxTrain) {
      sample.resize(kMaxTrain * dim_);
      for (size_t i = 0; i < kMaxTrain; ++i) {
        const size_t src = i * n / kMaxTrain;
        std::copy_n(live_vectors.data() + src * dim_, dim_, sample.data() + i * dim_);
      }
      train = sample.data();
      n_train = kMaxTrain;
    }
    std::unique_ptr<faiss::IndexIVFPQ> ivf;
    s = Guard("train", [&] {
      auto* quantizer = new CoarseQuantizer(static_cast<idx_t>(dim_));
      ivf = std::make_unique<faiss::IndexIVFPQ>(quantizer, dim_, config_.ivf_nlist, config_.pq_m,
                                                config_.pq_nbits, faiss::METRIC_INNER_PRODUCT);
      ivf->own_fields = true;
      ivf->cp.seed = 1234;
      ivf->pq.cp.seed = 1234;
      // 10 k-means iterations instead of FAISS's 25, for the coarse quantizer and for each
      // PQ sub-quantizer: training runs inside an ingest (it blocks writers), and the later
      // iterations move the centroids little (recall measured in docs/performance-ingest.md).
      ivf->cp.niter = kTrainIterations;
      ivf->pq.cp.niter = kTrainIterations;
      // k-means assignments through index/ivf_kernels.h (see NearestCentroidIndex).
      NearestCentroidIndex coarse(static_cast<idx_t>(dim_), faiss::METRIC_INNER_PRODUCT);
      NearestCentroidIndex sub(static_cast<idx_t>(ivf->pq.dsub), faiss::METRIC_L2);
      ivf->clustering_index = &coarse;
      ivf->pq.assign_index = &sub;
      ivf->train(static_cast<idx_t>(n_train), train);
      ivf->clustering_index = nullptr;
      ivf->pq.assign_index = nullptr;
      pq_encoder_ = std::make_unique<PqEncoder>(ivf->pq.centroids.data(), ivf->pq.M, ivf->pq.ksub, ivf->pq.dsub);
      AddTrainedIvf(ivf.get(), live_vectors.data(), n, 0);
    });
    if (!s.ok()) return s;
    index_ = std::move(ivf);
    ivf_trained_ = true;
    ResetRows(live_labels);
    RebuildRefine(live_vectors.data());
    return absl::OkStatus();
  }

  IndexConfig config_;
  size_t dim_;
  std::unique_ptr<faiss::Index> index_;
  bool ivf_trained_ = false;
  std::unique_ptr<PqEncoder> pq_encoder_;  // the trained PQ's centroids, transposed
  std::vector<Label> row_label_;  // row -> label (kRemoved once purged from IVF lists)
  std::vector<uint8_t> deleted_;  // row -> tombstoned
  std::unordered_map<Label, idx_t> label_row_;
  size_t live_ = 0;
  size_t tombstones_ = 0;
  size_t compacted_ivf_ = 0;
  std::vector<float> refine_f32_;    // RefineStorage::kFloat32: rows × dim
  std::vector<int8_t> refine_i8_;    // RefineStorage::kInt8: rows × dim codes
  std::vector<float> refine_scale_;  // RefineStorage::kInt8: one absmax scale per row
};

}  // namespace

absl::Status IndexConfig::Normalize(size_t dim) {
  auto bad = [](std::string m) { return absl::InvalidArgumentError(std::move(m)); };
  if (hnsw_m == 0) hnsw_m = 32;
  if (hnsw_ef_construction == 0) hnsw_ef_construction = 200;
  if (hnsw_ef_search == 0) hnsw_ef_search = 128;
  if (ivf_nlist == 0) ivf_nlist = 256;
  if (pq_nbits == 0) pq_nbits = 8;
  if (ivf_nprobe == 0) ivf_nprobe = std::min<uint32_t>(16, ivf_nlist);
  if (hnsw_m < 4 || hnsw_m > 128) return bad(fmt::format("index.hnsw_m {} is outside 4..128", hnsw_m));
  if (hnsw_ef_construction > 4096)
    return bad(fmt::format("index.hnsw_ef_construction {} exceeds 4096", hnsw_ef_construction));
  if (hnsw_ef_search > 4096) return bad(fmt::format("index.hnsw_ef_search {} exceeds 4096", hnsw_ef_search));
  if (ivf_nlist > 65536) return bad(fmt::format("index.ivf_nlist {} exceeds 65536", ivf_nlist));
  if (pq_nbits > 12) return bad(fmt::format("index.pq_nbits {} is outside 1..12", pq_nbits));
  if (ivf_nprobe > ivf_nlist)
    return bad(fmt::format("index.ivf_nprobe {} exceeds ivf_nlist {}", ivf_nprobe, ivf_nlist));
  if (kind == IndexKind::kIvfPq) {
    if (pq_m == 0) {
      if (dim % 8 != 0)
        return bad(fmt::format("index.pq_m must be set: the vector dimension {} is not a multiple of 8", dim));
      pq_m = static_cast<uint32_t>(dim / 8);
    }
    if (dim % pq_m != 0)
      return bad(fmt::format("index.pq_m {} does not divide the vector dimension {}", pq_m, dim));
  }
  if (kind == IndexKind::kHnsw && hnsw_storage == HnswStorage::kDefault) hnsw_storage = HnswStorage::kInt8;
  if (kind != IndexKind::kHnsw && hnsw_storage != HnswStorage::kDefault)
    return bad("index.hnsw_storage applies to HNSW only");
  if (refine != RefineStorage::kNone && kind != IndexKind::kIvfPq)
    return bad("index.refine_storage applies to IVF_PQ only (FLAT and HNSW already score exactly)");
  if (ivf_train_threshold == 0) ivf_train_threshold = std::max<uint32_t>(39 * ivf_nlist, 2048);
  if (ivf_train_threshold < ivf_nlist)
    return bad(fmt::format("index.ivf_train_threshold {} is below ivf_nlist {}", ivf_train_threshold, ivf_nlist));
  return absl::OkStatus();
}

size_t HnswGraphDims(size_t dim) { return dim <= 1024 ? dim : std::max<size_t>(512, dim / 4); }

absl::StatusOr<std::unique_ptr<VectorIndex>> CreateIndex(const IndexConfig& config, size_t dim) {
  if (dim == 0) return absl::InvalidArgumentError("index dimension is 0");
  IndexConfig c = config;
  if (absl::Status s = c.Normalize(dim); !s.ok()) return s;
  auto index = std::make_unique<FaissIndex>(c, dim);
  if (absl::Status s = index->Init(); !s.ok()) return s;
  return std::unique_ptr<VectorIndex>(std::move(index));
}

}  // namespace chamferdb
