// Resolution-aware convolution by kernel interpolation — the U-Net "kernel interpolation" of
// NNs-to-NOs (`models/unet_kernel_interp.py`): to run a k × k convolution trained at
// resolution N on a grid s times finer, the kernel is resized to k' = s·k − s + 1 taps by
// bilinear interpolation (corners aligned, so the kernel covers the same physical extent),
// rescaled, the padding is scaled by s, and the convolution is applied.
// Rescaling: kQuadratureRatio divides by s² = (h_coarse/h_fine)², the ratio of the
// quadrature weights of the two grids; kAreaRatio divides by (k'/k)² (the spec's wording,
// which tends to s² only for large k). Finding (tested): with kQuadratureRatio and a kernel
// that vanishes on its border ring, convolving at s·N and subsampling by s approximates the
// convolution at N with an O(1/N²) gap — both are trapezoid sums of the same integral.
// For a kernel with a non-zero border, or with kAreaRatio, the gap tends to a non-zero
// constant (the two tap sums differ), so "the error falls as N grows" does not hold.
//
// Convolution: cross-correlation (PyTorch Conv2d) on a periodic grid with centred taps,
//   y[b, o, i, j] = bias[o] + Σ_c Σ_{a,e} K'[o, c, a, e]·x[b, c, (i + a − p) mod H, (j + e − p) mod W],
// p = (k' − 1)/2. k must be odd.
// Data layout (row-major double): x [B, Cin, H, W], kernel [Cout, Cin, k, k], bias [Cout]
// (may be null), y [B, Cout, H, W].
// Determinism: fixed-order sums, OpenMP over (b, o) planes. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <vector>

namespace chamferdb::fno {

enum class KernelRescale { kQuadratureRatio, kAreaRatio };

// The resized kernel [Cout, Cin, k', k'] with k' = s·k − s + 1, already rescaled.
// REQUIRES k odd, s ≥ 1.
std::vector<double> InterpolateKernel(const double* kernel, size_t cout, size_t cin, size_t k,
                                      size_t s,
                                      KernelRescale rescale = KernelRescale::kQuadratureRatio);

// Periodic centred cross-correlation with an odd kt × kt kernel.
void PeriodicConv2d(const double* x, size_t b, size_t cin, size_t h, size_t w,
                    const double* kernel, size_t cout, size_t kt, const double* bias, double* y,
                    int threads = 1);

}  // namespace chamferdb::fno
