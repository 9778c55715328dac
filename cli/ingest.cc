#include "cli/ingest.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include <fmt/format.h>

#include "chamferdb/v1/collections.grpc.pb.h"
#include "chamferdb/v1/documents.grpc.pb.h"
#include "chamferdb/v1/json_records.grpc.pb.h"
#include "cli/checkpoint.h"
#include "cli/source.h"

namespace chamferdb::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_interrupted{false};

extern "C" void OnInterrupt(int) {
  g_interrupted.store(true);
  // A second signal kills the process the default way.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
}

struct PendingDoc {
  uint64_t position = 0;
  std::string location;
  v1::Document doc;       // multi-vector collections
  v1::JsonRecord record;  // JSON collections
};

struct Batch {
  size_t source = 0;  // index into the run's sources
  std::vector<PendingDoc> docs;
};

struct SourceState {
  std::unique_ptr<RecordSource> reader;
  std::string name;                       // as given on the command line
  Checkpoint* checkpoint = nullptr;       // null without checkpointing
  Checkpoint::Source* progress = nullptr;
};

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || seconds > 99 * 3600) return "--:--";
  const auto s = static_cast<uint64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

class Ingester {
 public:
  Ingester(const Connection& connection, const IngestOptions& options)
      : connection_(connection),
        options_(options),
        stub_(v1::Documents::NewStub(connection.channel())),
        json_stub_(v1::JsonRecords::NewStub(connection.channel())) {}

  int Run();

 private:
  absl::Status OpenSources(const v1::CollectionInfo& info);
  // One Upsert of `batch` (with retries).
  grpc::Status Upsert(const Batch& batch);
  void Produce();
  void Work();
  void Send(Batch batch);
  void Progress();
  void PrintProgress(bool final_line);

  // Counting and checkpointing; all take mu_.
  void Acknowledge(const Batch& batch);
  void Reject(size_t source, uint64_t position, const std::string& location, const std::string& reason,
              bool from_server);
  void Fail(const std::string& message);
  void SaveCheckpoint(size_t source);  // REQUIRES: mu_ held

  bool Stopping() const { return stop_.load() || g_interrupted.load(); }

  const Connection& connection_;
  const IngestOptions& options_;
  std::unique_ptr<v1::Documents::Stub> stub_;
  std::unique_ptr<v1::JsonRecords::Stub> json_stub_;
  std::string format_;    // jsonl | npy | json-records, resolved against the collection's kind
  std::string id_field_;  // json-records: the field the server takes ids from
  std::vector<SourceState> sources_;
  std::map<std::string, std::unique_ptr<Checkpoint>> checkpoints_;  // by path
  Clock::time_point start_ = Clock::now();

  std::atomic<bool> stop_{false};  // abort or fatal error: send nothing new
  std::atomic<uint64_t> sent_{0};  // distinct documents transmitted
  std::atomic<uint64_t> retries_{0};

  std::mutex mu_;  // protects everything below, and stderr lines
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  bool producer_done_ = false;
  bool progress_done_ = false;
  uint64_t acknowledged_ = 0;
  uint64_t batches_ = 0;  // acknowledged Upsert calls
  uint64_t rejected_ = 0;
  uint64_t resumed_ = 0;  // records skipped because the checkpoint had them
  uint64_t total_ = 0;    // records this run is expected to handle
  std::optional<std::string> fatal_;
  bool aborted_ = false;
  bool max_docs_reached_ = false;
  bool progress_line_open_ = false;  // a \r progress bar is on screen
};

