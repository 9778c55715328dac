#include "cli/requests.h"

#include <string>
#include <vector>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

// The flags main.cc gives these commands (the names matter, not the help).
std::vector<FlagSpec> Specs() {
  std::vector<FlagSpec> specs;
  for (const char* name :
       {"kind", "dim", "r-reps", "k-sim", "d-proj", "d-final", "seed", "index", "token-storage", "hnsw-m",
        "ef-construction", "ef-search", "nlist", "pq-m", "nprobe", "id-field", "mbat-config", "op-kind", "seq-from",
        "beta-bag", "gamma-keys", "str-mode", "w-tok", "w-tri", "num-transform", "num-scale", "num-sigma",
        "mbat-normalize", "max-record-bytes", "max-depth", "max-nodes", "max-array-length", "collection", "k",
        "scoring", "candidates", "format", "json", "id", "path", "top", "queries", "filter", "page-size", "max-docs",
        "page-token", "refine-storage", "rescore-storage", "hnsw-storage"}) {
    specs.push_back(FlagSpec{name, true, ""});
  }
  for (const char* name : {"no-normalize", "include-record", "no-rerank", "include-metadata", "include-vectors"}) {
    specs.push_back(FlagSpec{name, false, ""});
  }
  return specs;
}

ParsedArgs Parse(std::vector<std::string> args) {
  auto parsed = ParseArgs(args, Specs());
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return *parsed;
}

std::string Error(const absl::Status& s) { return std::string(s.message()); }

TEST(BuildCreateCollectionRequest, MultiVectorByDefaultWithOnlyTheGivenFields) {
  auto req = BuildCreateCollectionRequest(Parse({"collections", "create", "c", "--dim", "64"}));
  ASSERT_TRUE(req.ok()) << req.status();
  const auto& cfg = req->config();
  EXPECT_EQ(cfg.name(), "c");
  EXPECT_EQ(cfg.kind(), v1::MULTI_VECTOR);
  EXPECT_EQ(cfg.dim(), 64u);
  EXPECT_EQ(cfg.fde().r_reps(), 0u);  // the server's default
  EXPECT_FALSE(cfg.fde().has_k_sim());
  EXPECT_FALSE(cfg.has_normalize());
  EXPECT_EQ(cfg.index().kind(), v1::FLAT);
  EXPECT_FALSE(cfg.has_json());
  req = BuildCreateCollectionRequest(Parse({"collections", "create", "c", "--dim", "8", "--k-sim", "0",
                                            "--no-normalize", "--index", "hnsw", "--hnsw-m", "16"}));
  ASSERT_TRUE(req.ok());
  EXPECT_TRUE(req->config().fde().has_k_sim());
  EXPECT_EQ(req->config().fde().k_sim(), 0u);
  EXPECT_FALSE(req->config().normalize());
  EXPECT_EQ(req->config().index().kind(), v1::HNSW);
  EXPECT_EQ(req->config().index().hnsw_m(), 16u);
  EXPECT_EQ(req->config().index().hnsw_storage(), v1::HNSW_STORAGE_UNSPECIFIED);  // the server's default
  req = BuildCreateCollectionRequest(Parse({"collections", "create", "c", "--dim", "8", "--index", "hnsw",
                                            "--hnsw-storage", "f32"}));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->config().index().hnsw_storage(), v1::HNSW_FLOAT32);
  EXPECT_THAT(Error(BuildCreateCollectionRequest(
                        Parse({"collections", "create", "c", "--dim", "8", "--hnsw-storage", "fp16"}))
                        .status()),
              HasSubstr("default|int8|f32"));
  req = BuildCreateCollectionRequest(Parse({"collections", "create", "c", "--dim", "8", "--k-sim", "0",
                                            "--no-normalize", "--index", "hnsw", "--hnsw-m", "16"}));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->config().index().refine_storage(), v1::REFINE_NONE);
  req = BuildCreateCollectionRequest(Parse({"collections", "create", "c", "--dim", "8", "--index", "ivf_pq",
                                            "--refine-storage", "int8"}));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->config().index().kind(), v1::IVF_PQ);
  EXPECT_EQ(req->config().index().refine_storage(), v1::REFINE_INT8);
  EXPECT_THAT(Error(BuildCreateCollectionRequest(
                        Parse({"collections", "create", "c", "--dim", "8", "--refine-storage", "fp64"}))
                        .status()),
              HasSubstr("none|f32|int8"));
  EXPECT_EQ(req->config().rescore_storage(), v1::TOKEN_STORAGE_UNSPECIFIED);
  req = BuildCreateCollectionRequest(Parse({"collections", "create", "c", "--dim", "8", "--token-storage", "int8",
                                            "--rescore-storage", "f16"}));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->config().token_storage(), v1::INT8);
  EXPECT_EQ(req->config().rescore_storage(), v1::FLOAT16);
  EXPECT_THAT(Error(BuildCreateCollectionRequest(
                        Parse({"collections", "create", "c", "--dim", "8", "--rescore-storage", "int8"}))
                        .status()),
              HasSubstr("none|f16|f32"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(
                        Parse({"collections", "create", "c", "--kind", "json", "--rescore-storage", "f16"}))
                        .status()),
              HasSubstr("rescore-storage"));
}

