// chamferdb_bench: end-to-end benchmark driver. In one run on one machine it starts the
// real server (the binary given by --server-bin) on a free loopback port, then for each
// configuration creates a collection, ingests the corpus over gRPC, and measures recall@10
// and recall@100 against exact Chamfer, single-client latency percentiles, QPS with 2 and 8
// concurrent clients, ingest docs/s, memory and disk per document. The "exact" row is
// brute-force Chamfer over every document with the same kernel the server reranks with
// (per query, one core). Writes a JSON file, prints a table and, with --plot, draws
// recall@10 against p50 latency (bench/plot_results.py, Debian's python3-matplotlib).
//
//   chamferdb_bench --server-bin build/server/chamferdb --docs 100000 --out bench/results.json
//   chamferdb_bench --smoke   (tiny sizes; the CTest smoke test)
// --configs a,b,c runs only the named configurations; --tokens N fixes every document at N
// tokens (the targets use 32); --qps-queries bounds the queries of each QPS run.
// --stream never holds the float corpus (1M × 32 × 128 floats = 16 GB): documents are
// regenerated batch by batch from a CorpusStream in the ingest threads, the exact ground
// truth is streamed too, and the brute-force int8 rows (which need the whole corpus) are
// skipped. --lock FILE takes flock(FILE) only around each configuration's latency/QPS
// measurements, so a long ingest does not hold the shared benchmark lock.
// --fde-ceiling D (with --stream) measures, before any configuration, the recall of an exact
// rerank of the top-N documents by uncompressed FDE inner product (d_final D, the server's
// default FDE parameters and seed, int8-dequantized tokens as an INT8 collection encodes):
// the ceiling of any ANN index over that FDE, for N from 100 to 32000.
// --truth-late computes (or reads from --cache) the exact ground truth only when the first
// measurement needs it, after the first ingest: a separate `--configs none` run can fill the
// cache meanwhile. --grid measures ef / nprobe with every candidate count, not just the first.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/corpus.h"
#include "encoders/muvera_fde.h"
#include "kernels/chamfer/dot.h"
#include "kernels/int8/quantize.h"
#include "chamferdb/v1/collections.grpc.pb.h"
#include "chamferdb/v1/documents.grpc.pb.h"
#include "chamferdb/v1/search.grpc.pb.h"

namespace chamferdb::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = ::chamferdb::v1;

struct Config {
  std::string name;
  v1::IndexKind index = v1::FLAT;
  uint32_t d_final = 0;
  v1::TokenStorageKind storage = v1::FLOAT32;
  std::vector<uint32_t> candidates;  // sweep
  std::vector<uint32_t> ef;          // HNSW sweep (with candidates[0])
  std::vector<uint32_t> nprobe;      // IVF sweep (with candidates[0])
  float merge_tau = 0;               // query ball carving before the rerank (0 = off)
  uint32_t pq_m = 0;                 // IVF_PQ sub-quantizers (0 = server default)
  // IVF_PQ refine stage (docs/fde-quality.md): refine storage, the collection's default
  // nprobe (0 = server default), refine_candidates = refine_factor x candidates for the
  // candidates and nprobe sweeps, and a sweep of refine_candidates (with candidates[0]).
  v1::RefineStorageKind refine = v1::REFINE_NONE;
  uint32_t ivf_nprobe = 0;
  uint32_t refine_factor = 0;
  std::vector<uint32_t> refine_candidates;
  // Rescore storage (CollectionConfig.rescore_storage): the best hits re-scored from a more
  // precise copy on disk (TOKEN_STORAGE_UNSPECIFIED = none). The driver asks for k = 100
  // (recall@100) and rescores exactly those 100 (the server's default would be 400); a k = 10
  // search rescores 40 by default, so the latency here is conservative.
  v1::TokenStorageKind rescore = v1::TOKEN_STORAGE_UNSPECIFIED;
  uint32_t rescore_candidates = 100;
};

struct Point {
  std::string config, knob;
  double recall10 = 0, recall100 = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, qps2 = 0, qps8 = 0;
  double rerank_tokens = 0;  // mean query tokens the rerank scored (ball carving)
  double index_ms = 0, rerank_ms = 0, rescore_ms = 0;  // server-side means (SearchStats), single client
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// VmRSS (or, with field "VmHWM:", the peak RSS) of a process, from /proc.
uint64_t RssBytes(pid_t pid, const std::string& field = "VmRSS:") {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(field.size())) * 1024;
  }
  return 0;
}

// The documents to ingest and the queries: an in-memory Corpus, or a CorpusStream whose
// documents are generated on demand (in the ingest threads, a batch at a time).
struct Workload {
  size_t documents = 0, dim = 0;
  const std::vector<std::vector<float>>* queries = nullptr;
  // Document i < documents (n × dim, row-major); may use *scratch for the storage.
  std::function<const std::vector<float>&(size_t i, std::vector<float>* scratch)> document;
};

