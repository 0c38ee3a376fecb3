// anybcq_gpu — the CUDA path end to end: quantize a seeded layer on the host, upload it, and run
// cuda::Gemm at every precision and with per-row precisions; each call is checked against the CPU
// reference and timed against cuBLAS fp16 on the same card.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "anybcq/cuda/bcq_gemm.cuh"
#include "anybcq/cuda/device_weights.cuh"
#include "cuda/graph_timing.cuh"
#include "host.hpp"

namespace {

using anybcq::half_t;
using anybcq::index_t;
namespace acuda = anybcq::cuda;  // `cuda::` alone may clash with CCCL's namespace (docs/perf/gpu.md)

constexpr int kCallsPerGraph = 20;
constexpr int kReplays = 15;
constexpr std::size_t kRotateBytes = std::size_t(256) << 20;
constexpr double kFp16Tolerance = 2e-3;  // relative Frobenius error of fp16 outputs (as in tests/cuda)

void usage() {
  std::puts(
      "usage: anybcq_gpu [--rows M] [--cols K] [--group G] [--batch N,N,...] [--seed S] [--threads T] [--no-time]\n"
      "Quantizes a seeded Gaussian M x K layer on the host (default 4096 x 4096, p = 2..4, group 128,\n"
      "T threads, 0 = all), uploads it (cuda::DeviceWeights, MmaTiled layout) and, for each batch N\n"
      "(default 1,8,64,256), runs cuda::Gemm<__half> at p = 2, 3, 4 and, from batch 2, with per-row\n"
      "precisions 2, 3, 4, 2, ... (Arguments::row_bits). Each call's output is compared with the CPU\n"
      "reference (relative Frobenius error, fp16 outputs, limit 2e-3) and timed as CUDA-graph replays with\n"
      "the weights rotated over >= 256 MB of copies, beside cuBLAS fp16 on the same shape (--no-time: check\n"
      "only). Exit status 0 when every call matches; without a CUDA device it says so and exits 0.");
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "anybcq_gpu: %s\n", what.c_str());
  std::exit(2);
}

index_t parse_positive(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n <= 0) die(flag + " needs a positive integer, not '" + v + "'");
  return static_cast<index_t>(n);
}