TEST(BuildCreateCollectionRequest, JsonKindCarriesTheMbatParameters) {
  auto req = BuildCreateCollectionRequest(Parse({"collections", "create", "people", "--kind", "json"}));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->config().kind(), v1::JSON);
  EXPECT_EQ(req->config().dim(), 0u);  // server default (1024)
  EXPECT_EQ(req->config().json().mbat_config_json(), "");
  EXPECT_EQ(req->config().json().id_field(), "");

  req = BuildCreateCollectionRequest(Parse(
      {"collections", "create", "p", "--kind", "json", "--dim", "256", "--id-field", "sku", "--seed", "7",
       "--op-kind", "signed_perm", "--str-mode", "tokens", "--beta-bag", "0.25", "--num-sigma", "0.5",
       "--max-depth", "8", "--mbat-config", R"({"gamma_keys": 0.1, "limits": {"max_nodes": 50}})",
       "--index", "hnsw"}));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->config().dim(), 256u);
  EXPECT_EQ(req->config().json().id_field(), "sku");
  EXPECT_EQ(req->config().index().kind(), v1::HNSW);
  const auto mbat = nlohmann::json::parse(req->config().json().mbat_config_json());
  EXPECT_EQ(mbat, nlohmann::json::parse(R"({"seed": 7, "op_kind": "signed_perm", "str_mode": "tokens",
      "beta_bag": 0.25, "num_sigma": 0.5, "gamma_keys": 0.1, "limits": {"max_nodes": 50, "max_depth": 8}})"));
}

TEST(BuildCreateCollectionRequest, UsageErrorsNameTheFlag) {
  EXPECT_THAT(Error(BuildCreateCollectionRequest(Parse({"collections", "create", "c"})).status()),
              HasSubstr("--dim is required"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(Parse({"collections", "create"})).status()), HasSubstr("NAME"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(Parse({"collections", "create", "c", "--kind", "xml"})).status()),
              HasSubstr("multi-vector|json"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(
                        Parse({"collections", "create", "c", "--kind", "json", "--r-reps", "4"}))
                        .status()),
              HasSubstr("--r-reps applies to multi-vector collections only"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(Parse({"collections", "create", "c", "--dim", "8", "--id-field", "x"}))
                        .status()),
              HasSubstr("--id-field applies to JSON"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(
                        Parse({"collections", "create", "c", "--kind", "json", "--op-kind", "haar"}))
                        .status()),
              HasSubstr("srht|dense_haar|signed_perm"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(
                        Parse({"collections", "create", "c", "--kind", "json", "--mbat-config", "[1]"}))
                        .status()),
              HasSubstr("--mbat-config"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(
                        Parse({"collections", "create", "c", "--kind", "json", "--beta-bag", "x"}))
                        .status()),
              HasSubstr("--beta-bag"));
  EXPECT_THAT(Error(BuildCreateCollectionRequest(Parse({"collections", "create", "c", "extra", "--dim", "8"})).status()),
              HasSubstr("unexpected argument \"extra\""));
}

