// Shared helpers of the CUDA GEMM tests (one test file per element type keeps nvcc builds parallel).
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/cuda/bcq_gemm.cuh"
#include "anybcq/cuda/device_weights.cuh"
#include "cuda/cuda_test_support.cuh"
#include "support/random.hpp"

using namespace anybcq;

namespace gemm_test {

using cuda_test::DeviceBuffer;
using cuda_test::have_gpu;
using cuda_test::Host;
using cuda_test::replay_graph;

//! A weight shape of the tests: M×K, group g, precisions p_min..p_max, symmetric (no β) or not.
struct WeightCase {
  index_t M, K, g;
  int p_min, p_max;
  bool sym;
};

inline std::mt19937_64& rng() {
  static std::mt19937_64 r = anybcq_test::rng(0x6765);  // this file's stream of the run's seed
  return r;
}

//! Multiprocessors of the current device (the dispatcher's shape rules depend on it).
inline int device_sms() {
  int dev = 0, sms = 0;
  ANYBCQ_CUDA_CHECK(cudaGetDevice(&dev));
  ANYBCQ_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}

//! Random multi-precision weights: random planes, positive decreasing α, random β.
inline MultiPrecisionWeights<> random_weights(index_t M, index_t K, index_t g, int p_min, int p_max, bool symmetric = false) {
  BcqShape s{M, K, g, p_min, p_max, symmetric};
  MultiPrecisionWeights<> w(s);
  for (auto& word : w.planes()) word = static_cast<std::uint32_t>(rng()());
  std::uniform_real_distribution<float> u(0.5f, 1.5f), ub(-0.3f, 0.3f);
  const auto& sl = w.scale_layout();
  for (int p = p_min; p <= p_max; ++p)
    for (index_t grp = 0; grp < s.groups(); ++grp)
      for (index_t m = 0; m < M; ++m) {
        float a = 0.08f * u(rng());
        for (int i = 0; i < p; ++i) {
          w.alpha()[static_cast<std::size_t>(sl.alpha_offset(p, grp, i, m))] = to_half(a);
          a *= 0.5f * u(rng());
        }
        if (!symmetric) w.beta()[static_cast<std::size_t>(sl.beta_offset(p, grp, m))] = to_half(ub(rng()));
      }
  return w;
}

//! Normal activations; with outlier > 1, every 37th input channel is that many times larger.
template <class E>
std::vector<Host<E>> random_x(index_t n, index_t K, float outlier = 1.0f) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<Host<E>> x(static_cast<std::size_t>(n * K));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = from_float<Host<E>>(d(rng()) * (i % static_cast<std::size_t>(K) % 37 == 5 ? outlier : 1.0f));
  return x;
}

template <class E>
double tolerance() {
  return std::is_same_v<E, __half> ? 2e-3 : 1.2e-2;
}

//! Arguments of one call on dw: n rows of x into y, at precision `bits` or per row (row_bits, device), on `path`.
template <class E>
typename cuda::Gemm<E>::Arguments gemm_args(const cuda::DeviceWeights<>& dw, const E* x, E* y, index_t n, int bits,
                                            const int* row_bits, cuda::GemmPath path, int k_slices = 0) {
  typename cuda::Gemm<E>::Arguments a;
  a.weights = dw.view();
  a.x = x;
  a.y = y;
  a.batch = n;
  a.bits = bits;
  a.row_bits = row_bits;
  a.path = path;
  a.k_slices = k_slices;
  return a;
}