// flock(path) for a scope (nothing when path is empty): the shared benchmark lock.
class ScopedFileLock {
 public:
  explicit ScopedFileLock(const std::string& path) {
    if (path.empty()) return;
    fd_ = open(path.c_str(), O_RDWR | O_CREAT, 0666);
    if (fd_ >= 0 && flock(fd_, LOCK_EX) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~ScopedFileLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }
  ScopedFileLock(const ScopedFileLock&) = delete;
  ScopedFileLock& operator=(const ScopedFileLock&) = delete;

 private:
  int fd_ = -1;
};

// utime + stime of a process in seconds (/proc/PID/stat fields 14 and 15).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i >= 14) ticks += std::stod(f);
  }
  return ticks / sysconf(_SC_CLK_TCK);
}

int FreePort() {
  // Bind-and-release through gRPC is awkward; use a random high port and retry on failure.
  return 20000 + static_cast<int>((getpid() * 7919 + time(nullptr)) % 20000);
}

class Bench {
 public:
  using Truth = std::vector<std::vector<uint32_t>>;
  // truth100() returns the exact top-100 ids per query; called before each measurement.
  Bench(const Workload& work, std::function<const Truth&()> truth100, size_t qps_queries, std::string lock_path)
      : work_(work), truth_(std::move(truth100)), qps_queries_(qps_queries), lock_path_(std::move(lock_path)) {}

  pid_t server_pid() const { return pid_; }
  void set_grid(bool grid) { grid_ = grid; }
  void set_ingest_only(bool ingest_only) { ingest_only_ = ingest_only; }

  bool StartServer(const std::string& bin) {
    data_dir_ = std::filesystem::temp_directory_path() / ("chamferdb-bench-" + std::to_string(getpid()));
    std::filesystem::remove_all(data_dir_);
    port_ = FreePort();
    address_ = "127.0.0.1:" + std::to_string(port_);
    pid_ = fork();
    if (pid_ == 0) {
      const std::string log = data_dir_.string() + ".log";
      freopen(log.c_str(), "w", stdout);
      freopen(log.c_str(), "a", stderr);
      execl(bin.c_str(), bin.c_str(), "--listen", address_.c_str(), "--data-dir", data_dir_.c_str(), "--max-message-mb",
            "256", nullptr);
      _exit(127);
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetMaxSendMessageSize(256 << 20);
    channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
    return channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(60));
  }

