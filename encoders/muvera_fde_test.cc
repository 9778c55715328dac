#include "encoders/muvera_fde.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "common/rng.h"
#include "common/status_matchers.h"
#include "kernels/chamfer/chamfer.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

std::vector<float> UnitTokens(Rng& rng, size_t n, size_t dim) {
  std::vector<float> v(n * dim);
  for (size_t i = 0; i < n; ++i) {
    double norm = 0;
    for (size_t j = 0; j < dim; ++j) {
      v[i * dim + j] = static_cast<float>(rng.Normal());
      norm += double(v[i * dim + j]) * v[i * dim + j];
    }
    for (size_t j = 0; j < dim; ++j) v[i * dim + j] /= static_cast<float>(std::sqrt(norm));
  }
  return v;
}

std::unique_ptr<MuveraFdeEncoder> MakeEncoder(FdeConfig c) {
  auto enc = MuveraFdeEncoder::Create(c);
  EXPECT_OK(enc);
  return std::move(enc).value();
}

std::vector<float> Encode(const MuveraFdeEncoder& enc, const std::vector<float>& tokens,
                          bool document) {
  std::vector<float> out(enc.output_dim());
  FloatMatrixView view{tokens.data(), tokens.size() / enc.input_dim(), enc.input_dim()};
  absl::Status s = document ? enc.EncodeDocument(view, out.data()) : enc.EncodeQuery(view, out.data());
  EXPECT_OK(s);
  return out;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b, size_t begin = 0,
           size_t end = std::numeric_limits<size_t>::max()) {
  end = std::min(end, a.size());
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += double(a[i]) * b[i];
  return s;
}

// An independent, literal rendering of the spec's algorithm: dense projection matrices built
// from the encoder's stored (slot, sign) pairs, the reference's iterative Gray-code bucket
// rule, and the fill loop over points in index order. Used as the oracle for the fast path.
std::vector<double> SlowFde(const MuveraFdeEncoder& enc, const std::vector<float>& x,
                            bool document) {
  const FdeConfig& c = enc.config();
  const size_t n = x.size() / c.dim, B = size_t{1} << c.k_sim, P = c.d_proj;
  std::vector<double> fde(c.raw_dim(), 0.0);
  for (size_t rep = 0; rep < c.r_reps; ++rep) {
    // Dense d × P projection.
    std::vector<double> A(c.dim * P, 0.0);
    for (size_t i = 0; i < c.dim; ++i) {
      if (c.identity_projection()) {
        A[i * P + i] = 1.0;
      } else {
        A[i * P + enc.proj_slot()[rep * c.dim + i]] = enc.proj_sign()[rep * c.dim + i];
      }
    }
    std::vector<std::vector<int>> signbits(n);
    std::vector<size_t> bucket(n);
    std::vector<std::vector<double>> proj(n, std::vector<double>(P, 0.0));
    for (size_t p = 0; p < n; ++p) {
      size_t id = 0;
      for (size_t j = 0; j < c.k_sim; ++j) {
        double s = 0;
        for (size_t t = 0; t < c.dim; ++t)
          s += double(x[p * c.dim + t]) * enc.hyperplanes()[(rep * c.k_sim + j) * c.dim + t];
        const int b = s > 0 ? 1 : 0;
        signbits[p].push_back(b);
        id = 2 * id + (b ^ (id & 1));
      }
      bucket[p] = id;
      for (size_t t = 0; t < c.dim; ++t)
        for (size_t j = 0; j < P; ++j) proj[p][j] += x[p * c.dim + t] * A[t * P + j];
    }
    for (size_t b = 0; b < B; ++b) {
      double* block = fde.data() + (rep * B + b) * P;
      size_t count = 0;
      for (size_t p = 0; p < n; ++p) {
        if (bucket[p] != b) continue;
        ++count;
        for (size_t j = 0; j < P; ++j) block[j] += proj[p][j];
      }
      if (!document) continue;
      if (count > 0) {
        for (size_t j = 0; j < P; ++j) block[j] /= count;
      } else if (c.k_sim > 0) {
        // Sign pattern of bucket b: walk hyperplanes from last to first, shifting.
        size_t best = 0;
        int best_dist = 1 << 30;
        for (size_t p = 0; p < n; ++p) {
          const size_t pattern = b ^ (b >> 1);
          int dist = 0;
          for (size_t j = 0; j < c.k_sim; ++j) {
            const int pbit = (pattern >> j) & 1;
            dist += pbit != signbits[p][c.k_sim - 1 - j];
          }
          if (dist < best_dist) {
            best_dist = dist;
            best = p;
          }
        }
        for (size_t j = 0; j < P; ++j) block[j] = proj[best][j];
      }
    }
  }
  if (c.d_final == 0) return fde;
  std::vector<double> out(c.d_final, 0.0);
  for (size_t i = 0; i < fde.size(); ++i) out[enc.final_slot()[i]] += enc.final_sign()[i] * fde[i];
  return out;
}

