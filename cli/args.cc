#include "cli/args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <algorithm>

#include <fmt/format.h>

namespace chamferdb::cli {

std::string ParsedArgs::Get(const std::string& name, const std::string& fallback) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? fallback : it->second.back();
}

absl::StatusOr<uint64_t> ParsedArgs::GetUint(const std::string& name, uint64_t fallback, uint64_t min,
                                             uint64_t max) const {
  if (!Has(name)) return fallback;
  const std::string v = Get(name);
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("--{} {:?}: not a non-negative integer", name, v));
  }
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), nullptr, 10);
  if (errno == ERANGE || x < min || x > max) {
    return absl::InvalidArgumentError(fmt::format("--{} {}: must be between {} and {}", name, v, min, max));
  }
  return static_cast<uint64_t>(x);
}

absl::StatusOr<double> ParsedArgs::GetDouble(const std::string& name, double fallback) const {
  if (!Has(name)) return fallback;
  const std::string v = Get(name);
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x)) {
    return absl::InvalidArgumentError(fmt::format("--{} {:?}: not a number", name, v));
  }
  return x;
}

absl::StatusOr<std::string> ParsedArgs::GetChoice(const std::string& name, const std::string& fallback,
                                                  const std::vector<std::string>& choices) const {
  const std::string v = Get(name, fallback);
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string all;
    for (const auto& c : choices) all += (all.empty() ? "" : "|") + c;
    return absl::InvalidArgumentError(fmt::format("--{} {:?}: expected one of {}", name, v, all));
  }
  return v;
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs) {
  ParsedArgs out;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_done || a.size() < 2 || a[0] != '-' || a == "-") {
      out.positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    if (a == "-h") {
      out.flags_["help"].push_back("");
      continue;
    }
    if (a.rfind("--", 0) != 0) return absl::InvalidArgumentError(fmt::format("unknown flag {:?} (flags are --long)", a));
    std::string name = a.substr(2);
    std::string value;
    bool has_inline = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end()) return absl::InvalidArgumentError(fmt::format("unknown flag --{}", name));
    if (spec->takes_value) {
      if (!has_inline) {
        if (i + 1 >= args.size()) return absl::InvalidArgumentError(fmt::format("--{} needs a value", name));
        value = args[++i];
      }
    } else if (has_inline) {
      return absl::InvalidArgumentError(fmt::format("--{} takes no value", name));
    }
    out.flags_[name].push_back(value);
  }
  return out;
}

std::string FlagHelp(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const auto& s : specs) out += fmt::format("  --{:<18} {}\n", s.name, s.help);
  return out;
}

}  // namespace chamferdb::cli