absl::Status Ingester::OpenSources(const v1::CollectionInfo& info) {
  ParseOptions parse;
  parse.expected_dim = info.config().dim();
  JsonRecordSourceOptions json_options;
  if (format_ == "json-records") {
    absl::StatusOr<JsonRecordLimits> limits = JsonLimitsFromMbatConfig(info.config().json().mbat_config_json());
    if (!limits.ok()) return limits.status();
    json_options.limits = *limits;
    json_options.id_field = id_field_;
  }
  auto add = [&](absl::StatusOr<std::unique_ptr<RecordSource>> reader, const std::string& name) -> absl::Status {
    if (!reader.ok()) return reader.status();
    sources_.push_back(SourceState{*std::move(reader), name});
    return absl::OkStatus();
  };
  if (format_ == "npy") {
    if (absl::Status s = add(OpenNpySource(options_.npy_vectors, options_.npy_offsets, options_.npy_ids, parse),
                             options_.npy_vectors);
        !s.ok()) {
      return s;
    }
  } else {
    for (const auto& f : options_.files) {
      if (absl::Status s = add(format_ == "json-records" ? OpenJsonRecordsSource(f, json_options)
                                                         : OpenJsonlSource(f, parse),
                               f);
          !s.ok()) {
        return s;
      }
    }
  }
  for (auto& src : sources_) {
    absl::StatusOr<uint64_t> n = src.reader->CountRecords();
    if (!n.ok()) return n.status();
    total_ += *n;
    if (!options_.write_checkpoint) continue;
    const std::string path = options_.checkpoint.empty() ? src.name + ".chamferdb-checkpoint" : options_.checkpoint;
    auto& cp = checkpoints_[path];
    if (cp == nullptr) {
      if (options_.resume) {
        absl::StatusOr<Checkpoint> loaded = Checkpoint::Load(path, options_.collection);
        if (loaded.ok()) {
          cp = std::make_unique<Checkpoint>(*std::move(loaded));
        } else if (absl::IsNotFound(loaded.status())) {
          fmt::print(stderr, "note: no checkpoint at {}; starting from the beginning\n", path);
        } else {
          return loaded.status();
        }
      }
      if (cp == nullptr) cp = std::make_unique<Checkpoint>(path, options_.collection);
    }
    absl::StatusOr<Checkpoint::Source*> progress = cp->Attach(src.reader->key(), src.reader->fingerprint());
    if (!progress.ok()) return progress.status();
    src.checkpoint = cp.get();
    src.progress = *progress;
    resumed_ += src.progress->done.Count();
    // A copy: workers add to the live set (under mu_) while the reader consults this one.
    src.reader->set_skip([done = src.progress->done](uint64_t position) { return done.Contains(position); });
  }
  total_ -= std::min(total_, resumed_);
  // Fail now, not after the first batch, if the checkpoint cannot be written.
  for (auto& [path, cp] : checkpoints_) {
    if (absl::Status s = cp->Save(); !s.ok()) {
      return absl::Status(s.code(), std::string(s.message()) + " (choose another place with --checkpoint PATH)");
    }
  }
  return absl::OkStatus();
}

