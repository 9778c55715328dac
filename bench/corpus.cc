#include "bench/corpus.h"

#include <omp.h>

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <cmath>
#include <fstream>

#include "common/rng.h"
#include "kernels/chamfer/chamfer.h"
#include "kernels/chamfer/chamfer_int8.h"
#include "kernels/int8/quantize.h"

namespace chamferdb::bench {
namespace {

void Normalize(float* v, size_t dim) {
  double n = 0;
  for (size_t j = 0; j < dim; ++j) n += double(v[j]) * v[j];
  const float inv = static_cast<float>(1.0 / std::sqrt(n));
  for (size_t j = 0; j < dim; ++j) v[j] *= inv;
}

void RandomUnit(Rng& rng, float* v, size_t dim) {
  for (size_t j = 0; j < dim; ++j) v[j] = static_cast<float>(rng.Normal());
  Normalize(v, dim);
}

// Advances rng past `count` normals without computing them. Rng::Normal draws a Box–Muller
// pair from two raw words and returns its second value from a spare on the next call, so a
// full pair is two NextU64 calls; a pair split at either end is drawn for real. *spare
// says whether rng holds a spare (the parity of the normals drawn so far) and is updated.
void SkipNormals(Rng& rng, size_t count, bool* spare) {
  if (count > 0 && *spare) {
    rng.Normal();
    --count;
    *spare = false;
  }
  for (; count >= 2; count -= 2) {
    rng.NextU64();
    rng.NextU64();
  }
  if (count > 0) {
    rng.Normal();
    *spare = true;
  }
}

// One document's draws, in MakeCorpus's order and with its arithmetic. With out == nullptr
// only the RNG advances (normals skipped, *spare tracked: see SkipNormals); otherwise *out
// gets the tokens (n × dim) and *doc_topics the document's topics.
size_t DrawDocument(const CorpusSpec& s, const std::vector<float>& topics, const std::vector<double>& cdf, Rng& rng,
                    bool* spare, std::vector<float>* out, std::vector<size_t>* doc_topics) {
  const double acc = cdf.back();
  const double log_min = std::log(double(s.min_tokens)), log_max = std::log(double(s.max_tokens) + 1);
  const size_t n = std::min(s.max_tokens, static_cast<size_t>(std::exp(log_min + rng.Uniform() * (log_max - log_min))));
  const size_t nt = 1 + rng.UniformInt(4);
  size_t local_topics[4];
  for (size_t i = 0; i < nt; ++i) {
    const double u = rng.Uniform() * acc;
    local_topics[i] = static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
  }
  if (out == nullptr) {
    SkipNormals(rng, 4 * s.dim, spare);
    for (size_t t = 0; t < n; ++t) {
      rng.UniformInt(nt);
      rng.UniformInt(4);
      SkipNormals(rng, s.dim, spare);
    }
    return n;
  }
  doc_topics->assign(local_topics, local_topics + nt);
  std::vector<float> aspects(4 * s.dim), noise(s.dim);
  for (size_t a = 0; a < 4; ++a) RandomUnit(rng, &aspects[a * s.dim], s.dim);
  out->resize(n * s.dim);
  float* doc = out->data();
  for (size_t t = 0; t < n; ++t) {
    const float* topic = &topics[local_topics[rng.UniformInt(nt)] * s.dim];
    const float* aspect = &aspects[rng.UniformInt(4) * s.dim];
    RandomUnit(rng, noise.data(), s.dim);
    for (size_t j = 0; j < s.dim; ++j) doc[t * s.dim + j] = topic[j] + 0.7f * aspect[j] + 0.25f * noise[j];
    Normalize(&doc[t * s.dim], s.dim);
  }
  return n;
}

// One query of 32 (query_tokens) tokens targeting a document of n tokens (doc, n × dim) with
// topics doc_topics: even tokens are noisy copies of the document's tokens, odd ones noisy
// topic vectors. Shared by MakeCorpus and CorpusStream (same draws in the same order).
void DrawQuery(const CorpusSpec& s, const float* topics, const float* doc, size_t n,
               const std::vector<size_t>& doc_topics, Rng& rng, std::vector<float>* noise, std::vector<float>* out) {
  out->resize(s.query_tokens * s.dim);
  for (size_t t = 0; t < s.query_tokens; ++t) {
    RandomUnit(rng, noise->data(), s.dim);
    float* row = &(*out)[t * s.dim];
    if (t % 2 == 0) {
      const float* src = &doc[rng.UniformInt(n) * s.dim];
      for (size_t j = 0; j < s.dim; ++j) row[j] = src[j] + 0.35f * (*noise)[j];
    } else {
      const float* topic = &topics[doc_topics[rng.UniformInt(doc_topics.size())] * s.dim];
      for (size_t j = 0; j < s.dim; ++j) row[j] = topic[j] + 0.6f * (*noise)[j];
    }
    Normalize(row, s.dim);
  }
}

}  // namespace

Corpus MakeCorpus(const CorpusSpec& s) {
  Corpus c;
  c.dim = s.dim;
  Rng rng(s.seed);
  std::vector<float> topics(s.topics * s.dim);
  for (size_t t = 0; t < s.topics; ++t) RandomUnit(rng, &topics[t * s.dim], s.dim);
  // Zipf(1.1) cumulative weights over topics.
  std::vector<double> cdf(s.topics);
  double acc = 0;
  for (size_t t = 0; t < s.topics; ++t) cdf[t] = (acc += 1.0 / std::pow(t + 1.0, 1.1));
  auto draw_topic = [&] {
    const double u = rng.Uniform() * acc;
    return static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
  };
  std::vector<std::vector<size_t>> doc_topics(s.documents);
  std::vector<float> noise(s.dim), aspects(4 * s.dim);
  const double log_min = std::log(double(s.min_tokens)), log_max = std::log(double(s.max_tokens) + 1);
  c.docs.resize(s.documents);
  for (size_t d = 0; d < s.documents; ++d) {
    const size_t n = std::min(s.max_tokens, static_cast<size_t>(std::exp(log_min + rng.Uniform() * (log_max - log_min))));
    const size_t nt = 1 + rng.UniformInt(4);
    for (size_t i = 0; i < nt; ++i) doc_topics[d].push_back(draw_topic());
    for (size_t a = 0; a < 4; ++a) RandomUnit(rng, &aspects[a * s.dim], s.dim);
    auto& doc = c.docs[d];
    doc.resize(n * s.dim);
    for (size_t t = 0; t < n; ++t) {
      const float* topic = &topics[doc_topics[d][rng.UniformInt(nt)] * s.dim];
      const float* aspect = &aspects[rng.UniformInt(4) * s.dim];
      RandomUnit(rng, noise.data(), s.dim);
      for (size_t j = 0; j < s.dim; ++j) doc[t * s.dim + j] = topic[j] + 0.7f * aspect[j] + 0.25f * noise[j];
      Normalize(&doc[t * s.dim], s.dim);
    }
  }
  c.queries.resize(s.queries);
  for (size_t q = 0; q < s.queries; ++q) {
    const size_t target = rng.UniformInt(s.documents);
    const auto& doc = c.docs[target];
    DrawQuery(s, topics.data(), doc.data(), doc.size() / s.dim, doc_topics[target], rng, &noise, &c.queries[q]);
  }
  return c;
}

CorpusStream::CorpusStream(const CorpusSpec& s) : spec_(s) {
  Rng rng(s.seed);
  topics_.resize(s.topics * s.dim);
  for (size_t t = 0; t < s.topics; ++t) RandomUnit(rng, &topics_[t * s.dim], s.dim);
  cdf_.resize(s.topics);
  double acc = 0;
  for (size_t t = 0; t < s.topics; ++t) cdf_[t] = (acc += 1.0 / std::pow(t + 1.0, 1.1));
  bool spare = (s.topics * s.dim) % 2 == 1;
  starts_.reserve(s.documents);
  tokens_.reserve(s.documents);
  for (size_t d = 0; d < s.documents; ++d) {
    starts_.push_back(rng);
    tokens_.push_back(static_cast<uint32_t>(DrawDocument(s, topics_, cdf_, rng, &spare, nullptr, nullptr)));
  }
  // The queries, from the RNG where the documents end, exactly as MakeCorpus draws them.
  queries_.resize(s.queries);
  std::vector<float> doc, noise(s.dim);
  std::vector<size_t> doc_topics;
  for (size_t q = 0; q < s.queries; ++q) {
    const size_t target = rng.UniformInt(s.documents);
    Rng doc_rng = starts_[target];
    const size_t n = DrawDocument(s, topics_, cdf_, doc_rng, nullptr, &doc, &doc_topics);
    DrawQuery(s, topics_.data(), doc.data(), n, doc_topics, rng, &noise, &queries_[q]);
  }
}

void CorpusStream::Document(size_t d, std::vector<float>* out) const {
  Rng rng = starts_[d];
  std::vector<size_t> doc_topics;
  DrawDocument(spec_, topics_, cdf_, rng, nullptr, out, &doc_topics);
}

void CorpusStream::Chunk(size_t begin, size_t end, std::vector<std::vector<float>>* out) const {
  out->resize(end - begin);
#pragma omp parallel for schedule(dynamic, 16)
  for (size_t d = begin; d < end; ++d) Document(d, &(*out)[d - begin]);
}

namespace {

// FNV-1a over a few corpus values: the ground-truth cache is keyed by it as well as by the
// sizes, so a cache from another seed, dimension or token count is recomputed.
uint64_t Fingerprint(const std::vector<float>& first_doc, const std::vector<float>& last_doc,
                     const std::vector<float>& first_query, const std::vector<float>& last_query, size_t dim) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::vector<float>& v) {
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    for (size_t i = 0; i < v.size() * 4; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  mix(first_doc);
  mix(last_doc);
  mix(first_query);
  mix(last_query);
  return h ^ dim;
}

uint64_t Fingerprint(const Corpus& corpus) {
  return Fingerprint(corpus.docs.front(), corpus.docs.back(), corpus.queries.front(), corpus.queries.back(),
                     corpus.dim);
}

// The ground-truth cache: header {queries, k, documents, fingerprint}, then k ids per query.
bool ReadTruthCache(const std::string& path, size_t nq, size_t k, size_t nd, uint64_t fp,
                    std::vector<std::vector<uint32_t>>* out) {
  if (path.empty()) return false;
  std::ifstream in(path, std::ios::binary);
  uint64_t hdr[4] = {0, 0, 0, 0};
  if (!in.read(reinterpret_cast<char*>(hdr), sizeof hdr) || hdr[0] != nq || hdr[1] != k || hdr[2] != nd ||
      hdr[3] != fp) {
    return false;
  }
  out->assign(nq, std::vector<uint32_t>(k));
  for (auto& v : *out) {
    if (!in.read(reinterpret_cast<char*>(v.data()), k * 4)) return false;
  }
  return true;
}

// CPU seconds of the process (every thread) or of the calling thread: what the cores did,
// not inflated when other jobs share them.
double CpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void WriteTruthCache(const std::string& path, size_t k, size_t nd, uint64_t fp,
                     const std::vector<std::vector<uint32_t>>& truth) {
  if (path.empty()) return;
  std::ofstream o(path, std::ios::binary);
  const uint64_t hdr[4] = {truth.size(), k, nd, fp};
  o.write(reinterpret_cast<const char*>(hdr), sizeof hdr);
  for (const auto& v : truth) o.write(reinterpret_cast<const char*>(v.data()), k * 4);
}

// Exact top-k of one query on the calling thread (a full scan: what one core pays).
std::vector<uint32_t> ScanOne(const Corpus& corpus, const std::vector<std::vector<float>>& packed, size_t q,
                              size_t k) {
  const size_t nd = corpus.docs.size(), dim = corpus.dim;
  const size_t qn = corpus.queries[q].size() / dim;
  std::vector<std::pair<float, uint32_t>> scores(nd);
  for (size_t d = 0; d < nd; ++d) {
    const size_t n = corpus.docs[d].size() / dim;
    scores[d] = {-ChamferPackedF32(corpus.queries[q].data(), qn, packed[d].data(), PackedColumns(n), dim),
                 static_cast<uint32_t>(d)};
  }
  const size_t kk = std::min(k, nd);
  std::partial_sort(scores.begin(), scores.begin() + kk, scores.end());
  std::vector<uint32_t> out;
  for (size_t i = 0; i < kk; ++i) out.push_back(scores[i].second);
  return out;
}

}  // namespace

std::vector<std::vector<uint32_t>> ExactTopK(const Corpus& corpus, size_t k, const std::string& cache_path,
                                             double* seconds_per_query) {
  const size_t nq = corpus.queries.size(), nd = corpus.docs.size(), dim = corpus.dim;
  const uint64_t fp = Fingerprint(corpus);
  std::vector<std::vector<uint32_t>> out(nq);
  const bool cached = ReadTruthCache(cache_path, nq, k, nd, fp, &out);
  if (!cached) out.assign(nq, {});
  // Pack every document once (the layout the server reranks with).
  std::vector<std::vector<float>> packed(nd);
#pragma omp parallel for schedule(dynamic, 64)
  for (size_t d = 0; d < nd; ++d) {
    const size_t n = corpus.docs[d].size() / dim;
    packed[d].resize(dim * PackedColumns(n));
    PackTokensF32(corpus.docs[d].data(), n, dim, packed[d].data());
  }
  if (cached) {
    // Ground truth from the cache; the exact latency is still measured in this run, on a
    // few queries, one core.
    const size_t probe = std::min<size_t>(nq, 3);
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t q = 0; q < probe; ++q) {
      if (ScanOne(corpus, packed, q, k) != out[q]) std::fprintf(stderr, "warning: cached ground truth differs for query %zu\n", q);
    }
    if (seconds_per_query) {
      *seconds_per_query = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / probe;
    }
    return out;
  }
  // One query per thread, each a full single-threaded scan: the cost a server pays per
  // query on one core.
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t q = 0; q < nq; ++q) out[q] = ScanOne(corpus, packed, q, k);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (seconds_per_query) *seconds_per_query = secs * omp_get_max_threads() / nq;
  WriteTruthCache(cache_path, k, nd, fp, out);
  return out;
}

