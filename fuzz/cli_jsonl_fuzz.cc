// libFuzzer target: the CLI's JSONL record reader (cli/record.h, cli/source.h). The input is
// parsed as one record line (ParseRecordJson + ValidateRecord) and, written to a file, read
// through OpenJsonlSource to the end. Beyond "no crash / no UB": a record that parses and
// validates has num_tokens * dim finite values, and the source yields exactly
// CountRecords() items.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cli/record.h"
#include "cli/source.h"

namespace {

std::string ScratchPath(const char* name) {
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/chamferdb-fuzz-" + std::to_string(getpid()) + "-" + name;
}

void WriteFile(const std::string& path, std::string_view bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chamferdb::cli;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (const ParseOptions& opts : {ParseOptions{}, ParseOptions{.expected_dim = 4, .require_id = false}}) {
    DocRecord doc;
    if (ParseRecordJson(in, opts, &doc).ok() && ValidateRecord(doc, opts).ok()) {
      if (doc.vectors.size() != size_t{doc.num_tokens} * doc.dim) std::abort();
      for (float v : doc.vectors) {
        if (!std::isfinite(v)) std::abort();
      }
    }
  }
  static const std::string path = ScratchPath("records.jsonl");
  WriteFile(path, in);
  auto source = OpenJsonlSource(path, ParseOptions{});
  if (!source.ok()) return 0;
  auto count = (*source)->CountRecords();
  uint64_t items = 0;
  SourceItem item;
  while (true) {
    auto more = (*source)->Next(&item);
    if (!more.ok() || !*more) break;
    ++items;
  }
  if (count.ok() && items != *count) {
    std::fprintf(stderr, "CountRecords %llu but Next yielded %llu items\n", static_cast<unsigned long long>(*count),
                 static_cast<unsigned long long>(items));
    std::abort();
  }
  return 0;
}
