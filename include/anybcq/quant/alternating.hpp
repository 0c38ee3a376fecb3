// AnyBCQ — alternating refinement policy: least-squares scales ⇄ optimal codes.
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "anybcq/quant/group_problem.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace quant {

//! Greedy start, then up to `rounds` rounds of (least-squares scales for the codes, optimal free codes
//! for the scales). The error never increases: a round that does not improve restores the best state
//! seen and stops (alternating minimisation has converged), and an ill-conditioned solve keeps the
//! previous scales.
struct AlternatingRefiner {
  int rounds = 20;  //!< maximum rounds per precision level

  static constexpr const char* name() { return "alternating"; }

  //! Refine the free planes of `g` and all its scales; returns the squared error Σ (w − ŵ)².
  //! If `trace` is non-null, trace[r] receives the error after round r (r < rounds; entries past an
  //! early stop repeat the final error).
  double solve(GroupProblem& g, double* trace = nullptr) const {
    detail::greedy_init(g);
    const double e = refine(g, trace);
    if (!range_start || g.frozen != 0) return e;
    // Second start from a uniform grid over the group's range; keep whichever ends lower.
    double alpha[kMaxBits];
    const double beta = g.beta;
    std::copy(g.alpha, g.alpha + g.bits, alpha);
    std::vector<std::uint8_t>& keep = detail::scratch_codes(g.n);
    std::memcpy(keep.data(), g.pattern, static_cast<std::size_t>(g.n));
    double trace2[64];
    detail::range_init(g);
    const double e2 = refine(g, trace ? trace2 : nullptr);
    if (e2 < e) {
      if (trace)
        for (int r = 0; r < rounds; ++r) trace[r] = std::min(trace[r], trace2[r]);
      return e2;
    }
    std::copy(alpha, alpha + g.bits, g.alpha);
    g.beta = beta;
    std::memcpy(g.pattern, keep.data(), static_cast<std::size_t>(g.n));
    return e;
  }

 private:
  double refine(GroupProblem& g, double* trace) const {
    detail::GroupStats s;
    double best = detail::evaluate(g, s);
    double best_alpha[kMaxBits];
    double best_beta = g.beta;
    std::copy(g.alpha, g.alpha + g.bits, best_alpha);
    std::memcpy(g.best, g.pattern, static_cast<std::size_t>(g.n));
    int r = 0;
    for (; r < rounds; ++r) {
      detail::solve_scales(g, s, best);
      const double e = detail::search_codes(g, s);
      if (!(e < best)) {  // converged (or a numerical wobble): keep the best state
        std::copy(best_alpha, best_alpha + g.bits, g.alpha);
        g.beta = best_beta;
        std::memcpy(g.pattern, g.best, static_cast<std::size_t>(g.n));
        break;
      }
      best = e;
      std::copy(g.alpha, g.alpha + g.bits, best_alpha);
      best_beta = g.beta;
      std::memcpy(g.best, g.pattern, static_cast<std::size_t>(g.n));
      if (trace) trace[r] = best;
    }
    if (trace)
      for (; r < rounds; ++r) trace[r] = best;
    return best;
  }

 public:
  bool range_start = true;
};

}  // namespace quant
ANYBCQ_NAMESPACE_END
