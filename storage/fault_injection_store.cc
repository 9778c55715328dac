#include "storage/fault_injection_store.h"

#include <fmt/format.h>

namespace chamferdb {
namespace {

const char* OpName(FaultInjectionStore::Op op) {
  switch (op) {
    case FaultInjectionStore::Op::kWrite: return "write";
    case FaultInjectionStore::Op::kSync: return "sync";
    case FaultInjectionStore::Op::kRead: return "read";
    case FaultInjectionStore::Op::kScan: return "scan";
    case FaultInjectionStore::Op::kFlush: return "flush";
  }
  return "?";
}

absl::Status Injected(FaultInjectionStore::Op op, uint64_t call) {
  return absl::UnavailableError(fmt::format("injected I/O error on {} #{}", OpName(op), call));
}

}  // namespace

void FaultInjectionStore::FailNth(Op op, uint64_t n, bool sticky) {
  std::lock_guard lock(mu_);
  Arm& a = arms_[static_cast<size_t>(op)];
  a.fire_at = n == 0 ? 0 : calls(op) + n;
  a.sticky = sticky;
  a.after_rows = 0;
}

void FaultInjectionStore::FailNthScanAfter(uint64_t n, uint64_t after_rows) {
  std::lock_guard lock(mu_);
  Arm& a = arms_[static_cast<size_t>(Op::kScan)];
  a.fire_at = n == 0 ? 0 : calls(Op::kScan) + n;
  a.sticky = false;
  a.after_rows = after_rows;
}

void FaultInjectionStore::SetDiskFull(bool full) {
  std::lock_guard lock(mu_);
  disk_full_ = full;
}

void FaultInjectionStore::SetDiskBudget(uint64_t bytes) {
  std::lock_guard lock(mu_);
  budget_ = bytes;
}

void FaultInjectionStore::Heal() {
  std::lock_guard lock(mu_);
  arms_ = {};
  disk_full_ = false;
  budget_ = UINT64_MAX;
}

bool FaultInjectionStore::Tick(Op op, uint64_t* after_rows) const {
  std::lock_guard lock(mu_);
  const uint64_t call = ++calls_[static_cast<size_t>(op)];
  const Arm& a = arms_[static_cast<size_t>(op)];
  const bool fail = a.fire_at != 0 && (call == a.fire_at || (a.sticky && call > a.fire_at));
  if (fail) {
    ++injected_;
    if (after_rows != nullptr) *after_rows = a.after_rows;
  }
  return fail;
}

absl::StatusOr<std::optional<std::string>> FaultInjectionStore::Get(std::string_view key) const {
  if (Tick(Op::kRead)) return Injected(Op::kRead, calls(Op::kRead));
  return base_->Get(key);
}

absl::StatusOr<std::vector<std::optional<std::string>>> FaultInjectionStore::MultiGet(
    const std::vector<std::string>& keys) const {
  if (Tick(Op::kRead)) return Injected(Op::kRead, calls(Op::kRead));
  return base_->MultiGet(keys);
}

absl::Status FaultInjectionStore::Write(const WriteBatch& batch, bool sync) {
  // Both counters advance for a sync write, so kWrite and kSync sweeps are independent.
  const bool fail_write = Tick(Op::kWrite);
  const bool fail_sync = sync && Tick(Op::kSync);
  if (fail_write) return Injected(Op::kWrite, calls(Op::kWrite));
  if (fail_sync) return Injected(Op::kSync, calls(Op::kSync));
  {
    std::lock_guard lock(mu_);
    if (disk_full_ || batch.bytes() > budget_) {
      ++injected_;
      return absl::ResourceExhaustedError(
          fmt::format("injected: no space left on device (batch of {} bytes)", batch.bytes()));
    }
    // Reserve before writing so concurrent writers cannot overshoot the budget together.
    if (budget_ != UINT64_MAX) budget_ -= batch.bytes();
  }
  return base_->Write(batch, sync);
}

absl::Status FaultInjectionStore::Scan(
    std::string_view prefix, std::string_view start,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) const {
  uint64_t after_rows = 0;
  if (!Tick(Op::kScan, &after_rows)) return base_->Scan(prefix, start, fn);
  const uint64_t call = calls(Op::kScan);
  if (after_rows == 0) return Injected(Op::kScan, call);
  uint64_t delivered = 0;
  bool cut = false;
  absl::Status s = base_->Scan(prefix, start, [&](std::string_view k, std::string_view v) {
    if (delivered == after_rows) {
      cut = true;
      return false;
    }
    ++delivered;
    return fn(k, v);
  });
  // A scan with at most after_rows rows completes normally: the fault had nothing to cut
  // and is not counted as injected.
  if (!cut) --injected_;
  if (!s.ok()) return s;
  return cut ? Injected(Op::kScan, call) : absl::OkStatus();
}

absl::Status FaultInjectionStore::Flush() {
  if (Tick(Op::kFlush)) return Injected(Op::kFlush, calls(Op::kFlush));
  return base_->Flush();
}

}  // namespace chamferdb
