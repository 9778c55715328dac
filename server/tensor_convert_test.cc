#include "server/tensor_convert.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/status_matchers.h"

namespace chamferdb {
namespace {

using ::chamferdb::testing::StatusIs;
using ::testing::HasSubstr;

TEST(TensorConvert, RoundTripsF64AndConvertsF32) {
  const double values[6] = {1, -2, 3.5, 0, 1e300, -1e-300};
  v1::Tensor t;
  EncodeF64({2, 3}, values, &t);
  auto back = DecodeF64(t, "x");
  ASSERT_OK(back);
  EXPECT_EQ(back->shape, (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back->data[i], values[i]);

  const float f[2] = {1.5f, -0.25f};
  EncodeF32({2}, f, &t);
  auto as_double = DecodeF64(t, "x");
  ASSERT_OK(as_double);
  EXPECT_EQ(as_double->data[0], 1.5);
  EXPECT_EQ(as_double->data[1], -0.25);
}

TEST(TensorConvert, RejectsByteLengthMismatchNamingTheField) {
  v1::Tensor t;
  t.add_shape(3);
  t.set_dtype(v1::F32);
  t.set_data(std::string(8, '\0'));
  EXPECT_THAT(DecodeF32(t, "weights"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weights.data has 8 bytes")));
}

TEST(TensorConvert, RejectsWrongDtypeNegativeDimAndHugeShapes) {
  v1::Tensor t;
  t.add_shape(2);
  t.set_dtype(v1::I32);
  t.set_data(std::string(8, '\0'));
  EXPECT_THAT(DecodeF64(t, "x"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("I32")));
  EXPECT_THAT(DecodeI8(t, "x"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("I8")));

  v1::Tensor neg;
  neg.add_shape(-1);
  neg.set_dtype(v1::F32);
  EXPECT_THAT(DecodeF32(neg, "y"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("y.shape[0]")));

  v1::Tensor huge;
  huge.add_shape(int64_t{1} << 40);
  huge.add_shape(int64_t{1} << 40);
  huge.set_dtype(v1::F32);
  EXPECT_THAT(DecodeF32(huge, "z"), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("z")));

  v1::Tensor bad_dtype;
  bad_dtype.set_dtype(static_cast<v1::DType>(99));
  EXPECT_THAT(DecodeF32(bad_dtype, "w"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("w.dtype")));
}

TEST(TensorConvert, ScalarAndEmptyTensors) {
  const double one = 7.0;
  v1::Tensor t;
  EncodeF64({}, &one, &t);
  auto s = DecodeF64(t, "s");
  ASSERT_OK(s);
  EXPECT_EQ(s->numel(), 1);
  EXPECT_EQ(s->data[0], 7.0);

  EncodeF64({0, 4}, nullptr, &t);
  auto e = DecodeF64(t, "e");
  ASSERT_OK(e);
  EXPECT_EQ(e->numel(), 0);
}

TEST(TensorConvert, ComplexInterleavedAndChecks) {
  v1::Tensor t;
  t.add_shape(2);
  t.set_dtype(v1::C64);
  const float raw[4] = {1, 2, -3, 4};
  t.set_data(reinterpret_cast<const char*>(raw), sizeof raw);
  auto c = DecodeC128(t, "c");
  ASSERT_OK(c);
  EXPECT_EQ(c->data[1], std::complex<double>(-3, 4));

  EXPECT_THAT(CheckShape({2, 3}, {2, -1}, "a"), ::chamferdb::testing::IsOk());
  EXPECT_THAT(CheckShape({2, 3}, {3, -1}, "a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected [3,*]")));
  const double bad[3] = {0, NAN, 1};
  EXPECT_THAT(CheckFinite(bad, 3, "v"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("flat index 1")));
}

}  // namespace
}  // namespace chamferdb
