// Shared helpers for the lookup-table kernel tests: random multi-precision weights and activations.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "anybcq/core/numeric.hpp"
#include "anybcq/core/weights.hpp"
#include "anybcq/cpu/isa.hpp"
#include "anybcq/layout/plane_major.hpp"

namespace lut_test {
using namespace anybcq;

//! Random planes and scales (α^p decreasing like a real BCQ fit, β random unless symmetric).
template <class Scale = half_t>
MultiPrecisionWeights<layout::PlaneMajor, Scale> random_weights(const BcqShape& s, std::uint32_t seed) {
  std::mt19937 rng(seed);
  MultiPrecisionWeights<layout::PlaneMajor, Scale> w(s);
  for (auto& word : w.planes()) word = static_cast<std::uint32_t>(rng());
  std::uniform_real_distribution<float> u(0.5f, 1.5f), b(-0.3f, 0.3f);
  const auto& sl = w.scale_layout();
  for (int p = s.p_min; p <= s.p_max; ++p)
    for (index_t g = 0; g < s.groups(); ++g)
      for (int i = 0; i < p; ++i)
        for (index_t m = 0; m < s.rows; ++m)
          w.alpha()[std::size_t(sl.alpha_offset(p, g, i, m))] = from_float<Scale>(0.05f * u(rng) / float(1 << i));
  for (auto& v : w.beta()) v = from_float<Scale>(0.02f * b(rng));
  return w;
}

//! Gaussian activations; `outliers` > 0 scales that fraction of channels by 30 (LLM-like outliers).
inline std::vector<float> random_x(index_t n, index_t k, std::uint32_t seed, double outliers = 0.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> scale(static_cast<std::size_t>(k), 1.0f);
  for (auto& s : scale)
    if (u(rng) < outliers) s = 30.0f;
  std::vector<float> x(static_cast<std::size_t>(n * k));
  for (index_t i = 0; i < n * k; ++i) x[std::size_t(i)] = d(rng) * scale[std::size_t(i % k)];
  return x;
}

//! Every kernel level this CPU can run.
inline std::vector<cpu::Isa> supported_isas() {
  std::vector<cpu::Isa> v;
  for (auto i : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512})
    if (cpu::isa_supported(i)) v.push_back(i);
  return v;
}

//! Normalized MSE ‖a − b‖² / ‖b‖².
template <class A, class B>
double nmse(const A* a, const B* b, index_t n) {
  double num = 0, den = 0;
  for (index_t i = 0; i < n; ++i) {
    const double r = double(to_float(b[i])), d = double(to_float(a[i])) - r;
    num += d * d;
    den += r * r;
  }
  return den > 0 ? num / den : num;
}

}  // namespace lut_test
