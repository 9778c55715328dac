#include "common/rw_mutex.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace chamferdb {
namespace {

// A failing pthread rwlock call means a broken invariant (unlocking a lock not held,
// EDEADLK on re-locking, resource exhaustion at init): continuing could corrupt the data the
// lock guards, so stop with a message naming the call.
void Check(int rc, const char* what) {
  if (rc == 0) return;
  std::fprintf(stderr, "WriterPriorityMutex: %s failed with error %d\n", what, rc);
  std::abort();
}

}  // namespace

WriterPriorityMutex::WriterPriorityMutex() {
  pthread_rwlockattr_t attr;
  Check(pthread_rwlockattr_init(&attr), "pthread_rwlockattr_init");
#ifdef __GLIBC__  // the kinds are enumerators, not macros
  Check(pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP),
        "pthread_rwlockattr_setkind_np");
#endif
  Check(pthread_rwlock_init(&rw_, &attr), "pthread_rwlock_init");
  pthread_rwlockattr_destroy(&attr);
}

WriterPriorityMutex::~WriterPriorityMutex() { pthread_rwlock_destroy(&rw_); }

void WriterPriorityMutex::lock() { Check(pthread_rwlock_wrlock(&rw_), "pthread_rwlock_wrlock"); }

bool WriterPriorityMutex::try_lock() {
  const int rc = pthread_rwlock_trywrlock(&rw_);
  if (rc == EBUSY) return false;
  Check(rc, "pthread_rwlock_trywrlock");
  return true;
}

void WriterPriorityMutex::unlock() { Check(pthread_rwlock_unlock(&rw_), "pthread_rwlock_unlock"); }

void WriterPriorityMutex::lock_shared() { Check(pthread_rwlock_rdlock(&rw_), "pthread_rwlock_rdlock"); }

bool WriterPriorityMutex::try_lock_shared() {
  const int rc = pthread_rwlock_tryrdlock(&rw_);
  if (rc == EBUSY || rc == EAGAIN) return false;
  Check(rc, "pthread_rwlock_tryrdlock");
  return true;
}

void WriterPriorityMutex::unlock_shared() { Check(pthread_rwlock_unlock(&rw_), "pthread_rwlock_unlock"); }

}  // namespace chamferdb
