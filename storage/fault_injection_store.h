// A Store wrapper that injects I/O faults, for tests (the LevelDB ErrorEnv idea at the
// Store interface): it fails the Nth write, sync write, read or scan, or behaves like a
// full disk, and otherwise forwards every call to the wrapped store.
//
//   FaultInjectionStore faulty(base.get());
//   faulty.FailNth(FaultInjectionStore::Op::kWrite, 3);  // the 3rd Write from now fails
//   ... drive a Collection / Registry over &faulty ...
//   // reopen over base.get() to see what actually reached storage
//
// Fault semantics (those the Store contract allows for a failed call):
// - A failed Write applies nothing to the wrapped store (UNAVAILABLE "injected I/O error",
//   or RESOURCE_EXHAUSTED "injected: no space left on device" in disk-full mode).
// - kSync counts and fails only writes with sync = true; kWrite counts every Write.
// - A failed Get / MultiGet (kRead) or Scan (kScan) returns UNAVAILABLE and calls nothing;
//   a Scan fault may also be set to fire after `after_rows` rows were delivered (a read
//   error in the middle of a scan), see FailNthScanAfter; a scan with no more rows than
//   that completes normally and the fault does not count in injected().
// - Disk full: every Write (sync or not) fails while SetDiskFull(true), or once the bytes
//   written (WriteBatch::bytes) would exceed SetDiskBudget's budget; reads keep working.
// Each armed "Nth" fault fires once (later calls succeed again) unless sticky is set, in
// which case every call from the Nth on fails (a dead disk).
// Thread-safety: all methods are thread-safe; counters are exact under concurrency (each
// call takes a ticket atomically), so "the Nth call" is well defined but which caller gets
// it is up to scheduling.
// The wrapped store is not owned and must outlive this object.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "storage/store.h"

namespace chamferdb {

class FaultInjectionStore final : public Store {
 public:
  enum class Op { kWrite = 0, kSync = 1, kRead = 2, kScan = 3, kFlush = 4 };
  static constexpr size_t kNumOps = 5;

  explicit FaultInjectionStore(Store* base) : base_(base) {}

  // Arms a fault for the nth call (1-based) of `op` counted from now; n = 0 disarms.
  // sticky: every call from the nth on fails.
  void FailNth(Op op, uint64_t n, bool sticky = false);
  // kScan only: the nth scan fails after delivering `after_rows` rows to its callback.
  void FailNthScanAfter(uint64_t n, uint64_t after_rows);
  // Disk full: writes fail with RESOURCE_EXHAUSTED while on.
  void SetDiskFull(bool full);
  // Disk full after `bytes` more batch bytes (a write that would exceed it fails and
  // consumes nothing); UINT64_MAX = unlimited.
  void SetDiskBudget(uint64_t bytes);
  // Disarms everything (counters keep counting).
  void Heal();

  // Calls of `op` seen so far (failed ones included) and faults injected so far.
  uint64_t calls(Op op) const { return calls_[static_cast<size_t>(op)].load(); }
  uint64_t injected() const { return injected_.load(); }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) const override;
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) const override;
  absl::Status Write(const WriteBatch& batch, bool sync) override;
  absl::Status Scan(std::string_view prefix, std::string_view start,
                    const std::function<bool(std::string_view key, std::string_view value)>& fn) const override;
  uint64_t ApproximateSize(std::string_view prefix) const override { return base_->ApproximateSize(prefix); }
  absl::Status Flush() override;

 private:
  struct Arm {
    uint64_t fire_at = 0;  // absolute call number; 0 = disarmed
    bool sticky = false;
    uint64_t after_rows = 0;  // kScan only
  };
  // Takes a ticket for `op`; true when this call must fail. *after_rows for scans.
  bool Tick(Op op, uint64_t* after_rows = nullptr) const;

  Store* const base_;
  mutable std::array<std::atomic<uint64_t>, kNumOps> calls_{};
  mutable std::atomic<uint64_t> injected_{0};
  mutable std::mutex mu_;
  std::array<Arm, kNumOps> arms_ ABSL_GUARDED_BY(mu_){};
  bool disk_full_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t budget_ ABSL_GUARDED_BY(mu_) = UINT64_MAX;
};

}  // namespace chamferdb
