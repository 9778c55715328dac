// libFuzzer target: the MBAT JSON record encoder (encoders/mbat_json.h) on arbitrary bytes.
// The input is a record for Encode / EncodeQuery / CollectAtoms; the same bytes are also
// parsed as an MBAT config, as a probe path and as a persisted encoder blob (Deserialize),
// which must all fail cleanly (a status) or succeed, never crash or hit UB. Properties
// checked beyond "no crash": a record that encodes OK has a finite, unit-norm vector and
// encodes to the same bits twice.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "encoders/mbat_json.h"

namespace {

const chamferdb::MbatJsonEncoder& Encoder() {
  static const auto* enc = [] {
    chamferdb::MbatConfig c;
    c.dim = 256;
    c.gamma_keys = 0.5f;
    c.beta_bag = 0.25f;
    c.str_mode = chamferdb::MbatStringMode::kTrigram;
    auto e = chamferdb::MbatJsonEncoder::Create(c);
    if (!e.ok()) std::abort();
    return e->release();
  }();
  return *enc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto& enc = Encoder();
  std::vector<float> a(enc.dim()), b(enc.dim());
  if (enc.Encode(in, a.data()).ok()) {
    double norm = 0;
    for (float x : a) {
      if (!std::isfinite(x)) std::abort();
      norm += double(x) * x;
    }
    if (std::abs(norm - 1.0) > 1e-3 && norm != 0.0) std::abort();
    if (!enc.Encode(in, b.data()).ok() || a != b) std::abort();  // deterministic
  }
  (void)enc.EncodeQuery(in, chamferdb::MbatQueryMode::kContainment, b.data());
  (void)enc.CollectAtoms(in);
  (void)chamferdb::MbatConfigFromJson(in);
  if (auto path = chamferdb::ParseMbatPath(in); path.ok()) (void)enc.Unbind(a.data(), in, b.data());
  (void)chamferdb::MbatJsonEncoder::Deserialize(in);
  return 0;
}
