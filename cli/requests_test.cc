#include "cli/requests.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

// The flags main.cc gives these commands (the names matter, not the help).
const std::vector<FlagSpec> kFlags = {
    {"kind"},      {"dim"},           {"r-reps"},      {"k-sim"},       {"d-proj"},         {"d-final"},
    {"seed"},      {"index"},         {"token-storage"}, {"no-normalize", false}, {"hnsw-m"}, {"ef-construction"},
    {"ef-search"}, {"nlist"},         {"pq-m"},        {"nprobe"},      {"id-field"},       {"mbat-config"},
    {"op-kind"},   {"seq-from"},      {"beta-bag"},    {"gamma-keys"},  {"str-mode"},       {"w-tok"},
    {"w-tri"},     {"num-transform"}, {"num-scale"},   {"num-sigma"},   {"mbat-normalize"}, {"max-record-bytes"},
    {"max-depth"}, {"max-nodes"},     {"max-array-length"}, {"collection"}, {"k"},           {"scoring"},
    {"candidates"}, {"include-record", false}, {"no-rerank", false}, {"include-metadata", false}, {"format"},
    {"json"},      {"id"},            {"path"},        {"top"},         {"queries"}};

ParsedArgs Parse(std::vector<std::string> args) {
  auto parsed = ParseArgs(args, kFlags);
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

}  // namespace
}  // namespace chamferdb::cli