//! Run one call and compare every row with the float64 reference at that row's precision.
template <class E>
void check_call(const MultiPrecisionWeights<>& w, const cuda::DeviceWeights<>& dw, index_t n, int bits,
                const std::vector<int>* row_bits, const char* what, cuda::GemmPath path = cuda::GemmPath::kAuto,
                int k_slices = 0, float outlier = 1.0f) {
  using H = Host<E>;
  const index_t M = w.rows(), K = w.cols();
  const auto x = random_x<E>(n, K, outlier);
  DeviceBuffer<E> dx(static_cast<std::size_t>(n * K)), dy(static_cast<std::size_t>(n * M));
  DeviceBuffer<int> dbits(row_bits ? static_cast<std::size_t>(n) : 0);
  dx.upload(x.data());
  dy.poison();
  if (row_bits) dbits.upload(row_bits->data());

  cuda::Gemm<E> gemm;
  typename cuda::Gemm<E>::Arguments args = gemm_args<E>(dw, dx.ptr, dy.ptr, n, bits, row_bits ? dbits.ptr : nullptr, path, k_slices);
  const cuda::Check chk = cuda::Gemm<E>::can_implement(args);
  INFO(what, " M=", M, " K=", K, " g=", w.group(), " n=", n, " p=", bits, " path=", cuda::to_string(cuda::Gemm<E>::path(args)),
       " k_slices=", k_slices,
       " ", chk.message);
  REQUIRE(chk.ok());
  const std::size_t ws_bytes = cuda::Gemm<E>::workspace_size(args);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  if (ws_bytes) ws.poison();  // nothing may rely on a zeroed workspace
  cudaStream_t stream;
  ANYBCQ_CUDA_CHECK(cudaStreamCreate(&stream));
  std::string msg;
  REQUIRE(gemm.run(args, ws.ptr, ws_bytes, stream, &msg) == cuda::Status::kSuccess);
  ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(stream));
  ANYBCQ_CUDA_CHECK(cudaGetLastError());
  std::vector<H> y(static_cast<std::size_t>(n * M));
  dy.download(y.data());

  // Every element written (poison gone) and close to the reference.
  std::vector<std::vector<double>> refs(kMaxBits + 1);  // reference for all rows, per precision used
  for (index_t r = 0; r < n; ++r) {
    const int p = row_bits ? (*row_bits)[static_cast<std::size_t>(r)] : bits;
    if (refs[static_cast<std::size_t>(p)].empty()) refs[static_cast<std::size_t>(p)] = cpu::gemm_naive_f64(w.view(p), x.data(), n);
  }
  for (index_t r = 0; r < n; ++r) {
    const int p = row_bits ? (*row_bits)[static_cast<std::size_t>(r)] : bits;
    const double* ref = refs[static_cast<std::size_t>(p)].data() + r * M;
    double num = 0, den = 0;
    index_t not_finite = 0;
    for (index_t m = 0; m < M; ++m) {
      const double v = to_float(y[static_cast<std::size_t>(r * M + m)]);
      if (!std::isfinite(v)) ++not_finite;
      const double d = v - ref[static_cast<std::size_t>(m)];
      num += d * d;
      den += ref[static_cast<std::size_t>(m)] * ref[static_cast<std::size_t>(m)];
    }
    CAPTURE(r);
    CAPTURE(p);
    REQUIRE(not_finite == 0);
    REQUIRE(std::sqrt(num / den) < tolerance<E>());
  }

  // Deterministic: a second run gives the same bits, also when launched without programmatic dependent launch.
  std::vector<H> y2(y.size());
  dy.poison();
  args.pdl = !args.pdl;
  REQUIRE(gemm.run(args, ws.ptr, ws_bytes, stream, &msg) == cuda::Status::kSuccess);
  ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(stream));
  dy.download(y2.data());
  CHECK(std::memcmp(y.data(), y2.data(), y.size() * sizeof(H)) == 0);
  ANYBCQ_CUDA_CHECK(cudaStreamDestroy(stream));
}


template <class E>
void fused_small() {
  if (!have_gpu()) return;
  struct Case {
    index_t M, K, g;
  };
  for (const Case c : {Case{37, 256, 64}, Case{45, 96, 96}, Case{19, 544, 32 * 17}, Case{50, 768, 256}}) {
    const auto w = random_weights(c.M, c.K, c.g, 2, 4);
    const cuda::DeviceWeights<> dw(w);
    for (int p = 2; p <= 4; ++p)
      for (index_t n : {1, 3, 8, 13})
        for (const auto path : {cuda::GemmPath::kFusedDequant, cuda::GemmPath::kFusedBitSerial})
          check_call<E>(w, dw, n, p, nullptr, "fused small", path);
    if (c.g != 64)
      for (int p = 2; p <= 4; ++p)
        for (index_t n : {1, 2}) check_call<E>(w, dw, n, p, nullptr, "lut small", cuda::GemmPath::kLut);
  }
  // The LUT kernel on a partial last chunk (K = 4160), every K split.
  {
    const auto wl = random_weights(83, 4160, 4160, 2, 4);
    const cuda::DeviceWeights<> dwl(wl);
    for (int ks : {1, 2, 4, 8})
      for (index_t n : {1, 2}) check_call<E>(wl, dwl, n, 2 + ks % 3, nullptr, "lut k slices", cuda::GemmPath::kLut, ks);
  }
  // Enough row tiles that several warps of a block share the tables (tm > 1), last block ragged.
  {
    const auto wl = random_weights(33003, 640, 128, 2, 4);
    const cuda::DeviceWeights<> dwl(wl);
    const int sms = device_sms();
    int tm = 0, ks = 0, cps = 0;
    cuda::Gemm<E>::lut_shape(dwl.view().layout.row_tiles(), dwl.view().layout.chunks(), 1, 2 * sms, 0, tm, ks, cps);
    INFO("tm=", tm, " ks=", ks, " SMs=", sms);
    CHECK(tm > 1);
    for (int p = 2; p <= 4; ++p)
      for (index_t n : {1, 2}) check_call<E>(wl, dwl, n, p, nullptr, "lut shared tables", cuda::GemmPath::kLut);
    for (index_t n : {1, 2}) check_call<E>(wl, dwl, n, 3, nullptr, "lut shared tables, 2 slices", cuda::GemmPath::kLut, 2);
  }
  // Rows a multiple of 16 with 16-byte aligned scale tables: the register-dequantizing and bit-serial
  // kernels copy scale runs without windows. Whole and partial last chunks, every group size, with and without offsets.
  {
    struct Aligned {
      index_t M, K, g;
      bool sym;
    };
    for (const Aligned c : {Aligned{48, 768, 64, false}, Aligned{64, 544, 544, false}, Aligned{272, 1280, 128, true},
                            Aligned{32, 512, 256, false}}) {
      const auto wa = random_weights(c.M, c.K, c.g, 2, 4, c.sym);
      const cuda::DeviceWeights<> dwa(wa);
      CHECK(reinterpret_cast<std::uintptr_t>(dwa.view().alpha) % 16 == 0);
      CHECK((c.sym || reinterpret_cast<std::uintptr_t>(dwa.view().beta) % 16 == 0));
      for (int p = 2; p <= 4; ++p) {
        for (index_t n : {1, 8, 13, 24, 40})
          check_call<E>(wa, dwa, n, p, nullptr, "fused-dq, aligned scales", cuda::GemmPath::kFusedDequant);
        for (index_t n : {1, 13})
          check_call<E>(wa, dwa, n, p, nullptr, "bit-serial, aligned scales", cuda::GemmPath::kFusedBitSerial);
      }
    }
  }
  // A tall matrix: with the planes as operands (batch ≤ 8, p ≤ 4) the dispatcher takes 4 K slices and two
  // row tiles per block; batch 16 keeps 8 slices. Ragged last block.
  {
    const int sms = device_sms();
    const index_t Mt = 16 * index_t(cuda::DefaultTuning::kDqSerialTallTiles) * sms + 9;
    const auto wt = random_weights(Mt, 4096, 128, 2, 4);
    const cuda::DeviceWeights<> dwt(wt);
    const index_t rt = dwt.view().layout.row_tiles(), ch = dwt.view().layout.chunks();
    int tm = 0, ks = 0;
    cuda::Gemm<E>::dq_shape(rt, ch, 1, 4, sms, 0, tm, ks);
    INFO("M=", Mt, " SMs=", sms, " tm=", tm, " ks=", ks);
    CHECK(ks == 4);
    CHECK(tm == 2);
    cuda::Gemm<E>::dq_shape(rt, ch, 2, 4, sms, 0, tm, ks);
    CHECK(ks == 8);
    cuda::Gemm<E>::dq_shape(rt - 16, ch, 1, 4, sms, 0, tm, ks);  // fewer row tiles than the rule's bound
    CHECK(ks == 8);
    for (int p = 2; p <= 4; ++p)
      for (index_t n : {5, 8}) check_call<E>(wt, dwt, n, p, nullptr, "fused-dq, tall matrix", cuda::GemmPath::kFusedDequant);
  }
  // Every K-slice split of the register-dequantizing kernel (more slices than chunks leaves warps idle).
  const auto w = random_weights(77, 1280, 128, 2, 4);
  const cuda::DeviceWeights<> dw(w);
  for (int ks : {1, 2, 4, 8})
    for (index_t n : {1, 9, 20}) check_call<E>(w, dw, n, 3, nullptr, "k slices", cuda::GemmPath::kFusedDequant, ks);
}

