#include "server/tensor_convert.h"

#include <cmath>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the wire format is little-endian; a big-endian port must byte-swap here");

namespace chamferdb {
namespace {

size_t ElementSize(v1::DType d) {
  switch (d) {
    case v1::F32: return 4;
    case v1::F64: return 8;
    case v1::I8: return 1;
    case v1::U8: return 1;
    case v1::I32: return 4;
    case v1::I64: return 8;
    case v1::C64: return 8;
    case v1::C128: return 16;
    default: return 0;
  }
}

absl::StatusOr<int64_t> CheckedNumel(const v1::Tensor& t, std::string_view field,
                                     std::vector<int64_t>* shape) {
  int64_t numel = 1;
  shape->assign(t.shape().begin(), t.shape().end());
  for (int i = 0; i < t.shape_size(); ++i) {
    const int64_t d = t.shape(i);
    if (d < 0) {
      return absl::InvalidArgumentError(
          fmt::format("{}.shape[{}] is negative ({})", field, i, d));
    }
    if (d > 0 && numel > kMaxTensorElements / d) {
      return absl::ResourceExhaustedError(fmt::format("{} has more than {} elements (shape [{}])", field, kMaxTensorElements,
                      fmt::join(t.shape(), ",")));
    }
    numel *= d;
  }
  const size_t es = ElementSize(t.dtype());
  if (es == 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}.dtype is {}, not a valid dtype", field, static_cast<int>(t.dtype())));
  }
  if (t.data().size() != static_cast<size_t>(numel) * es) {
    return absl::InvalidArgumentError(fmt::format("{}.data has {} bytes but shape [{}] of {} needs {}", field,
                    t.data().size(), fmt::join(t.shape(), ","), v1::DType_Name(t.dtype()),
                    static_cast<size_t>(numel) * es));
  }
  return numel;
}

absl::Status WrongDtype(const v1::Tensor& t, std::string_view field, std::string_view want) {
  return absl::InvalidArgumentError(fmt::format("{}.dtype is {}, expected {}", field,
                                                     v1::DType_Name(t.dtype()), want));
}

template <typename T>
absl::StatusOr<HostTensor<T>> DecodeExact(const v1::Tensor& t, std::string_view field,
                                          v1::DType want) {
  HostTensor<T> out;
  auto numel = CheckedNumel(t, field, &out.shape);
  if (!numel.ok()) return numel.status();
  if (t.dtype() != want) return WrongDtype(t, field, v1::DType_Name(want));
  out.data.resize(*numel);
  if (*numel > 0) std::memcpy(out.data.data(), t.data().data(), t.data().size());
  return out;
}

template <typename T>
absl::StatusOr<HostTensor<T>> DecodeReal(const v1::Tensor& t, std::string_view field) {
  HostTensor<T> out;
  auto numel = CheckedNumel(t, field, &out.shape);
  if (!numel.ok()) return numel.status();
  out.data.resize(*numel);
  if (t.dtype() == v1::F32) {
    const char* p = t.data().data();
    for (int64_t i = 0; i < *numel; ++i) {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      out.data[i] = static_cast<T>(v);
    }
  } else if (t.dtype() == v1::F64) {
    const char* p = t.data().data();
    for (int64_t i = 0; i < *numel; ++i) {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      out.data[i] = static_cast<T>(v);
    }
  } else {
    return WrongDtype(t, field, "F32 or F64");
  }
  return out;
}

template <typename T>
void EncodeRaw(const std::vector<int64_t>& shape, const T* data, v1::DType dtype,
               v1::Tensor* out) {
  out->Clear();
  int64_t numel = 1;
  for (int64_t d : shape) {
    out->add_shape(d);
    numel *= d;
  }
  out->set_dtype(dtype);
  out->set_data(reinterpret_cast<const char*>(data), static_cast<size_t>(numel) * sizeof(T));
}

template <typename T>
absl::Status CheckFiniteImpl(const T* data, int64_t n, std::string_view field) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(data[i])) {
      return absl::InvalidArgumentError(
          fmt::format("{} has a non-finite value at flat index {}", field, i));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HostTensor<double>> DecodeF64(const v1::Tensor& t, std::string_view field) {
  return DecodeReal<double>(t, field);
}
absl::StatusOr<HostTensor<float>> DecodeF32(const v1::Tensor& t, std::string_view field) {
  return DecodeReal<float>(t, field);
}
absl::StatusOr<HostTensor<int8_t>> DecodeI8(const v1::Tensor& t, std::string_view field) {
  return DecodeExact<int8_t>(t, field, v1::I8);
}
absl::StatusOr<HostTensor<int32_t>> DecodeI32(const v1::Tensor& t, std::string_view field) {
  return DecodeExact<int32_t>(t, field, v1::I32);
}
absl::StatusOr<HostTensor<int64_t>> DecodeI64(const v1::Tensor& t, std::string_view field) {
  return DecodeExact<int64_t>(t, field, v1::I64);
}

absl::StatusOr<HostTensor<std::complex<double>>> DecodeC128(const v1::Tensor& t,
                                                           std::string_view field) {
  HostTensor<std::complex<double>> out;
  auto numel = CheckedNumel(t, field, &out.shape);
  if (!numel.ok()) return numel.status();
  out.data.resize(*numel);
  const char* p = t.data().data();
  if (t.dtype() == v1::C64) {
    for (int64_t i = 0; i < *numel; ++i) {
      float re, im;
      std::memcpy(&re, p + 8 * i, 4);
      std::memcpy(&im, p + 8 * i + 4, 4);
      out.data[i] = {re, im};
    }
  } else if (t.dtype() == v1::C128) {
    if (*numel > 0) std::memcpy(out.data.data(), p, t.data().size());
  } else {
    return WrongDtype(t, field, "C64 or C128");
  }
  return out;
}

absl::Status CheckShape(const std::vector<int64_t>& shape, const std::vector<int64_t>& expected,
                        std::string_view field) {
  bool ok = shape.size() == expected.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) {
    if (expected[i] >= 0 && shape[i] != expected[i]) ok = false;
  }
  if (ok) return absl::OkStatus();
  std::vector<std::string> want;
  for (int64_t e : expected) want.push_back(e < 0 ? "*" : std::to_string(e));
  return absl::InvalidArgumentError(fmt::format("{} has shape [{}], expected [{}]", field,
                                                 fmt::join(shape, ","), fmt::join(want, ",")));
}

