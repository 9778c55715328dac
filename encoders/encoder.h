// Encoders turn what a client sends (a set of token vectors, later a JSON record) into the
// single vector that goes into the maximum-inner-product index.
//
// Thread-safety: an encoder is immutable after construction; every const method may be
// called from many threads at once.
// Data layout: token sets are row-major (tokens × dim floats, common/types.h); outputs are
// dense float arrays of output_dim() elements written into caller-owned memory.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "common/types.h"

namespace chamferdb {

// Maps a multi-vector (a set of token embeddings) to one vector whose inner product with
// another approximates Chamfer (MaxSim) similarity. Queries and documents are encoded
// asymmetrically.
class MultiVectorEncoder {
 public:
  virtual ~MultiVectorEncoder() = default;

  // Dimension of each input token vector.
  virtual size_t input_dim() const = 0;
  // Number of floats written by EncodeDocument / EncodeQuery.
  virtual size_t output_dim() const = 0;

  // Encodes a document. tokens: n × input_dim(), n >= 1, all values finite.
  // out: output_dim() floats, overwritten. INVALID_ARGUMENT on an empty set or a
  // dimension mismatch (the caller validates finiteness).
  virtual absl::Status EncodeDocument(FloatMatrixView tokens, float* out) const = 0;
  // Encodes a query; same contract as EncodeDocument.
  virtual absl::Status EncodeQuery(FloatMatrixView tokens, float* out) const = 0;

  // Everything needed to rebuild this exact encoder (parameters and random matrices),
  // versioned and checksummed; see the implementation's Deserialize.
  virtual std::string Serialize() const = 0;
};

}  // namespace chamferdb