//! The binary-mma kernel: batch 1–8 (template batches 1, 2, 4 with rows as mma columns, batch 3 with an
//! unused row; 5–8 as one 8-row batch tile, rows past the batch unused), every group size
//! ≥ 128, odd M (general kernel) and M a multiple of 16 (fast kernel, aligned scale runs; p = 8 with β
//! takes the general one), a partial last chunk (K = 4160), every K split, several row tiles per block,
//! symmetric weights, p_min 1..p_max 8, and activations with outlier channels (×100).
template <class E>
void binary_mma() {
  if (!have_gpu()) return;
  using Case = WeightCase;
  for (const Case c : {Case{37, 256, 128, 2, 4, false}, Case{45, 96, 96, 2, 4, false}, Case{19, 544, 544, 2, 4, false},
                       Case{50, 768, 256, 2, 4, true}, Case{211, 1280, 128, 1, 5, false}, Case{83, 4160, 4160, 2, 4, false},
                       Case{48, 256, 128, 1, 4, false}, Case{64, 768, 256, 2, 4, true}, Case{208, 4224, 128, 2, 5, false},
                       Case{96, 4160, 4160, 2, 4, false}, Case{32, 512, 128, 5, 8, false}, Case{16, 384, 128, 6, 8, true}}) {
    const auto w = random_weights(c.M, c.K, c.g, c.p_min, c.p_max, c.sym);
    const cuda::DeviceWeights<> dw(w);
    for (int p = c.p_min; p <= c.p_max; ++p)
      for (index_t n : {1, 2, 3, 4, 5, 8}) check_call<E>(w, dw, n, p, nullptr, "bmma", cuda::GemmPath::kBinaryMma);
    for (int ks : {1, 2, 4, 8})
      for (index_t n : {1, 4, 7})
        check_call<E>(w, dw, n, std::clamp(2 + ks % 3, c.p_min, c.p_max), nullptr, "bmma k slices", cuda::GemmPath::kBinaryMma, ks);
    check_call<E>(w, dw, 1, c.p_max, nullptr, "bmma outlier channels", cuda::GemmPath::kBinaryMma, 0, 100.0f);
    check_call<E>(w, dw, 3, c.p_min, nullptr, "bmma outlier channels", cuda::GemmPath::kBinaryMma, 0, 100.0f);
    check_call<E>(w, dw, 6, c.p_max, nullptr, "bmma outlier channels", cuda::GemmPath::kBinaryMma, 0, 100.0f);
  }
  // Enough row tiles for several per block (tm > 1), last block ragged.
  const auto wl = random_weights(33003, 640, 128, 2, 4);
  const cuda::DeviceWeights<> dwl(wl);
  const int sms = device_sms();
  int tm = 0, ks = 0;
  cuda::Gemm<E>::bmma_shape(dwl.view().layout.row_tiles(), dwl.view().layout.chunks(), 2 * sms, 0, tm, ks);
  INFO("tm=", tm, " ks=", ks, " SMs=", sms);
  CHECK(tm > 1);
  for (int p = 2; p <= 4; ++p)
    for (index_t n : {1, 4, 8}) check_call<E>(wl, dwl, n, p, nullptr, "bmma, several tiles per block", cuda::GemmPath::kBinaryMma);
  check_call<E>(wl, dwl, 6, 2, nullptr, "auto (M >= 3K, p = 2, batch 6: the batch tile)");
  const auto wa = random_weights(32992, 640, 128, 2, 4);  // the same with M a multiple of 16 (fast kernel)
  const cuda::DeviceWeights<> dwa(wa);
  for (int p = 2; p <= 4; ++p)
    for (index_t n : {1, 2, 5}) check_call<E>(wa, dwa, n, p, nullptr, "bmma, several tiles per block, aligned", cuda::GemmPath::kBinaryMma);
}