TEST(FdeConfig, RejectsOutOfRangeFieldsNamingThem) {
  FdeConfig c;
  c.dim = 0;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dim 0")));
  c.dim = 128;
  c.k_sim = 11;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k_sim 11")));
  c.k_sim = 5;
  c.r_reps = 0;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("r_reps 0")));
  c.r_reps = 20;
  c.d_proj = 0;  // would be a divisor/size: must be caught first
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("d_proj 0")));
  c.d_proj = 128;
  c.k_sim = 10;
  c.r_reps = 128;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds")));
  c.r_reps = 20;
  c.k_sim = 5;
  c.d_proj = 16;
  EXPECT_OK(c.Validate());
  EXPECT_EQ(c.output_dim(), 10240u);  // the paper's default
}

TEST(MuveraFde, BucketIdAndSignPatternRoundTripForAllIds) {
  for (uint32_t k = 0; k <= FdeConfig::kMaxKSim; ++k) {
    for (uint32_t id = 0; id < (1u << k); ++id) {
      const uint32_t bits = MuveraFdeEncoder::SignBitsFromBucket(id);
      ASSERT_LT(bits, 1u << k);
      ASSERT_EQ(MuveraFdeEncoder::BucketFromSignBits(bits), id);
      // Reference's iterative rule on the same bits (hyperplane 0 = MSB).
      uint32_t ref = 0;
      for (int j = static_cast<int>(k) - 1; j >= 0; --j) {
        const uint32_t b = (bits >> j) & 1;
        ref = 2 * ref + (b ^ (ref & 1));
      }
      ASSERT_EQ(ref, id);
      if (id > 0) {  // Gray property: adjacent buckets differ in exactly one hyperplane
        ASSERT_EQ(__builtin_popcount(bits ^ MuveraFdeEncoder::SignBitsFromBucket(id - 1)), 1);
      }
    }
  }
}

TEST(MuveraFde, FastPathMatchesLiteralSpecAlgorithm) {
  Rng rng(21);
  const FdeConfig configs[] = {
      {.dim = 17, .r_reps = 3, .k_sim = 3, .d_proj = 5, .d_final = 0, .seed = 4},
      {.dim = 8, .r_reps = 2, .k_sim = 4, .d_proj = 8, .d_final = 0, .seed = 5},  // identity
      {.dim = 16, .r_reps = 4, .k_sim = 2, .d_proj = 4, .d_final = 13, .seed = 6},
      {.dim = 5, .r_reps = 2, .k_sim = 0, .d_proj = 3, .d_final = 0, .seed = 7},
  };
  for (const FdeConfig& c : configs) {
    auto enc = MakeEncoder(c);
    for (size_t n : {1, 2, 7, 31}) {
      auto x = UnitTokens(rng, n, c.dim);
      for (bool doc : {false, true}) {
        auto fast = Encode(*enc, x, doc);
        auto slow = SlowFde(*enc, x, doc);
        ASSERT_EQ(fast.size(), slow.size());
        for (size_t i = 0; i < fast.size(); ++i)
          ASSERT_NEAR(fast[i], slow[i], 1e-5) << "doc=" << doc << " n=" << n << " i=" << i;
      }
    }
  }
}

TEST(MuveraFde, LemmaA3EveryRepetitionUnderestimatesChamfer) {
  Rng rng(22);
  const FdeConfig c{.dim = 12, .r_reps = 6, .k_sim = 3, .d_proj = 12, .d_final = 0, .seed = 9};
  auto enc = MakeEncoder(c);
  const size_t block = (size_t{1} << c.k_sim) * c.d_proj;
  for (int trial = 0; trial < 200; ++trial) {
    const size_t nq = 1 + rng.UniformInt(20), np = 1 + rng.UniformInt(20);
    auto q = UnitTokens(rng, nq, c.dim);
    auto p = UnitTokens(rng, np, c.dim);
    auto fq = Encode(*enc, q, false);
    auto fp = Encode(*enc, p, true);
    const double chamfer = ChamferReference(q.data(), nq, p.data(), np, c.dim);
    for (size_t rep = 0; rep < c.r_reps; ++rep) {
      ASSERT_LE(Dot(fq, fp, rep * block, (rep + 1) * block), chamfer + 1e-5);
    }
    ASSERT_LE(Dot(fq, fp), c.r_reps * chamfer + 1e-4);
  }
}

