#include "server/auth.h"

#include <fmt/format.h>

#include <memory>

namespace chamferdb {
namespace {

std::shared_ptr<const AuthPolicy>& Policy() {
  static std::shared_ptr<const AuthPolicy> policy = std::make_shared<AuthPolicy>();
  return policy;
}

// Constant-time comparison, so response timing does not reveal key prefixes.
bool SameKey(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || b.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

void SetAuthPolicy(AuthPolicy policy) { Policy() = std::make_shared<AuthPolicy>(std::move(policy)); }

bool IsWriteRpc(std::string_view rpc) {
  return rpc == "Collections.Create" || rpc == "Collections.Drop" || rpc == "Collections.CreateSnapshot" ||
         rpc == "Collections.DeleteSnapshot" || rpc == "Collections.RestoreSnapshot" ||
         rpc == "Collections.SetAlias" || rpc == "Collections.DeleteAlias" || rpc == "Documents.Upsert" ||
         rpc == "Documents.UpsertStream" || rpc == "Documents.Delete" || rpc == "JsonRecords.Upsert" ||
         rpc == "JsonRecords.Delete";
}

absl::Status Authorize(const grpc::ServerContext* ctx, std::string_view rpc) {
  const AuthPolicy& p = *Policy();
  if (p.admin_key.empty() || ctx == nullptr) return absl::OkStatus();
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return absl::UnauthenticatedError(fmt::format("{}: missing `authorization: Bearer <key>` metadata", rpc));
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (value.substr(0, kBearer.size()) != kBearer) {
    return absl::UnauthenticatedError(fmt::format("{}: authorization metadata is not `Bearer <key>`", rpc));
  }
  const std::string_view key = value.substr(kBearer.size());
  if (SameKey(key, p.admin_key)) return absl::OkStatus();
  if (SameKey(key, p.read_key)) {
    if (IsWriteRpc(rpc)) return absl::PermissionDeniedError(fmt::format("{}: the read-only API key cannot write", rpc));
    return absl::OkStatus();
  }
  return absl::UnauthenticatedError(fmt::format("{}: unknown API key", rpc));
}

}  // namespace chamferdb
