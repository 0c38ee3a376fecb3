// AnyBCQ — multi-precision quantization by progressive expansion.
#pragma once
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "anybcq/core/error.hpp"
#include "anybcq/core/numeric.hpp"
#include "anybcq/core/parallel.hpp"
#include "anybcq/core/weights.hpp"
#include "anybcq/quant/alternating.hpp"
#include "anybcq/quant/greedy.hpp"
#include "anybcq/quant/group_problem.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace quant {

//! How the offset β^p of levels p > p_min is found in asymmetric mode.
enum class OffsetPolicy {
  kFixed,  //!< β^p = β^{p−1}; only the α^p are re-solved (the published method)
  kJoint,  //!< β^p re-solved jointly with α^p at every level
  kBest,   //!< per group, run both chains and keep the one with the smaller summed error over p > p_min
};

//! Knobs of quantize(); the defaults are the ones documented in docs/algorithm.md.
struct QuantizeOptions {
  int p_min = 2;          //!< lowest precision, quantized from scratch
  int p_max = 4;          //!< highest precision; planes p_min+1..p_max are added one at a time
  index_t group = 128;    //!< input features per scale group (a divisor of K; K means per row)
  bool symmetric = false; //!< β ≡ 0
  //! Asymmetric mode: how β^p is found at levels p > p_min (see OffsetPolicy).
  OffsetPolicy offset = OffsetPolicy::kBest;
  int threads = 0;        //!< worker threads; 0 = all hardware threads
};

//! Progress callback: rows finished so far and in total. Called from worker threads, serialised, with
//! increasing counts; the last call reports every row.
using ProgressFn = std::function<void(index_t rows_done, index_t rows_total)>;

namespace detail {
struct ChainResult {
  double alpha[kMaxBits][kMaxBits];
  double beta[kMaxBits];
  double total;
};

template <class T>
void check_finite(const T* w, index_t rows, index_t cols) {
  for (index_t i = 0; i < rows * cols; ++i) {
    const float v = to_float(w[i]);
    ANYBCQ_REQUIRE(std::isfinite(v), "weight at row ", i / cols, ", column ", i % cols, " is ", v,
                   "; weights must be finite (no NaN or Inf)");
  }
}
}  // namespace detail

