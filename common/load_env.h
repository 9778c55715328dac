// Environment that shared libraries read once, when they are loaded, so a process must set
// it before it starts (re-executing itself if needed; see server/main.cc).
#pragma once

namespace chamferdb {

// Sets, where the user has not set them:
// - OMP_WAIT_POLICY=PASSIVE: idle OpenMP workers sleep instead of spinning (gRPC threads and
//   OpenMP teams share the cores);
// - OPENBLAS_CORETYPE from this CPU's features (SKYLAKEX with AVX-512 F/BW/VL, HASWELL with
//   AVX2 + FMA): OpenBLAS's own detection falls back to its slowest (Prescott) kernels on
//   CPUs it does not know by model number, e.g. many virtual machines, which made FAISS's
//   training and batch assignment 3-5x slower here.
// Returns true if it changed the environment (the caller should re-execute itself once so
// that the libraries see it).
bool SetLoadTimeEnvironment();

}  // namespace chamferdb
