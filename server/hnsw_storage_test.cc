// index.hnsw_storage through the server's conversions: proto -> spec validation (HNSW only,
// INVALID_ARGUMENT naming the field otherwise), the default (INT8) filled in and reported,
// and the spec's JSON persistence (specs written before the field existed still load).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status_matchers.h"
#include "server/collection.h"
#include "server/convert.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

v1::CollectionConfig Config(v1::IndexKind kind, v1::HnswStorageKind storage) {
  v1::CollectionConfig c;
  c.set_name("h");
  c.set_dim(16);
  c.mutable_index()->set_kind(kind);
  c.mutable_index()->set_hnsw_storage(storage);
  return c;
}

TEST(HnswStorageConfig, DefaultsToInt8ForHnswAndIsReportedBack) {
  auto spec = SpecFromProto(Config(v1::HNSW, v1::HNSW_STORAGE_UNSPECIFIED));
  ASSERT_OK(spec);
  EXPECT_EQ(spec->index.hnsw_storage, HnswStorage::kInt8);
  v1::CollectionConfig back;
  SpecToProto(*spec, &back);
  EXPECT_EQ(back.index().hnsw_storage(), v1::HNSW_INT8);
  auto f32 = SpecFromProto(Config(v1::HNSW, v1::HNSW_FLOAT32));
  ASSERT_OK(f32);
  EXPECT_EQ(f32->index.hnsw_storage, HnswStorage::kFloat32);
}

TEST(HnswStorageConfig, RejectedForOtherKindsAndUnknownValues) {
  for (v1::IndexKind kind : {v1::FLAT, v1::IVF_PQ}) {
    EXPECT_THAT(SpecFromProto(Config(kind, v1::HNSW_INT8)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index.hnsw_storage")));
  }
  EXPECT_OK(SpecFromProto(Config(v1::FLAT, v1::HNSW_STORAGE_UNSPECIFIED)));
  EXPECT_THAT(SpecFromProto(Config(v1::HNSW, static_cast<v1::HnswStorageKind>(7))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.index.hnsw_storage 7")));
}

TEST(HnswStorageConfig, SpecJsonRoundTripsAndOldSpecsLoad) {
  auto spec = SpecFromProto(Config(v1::HNSW, v1::HNSW_FLOAT32));
  ASSERT_OK(spec);
  spec->id = 3;
  auto back = CollectionSpec::FromJson(spec->ToJson());
  ASSERT_OK(back);
  EXPECT_EQ(back->index.hnsw_storage, HnswStorage::kFloat32);
  std::string old = spec->ToJson();
  const std::string key = "\"hnsw_storage\":1,";
  ASSERT_NE(old.find(key), std::string::npos) << old;
  old.erase(old.find(key), key.size());
  auto parsed = CollectionSpec::FromJson(old);
  ASSERT_OK(parsed);
  // An HNSW collection created before the option existed keeps its float32 graph.
  EXPECT_EQ(parsed->index.hnsw_storage, HnswStorage::kFloat32);
}

}  // namespace
}  // namespace chamferdb