template <class E>
void fused_shapes() {
  if (!have_gpu()) return;
  using Case = WeightCase;
  for (const Case c : {Case{1003, 4096, 128, 2, 4, false}, Case{517, 2048, 64, 1, 3, false},
                       Case{333, 1536, 256, 2, 5, true}, Case{129, 4096, 4096, 2, 4, false}}) {
    const auto w = random_weights(c.M, c.K, c.g, c.p_min, c.p_max, c.sym);
    const cuda::DeviceWeights<> dw(w);
    for (int p = c.p_min; p <= c.p_max; ++p) {
      for (index_t n : {1, 2, 16, 17, 40, 64, 65}) check_call<E>(w, dw, n, p, nullptr, "auto");
      for (index_t n : {1, 17}) check_call<E>(w, dw, n, p, nullptr, "bit-serial", cuda::GemmPath::kFusedBitSerial);
      check_call<E>(w, dw, 5, p, nullptr, "dequant+cublas", cuda::GemmPath::kDequantCublas);
    }
  }
}

template <class E>
void dequant_cublas() {
  if (!have_gpu()) return;
  const auto w = random_weights(301, 1024, 128, 2, 4);
  const cuda::DeviceWeights<> dw(w);
  for (int p = 2; p <= 4; ++p) {
    check_call<E>(w, dw, 97, p, nullptr, "dequant+cublas");
    check_call<E>(w, dw, 97, p, nullptr, "fused-dq, 4 batch blocks", cuda::GemmPath::kFusedDequant);
  }
  const auto w2 = random_weights(70, 320, 320, 2, 3);
  const cuda::DeviceWeights<> dw2(w2);
  check_call<E>(w2, dw2, 130, 3, nullptr, "dequant+cublas g=K");
}

//! The warpgroup kernels (sm_90a builds): odd M (a ragged last 64- or 128-row block), a partial last
//! chunk, every group size, p_min 1..p_max 5, symmetric weights, batch 1..257 (ragged and several
//! batch blocks; 130 and 257 take the warp-specialized kernel, the others the register-operand one),
//! and the dispatcher's choice above kMaxFusedBatch.
template <class E>
void wgmma_dequant() {
  if (!have_gpu()) return;
  if (!cuda::kHaveWgmma) {
    MESSAGE("this build has no sm_90a code: wgmma-dq not tested");
    return;
  }
  static_assert(cuda::DefaultTuning::kWsMinBatch > 97 && cuda::DefaultTuning::kWsMinBatch <= 130,
                "the batches below must reach both warpgroup kernels");
  using Case = WeightCase;
  for (const Case c : {Case{1003, 4096, 128, 2, 4, false}, Case{517, 2048, 64, 1, 3, false}, Case{333, 1536, 256, 2, 5, true},
                       Case{83, 4160, 4160, 2, 4, false}, Case{64, 512, 128, 2, 4, false}, Case{19, 96, 96, 1, 2, false}}) {
    const auto w = random_weights(c.M, c.K, c.g, c.p_min, c.p_max, c.sym);
    const cuda::DeviceWeights<> dw(w);
    for (int p = c.p_min; p <= c.p_max; ++p)
      for (index_t n : {1, 5, 97, 130, 257})
        check_call<E>(w, dw, n, p, nullptr, "wgmma-dq", cuda::GemmPath::kWgmmaDequant);
    // K split over 1, 2 and 8 blocks per output tile (auto takes 8 here: the grids are small), uneven
    // splits (K = 4160 is 17 chunks), and more slices asked for than there are chunks (K = 96).
    for (int ks : {1, 2, 8})
      for (index_t n : {97, 257})
        check_call<E>(w, dw, n, c.p_min + 1, nullptr, "wgmma-dq split K", cuda::GemmPath::kWgmmaDequant, ks);
  }
  const auto w = random_weights(301, 1024, 128, 2, 4);
  const cuda::DeviceWeights<> dw(w);
  typename cuda::Gemm<E>::Arguments a;
  a.weights = dw.view();
  a.batch = 65;
  a.bits = 3;
  CHECK(cuda::Gemm<E>::path(a) == cuda::GemmPath::kWgmmaDequant);
  check_call<E>(w, dw, 200, 3, nullptr, "auto above the fused batch");
}

