#include "cli/command_util.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "cli/record.h"

namespace chamferdb::cli {

using nlohmann::json;
using nlohmann::ordered_json;

int Error(const std::string& message) {
  fmt::print(stderr, "error: {}\n", message);
  return 1;
}

int RpcError(const std::string& what, const grpc::Status& status) { return Error(what + ": " + StatusText(status)); }

int UsageError(const absl::Status& status, const std::string& usage) {
  fmt::print(stderr, "error: {}\nusage: {}\n", std::string(status.message()), usage);
  return 2;
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.add_whitespace = pretty;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return fmt::format("{{\"error\": {}}}", json(std::string(status.message())).dump());
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string JsonLine(const ordered_json& value, bool pretty) {
  return value.dump(pretty ? 2 : -1, ' ', false, ordered_json::error_handler_t::replace);
}

ordered_json JsonValueOrString(const std::string& text) {
  ordered_json v = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  return v.is_discarded() ? ordered_json(text) : v;
}

grpc::Status Retry(const CommandContext& ctx, const std::function<grpc::Status(grpc::ClientContext*)>& call,
                   const std::function<bool(const grpc::Status&)>& retryable) {
  return ctx.connection->CallWithRetry(
      ctx.retry, call, nullptr, nullptr,
      [&](const grpc::Status& s, int attempt, std::chrono::milliseconds delay) {
        fmt::print(stderr, "retry: {} (attempt {} of {}, next in {} ms)\n", StatusText(s), attempt,
                   ctx.retry.max_attempts, delay.count());
      },
      retryable);
}

ordered_json DocumentJson(const v1::Document& d) {
  ordered_json out = {{"id", d.id()}, {"num_tokens", d.num_tokens()}};
  if (!d.vectors().empty() && d.num_tokens() > 0) {
    const size_t n = d.vectors().size() / sizeof(float);
    std::vector<float> v(n);
    std::memcpy(v.data(), d.vectors().data(), n * sizeof(float));
    const size_t dim = n / d.num_tokens();
    ordered_json rows = ordered_json::array();
    for (size_t t = 0; t < d.num_tokens(); ++t) {
      ordered_json row = ordered_json::array();
      for (size_t c = 0; c < dim; ++c) row.push_back(FloatForJson(v[t * dim + c]));
      rows.push_back(std::move(row));
    }
    out["vectors"] = std::move(rows);
  }
  if (!d.metadata_json().empty()) out["metadata"] = JsonValueOrString(d.metadata_json());
  return out;
}

bool NeedPositional(const ParsedArgs& args, size_t count, const std::string& usage) {
  if (args.positional().size() < count) {
    fmt::print(stderr, "usage: {}\n", usage);
    return false;
  }
  return true;
}

bool Need(const ParsedArgs& args, const std::string& flag, const std::string& usage) {
  if (!args.Has(flag)) {
    fmt::print(stderr, "error: --{} is required\nusage: {}\n", flag, usage);
    return false;
  }
  return true;
}

OutputSink::OutputSink(const ParsedArgs& args, std::string* error) {
  if (!args.Has("output")) return;
  file_.reset(std::fopen(args.Get("output").c_str(), "w"));
  if (file_ == nullptr) {
    *error = fmt::format("--output {}: cannot create: {}", args.Get("output"), std::strerror(errno));
    out_ = nullptr;
    return;
  }
  out_ = file_.get();
}

bool OutputSink::Finish() { return out_ != nullptr && std::fflush(out_) == 0 && !std::ferror(out_); }

}  // namespace chamferdb::cli