absl::Status CheckFinite(const double* data, int64_t n, std::string_view field) {
  return CheckFiniteImpl(data, n, field);
}
absl::Status CheckFinite(const float* data, int64_t n, std::string_view field) {
  return CheckFiniteImpl(data, n, field);
}

void EncodeF64(const std::vector<int64_t>& shape, const double* data, v1::Tensor* out) {
  EncodeRaw(shape, data, v1::F64, out);
}
void EncodeF32(const std::vector<int64_t>& shape, const float* data, v1::Tensor* out) {
  EncodeRaw(shape, data, v1::F32, out);
}
void EncodeI8(const std::vector<int64_t>& shape, const int8_t* data, v1::Tensor* out) {
  EncodeRaw(shape, data, v1::I8, out);
}
void EncodeI32(const std::vector<int64_t>& shape, const int32_t* data, v1::Tensor* out) {
  EncodeRaw(shape, data, v1::I32, out);
}
void EncodeI64(const std::vector<int64_t>& shape, const int64_t* data, v1::Tensor* out) {
  EncodeRaw(shape, data, v1::I64, out);
}
void EncodeC128(const std::vector<int64_t>& shape, const std::complex<double>* data,
                v1::Tensor* out) {
  EncodeRaw(shape, data, v1::C128, out);
}

}  // namespace chamferdb
