// anybcq_gpu's host side: see host.hpp.
#include "host.hpp"

#include <random>
#include <vector>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/cpu/reference.hpp"
#include "anybcq/quant/quantize.hpp"

namespace gpu_demo {

Weights quantize_gaussian(anybcq::index_t M, anybcq::index_t K, anybcq::index_t group, std::uint64_t seed,
                          int threads) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(M * K));
  for (auto& v : w) v = d(rng);
  anybcq::quant::QuantizeOptions opt;
  opt.group = group;
  opt.threads = threads;
  return anybcq::quant::quantize(w.data(), M, K, opt);
}

void reference(const Weights& w, int p, const int* bits, const anybcq::half_t* x, anybcq::index_t n, float* y) {
  if (p == 0) anybcq::cpu::gemm(w.multi_view(), bits, x, n, y);
  else anybcq::cpu::gemm(w.view(p), x, n, y);
}

void dequantize(const Weights& w, int p, float* out) { anybcq::cpu::dequantize(w.view(p), out); }

}  // namespace gpu_demo
