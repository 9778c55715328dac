// API-key authorization, applied by RunHandler to every chamferdb RPC (health checks and
// reflection are not chamferdb RPCs and stay open).
//
// Keys arrive as `authorization: Bearer <key>` metadata. With no admin key configured,
// everything is open. Otherwise: no or unknown key -> UNAUTHENTICATED; the read key on a
// writing RPC -> PERMISSION_DENIED. Writing RPCs: Collections.Create/Drop and
// Documents.Upsert/UpsertStream/Delete.
// Thread-safety: the policy is installed once before serving and read-only afterwards.
#pragma once

#include <grpcpp/server_context.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace chamferdb {

struct AuthPolicy {
  std::string admin_key;
  std::string read_key;
};

// Installs the process-wide policy (call before the server starts).
void SetAuthPolicy(AuthPolicy policy);

bool IsWriteRpc(std::string_view rpc);
absl::Status Authorize(const grpc::ServerContext* ctx, std::string_view rpc);

}  // namespace chamferdb
