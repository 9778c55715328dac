#include "server/config.h"

#include <fmt/format.h>

#include "common/absl_fmt.h"

#include <charconv>
#include <fstream>
#include <functional>

namespace chamferdb {
namespace {

struct Option {
  const char* name;  // flag name without dashes; env var is CHAMFERDB_<NAME_UPPER>
  const char* help;
  bool is_bool;
  std::function<absl::Status(ServerConfig*, const std::string&)> set;
};

absl::Status ParseUint(const std::string& flag, const std::string& v, uint64_t max, uint64_t* out) {
  uint64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x > max) {
    return absl::InvalidArgumentError(fmt::format("--{} {:?} is not an integer in 0..{}", flag, v, max));
  }
  *out = x;
  return absl::OkStatus();
}

absl::Status ParseBool(const std::string& flag, const std::string& v, bool* out) {
  if (v == "1" || v == "true" || v == "yes" || v == "on" || v.empty()) {
    *out = true;
  } else if (v == "0" || v == "false" || v == "no" || v == "off") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(fmt::format("--{} {:?} is not a boolean", flag, v));
  }
  return absl::OkStatus();
}

const std::vector<Option>& Options() {
  static const std::vector<Option> options = {
      {"listen", "HOST:PORT to serve gRPC on (default 127.0.0.1:50051)", false,
       [](ServerConfig* c, const std::string& v) {
         c->listen = v;
         return absl::OkStatus();
       }},
      {"data-dir", "directory of the database (default ./data)", false,
       [](ServerConfig* c, const std::string& v) {
         c->data_dir = v;
         return absl::OkStatus();
       }},
      {"snapshots-dir", "directory of collection snapshots (default DATA_DIR/snapshots)", false,
       [](ServerConfig* c, const std::string& v) {
         c->snapshots_dir = v;
         return absl::OkStatus();
       }},
      {"restore-snapshot",
       "SNAPSHOT_DIR[=NAME][,...]: at start, restore each snapshot into collection NAME (default: the "
       "snapshot's collection) unless that collection was already restored from it",
       false,
       [](ServerConfig* c, const std::string& v) {
         c->restore_snapshots.clear();
         for (size_t start = 0; start <= v.size();) {
           const size_t comma = std::min(v.find(',', start), v.size());
           if (comma > start) c->restore_snapshots.push_back(v.substr(start, comma - start));
           start = comma + 1;
         }
         return absl::OkStatus();
       }},
      {"sync", "fsync each write before acknowledging it (survives power loss)", true,
       [](ServerConfig* c, const std::string& v) { return ParseBool("sync", v, &c->sync); }},
      {"log-level", "trace|debug|info|warn|error (default info)", false,
       [](ServerConfig* c, const std::string& v) {
         c->log_level = v;
         return absl::OkStatus();
       }},
      {"max-message-mb", "largest gRPC message accepted, MiB (default 64)", false,
       [](ServerConfig* c, const std::string& v) {
         uint64_t x;
         if (absl::Status s = ParseUint("max-message-mb", v, 1024, &x); !s.ok()) return s;
         c->max_message_mb = static_cast<uint32_t>(x);
         return absl::OkStatus();
       }},
      {"block-cache-mb", "RocksDB block cache, MiB (default 256)", false,
       [](ServerConfig* c, const std::string& v) {
         return ParseUint("block-cache-mb", v, 1 << 20, &c->block_cache_mb);
       }},
      {"shutdown-grace-seconds", "on SIGTERM, how long in-flight requests may finish (default 10)", false,
       [](ServerConfig* c, const std::string& v) {
         uint64_t x;
         if (absl::Status s = ParseUint("shutdown-grace-seconds", v, 3600, &x); !s.ok()) return s;
         c->shutdown_grace_seconds = static_cast<uint32_t>(x);
         return absl::OkStatus();
       }},
      {"tls-cert", "PEM certificate chain; with --tls-key turns TLS on", false,
       [](ServerConfig* c, const std::string& v) {
         c->tls_cert = v;
         return absl::OkStatus();
       }},
      {"tls-key", "PEM private key of --tls-cert", false,
       [](ServerConfig* c, const std::string& v) {
         c->tls_key = v;
         return absl::OkStatus();
       }},
      {"tls-client-ca", "PEM CA bundle; clients must present a certificate it signed (mutual TLS)", false,
       [](ServerConfig* c, const std::string& v) {
         c->tls_client_ca = v;
         return absl::OkStatus();
       }},
      {"admin-key", "API key allowed every RPC (clients send `authorization: Bearer KEY`)", false,
       [](ServerConfig* c, const std::string& v) {
         c->admin_key = v;
         return absl::OkStatus();
       }},
      {"read-key", "API key allowed reads only (get, list, search, kernels)", false,
       [](ServerConfig* c, const std::string& v) {
         c->read_key = v;
         return absl::OkStatus();
       }},
      {"metrics-port", "serve Prometheus metrics on http://HOST:PORT/metrics (HOST of --listen); 0 = off", false,
       [](ServerConfig* c, const std::string& v) {
         uint64_t x;
         if (absl::Status s = ParseUint("metrics-port", v, 65535, &x); !s.ok()) return s;
         c->metrics_port = static_cast<uint32_t>(x);
         return absl::OkStatus();
       }},
  };
  return options;
}

