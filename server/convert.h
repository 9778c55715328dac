// Proto <-> domain conversion for the data-plane API. The only place where
// chamferdb.v1 messages meet CollectionSpec / SearchQuery, so that encoders/, index/ and
// storage/ never see protobuf types.
#pragma once

#include "absl/status/statusor.h"
#include "chamferdb/v1/collections.pb.h"
#include "chamferdb/v1/filter.pb.h"
#include "chamferdb/v1/search.pb.h"
#include "server/collection.h"
#include "server/registry.h"

namespace chamferdb {

// Fills defaults (documented in collections.proto) and validates; INVALID_ARGUMENT names
// the field (config.dim, config.fde.k_sim, ...).
absl::StatusOr<CollectionSpec> SpecFromProto(const v1::CollectionConfig& config);
void SpecToProto(const CollectionSpec& spec, v1::CollectionConfig* out);
void InfoToProto(const Registry::Entry& c, v1::CollectionInfo* out);

// Builds a SearchQuery that points into `request` (which must outlive it). The vectors are
// copied into *storage when they are not 4-byte aligned.
absl::StatusOr<SearchQuery> QueryFromProto(const v1::SearchRequest& request, size_t dim,
                                           std::vector<float>* storage);
void ResultToProto(const SearchResult& result, v1::SearchResponse* out);

// Converts and validates a filter (filter.proto). INVALID_ARGUMENT names the condition by
// its path in the request, e.g. "filter.must[2].field.any_of[1]".
absl::StatusOr<MetadataFilter> FilterFromProto(const v1::Filter& filter, std::string_view what = "filter");

}  // namespace chamferdb
