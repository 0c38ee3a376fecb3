// AnyBCQ — where the per-precision scales α^p and offsets β^p live.
#pragma once
#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace layout {

//! Scale tables for every precision p in [p_min, p_max], concatenated in increasing p.
//! Precision p owns α^p as [G][p][M] (G = K/g groups) and β^p as [G][M]:
//! alpha_offset(p, grp, i, m) = A(p) + (grp·p + i)·M + m, with A(p) = M·G·Σ_{q=p_min}^{p−1} q;
//! beta_offset(p, grp, m)     = ((p − p_min)·G + grp)·M + m.
struct ScaleLayout {
  index_t rows = 0;    //!< M
  index_t groups = 0;  //!< G = K / group_size
  int p_min = 0;
  int p_max = 0;

  ANYBCQ_HOST_DEVICE constexpr index_t alpha_base(int p) const {
    return rows * groups * (index_t(p) * (p - 1) / 2 - index_t(p_min) * (p_min - 1) / 2);
  }
  ANYBCQ_HOST_DEVICE constexpr index_t alpha_offset(int p, index_t grp, int i, index_t m) const {
    return alpha_base(p) + (grp * p + i) * rows + m;
  }
  ANYBCQ_HOST_DEVICE constexpr index_t alpha_size() const { return alpha_base(p_max + 1); }
  ANYBCQ_HOST_DEVICE constexpr index_t beta_base(int p) const { return (p - p_min) * groups * rows; }
  ANYBCQ_HOST_DEVICE constexpr index_t beta_offset(int p, index_t grp, index_t m) const {
    return beta_base(p) + grp * rows + m;
  }
  ANYBCQ_HOST_DEVICE constexpr index_t beta_size() const { return beta_base(p_max + 1); }
};

}  // namespace layout
ANYBCQ_NAMESPACE_END
