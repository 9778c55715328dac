// Query ball carving (MUVERA, Dhulipala et al. 2024, §3 "Ball Carving"): before the exact
// Chamfer rerank, query tokens that point the same way are merged, so the rerank scores
// fewer query tokens against every candidate.
//
// The rule, as the paper states it: greedily pick a query token q not yet clustered, form a
// cluster of q and every other unclustered token q′ with ⟨q, q′⟩ ≥ τ, replace the cluster by
// the SUM of its tokens, and repeat until every token is clustered. The rerank then uses
// Chamfer(Q_C, P) = Σ_C max_p ⟨Σ_{q∈C} q, p⟩ ≤ Chamfer(Q, P) (a sum of maxima is at least the
// maximum of the sum), which keeps scores on the scale of Chamfer(Q, P).
// chamferdb resolves the paper's "arbitrary" pick deterministically: the first unclustered
// token in input order is the next centre, and a cluster's members are its absorbed tokens
// in input order. The threshold is tested against the centre only (a ball around q), never
// against the growing sum. The paper uses τ = 0.7 on unit tokens.
// Invariants: every input token is in exactly one cluster; every member has ⟨centre, q′⟩ ≥ τ;
// centres pairwise have ⟨c, c′⟩ < τ (a later centre was not absorbed by an earlier one);
// τ > max ⟨q, q′⟩ over distinct tokens (e.g. τ > 1 for unit tokens) is the identity.
// Cost: O(n² · dim) for n query tokens (n ≤ 1024 by the server's limits).
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chamferdb {

struct CarvedQuery {
  std::vector<float> tokens;        // clusters × dim, row-major: the cluster sums
  std::vector<uint32_t> cluster_of;  // per input token, its cluster index
  size_t clusters = 0;
};

// q: n × dim row-major (n ≥ 1); tau: any finite value (callers validate user input).
CarvedQuery BallCarve(const float* q, size_t n, size_t dim, float tau);

}  // namespace chamferdb