std::vector<std::vector<uint32_t>> ExactTopKStreamed(const CorpusStream& stream, size_t k,
                                                     const std::string& cache_path, double* seconds_per_query,
                                                     size_t chunk) {
  const auto& queries = stream.queries();
  const size_t nq = queries.size(), nd = stream.size(), dim = stream.dim();
  const size_t kk = std::min(k, nd);
  chunk = std::max<size_t>(chunk, 1);
  std::vector<float> first, last;
  stream.Document(0, &first);
  stream.Document(nd - 1, &last);
  const uint64_t fp = Fingerprint(first, last, queries.front(), queries.back(), dim);
  std::vector<std::vector<uint32_t>> out;
  std::vector<std::vector<float>> docs, packed;
  auto pack = [&](size_t count) {
    packed.resize(count);
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t i = 0; i < count; ++i) {
      const size_t n = docs[i].size() / dim;
      packed[i].resize(dim * PackedColumns(n));
      PackTokensF32(docs[i].data(), n, dim, packed[i].data());
    }
  };
  auto score = [&](size_t q, size_t i) {
    return ChamferPackedF32(queries[q].data(), queries[q].size() / dim, packed[i].data(),
                            PackedColumns(docs[i].size() / dim), dim);
  };
  if (ReadTruthCache(cache_path, nq, kk, nd, fp, &out)) {
    // The exact latency is still measured in this run: one query over a prefix, one core.
    const size_t probe = std::min(nd, chunk);  // one chunk of float tokens, as below
    stream.Chunk(0, probe, &docs);
    pack(probe);
    const double t0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    std::vector<float> scores(probe);
    for (size_t i = 0; i < probe; ++i) scores[i] = score(0, i);
    const double secs = CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0;
    if (seconds_per_query) *seconds_per_query = secs * nd / probe;
    return out;
  }
  // Per query the kk smallest (−score, id) pairs, as a max-heap: the order ExactTopK's
  // partial_sort gives (higher score first, ties to the smaller id).
  std::vector<std::vector<std::pair<float, uint32_t>>> heaps(nq);
  double score_secs = 0;
  for (size_t begin = 0; begin < nd; begin += chunk) {
    const size_t end = std::min(nd, begin + chunk);
    stream.Chunk(begin, end, &docs);
    pack(end - begin);
    const double t0 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t q = 0; q < nq; ++q) {
      auto& heap = heaps[q];
      for (size_t i = 0; i < end - begin; ++i) {
        const std::pair<float, uint32_t> key{-score(q, i), static_cast<uint32_t>(begin + i)};
        if (heap.size() < kk) {
          heap.push_back(key);
          std::push_heap(heap.begin(), heap.end());
        } else if (key < heap.front()) {
          std::pop_heap(heap.begin(), heap.end());
          heap.back() = key;
          std::push_heap(heap.begin(), heap.end());
        }
      }
    }
    score_secs += CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - t0;
  }
  out.assign(nq, {});
  for (size_t q = 0; q < nq; ++q) {
    std::sort_heap(heaps[q].begin(), heaps[q].end());
    for (const auto& [neg, id] : heaps[q]) out[q].push_back(id);
  }
  if (seconds_per_query) *seconds_per_query = score_secs / std::max<size_t>(nq, 1);
  WriteTruthCache(cache_path, kk, nd, fp, out);
  return out;
}

