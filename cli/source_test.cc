#include "cli/source.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace chamferdb::cli {
namespace {

using ::testing::HasSubstr;

std::string WriteTemp(const std::string& bytes) {
  char name[] = "/tmp/source_test_XXXXXX";
  const int fd = mkstemp(name);
  close(fd);
  std::ofstream(name, std::ios::binary) << bytes;
  return name;
}

// An npy v1 file as numpy.lib.format describes it.
template <typename T>
std::string Npy(const std::string& descr, const std::string& shape, const std::vector<T>& values) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  return out;
}

TEST(JsonlSource, YieldsLineNumberedRecordsSkippingBlankLinesAndCheckpointedOnes) {
  const std::string path = WriteTemp(
      "{\"id\": \"a\", \"vectors\": [[1, 0]]}\r\n"
      "\n"
      "   \n"
      "{\"id\": \"b\", \"vectors\": [[1, 0, 0]]}\n"
      "{\"id\": \"c\", \"vectors\": [[0, 1]]}\n"
      "{\"id\": \"d\", \"vectors\": [[0, 1]]}");
  auto src = OpenJsonlSource(path, ParseOptions{2});
  ASSERT_TRUE(src.ok());
  EXPECT_EQ(*(*src)->CountRecords(), 4u);
  (*src)->set_skip([](uint64_t line) { return line == 5; });
  SourceItem item;
  ASSERT_TRUE(*(*src)->Next(&item));
  EXPECT_EQ(item.position, 1u);
  EXPECT_TRUE(item.problem.ok());
  EXPECT_EQ(item.doc.id, "a");
  ASSERT_TRUE(*(*src)->Next(&item));
  EXPECT_EQ(item.position, 4u);
  EXPECT_EQ(item.location, path + ":4");
  EXPECT_THAT(std::string(item.problem.message()), HasSubstr("dimension 3"));
  ASSERT_TRUE(*(*src)->Next(&item));
  EXPECT_EQ(item.position, 6u);
  EXPECT_EQ(item.doc.id, "d");
  EXPECT_FALSE(*(*src)->Next(&item));
  std::remove(path.c_str());
}

struct NpyFiles {
  std::string vectors, offsets, ids;
  ~NpyFiles() {
    std::remove(vectors.c_str());
    std::remove(offsets.c_str());
    std::remove(ids.c_str());
  }
};

TEST(NpySource, SplitsTokenRowsByOffsetsAndFlagsBadDocuments) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  NpyFiles f{WriteTemp(Npy<float>("<f4", "(4, 2)", {1, 2, 3, 4, 5, 6, nan, 8})),
             WriteTemp(Npy<int64_t>("<i8", "(5,)", {0, 2, 2, 3, 4})), WriteTemp("x\ny\n\nw\n")};
  auto src = OpenNpySource(f.vectors, f.offsets, f.ids, ParseOptions{2});
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(*(*src)->CountRecords(), 4u);
  SourceItem item;
  ASSERT_TRUE(*(*src)->Next(&item));
  EXPECT_TRUE(item.problem.ok());
  EXPECT_EQ(item.doc.id, "x");
  EXPECT_EQ(item.doc.num_tokens, 2u);
  EXPECT_EQ(item.doc.vectors, (std::vector<float>{1, 2, 3, 4}));
  ASSERT_TRUE(*(*src)->Next(&item));  // y: no tokens
  EXPECT_THAT(std::string(item.problem.message()), HasSubstr("no vectors"));
  ASSERT_TRUE(*(*src)->Next(&item));  // empty id
  EXPECT_EQ(item.position, 2u);
  EXPECT_THAT(std::string(item.problem.message()), HasSubstr("id is empty"));
  ASSERT_TRUE(*(*src)->Next(&item));  // w: NaN
  EXPECT_THAT(std::string(item.problem.message()), HasSubstr("not finite"));
  EXPECT_FALSE(*(*src)->Next(&item));
}

TEST(NpySource, FileLevelInconsistenciesAreInvalidArgument) {
  const auto vec = Npy<float>("<f4", "(3, 2)", {1, 2, 3, 4, 5, 6});
  struct Case {
    std::string offsets, ids, expected;
    uint32_t dim;
  };
  const std::vector<Case> cases = {
      {Npy<int64_t>("<i8", "(3,)", {1, 2, 3}), "a\nb\n", "offsets[0] is 1", 2},
      {Npy<int64_t>("<i8", "(3,)", {0, 2, 1}), "a\nb\n", "less than", 2},
      {Npy<int64_t>("<i8", "(3,)", {0, 1, 2}), "a\nb\n", "last offset is 2", 2},
      {Npy<int64_t>("<i8", "(3,)", {0, 1, 3}), "a\n", "has 1 ids but", 2},
      {Npy<int64_t>("<i8", "(0,)", {}), "", "has none", 2},
      {Npy<int64_t>("<i8", "(3,)", {0, 1, 3}), "a\nb\n", "collection's dimension is 4", 4},
      {Npy<int32_t>("<i4", "(3,)", {0, 1, 3}), "a\nb\n", "expected '<i8'", 2},
  };
  for (const auto& c : cases) {
    NpyFiles f{WriteTemp(vec), WriteTemp(c.offsets), WriteTemp(c.ids)};
    auto src = OpenNpySource(f.vectors, f.offsets, f.ids, ParseOptions{c.dim});
    ASSERT_FALSE(src.ok()) << c.expected;
    EXPECT_EQ(src.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(src.status().message()), HasSubstr(c.expected));
  }
}

}  // namespace
}  // namespace chamferdb::cli
