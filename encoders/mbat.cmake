# MBAT-JSON encoder (encoders/mbat_json.h): included from encoders/CMakeLists.txt.
find_package(ZLIB REQUIRED)

add_library(chamferdb_mbat mbat_ops.cc mbat_json.cc)
target_link_libraries(chamferdb_mbat
  PUBLIC chamferdb_common absl::synchronization
  PRIVATE nlohmann_json::nlohmann_json Eigen3::Eigen OpenMP::OpenMP_CXX fmt::fmt ZLIB::ZLIB)

chamferdb_test(mbat_test SOURCES mbat_ops_test.cc mbat_json_test.cc
  DEPS chamferdb_mbat nlohmann_json::nlohmann_json Eigen3::Eigen OpenMP::OpenMP_CXX fmt::fmt ZLIB::ZLIB)

# The same frozen digests and FWHT/SRHT bit checks with every SIMD path disabled: the
# portable code must produce the AVX2 code's bits.
add_test(NAME MbatPortablePathGivesTheSimdBits
  COMMAND mbat_test --gtest_filter=MbatFormat.*:MbatFwht.*:MbatOrthoOp.Srht*)
set_tests_properties(MbatPortablePathGivesTheSimdBits PROPERTIES
  ENVIRONMENT "CHAMFERDB_FORCE_SCALAR=1;OMP_WAIT_POLICY=PASSIVE" TIMEOUT 120)
