// anybcq_gpu's host side (quantizer and CPU reference, which use Eigen), compiled by the C++ compiler
// so that the CUDA translation unit includes no Eigen header.
#pragma once
#include <cstdint>
#include <vector>

#include "anybcq/core/weights.hpp"

namespace gpu_demo {

using Weights = anybcq::MultiPrecisionWeights<anybcq::layout::PlaneMajor, anybcq::half_t>;

//! A seeded Gaussian M×K layer (σ 0.02) quantized at p = 2..4 with scale group `group` (threads: 0 = all).
Weights quantize_gaussian(anybcq::index_t M, anybcq::index_t K, anybcq::index_t group, std::uint64_t seed,
                          int threads);

//! CPU reference products of one weight object: each Ŵ_p dequantized once (float, M×K, row-major), then
//! every call one Eigen product per precision it uses.
class Reference {
 public:
  explicit Reference(const Weights& w);
  //! y = x·Ŵ_pᵀ (n×M, float) for x (n×K): every row at p, or row r at bits[r] when p == 0.
  void gemm(int p, const int* bits, const anybcq::half_t* x, anybcq::index_t n, float* y) const;
  //! Ŵ_p.
  const std::vector<float>& weights(int p) const { return w_[static_cast<std::size_t>(p - p_min_)]; }

 private:
  anybcq::index_t M_, K_;
  int p_min_;
  std::vector<std::vector<float>> w_;
};

}  // namespace gpu_demo
