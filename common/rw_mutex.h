// WriterPriorityMutex: a reader/writer lock on which a waiting writer holds off new readers.
//
// Why: std::shared_mutex is glibc's default pthread rwlock, which prefers readers. A reader
// that arrives while a writer waits still gets in, so a collection searched by two or more
// clients whose searches overlap (each holds the shared lock for milliseconds) never becomes
// free for a writer: an upsert that takes 1 ms on an idle server took 220 ms at p50 and
// 5.4 s at worst behind two searching clients (docs/reliability.md, "Writers under search
// load"). With this lock a writer waits only for the readers already inside; readers that
// arrive after it wait for it.
//
// Requirement: a thread must not take the shared lock it already holds (a queued writer would
// then block the second acquisition behind the first: a deadlock). Debug builds do not check
// this; the collections take it once per call and never call back into themselves under it.
//
// Interface: the standard SharedMutex requirements (lock / try_lock / unlock, lock_shared /
// try_lock_shared / unlock_shared), so std::unique_lock and std::shared_lock work unchanged.
// Implementation: a pthread rwlock of kind PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
// (glibc; ThreadSanitizer intercepts pthread rwlocks, so it sees this lock). On another C library
// it falls back to the default kind, i.e. to std::shared_mutex's behaviour.
// Thread-safety: every method may be called from any thread; not copyable or movable.
#pragma once

#include <pthread.h>

namespace chamferdb {

class WriterPriorityMutex {
 public:
  WriterPriorityMutex();
  ~WriterPriorityMutex();
  WriterPriorityMutex(const WriterPriorityMutex&) = delete;
  WriterPriorityMutex& operator=(const WriterPriorityMutex&) = delete;

  void lock();
  bool try_lock();
  void unlock();

  void lock_shared();
  bool try_lock_shared();
  void unlock_shared();

 private:
  pthread_rwlock_t rw_;
};

}  // namespace chamferdb
