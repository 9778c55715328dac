#include "common/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace chamferdb {
namespace {
CpuFeatures Detect() {
  CpuFeatures f;
  const char* force = std::getenv("CHAMFERDB_FORCE_SCALAR");
  if (force != nullptr && std::strcmp(force, "0") != 0 && force[0] != '\0') return f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
  f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
#endif
  return f;
}
}  // namespace

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures features = Detect();
  return features;
}

}  // namespace chamferdb
