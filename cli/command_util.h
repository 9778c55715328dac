// Helpers shared by the chamferdb-cli subcommands (commands.cc, json_commands.cc): error
// and usage messages, JSON output, retried calls. Exit-code conventions as in commands.h.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "chamferdb/v1/documents.pb.h"
#include "cli/args.h"
#include "cli/commands.h"

namespace chamferdb::cli {

// "error: MESSAGE" on stderr; returns 1.
int Error(const std::string& message);
// "error: WHAT: CODE: message" on stderr; returns 1.
int RpcError(const std::string& what, const grpc::Status& status);
// "error: MESSAGE" and "usage: USAGE" on stderr; returns 2.
int UsageError(const absl::Status& status, const std::string& usage);

// Protobuf JSON mapping (lowerCamelCase, enums by name, zero values printed), one line
// unless `pretty`.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

// One output line: compact, or indented when `pretty`; invalid UTF-8 replaced.
std::string JsonLine(const nlohmann::ordered_json& value, bool pretty);

// Stored JSON text as a value (so it nests in output), or as a string if it does not parse.
nlohmann::ordered_json JsonValueOrString(const std::string& text);

// A multi-vector document in the ingest format: {"id", "num_tokens", "vectors" (when the
// document carries them), "metadata" (when it has any)}.
nlohmann::ordered_json DocumentJson(const v1::Document& doc);

// CallWithRetry with the context's policy, printing "retry: ..." lines on stderr.
// `retryable` as in Connection::CallWithRetry (default: every transient code).
grpc::Status Retry(const CommandContext& ctx, const std::function<grpc::Status(grpc::ClientContext*)>& call,
                   const std::function<bool(const grpc::Status&)>& retryable = nullptr);

// True when at least `count` positionals are present; prints `usage` otherwise.
bool NeedPositional(const ParsedArgs& args, size_t count, const std::string& usage);
// True when --flag is present; prints which is missing and `usage` otherwise.
bool Need(const ParsedArgs& args, const std::string& flag, const std::string& usage);

// Where results go: stdout, or --output FILE (created). Closes the file on destruction.
class OutputSink {
 public:
  // Error message in `*error` (and a null file) when --output cannot be created.
  OutputSink(const ParsedArgs& args, std::string* error);
  std::FILE* get() const { return out_; }
  // Flushes; false when anything failed to be written.
  bool Finish();

 private:
  std::FILE* out_ = stdout;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};
};

}  // namespace chamferdb::cli

#define CLI_ASSIGN_OR_USAGE(lhs, expr)                                             \
  auto lhs##_or = (expr);                                                          \
  if (!lhs##_or.ok()) {                                                            \
    fmt::print(stderr, "error: {}\n", std::string(lhs##_or.status().message()));   \
    return 2;                                                                      \
  }                                                                                \
  auto lhs = *std::move(lhs##_or)
