// The Fourier neural operator's spectral convolution (Li et al. 2021), as implemented by
// neuraloperator's SpectralConv, with the discretization rules of "Principled Approaches for
// Extending Neural Architectures to Function Spaces for Operator Learning" (Berner,
// Liu-Schiaffini et al. 2025): output at any resolution, normalization pinned.
//
//   X̂ = rfft2(x) · α_in,   Ŷ[b, o, k] = Σ_i X̂[b, i, k] · W[i, o, k]  for kept k, 0 elsewhere,
//   y = irfft2(Ŷ, s = (H', W')) · α_out + bias[o].
//
// Kept frequencies: rows k1 ∈ [0, m1) (weights_pos) and the m1 most negative rows
// k1 ∈ [−m1, 0) (weights_neg, row H − m1 + t of the input ↔ row H' − m1 + t of the
// output), columns k2 ∈ [0, m2) of the half spectrum.
// Norms (torch.fft semantics): kBackward α_in = 1, α_out = 1/(H'W'); kForward α_in = 1/(HW),
// α_out = 1; kOrtho 1/√(HW), 1/√(H'W'). Only kForward (and kOrtho when H'W' = HW) makes the
// output independent of the resolution: with kBackward a change of output resolution
// rescales y by HW/(H'W') (neuraloperator's default; kept for parity).
// C2R convention: the synthesis is y(n) = Σ_k c(k2)·Re(Ŷ[k]·e^{2πi(k1n1/H' + k2n2/W')}) with
// c = 1 on the DC column and (even W') on the Nyquist column, 2 elsewhere — i.e. the
// imaginary part of the non-Hermitian DC/Nyquist data is discarded, like FFTW and torch.
//
// Data layout (row-major): x [B, Cin, H, W]; weights [Cin, Cout, m1, m2] complex; bias
// [Cout] (may be null); y [B, Cout, H', W'].
// Determinism: FFTW plans with FFTW_ESTIMATE, one plane per transform, fixed-order sums:
// the result does not depend on `threads`.
// Thread-safety: safe to call concurrently (FFTW planning is serialized internally).
#pragma once

#include <complex>
#include <cstddef>

#include "absl/status/status.h"

namespace chamferdb::fno {

enum class FftNorm { kForward, kBackward, kOrtho };

struct SpectralConv2dShape {
  size_t batch = 1, in_channels = 1, out_channels = 1;
  size_t height = 0, width = 0;          // input grid H × W
  size_t modes1 = 0, modes2 = 0;         // m1 (per corner) and m2 (half-spectrum columns)
  size_t out_height = 0, out_width = 0;  // output grid H' × W'
};

// INVALID_ARGUMENT unless every size is ≥ 1, m1 ≤ min(H, H')/2 and m2 ≤ min(W, W')/2 + 1.
absl::Status ValidateSpectralConv2dShape(const SpectralConv2dShape& s);

// FFTW r2c → per-frequency complex Cin × Cout contraction → zero-filled c2r at (H', W').
// REQUIRES a valid shape. Cost O(B·(Cin+Cout)·HW log HW + B·Cin·Cout·2·m1·m2).
void SpectralConv2d(const SpectralConv2dShape& s, FftNorm norm, const double* x,
                    const std::complex<double>* w_pos, const std::complex<double>* w_neg,
                    const double* bias, double* y, int threads = 1);

// Reference: explicit DFT sums for the kept coefficients, the same contraction written
// literally, explicit cosine/sine synthesis with the C2R convention. O(HW·m1·m2) per plane.
void SpectralConv2dDirect(const SpectralConv2dShape& s, FftNorm norm, const double* x,
                          const std::complex<double>* w_pos, const std::complex<double>* w_neg,
                          const double* bias, double* y);

// Fourier resampling (NNs-to-NOs `utilities.resize`): keep the frequencies both grids can
// represent, zero-fill the rest, inverse transform at (H', W'). Uses the kForward scaling,
// so band-limited inputs are resampled exactly. x [P, H, W] → y [P, H', W'].
// The Nyquist row/column of an even-size grid, which is ambiguous when the size changes,
// is dropped unless the size in that dimension is unchanged.
void FourierResample2d(size_t planes, size_t height, size_t width, size_t out_height,
                       size_t out_width, const double* x, double* y, int threads = 1);

}  // namespace chamferdb::fno