TEST(BuildSearchJsonRequest, FlagsMapToTheRequest) {
  auto req = BuildSearchJsonRequest(Parse({"search"}), "c", R"({"a": 1})");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->collection(), "c");
  EXPECT_EQ(req->query_json(), R"({"a": 1})");
  EXPECT_EQ(req->k(), 10u);
  EXPECT_EQ(req->scoring(), v1::COSINE);
  EXPECT_FALSE(req->include_record());
  req = BuildSearchJsonRequest(Parse({"search", "--k", "3", "--scoring", "containment", "--candidates", "500",
                                      "--include-record", "--nprobe", "4"}),
                               "c", "{}");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->k(), 3u);
  EXPECT_EQ(req->scoring(), v1::CONTAINMENT);
  EXPECT_EQ(req->candidates(), 500u);
  EXPECT_EQ(req->nprobe(), 4u);
  EXPECT_TRUE(req->include_record());
  EXPECT_THAT(Error(BuildSearchJsonRequest(Parse({"search", "--k", "0"}), "c", "{}").status()), HasSubstr("--k"));
  EXPECT_THAT(Error(BuildSearchJsonRequest(Parse({"search", "--scoring", "dot"}), "c", "{}").status()),
              HasSubstr("cosine|containment"));
  EXPECT_THAT(Error(BuildSearchJsonRequest(Parse({"search", "--no-rerank"}), "c", "{}").status()),
              HasSubstr("multi-vector collections only"));
}

TEST(BuildProbeRequest, NeedsExactlyOneSourceAndAPath) {
  auto req = BuildProbeRequest(Parse({"probe", "--collection", "c", "--id", "r1", "--path", "tags[2]"}));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->source_case(), v1::ProbeRequest::kId);
  EXPECT_EQ(req->id(), "r1");
  EXPECT_EQ(req->path(), "tags[2]");
  EXPECT_EQ(req->top_n(), 5u);
  req = BuildProbeRequest(Parse({"probe", "--collection", "c", "--json", R"({"a": 1})", "--path", "a", "--top", "9"}));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->source_case(), v1::ProbeRequest::kQueryJson);
  EXPECT_EQ(req->top_n(), 9u);
  EXPECT_THAT(Error(BuildProbeRequest(Parse({"probe", "--collection", "c", "--path", "a"})).status()),
              HasSubstr("exactly one of --id"));
  EXPECT_THAT(Error(BuildProbeRequest(Parse({"probe", "--collection", "c", "--id", "x", "--json", "{}", "--path", "a"}))
                        .status()),
              HasSubstr("exactly one of --id"));
  EXPECT_THAT(Error(BuildProbeRequest(Parse({"probe", "--collection", "c", "--id", "x"})).status()),
              HasSubstr("--path is required"));
  EXPECT_THAT(Error(BuildProbeRequest(Parse({"probe", "--id", "x", "--path", "a"})).status()),
              HasSubstr("--collection is required"));
  EXPECT_THAT(Error(BuildProbeRequest(Parse({"probe", "--collection", "c", "--id", "x", "--path", "a", "--top", "0"}))
                        .status()),
              HasSubstr("--top"));
}

constexpr const char* kFilter =
    R"({"must": [{"field": {"path": "lang", "equals": "en"}},
                 {"field": {"path": "year", "range": {"gte": 2020, "lt": 2024}}}],
        "should": [{"field": {"path": "tags", "anyOf": ["a", 3, true]}},
                   {"filter": {"mustNot": [{"field": {"path": "draft", "exists": true}}]}}],
        "must_not": [{"field": {"path": "addr.geo.cc", "equals": 7}}]})";

