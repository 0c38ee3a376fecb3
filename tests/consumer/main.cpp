// Quantizes a small seeded matrix and checks the reference product; exit code 0 on success.
#include <cstdio>
#include <random>
#include <vector>

#include "anybcq/cpu/lut_gemm.hpp"
#include "anybcq/cpu/reference.hpp"
#include "anybcq/quant/quantize.hpp"

int main() {
  const anybcq::index_t M = 48, K = 256;
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> w(M * K), x(K), y(M);
  for (auto& v : w) v = d(rng);
  for (auto& v : x) v = d(rng);
  const auto q = anybcq::quant::quantize(w.data(), M, K, anybcq::quant::QuantizeOptions{});
  anybcq::cpu::gemv(q.view(4), x.data(), y.data());
  const double e = anybcq::cpu::output_error(q.view(4), w.data(), x.data(), 1);
  // The README's fast CPU path: LutWeights from the RowTiled layout, GEMV at p = 2 vs the reference.
  anybcq::cpu::LutWeights lw = q.convert<anybcq::layout::RowTiled>();
  std::vector<float> r2(M), y2(M);
  anybcq::cpu::gemv(q.view(2), x.data(), r2.data());
  anybcq::cpu::lut_gemv(lw, 2, x.data(), y2.data());
  double num = 0, den = 0;
  for (anybcq::index_t m = 0; m < M; ++m) {
    num += (y2[m] - r2[m]) * (y2[m] - r2[m]);
    den += r2[m] * r2[m];
  }
  std::printf("consumer: AnyBCQ %d.%d, output error at p=4: %.4f, lut_gemv vs reference at p=2: %.2e\n",
              ANYBCQ_VERSION_MAJOR, ANYBCQ_VERSION_MINOR, e, num / den);
  return (e > 0.0 && e < 0.2 && num / den < 1e-3) ? 0 : 1;
}