TEST(MuveraFde, QueryEncodingIsLinearInTheTokenSet) {
  Rng rng(23);
  auto enc = MakeEncoder({.dim = 32, .r_reps = 5, .k_sim = 4, .d_proj = 8, .d_final = 64, .seed = 3});
  auto q1 = UnitTokens(rng, 6, 32);
  auto q2 = UnitTokens(rng, 9, 32);
  std::vector<float> both = q1;
  both.insert(both.end(), q2.begin(), q2.end());
  auto f1 = Encode(*enc, q1, false), f2 = Encode(*enc, q2, false), f12 = Encode(*enc, both, false);
  for (size_t i = 0; i < f12.size(); ++i) ASSERT_NEAR(f12[i], f1[i] + f2[i], 1e-5);
}

TEST(MuveraFde, KSimZeroGivesCentroidForDocumentsAndSumForQueries) {
  Rng rng(24);
  const FdeConfig c{.dim = 6, .r_reps = 3, .k_sim = 0, .d_proj = 6, .d_final = 0, .seed = 2};
  auto enc = MakeEncoder(c);
  auto x = UnitTokens(rng, 5, 6);
  auto doc = Encode(*enc, x, true), query = Encode(*enc, x, false);
  ASSERT_EQ(doc.size(), 18u);
  for (size_t rep = 0; rep < 3; ++rep) {
    for (size_t j = 0; j < 6; ++j) {
      double sum = 0;
      for (size_t p = 0; p < 5; ++p) sum += x[p * 6 + j];
      EXPECT_NEAR(query[rep * 6 + j], sum, 1e-6);
      EXPECT_NEAR(doc[rep * 6 + j], sum / 5, 1e-6);
    }
  }
}

TEST(MuveraFde, SinglePointDocumentFillsEveryBucketWithItsProjection) {
  Rng rng(25);
  const FdeConfig c{.dim = 10, .r_reps = 4, .k_sim = 3, .d_proj = 10, .d_final = 0, .seed = 8};
  auto enc = MakeEncoder(c);
  auto x = UnitTokens(rng, 1, 10);
  auto doc = Encode(*enc, x, true);
  for (size_t blk = 0; blk < 4 * 8; ++blk)
    for (size_t j = 0; j < 10; ++j) ASSERT_EQ(doc[blk * 10 + j], x[j]);
}

TEST(MuveraFde, SelfScoreOfOrthogonalTokensCountsOccupiedBuckets) {
  // Identity projection, one repetition: ⟨FDE_q(Q), FDE_doc(Q)⟩ = number of occupied
  // buckets for mutually orthogonal unit tokens (collisions average them away).
  const size_t dim = 16;
  const FdeConfig c{.dim = dim, .r_reps = 1, .k_sim = 3, .d_proj = dim, .d_final = 0, .seed = 5};
  auto enc = MakeEncoder(c);
  std::vector<float> x(8 * dim, 0.0f);
  for (size_t i = 0; i < 8; ++i) x[i * dim + i] = 1.0f;
  auto fq = Encode(*enc, x, false), fp = Encode(*enc, x, true);
  size_t occupied = 0;
  for (size_t b = 0; b < 8; ++b) {
    double norm = 0;
    for (size_t j = 0; j < dim; ++j) norm += std::fabs(fq[b * dim + j]);
    occupied += norm > 0;
  }
  EXPECT_NEAR(Dot(fq, fp), static_cast<double>(occupied), 1e-6);
}