//! Scales near and beyond the range of the kernels' fast decode (fp16 activations: |α| < 255.9375): α
//! and β scaled by 2^11 (largest α about 246) and 2^12 (about 490), powers of two, so that the relative
//! errors are those of the unscaled weights. DeviceWeights records the bound; the dispatcher keeps its
//! usual paths below the limit (and always for bf16 with half_t scales) and takes dequantize + cuBLAS for
//! fp16 above it, where forcing a register-dequantizing path is refused. Every call matches the
//! reference. K = g = 64 keeps the fp16 outputs finite.
template <class E>
void large_scales() {
  if (!have_gpu()) return;
  constexpr bool kF16 = std::is_same_v<E, __half>;
  for (const float f : {2048.0f, 4096.0f}) {
    auto w = random_weights(333, 64, 64, 2, 5);
    float amax = 0.0f;
    for (auto& a : w.alpha()) {
      a = to_half(to_float(a) * f);
      amax = std::max(amax, std::fabs(to_float(a)));
    }
    for (auto& b : w.beta()) b = to_half(to_float(b) * f);
    const cuda::DeviceWeights<> dw(w);
    CHECK(dw.view().alpha_max == amax);
    const bool fast = !kF16 || amax < 255.9375f;
    CHECK(fast == (f == 2048.0f || !kF16));
    for (int p : {2, 5})
      for (index_t n : {1, 8, 16, 130, 257}) {
        typename cuda::Gemm<E>::Arguments a;  // for path() and can_implement() only: x, y are not read
        a.weights = dw.view();
        a.x = reinterpret_cast<const E*>(std::uintptr_t(1024));
        a.y = reinterpret_cast<E*>(std::uintptr_t(2048));
        a.batch = n;
        a.bits = p;
        auto bounded = a;
        bounded.weights.alpha_max = 0.0f;
        const cuda::GemmPath usual = cuda::Gemm<E>::path(bounded);  // the pick for small scales
        const bool rebuilds = usual == cuda::GemmPath::kWgmmaDequant ||
                              (usual == cuda::GemmPath::kFusedDequant && (n > 8 || p > 4));
        CAPTURE(n);
        CAPTURE(p);
        CHECK(cuda::Gemm<E>::path(a) == (rebuilds && !fast ? cuda::GemmPath::kDequantCublas : usual));
        check_call<E>(w, dw, n, p, nullptr, "large scales, auto");
        for (const cuda::GemmPath forced : {cuda::GemmPath::kFusedDequant, cuda::GemmPath::kWgmmaDequant}) {
          if (forced == cuda::GemmPath::kWgmmaDequant && !cuda::kHaveWgmma) continue;
          a.path = forced;
          const cuda::Check chk = cuda::Gemm<E>::can_implement(a);
          if (fast || !(forced == cuda::GemmPath::kWgmmaDequant || n > 8 || p > 4)) {
            CHECK(chk.ok());
            check_call<E>(w, dw, n, p, nullptr, "large scales, forced", forced);
          } else {
            CHECK(chk.status == cuda::Status::kInvalidProblem);
            CHECK(chk.message.find("alpha") != std::string::npos);
          }
        }
      }
    // Per-row precision (p_max 5): the precision split through cuBLAS wherever the fast decode does not
    // hold (its dequantization then takes the wide decode), else the split on the register-dequantizing
    // kernel, or at batch 128 … 256 on these small weights the split on the warpgroup kernel (sm_90a
    // builds); the splits that rebuild Ŵ_p in registers, forced on weights beyond the fast decode's range,
    // are refused.
    for (index_t n : {9, 40, 130}) {
      std::vector<int> bits(static_cast<std::size_t>(n));
      for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = 2 + int(i % 4);
      typename cuda::Gemm<E>::Arguments a;
      a.weights = dw.view();
      a.x = reinterpret_cast<const E*>(std::uintptr_t(1024));
      a.y = reinterpret_cast<E*>(std::uintptr_t(2048));
      a.batch = n;
      a.row_bits = reinterpret_cast<const int*>(std::uintptr_t(4096));
      CAPTURE(n);
      CHECK(cuda::Gemm<E>::path(a) == (!fast                        ? cuda::GemmPath::kSplitCublas
                                       : cuda::kHaveWgmma && n >= 128 ? cuda::GemmPath::kSplitWgmma
                                                                      : cuda::GemmPath::kSplitDequant));
      check_call<E>(w, dw, n, 0, &bits, "large scales, per-row, auto");
      for (const cuda::GemmPath forced : {cuda::GemmPath::kSplitDequant, cuda::GemmPath::kSplitWgmma}) {
        if (forced == cuda::GemmPath::kSplitWgmma && !cuda::kHaveWgmma) continue;
        a.path = forced;
        const cuda::Check chk = cuda::Gemm<E>::can_implement(a);
        CHECK(chk.ok() == fast);
        if (!fast) CHECK(chk.message.find("alpha") != std::string::npos);
      }
      a.path = cuda::GemmPath::kAuto;
    }
  }
}

//! The device side of n per-row calls' rows: random activations x (n×K, kept on the host too), outputs y
//! (n×M) and the rows' precisions.
template <class E>
struct RowCallBuffers {
  std::vector<Host<E>> x;
  DeviceBuffer<E> dx, dy;
  DeviceBuffer<int> db;
  RowCallBuffers(index_t n, index_t K, index_t M, const std::vector<int>& bits)
      : x(random_x<E>(n, K)), dx(static_cast<std::size_t>(n * K)), dy(static_cast<std::size_t>(n * M)),
        db(static_cast<std::size_t>(n)) {
    dx.upload(x.data());
    db.upload(bits.data());
  }
};

