// LutGemv timing (batch 1, 2, 4) against cuBLAS fp16 GEMV in the same process and against the published
// AnyBCQ kernel numbers of shared/reference/h100-baseline.md. CUDA events around CUDA-graph replays, each
// graph launching once on every one of several weight copies (> 256 MB in all, far beyond L2); median of
// 25 replays. Usage: bench_lut_gemv [--quick]   (batch 1 only)
//                     bench_lut_gemv --sweep     (batch 1, 4 / 8 / 16 warps per block)
//                     bench_lut_gemv --profile M K p   (two plain launches, for ncu)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "anybcq/cuda/lut_gemv.cuh"

using namespace anybcq;

namespace {

constexpr double kPeakBytesPerSecond = 3.10e12;  // H100 streaming-read ceiling (h100-baseline.md)
constexpr std::size_t kRotateBytes = std::size_t(256) << 20;
constexpr int kReplays = 25;

struct Shape {
  index_t M, K;
  double published[3];  // published AnyBCQ GEMV, p = 2, 3, 4 (µs, before the +1.07 µs output zeroing)
};
const Shape kShapes[] = {
    {4096, 4096, {7.26, 8.63, 10.85}},   {6144, 4096, {7.74, 9.21, 11.44}},
    {14336, 4096, {11.12, 14.39, 17.65}}, {4096, 14336, {12.08, 14.62, 18.06}},
    {28672, 4096, {19.70, 25.80, 33.11}},
};
constexpr double kZeroing = 1.07;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench_lut_gemv: %s failed: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

//! Capture `launches` calls of enqueue(i, stream) in one graph; return the median µs per call over replays.
template <class F>
double time_graph(int launches, F&& enqueue) {
  cudaStream_t s;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  cudaGraph_t g;
  cudaGraphExec_t ge;
  check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "BeginCapture");
  for (int i = 0; i < launches; ++i) enqueue(i, s);
  check(cudaStreamEndCapture(s, &g), "EndCapture");
  check(cudaGraphInstantiate(&ge, g, 0), "GraphInstantiate");
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "EventCreate");
  check(cudaEventCreate(&b), "EventCreate");
  for (int w = 0; w < 3; ++w) check(cudaGraphLaunch(ge, s), "GraphLaunch (warm-up)");
  std::vector<double> us;
  for (int r = 0; r < kReplays; ++r) {
    check(cudaEventRecord(a, s), "EventRecord");
    check(cudaGraphLaunch(ge, s), "GraphLaunch");
    check(cudaEventRecord(b, s), "EventRecord");
    check(cudaEventSynchronize(b), "EventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "EventElapsedTime");
    us.push_back(1000.0 * ms / launches);
  }
  check(cudaGetLastError(), "graph replays");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(ge);
  cudaGraphDestroy(g);
  cudaStreamDestroy(s);
  return median(us);
}

std::vector<std::uint16_t> random_half_bits(std::size_t n, std::mt19937_64& r, float sigma) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<std::uint16_t> v(n);
  for (auto& e : v) e = to_half(d(r)).bits;
  return v;
}