std::vector<std::vector<uint32_t>> ExactTopKInt8(const Corpus& corpus, size_t k, bool quantize_query,
                                                 double* seconds_per_query) {
  const size_t nq = corpus.queries.size(), nd = corpus.docs.size(), dim = corpus.dim;
  std::vector<std::vector<uint8_t>> packed(nd);
  std::vector<std::vector<float>> dequantized(quantize_query ? 0 : nd);  // packed f32
#pragma omp parallel for schedule(dynamic, 64)
  for (size_t d = 0; d < nd; ++d) {
    const size_t n = corpus.docs[d].size() / dim;
    std::vector<int8_t> codes(n * dim);
    std::vector<float> scales(n);
    int8::QuantizeRows(corpus.docs[d].data(), n, dim, codes.data(), scales.data());
    if (quantize_query) {
      packed[d].resize(PackedI8Bytes(n, dim));
      PackTokensI8(codes.data(), scales.data(), n, dim, packed[d].data());
    } else {
      std::vector<float> x(n * dim);
      int8::DequantizeRows(codes.data(), scales.data(), n, dim, x.data());
      dequantized[d].resize(dim * PackedColumns(n));
      PackTokensF32(x.data(), n, dim, dequantized[d].data());
    }
  }
  std::vector<std::vector<uint32_t>> out(nq);
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t q = 0; q < nq; ++q) {
    const size_t qn = corpus.queries[q].size() / dim;
    const QueryI8 qi = quantize_query ? QuantizeQueryI8(corpus.queries[q].data(), qn, dim) : QueryI8{};
    std::vector<std::pair<float, uint32_t>> scores(nd);
    for (size_t d = 0; d < nd; ++d) {
      const size_t n = corpus.docs[d].size() / dim;
      const float score = quantize_query ? ChamferPackedI8(qi, packed[d].data(), n)
                                         : ChamferPackedF32(corpus.queries[q].data(), qn, dequantized[d].data(),
                                                            PackedColumns(n), dim);
      scores[d] = {-score, static_cast<uint32_t>(d)};
    }
    const size_t kk = std::min(k, nd);
    std::partial_sort(scores.begin(), scores.begin() + kk, scores.end());
    for (size_t i = 0; i < kk; ++i) out[q].push_back(scores[i].second);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (seconds_per_query) *seconds_per_query = secs * omp_get_max_threads() / nq;
  return out;
}

}  // namespace chamferdb::bench
