// chamferdb's own, platform-independent random numbers.
//
// Every random matrix the project persists or compares across processes comes from here,
// never from std::*_distribution (whose algorithms are implementation-defined).
// Generator: SplitMix64 seeds xoshiro256**; normals by the Box–Muller transform (both
// outputs used, in order); uniforms by taking the top 53 bits.
// Streams: DeriveSeed(seed, a, b) gives an independent 64-bit seed per (seed, a, b), e.g.
// (collection seed, repetition, purpose), so no two matrices share a stream.
// Thread-safety: a Rng is a value type; do not share one between threads.
#pragma once

#include <cstdint>

namespace chamferdb {

// One step of SplitMix64 (Steele, Lea, Flood 2014): advances *state, returns the mix.
uint64_t SplitMix64(uint64_t* state);

// An independent seed for stream (a, b) of base seed `seed`.
uint64_t DeriveSeed(uint64_t seed, uint64_t a, uint64_t b);

class Rng {
 public:
  explicit Rng(uint64_t seed);

  // Uniform 64-bit word (xoshiro256**).
  uint64_t NextU64();
  // Uniform double in [0, 1), 53 random bits.
  double Uniform();
  // Uniform integer in [0, n); n > 0. Lemire's multiply-shift with rejection, unbiased.
  uint64_t UniformInt(uint64_t n);
  // Standard normal N(0, 1) by Box–Muller in double precision.
  double Normal();
  // +1 or -1 with equal probability.
  int Sign();

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace chamferdb
