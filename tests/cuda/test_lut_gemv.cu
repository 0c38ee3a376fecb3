// LutGemv (batch 1…4 CUDA-core GEMV over GemvTiled) against the float64 oracle.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/cuda/lut_gemv.cuh"
#include "cuda/cuda_test_support.cuh"
#include "support/random.hpp"

using namespace anybcq;

namespace lut_gemv_test {

using cuda_test::have_gpu;
using cuda_test::Host;
using cuda_test::DeviceBuffer;

template <class E>
std::vector<Host<E>> random_x(index_t n, std::uint64_t salt) {
  auto r = anybcq_test::rng(salt);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<Host<E>> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = from_float<Host<E>>(d(r));
  return x;
}

//! Run LutGemv at every precision and batch 1…kMaxBatch against gemm_naive_f64; outputs poisoned with NaN.
template <class E>
void check_shape(index_t M, index_t K, index_t g, int p_min, int p_max, bool symmetric, std::uint64_t salt,
                 int warps = 0) {
  CAPTURE(M);
  CAPTURE(warps);
  CAPTURE(K);
  CAPTURE(g);
  CAPTURE(symmetric);
  CAPTURE(anybcq_test::base_seed());
  const BcqShape s{M, K, g, p_min, p_max, symmetric};
  const auto w = anybcq_test::random_weights<layout::PlaneMajor, half_t>(s, salt);
  const cuda::GemvWeights<half_t> dw(w);
  using Op = cuda::LutGemv<E, half_t>;
  const index_t nmax = Op::kMaxBatch;
  const auto x = random_x<E>(nmax * K, salt + 1);
  DeviceBuffer<Host<E>> dx(x.size());
  DeviceBuffer<Host<E>> dy(static_cast<std::size_t>(nmax * M));
  ANYBCQ_CUDA_CHECK(cudaMemcpy(dx.ptr, x.data(), x.size() * sizeof(x[0]), cudaMemcpyHostToDevice));
  const double eps = std::is_same_v<E, __half> ? 1.0 / 1024 : 1.0 / 128;
  for (int p = p_min; p <= p_max; ++p) {
    CAPTURE(p);
    const auto ref = cpu::gemm_naive_f64(w.view(p), x.data(), nmax);
    for (index_t n = 1; n <= nmax; ++n) {
      CAPTURE(n);
      ANYBCQ_CUDA_CHECK(cudaMemset(dy.ptr, 0xFF, static_cast<std::size_t>(nmax * M) * sizeof(Host<E>)));  // NaN
      typename Op::Arguments a;
      a.weights = dw.view();
      a.x = reinterpret_cast<const E*>(dx.ptr);
      a.y = reinterpret_cast<E*>(dy.ptr);
      a.bits = p;
      a.batch = n;
      a.warps = std::min(warps, cuda::detail::gemv_max_warps(int(n)));
      const cuda::Check c = Op::run(a);
      REQUIRE_MESSAGE(c.ok(), c.message);
      ANYBCQ_CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<Host<E>> y(static_cast<std::size_t>(nmax * M));
      ANYBCQ_CUDA_CHECK(cudaMemcpy(y.data(), dy.ptr, y.size() * sizeof(y[0]), cudaMemcpyDeviceToHost));
      int bad = 0;
      for (index_t r = 0; r < nmax; ++r)
        for (index_t m = 0; m < M; ++m) {
          const float got = to_float(y[static_cast<std::size_t>(r * M + m)]);
          if (r >= n) {  // rows past the batch stay untouched
            if (!std::isnan(got) && bad++ < 5) FAIL_CHECK("row ", r, " past batch ", n, " was written");
            continue;
          }
          const double want = ref[static_cast<std::size_t>(r * M + m)];
          const double tol = eps * std::abs(want) + 1e-4 * std::sqrt(double(K));
          if (!(std::abs(got - want) <= tol) && bad++ < 5)
            FAIL_CHECK("y[", r, "][", m, "] = ", got, ", reference ", want, " (tolerance ", tol, ")");
        }
      CHECK(bad == 0);
    }
  }
}

}  // namespace lut_gemv_test

TEST_CASE_TEMPLATE("lut_gemv: matches the float64 oracle at every precision, batch and odd shape", E, __half,
                   __nv_bfloat16) {
  if (!lut_gemv_test::have_gpu()) return;
  std::uint64_t salt = 100;
  for (index_t M : {1, 37, 333, 1003})
    for (index_t K : {128, 384, 4096})
      for (index_t g : {index_t(128), index_t(256), K}) {
        if (K % g != 0) continue;
        lut_gemv_test::check_shape<E>(M, K, g, 1, 4, false, salt++);
      }
  lut_gemv_test::check_shape<E>(77, 512, 128, 2, 8, false, salt++);
  lut_gemv_test::check_shape<E>(64, 14336, 128, 2, 4, false, salt++);
}

TEST_CASE_TEMPLATE("lut_gemv: any warp count splits K correctly", E, __half, __nv_bfloat16) {
  if (!lut_gemv_test::have_gpu()) return;
  for (int warps : {1, 3, 8, 16}) lut_gemv_test::check_shape<E>(300, 4096, 256, 2, 3, false, 700 + warps, warps);
  lut_gemv_test::check_shape<E>(8195, 512, 128, 2, 3, false, 720);  // automatic choice for M ≥ 8192 (8 warps)
}

