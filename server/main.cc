// chamferdb: multi-vector retrieval server. See README.md for flags and the API.
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/load_env.h"
#include "server/aux_services.h"
#include "server/health_probe.h"
#include "server/server.h"

extern char** environ;

int main(int argc, char** argv) {
  // Passive OpenMP waiting and OpenBLAS's kernels for this CPU (common/load_env.h): libgomp
  // and OpenBLAS read them only at load time, so set them and re-execute once.
  if (chamferdb::SetLoadTimeEnvironment()) {
    execv("/proc/self/exe", argv);  // on failure, carry on with the defaults
  }
  // Block termination signals in every thread; one thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv(*e);
    if (auto eq = kv.find('='); eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> args(argv, argv + argc);
  const auto probe = std::find(args.begin(), args.end(), "--health-probe");
  const bool health_probe = probe != args.end();
  if (health_probe) args.erase(probe);
  auto config = chamferdb::ServerConfig::Parse(args, env);
  if (!config.ok()) {
    const bool help = config.status().code() == absl::StatusCode::kCancelled;
    std::fprintf(help ? stdout : stderr, "%s\n", std::string(config.status().message()).c_str());
    return help ? 0 : 2;
  }
  if (health_probe) return chamferdb::RunHealthProbe(*config);
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  auto server = chamferdb::Server::Start(*config, chamferdb::AuxiliaryServices());
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}", sig);
  const absl::Status s = (*server)->Shutdown();
  if (!s.ok()) spdlog::error("shutdown: {}", s.ToString());
  return s.ok() ? 0 : 1;
}
