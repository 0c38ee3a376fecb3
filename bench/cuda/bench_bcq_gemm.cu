// Times AnyBCQ's CUDA GEMV/GEMM against cuBLAS fp16 on the same card, in one run.
//
// Every configuration is timed as CUDA-graph replays: one graph holds kCallsPerGraph calls, call i
// reading weight copy i mod copies, with enough copies that their total is far beyond L2 (≥ 256 MB).
// Each replay is timed with events; the table shows the median replay time / kCallsPerGraph.
// Inputs are fresh random values per configuration (never zeros); every launch's error is checked.
//
// Usage: bench_bcq_gemm [--quick] [--csv FILE]
// Where the binary-mma path is taken, a second row "bmma+reuse" times the same calls with
// Arguments::reuse_packed_x (activation bit planes packed once, as for K and V after Q).
// From batch 2 on, a "per-row" row times one call whose rows ask for p = 2, 3, 4, 2, 3, 4, … (a device
// array, Arguments::row_bits) and compares it with the uniform call at the batch's highest p; with
// --per-row-paths, one such row for every path that takes the call (split-dq, split-cublas, split-wg in
// sm_90a builds, bmma, and fused-dq up to batch 64). Each per-row row is followed by a "per-row+m" row:
// the same call with Arguments::row_bits_mask naming the precisions its rows ask for.
//   roofline = bytes that must move / kPeakBytesPerSecond (3.10 TB/s, the H100 streaming-read ceiling
//   measured with the reference numbers); bytes for AnyBCQ at p: p·M·K/8 + (p+1)·(K/g)·M·2 (g = --group, 128 by default) + x + y.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "anybcq/cuda/bcq_gemm.cuh"
#include "cuda/graph_timing.cuh"

using namespace anybcq;

namespace {

constexpr double kPeakBytesPerSecond = 3.10e12;
constexpr int kCallsPerGraph = 20;
constexpr int kReplays = 15;
constexpr std::size_t kRotateBytes = std::size_t(256) << 20;

#define CHECK_CUDA(x) ANYBCQ_CUDA_CHECK(x)
#define CHECK_CUBLAS(x) ANYBCQ_CUBLAS_CHECK(x)

__device__ __forceinline__ std::uint32_t hash32(std::uint64_t i, std::uint32_t seed) {
  std::uint64_t z = i * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<std::uint32_t>(z ^ (z >> 31));
}
__global__ void fill_words(std::uint32_t* p, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    p[i] = hash32(i, seed);
}
//! Uniform in [lo, hi) as fp16.
__global__ void fill_half(__half* p, std::size_t n, std::uint32_t seed, float lo, float hi) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    p[i] = __float2half(lo + (hi - lo) * (hash32(i, seed) >> 8) * (1.0f / 16777216.0f));
}
__global__ void count_bad(const __half* p, std::size_t n, unsigned long long* bad) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    if (!isfinite(__half2float(p[i]))) atomicAdd(bad, 1ull);
}

std::uint32_t g_seed = 12345;
void fill(std::uint32_t* p, std::size_t n) {
  fill_words<<<1024, 256>>>(p, n, g_seed++);
  CHECK_CUDA(cudaGetLastError());
}
void fill(__half* p, std::size_t n, float lo, float hi) {
  fill_half<<<1024, 256>>>(p, n, g_seed++, lo, hi);
  CHECK_CUDA(cudaGetLastError());
}

template <class F>
double time_graph(cudaStream_t s, F&& enqueue_calls) {
  return bench::time_graph(s, kCallsPerGraph, kReplays, enqueue_calls);
}

struct Shape {
  index_t M, K;
};

