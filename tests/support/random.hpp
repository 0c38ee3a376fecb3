// Test helpers: seeded random matrices and weights (fresh seeds per run unless ANYBCQ_TEST_SEED is set).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <random>
#include <vector>

#include "anybcq/core/numeric.hpp"
#include "anybcq/core/weights.hpp"

namespace anybcq_test {

//! Base seed of every random input: ANYBCQ_TEST_SEED if set, else drawn from std::random_device. Each test
//! binary prints it when it starts (tests/main.cpp), so that a failing run can be repeated with the same inputs.
inline std::uint64_t base_seed() {
  static const std::uint64_t seed = [] {
    if (const char* s = std::getenv("ANYBCQ_TEST_SEED")) return static_cast<std::uint64_t>(std::strtoull(s, nullptr, 10));
    return (std::uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  }();
  return seed;
}

inline std::mt19937_64 rng(std::uint64_t salt) { return std::mt19937_64(base_seed() * 0x9E3779B97F4A7C15ull + salt); }

//! Gaussian N(0, sigma²) matrix.
inline std::vector<float> gaussian(std::int64_t n, std::uint64_t salt, float sigma = 0.02f) {
  auto r = rng(salt);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(r);
  return v;
}

//! Student-t (4 dof) scaled by sigma, with `cols / 128` random input channels multiplied by 6.
inline std::vector<float> heavy_tailed(std::int64_t rows, std::int64_t cols, std::uint64_t salt, float sigma = 0.02f) {
  auto r = rng(salt);
  std::student_t_distribution<float> t(4.0f);
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (auto& x : v) x = sigma * t(r);
  std::vector<std::int64_t> ch(static_cast<std::size_t>(cols));
  for (std::int64_t i = 0; i < cols; ++i) ch[static_cast<std::size_t>(i)] = i;
  std::shuffle(ch.begin(), ch.end(), r);
  for (std::int64_t c = 0; c < std::max<std::int64_t>(1, cols / 128); ++c)
    for (std::int64_t m = 0; m < rows; ++m) v[static_cast<std::size_t>(m * cols + ch[static_cast<std::size_t>(c)])] *= 6.0f;
  return v;
}

//! Weights with random planes and random positive scales (no quantizer involved).
template <class Layout, class Scale>
anybcq::MultiPrecisionWeights<Layout, Scale> random_weights(const anybcq::BcqShape& shape, std::uint64_t salt) {
  anybcq::MultiPrecisionWeights<Layout, Scale> w(shape);
  auto r = rng(salt);
  for (auto& word : w.planes()) word = static_cast<std::uint32_t>(r());
  std::uniform_real_distribution<float> a(0.001f, 0.05f), b(-0.02f, 0.02f);
  for (auto& x : w.alpha()) x = anybcq::from_float<Scale>(a(r));
  for (auto& x : w.beta()) x = anybcq::from_float<Scale>(b(r));
  return w;
}

}  // namespace anybcq_test
