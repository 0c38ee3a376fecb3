// anybcq_gpu's host side (quantizer and CPU reference, which use Eigen), compiled by the C++ compiler
// so that the CUDA translation unit includes no Eigen header.
#pragma once
#include <cstdint>

#include "anybcq/core/weights.hpp"

namespace gpu_demo {

using Weights = anybcq::MultiPrecisionWeights<anybcq::layout::PlaneMajor, anybcq::half_t>;

//! A seeded Gaussian M×K layer (σ 0.02) quantized at p = 2..4 with scale group `group` (threads: 0 = all).
Weights quantize_gaussian(anybcq::index_t M, anybcq::index_t K, anybcq::index_t group, std::uint64_t seed,
                          int threads);

//! CPU reference y = x·Ŵ_pᵀ (n×M, float) for x (n×K): every row at p, or row r at bits[r] when p == 0.
void reference(const Weights& w, int p, const int* bits, const anybcq::half_t* x, anybcq::index_t n, float* y);

//! Ŵ_p dequantized (M×K, row-major, float).
void dequantize(const Weights& w, int p, float* out);

}  // namespace gpu_demo
