#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "anybcq/cpu/reference.hpp"
#include "anybcq/layout/interleaved.hpp"
#include "anybcq/quant/quantize.hpp"
#include "support/random.hpp"

using namespace anybcq;

TEST_CASE_TEMPLATE("reference GEMM/GEMV match the float64 oracle for every layout", L, layout::Interleaved,
                   layout::PlaneMajor) {
  const BcqShape shape{45, 192, 64, 2, 4, false};
  const auto w = anybcq_test::random_weights<L, half_t>(shape, 3);
  for (index_t n : {1, 3, 8}) {
    const auto x = anybcq_test::gaussian(n * shape.cols, 40 + n, 1.0f);
    for (int p = 2; p <= 4; ++p) {
      std::vector<float> y(static_cast<std::size_t>(n * shape.rows), NAN);
      cpu::gemm(w.view(p), x.data(), n, y.data());
      const auto ref = cpu::gemm_naive_f64(w.view(p), x.data(), n);
      for (float v : y) REQUIRE(std::isfinite(v));  // every output written
      CHECK(cpu::relative_error(y.data(), ref.data(), n * shape.rows) < 1e-6);
      const auto ref2 = cpu::gemm_f64(w.view(p), x.data(), n);
      CHECK(cpu::relative_error(ref2.data(), ref.data(), n * shape.rows) < 1e-6);
    }
  }
  const auto x = anybcq_test::gaussian(shape.cols, 99, 1.0f);
  std::vector<half_t> yh(static_cast<std::size_t>(shape.rows));
  std::vector<float> yf(static_cast<std::size_t>(shape.rows));
  cpu::gemv(w.view(3), x.data(), yh.data());
  cpu::gemv(w.view(3), x.data(), yf.data());
  for (index_t m = 0; m < shape.rows; ++m) CHECK(to_float(yh[m]) == to_float(to_half(yf[m])));
}

TEST_CASE("reference per-row precision equals the single-precision call for each row") {
  const BcqShape shape{31, 256, 128, 2, 4, false};
  const auto w = anybcq_test::random_weights<layout::PlaneMajor, half_t>(shape, 5);
  const index_t n = 7;
  const auto x = anybcq_test::gaussian(n * shape.cols, 6, 1.0f);
  const int bits[n] = {4, 2, 3, 3, 2, 4, 2};
  std::vector<float> y(static_cast<std::size_t>(n * shape.rows), NAN);
  cpu::gemm(w.multi_view(), bits, x.data(), n, y.data());
  for (index_t r = 0; r < n; ++r) {
    std::vector<float> yr(static_cast<std::size_t>(shape.rows));
    cpu::gemv(w.view(bits[r]), x.data() + r * shape.cols, yr.data());
    for (index_t m = 0; m < shape.rows; ++m) CHECK(y[r * shape.rows + m] == yr[m]);
  }
  const int bad[2] = {2, 5};
  CHECK_THROWS_WITH_AS(cpu::gemm(w.multi_view(), bad, x.data(), 2, y.data()),
                       doctest::Contains("row 1 asks for precision 5, outside the weight's range 2..4"), Error);
}

TEST_CASE("output error of quantized weights tracks weight error") {
  const index_t M = 64, K = 512;
  const auto w = anybcq_test::gaussian(M * K, 12);
  const auto q = quant::quantize(w.data(), M, K, quant::QuantizeOptions{});
  const auto x = anybcq_test::gaussian(4 * K, 13, 1.0f);
  double prev = INFINITY;
  for (int p = 2; p <= 4; ++p) {
    const double eo = cpu::output_error(q.view(p), w.data(), x.data(), 4);
    const double ew = cpu::weight_error(q.view(p), w.data());
    CHECK(eo < prev);
    CHECK(eo == doctest::Approx(ew).epsilon(0.25));  // random activations: output error ≈ weight error
    prev = eo;
  }
}
