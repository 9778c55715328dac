// Residue frames from backbone atoms (AlphaFold/OpenFold Gram–Schmidt, "algorithm 21" with
// p_neg_x_axis = C, origin = CA, p_xy_plane = N), shared by the S-GCN and VFN kernels.
//
//   origin o = CA;  e1 = normalize(CA − C);  e2 = normalize(u − (u·e1)·e1), u = N − CA;
//   e3 = e1 × e2;   R = [e1 e2 e3] (columns), right-handed (chirality-aware).
//
// Layout: backbone n × 3 atoms (N, CA, C) × 3 coordinates, row-major; rot n × 3 × 3
// row-major (rot[i*9 + r*3 + c] = R_i[r][c], so column c is axis e_{c+1}); trans n × 3.
// A frame maps local to global coordinates: x_global = R·x_local + o.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace chamferdb::sphere {

// INVALID_ARGUMENT naming the residue when its atoms are non-finite, CA coincides with C,
// or N lies on the CA–C line (to 1e-9 relative): no frame exists.
absl::Status FramesFromBackbone(int64_t n, const double* backbone, double* rot, double* trans);

// Rᵀ·(p − o): global point p in the frame (rot, origin).
void ToLocal(const double* rot, const double* origin, const double* p, double* out);

}  // namespace chamferdb::sphere
