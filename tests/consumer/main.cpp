// Quantizes a small seeded matrix and checks the reference product; exit code 0 on success.
#include <cstdio>
#include <random>
#include <vector>

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
  std::printf("consumer: AnyBCQ %d.%d, output error at p=4: %.4f\n", ANYBCQ_VERSION_MAJOR, ANYBCQ_VERSION_MINOR, e);
  return (e > 0.0 && e < 0.2) ? 0 : 1;
}
