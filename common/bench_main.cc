// main() of the Google Benchmark binaries: the load-time environment the server uses
// (common/load_env.h: OpenBLAS kernels for this CPU, passive OpenMP waiting), so baselines
// such as OpenBLAS SGEMM run with the kernels a deployment gets, then the benchmarks.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include "common/load_env.h"

int main(int argc, char** argv) {
  if (chamferdb::SetLoadTimeEnvironment()) execv("/proc/self/exe", argv);  // once; on failure, carry on
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
