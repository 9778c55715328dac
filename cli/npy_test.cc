#include "cli/npy.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

// Written by numpy 1.24: np.save(f, np.array([[1.5, -2, 3], [4, 5, 6.25]], dtype='<f4')).
const std::string kNumpyF4("\x93\x4e\x55\x4d\x50\x59\x01\x00\x76\x00\x7b\x27\x64\x65\x73\x63\x72\x27\x3a\x20\x27\x3c\x66\x34\x27\x2c\x20\x27\x66\x6f\x72\x74\x72\x61\x6e\x5f\x6f\x72\x64\x65\x72\x27\x3a\x20\x46\x61\x6c\x73\x65\x2c\x20\x27\x73\x68\x61\x70\x65\x27\x3a\x20\x28\x32\x2c\x20\x33\x29\x2c\x20\x7d\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x0a\x00\x00\xc0\x3f\x00\x00\x00\xc0\x00\x00\x40\x40\x00\x00\x80\x40\x00\x00\xa0\x40\x00\x00\xc8\x40", 152);

// Builds a file the way numpy.lib.format describes it (not with our reader's code).
std::string MakeNpy(int major, const std::string& dict, const std::string& data) {
  std::string header = dict;
  const size_t len_width = major == 1 ? 2 : 4;
  while ((10 + len_width - 2 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < len_width; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string I64Bytes(std::initializer_list<int64_t> v) {
  std::string out;
  for (int64_t x : v) out.append(reinterpret_cast<const char*>(&x), sizeof(x));
  return out;
}

class TempFile {
 public:
  explicit TempFile(const std::string& bytes) {
    char name[] = "/tmp/npy_test_XXXXXX";
    const int fd = mkstemp(name);
    path_ = name;
    close(fd);
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(NpyHeader, ParsesAFileWrittenByNumpy) {
  auto h = ParseNpyHeader(kNumpyF4, "x.npy");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->descr, "<f4");
  EXPECT_FALSE(h->fortran_order);
  EXPECT_EQ(h->shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(h->data_offset, 128u);
  EXPECT_EQ(h->num_elements, 6u);
}

TEST(NpyFile, ReadsTheValuesNumpyWrote) {
  TempFile f(kNumpyF4);
  auto file = NpyFile::Open(f.path(), "<f4", 2);
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<float> v;
  ASSERT_TRUE(file->ReadF32(0, 6, &v).ok());
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.f, 3.f, 4.f, 5.f, 6.25f}));
  ASSERT_TRUE(file->ReadF32(3, 5, &v).ok());
  EXPECT_EQ(v, (std::vector<float>{4.f, 5.f}));
}

TEST(NpyFile, ReadsVersion2And3HeadersAndInt64) {
  for (int major : {2, 3}) {
    TempFile f(MakeNpy(major, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", I64Bytes({0, 2, -5})));
    auto file = NpyFile::Open(f.path(), "<i8", 1);
    ASSERT_TRUE(file.ok()) << file.status();
    std::vector<int64_t> v;
    ASSERT_TRUE(file->ReadI64(0, 3, &v).ok());
    EXPECT_EQ(v, (std::vector<int64_t>{0, 2, -5}));
  }
}

TEST(NpyHeader, AcceptsKeysInAnyOrderAndEmptyOrScalarShapes) {
  auto h = ParseNpyHeader(MakeNpy(1, "{\"shape\": (0, 4), \"fortran_order\": False, \"descr\": \"<f4\"}", ""), "x");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->num_elements, 0u);
  h = ParseNpyHeader(MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", ""), "x");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(h->shape.empty());
  EXPECT_EQ(h->num_elements, 1u);
}

TEST(NpyFile, RefusesOtherDtypesNamingTheExpectedOne) {
  for (const char* descr : {">f4", "<f8", "|u1", "<i4"}) {
    TempFile f(MakeNpy(1, std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (1,), }",
                       std::string(8, '\0')));
    auto file = NpyFile::Open(f.path(), "<f4", 1);
    ASSERT_FALSE(file.ok()) << descr;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(file.status().message()), HasSubstr("expected '<f4'"));
    EXPECT_THAT(std::string(file.status().message()), HasSubstr(f.path()));
  }
}

TEST(NpyFile, RefusesFortranOrderWrongRankAndWrongDataSize) {
  const std::string data(24, '\0');
  TempFile fortran(MakeNpy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data));
  EXPECT_THAT(std::string(NpyFile::Open(fortran.path(), "<f4", 2).status().message()), HasSubstr("fortran_order"));
  TempFile rank(MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", data));
  EXPECT_THAT(std::string(NpyFile::Open(rank.path(), "<f4", 2).status().message()), HasSubstr("1 dimensions"));
  TempFile truncated(MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data.substr(1)));
  EXPECT_THAT(std::string(NpyFile::Open(truncated.path(), "<f4", 2).status().message()), HasSubstr("truncated"));
  TempFile trailing(MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data + "x"));
  EXPECT_THAT(std::string(NpyFile::Open(trailing.path(), "<f4", 2).status().message()), HasSubstr("trailing"));
  EXPECT_EQ(NpyFile::Open("/nonexistent/x.npy", "<f4", 2).status().code(), absl::StatusCode::kNotFound);
}

TEST(NpyHeader, MalformedHeadersAreInvalidArgument) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "shorter"},
      {std::string("\x93NUMPX\x01\x00\x10\x00", 10), "magic"},
      {std::string("\x93NUMPY\x04\x00\x10\x00", 10), "version"},
      {std::string("\x93NUMPY\x01\x00\xff\x00{}", 12), "ends inside"},
      {MakeNpy(1, "{'descr': '<f4', 'fortran_order': False}", ""), "lacks"},
      {MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", ""), "unexpected header key"},
      {MakeNpy(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", ""), "fortran_order"},
      {MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", ""), "non-negative"},
      {MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,)}", ""), "overflows"},
      {MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", ""), "overflows"},
      {MakeNpy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", ""), "structured"},
      {MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", ""), "trailing"},
      {MakeNpy(1, "['descr']", ""), "'{'"},
  };
  for (const auto& [bytes, expected] : cases) {
    auto h = ParseNpyHeader(bytes, "bad.npy");
    ASSERT_FALSE(h.ok()) << expected;
    EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument) << expected;
    EXPECT_THAT(std::string(h.status().message()), HasSubstr(expected));
    EXPECT_THAT(std::string(h.status().message()), HasSubstr("bad.npy"));
  }
}

TEST(NpyHeader, EveryTruncationAndRandomCorruptionFailsCleanly) {
  // Every proper prefix that cuts into the header is an error, never a crash.
  for (size_t n = 0; n < 128; ++n) EXPECT_FALSE(ParseNpyHeader(kNumpyF4.substr(0, n), "x").ok()) << n;
  std::mt19937_64 gen(12345);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = kNumpyF4;
    const int flips = 1 + static_cast<int>(gen() % 4);
    for (int i = 0; i < flips; ++i) bytes[gen() % 128] = static_cast<char>(gen() & 0xff);
    auto h = ParseNpyHeader(bytes, "x");  // must simply return
    if (h.ok()) {
      EXPECT_LE(h->data_offset, bytes.size() + (1u << 20));
    }
  }
}

}  // namespace
}  // namespace chamferdb::cli
