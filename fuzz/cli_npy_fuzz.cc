// libFuzzer target: the CLI's npy reader (cli/npy.h) and the three-file npy source
// (cli/source.h). Input layout: byte 0 selects the mode; mode even: the rest is an npy
// header prefix for ParseNpyHeader; mode odd: two little-endian u16 lengths a, b, then
// vectors.npy (a bytes), offsets.npy (b bytes) and ids.txt (the rest), read through
// OpenNpySource to the end. Beyond "no crash / no UB": a parsed header's element count is
// the product of its shape and its data offset lies inside the prefix; every record the
// source yields without a problem has num_tokens * dim finite values.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cli/npy.h"
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
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto h = ParseNpyHeader(in, "fuzz.npy");
    if (h.ok()) {
      unsigned __int128 prod = 1;
      for (uint64_t d : h->shape) prod *= d;
      if (prod != h->num_elements) std::abort();
      if (h->data_offset > in.size()) std::abort();
    }
    return 0;
  }
  if (in.size() < 4) return 0;
  const size_t a = static_cast<uint8_t>(in[0]) | (size_t{static_cast<uint8_t>(in[1])} << 8);
  const size_t b = static_cast<uint8_t>(in[2]) | (size_t{static_cast<uint8_t>(in[3])} << 8);
  std::string_view rest = in.substr(4);
  const std::string_view vectors = rest.substr(0, std::min(a, rest.size()));
  rest.remove_prefix(vectors.size());
  const std::string_view offsets = rest.substr(0, std::min(b, rest.size()));
  rest.remove_prefix(offsets.size());
  static const std::string vp = ScratchPath("vectors.npy"), op = ScratchPath("offsets.npy"),
                           ip = ScratchPath("ids.txt");
  WriteFile(vp, vectors);
  WriteFile(op, offsets);
  WriteFile(ip, rest);
  auto source = OpenNpySource(vp, op, ip, ParseOptions{});
  if (!source.ok()) return 0;
  (void)(*source)->CountRecords();
  SourceItem item;
  for (int i = 0; i < 100000; ++i) {
    auto more = (*source)->Next(&item);
    if (!more.ok() || !*more) break;
    if (item.problem.ok()) {
      if (item.doc.vectors.size() != size_t{item.doc.num_tokens} * item.doc.dim) std::abort();
      for (float v : item.doc.vectors) {
        if (!std::isfinite(v)) std::abort();
      }
    }
  }
  return 0;
}