int Ingester::Run() {
  absl::StatusOr<v1::CollectionInfo> info = GetCollectionInfo(connection_, options_.collection, options_.retry);
  if (!info.ok()) {
    fmt::print(stderr, "error: {}\n", std::string(info.status().message()));
    return 1;
  }
  const bool json_collection = info->config().kind() == v1::JSON;
  format_ = options_.format.empty() ? (json_collection ? "json-records" : "jsonl") : options_.format;
  if (json_collection != (format_ == "json-records")) {
    fmt::print(stderr, "error: collection {:?} holds {}; use --format {}\n", options_.collection,
               json_collection ? "JSON records" : "multi-vector documents",
               json_collection ? "json-records" : "jsonl or --format npy");
    return 1;
  }
  if (!json_collection && !options_.id_field.empty()) {
    fmt::print(stderr, "error: --id-field applies to JSON collections only\n");
    return 1;
  }
  id_field_ = options_.id_field.empty() ? info->config().json().id_field() : options_.id_field;
  if (id_field_.empty()) id_field_ = "id";
  if (absl::Status s = OpenSources(*info); !s.ok()) {
    fmt::print(stderr, "error: {}\n", std::string(s.message()));
    return 1;
  }
  if (resumed_ > 0) fmt::print(stderr, "resuming: {} records already done according to the checkpoint\n", resumed_);

  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  start_ = Clock::now();
  std::thread progress([this] { Progress(); });
  std::vector<std::thread> workers;
  for (uint32_t i = 0; i < options_.parallel; ++i) workers.emplace_back([this] { Work(); });
  Produce();
  for (auto& w : workers) w.join();
  {
    std::lock_guard lock(mu_);
    progress_done_ = true;
  }
  cv_.notify_all();
  progress.join();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  std::lock_guard lock(mu_);
  PrintProgress(true);
  fmt::print(stderr,
             "summary: sent={} acknowledged={} rejected={} resumed_skip={} retries={} batches={} elapsed={:.2f}s "
             "rate={:.1f} docs/s\n",
             sent_.load(), acknowledged_, rejected_, resumed_, retries_.load(), batches_, elapsed,
             elapsed > 0 ? acknowledged_ / elapsed : 0.0);
  if (fatal_) {
    fmt::print(stderr, "error: {}\n", *fatal_);
    return 1;
  }
  if (g_interrupted.load()) {
    fmt::print(stderr, "interrupted; run again with --resume to continue\n");
    return 130;
  }
  if (aborted_) {
    fmt::print(stderr, "stopped at the first rejected record (--on-error abort)\n");
    return 1;
  }
  if (max_docs_reached_) fmt::print(stderr, "stopped after --max-docs {}; run again with --resume to continue\n", options_.max_docs);
  return rejected_ == 0 ? 0 : 1;
}

void Ingester::Produce() {
  uint64_t queued = 0;
  auto push = [&](Batch&& batch) {
    if (batch.docs.empty()) return;
    std::unique_lock lock(mu_);
    // Bounded queue: reading stays at most a few batches ahead of the network.
    // Timed waits: a signal handler cannot notify the condition variable.
    while (!cv_.wait_for(lock, std::chrono::milliseconds(50),
                         [&] { return queue_.size() < 2 * options_.parallel || Stopping(); })) {
    }
    if (Stopping()) return;
    queue_.push_back(std::move(batch));
    cv_.notify_all();
  };
  bool aborted_by_reader = false;
  for (size_t s = 0; s < sources_.size() && !Stopping(); ++s) {
    Batch batch{s, {}};
    std::unordered_set<std::string> ids_in_batch;
    size_t batch_bytes = 0;
    SourceItem item;
    while (!Stopping()) {
      if (options_.max_docs > 0 && queued >= options_.max_docs) {
        std::lock_guard lock(mu_);
        max_docs_reached_ = true;
        break;
      }
      absl::StatusOr<bool> more = sources_[s].reader->Next(&item);
      if (!more.ok()) {
        Fail(std::string(more.status().message()));
        break;
      }
      if (!*more) break;
      if (!item.problem.ok()) {
        Reject(s, item.position, item.location, std::string(item.problem.message()), /*from_server=*/false);
        if (options_.abort_on_error) {
          aborted_by_reader = true;
          break;
        }
        continue;
      }
      // The server refuses a batch naming one id twice; start a new batch instead.
      if (!ids_in_batch.insert(item.doc.id).second) {
        push(std::move(batch));
        batch = Batch{s, {}};
        ids_in_batch = {item.doc.id};
        batch_bytes = 0;
      }
      PendingDoc pending;
      pending.position = item.position;
      pending.location = std::move(item.location);
      size_t doc_bytes = 0;
      if (format_ == "json-records") {
        // The id stays implicit: the server takes it from the request's id_field exactly as
        // JsonRecordId did here (which keeps one id out of a batch twice).
        pending.record.set_json(std::move(item.json));
        doc_bytes = pending.record.ByteSizeLong() + item.doc.id.size();
      } else {
        pending.doc.set_id(item.doc.id);
        pending.doc.set_num_tokens(item.doc.num_tokens);
        pending.doc.set_vectors(reinterpret_cast<const char*>(item.doc.vectors.data()),
                                item.doc.vectors.size() * sizeof(float));
        pending.doc.set_metadata_json(std::move(item.doc.metadata_json));
        doc_bytes = pending.doc.ByteSizeLong();
      }
      // Keep each request under the byte cap (the server refuses messages over its
      // --max-message-mb); a single larger document still goes alone.
      if (!batch.docs.empty() && batch_bytes + doc_bytes > options_.max_batch_bytes) {
        push(std::move(batch));
        batch = Batch{s, {}};
        ids_in_batch = {item.doc.id};
        batch_bytes = 0;
      }
      batch_bytes += doc_bytes;
      batch.docs.push_back(std::move(pending));
      ++queued;
      if (batch.docs.size() >= options_.batch_size) {
        push(std::move(batch));
        batch = Batch{s, {}};
        ids_in_batch.clear();
        batch_bytes = 0;
      }
    }
    // The last partial batch goes out unless something stopped the run; an abort on a bad
    // record read here still sends everything read before it.
    push(std::move(batch));
    if (aborted_by_reader) break;
  }
  std::lock_guard lock(mu_);
  producer_done_ = true;
  cv_.notify_all();
}

