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

Reference::Reference(const Weights& w) : M_(w.shape().rows), K_(w.shape().cols), p_min_(w.p_min()) {
  for (int p = w.p_min(); p <= w.p_max(); ++p) {
    w_.emplace_back(static_cast<std::size_t>(M_ * K_));
    anybcq::cpu::dequantize(w.view(p), w_.back().data());
  }
}

void Reference::gemm(int p, const int* bits, const anybcq::half_t* x, anybcq::index_t n, float* y) const {
  using Matrix = anybcq::cpu::RowMatrixF;
  for (int q = p_min_; q < p_min_ + int(w_.size()); ++q) {
    if (p != 0 && q != p) continue;
    // The rows at q, one product for all of them.
    std::vector<anybcq::index_t> rows;
    for (anybcq::index_t r = 0; r < n; ++r)
      if (p != 0 || bits[r] == q) rows.push_back(r);
    if (rows.empty()) continue;
    Matrix xq(static_cast<anybcq::index_t>(rows.size()), K_);
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (anybcq::index_t k = 0; k < K_; ++k) xq(anybcq::index_t(i), k) = anybcq::to_float(x[rows[i] * K_ + k]);
    const Eigen::Map<const Matrix> wq(weights(q).data(), M_, K_);
    const Matrix yq = xq * wq.transpose();
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (anybcq::index_t m = 0; m < M_; ++m) y[rows[i] * M_ + m] = yq(anybcq::index_t(i), m);
  }
}

}  // namespace gpu_demo
