// Two ceilings that bound the batch-1 kernels, measured the way bench_bcq_gemm times them.
//
// 1. Read floor: the time a kernel that only streams the bytes a call at precision p must read
//    (p·M·K/8 plane bytes + (p+1)·(K/128)·M·2 scale bytes) takes per call, as CUDA-graph replays of 20
//    calls over copies rotated through >= 256 MB, median of 15 replays; best of several launch shapes.
//    It is what a plain streaming kernel needs for these bytes in this timing, launch and ramp
//    included, when consecutive calls do not overlap.
// 2. Matrix-unit issue rates of the warp-level mma shapes a bit-plane kernel can use (fp16 m16n8k16,
//    int8 m16n8k32, binary AND+POPC m16n8k128 and m16n8k256), from 8 independent accumulator chains per
//    warp, 8 warps per block, 4 blocks per SM.
//
// Usage: bench_read_floor       (prints two tables)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda/graph_timing.cuh"

#define CHECK(x) ANYBCQ_CUDA_CHECK(x)

namespace {

constexpr int kCalls = 20, kReplays = 15;
constexpr std::size_t kRotate = std::size_t(256) << 20;
constexpr double kPeak = 3.10e12;

template <int U>
__global__ void read_kernel(const uint4* __restrict__ p, std::size_t n, unsigned* __restrict__ sink) {
  unsigned acc = 0;
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x;
  for (; i + (U - 1) * stride < n; i += U * stride) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                                             : "=r"(v[u].x), "=r"(v[u].y), "=r"(v[u].z), "=r"(v[u].w)
                                             : "l"(p + i + u * stride));
#pragma unroll
    for (int u = 0; u < U; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n; i += stride) {
    const uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9E3779B9u) sink[0] = acc;  // keeps the loads; practically never taken
}

__global__ void fill(uint4* p, std::size_t n, unsigned seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    p[i] = make_uint4(unsigned(i) * 2654435761u ^ seed, unsigned(i >> 7) + seed, unsigned(i) ^ 0x5bd1e995u, seed);
}


// ---- matrix-unit rates ------------------------------------------------------------------------------
enum class Mma { kF16, kS8, kB1k128, kB1k256 };