TEST(ParseFilter, ReadsTheProtobufJsonMapping) {
  auto f = ParseFilter(kFilter);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->must_size(), 2);
  EXPECT_EQ(f->must(0).field().path(), "lang");
  EXPECT_EQ(f->must(0).field().equals().string_value(), "en");
  EXPECT_TRUE(f->must(1).field().range().has_gte());
  EXPECT_FALSE(f->must(1).field().range().has_gt());
  EXPECT_EQ(f->must(1).field().range().gte(), 2020);
  EXPECT_EQ(f->must(1).field().range().lt(), 2024);
  ASSERT_EQ(f->should_size(), 2);
  const auto& any = f->should(0).field().any_of();
  ASSERT_EQ(any.values_size(), 3);
  EXPECT_EQ(any.values(0).string_value(), "a");
  EXPECT_EQ(any.values(1).number_value(), 3);
  EXPECT_TRUE(any.values(2).bool_value());
  EXPECT_TRUE(f->should(1).filter().must_not(0).field().exists());
  EXPECT_EQ(f->must_not(0).field().path(), "addr.geo.cc");  // snake_case names are accepted too
  EXPECT_EQ(f->must_not(0).field().equals().number_value(), 7);
}

TEST(ParseFilter, ReadsAFileAfterAnAtSign) {
  char name[] = "/tmp/requests_test_filter_XXXXXX";
  const int fd = mkstemp(name);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << kFilter;
  auto f = ParseFilter(std::string("@") + name);
  std::remove(name);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->must_size(), 2);
  EXPECT_THAT(Error(ParseFilter("@/nonexistent/filter.json").status()), HasSubstr("cannot open"));
}

TEST(ParseFilter, RefusesWhatIsNotAFilter) {
  EXPECT_THAT(Error(ParseFilter(R"({"must": [{"field": {"path": "a", "equal": 1}}]})").status()),
              HasSubstr("--filter: not a chamferdb.v1.Filter"));
  EXPECT_THAT(Error(ParseFilter(R"({"must": )").status()), HasSubstr("--filter"));
  EXPECT_THAT(Error(ParseFilter(R"([1])").status()), HasSubstr("--filter"));
  EXPECT_THAT(Error(ParseFilter(R"({"must": [{"field": {"path": "a", "range": {"gte": "x"}}}]})").status()),
              HasSubstr("--filter"));
  EXPECT_THAT(Error(ParseFilter("{}").status()), HasSubstr("no conditions"));
}

TEST(BuildScrollRequest, PagesFiltersAndKinds) {
  auto req = BuildScrollRequest(Parse({"scroll", "--collection", "c"}));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->collection(), "c");
  EXPECT_EQ(req->limit(), 100u);
  EXPECT_FALSE(req->has_filter());
  EXPECT_FALSE(req->include_vectors());
  req = BuildScrollRequest(Parse({"scroll", "--collection", "c", "--page-size", "7", "--page-token", "tok",
                                  "--include-vectors", "--include-metadata", "--filter", kFilter}));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->limit(), 7u);
  EXPECT_EQ(req->page_token(), "tok");
  EXPECT_TRUE(req->include_vectors());
  EXPECT_TRUE(req->include_metadata());
  EXPECT_EQ(req->filter().must_size(), 2);
  auto json_req = BuildScrollJsonRequest(Parse({"scroll", "--collection", "c", "--filter", kFilter}));
  ASSERT_TRUE(json_req.ok());
  EXPECT_EQ(json_req->filter().should_size(), 2);
  EXPECT_THAT(Error(BuildScrollJsonRequest(Parse({"scroll", "--collection", "c", "--include-vectors"})).status()),
              HasSubstr("multi-vector collections only"));
  EXPECT_THAT(Error(BuildScrollRequest(Parse({"scroll"})).status()), HasSubstr("--collection is required"));
  EXPECT_THAT(Error(BuildScrollRequest(Parse({"scroll", "--collection", "c", "--page-size", "1001"})).status()),
              HasSubstr("--page-size"));
  EXPECT_THAT(Error(BuildScrollRequest(Parse({"scroll", "--collection", "c", "--max-docs", "-1"})).status()),
              HasSubstr("--max-docs"));
  EXPECT_THAT(Error(BuildScrollRequest(Parse({"scroll", "--collection", "c", "--filter", "{}"})).status()),
              HasSubstr("no conditions"));
  EXPECT_EQ(*ScrollLimit(Parse({"scroll", "--max-docs", "25"})), 25u);
  EXPECT_EQ(*ScrollLimit(Parse({"scroll"})), 0u);
}