void Ingester::Work() {
  while (true) {
    Batch batch;
    {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, std::chrono::milliseconds(50),
                           [&] { return !queue_.empty() || producer_done_ || fatal_ || g_interrupted.load(); })) {
      }
      if (fatal_ || g_interrupted.load() || queue_.empty()) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
      cv_.notify_all();
    }
    Send(std::move(batch));
  }
}

int64_t RejectedIndexChecked(int64_t i, size_t batch_size) {
  return i >= 0 && static_cast<size_t>(i) < batch_size ? i : -1;
}

grpc::Status Ingester::Upsert(const Batch& batch) {
  const std::atomic<bool>* no_stop = nullptr;  // a batch in flight is finished, even on Ctrl-C
  auto on_retry = [&](const grpc::Status& s, int attempt, std::chrono::milliseconds delay) {
    std::lock_guard lock(mu_);
    if (progress_line_open_) fmt::print(stderr, "\n");
    progress_line_open_ = false;
    fmt::print(stderr, "retry: {} (attempt {} of {}, next in {} ms)\n", StatusText(s), attempt,
               options_.retry.max_attempts, delay.count());
  };
  if (format_ != "json-records") {
    v1::UpsertRequest req;
    req.set_collection(options_.collection);
    for (const auto& d : batch.docs) *req.add_documents() = d.doc;
    v1::UpsertResponse resp;
    return connection_.CallWithRetry(
        options_.retry, [&](grpc::ClientContext* ctx) { return stub_->Upsert(ctx, req, &resp); }, &retries_, no_stop,
        on_retry);
  }
  v1::UpsertJsonRequest req;
  req.set_collection(options_.collection);
  req.set_id_field(id_field_);
  for (const auto& d : batch.docs) *req.add_records() = d.record;
  v1::UpsertJsonResponse resp;
  // RESOURCE_EXHAUSTED naming one record (too many values, too long an array) is that
  // record's problem, not the server's load: no retry.
  auto retryable = [](const grpc::Status& s) {
    return IsRetryable(s.error_code()) &&
           !(s.error_code() == grpc::RESOURCE_EXHAUSTED && RejectedRecordIndex(s.error_message()) >= 0);
  };
  return connection_.CallWithRetry(
      options_.retry, [&](grpc::ClientContext* ctx) { return json_stub_->Upsert(ctx, req, &resp); }, &retries_,
      no_stop, on_retry, retryable);
}