template <class E>
void per_row_precision() {
  if (!have_gpu()) return;
  auto random_bits = [](index_t n, int lo, int hi) {
    std::uniform_int_distribution<int> pd(lo, hi);
    std::vector<int> bits(static_cast<std::size_t>(n));
    for (auto& b : bits) b = pd(rng());
    return bits;
  };
  // M not a multiple of 16 (auto: the register-dequantizing kernel's per-row mode up to batch 16, the
  // precision split on it above, on the warpgroup kernel at 128–256 in sm_90a builds, through cuBLAS from
  // 257): the precision split (rows sorted on the device,
  // the uniform register-dequantizing kernel once per precision; 1, 2 and 4 batch tiles per block, several
  // batch blocks, more rows than one block scan takes), the split through cuBLAS (runs of 64 rows), the
  // split on the warpgroup kernel (sm_90a builds: each precision's rows in 128-row tiles of their own), the
  // per-row mode (planes as operands, one 8-row tile per block) and the bit-serial kernel, forced.
  const auto w = random_weights(211, 1024, 128, 2, 4);
  const cuda::DeviceWeights<> dw(w);
  for (index_t n : {1, 5, 8, 13, 24, 70, 300}) {
    const auto bits = random_bits(n, 2, 4);
    check_call<E>(w, dw, n, 0, &bits, "per-row (auto)");
    check_call<E>(w, dw, n, 0, &bits, "per-row, split", cuda::GemmPath::kSplitDequant);
    check_call<E>(w, dw, n, 0, &bits, "per-row, split through cuBLAS", cuda::GemmPath::kSplitCublas);
    if (cuda::kHaveWgmma)
      check_call<E>(w, dw, n, 0, &bits, "per-row, split on the warpgroup kernel", cuda::GemmPath::kSplitWgmma);
    check_call<E>(w, dw, n, 0, &bits, "per-row, register-dequantizing", cuda::GemmPath::kFusedDequant);
    check_call<E>(w, dw, n, 0, &bits, "per-row, bit-serial", cuda::GemmPath::kFusedBitSerial);
  }
  // Precisions in runs (sorted already, reversed) and one precision missing from the batch.
  std::vector<int> runs(40);
  for (std::size_t i = 0; i < runs.size(); ++i) runs[i] = i < 25 ? 4 : 2;
  check_call<E>(w, dw, 40, 0, &runs, "per-row, split, runs", cuda::GemmPath::kSplitDequant);
  check_call<E>(w, dw, 40, 0, &runs, "per-row, split through cuBLAS, runs", cuda::GemmPath::kSplitCublas);
  if (cuda::kHaveWgmma) check_call<E>(w, dw, 40, 0, &runs, "per-row, split-wg, runs", cuda::GemmPath::kSplitWgmma);
  // More than 512 rows (runs of 128) and every row at one precision.
  const auto b600 = random_bits(600, 2, 4);
  check_call<E>(w, dw, 600, 0, &b600, "per-row, split through cuBLAS, 600 rows");
  const std::vector<int> all3(130, 3);
  if (cuda::kHaveWgmma) {  // several 128-row tiles per precision; one precision over two tiles
    check_call<E>(w, dw, 600, 0, &b600, "per-row, split-wg, 600 rows", cuda::GemmPath::kSplitWgmma);
    check_call<E>(w, dw, 130, 0, &all3, "per-row, split-wg, one precision", cuda::GemmPath::kSplitWgmma);
  }
  check_call<E>(w, dw, 130, 0, &all3, "per-row, split through cuBLAS, one precision", cuda::GemmPath::kSplitCublas);
  check_call<E>(w, dw, 130, 0, &all3, "per-row, split, one precision");
  // Every row below p_max (planes above the batch's highest p are not read), and every K split.
  const std::vector<int> low(9, 2);
  check_call<E>(w, dw, 9, 0, &low, "per-row, all rows at p_min");
  check_call<E>(w, dw, 9, 0, &low, "per-row, register-dequantizing, all rows at p_min", cuda::GemmPath::kFusedDequant);
  const auto b9 = random_bits(9, 2, 4);
  for (int ks : {1, 2, 4, 8}) {
    check_call<E>(w, dw, 9, 0, &b9, "per-row, k slices", cuda::GemmPath::kFusedDequant, ks);
    check_call<E>(w, dw, 9, 0, &b9, "per-row, split, k slices", cuda::GemmPath::kSplitDequant, ks);
    if (cuda::kHaveWgmma) check_call<E>(w, dw, 9, 0, &b9, "per-row, split-wg, k slices", cuda::GemmPath::kSplitWgmma, ks);
  }
  // Group sizes 64, 256 and K, p_min 1, odd M, a partial last chunk (K = 4160).
  for (const WeightCase c : {WeightCase{45, 768, 64, 1, 4, false}, WeightCase{70, 1280, 256, 2, 3, true},
                             WeightCase{33, 512, 512, 2, 4, false}, WeightCase{83, 4160, 4160, 2, 4, false}}) {
    const auto wc = random_weights(c.M, c.K, c.g, c.p_min, c.p_max, c.sym);
    const cuda::DeviceWeights<> dwc(wc);
    for (index_t n : {3, 17}) {
      const auto bits = random_bits(n, c.p_min, c.p_max);
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, group sizes (auto)");
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, group sizes, split", cuda::GemmPath::kSplitDequant);
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, group sizes, register-dequantizing", cuda::GemmPath::kFusedDequant);
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, group sizes, split through cuBLAS", cuda::GemmPath::kSplitCublas);
      if (cuda::kHaveWgmma)
        check_call<E>(wc, dwc, n, 0, &bits, "per-row, group sizes, split-wg", cuda::GemmPath::kSplitWgmma);
    }
  }
  // M a multiple of 16 with aligned scale tables (auto: the binary-mma kernel at batch 1 and 2, the
  // register-dequantizing kernel's per-row mode with the scale runs in its ring above): the binary-mma
  // kernel forced at batch 1–8 (rows as mma columns up to 4, the 8-row batch tile above); group 256 and
  // symmetric weights; the register-dequantizing kernel and the splits (on it and through cuBLAS) forced on the
  // same calls; and that kernel with every row at one precision, p_min to p_max (one instance of its loop per
  // highest precision).
  for (const WeightCase c : {WeightCase{224, 1024, 128, 2, 4, false}, WeightCase{48, 768, 256, 1, 3, true},
                             WeightCase{32, 4160, 4160, 2, 4, false}}) {
    const auto wc = random_weights(c.M, c.K, c.g, c.p_min, c.p_max, c.sym);
    const cuda::DeviceWeights<> dwc(wc);
    for (index_t n : {1, 2, 3, 4, 5, 8}) {
      const auto bits = random_bits(n, c.p_min, c.p_max);
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, aligned scale tables (auto)");
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, binary mma", cuda::GemmPath::kBinaryMma);
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, register-dequantizing", cuda::GemmPath::kFusedDequant);
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, split", cuda::GemmPath::kSplitDequant);
      // M a multiple of 8: the split through cuBLAS writes its rows back in 16-byte copies
      check_call<E>(wc, dwc, n, 0, &bits, "per-row, split through cuBLAS, M % 8 == 0", cuda::GemmPath::kSplitCublas);
    }
    const std::vector<int> low(6, c.p_min);
    check_call<E>(wc, dwc, 6, 0, &low, "per-row, binary mma, all rows at p_min", cuda::GemmPath::kBinaryMma);
    for (int p = c.p_min; p <= c.p_max; ++p) {
      const std::vector<int> one(5, p);
      check_call<E>(wc, dwc, 5, 0, &one, "per-row, register-dequantizing, one precision", cuda::GemmPath::kFusedDequant);
    }
    const auto b7 = random_bits(7, c.p_min, c.p_max);
    for (int ks : {1, 2, 4, 8}) check_call<E>(wc, dwc, 7, 0, &b7, "per-row, binary mma, k slices", cuda::GemmPath::kBinaryMma, ks);
  }
  // The precision split gives each row the one-precision call's result for that row, bit for bit (the uniform
  // register-dequantizing kernel at the same batch tile and K split, on the row's precision): 2 and 4 batch
  // tiles per block.
  {
    const auto wc = random_weights(224, 1024, 128, 2, 4);
    const cuda::DeviceWeights<> dwc(wc);
    for (index_t n : {12, 40}) {
      const index_t M = wc.rows(), K = wc.cols();
      const auto bits = random_bits(n, 2, 4);
      RowCallBuffers<E> io(n, K, M, bits);
      cuda::Gemm<E> gemm;
      auto run = [&](const int* row_bits, int p, cuda::GemmPath path, int k_slices, std::vector<Host<E>>& out) {
        const auto a = gemm_args<E>(dwc, io.dx.ptr, io.dy.ptr, n, p, row_bits, path, k_slices);
        const std::size_t ws_bytes = cuda::Gemm<E>::workspace_size(a);
        DeviceBuffer<unsigned char> ws(ws_bytes);
        io.dy.poison();
        REQUIRE(gemm.run(a, ws.ptr, ws_bytes, nullptr) == cuda::Status::kSuccess);
        ANYBCQ_CUDA_CHECK(cudaDeviceSynchronize());
        out.resize(static_cast<std::size_t>(n * M));
        io.dy.download(out.data());
      };
      // The split on the register-dequantizing kernel against that kernel; the split on the warpgroup kernel
      // against it, at 1 and 2 K slices (its rows sit elsewhere in the packed tiles than in the uniform call's).
      struct Pair {
        cuda::GemmPath split, uniform;
        int k_slices;
      };
      for (const Pair pr : {Pair{cuda::GemmPath::kSplitDequant, cuda::GemmPath::kFusedDequant, 0},
                            Pair{cuda::GemmPath::kSplitWgmma, cuda::GemmPath::kWgmmaDequant, 1},
                            Pair{cuda::GemmPath::kSplitWgmma, cuda::GemmPath::kWgmmaDequant, 2}}) {
        if (pr.uniform == cuda::GemmPath::kWgmmaDequant && !cuda::kHaveWgmma) continue;
        std::vector<Host<E>> mixed, uniform;
        run(io.db.ptr, 0, pr.split, pr.k_slices, mixed);
        for (int p = 2; p <= 4; ++p) {
          run(nullptr, p, pr.uniform, pr.k_slices, uniform);
          for (index_t r = 0; r < n; ++r) {
            if (bits[static_cast<std::size_t>(r)] != p) continue;
            CAPTURE(n);
            CAPTURE(r);
            CAPTURE(p);
            INFO("path ", cuda::to_string(pr.split), ", k slices ", pr.k_slices);
            CHECK(std::memcmp(mixed.data() + r * M, uniform.data() + r * M, static_cast<std::size_t>(M) * sizeof(Host<E>)) == 0);
          }
        }
      }
    }
  }
  // Arguments::row_bits_mask: with the mask of the precisions present every path gives the call without it
  // bit for bit; with one of them left out of the mask, that precision's rows come out NaN and the others
  // keep their bits. Aligned scale tables (binary mma; the per-row mode with the scale runs in its ring) and
  // odd M with group 64 (that mode with its scales from global memory), every path that takes the call.
  for (const WeightCase c : {WeightCase{224, 1024, 128, 2, 4, false}, WeightCase{211, 768, 64, 2, 4, false}}) {
    const auto wc = random_weights(c.M, c.K, c.g, c.p_min, c.p_max, c.sym);
    const cuda::DeviceWeights<> dwc(wc);
    for (index_t n : {1, 2, 5, 13, 40, 150}) {
      const index_t M = wc.rows(), K = wc.cols();
      auto bits = random_bits(n, c.p_min, c.p_max);
      if (n > 1) bits[1] = 3;  // a precision to leave out, with rows of another one beside it
      if (n > 1) bits[0] = 4;
      unsigned present = 0;
      for (const int b : bits) present |= 1u << b;
      RowCallBuffers<E> io(n, K, M, bits);
      cuda::Gemm<E> gemm;
      // One call on `path` with `mask`, y filled with `fill` first (finite: every output must be written).
      auto run = [&](cuda::GemmPath path, unsigned mask, float fill, std::vector<Host<E>>& out) {
        auto a = gemm_args<E>(dwc, io.dx.ptr, io.dy.ptr, n, 0, io.db.ptr, path);
        a.row_bits_mask = mask;
        const auto chk = cuda::Gemm<E>::can_implement(a);
        if (!chk.ok()) return false;
        const std::size_t ws_bytes = cuda::Gemm<E>::workspace_size(a);
        DeviceBuffer<unsigned char> ws(ws_bytes);
        if (ws_bytes) ws.poison();
        out.assign(static_cast<std::size_t>(n * M), from_float<Host<E>>(fill));
        io.dy.upload(out.data());
        REQUIRE(gemm.run(a, ws.ptr, ws_bytes, nullptr) == cuda::Status::kSuccess);
        ANYBCQ_CUDA_CHECK(cudaDeviceSynchronize());
        io.dy.download(out.data());
        return true;
      };
      for (const cuda::GemmPath path : {cuda::GemmPath::kAuto, cuda::GemmPath::kBinaryMma, cuda::GemmPath::kFusedDequant,
                                        cuda::GemmPath::kSplitDequant, cuda::GemmPath::kSplitCublas,
                                        cuda::GemmPath::kSplitWgmma, cuda::GemmPath::kFusedBitSerial}) {
        std::vector<Host<E>> plain, hinted, fewer;
        if (!run(path, 0, 1.0f, plain)) continue;
        CAPTURE(M);
        CAPTURE(n);
        INFO("path ", cuda::to_string(path));
        REQUIRE(run(path, present, 2.0f, hinted));
        CHECK(std::memcmp(plain.data(), hinted.data(), plain.size() * sizeof(Host<E>)) == 0);
        if (n < 2) continue;
        const unsigned mask = present & ~(1u << 3);
        REQUIRE(run(path, mask, 2.0f, fewer));
        for (index_t r = 0; r < n; ++r) {
          CAPTURE(r);
          const std::size_t o = static_cast<std::size_t>(r * M);
          if (bits[static_cast<std::size_t>(r)] == 3) {
            int finite = 0;
            for (index_t m = 0; m < M; ++m) finite += std::isnan(to_float(fewer[o + static_cast<std::size_t>(m)])) ? 0 : 1;
            CHECK(finite == 0);
          } else {
            CHECK(std::memcmp(plain.data() + o, fewer.data() + o, static_cast<std::size_t>(M) * sizeof(Host<E>)) == 0);
          }
        }
      }
    }
  }
  // p_max 5: the precision split, and the bit-serial kernel forced.
  const auto w5 = random_weights(77, 512, 128, 2, 5);
  const cuda::DeviceWeights<> dw5(w5);
  for (index_t n : {3, 10, 33}) {
    const auto bits = random_bits(n, 2, 5);
    check_call<E>(w5, dw5, n, 0, &bits, "per-row, p_max 5 (auto: split)");
    check_call<E>(w5, dw5, n, 0, &bits, "per-row, p_max 5, split through cuBLAS", cuda::GemmPath::kSplitCublas);
    if (cuda::kHaveWgmma) check_call<E>(w5, dw5, n, 0, &bits, "per-row, p_max 5, split-wg", cuda::GemmPath::kSplitWgmma);
    check_call<E>(w5, dw5, n, 0, &bits, "per-row, p_max 5, bit-serial", cuda::GemmPath::kFusedBitSerial);
  }
}

}  // namespace gemm_test
