// AnyBCQ's CPU GEMV next to llama.cpp's own CPU dot products, in one process on one machine.
//
// Not part of the CMake build: it needs a llama.cpp (ggml) source tree, which the project does not
// ship or download. Build ggml's CPU backend there, then compile this file against it, e.g.
//
//   cmake -S $LLAMA/ggml -B ggml-build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF
//         -DGGML_OPENMP=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF
//         (the AVX2 build; -DGGML_NATIVE=ON instead builds for this CPU, AVX-512 included)
//   cmake --build ggml-build --target ggml-cpu ggml-base
//   g++ -std=c++17 -O3 -DNDEBUG -Iinclude -I$LLAMA/ggml/include bench/cpu/side_by_side_llamacpp.cpp
//       ggml-build/src/libggml-cpu.a ggml-build/src/libggml-base.a -lpthread -o side_by_side
//   ./side_by_side [--reps N] [--isa avx2|avx512]   (AnyBCQ's kernel level; default: the best supported)
// ($LLAMA/ggml/ggml.pc.in must exist for ggml's CMake; an empty file will do.)
//
// What is timed, per call (weights rotated through copies totalling ≥ 256 MB, so every call reads
// its weights from memory; median of N calls; both sides on the same cpu::ThreadPool of 2 workers):
//  * llama.cpp: quantize the activation row to the type's vec_dot_type (Q8_K for k-quants, one thread,
//    as ggml's mul_mat does for one row), then vec_dot row by row over the M weight rows, rows split into
//    contiguous chunks over the workers — the inner loop of ggml_compute_forward_mul_mat for one token.
//    Weights: N(0, 0.02) rows quantized with ggml_quantize_chunk (no importance matrix).
//  * AnyBCQ: cpu::lut_gemv (table build included) on RowTiled planes at p = 2, 3, 4 (P = 4, group 128,
//    fp16 scales, random planes).
// Activations: N(0, 1) with every 97th channel ×20 (outlier channels). The streaming-read bandwidth of
// the same pool is measured before and after.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "anybcq/cpu/lut_gemm.hpp"
#include "anybcq/layout/plane_major.hpp"
#include "ggml-cpu.h"
#include "ggml.h"

using namespace anybcq;

