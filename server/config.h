// Server configuration: one struct with its defaults, filled from (lowest to highest
// precedence) built-in defaults, an optional config file (--config FILE, `key = value`
// lines, keys as the flag names without dashes), CHAMFERDB_* environment variables
// (CHAMFERDB_LISTEN, CHAMFERDB_DATA_DIR, ...) and command-line flags, then validated once.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace chamferdb {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  // --listen HOST:PORT
  std::string data_dir = "./data";          // --data-dir DIR (RocksDB lives here)
  std::string snapshots_dir;                // --snapshots-dir DIR; "" = DATA_DIR/snapshots
  // --restore-snapshot DIR[=NAME][,...]: snapshots restored at start (idempotent: skipped
  // when NAME exists and was restored from that very snapshot; refused if NAME exists
  // otherwise).
  std::vector<std::string> restore_snapshots;
  bool sync = false;                        // --sync: fsync every write before acknowledging
  std::string log_level = "info";           // --log-level trace|debug|info|warn|error
  uint32_t max_message_mb = 64;             // --max-message-mb: largest request accepted
  uint64_t block_cache_mb = 256;            // --block-cache-mb: RocksDB block cache
  uint32_t shutdown_grace_seconds = 10;     // --shutdown-grace-seconds: in-flight deadline
  // Security. TLS is on when both files are given; mutual TLS when a client CA is given too.
  std::string tls_cert;       // --tls-cert FILE (PEM)
  std::string tls_key;        // --tls-key FILE (PEM)
  std::string tls_client_ca;  // --tls-client-ca FILE (PEM): require client certificates
  // API keys, sent by clients as `authorization: Bearer <key>`. When admin_key is set every
  // RPC needs a key; read_key allows only reads (get, list, search, kernels).
  std::string admin_key;  // --admin-key KEY (or CHAMFERDB_ADMIN_KEY)
  std::string read_key;   // --read-key KEY (or CHAMFERDB_READ_KEY)
  uint32_t metrics_port = 0;  // --metrics-port: Prometheus /metrics over HTTP; 0 = off

  // Parses argv (argv[0] is skipped) plus the environment `env` (name -> value) and an
  // optional --config file. INVALID_ARGUMENT names the flag and value; `--help` returns
  // a CANCELLED status whose message is the usage text.
  static absl::StatusOr<ServerConfig> Parse(const std::vector<std::string>& args,
                                            const std::map<std::string, std::string>& env);
  static std::string Usage();
};

}  // namespace chamferdb