void Ingester::Send(Batch batch) {
  sent_.fetch_add(batch.docs.size());
  const bool json = format_ == "json-records";
  while (!batch.docs.empty()) {
    grpc::Status status = Upsert(batch);
    if (status.ok()) {
      Acknowledge(batch);
      return;
    }
    const int64_t named = json ? RejectedRecordIndex(status.error_message()) : RejectedDocumentIndex(status.error_message());
    const bool record_problem = status.error_code() == grpc::INVALID_ARGUMENT ||
                                (json && status.error_code() == grpc::RESOURCE_EXHAUSTED && named >= 0);
    if (!record_problem) {
      Fail(fmt::format("upsert of {} documents ({} .. {}) failed: {}", batch.docs.size(), batch.docs.front().location,
                       batch.docs.back().location, StatusText(status)));
      return;
    }
    const int64_t bad = RejectedIndexChecked(named, batch.docs.size());
    if (bad < 0) {
      // The server did not say which document; every one of them is rejected.
      for (const auto& d : batch.docs) {
        Reject(batch.source, d.position, d.location, "server: " + status.error_message(), /*from_server=*/true);
        if (options_.abort_on_error) break;
      }
      return;
    }
    const PendingDoc& d = batch.docs[bad];
    Reject(batch.source, d.position, d.location, "server: " + status.error_message(), /*from_server=*/true);
    if (options_.abort_on_error) {
      batch.docs.resize(bad);  // documents before the bad one still go in, then stop
    } else {
      batch.docs.erase(batch.docs.begin() + bad);
    }
  }
}

void Ingester::Acknowledge(const Batch& batch) {
  std::lock_guard lock(mu_);
  acknowledged_ += batch.docs.size();
  ++batches_;
  if (sources_[batch.source].progress != nullptr) {
    for (const auto& d : batch.docs) sources_[batch.source].progress->done.Add(d.position);
    SaveCheckpoint(batch.source);
  }
}

void Ingester::Reject(size_t source, uint64_t position, const std::string& location, const std::string& reason,
                      bool from_server) {
  std::lock_guard lock(mu_);
  ++rejected_;
  if (progress_line_open_) fmt::print(stderr, "\n");
  progress_line_open_ = false;
  fmt::print(stderr, "rejected: {}: {}\n", location, reason);
  if (options_.abort_on_error) {
    aborted_ = true;
    if (from_server) {
      // Batches still queued were read after the bad record: drop them. (The reader stops
      // by itself and lets what it read before the bad record go out.)
      stop_.store(true);
      queue_.clear();
      cv_.notify_all();
    }
    return;  // the rejected record stays pending in the checkpoint: fix it and --resume
  }
  if (sources_[source].progress != nullptr) {
    sources_[source].progress->done.Add(position);
    sources_[source].progress->rejected++;
    SaveCheckpoint(source);
  }
}

void Ingester::Fail(const std::string& message) {
  std::lock_guard lock(mu_);
  if (!fatal_) fatal_ = message;
  stop_.store(true);
  cv_.notify_all();
}

void Ingester::SaveCheckpoint(size_t source) {
  if (absl::Status s = sources_[source].checkpoint->Save(); !s.ok() && !fatal_) {
    fatal_ = std::string(s.message());
    stop_.store(true);
    cv_.notify_all();
  }
}

void Ingester::Progress() {
  if (options_.quiet) return;
  const bool tty = isatty(STDERR_FILENO) == 1;
  const double interval = options_.progress_interval > 0 ? options_.progress_interval : (tty ? 0.2 : 5.0);
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::duration<double>(interval), [&] { return progress_done_; })) {
    PrintProgress(false);
  }
}

