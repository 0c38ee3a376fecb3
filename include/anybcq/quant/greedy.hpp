// AnyBCQ — greedy refinement policy: sign of the residual, mean absolute residual as scale.
#pragma once
#include "anybcq/quant/group_problem.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace quant {

//! Greedy only: each free plane = sign(residual), α = mean|residual|, no further refinement.
struct GreedyRefiner {
  static constexpr const char* name() { return "greedy"; }
  //! Initialise the free planes of `g`; returns the squared error Σ (w − ŵ)².
  double solve(GroupProblem& g) const {
    detail::greedy_init(g);
    detail::GroupStats s;
    return detail::evaluate(g, s);
  }
};

}  // namespace quant
ANYBCQ_NAMESPACE_END
