// AnyBCQ — alternating refinement policy: least-squares scales ⇄ optimal codes.
#pragma once
#include <algorithm>
#include <cstring>

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
};

}  // namespace quant
ANYBCQ_NAMESPACE_END
