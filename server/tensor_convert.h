// Conversion between the wire Tensor (proto) and plain host tensors for kernel handlers.
//
// Every decoder validates: dtype known and accepted, shape dims >= 0, element count
// within kMaxTensorElements, byte length == numel * element size; `field` names the
// request field in every error. Integer/complex/float decoders accept only their own
// dtype, except the real decoders (double/float), which accept F32 and F64 and convert.
#pragma once

#include <complex>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "chamferdb/v1/tensor.pb.h"

namespace chamferdb {

// Hard cap on the elements of one tensor in one request (64 Mi elements).
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 26;

template <typename T>
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<T> data;  // row-major

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
};

absl::StatusOr<HostTensor<double>> DecodeF64(const v1::Tensor& t, std::string_view field);
absl::StatusOr<HostTensor<float>> DecodeF32(const v1::Tensor& t, std::string_view field);
absl::StatusOr<HostTensor<int8_t>> DecodeI8(const v1::Tensor& t, std::string_view field);
absl::StatusOr<HostTensor<int32_t>> DecodeI32(const v1::Tensor& t, std::string_view field);
absl::StatusOr<HostTensor<int64_t>> DecodeI64(const v1::Tensor& t, std::string_view field);
// Accepts C64 and C128.
absl::StatusOr<HostTensor<std::complex<double>>> DecodeC128(const v1::Tensor& t,
                                                           std::string_view field);

// INVALID_ARGUMENT unless t.shape matches `expected` (-1 matches any size).
absl::Status CheckShape(const std::vector<int64_t>& shape, const std::vector<int64_t>& expected,
                        std::string_view field);
// INVALID_ARGUMENT naming the field and the flat index of the first NaN/Inf.
absl::Status CheckFinite(const double* data, int64_t n, std::string_view field);
absl::Status CheckFinite(const float* data, int64_t n, std::string_view field);

void EncodeF64(const std::vector<int64_t>& shape, const double* data, v1::Tensor* out);
void EncodeF32(const std::vector<int64_t>& shape, const float* data, v1::Tensor* out);
void EncodeI8(const std::vector<int64_t>& shape, const int8_t* data, v1::Tensor* out);
void EncodeI32(const std::vector<int64_t>& shape, const int32_t* data, v1::Tensor* out);
void EncodeI64(const std::vector<int64_t>& shape, const int64_t* data, v1::Tensor* out);
void EncodeC128(const std::vector<int64_t>& shape, const std::complex<double>* data,
                v1::Tensor* out);

}  // namespace chamferdb