//! Quantize a row-major M×K matrix (float, half_t or bfloat16_t) into AnyBCQ multi-precision form:
//! precision p_min from scratch with `refiner`, then one plane at a time with the earlier planes frozen
//! and the level's scales re-solved. Every precision keeps its own α^p (and β^p); the planes are shared.
//! Throws anybcq::Error for empty matrices, K not divisible by the group or the word width, p out of
//! 1..8, p_min > p_max, and non-finite weights.
template <class Layout = layout::PlaneMajor, class Scale = half_t, class Refiner = AlternatingRefiner, class T>
MultiPrecisionWeights<Layout, Scale> quantize(const T* w, index_t rows, index_t cols, const QuantizeOptions& opt,
                                              const Refiner& refiner = {}, const ProgressFn& progress = {}) {
  static_assert(is_storage_float_v<T>, "quantize: weights must be float, half_t or bfloat16_t");
  BcqShape shape;
  shape.rows = rows;
  shape.cols = cols;
  shape.group = opt.group;
  shape.p_min = opt.p_min;
  shape.p_max = opt.p_max;
  shape.symmetric = opt.symmetric;
  validate(shape);
  ANYBCQ_REQUIRE(w != nullptr, "quantize: weight pointer is null");
  detail::check_finite(w, rows, cols);

  MultiPrecisionWeights<Layout, Scale> out(shape);
  const Layout lay = out.layout();
  const layout::ScaleLayout sl = out.scale_layout();
  std::uint32_t* planes = out.planes().data();
  Scale* alpha = out.alpha().data();
  Scale* beta = out.beta().data();
  const index_t g = opt.group, G = cols / g, KW = cols / kWordBits;

  std::atomic<index_t> done{0};
  std::mutex progress_mu;
  index_t reported = 0;  // highest count passed to progress (guarded by progress_mu)
  const index_t report_every = std::max<index_t>(1, rows / 200);

  ::anybcq::detail::parallel_for(rows, opt.threads, [&](index_t begin, index_t end, int) {
    std::vector<float> row(static_cast<std::size_t>(cols)), scratch(static_cast<std::size_t>(g));
    std::vector<std::uint8_t> pattern(static_cast<std::size_t>(cols)), best(static_cast<std::size_t>(g)),
        alt(static_cast<std::size_t>(g));
    detail::ChainResult res_a, res_b;
    for (index_t m = begin; m < end; ++m) {
      for (index_t k = 0; k < cols; ++k) row[static_cast<std::size_t>(k)] = to_float(w[m * cols + k]);
      for (index_t grp = 0; grp < G; ++grp) {
        std::uint8_t* pat = pattern.data() + grp * g;
        GroupProblem base;
        base.w = row.data() + grp * g;
        base.n = g;
        base.pattern = pat;
        base.best = best.data();
        base.scratch = scratch.data();
        base.symmetric = opt.symmetric;
        base.bits = opt.p_min;
        base.frozen = 0;
        base.solve_offset = true;
        refiner.solve(base);
        // Levels p_min+1..p_max, one plane at a time, earlier planes frozen; β re-solved or kept.
        auto chain = [&](bool resolve, std::uint8_t* codes, detail::ChainResult& res) {
          GroupProblem prob = base;
          prob.pattern = codes;
          res.total = 0;
          std::copy(base.alpha, base.alpha + opt.p_min, res.alpha[opt.p_min - 1]);
          res.beta[opt.p_min - 1] = base.beta;
          for (int p = opt.p_min + 1; p <= opt.p_max; ++p) {
            prob.bits = p;
            prob.frozen = p - 1;
            prob.solve_offset = resolve;
            res.total += refiner.solve(prob);
            std::copy(prob.alpha, prob.alpha + p, res.alpha[p - 1]);
            res.beta[p - 1] = prob.beta;
          }
        };
        detail::ChainResult* pick = &res_a;
        if (opt.offset == OffsetPolicy::kBest && !opt.symmetric && opt.p_max > opt.p_min) {
          std::copy(pat, pat + g, alt.data());  // both chains start from the same base level
          chain(false, pat, res_a);
          chain(true, alt.data(), res_b);
          if (res_b.total < res_a.total) {
            std::copy(alt.data(), alt.data() + g, pat);
            pick = &res_b;
          }
        } else {
          chain(opt.offset != OffsetPolicy::kFixed, pat, res_a);
        }
        for (int p = opt.p_min; p <= opt.p_max; ++p) {
          for (int i = 0; i < p; ++i)
            alpha[sl.alpha_offset(p, grp, i, m)] = from_float<Scale>(static_cast<float>(pick->alpha[p - 1][i]));
          if (!opt.symmetric) beta[sl.beta_offset(p, grp, m)] = from_float<Scale>(static_cast<float>(pick->beta[p - 1]));
        }
      }
      for (int b = 0; b < opt.p_max; ++b)
        for (index_t kw = 0; kw < KW; ++kw) {
          std::uint32_t word = 0;
          const std::uint8_t* pt = pattern.data() + kw * kWordBits;
          for (int j = 0; j < kWordBits; ++j) word |= std::uint32_t((pt[j] >> b) & 1u) << j;
          planes[lay.word_offset(b, kw, m)] = word;
        }
      const index_t d = ++done;
      if (progress && (d % report_every == 0 || d == rows)) {
        // Counts are taken before the lock, so a later count may arrive first: report increases only.
        std::lock_guard<std::mutex> lock(progress_mu);
        if (d > reported) {
          reported = d;
          progress(d, rows);
        }
      }
    }
  });
  return out;
}

}  // namespace quant
ANYBCQ_NAMESPACE_END
