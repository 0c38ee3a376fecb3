// Lookup-table GEMV/GEMM (cpu/lut_gemm.hpp) against Eigen fp32 GEMV and dequantize + Eigen, hot and
// cold, 1 and 2 threads. Reports µs, effective GB/s (bytes the call must read) and the fraction of
// the streaming-read bandwidth measured in the same run (BM_ReadBandwidth, and once before the run).
//
// "cold": each iteration uses the next of several weight copies whose total is ≥ 256 MB (≫ the L3),
// so weights come from DRAM; "hot": one copy, reused.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/cpu/lut_gemm.hpp"

using namespace anybcq;

namespace {

constexpr std::size_t kColdBytes = std::size_t(256) << 20;

// ---- streaming read bandwidth ---------------------------------------------------------------------
#if ANYBCQ_CPU_SIMD
ANYBCQ_TARGET_AVX2 std::uint64_t read_stream(const std::uint64_t* p, std::size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (std::size_t i = 0; i + 16 <= n; i += 16) {
    a = _mm256_xor_si256(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_xor_si256(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    c = _mm256_xor_si256(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    d = _mm256_xor_si256(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  const __m256i x = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
  return std::uint64_t(_mm256_extract_epi64(x, 0) ^ _mm256_extract_epi64(x, 3));
}
#else
std::uint64_t read_stream(const std::uint64_t* p, std::size_t n) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s ^= p[i];
  return s;
}
#endif

struct Env {
  cpu::ThreadPool pool{2};
  cpu::detail::AlignedBuffer<std::uint64_t> stream{(std::size_t(512) << 20) / 8};
  double bw[3] = {0, 0, 0};  // GB/s measured before the run, by thread count
  Env() {
    for (std::size_t i = 0; i < stream.size(); ++i) stream.data()[i] = i * 0x9E3779B97F4A7C15ull;
  }
  // One pass over the 512 MB buffer with `threads` workers; returns GB/s.
  double read_pass(int threads) {
    std::uint64_t sink[2] = {0, 0};
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(
        [&](int w, int nw) {
          const std::size_t n = stream.size() / std::size_t(nw);
          sink[w] = read_stream(stream.data() + n * std::size_t(w), n);
        },
        threads);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(sink);
    return double(stream.size() * 8) / s * 1e-9;
  }
  double median_bw(int threads, int reps) {
    std::vector<double> v;
    for (int i = 0; i < reps; ++i) v.push_back(read_pass(threads));
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
};
Env& env() {
  static Env e;
  return e;
}

void BM_ReadBandwidth(benchmark::State& st) {
  const int threads = int(st.range(0));
  double last = 0;
  for (auto _ : st) last = env().read_pass(threads);
  st.counters["GBps"] = last;
  st.SetBytesProcessed(std::int64_t(st.iterations()) * std::int64_t(env().stream.size() * 8));
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- weights ---------------------------------------------------------------------------------------
struct Shape {
  index_t M, K;
};
const Shape kShapes[] = {{4096, 4096}, {14336, 4096}, {4096, 14336}};

using W = cpu::LutWeights<half_t>;

// Copies of one random P = 4 weight (p_min 2, group 128); rebuilt only when the shape changes.
const std::vector<std::unique_ptr<W>>& weights(int shape) {
  static int cached = -1;
  static std::vector<std::unique_ptr<W>> copies;
  if (cached != shape) {
    copies.clear();
    const Shape s = kShapes[shape];
    MultiPrecisionWeights<layout::PlaneMajor, half_t> base(BcqShape{s.M, s.K, 128, 2, 4, false});
    std::mt19937 rng(7);
    for (auto& w : base.planes()) w = std::uint32_t(rng());
    std::uniform_real_distribution<float> u(0.01f, 0.05f);
    for (auto& a : base.alpha()) a = to_half(u(rng));
    for (auto& b : base.beta()) b = to_half(u(rng) - 0.03f);
    auto first = std::make_unique<W>(base.convert<layout::RowTiled>());
    const std::size_t n = std::max<std::size_t>(2, kColdBytes / std::size_t(first->storage_bytes()) + 1);
    copies.push_back(std::move(first));
    for (std::size_t i = 1; i < n; ++i) copies.push_back(std::make_unique<W>(*copies[0]));
    cached = shape;
  }
  return copies;
}

std::vector<float> activations(index_t n, index_t k) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(std::size_t(n * k));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = d(rng) * (i % 97 == 0 ? 20.0f : 1.0f);
  return x;
}

void report(benchmark::State& st, double bytes, int threads) {
  st.counters["GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["bw_frac"] =
      benchmark::Counter(bytes * 1e-9 / env().bw[threads], benchmark::Counter::kIsIterationInvariantRate);
}

// Args: shape, p, threads, batch, cold, isa
void BM_Lut(benchmark::State& st) {
  const int shape = int(st.range(0)), p = int(st.range(1)), threads = int(st.range(2));
  const index_t n = st.range(3);
  const bool cold = st.range(4) != 0;
  const auto isa = static_cast<cpu::Isa>(st.range(5));
  if (!cpu::isa_supported(isa)) {
    st.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const auto& ws = weights(shape);
  const Shape s = kShapes[shape];
  const auto x = activations(n, s.K);
  std::vector<float> y(std::size_t(n * s.M));
  cpu::LutOptions o;
  o.isa = isa;
  o.threads = threads;
  std::size_t i = 0;
  for (auto _ : st) {
    const W& w = *ws[cold ? i++ % ws.size() : 0];
    cpu::lut_gemm(w, p, x.data(), n, y.data(), &env().pool, o);
    benchmark::ClobberMemory();
  }
  report(st, double(ws[0]->bytes(p)), threads);
  st.SetLabel(std::string(cpu::isa_name(isa)) + (cold ? " cold" : " hot"));
}

void lut_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"shape", "p", "thr", "n", "cold", "isa"});
  for (int shape = 0; shape < 3; ++shape)
    for (int cold : {1, 0})
      for (int thr : {1, 2})
        for (int p = 2; p <= 4; ++p) b->Args({shape, p, thr, 1, cold, int(cpu::Isa::kAvx512)});
  for (int shape = 0; shape < 3; ++shape)
    for (int p = 2; p <= 4; ++p) {
      b->Args({shape, p, 2, 8, 1, int(cpu::Isa::kAvx512)});
      b->Args({shape, p, 2, 1, 1, int(cpu::Isa::kAvx2)});
    }
  for (int n : {2, 4, 16, 64}) b->Args({0, 3, 2, n, 1, int(cpu::Isa::kAvx512)});
}
BENCHMARK(BM_Lut)->Apply(lut_args)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The same GEMV on the canonical scale tables (the RowTiled weights inside the same LutWeights copies,
// without the tiled scale copy): cold, 2 threads, AVX-512. Compare with BM_Lut …/n:1/cold:1/isa:2.
void BM_LutCanonicalScales(benchmark::State& st) {
  const int shape = int(st.range(0)), p = int(st.range(1));
  const auto& ws = weights(shape);
  const Shape s = kShapes[shape];
  const auto x = activations(1, s.K);
  std::vector<float> y(std::size_t(s.M));
  std::size_t i = 0;
  for (auto _ : st) {
    cpu::lut_gemv(ws[i++ % ws.size()]->weights(), p, x.data(), y.data(), &env().pool);
    benchmark::ClobberMemory();
  }
  report(st, double(ws[0]->bytes(p)), 2);
  st.SetLabel("avx512 canonical scales, cold");
}
BENCHMARK(BM_LutCanonicalScales)->ArgNames({"shape", "p"})->ArgsProduct({{0, 1, 2}, {2, 3, 4}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// int16 two-table variant (≈ exact): GEMV, cold, 2 threads, AVX-512 and AVX2. Args: shape, p, isa
void BM_LutInt16(benchmark::State& st) {
  const int shape = int(st.range(0)), p = int(st.range(1));
  const auto isa = static_cast<cpu::Isa>(st.range(2));
  if (!cpu::isa_supported(isa)) {
    st.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const auto& ws = weights(shape);
  const Shape s = kShapes[shape];
  const auto x = activations(1, s.K);
  std::vector<float> y(std::size_t(s.M));
  cpu::LutOptions o;
  o.isa = isa;
  o.tables = cpu::LutTables::kInt16;
  std::size_t i = 0;
  for (auto _ : st) {
    cpu::lut_gemm(*ws[i++ % ws.size()], p, x.data(), 1, y.data(), &env().pool, o);
    benchmark::ClobberMemory();
  }
  report(st, double(ws[0]->bytes(p)), 2);
  st.SetLabel(std::string(cpu::isa_name(isa)) + " int16 tables, cold");
}
BENCHMARK(BM_LutInt16)->ArgNames({"shape", "p", "isa"})
    ->ArgsProduct({{0, 1, 2}, {2, 3, 4}, {int(cpu::Isa::kAvx512), int(cpu::Isa::kAvx2)}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// Per-row precision inside one call: 8 rows at p = 2,2,3,3,3,4,4,4.
void BM_LutMixed(benchmark::State& st) {
  const int shape = int(st.range(0));
  const auto& ws = weights(shape);
  const Shape s = kShapes[shape];
  const auto x = activations(8, s.K);
  const int bits[8] = {2, 2, 3, 3, 3, 4, 4, 4};
  std::vector<float> y(std::size_t(8 * s.M));
  std::size_t i = 0;
  for (auto _ : st) {
    cpu::lut_gemm(ws[i++ % ws.size()]->multi_view(), bits, x.data(), 8, y.data(), &env().pool);
    benchmark::ClobberMemory();
  }
  report(st, double(ws[0]->bytes(4)), 2);
  st.SetLabel("avx512 cold, 8 rows p=2,2,3,3,3,4,4,4");
}
BENCHMARK(BM_LutMixed)->ArgName("shape")->DenseRange(0, 2)->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---- activation tables alone (built once per input; reusable across Q/K/V) ---------------------------
void BM_Tables(benchmark::State& st) {
  const index_t k = st.range(0);
  const int threads = int(st.range(1));
  const auto x = activations(1, k);
  for (auto _ : st) {
    auto a = cpu::LutActivations::build(x.data(), 1, k, 128, cpu::Isa::kAuto, &env().pool, threads);
    benchmark::DoNotOptimize(a.tables(0));
  }
  st.SetLabel("one activation row");
}
BENCHMARK(BM_Tables)->ArgNames({"K", "thr"})->ArgsProduct({{4096, 14336}, {1, 2}})->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// ---- accuracy: NMSE against the float64 reference on activations with outlier channels -------------
// Not a timing: one iteration; the counters carry NMSE for each activation block size.
void BM_Accuracy(benchmark::State& st) {
  const int p = int(st.range(0));
  const index_t ab = st.range(1);
  const bool wide = st.range(2) != 0;
  const index_t M = 1024, K = 4096, n = 4;
  MultiPrecisionWeights<layout::PlaneMajor, half_t> base(BcqShape{M, K, 128, 2, 4, false});
  std::mt19937 rng(3);
  for (auto& w : base.planes()) w = std::uint32_t(rng());
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  const auto& sl = base.scale_layout();
  for (int q = 2; q <= 4; ++q)
    for (index_t g = 0; g < K / 128; ++g)
      for (int i = 0; i < q; ++i)
        for (index_t m = 0; m < M; ++m)
          base.alpha()[std::size_t(sl.alpha_offset(q, g, i, m))] = to_half(0.05f * u(rng) / float(1 << i));
  for (auto& b : base.beta()) b = to_half(0.01f * (u(rng) - 1.0f));
  const W w = base.convert<layout::RowTiled>();
  // 1% of channels ×30 (LLM-like outlier features), the rest N(0, 1)
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> scale(std::size_t(K), 1.0f);
  for (auto& s : scale) s = (rng() % 100 == 0) ? 30.0f : 1.0f;
  std::vector<float> x(std::size_t(n * K));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = d(rng) * scale[i % std::size_t(K)];
  const auto ref = cpu::gemm_naive_f64(base.view(p), x.data(), n);
  std::vector<float> y(std::size_t(n * M));
  cpu::LutOptions o;
  o.act_block = ab;
  o.tables = wide ? cpu::LutTables::kInt16 : cpu::LutTables::kInt8;
  for (auto _ : st) cpu::lut_gemm(w, p, x.data(), n, y.data(), nullptr, o);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    num += (double(y[i]) - ref[i]) * (double(y[i]) - ref[i]);
    den += ref[i] * ref[i];
  }
  st.counters["nmse"] = num / den;
  st.SetLabel("1024x4096, 1% outlier channels x30");
}
BENCHMARK(BM_Accuracy)->ArgNames({"p", "act_block", "int16"})->ArgsProduct({{2, 3, 4}, {32, 64, 128}, {0, 1}})
    ->Iterations(1);

// ---- Eigen fp32 GEMV (one thread: Eigen does not thread matrix-vector products) ---------------------
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
void BM_EigenGemv(benchmark::State& st) {
  const int shape = int(st.range(0));
  const bool cold = st.range(1) != 0;
  const Shape s = kShapes[shape];
  const std::size_t bytes = std::size_t(s.M * s.K * 4);
  const std::size_t copies = cold ? std::max<std::size_t>(1, kColdBytes / bytes + 1) : 1;
  std::vector<RowMatrixF> w(copies, RowMatrixF::Random(s.M, s.K));
  const Eigen::VectorXf x = Eigen::VectorXf::Random(s.K);
  Eigen::VectorXf y(s.M);
  std::size_t i = 0;
  for (auto _ : st) {
    y.noalias() = w[i++ % copies] * x;
    benchmark::ClobberMemory();
  }
  report(st, double(bytes), 1);
  st.SetLabel(cold ? "fp32 cold" : "fp32 hot");
}
BENCHMARK(BM_EigenGemv)->ArgNames({"shape", "cold"})->ArgsProduct({{0, 1, 2}, {1, 0}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---- dequantize to fp32, then Eigen GEMV (what a kernel-less engine would do per call) -------------
void BM_DequantEigen(benchmark::State& st) {
  const int p = int(st.range(0));
  const auto& w = *weights(0)[0];
  const auto v = w.view(p);
  RowMatrixF wd(v.rows, v.cols);
  const Eigen::VectorXf x = Eigen::VectorXf::Random(v.cols);
  Eigen::VectorXf y(v.rows);
  for (auto _ : st) {
    cpu::dequantize(v, wd.data());
    y.noalias() = wd * x;
    benchmark::ClobberMemory();
  }
  report(st, double(w.bytes(p)), 1);
  st.SetLabel("4096x4096, 1 thread");
}
BENCHMARK(BM_DequantEigen)->ArgName("p")->DenseRange(2, 4)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  Env& e = env();
  e.read_pass(2);  // warm up
  e.bw[1] = e.median_bw(1, 5);
  e.bw[2] = e.median_bw(2, 5);
  std::printf("streaming read bandwidth (512 MB, median of 5): 1 thread %.1f GB/s, 2 threads %.1f GB/s\n", e.bw[1],
              e.bw[2]);
  std::printf("kernel ISA detected: %s\n", cpu::isa_name(cpu::detect_isa()));
  benchmark::AddCustomContext("read_bw_1t_before", std::to_string(e.bw[1]));
  benchmark::AddCustomContext("read_bw_2t_before", std::to_string(e.bw[2]));
  benchmark::AddCustomContext("kernel_isa", cpu::isa_name(cpu::detect_isa()));
  benchmark::RunSpecifiedBenchmarks();
  // Bandwidth again after the run (the machine is shared: drift shows here).
  const double after1 = e.median_bw(1, 5), after2 = e.median_bw(2, 5);
  std::printf("streaming read bandwidth after the run: 1 thread %.1f GB/s, 2 threads %.1f GB/s\n", after1, after2);
  benchmark::Shutdown();
  return 0;
}
