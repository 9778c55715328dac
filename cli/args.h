// Command-line flag parsing for chamferdb-cli: GNU-style long flags (`--name value`,
// `--name=value`, boolean `--name`), positionals anywhere, `--` ends flags. Unknown flags,
// missing values and malformed numbers are INVALID_ARGUMENT statuses naming the flag.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace chamferdb::cli {

struct FlagSpec {
  std::string name;  // without dashes
  bool takes_value = true;
  std::string help;  // "VALUE  description" shown by --help
};

class ParsedArgs {
 public:
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  // The last value given for `name`, or `fallback`.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  // Integer in [min, max]; INVALID_ARGUMENT names the flag otherwise.
  absl::StatusOr<uint64_t> GetUint(const std::string& name, uint64_t fallback, uint64_t min, uint64_t max) const;
  absl::StatusOr<double> GetDouble(const std::string& name, double fallback) const;
  // One of `choices` (or `fallback` when absent).
  absl::StatusOr<std::string> GetChoice(const std::string& name, const std::string& fallback,
                                        const std::vector<std::string>& choices) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs);
  std::map<std::string, std::vector<std::string>> flags_;
  std::vector<std::string> positional_;
};

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs);

// Aligned "  --name VALUE  description" lines for usage text.
std::string FlagHelp(const std::vector<FlagSpec>& specs);

}  // namespace chamferdb::cli