std::vector<index_t> parse_list(const std::string& flag, const std::string& v) {
  std::vector<index_t> out;
  std::size_t at = 0;
  while (at <= v.size()) {
    const std::size_t comma = std::min(v.find(',', at), v.size());
    out.push_back(parse_positive(flag, v.substr(at, comma - at)));
    at = comma + 1;
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

//! Device copies of one uploaded weight object, so that timed calls stream their weights from memory.
struct WeightCopies {
  std::vector<void*> buffers;
  std::vector<acuda::DeviceWeights<>::view_type> views;
  WeightCopies(const acuda::DeviceWeights<>::view_type& v, int copies) {
    const std::size_t planes = static_cast<std::size_t>(v.layout.size_words()) * 4;
    const std::size_t alpha = static_cast<std::size_t>(v.scales.alpha_size()) * sizeof(half_t);
    const std::size_t beta = v.beta ? static_cast<std::size_t>(v.scales.beta_size()) * sizeof(half_t) : 0;
    views.push_back(v);
    for (int c = 1; c < copies; ++c) {
      auto w = v;
      void *p = nullptr, *a = nullptr, *b = nullptr;
      ANYBCQ_CUDA_CHECK(cudaMalloc(&p, planes));
      ANYBCQ_CUDA_CHECK(cudaMalloc(&a, alpha));
      ANYBCQ_CUDA_CHECK(cudaMemcpy(p, v.planes, planes, cudaMemcpyDeviceToDevice));
      ANYBCQ_CUDA_CHECK(cudaMemcpy(a, v.alpha, alpha, cudaMemcpyDeviceToDevice));
      buffers.push_back(p);
      buffers.push_back(a);
      if (beta) {
        ANYBCQ_CUDA_CHECK(cudaMalloc(&b, beta));
        ANYBCQ_CUDA_CHECK(cudaMemcpy(b, v.beta, beta, cudaMemcpyDeviceToDevice));
        buffers.push_back(b);
      }
      w.planes = static_cast<const std::uint32_t*>(p);
      w.alpha = static_cast<const half_t*>(a);
      w.beta = static_cast<const half_t*>(b);
      views.push_back(w);
    }
  }
  WeightCopies(const WeightCopies&) = delete;
  WeightCopies& operator=(const WeightCopies&) = delete;
  ~WeightCopies() {
    for (void* p : buffers) cudaFree(p);
  }
};

template <class T>
struct DeviceArray {
  T* ptr = nullptr;
  explicit DeviceArray(std::size_t n) { ANYBCQ_CUDA_CHECK(cudaMalloc(&ptr, std::max<std::size_t>(n, 1) * sizeof(T))); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(ptr); }
};

int run(int argc, char** argv) {
  index_t M = 4096, K = 4096, group = 128;
  std::vector<index_t> batches = {1, 8, 64, 256};
  std::uint64_t seed = 1;
  int threads = 0;
  bool timing = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--rows") M = parse_positive(a, next());
    else if (a == "--cols") K = parse_positive(a, next());
    else if (a == "--group") group = parse_positive(a, next());
    else if (a == "--batch") batches = parse_list(a, next());
    else if (a == "--seed") seed = static_cast<std::uint64_t>(parse_positive(a, next()));
    else if (a == "--threads") threads = static_cast<int>(parse_positive(a, next()));
    else if (a == "--no-time") timing = false;
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      usage();
      die("unknown argument '" + a + "'");
    }
  }
  // cuda::Gemm::can_implement's shape rules, checked before the (long) quantization rather than after it.
  if (K % 32 != 0) die("--cols " + std::to_string(K) + " is not a multiple of 32 (the plane word width)");
  if (K % group != 0) die("--group " + std::to_string(group) + " does not divide K = " + std::to_string(K));
  if (!(group == 64 || group == 128 || group % 256 == 0 || group == K))
    die("--group " + std::to_string(group) + ": cuda::Gemm takes 64, 128, a multiple of 256, or K");

  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::puts("anybcq_gpu: no CUDA device: nothing to run");
    return 0;
  }
  cudaDeviceProp prop;
  ANYBCQ_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("anybcq_gpu: %s (%d SMs), %ld x %ld weights, p = 2..4, group %ld, seed %llu\n", prop.name,
              prop.multiProcessorCount, long(M), long(K), long(group), static_cast<unsigned long long>(seed));

  // The layer: Gaussian weights (sigma 0.02), quantized on the host.
  auto t0 = std::chrono::steady_clock::now();
  const gpu_demo::Weights q = gpu_demo::quantize_gaussian(M, K, group, seed, threads);
  const double t_quant = seconds_since(t0);
  const gpu_demo::Reference reference(q);  // Ŵ_2 … Ŵ_4 on the host, once
  t0 = std::chrono::steady_clock::now();
  const acuda::DeviceWeights<> dw(q);
  const auto view = dw.view();
  const std::size_t bcq_bytes = static_cast<std::size_t>(view.layout.size_words()) * 4 +
                                static_cast<std::size_t>(view.scales.alpha_size() + view.scales.beta_size()) * 2;
  std::printf("quantized in %.1f s (host); repacked and uploaded %.1f MB in %.2f s\n", t_quant, bcq_bytes / 1e6,
              seconds_since(t0));

  cudaStream_t s;
  ANYBCQ_CUDA_CHECK(cudaStreamCreate(&s));
  cublasHandle_t cublas;
  ANYBCQ_CUBLAS_CHECK(cublasCreate(&cublas));
  ANYBCQ_CUBLAS_CHECK(cublasSetStream(cublas, s));
  DeviceArray<unsigned char> cublas_ws(std::size_t(32) << 20);
  ANYBCQ_CUBLAS_CHECK(cublasSetWorkspace(cublas, cublas_ws.ptr, std::size_t(32) << 20));

  // Timing copies: AnyBCQ weights, and fp16 Ŵ_4 for cuBLAS.
  const int copies = timing ? int(std::max<std::size_t>(2, (kRotateBytes + bcq_bytes - 1) / bcq_bytes)) : 1;
  const WeightCopies rot(view, copies);
  const std::size_t f16_elems = static_cast<std::size_t>(M * K);
  const int f16_copies = timing ? int(std::max<std::size_t>(2, (kRotateBytes + 2 * f16_elems - 1) / (2 * f16_elems))) : 0;
  std::vector<void*> wf16(static_cast<std::size_t>(f16_copies), nullptr);
  if (timing) {
    const std::vector<float>& hat = reference.weights(4);
    std::vector<__half> h(f16_elems);
    for (std::size_t i = 0; i < f16_elems; ++i) h[i] = __float2half(hat[i]);
    for (auto& p : wf16) {
      ANYBCQ_CUDA_CHECK(cudaMalloc(&p, 2 * f16_elems));
      ANYBCQ_CUDA_CHECK(cudaMemcpy(p, h.data(), 2 * f16_elems, cudaMemcpyHostToDevice));
    }
    std::printf("timing: median of %d CUDA-graph replays of %d calls; weights rotated over %d copies (>= %zu MB)\n",
                kReplays, kCallsPerGraph, copies, kRotateBytes >> 20);
  }

  std::printf("\n%5s %4s  %-14s %9s %8s %9s  %s\n", "batch", "p", "path", "us", "GB/s", "vs fp16", "error vs CPU reference");
  const index_t nmax = *std::max_element(batches.begin(), batches.end());
  DeviceArray<__half> dx(static_cast<std::size_t>(nmax * K)), dy(static_cast<std::size_t>(nmax * M));
  DeviceArray<int> dbits(static_cast<std::size_t>(nmax));
  void* ws = nullptr;
  std::size_t ws_bytes = 0;
  acuda::Gemm<__half> gemm;
  bool all_ok = true;
  std::mt19937_64 rng(seed + 1);
  for (const index_t n : batches) {
    // Fresh activations per batch, uniform in [-1, 1).
    std::vector<half_t> hx(static_cast<std::size_t>(n * K));
    std::vector<__half> dxh(hx.size());
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (std::size_t i = 0; i < hx.size(); ++i) {
      dxh[i] = __float2half(u(rng));
      hx[i] = anybcq::from_float<half_t>(__half2float(dxh[i]));
    }
    ANYBCQ_CUDA_CHECK(cudaMemcpy(dx.ptr, dxh.data(), dxh.size() * 2, cudaMemcpyHostToDevice));
    std::vector<int> bits(static_cast<std::size_t>(n));
    for (index_t r = 0; r < n; ++r) bits[static_cast<std::size_t>(r)] = 2 + int(r % 3);
    ANYBCQ_CUDA_CHECK(cudaMemcpy(dbits.ptr, bits.data(), bits.size() * sizeof(int), cudaMemcpyHostToDevice));

    double t_fp16 = 0;
    if (timing) {
      const float one = 1.0f, zero = 0.0f;
      t_fp16 = bench::time_graph(s, kCallsPerGraph, kReplays, [&] {
        for (int i = 0; i < kCallsPerGraph; ++i)
          ANYBCQ_CUBLAS_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, int(M), int(n), int(K), &one,
                                           wf16[std::size_t(i) % wf16.size()], CUDA_R_16F, int(K), dx.ptr, CUDA_R_16F,
                                           int(K), &zero, dy.ptr, CUDA_R_16F, int(M), CUBLAS_COMPUTE_32F,
                                           CUBLAS_GEMM_DEFAULT));
      });
      std::printf("%5ld %4s  %-14s %9.2f %8.0f %9s\n", long(n), "-", "cuBLAS fp16", t_fp16,
                  double(M * K * 2 + n * K * 2 + n * M * 2) / (t_fp16 * 1e3), "1.00x");
    }
    // p = 2, 3, 4 for every row, then (batch >= 2) per-row precisions; p = 0 stands for per-row.
    for (const int p : {2, 3, 4, 0}) {
      if (p == 0 && n < 2) continue;
      std::vector<acuda::Gemm<__half>::Arguments> args(rot.views.size());
      for (std::size_t c = 0; c < args.size(); ++c) {
        args[c].weights = rot.views[c];
        args[c].x = dx.ptr;
        args[c].y = dy.ptr;
        args[c].batch = n;
        args[c].bits = p;
        args[c].row_bits = p == 0 ? dbits.ptr : nullptr;
      }
      if (const acuda::Check chk = acuda::Gemm<__half>::can_implement(args[0]); !chk) die(chk.message);
      const std::size_t need = acuda::Gemm<__half>::workspace_size(args[0]);
      if (need > ws_bytes) {
        if (ws) ANYBCQ_CUDA_CHECK(cudaFree(ws));
        ANYBCQ_CUDA_CHECK(cudaMalloc(&ws, need));
        ws_bytes = need;
      }
      // One checked call: the output poisoned with NaN first, so every element must be written.
      ANYBCQ_CUDA_CHECK(cudaMemsetAsync(dy.ptr, 0xFF, static_cast<std::size_t>(n * M) * 2, s));
      gemm(args[0], ws, ws_bytes, s);  // operator() throws with the reason where run() would return an error
      std::vector<__half> out(static_cast<std::size_t>(n * M));
      ANYBCQ_CUDA_CHECK(cudaMemcpyAsync(out.data(), dy.ptr, out.size() * 2, cudaMemcpyDeviceToHost, s));
      ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(s));
      std::vector<float> ref(out.size());
      reference.gemm(p, bits.data(), hx.data(), n, ref.data());
      double num = 0, den = 0;
      bool finite = true;
      for (std::size_t i = 0; i < out.size(); ++i) {
        const double g = __half2float(out[i]);
        finite = finite && std::isfinite(g);
        num += (g - ref[i]) * (g - ref[i]);
        den += double(ref[i]) * ref[i];
      }
      const double err = std::sqrt(num / std::max(den, 1e-30));
      const bool ok = finite && err < kFp16Tolerance;
      all_ok = all_ok && ok;
      const int p_top = p == 0 ? std::min<int>(4, 2 + int(n) - 1) : p;
      const double bytes = double(p_top) * M * K / 8 + double(p_top + 1) * (K / group) * M * 2 + n * K * 2 + n * M * 2;
      const std::string p_name = p == 0 ? "row" : std::to_string(p);
      const std::string verdict = finite ? (ok ? "" : "  TOO LARGE") : "  NOT FINITE";
      if (!timing) {
        std::printf("%5ld %4s  %-14s %9s %8s %9s  %.2e%s\n", long(n), p_name.c_str(),
                    acuda::to_string(acuda::Gemm<__half>::path(args[0])), "-", "-", "-", err, verdict.c_str());
        continue;
      }
      const double t = bench::time_graph(s, kCallsPerGraph, kReplays, [&] {
        for (int i = 0; i < kCallsPerGraph; ++i) gemm(args[std::size_t(i) % args.size()], ws, ws_bytes, s);
      });
      std::printf("%5ld %4s  %-14s %9.2f %8.0f %8.2fx  %.2e%s\n", long(n), p_name.c_str(),
                  acuda::to_string(acuda::Gemm<__half>::path(args[0])), t, bytes / (t * 1e3), t_fp16 / t, err,
                  verdict.c_str());
    }
  }
  if (ws) ANYBCQ_CUDA_CHECK(cudaFree(ws));
  for (void* p : wf16) ANYBCQ_CUDA_CHECK(cudaFree(p));
  ANYBCQ_CUBLAS_CHECK(cublasDestroy(cublas));
  ANYBCQ_CUDA_CHECK(cudaStreamDestroy(s));
  std::printf("\n%s\n", all_ok ? "every call matched the CPU reference" : "anybcq_gpu: some calls did NOT match");
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "anybcq_gpu: %s\n", e.what());
    return 1;
  }
}
