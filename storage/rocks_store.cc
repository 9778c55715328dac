#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <fstream>
#include <memory>

#include "storage/rocks_status.h"
#include "storage/store.h"

namespace chamferdb {
namespace {

class RocksStore final : public Store {
 public:
  explicit RocksStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
  ~RocksStore() override {
    // Close explicitly so errors are not lost silently in the destructor.
    if (db_) db_->Close().PermitUncheckedError();
  }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) const override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocksStatus(s, "get");
    return std::optional<std::string>(std::move(value));
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) const override {
    std::vector<rocksdb::Slice> slices;
    slices.reserve(keys.size());
    for (const auto& k : keys) slices.emplace_back(k);
    std::vector<std::string> values;
    std::vector<rocksdb::Status> statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
    std::vector<std::optional<std::string>> out(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok()) return FromRocksStatus(statuses[i], "multiget");
      out[i] = std::move(values[i]);
    }
    return out;
  }

  absl::Status Write(const WriteBatch& batch, bool sync) override {
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      rocksdb::Status s;
      switch (op.kind) {
        case WriteBatch::OpKind::kPut: s = wb.Put(op.key, op.value); break;
        case WriteBatch::OpKind::kDelete: s = wb.Delete(op.key); break;
        case WriteBatch::OpKind::kDeleteRange: s = wb.DeleteRange(op.key, op.value); break;
      }
      if (!s.ok()) return FromRocksStatus(s, "batch");
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return FromRocksStatus(db_->Write(wo, &wb), "write");
  }

  absl::Status Scan(std::string_view prefix, std::string_view start,
                    const std::function<bool(std::string_view, std::string_view)>& fn)
      const override {
    rocksdb::ReadOptions ro;
    const std::string end = PrefixEnd(prefix);
    rocksdb::Slice upper(end);
    if (!end.empty()) ro.iterate_upper_bound = &upper;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    const std::string first = std::max(std::string(prefix), std::string(start));
    for (it->Seek(first); it->Valid(); it->Next()) {
      const rocksdb::Slice k = it->key();
      if (!k.starts_with(rocksdb::Slice(prefix.data(), prefix.size()))) break;
      const rocksdb::Slice v = it->value();
      if (!fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
    }
    return FromRocksStatus(it->status(), "scan");
  }

  uint64_t ApproximateSize(std::string_view prefix) const override {
    const std::string end = PrefixEnd(prefix);
    rocksdb::Range range(rocksdb::Slice(prefix.data(), prefix.size()),
                         end.empty() ? rocksdb::Slice("\xff\xff\xff\xff\xff\xff\xff\xff") : rocksdb::Slice(end));
    uint64_t size = 0;
    rocksdb::SizeApproximationOptions opts;
    opts.include_memtables = true;
    opts.include_files = true;
    db_->GetApproximateSizes(opts, db_->DefaultColumnFamily(), &range, 1, &size)
        .PermitUncheckedError();
    return size;
  }

  absl::Status Flush() override {
    RETURN_IF_ROCKS_ERROR(db_->FlushWAL(true), "flush wal");
    return FromRocksStatus(db_->Flush(rocksdb::FlushOptions()), "flush");
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

// RocksDB reports WAL corruption at open as a bare "Corruption: checksum mismatch"; the
// file it was in is only written to its info LOG. Returns that LOG line's message
// ("/db/000012.log: dropping 32768 bytes; Corruption: ..."), or "" if there is none.
std::string CorruptFileFromLog(const std::string& path) {
  std::ifstream in(path + "/LOG");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(": dropping ") == std::string::npos || line.find("Corruption") == std::string::npos) continue;
    const auto at = line.find(path);
    return at == std::string::npos ? line : line.substr(at);  // the first: where replay stopped
  }
  return "";
}

}  // namespace

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c != 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const std::string& path,
                                                      const RocksStoreOptions& options) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.paranoid_checks = true;
  o.IncreaseParallelism(2);
  o.OptimizeLevelStyleCompaction();
  o.compression = rocksdb::kLZ4Compression;
  o.bottommost_compression = rocksdb::kZSTD;
  // A torn last record of the WAL (crash mid-append) is dropped; anything acknowledged
  // earlier is replayed. Corruption before the tail fails the open (DATA_LOSS naming the
  // WAL file). kPointInTimeRecovery would instead stop replaying at the first bad record
  // and open without every acknowledged write after it (tests/reliability/corruption.py).
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, path, &raw);
  if (s.IsCorruption()) {
    if (const std::string where = CorruptFileFromLog(path); !where.empty()) {
      return FromRocksStatus(s, fmt::format("open {} ({})", path, where));
    }
  }
  if (!s.ok()) return FromRocksStatus(s, fmt::format("open {}", path));
  return std::unique_ptr<Store>(new RocksStore(std::unique_ptr<rocksdb::DB>(raw)));
}

}  // namespace chamferdb