TEST(MuveraFde, RejectsEmptySetsDimensionMismatchAndFillOnQueries) {
  auto enc = MakeEncoder({.dim = 4, .r_reps = 2, .k_sim = 2, .d_proj = 2, .d_final = 0, .seed = 1});
  std::vector<float> out(enc->output_dim());
  std::vector<float> x(8, 0.5f);
  EXPECT_THAT(enc->EncodeDocument({x.data(), 0, 4}, out.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(enc->EncodeQuery({x.data(), 2, 3}, out.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dimension 3")));
  EXPECT_THAT(enc->Encode({x.data(), 2, 4}, {.average = false, .fill_empty = true}, out.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fill_empty")));
}

TEST(MuveraFde, ProjectionIsUnbiasedForInnerProducts) {
  // E⟨ψx, ψy⟩ = ⟨x, y⟩ over seeds, for the count-sketch inner projection (k_sim = 0 so the
  // query FDE of one token is ψ(x) repeated r_reps times).
  Rng rng(26);
  const size_t dim = 24;
  auto x = UnitTokens(rng, 1, dim), y = UnitTokens(rng, 1, dim);
  const double exact = Dot(x, y);
  double sum = 0;
  const int seeds = 400;
  for (int s = 0; s < seeds; ++s) {
    auto enc = MakeEncoder({.dim = dim, .r_reps = 1, .k_sim = 0, .d_proj = 6, .d_final = 0,
                            .seed = static_cast<uint64_t>(s + 1)});
    sum += Dot(Encode(*enc, x, false), Encode(*enc, y, false));
  }
  // Var of one estimate is ≤ 2/d_proj for unit vectors: sd of the mean ≈ 0.029.
  EXPECT_NEAR(sum / seeds, exact, 0.12);
}

TEST(MuveraFde, SerializeRoundTripsAndDetectsCorruption) {
  auto enc = MakeEncoder({.dim = 16, .r_reps = 3, .k_sim = 2, .d_proj = 4, .d_final = 20, .seed = 77});
  const std::string blob = enc->Serialize();
  auto back = MuveraFdeEncoder::Deserialize(blob);
  ASSERT_OK(back);
  Rng rng(27);
  auto x = UnitTokens(rng, 5, 16);
  EXPECT_EQ(Encode(*enc, x, true), Encode(**back, x, true));

  std::string flipped = blob;
  flipped[blob.size() / 2] ^= 0x10;
  EXPECT_THAT(MuveraFdeEncoder::Deserialize(flipped), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
  EXPECT_THAT(MuveraFdeEncoder::Deserialize(blob.substr(0, blob.size() - 9)),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
  EXPECT_THAT(MuveraFdeEncoder::Deserialize(""), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
}

// Determinism across processes: a child process (this binary re-run with a filter) encodes
// the same input from the same config and writes the bytes; they must equal ours.
TEST(MuveraFde, IdenticalVectorsAcrossProcesses) {
  const char* dump = std::getenv("CHAMFERDB_FDE_DUMP");
  Rng rng(28);
  auto x = UnitTokens(rng, 32, 128);
  auto enc = MakeEncoder({.dim = 128, .r_reps = 20, .k_sim = 5, .d_proj = 16, .d_final = 0, .seed = 1});
  auto fde = Encode(*enc, x, true);
  if (dump != nullptr) {
    std::ofstream(dump, std::ios::binary).write(reinterpret_cast<const char*>(fde.data()), fde.size() * 4);
    return;
  }
  const std::string path = ::testing::TempDir() + "/fde_child.bin";
  std::remove(path.c_str());
  std::ifstream self_exe("/proc/self/exe");
  ASSERT_TRUE(self_exe.good());
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(len, 0);
  exe[len] = '\0';
  const std::string cmd = "CHAMFERDB_FDE_DUMP=" + path + " '" + exe +
                          "' --gtest_filter=MuveraFde.IdenticalVectorsAcrossProcesses > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string child = ss.str();
  ASSERT_EQ(child.size(), fde.size() * 4);
  EXPECT_EQ(0, std::memcmp(child.data(), fde.data(), child.size()));
}

// Output bytes pinned: FNV-1a 64 hashes of document and query FDEs for fixed configs and
// inputs, recorded with the encoder as first released (before the speed work). Any change
// of the encoded bytes for a given seed/config fails here and needs a kFdeFormatVersion bump.
uint64_t Fnv1a(const std::vector<float>& v) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * 4; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

TEST(MuveraFde, OutputBytesArePinnedForFixedSeedsAndConfigs) {
  struct Golden {
    uint32_t dim, r, k, d_proj, d_final;
    size_t n;
    uint64_t document, query;
  };
  const Golden golden[] = {
      {128, 20, 5, 16, 0, 1, 0x8602565abc6acf43ull, 0x862a7de74db0999aull},
      {128, 20, 5, 16, 0, 5, 0x85aa7e30f09944edull, 0x3ab2bbab1903991full},
      {128, 20, 5, 16, 0, 16, 0x9c22a7b6dee30b39ull, 0x81750713fbab84b2ull},
      {128, 20, 5, 16, 0, 32, 0xb80151deb323217bull, 0x2e362d8fc08ebd4aull},
      {128, 20, 5, 16, 0, 77, 0xdb640abd74c9a76aull, 0x84dcd7216f69bfa4ull},
      {128, 20, 5, 16, 2048, 1, 0x09cddc06ed23016aull, 0x79ea39b05563e979ull},
      {128, 20, 5, 16, 2048, 5, 0x4e856a962bdec714ull, 0xf88837bab9fed524ull},
      {128, 20, 5, 16, 2048, 16, 0xaf0d27f365d0bca9ull, 0xdbebcff47ade04b8ull},
      {128, 20, 5, 16, 2048, 32, 0x0d51f46cf8d8a6b4ull, 0x5fb6df2d275f5720ull},
      {128, 20, 5, 16, 2048, 77, 0x8f6aebbe33b604eeull, 0xa67042a3c4ecb4c9ull},
      {24, 3, 4, 24, 0, 1, 0xfa19ed907f669f03ull, 0x999b1ead07236f08ull},
      {24, 3, 4, 24, 0, 5, 0xa68702e126b84644ull, 0x724dfdc27e719b60ull},
      {24, 3, 4, 24, 0, 16, 0xb3555d2a82bbec4eull, 0x28bee737f74c4798ull},
      {24, 3, 4, 24, 0, 32, 0x0fe609c8441555d0ull, 0x0c687950c354cddaull},
      {24, 3, 4, 24, 0, 77, 0xfbf5cf50d0ee1162ull, 0x5759f20f4badaa56ull},
      {17, 2, 0, 5, 0, 1, 0x80ccff5adfff7940ull, 0x80ccff5adfff7940ull},
      {17, 2, 0, 5, 0, 5, 0xb86aebdd49fb0f7full, 0x67f2f337d0039b5eull},
      {17, 2, 0, 5, 0, 16, 0xb9da113462554102ull, 0xb25cf21a49789d7eull},
      {17, 2, 0, 5, 0, 32, 0xb81ba8c59ccb2b71ull, 0xa4d0d8f3c3e0f094ull},
      {17, 2, 0, 5, 0, 77, 0x0727518f4e0866e5ull, 0x6a8fdd0af29addbbull},
      {64, 7, 6, 8, 300, 1, 0x3b07aef97a71038dull, 0xf8188ed6218603b7ull},
      {64, 7, 6, 8, 300, 5, 0xfed432a812203ba5ull, 0xd0e1d4239dc34e75ull},
      {64, 7, 6, 8, 300, 16, 0x0ecb1346743d1621ull, 0x83ed802a0fd9d0bbull},
      {64, 7, 6, 8, 300, 32, 0xad7468ede7c732faull, 0x8cbf6947747573c4ull},
      {64, 7, 6, 8, 300, 77, 0x9cda5a0ae03819e4ull, 0xfb3d61210ff91021ull},
  };
  for (const Golden& g : golden) {
    auto enc = MuveraFdeEncoder::Create(
        {.dim = g.dim, .r_reps = g.r, .k_sim = g.k, .d_proj = g.d_proj, .d_final = g.d_final, .seed = 7});
    ASSERT_TRUE(enc.ok());
    Rng rng(1000 + g.n);
    std::vector<float> x(g.n * g.dim);
    for (size_t i = 0; i < g.n; ++i) {
      double s = 0;
      for (size_t j = 0; j < g.dim; ++j) {
        x[i * g.dim + j] = static_cast<float>(rng.Normal());
        s += double(x[i * g.dim + j]) * x[i * g.dim + j];
      }
      for (size_t j = 0; j < g.dim; ++j) x[i * g.dim + j] = static_cast<float>(x[i * g.dim + j] / std::sqrt(s));
    }
    std::vector<float> d((*enc)->output_dim()), q((*enc)->output_dim());
    ASSERT_TRUE((*enc)->EncodeDocument({x.data(), g.n, g.dim}, d.data()).ok());
    ASSERT_TRUE((*enc)->EncodeQuery({x.data(), g.n, g.dim}, q.data()).ok());
    EXPECT_EQ(Fnv1a(d), g.document) << "document dim=" << g.dim << " k=" << g.k << " n=" << g.n;
    EXPECT_EQ(Fnv1a(q), g.query) << "query dim=" << g.dim << " k=" << g.k << " n=" << g.n;
  }
}

}  // namespace
}  // namespace chamferdb
