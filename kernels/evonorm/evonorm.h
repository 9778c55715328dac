// EvoNorm-B0 and EvoNorm-S0 normalization-activation layers (Liu, Brock, Simonyan, Le,
// "Evolving Normalization-Activation Layers", NeurIPS 2020), forward pass.
//
//   B0: y = x / max( √(σ²_{N,H,W}(x) + ε), v·x + √(σ²_{H,W}(x) + ε) ) · γ + β
//       (left: per channel, the batch variance in TRAIN and running_var in EVAL;
//        right: per element with that sample's instance variance; max elementwise)
//   S0: y = x · sigmoid(v·x) / √(σ²_{H,W,C/g}(x) + ε) · γ + β   (group std per sample)
// All variances are biased (population) variances. With nonlinearity == false both reduce
// to y = x·γ + β (the official TF behaviour).
//
// Conventions (they fix the defaults and the running-variance update of B0 in TRAIN):
//   kTfOfficial (tensorflow/tpu resnet_model.py): ε = 1e-5; running_var ← running_var −
//     (running_var − σ²_batch)·momentum (decay 0.9 ⇔ momentum 0.1); S0 groups = 32,
//     decremented until it divides C.
//   kTimm (timm evo_norm.py): ε = 1e-3 for B0, 1e-5 for S0; running_var ← (1 − m)·running_var
//     + m·σ²_batch·n/(n − 1) with n = N·H·W (the unbiased correction); S0 groups = 32 (or the
//     given value), which must divide C.
//
// Data layout: x, y are [N, C, H, W] row-major float32; gamma, beta, v, running_var are [C].
// Arithmetic: statistics by two-pass sums in double, the elementwise formula in double,
// rounded to float once. Determinism: OpenMP over (n, c) planes or (n, group) blocks with
// fixed-order per-block sums and a serial combination: same bits for any thread count.
// Thread-safety: pure functions (running_var is an explicit in/out argument).
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/status.h"

namespace chamferdb::evonorm {

enum class Variant { kB0, kS0 };
enum class Convention { kTfOfficial, kTimm };
enum class Mode { kTrain, kEval };

struct Params {
  Variant variant = Variant::kB0;
  Convention convention = Convention::kTfOfficial;
  Mode mode = Mode::kTrain;
  double eps = -1.0;      // < 0: the convention's default
  int groups = 0;         // S0 only; 0: 32 (TF: decremented until it divides C)
  double momentum = 0.1;  // B0 TRAIN running-variance update
  bool nonlinearity = true;
};

struct Shape {
  size_t n = 0, c = 0, h = 0, w = 0;
};

// The effective ε and S0 group count; INVALID_ARGUMENT for groups that do not divide C
// (timm), a non-positive ε, a momentum outside [0, 1], or B0 TRAIN with N·H·W == 1 under
// the timm convention (the n/(n−1) correction is undefined).
absl::Status ResolveParams(const Shape& s, Params* p);

// Fast kernel. REQUIRES ResolveParams(s, &p) was OK. running_var: read in EVAL (B0),
// updated in TRAIN (B0); may be null for S0. batch_var (optional, [C]): receives σ²_batch
// for B0 TRAIN.
void EvoNorm(const Shape& s, const Params& p, const float* x, const float* gamma,
             const float* beta, const float* v, float* running_var, float* y, int threads = 1,
             float* batch_var = nullptr);

// Reference: the formulas evaluated literally in long double, statistics recomputed
// per element (O(NCHW·HW) for B0's instance std). Same contract as EvoNorm.
void EvoNormReference(const Shape& s, const Params& p, const float* x, const float* gamma,
                      const float* beta, const float* v, float* running_var, float* y);

}  // namespace chamferdb::evonorm