//! Times `calls` as graph replays and checks one eager call first (every output finite).
template <class G>
double time_ours(G& gemm, std::vector<typename G::Arguments>& args, void* ws, std::size_t ws_bytes, __half* y,
                 unsigned long long* bad, index_t n, index_t M, cudaStream_t s, bool& ok) {
  CHECK_CUDA(cudaMemsetAsync(y, 0xFF, static_cast<std::size_t>(n * M) * 2, s));
  gemm(args[0], ws, ws_bytes, s);
  CHECK_CUDA(cudaMemsetAsync(bad, 0, sizeof(unsigned long long), s));
  count_bad<<<256, 256, 0, s>>>(y, static_cast<std::size_t>(n * M), bad);
  CHECK_CUDA(cudaGetLastError());
  unsigned long long nbad = 0;
  CHECK_CUDA(cudaMemcpyAsync(&nbad, bad, sizeof nbad, cudaMemcpyDeviceToHost, s));
  CHECK_CUDA(cudaStreamSynchronize(s));
  ok = nbad == 0;
  if (!ok) return 0.0;
  const int copies = static_cast<int>(args.size());
  return time_graph(s, [&] {
    for (int i = 0; i < kCallsPerGraph; ++i) gemm(args[i % copies], ws, ws_bytes, s);
  });
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  const char* csv_path = nullptr;
  long only_m = 0, only_k = 0, only_n = 0, group = 128;
  int only_p = 0;
  bool sweep = false, pdl = true, per_row_paths = false;
  cuda::GemmPath force = cuda::GemmPath::kAuto;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--csv") && i + 1 < argc) csv_path = argv[++i];
    else if (!std::strcmp(argv[i], "--shape") && i + 1 < argc) std::sscanf(argv[++i], "%ldx%ld", &only_m, &only_k);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) only_n = std::atol(argv[++i]);
    else if (!std::strcmp(argv[i], "--p") && i + 1 < argc) only_p = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--group") && i + 1 < argc) group = std::atol(argv[++i]);
    else if (!std::strcmp(argv[i], "--sweep")) sweep = true;
    else if (!std::strcmp(argv[i], "--no-pdl")) pdl = false;
    else if (!std::strcmp(argv[i], "--per-row-paths")) per_row_paths = true;
    else if (!std::strcmp(argv[i], "--path") && i + 1 < argc) {
      const std::string v = argv[++i];
      bool known = false;
      for (const auto q : {cuda::GemmPath::kAuto, cuda::GemmPath::kFusedBitSerial, cuda::GemmPath::kFusedDequant,
                           cuda::GemmPath::kDequantCublas, cuda::GemmPath::kLut, cuda::GemmPath::kWgmmaDequant,
                           cuda::GemmPath::kBinaryMma})  // the per-row-only paths: --per-row-paths
        if (v == cuda::to_string(q)) {
          force = q;
          known = true;
        }
      if (!known) {
        std::fprintf(stderr, "unknown path '%s'\n", v.c_str());
        return 2;
      }
    } else {
      std::printf("usage: %s [--quick] [--csv FILE] [--shape MxK] [--batch N] [--p P] [--group G]"
                  " [--path auto|bitserial|fused-dq|deq+cublas|lut|wgmma-dq|bmma]"
                  " [--sweep] [--no-pdl] [--per-row-paths]\n"
                  "  --group: scale group size (default 128; it must divide K of every shape timed)\n"
                  "  --no-pdl: launch the binary-mma path's kernels without programmatic dependent launch\n"
                  "  (from batch 2, a per-row row times one call whose rows ask for p = 2, 3, 4, 2, ... against the\n"
                  "   uniform call at the batch's highest p, and a per-row+m row the same call with row_bits_mask;\n"
                  "   with --path other than auto or bitserial they are left out;\n"
                  "   --per-row-paths: one per-row row for each of split-dq, split-cublas, split-wg (sm_90a builds), bmma\n"
                  "   and (batch <= 64) fused-dq that takes the call)\n"
                  "  --sweep: also time the path taken with every K split it allows (register-dequantizing kernel:\n"
                  "           1, 2, 4, 8 slices per block; LUT and binary-mma kernels: 1, 2, 4, 8; warpgroup kernel: 1, 2, 4, 8\n"
                  "           blocks per output tile)\n",
                  argv[0]);
      return 2;
    }
  }
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("no CUDA device: skipping\n");
    return 0;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  int rt = 0, drv = 0;
  CHECK_CUDA(cudaRuntimeGetVersion(&rt));
  CHECK_CUDA(cudaDriverGetVersion(&drv));
  std::printf("device: %s, %d SMs, L2 %d MB; CUDA runtime %d.%d, driver %d.%d\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20, rt / 1000, (rt % 1000) / 10, drv / 1000, (drv % 1000) / 10);
  std::printf("timing: median of %d CUDA-graph replays, %d calls each, weights rotated over >= %zu MB; scale group %ld\n",
              kReplays, kCallsPerGraph, kRotateBytes >> 20, group);
  FILE* csv = csv_path ? std::fopen(csv_path, "w") : nullptr;
  if (csv) std::fprintf(csv, "M,K,batch,p,path,us,cublas_us,roofline_us,frac_roofline,speedup_vs_fp16,gbps\n");

  std::vector<Shape> shapes = {{4096, 4096}, {6144, 4096}, {14336, 4096}, {4096, 14336}, {28672, 4096}};
  std::vector<index_t> batches = {1, 2, 4, 8, 16, 32, 64, 256, 1024};
  if (quick) {
    shapes = {{4096, 4096}, {14336, 4096}, {28672, 4096}};
    batches = {1, 8, 16, 64, 256};
  }
  if (only_m) shapes = {{only_m, only_k}};
  if (only_n) batches = {only_n};
  const int p_max = 4, p_min = 2;
  for (const Shape sh : shapes)
    if (group < 32 || group % 32 != 0 || sh.K % group != 0) {
      std::fprintf(stderr, "--group %ld: must be a multiple of 32 that divides K (%ld)\n", group, long(sh.K));
      return 2;
    }

  cudaStream_t s;
  CHECK_CUDA(cudaStreamCreate(&s));
  cublasHandle_t cub;
  CHECK_CUBLAS(cublasCreate(&cub));
  CHECK_CUBLAS(cublasSetStream(cub, s));
  void* cublas_ws = nullptr;
  CHECK_CUDA(cudaMalloc(&cublas_ws, 32u << 20));
  CHECK_CUBLAS(cublasSetWorkspace(cub, cublas_ws, 32u << 20));

  std::printf("\n%-11s %5s %2s %-10s %9s %9s %9s %6s %8s %8s\n", "MxK", "batch", "p", "path", "us", "fp16_us",
              "roof_us", "roof%", "GB/s", "vs_fp16");
  for (const Shape sh : shapes) {
    // The previous shape ended with batch-1024 GEMMs; give the card a second to cool down so that the
    // memory-bound batch-1 calls are not timed at reduced clocks.
    CHECK_CUDA(cudaDeviceSynchronize());
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const index_t M = sh.M, K = sh.K;
    // Weight copies: AnyBCQ (MmaTiled planes + scales, p_max = 4) and fp16 for cuBLAS.
    const auto lay = layout::make_mma_tiled(M, K, p_max);
    const layout::ScaleLayout sl{M, K / group, p_min, p_max};
    const std::size_t plane_words = static_cast<std::size_t>(lay.size_words());
    const std::size_t bcq_bytes = plane_words * 4 + static_cast<std::size_t>(sl.alpha_size() + sl.beta_size()) * 2;
    const int bcq_copies = static_cast<int>(std::max<std::size_t>(2, (kRotateBytes + bcq_bytes - 1) / bcq_bytes));
    const std::size_t fp16_bytes = static_cast<std::size_t>(M * K) * 2;
    const int fp16_copies = static_cast<int>(std::max<std::size_t>(2, (kRotateBytes + fp16_bytes - 1) / fp16_bytes));
    std::vector<std::uint32_t*> planes(bcq_copies);
    std::vector<__half*> alpha(bcq_copies), beta(bcq_copies), wf16(fp16_copies);
    for (int c = 0; c < bcq_copies; ++c) {
      CHECK_CUDA(cudaMalloc(&planes[c], plane_words * 4));
      CHECK_CUDA(cudaMalloc(&alpha[c], static_cast<std::size_t>(sl.alpha_size()) * 2));
      CHECK_CUDA(cudaMalloc(&beta[c], static_cast<std::size_t>(sl.beta_size()) * 2));
      fill(planes[c], plane_words);
      fill(alpha[c], static_cast<std::size_t>(sl.alpha_size()), 0.002f, 0.02f);
      fill(beta[c], static_cast<std::size_t>(sl.beta_size()), -0.01f, 0.01f);
    }
    for (int c = 0; c < fp16_copies; ++c) {
      CHECK_CUDA(cudaMalloc(&wf16[c], fp16_bytes));
      fill(wf16[c], static_cast<std::size_t>(M * K), -0.05f, 0.05f);
    }
    const index_t nmax = batches.back();
    __half *x = nullptr, *y = nullptr;
    CHECK_CUDA(cudaMalloc(&x, static_cast<std::size_t>(nmax * K) * 2));
    CHECK_CUDA(cudaMalloc(&y, static_cast<std::size_t>(nmax * M) * 2));
    unsigned long long* bad = nullptr;
    CHECK_CUDA(cudaMalloc(&bad, sizeof(unsigned long long)));
    // Per-row precisions 2, 3, 4, 2, 3, 4, … for the per-row rows.
    int* row_bits = nullptr;
    {
      std::vector<int> rb(static_cast<std::size_t>(nmax));
      for (std::size_t i = 0; i < rb.size(); ++i) rb[i] = p_min + int(i % (p_max - p_min + 1));
      CHECK_CUDA(cudaMalloc(&row_bits, rb.size() * sizeof(int)));
      CHECK_CUDA(cudaMemcpy(row_bits, rb.data(), rb.size() * sizeof(int), cudaMemcpyHostToDevice));
    }
    void* ws = nullptr;
    std::size_t ws_bytes = 0;

    // Grows the workspace to what a call needs.
    auto ensure_ws = [&](const cuda::Gemm<__half>::Arguments& a) {
      const std::size_t need = cuda::Gemm<__half>::workspace_size(a);
      if (need > ws_bytes) {
        if (ws) CHECK_CUDA(cudaFree(ws));
        CHECK_CUDA(cudaMalloc(&ws, need));
        ws_bytes = need;
      }
    };
    // One call's arguments per weight copy: batch n at precision p, or per row (rb, a device array).
    auto make_args = [&](index_t n, int p, const int* rb, std::vector<cuda::Gemm<__half>::Arguments>& args,
                         cuda::GemmPath path = cuda::GemmPath::kAuto, bool report = true, unsigned rb_mask = 0) {
      if (path == cuda::GemmPath::kAuto) path = force;
      args.assign(static_cast<std::size_t>(bcq_copies), {});
      for (int c = 0; c < bcq_copies; ++c) {
        MultiPrecisionView<layout::MmaTiled, half_t> v;
        v.planes = planes[c];
        v.alpha = reinterpret_cast<const half_t*>(alpha[c]);
        v.beta = reinterpret_cast<const half_t*>(beta[c]);
        v.layout = lay;
        v.scales = sl;
        v.rows = M;
        v.cols = K;
        v.group = group;
        v.alpha_max = 0.03f;  // fill() above draws α from [0.002, 0.02)
        args[c].weights = v;
        args[c].x = x;
        args[c].y = y;
        args[c].batch = n;
        args[c].bits = p;
        args[c].row_bits = rb;
        args[c].row_bits_mask = rb_mask;
        args[c].path = path;
        args[c].pdl = pdl;
        const cuda::Check chk = cuda::Gemm<__half>::can_implement(args[c]);
        if (!chk.ok()) {
          if (report) std::fprintf(stderr, "%s\n", chk.message.c_str());
          return false;
        }
      }
      return true;
    };
    for (const index_t n : batches) {
      fill(x, static_cast<std::size_t>(n * K), -1.0f, 1.0f);  // fresh activations per batch size
      const float one = 1.0f, zero = 0.0f;
      const double t_fp16 = time_graph(s, [&] {
        for (int i = 0; i < kCallsPerGraph; ++i)
          CHECK_CUBLAS(cublasGemmEx(cub, CUBLAS_OP_T, CUBLAS_OP_N, int(M), int(n), int(K), &one, wf16[i % fp16_copies],
                                    CUDA_R_16F, int(K), x, CUDA_R_16F, int(K), &zero, y, CUDA_R_16F, int(M),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      });
      const double fp16_roof = 1e6 * double(M * K * 2 + n * K * 2 + n * M * 2) / kPeakBytesPerSecond;
      std::printf("%5ldx%-5ld %5ld %2s %-10s %9.2f %9s %9.2f %5.0f%% %8.0f %8s\n", long(M), long(K), long(n), "-",
                  "cublas", t_fp16, "", fp16_roof, 100 * fp16_roof / t_fp16,
                  double(M * K * 2 + n * K * 2 + n * M * 2) / (t_fp16 * 1e3), "1.00");
      if (csv)
        std::fprintf(csv, "%ld,%ld,%ld,16,cublas_fp16,%.3f,%.3f,%.3f,%.4f,1.0,%.1f\n", long(M), long(K), long(n), t_fp16,
                     t_fp16, fp16_roof, fp16_roof / t_fp16, double(M * K * 2 + n * K * 2 + n * M * 2) / (t_fp16 * 1e3));
      double t_uniform[p_max + 1] = {};
      for (int p = 2; p <= 4; ++p) {
        if (only_p && p != only_p) continue;
        cuda::Gemm<__half> gemm;
        gemm.initialize();
        std::vector<cuda::Gemm<__half>::Arguments> args;
        if (!make_args(n, p, nullptr, args)) return 1;
        ensure_ws(args[0]);
        bool ok = false;
        const double t = time_ours(gemm, args, ws, ws_bytes, y, bad, n, M, s, ok);
        if (!ok) {
          std::fprintf(stderr, "%ld x %ld batch %ld p %d: outputs not finite\n", long(M), long(K), long(n), p);
          return 1;
        }
        const cuda::GemmPath taken = cuda::Gemm<__half>::path(args[0]);
        // Batch-1 paths (LUT, binary mma) and the warpgroup kernel sweep their own splits; others fused-dq's.
        const bool gemv = taken == cuda::GemmPath::kLut || taken == cuda::GemmPath::kBinaryMma,
                   wg = taken == cuda::GemmPath::kWgmmaDequant;
        if (sweep) {
          const int max_ks = gemv ? 8 : wg ? cuda::DefaultTuning::kWgMaxSplits : cuda::DefaultTuning::kDqWarps;
          for (int ks = 1; ks <= max_ks; ks *= 2) {
            auto a2 = args;
            for (auto& x2 : a2) {
              x2.path = gemv || wg ? taken : cuda::GemmPath::kFusedDequant;
              x2.k_slices = ks;
            }
            ensure_ws(a2[0]);
            bool ok2 = false;
            const double t2 = time_ours(gemm, a2, ws, ws_bytes, y, bad, n, M, s, ok2);
            std::printf("  sweep %5ldx%-5ld n=%ld p=%d slices=%d: %.2f us%s\n", long(M), long(K), long(n), p, ks, t2,
                        ok2 ? "" : " NOT FINITE");
          }
        }
        const double bytes = double(p) * M * K / 8 + double(p + 1) * (K / group) * M * 2 + n * K * 2 + n * M * 2;
        const double roof = 1e6 * bytes / kPeakBytesPerSecond;
        const char* path = cuda::to_string(cuda::Gemm<__half>::path(args[0]));
        auto print_row = [&](const char* label, double us) {
          std::printf("%5ldx%-5ld %5ld %2d %-10s %9.2f %9.2f %9.2f %5.0f%% %8.0f %7.2fx\n", long(M), long(K), long(n), p,
                      label, us, t_fp16, roof, 100 * roof / us, bytes / (us * 1e3), t_fp16 / us);
        };
        print_row(path, t);
        t_uniform[p] = t;
        if (csv)
          std::fprintf(csv, "%ld,%ld,%ld,%d,%s,%.3f,%.3f,%.3f,%.4f,%.4f,%.1f\n", long(M), long(K), long(n), p, path, t,
                       t_fp16, roof, roof / t, t_fp16 / t, bytes / (t * 1e3));
        if (taken == cuda::GemmPath::kBinaryMma) {
          // The same calls taking the activations' bit planes from the workspace (Arguments::reuse_packed_x,
          // as for K and V after Q): no packing kernel. The workspace holds this x's planes from the calls
          // just timed. Printed only (not in the CSV, whose rows are one per path taken).
          auto a2 = args;
          for (auto& x2 : a2) x2.reuse_packed_x = true;
          bool ok2 = false;
          const double t2 = time_ours(gemm, a2, ws, ws_bytes, y, bad, n, M, s, ok2);
          if (!ok2) {
            std::fprintf(stderr, "%ld x %ld batch %ld p %d (reused bit planes): outputs not finite\n", long(M), long(K),
                         long(n), p);
            return 1;
          }
          print_row("bmma+reuse", t2);
        }
      }
      // Per-row precision (rows at 2, 3, 4, …): the path the dispatcher takes for it (and, with --per-row-paths,
      // every other path that takes it), against the uniform call at the batch's highest p. Printed only (the
      // CSV has one row per uniform-precision path).
      const int p_top = n >= p_max - p_min + 1 ? p_max : p_min + int(n) - 1;
      std::vector<cuda::GemmPath> row_paths{force};
      if (per_row_paths && force == cuda::GemmPath::kAuto)
        for (const auto q : {cuda::GemmPath::kSplitDequant, cuda::GemmPath::kSplitCublas, cuda::GemmPath::kSplitWgmma,
                             cuda::GemmPath::kBinaryMma, cuda::GemmPath::kFusedDequant})
          if (q != cuda::GemmPath::kFusedDequant || n <= 64) row_paths.push_back(q);
      std::vector<cuda::GemmPath> row_taken;
      if (n >= 2 && t_uniform[p_top] > 0 &&
          (force == cuda::GemmPath::kAuto || force == cuda::GemmPath::kFusedBitSerial))
        for (const cuda::GemmPath rp : row_paths) {
          cuda::Gemm<__half> gemm;
          gemm.initialize();
          std::vector<cuda::Gemm<__half>::Arguments> args;
          if (!make_args(n, 0, row_bits, args, rp, rp == force)) {
            if (rp == force) return 1;
            continue;  // a path that cannot take this call
          }
          const cuda::GemmPath taken = cuda::Gemm<__half>::path(args[0]);
          if (std::find(row_taken.begin(), row_taken.end(), taken) != row_taken.end()) continue;
          row_taken.push_back(taken);
          // The call as it is, then with Arguments::row_bits_mask naming the precisions its rows ask for.
          const unsigned present = cuda::detail::precision_bits(p_min, p_top);
          for (const unsigned mask : {0u, present}) {
            if (mask && !make_args(n, 0, row_bits, args, rp, true, mask)) return 1;
            ensure_ws(args[0]);
            bool ok = false;
            const double t = time_ours(gemm, args, ws, ws_bytes, y, bad, n, M, s, ok);
            if (!ok) {
              std::fprintf(stderr, "%ld x %ld batch %ld per-row p: outputs not finite\n", long(M), long(K), long(n));
              return 1;
            }
            const double bytes = double(p_top) * M * K / 8 + double(p_top + 1) * (K / group) * M * 2 + n * K * 2 + n * M * 2;
            const double roof = 1e6 * bytes / kPeakBytesPerSecond;
            std::printf("%5ldx%-5ld %5ld %2s %-10s %9.2f %9.2f %9.2f %5.0f%% %8.0f %7.2fx  per-row (%s%s), %.2fx the uniform p = %d call\n",
                        long(M), long(K), long(n), "*", mask ? "per-row+m" : "per-row", t, t_fp16, roof, 100 * roof / t,
                        bytes / (t * 1e3), t_fp16 / t, cuda::to_string(taken), mask ? ", row_bits_mask" : "",
                        t / t_uniform[p_top], p_top);
          }
        }
    }
    std::fflush(stdout);
    if (csv) std::fflush(csv);
    for (int c = 0; c < bcq_copies; ++c) {
      CHECK_CUDA(cudaFree(planes[c]));
      CHECK_CUDA(cudaFree(alpha[c]));
      CHECK_CUDA(cudaFree(beta[c]));
    }
    for (int c = 0; c < fp16_copies; ++c) CHECK_CUDA(cudaFree(wf16[c]));
    CHECK_CUDA(cudaFree(x));
    CHECK_CUDA(cudaFree(y));
    CHECK_CUDA(cudaFree(bad));
    CHECK_CUDA(cudaFree(row_bits));
    if (ws) CHECK_CUDA(cudaFree(ws));
  }
  if (csv) std::fclose(csv);
  CHECK_CUBLAS(cublasDestroy(cub));
  CHECK_CUDA(cudaFree(cublas_ws));
  CHECK_CUDA(cudaStreamDestroy(s));
  return 0;
}
