// ParallelFor: an OpenMP loop that never lets an exception escape the parallel region (the
// first one is rethrown on the calling thread afterwards). Header-only; callers link OpenMP.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>

namespace chamferdb {

// The team size for bulk work (batch encoding, large reranks): OMP_NUM_THREADS when it is
// set to a positive number, else every processor. Read once per process.
inline int BulkThreads() {
  static const int threads = [] {
    const char* env = std::getenv("OMP_NUM_THREADS");
    const int n = env != nullptr ? std::atoi(env) : 0;
    return n > 0 ? n : omp_get_num_procs();
  }();
  return threads;
}

// Runs body(i) for i in [0, n) on at most `threads` threads (static schedule).
template <typename Body>
void ParallelFor(int64_t n, int threads, Body body) {
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  std::exception_ptr error;
  std::mutex error_mu;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace chamferdb