template <Mma kind>
__device__ __forceinline__ void mma(unsigned (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  if constexpr (kind == Mma::kF16) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else if constexpr (kind == Mma::kS8) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else if constexpr (kind == Mma::kB1k128) {
    asm volatile("mma.sync.aligned.m16n8k128.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b[0]));
  } else {
    asm volatile("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

template <Mma kind>
__global__ void __launch_bounds__(256) mma_rate(int iters, unsigned seed, unsigned* out) {
  unsigned a[4], b[2], c[8][4];
#pragma unroll
  for (int i = 0; i < 4; ++i) a[i] = (threadIdx.x * 0x9E3779B9u) ^ (seed + i) ^ 0x3c003c00u;
  b[0] = seed * 0x85ebca6bu ^ 0x3c003c00u;
  b[1] = b[0] ^ threadIdx.x;
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) c[j][i] = 0;
  for (int it = 0; it < iters; ++it)
#pragma unroll
    for (int j = 0; j < 8; ++j) mma<kind>(c[j], a, b);
  unsigned r = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) r ^= c[j][0] ^ c[j][1] ^ c[j][2] ^ c[j][3];
  out[blockIdx.x * blockDim.x + threadIdx.x] = r;
}

template <Mma kind>
void rate(const char* name, double ops_per_mma, int sms, unsigned* out, cudaStream_t s) {
  const int blocks = sms * 4, iters = 4096;
  mma_rate<kind><<<blocks, 256, 0, s>>>(64, 1, out);
  CHECK(cudaGetLastError());
  int r = 0;
  const std::vector<float> t = bench::event_times(s, 5, [&] {
    mma_rate<kind><<<blocks, 256, 0, s>>>(iters, 2 + r++, out);
    CHECK(cudaGetLastError());
  });
  const double mmas = double(blocks) * 8 * iters * 8;  // warps × iterations × chains
  const double sec = t[2] * 1e-3;
  std::printf("%-26s %9.3f ms  %8.1f mma/us/SM  %9.1f Tops (dense, counted as %g ops per mma)\n", name, t[2],
              mmas / sec * 1e-6 / sms, mmas * ops_per_mma / sec * 1e-12, ops_per_mma);
}

}  // namespace

int main() {
  int dev = 0;
  CHECK(cudaSetDevice(dev));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, dev));
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  unsigned* sink;
  CHECK(cudaMalloc(&sink, std::size_t(prop.multiProcessorCount) * 4 * 256 * 4));

  std::printf("\n# matrix-unit issue rate (8 independent chains per warp, 8 warps per block, 4 blocks per SM)\n");
  rate<Mma::kF16>("f16 m16n8k16 (f32 acc)", 2.0 * 16 * 8 * 16, prop.multiProcessorCount, sink, s);
  rate<Mma::kS8>("s8 m16n8k32", 2.0 * 16 * 8 * 32, prop.multiProcessorCount, sink, s);
  rate<Mma::kB1k128>("b1 and.popc m16n8k128", 2.0 * 16 * 8 * 128, prop.multiProcessorCount, sink, s);
  rate<Mma::kB1k256>("b1 and.popc m16n8k256", 2.0 * 16 * 8 * 256, prop.multiProcessorCount, sink, s);

  std::printf("\n# read floor: us per call streaming the bytes of one batch-1 call (graph of %d calls, copies over >= %zu MB, median of %d)\n",
              kCalls, kRotate >> 20, kReplays);
  std::printf("%-11s %2s %9s %9s %7s %8s  %s\n", "MxK", "p", "bytes", "roof_us", "floor", "floor/roof", "best launch (blocks/SM x threads, unroll)");
  const int shapes[][2] = {{4096, 4096}, {6144, 4096}, {14336, 4096}, {4096, 14336}, {28672, 4096}};
  for (auto& sh : shapes) {
    for (int p = 2; p <= 4; ++p) {
      const std::size_t M = sh[0], K = sh[1];
      const std::size_t bytes = p * M * K / 8 + (p + 1) * (K / 128) * M * 2;
      const std::size_t n = (bytes + 15) / 16;
      const int copies = int(std::max<std::size_t>(2, (kRotate + bytes - 1) / bytes));
      std::vector<uint4*> buf(copies);
      for (int c = 0; c < copies; ++c) {
        CHECK(cudaMalloc(&buf[c], n * 16));
        fill<<<1024, 256, 0, s>>>(buf[c], n, 77u + c);
        CHECK(cudaGetLastError());
      }
      CHECK(cudaStreamSynchronize(s));
      double best = 1e30;
      char how[64] = "";
      const int bps[] = {1, 2, 4, 8}, thr[] = {256, 512, 1024}, unr[] = {1, 4, 8};
      for (int bp : bps)
        for (int th : thr) {
          if (bp * th > 2048) continue;
          for (int u : unr) {
            const int blocks = bp * prop.multiProcessorCount;
            const double us = bench::time_graph(s, kCalls, kReplays, [&] {
              for (int i = 0; i < kCalls; ++i) {
                const uint4* q = buf[i % copies];
                if (u == 1) read_kernel<1><<<blocks, th, 0, s>>>(q, n, sink);
                else if (u == 4) read_kernel<4><<<blocks, th, 0, s>>>(q, n, sink);
                else read_kernel<8><<<blocks, th, 0, s>>>(q, n, sink);
                CHECK(cudaGetLastError());
              }
            });
            if (us < best) {
              best = us;
              std::snprintf(how, sizeof how, "%d x %d, %d", bp, th, u);
            }
          }
        }
      const double roof = bytes / kPeak * 1e6;
      std::printf("%5zux%-5zu %2d %9zu %9.2f %7.2f %8.2f    %s\n", M, K, p, bytes, roof, best, roof / best, how);
      for (auto* q : buf) CHECK(cudaFree(q));
    }
  }
  CHECK(cudaFree(sink));
  return 0;
}