  void StopServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(data_dir_);
  }

  nlohmann::json Run(const Config& cfg, std::vector<Point>* points) {
    auto colls = v1::Collections::NewStub(channel_);
    auto docs = v1::Documents::NewStub(channel_);
    nlohmann::json row;
    row["config"] = cfg.name;
    const uint64_t rss0 = RssBytes(pid_);
    {
      grpc::ClientContext ctx;
      v1::CreateCollectionRequest req;
      v1::CreateCollectionResponse resp;
      auto* c = req.mutable_config();
      c->set_name(cfg.name);
      c->set_dim(static_cast<uint32_t>(work_.dim));
      c->mutable_fde()->set_d_final(cfg.d_final);
      c->mutable_index()->set_kind(cfg.index);
      if (cfg.index == v1::HNSW) c->mutable_index()->set_hnsw_ef_construction(100);
      if (cfg.index == v1::IVF_PQ) {
        const uint32_t nlist = std::max<uint32_t>(16, static_cast<uint32_t>(std::sqrt(work_.documents)));
        c->mutable_index()->set_ivf_nlist(nlist);
        c->mutable_index()->set_ivf_train_threshold(std::min<uint32_t>(static_cast<uint32_t>(work_.documents), 40 * nlist));
        if (cfg.pq_m) c->mutable_index()->set_pq_m(cfg.pq_m);
        c->mutable_index()->set_refine_storage(cfg.refine);
        c->mutable_index()->set_ivf_nprobe(cfg.ivf_nprobe);
      }
      c->set_token_storage(cfg.storage);
      c->set_rescore_storage(cfg.rescore);
      grpc::Status s = colls->Create(&ctx, req, &resp);
      if (!s.ok()) {
        row["error"] = s.error_message();
        return row;
      }
    }
    // Ingest in batches of 256 from 2 concurrent client threads (each generates its own
    // batch when the workload is streamed).
    const size_t nd = work_.documents;
    const auto t0 = Clock::now();
    const double server_cpu0 = CpuSeconds(pid_), client_cpu0 = CpuSeconds(getpid());
    std::atomic<size_t> next{0}, done{0};
    std::atomic<bool> failed{false};
    const size_t progress_every = nd >= 200000 ? 50000 : 0;
    auto ingest = [&] {
      std::vector<float> scratch;
      for (;;) {
        const size_t begin = next.fetch_add(256);
        if (begin >= nd) return;
        v1::UpsertRequest req;
        req.set_collection(cfg.name);
        const size_t end = std::min(begin + 256, nd);
        for (size_t i = begin; i < end; ++i) {
          const std::vector<float>& tokens = work_.document(i, &scratch);
          auto* d = req.add_documents();
          d->set_id("d" + std::to_string(i));
          d->set_num_tokens(static_cast<uint32_t>(tokens.size() / work_.dim));
          d->set_vectors(reinterpret_cast<const char*>(tokens.data()), tokens.size() * 4);
        }
        grpc::ClientContext ctx;
        v1::UpsertResponse resp;
        if (!docs->Upsert(&ctx, req, &resp).ok()) failed = true;
        const size_t before = done.fetch_add(end - begin);
        if (progress_every && (before + end - begin) / progress_every != before / progress_every) {
          const double s = std::chrono::duration<double>(Clock::now() - t0).count();
          std::fprintf(stderr, "  %s: %zu documents in %.0f s (%.0f docs/s), server RSS %.0f MB\n", cfg.name.c_str(),
                       before + end - begin, s, (before + end - begin) / s, RssBytes(pid_) / 1e6);
        }
      }
    };
    std::thread a(ingest), b(ingest);
    a.join();
    b.join();
    const double ingest_s = std::chrono::duration<double>(Clock::now() - t0).count();
    row["ingest_docs_per_s"] = nd / ingest_s;
    row["ingest_server_cpu_us_per_doc"] = (CpuSeconds(pid_) - server_cpu0) * 1e6 / nd;
    row["ingest_client_cpu_us_per_doc"] = (CpuSeconds(getpid()) - client_cpu0) * 1e6 / nd;
    row["ingest_seconds"] = ingest_s;
    if (failed) row["error"] = "ingest failed";
    {
      grpc::ClientContext ctx;
      v1::GetCollectionRequest req;
      req.set_name(cfg.name);
      v1::GetCollectionResponse resp;
      colls->Get(&ctx, req, &resp);
      const auto& st = resp.collection().stats();
      row["bytes_on_disk_per_doc"] = double(st.bytes_on_disk()) / nd;
      row["bytes_in_memory_per_doc"] = double(st.bytes_in_memory()) / nd;
      row["bytes_on_disk"] = st.bytes_on_disk();
      row["bytes_in_memory"] = st.bytes_in_memory();
      row["fde_dim"] = st.fde_dim();
      row["index_state"] = v1::IndexState_Name(st.index_state());
    }
    const uint64_t rss1 = RssBytes(pid_);
    row["rss_bytes"] = rss1;
    row["rss_delta_per_doc"] = double(rss1 - std::min(rss0, rss1)) / nd;
    row["storage"] = v1::TokenStorageKind_Name(cfg.storage);
    row["query_merge_tau"] = cfg.merge_tau;
    // Sweeps.
    std::vector<std::pair<std::string, v1::SearchRequest>> knobs;
    auto base = [&](uint32_t cand) {
      v1::SearchRequest r;
      r.set_collection(cfg.name);
      r.set_k(100);
      r.set_candidates(cand);
      r.set_query_merge_tau(cfg.merge_tau);
      r.set_refine_candidates(cfg.refine_factor * cand);
      if (cfg.rescore != v1::TOKEN_STORAGE_UNSPECIFIED) r.set_rescore_candidates(std::min(cfg.rescore_candidates, cand));
      return r;
    };
    // --grid with a refine sweep: every (candidates, nprobe, refine_candidates) triple with
    // refine_candidates >= candidates (nprobe: the collection's default when none is swept).
    const bool refine_grid = grid_ && !cfg.refine_candidates.empty();
    if (refine_grid) {
      const std::vector<uint32_t> nprobes = cfg.nprobe.empty() ? std::vector<uint32_t>{0} : cfg.nprobe;
      for (uint32_t cand : cfg.candidates) {
        for (uint32_t np : nprobes) {
          for (uint32_t rc : cfg.refine_candidates) {
            if (rc < cand) continue;
            auto r = base(cand);
            r.set_nprobe(np);
            r.set_refine_candidates(rc);
            knobs.push_back({"c=" + std::to_string(cand) + ",np=" + std::to_string(np) + ",refine=" + std::to_string(rc), r});
          }
        }
      }
    }
    for (uint32_t cand : cfg.candidates) {
      if (!refine_grid) knobs.push_back({"candidates=" + std::to_string(cand), base(cand)});
    }
    // ef / nprobe with the first candidate count, or with every one (--grid).
    const std::vector<uint32_t> with(cfg.candidates.begin(), grid_ ? cfg.candidates.end() : cfg.candidates.begin() + 1);
    for (uint32_t cand : refine_grid ? std::vector<uint32_t>{} : with) {
      for (uint32_t ef : cfg.ef) {
        auto r = base(cand);
        r.set_ef_search(ef);
        knobs.push_back({"candidates=" + std::to_string(cand) + ",ef=" + std::to_string(ef), r});
      }
      for (uint32_t np : cfg.nprobe) {
        auto r = base(cand);
        r.set_nprobe(np);
        knobs.push_back({"candidates=" + std::to_string(cand) + ",nprobe=" + std::to_string(np), r});
      }
    }
    // The ground truth (with --truth-late possibly computed only now) before the lock, so
    // that a cache miss does not hold off others' timed runs.
    if (!ingest_only_) truth_();
    // The timed part: under the shared benchmark lock when one is given.
    ScopedFileLock lock(lock_path_);
    {
      double load[3] = {0, 0, 0};
      if (getloadavg(load, 3) == 3) row["load_average_measure_start"] = {load[0], load[1], load[2]};
    }
    for (uint32_t rc : refine_grid ? std::vector<uint32_t>{} : cfg.refine_candidates) {
      auto r = base(cfg.candidates[0]);
      r.set_refine_candidates(rc);
      knobs.push_back({"candidates=" + std::to_string(cfg.candidates[0]) + ",refine=" + std::to_string(rc), r});
    }
    if (ingest_only_) knobs.clear();
    for (auto& [knob, req] : knobs) {
      Point p = Measure(cfg.name, knob, req);
      points->push_back(p);
      row["sweep"].push_back({{"knob", knob}, {"recall@10", p.recall10}, {"recall@100", p.recall100}, {"p50_ms", p.p50_ms},
                              {"p95_ms", p.p95_ms}, {"p99_ms", p.p99_ms}, {"qps_2_clients", p.qps2}, {"qps_8_clients", p.qps8},
                              {"rerank_query_tokens", p.rerank_tokens}, {"server_index_ms", p.index_ms},
                              {"server_rerank_ms", p.rerank_ms}, {"server_rescore_ms", p.rescore_ms}});
    }
    {
      double load[3] = {0, 0, 0};
      if (getloadavg(load, 3) == 3) row["load_average_measure_end"] = {load[0], load[1], load[2]};
    }
    row["rss_peak_bytes"] = RssBytes(pid_, "VmHWM:");
    {
      grpc::ClientContext ctx;
      v1::DropCollectionRequest req;
      req.set_name(cfg.name);
      v1::DropCollectionResponse resp;
      colls->Drop(&ctx, req, &resp);
    }
    return row;
  }

 private:
  Point Measure(const std::string& config, const std::string& knob, v1::SearchRequest req) {
    auto search = v1::Search::NewStub(channel_);
    Point p;
    p.config = config;
    p.knob = knob;
    const auto& queries = *work_.queries;
    const size_t nq = queries.size();
    const Truth& all_truth = truth_();
    std::vector<double> lat;
    double hits10 = 0, hits100 = 0;
    for (size_t q = 0; q < nq; ++q) {
      req.mutable_query()->set_num_tokens(static_cast<uint32_t>(queries[q].size() / work_.dim));
      req.mutable_query()->set_vectors(reinterpret_cast<const char*>(queries[q].data()), queries[q].size() * 4);
      grpc::ClientContext ctx;
      v1::SearchResponse resp;
      const auto t = Clock::now();
      if (!search->Search(&ctx, req, &resp).ok()) continue;
      lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      p.rerank_tokens += resp.stats().rerank_query_tokens() / double(nq);
      p.index_ms += resp.stats().index_micros() / 1e3 / double(nq);
      p.rerank_ms += resp.stats().rerank_micros() / 1e3 / double(nq);
      p.rescore_ms += resp.stats().rescore_micros() / 1e3 / double(nq);
      std::vector<uint32_t> got;
      for (const auto& h : resp.hits()) got.push_back(static_cast<uint32_t>(std::stoul(h.id().substr(1))));
      const auto& truth = all_truth[q];
      for (size_t i = 0; i < std::min<size_t>(10, got.size()); ++i)
        hits10 += std::find(truth.begin(), truth.begin() + 10, got[i]) != truth.begin() + 10;
      for (size_t i = 0; i < got.size(); ++i) hits100 += std::find(truth.begin(), truth.end(), got[i]) != truth.end();
    }
    p.recall10 = hits10 / (10.0 * nq);
    p.recall100 = hits100 / (100.0 * nq);
    p.p50_ms = Percentile(lat, 0.5);
    p.p95_ms = Percentile(lat, 0.95);
    p.p99_ms = Percentile(lat, 0.99);
    for (int clients : {2, 8}) {
      std::atomic<size_t> next{0};
      const size_t total = std::max<size_t>(std::min(nq, qps_queries_), 2 * clients);
      const auto t0 = Clock::now();
      std::vector<std::thread> threads;
      for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, req]() mutable {
          auto stub = v1::Search::NewStub(channel_);
          for (size_t i; (i = next.fetch_add(1)) < total;) {
            const auto& qv = queries[i % nq];
            req.mutable_query()->set_num_tokens(static_cast<uint32_t>(qv.size() / work_.dim));
            req.mutable_query()->set_vectors(reinterpret_cast<const char*>(qv.data()), qv.size() * 4);
            grpc::ClientContext ctx;
            v1::SearchResponse resp;
            stub->Search(&ctx, req, &resp);
          }
        });
      }
      for (auto& t : threads) t.join();
      const double qps = total / std::chrono::duration<double>(Clock::now() - t0).count();
      (clients == 2 ? p.qps2 : p.qps8) = qps;
    }
    return p;
  }

  const Workload& work_;
  const std::function<const Truth&()> truth_;
  const size_t qps_queries_;
  const std::string lock_path_;
  bool grid_ = false;
  bool ingest_only_ = false;
  std::filesystem::path data_dir_;
  int port_ = 0;
  std::string address_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
};