struct Row {
  index_t M, K, batch;
  int p;
  double us, gbs, frac, cublas_us, published_us;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--profile") == 0) {  // two plain launches of one shape, for ncu
    const index_t M = std::atoll(argv[2]), K = std::atoll(argv[3]);
    const int p = std::atoi(argv[4]);
    std::mt19937_64 r(1);
    MultiPrecisionWeights<> w(BcqShape{M, K, 128, 2, 4, false});
    for (auto& word : w.planes()) word = static_cast<std::uint32_t>(r());
    for (auto& a : w.alpha()) a = to_half(0.01f);
    for (auto& b : w.beta()) b = to_half(0.01f);
    cuda::GemvWeights<half_t> dw(w);
    const auto xh = random_half_bits(std::size_t(K), r, 1.0f);
    __half *x = nullptr, *y = nullptr;
    check(cudaMalloc(&x, xh.size() * 2), "cudaMalloc x");
    check(cudaMalloc(&y, std::size_t(M) * 2), "cudaMalloc y");
    check(cudaMemcpy(x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), "copy x");
    cuda::LutGemv<__half>::Arguments a;
    a.weights = dw.view();
    a.x = x;
    a.y = y;
    a.bits = p;
    for (int i = 0; i < 2; ++i)
      if (!cuda::LutGemv<__half>::run(a)) return 1;
    check(cudaDeviceSynchronize(), "profile run");
    std::printf("profiled %lld x %lld p=%d\n", (long long)M, (long long)K, p);
    return 0;
  }
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool sweep = argc > 1 && std::strcmp(argv[1], "--sweep") == 0;  // batch 1, warps per block 4 / 8 / 16
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  std::printf("device: %s, CUDA runtime %d.%d, %d SMs; roofline %.2f TB/s; median of %d graph replays\n", prop.name,
              rt / 1000, (rt % 1000) / 10, prop.multiProcessorCount, kPeakBytesPerSecond / 1e12, kReplays);
  std::mt19937_64 rng(std::random_device{}());
  cublasHandle_t h;
  ANYBCQ_CUBLAS_CHECK(cublasCreate(&h));
  void* cublas_ws = nullptr;
  check(cudaMalloc(&cublas_ws, 32u << 20), "cudaMalloc (cuBLAS workspace)");
  ANYBCQ_CUBLAS_CHECK(cublasSetWorkspace(h, cublas_ws, 32u << 20));
  std::vector<Row> rows;
  const index_t batches[] = {1, 2, 4};

  for (const Shape& sh : kShapes) {
    const index_t M = sh.M, K = sh.K;
    // Random BCQ weights, p_max = 4, levels 2..4, group 128 (random planes and scales).
    BcqShape s{M, K, 128, 2, 4, false};
    MultiPrecisionWeights<> w(s);
    for (auto& word : w.planes()) word = static_cast<std::uint32_t>(rng());
    std::uniform_real_distribution<float> ua(0.001f, 0.05f), ub(-0.02f, 0.02f);
    for (auto& a : w.alpha()) a = to_half(ua(rng));
    for (auto& b : w.beta()) b = to_half(ub(rng));
    const std::size_t copy_bytes = std::size_t(w.storage_bytes());
    const int copies = int(std::max<std::size_t>(2, kRotateBytes / copy_bytes + 1));
    std::vector<cuda::GemvWeights<half_t>> dw;
    dw.reserve(copies);
    for (int c = 0; c < copies; ++c) dw.emplace_back(w);

    const auto xh = random_half_bits(std::size_t(4 * K), rng, 1.0f);
    __half *x = nullptr, *y = nullptr;
    check(cudaMalloc(&x, xh.size() * 2), "cudaMalloc x");
    check(cudaMalloc(&y, std::size_t(4 * M) * 2), "cudaMalloc y");
    check(cudaMemcpy(x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), "copy x");

    // cuBLAS fp16 weights (random, rotated the same way).
    const std::size_t wbytes = std::size_t(M * K) * 2;
    const int ccopies = int(std::max<std::size_t>(2, kRotateBytes / wbytes + 1));
    std::vector<__half*> cw(ccopies, nullptr);
    {
      const auto wh = random_half_bits(std::size_t(M * K), rng, 0.02f);
      for (auto& p : cw) {
        check(cudaMalloc(&p, wbytes), "cudaMalloc cuBLAS weights");
        check(cudaMemcpy(p, wh.data(), wbytes, cudaMemcpyHostToDevice), "copy cuBLAS weights");
      }
    }

    for (index_t n : batches) {
      if ((quick || sweep) && n != 1) continue;
      const float one = 1.0f, zero = 0.0f;
      const double cublas_us = time_graph(ccopies, [&](int i, cudaStream_t st) {
        ANYBCQ_CUBLAS_CHECK(cublasSetStream(h, st));
        // y(M×n, col-major) = W(K×M col-major = M×K row-major)ᵀ · x(K×n)
        ANYBCQ_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(M), int(n), int(K), &one, cw[i % ccopies],
                                         CUDA_R_16F, int(K), x, CUDA_R_16F, int(K), &zero, y, CUDA_R_16F, int(M),
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      });
      for (int p = 2; p <= 4; ++p) {
        if (sweep) {
          std::printf("%6lld x %-6lld p=%d", (long long)M, (long long)K, p);
          for (int wq : {4, 8, 16}) {
            const double t = time_graph(copies, [&](int i, cudaStream_t st) {
              cuda::LutGemv<__half>::Arguments a;
              a.weights = dw[std::size_t(i % copies)].view();
              a.x = x;
              a.y = y;
              a.bits = p;
              a.warps = wq;
              if (!cuda::LutGemv<__half>::run(a, st)) std::exit(1);
            });
            std::printf("  W=%d: %.2f us", wq, t);
          }
          std::printf("\n");
          std::fflush(stdout);
          continue;
        }
        const double us = time_graph(copies, [&](int i, cudaStream_t st) {
          cuda::LutGemv<__half>::Arguments a;
          a.weights = dw[std::size_t(i % copies)].view();
          a.x = x;
          a.y = y;
          a.bits = p;
          a.batch = n;
          const cuda::Check c = cuda::LutGemv<__half>::run(a, st);
          if (!c) {
            std::fprintf(stderr, "bench_lut_gemv: run failed: %s\n", c.message.c_str());
            std::exit(1);
          }
        });
        const double bytes = double(p) * M * K / 8 + double(p + 1) * (K / 128) * M * 2 + double(n) * K * 2 +
                             double(n) * M * 2;
        Row r{M, K, n, p, us, bytes / (us * 1e-6) / 1e9, bytes / kPeakBytesPerSecond / (us * 1e-6), cublas_us,
              n == 1 ? sh.published[p - 2] + kZeroing : NAN};
        rows.push_back(r);
        std::printf("%6lld x %-6lld p=%d batch=%lld  %7.2f us  %7.0f GB/s  %.3f of roofline  cuBLAS %7.2f us (x%.2f)",
                    (long long)M, (long long)K, p, (long long)n, us, r.gbs, r.frac, cublas_us, cublas_us / us);
        if (n == 1) std::printf("  published %.2f us (x%.2f)", r.published_us, r.published_us / us);
        std::printf("  [%d copies]\n", copies);
        std::fflush(stdout);
      }
    }
    for (auto* p : cw) cudaFree(p);
    cudaFree(x);
    cudaFree(y);
  }

  std::printf("\n| M×K | batch | p | LutGemv µs | GB/s | roofline frac | cuBLAS fp16 µs | vs cuBLAS | published (+1.07) µs | vs published |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    std::printf("| %lld×%lld | %lld | %d | %.2f | %.0f | %.2f | %.2f | %.2f× |", (long long)r.M, (long long)r.K,
                (long long)r.batch, r.p, r.us, r.gbs, r.frac, r.cublas_us, r.cublas_us / r.us);
    if (r.batch == 1) std::printf(" %.2f | %.2f× |\n", r.published_us, r.published_us / r.us);
    else std::printf(" – | – |\n");
  }
  cublasDestroy(h);
  cudaFree(cublas_ws);
  return 0;
}