TEST(BuildCountRequest, OptionalFilter) {
  auto req = BuildCountRequest(Parse({"count", "--collection", "c"}));
  ASSERT_TRUE(req.ok());
  EXPECT_FALSE(req->has_filter());
  req = BuildCountRequest(Parse({"count", "--collection", "c", "--filter", kFilter}));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->filter().must(0).field().path(), "lang");
  EXPECT_THAT(Error(BuildCountRequest(Parse({"count", "--collection", "c", "x"})).status()),
              HasSubstr("unexpected argument \"x\""));
  EXPECT_THAT(Error(BuildCountRequest(Parse({"count", "--collection", "c", "--filter", "{\"must\": 1}"})).status()),
              HasSubstr("--filter"));
}

TEST(BuildSearchJsonRequest, CarriesTheFilter) {
  auto req = BuildSearchJsonRequest(Parse({"search", "--filter", kFilter}), "c", "{}");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->filter().must_size(), 2);
  EXPECT_FALSE(BuildSearchJsonRequest(Parse({"search"}), "c", "{}")->has_filter());
  EXPECT_FALSE(BuildSearchJsonRequest(Parse({"search", "--filter", "nope"}), "c", "{}").ok());
}

TEST(SnapshotRequests, OperandsAndFlags) {
  auto create = BuildCreateSnapshotRequest(Parse({"snapshot", "create", "--collection", "c"}));
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->collection(), "c");
  EXPECT_THAT(Error(BuildCreateSnapshotRequest(Parse({"snapshot", "create"})).status()),
              HasSubstr("--collection is required"));
  EXPECT_THAT(Error(BuildCreateSnapshotRequest(Parse({"snapshot", "create", "c"})).status()),
              HasSubstr("unexpected argument \"c\""));
  EXPECT_EQ(BuildListSnapshotsRequest(Parse({"snapshot", "list"}))->collection(), "");
  EXPECT_EQ(BuildListSnapshotsRequest(Parse({"snapshot", "list", "--collection", "c"}))->collection(), "c");
  EXPECT_EQ(BuildDeleteSnapshotRequest(Parse({"snapshot", "delete", "c.20261130T170000Z.0a1b2c3d"}))->name(),
            "c.20261130T170000Z.0a1b2c3d");
  EXPECT_THAT(Error(BuildDeleteSnapshotRequest(Parse({"snapshot", "delete"})).status()), HasSubstr("SNAPSHOT"));
  EXPECT_THAT(Error(BuildDeleteSnapshotRequest(Parse({"snapshot", "delete", "s", "t"})).status()),
              HasSubstr("unexpected argument \"t\""));
  auto restore = BuildRestoreSnapshotRequest(Parse({"snapshot", "restore", "s1", "--collection", "c2"}));
  ASSERT_TRUE(restore.ok());
  EXPECT_EQ(restore->snapshot(), "s1");
  EXPECT_EQ(restore->collection(), "c2");
  EXPECT_THAT(Error(BuildRestoreSnapshotRequest(Parse({"snapshot", "restore", "s1"})).status()),
              HasSubstr("--collection NEW is required"));
}

TEST(AliasRequests, OperandsAndFlags) {
  auto set = BuildSetAliasRequest(Parse({"alias", "set", "prod", "--collection", "c_v2"}));
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->alias(), "prod");
  EXPECT_EQ(set->collection(), "c_v2");
  EXPECT_THAT(Error(BuildSetAliasRequest(Parse({"alias", "set", "prod"})).status()), HasSubstr("--collection"));
  EXPECT_THAT(Error(BuildSetAliasRequest(Parse({"alias", "set", "--collection", "c"})).status()), HasSubstr("ALIAS"));
  EXPECT_EQ(BuildDeleteAliasRequest(Parse({"alias", "delete", "prod"}))->alias(), "prod");
  EXPECT_THAT(Error(BuildDeleteAliasRequest(Parse({"alias", "delete", "prod", "--collection", "c"})).status()),
              HasSubstr("not --collection"));
  EXPECT_EQ(BuildListAliasesRequest(Parse({"alias", "list", "--collection", "c"}))->collection(), "c");
  EXPECT_THAT(Error(BuildListAliasesRequest(Parse({"alias", "list", "x"})).status()), HasSubstr("unexpected"));
}

}  // namespace
}  // namespace chamferdb::cli
