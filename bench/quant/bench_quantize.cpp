// Quantizer speed: one full multi-precision quantization (p = 2..4, g = 128, 20 rounds per stage)
// of a seeded Gaussian matrix per iteration, wall-clock, all cores unless --benchmark_filter picks
// the single-thread runs. Quality figures come from examples/quality (anybcq_quality).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "anybcq/quant/quantize.hpp"

using namespace anybcq;

static void BM_Quantize(benchmark::State& state) {
  const index_t M = state.range(0), K = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const auto policy = static_cast<quant::OffsetPolicy>(state.range(3));
  std::mt19937_64 rng(42);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(M * K));
  for (auto& x : w) x = d(rng);
  quant::QuantizeOptions o;
  o.threads = threads;
  o.offset = policy;
  for (auto _ : state) {
    auto q = quant::quantize(w.data(), M, K, o);
    benchmark::DoNotOptimize(q.planes().data());
  }
  state.counters["Mweights/s"] = benchmark::Counter(double(M * K) * double(state.iterations()) / 1e6,
                                                    benchmark::Counter::kIsRate);
}

// Args: rows, cols, threads (0 = all), offset policy (0 kept, 1 re-solved, 2 per-group best).
BENCHMARK(BM_Quantize)
    ->Args({4096, 4096, 0, 2})
    ->Args({4096, 4096, 1, 2})
    ->Args({4096, 4096, 0, 0})
    ->Args({14336, 4096, 0, 2})
    ->Args({14336, 4096, 0, 0})
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true)
    ->UseRealTime();

BENCHMARK_MAIN();