// See --fde-ceiling above. Streams the corpus in chunks (OpenMP over documents to encode,
// over queries to score); per query keeps the top max(ns) documents by FDE score.
nlohmann::json FdeCeiling(const CorpusStream& stream, const std::vector<std::vector<uint32_t>>& truth,
                          uint32_t d_final, const std::vector<size_t>& ns) {
  const size_t dim = stream.dim(), nd = stream.size();
  const auto& queries = stream.queries();
  const size_t nq = queries.size();
  FdeConfig cfg;
  cfg.dim = static_cast<uint32_t>(dim);
  cfg.d_proj = std::min<uint32_t>(16, cfg.dim);
  cfg.d_final = d_final;
  auto encoder = MuveraFdeEncoder::Create(cfg);
  if (!encoder.ok()) return {{"error", std::string(encoder.status().message())}};
  const MuveraFdeEncoder& enc = **encoder;
  const size_t fd = enc.output_dim();
  const size_t keep = std::min(nd, *std::max_element(ns.begin(), ns.end()));
  std::vector<float> qfde(nq * fd);
  std::atomic<bool> encode_failed{false};
  for (size_t q = 0; q < nq; ++q) {
    if (!enc.EncodeQuery({queries[q].data(), queries[q].size() / dim, dim}, &qfde[q * fd]).ok()) encode_failed = true;
  }
  // Per query a min-heap of (score, −id) over the best `keep` documents.
  using Entry = std::pair<float, int64_t>;
  std::vector<std::vector<Entry>> heaps(nq);
  const size_t chunk = 4096;
  std::vector<std::vector<float>> docs;
  std::vector<float> fdes(chunk * fd);
  const auto t0 = Clock::now();
  for (size_t begin = 0; begin < nd; begin += chunk) {
    const size_t end = std::min(nd, begin + chunk), count = end - begin;
    stream.Chunk(begin, end, &docs);
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 0; i < count; ++i) {
      const size_t n = docs[i].size() / dim;
      std::vector<int8_t> codes(n * dim);
      std::vector<float> scales(n), x(n * dim);
      int8::QuantizeRows(docs[i].data(), n, dim, codes.data(), scales.data());
      int8::DequantizeRows(codes.data(), scales.data(), n, dim, x.data());
      if (!enc.EncodeDocument({x.data(), n, dim}, &fdes[i * fd]).ok()) encode_failed = true;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t q = 0; q < nq; ++q) {
      std::vector<float> scores(count);
      DotMany(&qfde[q * fd], fdes.data(), count, fd, scores.data());
      auto& heap = heaps[q];
      for (size_t i = 0; i < count; ++i) {
        const Entry e{scores[i], -static_cast<int64_t>(begin + i)};
        if (heap.size() < keep) {
          heap.push_back(e);
          std::push_heap(heap.begin(), heap.end(), std::greater<>());
        } else if (e > heap.front()) {
          std::pop_heap(heap.begin(), heap.end(), std::greater<>());
          heap.back() = e;
          std::push_heap(heap.begin(), heap.end(), std::greater<>());
        }
      }
    }
  }
  nlohmann::json out;
  if (encode_failed) out["error"] = "FDE encoding failed";
  out["d_final"] = d_final;
  out["fde_dim"] = fd;
  out["seconds"] = std::chrono::duration<double>(Clock::now() - t0).count();
  // Rank of each true top-10 / top-100 document in the FDE order: an exact rerank of the
  // top N returns it iff its rank < N.
  std::vector<double> hits10(ns.size()), hits100(ns.size());
  for (size_t q = 0; q < nq; ++q) {
    std::sort_heap(heaps[q].begin(), heaps[q].end(), std::greater<>());  // best first
    std::map<uint32_t, size_t> rank;
    for (size_t r = 0; r < heaps[q].size(); ++r) rank[static_cast<uint32_t>(-heaps[q][r].second)] = r;
    for (size_t t = 0; t < truth[q].size(); ++t) {
      const auto it = rank.find(truth[q][t]);
      for (size_t j = 0; j < ns.size(); ++j) {
        const bool in = it != rank.end() && it->second < ns[j];
        if (t < 10) hits10[j] += in;
        hits100[j] += in;
      }
    }
  }
  for (size_t j = 0; j < ns.size(); ++j) {
    const double r10 = hits10[j] / (10.0 * nq), r100 = hits100[j] / (double(truth[0].size()) * nq);
    out["points"].push_back({{"candidates", ns[j]}, {"recall@10", r10}, {"recall@100", r100}});
    std::fprintf(stderr, "fde ceiling d_final %u: %6zu candidates: recall@10 %.3f recall@100 %.3f\n", d_final, ns[j],
                 r10, r100);
  }
  return out;
}

