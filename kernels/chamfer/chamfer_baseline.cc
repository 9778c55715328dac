// The baseline build of chamfer_impl.inc (ISA flags are set per file in CMakeLists.txt).
#include "kernels/chamfer/chamfer_paths.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <immintrin.h>

#include "common/half.h"

namespace chamferdb::chamfer_baseline {
#include "kernels/chamfer/chamfer_impl.inc"
}  // namespace chamferdb::chamfer_baseline