void Ingester::PrintProgress(bool final_line) {
  if (options_.quiet) return;
  const bool tty = isatty(STDERR_FILENO) == 1;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const uint64_t done = acknowledged_ + rejected_;
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 && total_ >= done ? (total_ - done) / rate : -1;
  const double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done) / total_) : 1.0;
  if (tty) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    fmt::print(stderr, "\r[{}{}] {:5.1f}% {}/{} docs  {:.0f} docs/s  ETA {}  rejected {}\x1b[K",
               std::string(filled, '#'), std::string(kWidth - filled, '.'), 100 * frac, done, total_, rate,
               FormatDuration(eta), rejected_);
    progress_line_open_ = true;
    if (final_line) {
      fmt::print(stderr, "\n");
      progress_line_open_ = false;
    }
  } else if (!final_line) {
    fmt::print(stderr, "progress: {}/{} docs ({:.1f}%) acknowledged={} rejected={} {:.0f} docs/s eta={}\n", done, total_,
               100 * frac, acknowledged_, rejected_, rate, FormatDuration(eta));
  }
  std::fflush(stderr);
}

}  // namespace

int64_t RejectedDocumentIndex(const std::string& message) {
  constexpr std::string_view kPrefix = "documents[";
  const size_t at = message.find(kPrefix);
  if (at == std::string::npos) return -1;
  size_t i = at + kPrefix.size();
  int64_t v = 0;
  size_t digits = 0;
  while (i < message.size() && message[i] >= '0' && message[i] <= '9' && digits < 12) {
    v = v * 10 + (message[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0 || i >= message.size() || message[i] != ']') return -1;
  return v;
}

int64_t RejectedRecordIndex(const std::string& message) {
  // "records[i]: ..." (id problems) or "records: record i: ..." (the encoder's batch errors).
  for (const std::string_view prefix : {std::string_view("records["), std::string_view("records: record ")}) {
    size_t from = 0;
    while (true) {
      const size_t at = message.find(prefix, from);
      if (at == std::string::npos) break;
      from = at + 1;
      size_t i = at + prefix.size();
      int64_t v = 0;
      size_t digits = 0;
      while (i < message.size() && message[i] >= '0' && message[i] <= '9' && digits < 12) {
        v = v * 10 + (message[i] - '0');
        ++i;
        ++digits;
      }
      const char close = prefix.back() == '[' ? ']' : ':';
      if (digits > 0 && i < message.size() && message[i] == close) return v;
    }
  }
  return -1;
}

absl::StatusOr<v1::CollectionInfo> GetCollectionInfo(const Connection& connection, const std::string& name,
                                                     const RetryPolicy& retry) {
  auto stub = v1::Collections::NewStub(connection.channel());
  auto on_retry = [&](const grpc::Status& st, int attempt, std::chrono::milliseconds delay) {
    fmt::print(stderr, "retry: {} (attempt {} of {}, next in {} ms)\n", StatusText(st), attempt, retry.max_attempts,
               delay.count());
  };
  v1::GetCollectionRequest req;
  req.set_name(name);
  v1::GetCollectionResponse resp;
  grpc::Status s = connection.CallWithRetry(
      retry, [&](grpc::ClientContext* ctx) { return stub->Get(ctx, req, &resp); }, nullptr, nullptr, on_retry);
  if (s.error_code() == grpc::NOT_FOUND) {
    return absl::NotFoundError(fmt::format("collection {:?} does not exist (create it with `collections create`)", name));
  }
  if (!s.ok()) return absl::UnavailableError(fmt::format("cannot get collection {:?}: {}", name, StatusText(s)));
  return resp.collection();
}

absl::StatusOr<uint32_t> CollectionDim(const Connection& connection, const std::string& name, const RetryPolicy& retry) {
  absl::StatusOr<v1::CollectionInfo> info = GetCollectionInfo(connection, name, retry);
  if (!info.ok()) return info.status();
  if (info->config().kind() == v1::JSON) {
    return absl::FailedPreconditionError(fmt::format("collection {:?} holds JSON records, not multi-vector documents", name));
  }
  return info->config().dim();
}

}  // namespace chamferdb::cli

namespace chamferdb::cli {

int RunIngest(const Connection& connection, const IngestOptions& options) {
  Ingester ingester(connection, options);
  return ingester.Run();
}

}  // namespace chamferdb::cli