TEST_CASE_TEMPLATE("lut_gemv: symmetric weights (no offsets)", E, __half, __nv_bfloat16) {
  if (!lut_gemv_test::have_gpu()) return;
  lut_gemv_test::check_shape<E>(333, 384, 128, 2, 4, true, 500);
  lut_gemv_test::check_shape<E>(96, 4096, 4096, 1, 3, true, 501);
}

TEST_CASE("lut_gemv: two runs are bit-identical") {
  if (!lut_gemv_test::have_gpu()) return;
  using lut_gemv_test::DeviceBuffer;
  const index_t M = 1003, K = 4096;
  const auto w = anybcq_test::random_weights<layout::PlaneMajor, half_t>(BcqShape{M, K, 128, 2, 4, false}, 600);
  const cuda::GemvWeights<half_t> dw(w);
  const auto x = lut_gemv_test::random_x<__half>(2 * K, 601);
  DeviceBuffer<half_t> dx(x.size()), dy(static_cast<std::size_t>(2 * M));
  ANYBCQ_CUDA_CHECK(cudaMemcpy(dx.ptr, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  for (int p = 2; p <= 4; ++p) {
    std::vector<std::uint16_t> first, again(static_cast<std::size_t>(2 * M));
    for (int rep = 0; rep < 3; ++rep) {
      cuda::LutGemv<__half>::Arguments a;
      a.weights = dw.view();
      a.x = reinterpret_cast<const __half*>(dx.ptr);
      a.y = reinterpret_cast<__half*>(dy.ptr);
      a.bits = p;
      a.batch = 2;
      ANYBCQ_CUDA_CHECK(cudaMemset(dy.ptr, 0xFF, static_cast<std::size_t>(2 * M) * 2));
      REQUIRE(cuda::LutGemv<__half>::run(a).ok());
      ANYBCQ_CUDA_CHECK(cudaMemcpy(again.data(), dy.ptr, again.size() * 2, cudaMemcpyDeviceToHost));
      if (rep == 0) first = again;
      else CHECK(std::memcmp(first.data(), again.data(), again.size() * 2) == 0);
    }
  }
}

TEST_CASE("lut_gemv: can_implement names what is wrong") {
  // Pure host checks on a fake view: no device needed (pointers are never dereferenced).
  using Op = cuda::LutGemv<__half>;
  alignas(16) static std::uint32_t fake_planes[4];
  static half_t fake_scales[4];
  alignas(16) static __half fake_x[8], fake_y[8];
  auto make = [&](index_t M, index_t K, index_t g, int pmin, int pmax) {
    Op::Arguments a;
    a.weights.planes = fake_planes;
    a.weights.alpha = fake_scales;
    a.weights.beta = fake_scales;
    a.weights.layout = layout::make<layout::GemvTiled>(M, K, pmax);
    a.weights.scales = layout::ScaleLayout{M, g > 0 ? K / g : 0, pmin, pmax};
    a.weights.rows = M;
    a.weights.cols = K;
    a.weights.group = g;
    a.x = fake_x;
    a.y = fake_y;
    a.bits = pmin;
    a.batch = 1;
    return a;
  };
  CHECK(Op::can_implement(make(64, 256, 128, 2, 4)).ok());
  auto a = make(64, 160, 32, 2, 4);
  auto c = Op::can_implement(a);
  CHECK(c.status == cuda::Status::kInvalidProblem);
  CHECK(c.message.find("K = 160 is not a multiple of 128") != std::string::npos);
  a = make(64, 256, 64, 2, 4);
  c = Op::can_implement(a);
  CHECK(c.message.find("group size 64") != std::string::npos);
  a = make(64, 256, 128, 2, 4);
  a.bits = 5;
  c = Op::can_implement(a);
  CHECK(c.message.find("precision p = 5 is outside 2..4") != std::string::npos);
  a = make(64, 256, 128, 2, 4);
  a.batch = 5;
  c = Op::can_implement(a);
  CHECK(c.message.find("batch = 5 is outside 1..4") != std::string::npos);
  a.batch = 1;
  a.warps = 17;
  CHECK(Op::can_implement(a).message.find("warps = 17 is outside 0..16") != std::string::npos);
  a.batch = 0;
  CHECK(!Op::can_implement(a).ok());
  a = make(64, 256, 128, 2, 4);
  a.x = reinterpret_cast<const __half*>(reinterpret_cast<const char*>(fake_x) + 2);
  c = Op::can_implement(a);
  CHECK(c.status == cuda::Status::kMisalignedOperand);
  CHECK(c.message.find("x is not 8-byte aligned") != std::string::npos);
  a = make(64, 256, 128, 2, 4);
  a.y = nullptr;
  CHECK(Op::can_implement(a).status == cuda::Status::kMisalignedOperand);
  a = make(64, 256, 128, 2, 4);
  a.weights.layout.rows = 63;
  CHECK(Op::can_implement(a).message.find("does not match") != std::string::npos);
  // run() refuses without launching
  a = make(64, 160, 32, 2, 4);
  CHECK(!Op::run(a).ok());
}
