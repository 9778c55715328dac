#include "common/load_env.h"

#include <cstdlib>

#include "common/cpu_features.h"

namespace chamferdb {

bool SetLoadTimeEnvironment() {
  bool changed = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const CpuFeatures& cpu = GetCpuFeatures();
    const char* core = cpu.avx512 ? "SKYLAKEX" : cpu.avx2_fma ? "HASWELL" : nullptr;
    if (core != nullptr) {
      setenv("OPENBLAS_CORETYPE", core, 1);
      changed = true;
    }
  }
  return changed;
}

}  // namespace chamferdb