int Main(int argc, char** argv) {
  CorpusSpec spec;
  std::string server_bin = "build/server/chamferdb", out = "bench/results.json", cache;
  bool smoke = false, stream_mode = false, truth_late = false, grid = false, ingest_only = false;
  std::vector<uint32_t> fde_ceiling;
  std::string only, plot, lock_path;
  size_t qps_queries = 1000;
  std::vector<uint32_t> candidates_override, knob_override, refine_override;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--smoke") smoke = true;
    else if (a == "--ingest-only") ingest_only = true;  // no ground truth, no searches
    else if (a == "--docs") spec.documents = std::stoul(next());
    else if (a == "--queries") spec.queries = std::stoul(next());
    else if (a == "--dim") spec.dim = std::stoul(next());
    else if (a == "--seed") spec.seed = std::stoull(next());
    else if (a == "--server-bin") server_bin = next();
    else if (a == "--out") out = next();
    else if (a == "--cache") cache = next();
    else if (a == "--only" || a == "--configs") only = next();
    else if (a == "--plot") plot = next();
    else if (a == "--candidates" || a == "--knobs" || a == "--refine") {
      // Comma-separated sweep replacing every selected configuration's candidates (or its
      // ef / nprobe sweep, for --knobs; its refine_candidates sweep, for --refine, which only
      // configurations with refine storage have).
      auto& dst = a == "--candidates" ? candidates_override : a == "--knobs" ? knob_override : refine_override;
      std::string list = next();
      for (size_t pos = 0; pos < list.size();) {
        const size_t comma = std::min(list.find(',', pos), list.size());
        dst.push_back(static_cast<uint32_t>(std::stoul(list.substr(pos, comma - pos))));
        pos = comma + 1;
      }
    }
    else if (a == "--qps-queries") qps_queries = std::stoul(next());
    else if (a == "--stream") stream_mode = true;
    else if (a == "--truth-late") truth_late = true;
    else if (a == "--grid") grid = true;
    else if (a == "--lock") lock_path = next();
    else if (a == "--fde-ceiling") fde_ceiling.push_back(static_cast<uint32_t>(std::stoul(next())));
    else if (a == "--tokens") spec.min_tokens = spec.max_tokens = std::stoul(next());
    else {
      std::fprintf(stderr, "usage: chamferdb_bench [--smoke] [--docs N] [--queries N] [--dim D] [--seed S] "
                           "[--server-bin PATH] [--out FILE] [--cache FILE] [--configs A,B,..] [--tokens N] "
                           "[--qps-queries N] [--candidates A,B,..] [--knobs EF_OR_NPROBE,..] [--refine R,..] [--plot PNG] "
                           "[--stream] [--lock FILE] [--fde-ceiling D_FINAL] [--truth-late] [--grid] [--ingest-only]\n");
      return 2;
    }
  }
  if (smoke) {
    spec.documents = 400;
    spec.queries = 20;
    spec.dim = 32;
    spec.topics = 40;
    spec.min_tokens = 4;
    spec.max_tokens = 16;
    spec.query_tokens = 8;
  }
  std::fprintf(stderr, "generating %zu documents, %zu queries, dim %zu%s\n", spec.documents, spec.queries, spec.dim,
               stream_mode ? " (streamed)" : "");
  const auto gen0 = Clock::now();
  Corpus corpus;
  std::unique_ptr<CorpusStream> stream;
  Workload work;
  work.documents = spec.documents;
  work.dim = spec.dim;
  if (stream_mode) {
    stream = std::make_unique<CorpusStream>(spec);
    work.queries = &stream->queries();
    work.document = [&stream = *stream](size_t i, std::vector<float>* scratch) -> const std::vector<float>& {
      stream.Document(i, scratch);
      return *scratch;
    };
  } else {
    corpus = MakeCorpus(spec);
    work.queries = &corpus.queries;
    work.document = [&corpus](size_t i, std::vector<float>*) -> const std::vector<float>& { return corpus.docs[i]; };
  }
  const double gen_s = std::chrono::duration<double>(Clock::now() - gen0).count();
  std::fprintf(stderr, "generated in %.1f s\n", gen_s);
  double exact_s = 0, truth_s = 0;
  std::vector<std::vector<uint32_t>> truth;
  auto get_truth = [&]() -> const std::vector<std::vector<uint32_t>>& {
    if (!truth.empty()) return truth;
    const auto truth_t0 = Clock::now();
    const size_t k_truth = 100 < spec.documents ? 100 : spec.documents;
    truth = stream_mode ? ExactTopKStreamed(*stream, k_truth, cache, &exact_s)
                        : ExactTopK(corpus, k_truth, cache, &exact_s);
    truth_s = std::chrono::duration<double>(Clock::now() - truth_t0).count();
    std::fprintf(stderr, "exact ground truth in %.1f s (%.0f ms per query on one core)\n", truth_s, exact_s * 1000);
    return truth;
  };
  if (!ingest_only && (!truth_late || !stream_mode)) get_truth();
  // Exact search with int8 tokens: how much of any INT8 recall change is the scoring itself
  // (needs the whole corpus in memory: skipped when streamed).
  double exact_i8_s = 0, exact_i8_r10 = 0, exact_i8doc_s = 0, exact_i8doc_r10 = 0;
  for (bool quantize_query : {true, false}) {
    if (stream_mode || ingest_only) break;
    double& secs = quantize_query ? exact_i8_s : exact_i8doc_s;
    double& r10 = quantize_query ? exact_i8_r10 : exact_i8doc_r10;
    const auto truth_i8 = ExactTopKInt8(corpus, 10, quantize_query, &secs);
    for (size_t q = 0; q < truth_i8.size(); ++q) {
      const auto end10 = truth[q].begin() + std::min<size_t>(10, truth[q].size());
      for (uint32_t id : truth_i8[q]) r10 += std::find(truth[q].begin(), end10, id) != end10;
    }
    r10 /= 10.0 * truth_i8.size();
  }
  std::vector<Config> configs = {
      {.name = "flat", .index = v1::FLAT, .candidates = {50, 100, 200, 500}},
      {.name = "flat_f16", .index = v1::FLAT, .storage = v1::FLOAT16, .candidates = {200}},
      {.name = "flat_i8", .index = v1::FLAT, .storage = v1::INT8, .candidates = {100, 200, 500}},
      {.name = "flat_carve", .index = v1::FLAT, .candidates = {100, 200, 500}, .merge_tau = 0.7f},
      {.name = "flat_i8_carve", .index = v1::FLAT, .storage = v1::INT8, .candidates = {200, 500}, .merge_tau = 0.7f},
      // INT8 tokens in memory, FLOAT16 copies on disk for the final rescore of the best hits.
      {.name = "flat_i8_rescore", .index = v1::FLAT, .storage = v1::INT8, .candidates = {100, 200, 500},
       .rescore = v1::FLOAT16},
      {.name = "flat_dfinal2048", .index = v1::FLAT, .d_final = 2048, .candidates = {100, 200, 500}},
      {.name = "flat_i8_dfinal2048", .index = v1::FLAT, .d_final = 2048, .storage = v1::INT8, .candidates = {100, 200, 500}},
      // Graph and PQ indexes over 10240-dim vectors are costly to build (HNSW distance
      // computations, 1280 PQ sub-quantizers): like the paper's compressed FDEs, they run
      // on the final projection to 2048 dims.
      {.name = "hnsw_dfinal2048", .index = v1::HNSW, .d_final = 2048, .candidates = {200}, .ef = {64, 128, 256, 512}},
      {.name = "ivfpq_dfinal2048", .index = v1::IVF_PQ, .d_final = 2048, .candidates = {200}, .nprobe = {8, 32, 64}},
      {.name = "hnsw_i8_dfinal2048", .index = v1::HNSW, .d_final = 2048, .storage = v1::INT8, .candidates = {500, 1000}, .ef = {256, 512}},
      // The 1M-document configuration: int8 tokens and PQ-compressed FDEs (128 bytes/doc).
      {.name = "ivfpq_i8_dfinal2048", .index = v1::IVF_PQ, .d_final = 2048, .storage = v1::INT8, .candidates = {500, 1000}, .nprobe = {32, 64}},
      // Two-stage candidates (docs/fde-quality.md): IVF-PQ neighbours re-scored by the exact
      // int8-stored FDE, the best `candidates` of them reranked by int8 Chamfer.
      {.name = "ivfpq_i8_refine_dfinal2048", .index = v1::IVF_PQ, .d_final = 2048, .storage = v1::INT8,
       .candidates = {1000, 2000}, .nprobe = {32, 64}, .refine = v1::REFINE_INT8, .ivf_nprobe = 32,
       .refine_factor = 4, .refine_candidates = {1000, 2000, 4000, 8000}},
  };
  for (auto& c : configs) {
    if (!candidates_override.empty()) c.candidates = candidates_override;
    if (!knob_override.empty()) {
      if (!c.ef.empty()) c.ef = knob_override;
      if (!c.nprobe.empty()) c.nprobe = knob_override;
    }
    if (!refine_override.empty() && c.refine != v1::REFINE_NONE) c.refine_candidates = refine_override;
  }
  if (smoke) {
    for (auto& c : configs) {
      c.candidates = {100};
      if (!c.ef.empty()) c.ef = {64};
      if (!c.nprobe.empty()) c.nprobe = {8};
      if (!c.refine_candidates.empty()) c.refine_candidates = {400};
      c.ivf_nprobe = 0;
    }
  }
  nlohmann::json ceilings;
  for (uint32_t d_final : fde_ceiling) {
    if (!stream) break;
    ceilings.push_back(FdeCeiling(*stream, get_truth(), d_final, {100, 200, 500, 1000, 2000, 4000, 8000, 16000, 32000}));
  }
  Bench bench(work, get_truth, qps_queries, lock_path);
  bench.set_ingest_only(ingest_only);
  bench.set_grid(grid);
  if (!bench.StartServer(server_bin)) {
    std::fprintf(stderr, "server did not start\n");
    bench.StopServer();
    return 1;
  }
  nlohmann::json results;
  results["corpus"] = {{"documents", spec.documents}, {"queries", spec.queries}, {"dim", spec.dim},
                       {"query_tokens", spec.query_tokens}, {"seed", spec.seed}};
  results["corpus"]["min_tokens"] = spec.min_tokens;
  results["corpus"]["max_tokens"] = spec.max_tokens;
  if (!stream_mode) {
    results["exact_int8"] = {{"recall@10", exact_i8_r10}, {"ms_per_query_one_core", exact_i8_s * 1000}};
    results["exact_int8_docs_float_query"] = {{"recall@10", exact_i8doc_r10},
                                              {"ms_per_query_one_core", exact_i8doc_s * 1000}};
  }
  results["streamed"] = stream_mode;
  if (!ceilings.is_null()) results["fde_ceiling"] = ceilings;
  results["generate_seconds"] = gen_s;
  {
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) == 3) results["load_average_start"] = {load[0], load[1], load[2]};
  }
  std::vector<Point> points;
  bool ok = true;
  for (const auto& c : configs) {
    if (!only.empty() && ("," + only + ",").find("," + c.name + ",") == std::string::npos) continue;
    std::fprintf(stderr, "config %s\n", c.name.c_str());
    auto row = bench.Run(c, &points);
    ok = ok && !row.contains("error");
    results["configs"].push_back(row);
  }
  if (!ingest_only) get_truth();  // when late and no configuration ran
  results["exact"] = {{"recall@10", 1.0}, {"recall@100", 1.0}, {"ms_per_query_one_core", exact_s * 1000}};
  results["ground_truth_seconds"] = truth_s;
  results["server_peak_rss_bytes"] = RssBytes(bench.server_pid(), "VmHWM:");
  bench.StopServer();
  {
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) == 3) results["load_average_end"] = {load[0], load[1], load[2]};
    rusage self{};
    getrusage(RUSAGE_SELF, &self);
    results["driver_peak_rss_bytes"] = uint64_t(self.ru_maxrss) * 1024;
    std::fprintf(stderr, "driver peak RSS %.0f MB, server peak RSS %.0f MB\n", self.ru_maxrss / 1024.0,
                 results["server_peak_rss_bytes"].get<uint64_t>() / 1e6);
  }
  std::ofstream(out) << results.dump(2) << "\n";
  if (!plot.empty()) {
    const std::string script = std::string(CHAMFERDB_SOURCE_DIR) + "/bench/plot_results.py";
    const std::string cmd = "/usr/bin/python3 '" + script + "' '" + out + "' '" + plot + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "plot failed: %s\n", cmd.c_str());
  }
  std::printf("%-20s %-26s %9s %10s %8s %8s %8s %8s %8s\n", "config", "knob", "recall@10", "recall@100", "p50 ms",
              "p99 ms", "qps(2)", "qps(8)", "vs exact");
  if (exact_s > 0)
    std::printf("%-20s %-26s %9.3f %10.3f %8.2f %8s %8s %8s %8s\n", "exact", "brute force, 1 core", 1.0, 1.0,
                exact_s * 1000, "-", "-", "-", "1x");
  if (!stream_mode) {
    std::printf("%-20s %-26s %9.3f %10s %8.2f %8s %8s %8s %7.0fx\n", "exact_int8", "brute force int8, 1 core",
                exact_i8_r10, "-", exact_i8_s * 1000, "-", "-", "-", exact_i8_s > 0 ? exact_s / exact_i8_s : 0.0);
    std::printf("%-20s %-26s %9.3f %10s %8.2f %8s %8s %8s %8s\n", "exact_int8_docs", "int8 docs, f32 query (fp32)",
                exact_i8doc_r10, "-", exact_i8doc_s * 1000, "-", "-", "-", "-");
  }
  for (const auto& p : points) {
    std::printf("%-20s %-26s %9.3f %10.3f %8.2f %8.2f %8.0f %8.0f %7.0fx\n", p.config.c_str(), p.knob.c_str(), p.recall10,
                p.recall100, p.p50_ms, p.p99_ms, p.qps2, p.qps8, exact_s > 0 ? exact_s * 1000 / p.p50_ms : 0.0);
  }
  for (const auto& r : results["configs"]) {
    std::printf("%-20s ingest %.0f docs/s (server CPU %.0f us/doc, client %.0f us/doc), %.0f B/doc in memory, "
                "%.0f B/doc on disk, fde_dim %d, RSS %.0f MB (peak %.0f MB)%s\n",
                r["config"].get<std::string>().c_str(), r.value("ingest_docs_per_s", 0.0),
                r.value("ingest_server_cpu_us_per_doc", 0.0), r.value("ingest_client_cpu_us_per_doc", 0.0),
                r.value("bytes_in_memory_per_doc", 0.0), r.value("bytes_on_disk_per_doc", 0.0), r.value("fde_dim", 0),
                r.value("rss_bytes", 0.0) / 1e6, r.value("rss_peak_bytes", 0.0) / 1e6, r.contains("error") ? (" ERROR " + r["error"].get<std::string>()).c_str() : "");
  }
  if (smoke) {
    // The smoke test checks the driver end to end, with a loose quality floor.
    for (const auto& p : points) {
      if (p.config == "flat" && p.recall10 < 0.5) ok = false;
    }
    // INT8 tokens must not cost recall (the issue: unchanged within 0.005; the smoke corpus
    // is tiny, so allow one miss in 200), and ball carving must merge some query tokens.
    auto find = [&](const std::string& config, const std::string& knob) -> const Point* {
      for (const auto& p : points) {
        if (p.config == config && p.knob == knob) return &p;
      }
      return nullptr;
    };
    const Point* f32 = find("flat", "candidates=100");
    const Point* i8 = find("flat_i8", "candidates=100");
    if (!f32 || !i8 || std::fabs(f32->recall10 - i8->recall10) > 0.0051) ok = false;
    const Point* i8r = find("flat_i8_rescore", "candidates=100");
    if (!i8r || std::fabs(f32->recall10 - i8r->recall10) > 0.0051) ok = false;
    const Point* carve = find("flat_carve", "candidates=100");
    if (!carve || !(carve->rerank_tokens < spec.query_tokens) || carve->recall10 < 0.5) ok = false;
    std::printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace chamferdb::bench

int main(int argc, char** argv) { return chamferdb::bench::Main(argc, argv); }
