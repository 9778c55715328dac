// `chamferdb --health-probe`: a client mode of the server binary for container health
// checks (no curl or grpc tools in the runtime image). Asks grpc.health.v1.Health/Check on
// 127.0.0.1:<port of --listen>, over TLS when the server's TLS flags are set (trusting
// --tls-client-ca or else the server's own certificate chain). Returns 0 when SERVING.
#pragma once

#include "server/config.h"

namespace chamferdb {

int RunHealthProbe(const ServerConfig& config);

}  // namespace chamferdb
