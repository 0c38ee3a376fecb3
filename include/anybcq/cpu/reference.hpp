// AnyBCQ — the obviously-correct CPU reference path: dequantize, then Eigen GEMV/GEMM.
// Every fast kernel is checked against this. (Eigen-free pieces: cpu/dequantize.hpp.)
#pragma once
#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "anybcq/core/error.hpp"
#include "anybcq/core/numeric.hpp"
#include "anybcq/core/weights.hpp"
#include "anybcq/cpu/dequantize.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

//! Ŵ_p as an Eigen float matrix.
template <class Layout, class Scale>
RowMatrixF dequantize(const WeightView<Layout, Scale>& v) {
  RowMatrixF w(v.rows, v.cols);
  dequantize(v, w.data());
  return w;
}

namespace detail {
template <class T>
RowMatrixF to_matrix(const T* x, index_t rows, index_t cols) {
  RowMatrixF m(rows, cols);
  for (index_t i = 0; i < rows * cols; ++i) m.data()[i] = to_float(x[i]);
  return m;
}
}  // namespace detail

//! y = x·Ŵ_pᵀ for N activation rows: x is N×K, y is N×M (row-major), float accumulation via Eigen.
template <class Layout, class Scale, class In, class Out>
void gemm(const WeightView<Layout, Scale>& v, const In* x, index_t n, Out* y) {
  ANYBCQ_REQUIRE(n >= 0, "gemm: batch n = ", n, " is negative");
  const RowMatrixF w = dequantize(v);
  const RowMatrixF xm = detail::to_matrix(x, n, v.cols);
  const RowMatrixF ym = xm * w.transpose();
  for (index_t i = 0; i < n * v.rows; ++i) y[i] = from_float<Out>(ym.data()[i]);
}

//! y = Ŵ_p·x for one activation row (GEMV).
template <class Layout, class Scale, class In, class Out>
void gemv(const WeightView<Layout, Scale>& v, const In* x, Out* y) {
  gemm(v, x, 1, y);
}

//! Per-request precision: row r of x is multiplied with Ŵ_{bits[r]}; each bits[r] must be in range.
template <class Layout, class Scale, class In, class Out>
void gemm(const MultiPrecisionView<Layout, Scale>& mv, const int* bits, const In* x, index_t n, Out* y) {
  for (index_t r = 0; r < n; ++r)
    ANYBCQ_REQUIRE(mv.has(bits[r]), "gemm: row ", r, " asks for precision ", bits[r],
                   ", outside the weight's range ", mv.p_min(), "..", mv.p_max());
  for (int p = mv.p_min(); p <= mv.p_max(); ++p) {
    bool used = false;
    for (index_t r = 0; r < n && !used; ++r) used = bits[r] == p;
    if (!used) continue;
    const RowMatrixF w = dequantize(mv.at(p));
    // Row at a time, through the same product as gemv(), so each row equals its single-precision call.
    for (index_t r = 0; r < n; ++r) {
      if (bits[r] != p) continue;
      const RowMatrixF xr = detail::to_matrix(x + r * mv.cols, 1, mv.cols);
      const RowMatrixF yr = xr * w.transpose();
      for (index_t m = 0; m < mv.rows; ++m) y[r * mv.rows + m] = from_float<Out>(yr(0, m));
    }
  }
}

//! Float64 reference y = x·Ŵ_pᵀ (dequantized weights and products in double), for accuracy metrics.
template <class Layout, class Scale, class In>
RowMatrixD gemm_f64(const WeightView<Layout, Scale>& v, const In* x, index_t n) {
  RowMatrixD w(v.rows, v.cols);
  const index_t G = v.groups();
  for (index_t m = 0; m < v.rows; ++m)
    for (index_t grp = 0; grp < G; ++grp)
      for (index_t k = grp * v.group; k < (grp + 1) * v.group; ++k) {
        double acc = v.beta_at(grp, m);
        for (int i = 0; i < v.bits; ++i)
          acc += double(v.alpha_at(grp, i, m)) * layout::get_code(v.layout, v.planes, i, m, k);
        w(m, k) = acc;
      }
  RowMatrixD xm(n, v.cols);
  for (index_t i = 0; i < n * v.cols; ++i) xm.data()[i] = to_float(x[i]);
  return xm * w.transpose();
}

//! Relative Frobenius error of the weights: ‖W − Ŵ_p‖ / ‖W‖.
template <class Layout, class Scale, class T>
double weight_error(const WeightView<Layout, Scale>& v, const T* w) {
  std::vector<float> hat(static_cast<std::size_t>(v.rows * v.cols));
  dequantize(v, hat.data());
  return relative_error(hat.data(), w, v.rows * v.cols);
}

//! Relative Frobenius error of outputs on activations x (N×K): ‖x·Ŵ_pᵀ − x·Wᵀ‖ / ‖x·Wᵀ‖, in double.
template <class Layout, class Scale, class T, class In>
double output_error(const WeightView<Layout, Scale>& v, const T* w, const In* x, index_t n) {
  const RowMatrixD yq = gemm_f64(v, x, n);
  RowMatrixD wm(v.rows, v.cols), xm(n, v.cols);
  for (index_t i = 0; i < v.rows * v.cols; ++i) wm.data()[i] = to_float(w[i]);
  for (index_t i = 0; i < n * v.cols; ++i) xm.data()[i] = to_float(x[i]);
  const RowMatrixD y = xm * wm.transpose();
  return relative_error(yq.data(), y.data(), n * v.rows);
}

}  // namespace cpu
ANYBCQ_NAMESPACE_END