namespace {

constexpr std::size_t kColdBytes = std::size_t(256) << 20;

template <class F>
double median_us(int reps, F&& call) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    call(i);
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double read_bw(cpu::ThreadPool& pool) {
  static std::vector<std::uint64_t> buf((std::size_t(512) << 20) / 8, 1);
  std::vector<double> v;
  for (int r = 0; r < 5; ++r) {
    std::uint64_t sink[8] = {};
    const auto a = std::chrono::steady_clock::now();
    pool.run(
        [&](int w, int nw) {
          const std::size_t n = buf.size() / std::size_t(nw);
          std::uint64_t s = 0;
          const std::uint64_t* p = buf.data() + n * std::size_t(w);
          for (std::size_t i = 0; i < n; i += 4) s ^= p[i] ^ p[i + 1] ^ p[i + 2] ^ p[i + 3];
          sink[w] = s;
        },
        pool.size());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    if (sink[0] == 42) std::printf(" ");
    v.push_back(double(buf.size() * 8) / s * 1e-9);
  }
  std::sort(v.begin(), v.end());
  return v[2];
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 200;
  cpu::LutOptions opt;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--isa") && i + 1 < argc && !std::strcmp(argv[i + 1], "avx2")) {
      opt.isa = cpu::Isa::kAvx2;
      ++i;
    } else if (!std::strcmp(argv[i], "--isa") && i + 1 < argc && !std::strcmp(argv[i + 1], "avx512")) {
      opt.isa = cpu::Isa::kAvx512;
      ++i;
    } else {
      std::printf("usage: %s [--reps N] [--isa avx2|avx512]\n", argv[0]);
      return 2;
    }
  }
  if (!cpu::isa_supported(cpu::resolve_isa(opt.isa))) {
    std::printf("this CPU does not support the requested kernel level\n");
    return 2;
  }
  std::printf("AnyBCQ kernel level: %s\n", cpu::isa_name(cpu::resolve_isa(opt.isa)));
  ggml_cpu_init();
  cpu::ThreadPool pool(2);
  std::printf("streaming read bandwidth, 2 threads, before: %.1f GB/s\n", read_bw(pool));
  std::printf("%-11s %-6s %9s %9s %8s\n", "MxK", "kernel", "MB/call", "us", "GB/s");

  struct Shape {
    index_t M, K;
  };
  const Shape shapes[] = {{4096, 4096}, {14336, 4096}, {4096, 14336}};
  const ggml_type types[] = {GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K};
  std::mt19937 rng(5);
  for (const Shape s : shapes) {
    std::vector<float> x(std::size_t(s.K));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = nd(rng) * (i % 97 == 0 ? 20.0f : 1.0f);
    std::vector<float> y(std::size_t(s.M));

    // llama.cpp k-quants
    std::vector<float> wf(std::size_t(s.M * s.K));
    std::normal_distribution<float> wd(0.0f, 0.02f);
    for (auto& v : wf) v = wd(rng);
    for (ggml_type t : types) {
      const auto* tr = ggml_get_type_traits_cpu(t);
      const std::size_t row = ggml_row_size(t, s.K), bytes = row * std::size_t(s.M);
      const std::size_t copies = std::max<std::size_t>(2, kColdBytes / bytes + 1);
      std::vector<std::vector<std::uint8_t>> w(copies, std::vector<std::uint8_t>(bytes));
      ggml_quantize_chunk(t, wf.data(), w[0].data(), 0, s.M, s.K, nullptr);
      for (std::size_t c = 1; c < copies; ++c) w[c] = w[0];
      std::vector<std::uint8_t> xq(ggml_row_size(tr->vec_dot_type, s.K));
      const auto* xtr = ggml_get_type_traits_cpu(tr->vec_dot_type);
      const double us = median_us(reps, [&](int i) {
        const std::uint8_t* wc = w[std::size_t(i) % copies].data();
        xtr->from_float(x.data(), xq.data(), s.K);
        pool.parallel_for(s.M, std::max<index_t>(16, s.M / 16), [&](index_t b, index_t e) {
          for (index_t m = b; m < e; ++m)
            tr->vec_dot(int(s.K), &y[std::size_t(m)], 0, wc + row * std::size_t(m), 0, xq.data(), 0, 1);
        });
      });
      std::printf("%5ldx%-5ld %-6s %9.2f %9.1f %8.1f\n", long(s.M), long(s.K), ggml_type_name(t), bytes / 1e6, us,
                  bytes / us * 1e-3);
      std::fflush(stdout);
    }
    wf = {};

    // AnyBCQ
    MultiPrecisionWeights<layout::PlaneMajor, half_t> base(BcqShape{s.M, s.K, 128, 2, 4, false});
    for (auto& v : base.planes()) v = std::uint32_t(rng());
    std::uniform_real_distribution<float> u(0.01f, 0.05f);
    for (auto& a : base.alpha()) a = to_half(u(rng));
    for (auto& b : base.beta()) b = to_half(u(rng) - 0.03f);
    std::vector<std::unique_ptr<cpu::LutWeights<half_t>>> ws;
    ws.push_back(std::make_unique<cpu::LutWeights<half_t>>(base.convert<layout::RowTiled>()));
    const std::size_t copies = std::max<std::size_t>(2, kColdBytes / std::size_t(ws[0]->storage_bytes()) + 1);
    for (std::size_t c = 1; c < copies; ++c) ws.push_back(std::make_unique<cpu::LutWeights<half_t>>(*ws[0]));
    for (int p = 2; p <= 4; ++p) {
      const double us = median_us(reps, [&](int i) { cpu::lut_gemv(*ws[std::size_t(i) % copies], p, x.data(), y.data(), &pool, opt); });
      const double bytes = double(ws[0]->bytes(p));
      std::printf("%5ldx%-5ld %-6s %9.2f %9.1f %8.1f\n", long(s.M), long(s.K), ("p=" + std::to_string(p)).c_str(),
                  bytes / 1e6, us, bytes / us * 1e-3);
      std::fflush(stdout);
    }
  }
  std::printf("streaming read bandwidth, 2 threads, after: %.1f GB/s\n", read_bw(pool));
  return 0;
}