const Option* Find(std::string_view name) {
  for (const auto& o : Options())
    if (name == o.name) return &o;
  return nullptr;
}

std::string EnvName(std::string_view flag) {
  std::string e = "CHAMFERDB_";
  for (char c : flag) e.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return e;
}

std::string Trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::string ServerConfig::Usage() {
  std::string u = "usage: chamferdb [flags]\n\nflags (each also settable as CHAMFERDB_<NAME> or in --config FILE):\n";
  for (const auto& o : Options()) u += fmt::format("  --{:<24} {}\n", o.name, o.help);
  u += fmt::format("  --{:<24} {}\n", "config FILE", "read `key = value` lines (flag names) from FILE");
  u += fmt::format("  --{:<24} {}\n", "health-probe", "client mode: exit 0 iff the server at --listen's port is SERVING");
  return u;
}

absl::StatusOr<ServerConfig> ServerConfig::Parse(const std::vector<std::string>& args,
                                                 const std::map<std::string, std::string>& env) {
  // Collect flags first so that --config is known before anything is applied.
  std::vector<std::pair<const Option*, std::string>> flags;
  std::string config_file;
  if (auto it = env.find("CHAMFERDB_CONFIG"); it != env.end()) config_file = it->second;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--help" || a == "-h") return absl::CancelledError(Usage());
    if (a.rfind("--", 0) != 0) return absl::InvalidArgumentError(fmt::format("unexpected argument {:?}\n{}", a, Usage()));
    a = a.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    if (a == "config") {
      if (!has_value) {
        if (i + 1 >= args.size()) return absl::InvalidArgumentError("--config needs a FILE");
        value = args[++i];
      }
      config_file = value;
      continue;
    }
    const Option* o = Find(a);
    if (o == nullptr) return absl::InvalidArgumentError(fmt::format("unknown flag --{}\n{}", a, Usage()));
    if (!has_value && !o->is_bool) {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(fmt::format("--{} needs a value", a));
      value = args[++i];
    }
    flags.emplace_back(o, value);
  }
  ServerConfig c;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) return absl::InvalidArgumentError(fmt::format("--config {:?} cannot be read", config_file));
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      line = Trim(line);
      if (line.empty() || line[0] == '#') continue;
      const auto eq = line.find('=');
      if (eq == std::string::npos) {
        return absl::InvalidArgumentError(fmt::format("{}:{}: expected `key = value`", config_file, lineno));
      }
      const std::string key = Trim(line.substr(0, eq));
      const Option* o = Find(key);
      if (o == nullptr) return absl::InvalidArgumentError(fmt::format("{}:{}: unknown key {:?}", config_file, lineno, key));
      if (absl::Status s = o->set(&c, Trim(line.substr(eq + 1))); !s.ok()) {
        return absl::InvalidArgumentError(fmt::format("{}:{}: {}", config_file, lineno, s.message()));
      }
    }
  }
  for (const auto& o : Options()) {
    if (auto it = env.find(EnvName(o.name)); it != env.end()) {
      if (absl::Status s = o.set(&c, it->second); !s.ok()) {
        return absl::InvalidArgumentError(fmt::format("{}: {}", EnvName(o.name), s.message()));
      }
    }
  }
  for (const auto& [o, v] : flags) {
    if (absl::Status s = o->set(&c, v); !s.ok()) return s;
  }
  // Validate once.
  const auto colon = c.listen.rfind(':');
  uint64_t port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !ParseUint("listen", c.listen.substr(colon + 1), 65535, &port).ok()) {
    return absl::InvalidArgumentError(fmt::format("--listen {:?} is not HOST:PORT", c.listen));
  }
  if (c.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is empty");
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (std::find(std::begin(kLevels), std::end(kLevels), c.log_level) == std::end(kLevels)) {
    return absl::InvalidArgumentError(fmt::format("--log-level {:?} is not one of trace|debug|info|warn|error", c.log_level));
  }
  if (c.max_message_mb == 0) return absl::InvalidArgumentError("--max-message-mb must be at least 1");
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  for (const auto* f : {&c.tls_cert, &c.tls_key, &c.tls_client_ca}) {
    if (!f->empty() && !std::ifstream(*f)) {
      return absl::InvalidArgumentError(fmt::format("TLS file {:?} cannot be read", *f));
    }
  }
  if (!c.read_key.empty() && c.admin_key.empty()) {
    return absl::InvalidArgumentError("--read-key needs --admin-key (otherwise nothing could write)");
  }
  if (!c.admin_key.empty() && c.admin_key == c.read_key) {
    return absl::InvalidArgumentError("--admin-key and --read-key must differ");
  }
  if (c.metrics_port != 0 && c.metrics_port == port) {
    return absl::InvalidArgumentError("--metrics-port must differ from the gRPC port");
  }
  return c;
}

}  // namespace chamferdb
