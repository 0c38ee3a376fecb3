// AnyBCQ — one group's BCQ problem and the exact operations on it (statistics, scale solve, code search).
// Codes are kept as one byte per weight, its "pattern": bit i set ⇔ plane i is +1. Everything the
// least-squares solve needs is a function of per-pattern counts and weight sums, so a round costs one
// pass over the weights however many planes there are.
#pragma once
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace quant {

//! One group of n weights at precision `bits`: planes [0, frozen) are fixed, the rest are free.
//! Reconstruction: ŵ_j = β + Σ_{i<bits} α_i·s_i(pattern_j), s_i = +1 if bit i of the pattern is set else −1.
struct GroupProblem {
  const float* w = nullptr;           //!< n weights
  index_t n = 0;                      //!< group size
  std::uint8_t* pattern = nullptr;    //!< n codes, one byte per weight
  std::uint8_t* best = nullptr;       //!< n bytes of scratch (best codes seen)
  float* scratch = nullptr;           //!< n floats of scratch (residuals)
  int bits = 0;                       //!< planes in use (≤ 8)
  int frozen = 0;                     //!< planes [0, frozen) keep their codes
  bool symmetric = false;             //!< β ≡ 0
  bool solve_offset = true;           //!< asymmetric only: re-solve β with the α; else keep `beta`
  double alpha[kMaxBits] = {};        //!< α_0..α_{bits−1}
  double beta = 0;                    //!< β
};

namespace detail {

//! Per-pattern sufficient statistics of a group: count and weight sum per code pattern.
struct GroupStats {
  double count[256];
  double sum[256];
  double sum_sq = 0;  //!< Σ w², independent of codes
  double sum_w = 0;   //!< Σ w
};

inline double sign_of(unsigned pattern, int plane) { return ((pattern >> plane) & 1u) ? 1.0 : -1.0; }

//! Value of every pattern's level: L[pat] = β + Σ α_i s_i(pat), pat < 2^bits.
inline void level_values(const GroupProblem& g, double* L) {
  const unsigned levels = 1u << g.bits;
  for (unsigned pat = 0; pat < levels; ++pat) {
    double v = g.beta;
    for (int i = 0; i < g.bits; ++i) v += g.alpha[i] * sign_of(pat, i);
    L[pat] = v;
  }
}

//! Σ (w − ŵ)² from statistics: Σw² − 2 Σ_pat L·sum + Σ_pat count·L².
inline double error_from_stats(const GroupProblem& g, const GroupStats& s) {
  double L[256];
  level_values(g, L);
  double e = s.sum_sq;
  for (unsigned pat = 0; pat < (1u << g.bits); ++pat) e += L[pat] * (s.count[pat] * L[pat] - 2.0 * s.sum[pat]);
  return std::max(e, 0.0);
}

template <int N>
bool solve_fixed(const double* A, const double* b, double* x) {
  Eigen::Matrix<double, N, N> a;
  Eigen::Matrix<double, N, 1> r;
  for (int i = 0; i < N; ++i) {
    r(i) = b[i];
    for (int k = 0; k < N; ++k) a(i, k) = A[i * N + k];
  }
  Eigen::LLT<Eigen::Matrix<double, N, N>> llt(a);
  if (llt.info() != Eigen::Success) return false;
  // Reject near-singular systems: the smallest pivot must be meaningful relative to the largest.
  const auto d = llt.matrixLLT().diagonal().cwiseAbs();
  if (!(d.minCoeff() > 1e-7 * d.maxCoeff())) return false;
  const Eigen::Matrix<double, N, 1> sol = llt.solve(r);
  if (!sol.allFinite()) return false;
  for (int i = 0; i < N; ++i) x[i] = sol(i);
  return true;
}

//! Solve the n×n SPD system A·x = b (row-major A): fixed-size Cholesky, minimum-norm least squares
//! (complete orthogonal decomposition) when the system is singular. Returns false if neither is finite.
inline bool solve_small(int n, const double* A, const double* b, double* x) {
  bool ok = false;
  switch (n) {  // bounded dispatch: at most 8 scales + 1 offset
    case 1: ok = solve_fixed<1>(A, b, x); break;
    case 2: ok = solve_fixed<2>(A, b, x); break;
    case 3: ok = solve_fixed<3>(A, b, x); break;
    case 4: ok = solve_fixed<4>(A, b, x); break;
    case 5: ok = solve_fixed<5>(A, b, x); break;
    case 6: ok = solve_fixed<6>(A, b, x); break;
    case 7: ok = solve_fixed<7>(A, b, x); break;
    case 8: ok = solve_fixed<8>(A, b, x); break;
    case 9: ok = solve_fixed<9>(A, b, x); break;
    default: return false;
  }
  if (ok) return true;
  Eigen::MatrixXd a(n, n);
  Eigen::VectorXd r(n);
  for (int i = 0; i < n; ++i) {
    r(i) = b[i];
    for (int k = 0; k < n; ++k) a(i, k) = A[i * n + k];
  }
  Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(a);
  cod.setThreshold(1e-10);
  const Eigen::VectorXd sol = cod.solve(r);
  if (!sol.allFinite()) return false;
  for (int i = 0; i < n; ++i) x[i] = sol(i);
  return true;
}

//! Least-squares scales for the current codes (α jointly with β when asymmetric and solve_offset).
//! Writes the solution into g only if it does not increase the error; returns the resulting error.
inline double solve_scales(GroupProblem& g, const GroupStats& s, double current_error) {
  const int p = g.bits;
  const bool with_beta = !g.symmetric && g.solve_offset;
  const double beta_fixed = g.symmetric ? 0.0 : g.beta;
  const int n = p + (with_beta ? 1 : 0);
  const unsigned levels = 1u << p;
  double A[81] = {}, b[9] = {}, x[9] = {};
  for (unsigned pat = 0; pat < levels; ++pat) {
    const double c = s.count[pat];
    if (c == 0) continue;
    const double sw = with_beta ? s.sum[pat] : s.sum[pat] - beta_fixed * c;
    double sg[9];
    for (int i = 0; i < p; ++i) sg[i] = ((pat >> i) & 1u) ? 1.0 : -1.0;
    if (with_beta) sg[p] = 1.0;
    for (int i = 0; i < n; ++i) {
      const double ci = c * sg[i];
      b[i] += sg[i] * sw;
      for (int k = i; k < n; ++k) A[i * n + k] += ci * sg[k];
    }
  }
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < i; ++k) A[i * n + k] = A[k * n + i];
  if (!solve_small(n, A, b, x)) return current_error;
  GroupProblem trial = g;
  for (int i = 0; i < p; ++i) trial.alpha[i] = x[i];
  trial.beta = with_beta ? x[p] : beta_fixed;
  const double e = error_from_stats(trial, s);
  if (!(e <= current_error)) return current_error;
  std::copy(trial.alpha, trial.alpha + p, g.alpha);
  g.beta = trial.beta;
  return e;
}

//! Per-pattern accumulators split four ways so consecutive weights never wait on each other's updates.
//! Float partial sums are exact enough here: a group's statistics feed a (p+1)×(p+1) solve.
struct StatsAccumulator {
  float count[4][256];
  float sum[4][256];
  float err[4] = {0, 0, 0, 0};
  explicit StatsAccumulator(unsigned levels) {
    for (int l = 0; l < 4; ++l) {
      std::fill(count[l], count[l] + levels, 0.0f);
      std::fill(sum[l], sum[l] + levels, 0.0f);
    }
  }
  ANYBCQ_FORCEINLINE void add(int lane, unsigned pat, float w, float d) {
    count[lane][pat] += 1.0f;
    sum[lane][pat] += w;
    err[lane] += d * d;
  }
  double finish(GroupStats& s, unsigned levels) const {
    for (unsigned p = 0; p < levels; ++p) {
      s.count[p] = (double(count[0][p]) + count[1][p]) + (double(count[2][p]) + count[3][p]);
      s.sum[p] = (double(sum[0][p]) + sum[1][p]) + (double(sum[2][p]) + sum[3][p]);
    }
    return (double(err[0]) + err[1]) + (double(err[2]) + err[3]);
  }
};

//! Recompute statistics for the current codes and return the squared error.
inline double evaluate(const GroupProblem& g, GroupStats& s) {
  double Ld[256];
  level_values(g, Ld);
  const unsigned levels = 1u << g.bits, mask = levels - 1u;
  float L[256];
  for (unsigned i = 0; i < levels; ++i) L[i] = static_cast<float>(Ld[i]);
  StatsAccumulator acc(levels);
  double sq = 0, sw = 0;
  for (index_t j = 0; j < g.n; ++j) {
    const unsigned pat = g.pattern[j] & mask;
    const float w = g.w[j];
    sq += double(w) * w;
    sw += w;
    acc.add(int(j & 3), pat, w, w - L[pat]);
  }
  s.sum_sq = sq;
  s.sum_w = sw;
  return acc.finish(s, levels);
}

//! Calls one(j, lane) for j in [0, n), four consecutive j on lanes 0..3 (independent accumulators).
template <class F>
ANYBCQ_FORCEINLINE void for_each_lane(index_t n, F&& one) {
  const index_t n4 = n & ~index_t(3);
  for (index_t j = 0; j < n4; j += 4) {
    one(j, 0);
    one(j + 1, 1);
    one(j + 2, 2);
    one(j + 3, 3);
  }
  for (index_t j = n4; j < n; ++j) one(j, 0);
}

//! Optimal free codes for the current scales (frozen planes kept); refreshes statistics and returns
//! the squared error (float partial sums).
inline double search_codes(GroupProblem& g, GroupStats& s) {
  double Ld[256];
  level_values(g, Ld);
  const int p = g.bits, f = g.frozen, u = p - f;
  const unsigned levels = 1u << p;
  float L[256];
  for (unsigned i = 0; i < levels; ++i) L[i] = static_cast<float>(Ld[i]);
  StatsAccumulator acc(levels);
  if (f == 0) {
    // All planes free: nearest of the 2^p levels (sorted midpoints; a branch-free count for p ≤ 4).
    unsigned order[256];
    for (unsigned i = 0; i < levels; ++i) order[i] = i;
    std::sort(order, order + levels, [&](unsigned a, unsigned c) { return Ld[a] < Ld[c]; });
    float mid[256];
    for (unsigned i = 0; i + 1 < levels; ++i) mid[i] = static_cast<float>(0.5 * (Ld[order[i]] + Ld[order[i + 1]]));
    const unsigned nmid = levels - 1;
    auto one = [&](index_t j, int lane) {
      const float w = g.w[j];
      unsigned idx;
      if (p <= 4) {
        idx = 0;
        for (unsigned i = 0; i < nmid; ++i) idx += unsigned(w > mid[i]);
      } else {
        idx = static_cast<unsigned>(std::upper_bound(mid, mid + nmid, w) - mid);
      }
      const unsigned pat = order[idx];
      acc.add(lane, pat, w, w - L[pat]);
      g.pattern[j] = static_cast<std::uint8_t>(pat);
    };
    for_each_lane(g.n, one);
  } else if (u == 1) {
    // One free plane on top of frozen ones: pick the nearer of the two levels sharing the frozen code.
    const unsigned fmask = (1u << f) - 1u, bit = 1u << f;
    auto one = [&](index_t j, int lane) {
      const float w = g.w[j];
      const unsigned lo = g.pattern[j] & fmask;
      const float d0 = w - L[lo], d1 = w - L[lo | bit];
      const bool up = d1 * d1 < d0 * d0;
      const unsigned pat = lo | (up ? bit : 0u);
      acc.add(lane, pat, w, up ? d1 : d0);
      g.pattern[j] = static_cast<std::uint8_t>(pat);
    };
    for_each_lane(g.n, one);
  } else {
    // Several free planes on top of frozen ones: exhaustive over the 2^u free codes.
    const unsigned fmask = (1u << f) - 1u;
    for (index_t j = 0; j < g.n; ++j) {
      const float w = g.w[j];
      const unsigned lo = g.pattern[j] & fmask;
      unsigned best_pat = lo;
      float best_d = INFINITY;
      for (unsigned hi = 0; hi < (1u << u); ++hi) {
        const unsigned pat = lo | (hi << f);
        const float d = w - L[pat];
        if (d * d < best_d * best_d) {
          best_d = d;
          best_pat = pat;
        }
      }
      acc.add(0, best_pat, w, best_d);
      g.pattern[j] = static_cast<std::uint8_t>(best_pat);
    }
  }
  return acc.finish(s, levels);
}

//! Greedy codes and scales for the free planes: each new plane is sign(residual) (0 ↦ +1) with
//! α = mean |residual|; with no frozen plane, β starts at the group mean (asymmetric mode).
inline void greedy_init(GroupProblem& g) {
  const int p = g.bits, f = g.frozen;
  float* r = g.scratch;
  if (f == 0) {
    double mean = 0;
    if (!g.symmetric) {
      for (index_t j = 0; j < g.n; ++j) mean += g.w[j];
      mean /= double(g.n);
    }
    g.beta = mean;
    const float mf = static_cast<float>(mean);
    for (index_t j = 0; j < g.n; ++j) {
      r[j] = g.w[j] - mf;
      g.pattern[j] = 0;
    }
  } else {
    if (g.symmetric) g.beta = 0;
    // Residual against the frozen planes' levels, looked up per frozen code.
    GroupProblem frozen = g;
    frozen.bits = f;
    double Ld[256];
    level_values(frozen, Ld);
    float L[256];
    for (unsigned i = 0; i < (1u << f); ++i) L[i] = static_cast<float>(Ld[i]);
    const unsigned fmask = (1u << f) - 1u;
    for (index_t j = 0; j < g.n; ++j) {
      const unsigned pat = g.pattern[j] & fmask;
      r[j] = g.w[j] - L[pat];
      g.pattern[j] = static_cast<std::uint8_t>(pat);
    }
  }
  for (int i = f; i < p; ++i) {
    float lanes[4] = {0, 0, 0, 0};
    const index_t n4 = g.n & ~index_t(3);
    for (index_t j = 0; j < n4; j += 4)
      for (int l = 0; l < 4; ++l) lanes[l] += std::fabs(r[j + l]);
    double mean_abs = (double(lanes[0]) + lanes[1]) + (double(lanes[2]) + lanes[3]);
    for (index_t j = n4; j < g.n; ++j) mean_abs += std::fabs(r[j]);
    const double a = mean_abs / double(g.n);
    g.alpha[i] = a;
    const float af = static_cast<float>(a);
    const bool last = (i + 1 == p);
    for (index_t j = 0; j < g.n; ++j) {
      const bool plus = r[j] >= 0.0f;
      g.pattern[j] = static_cast<std::uint8_t>(g.pattern[j] | (unsigned(plus) << i));
      if (!last) r[j] -= plus ? af : -af;
    }
  }
}

//! Codes and scales from a uniform grid of 2^p levels spanning the group's range (β = mid-range or 0),
//! followed by the optimal codes for that grid: a start that does not let one outlier set α_0 alone.
inline void range_init(GroupProblem& g) {
  double lo = g.w[0], hi = g.w[0];
  for (index_t j = 1; j < g.n; ++j) {
    lo = std::min(lo, double(g.w[j]));
    hi = std::max(hi, double(g.w[j]));
  }
  if (g.symmetric) {
    hi = std::max(std::fabs(lo), std::fabs(hi));
    lo = -hi;
  }
  g.beta = g.symmetric ? 0.0 : 0.5 * (lo + hi);
  const double half = 0.5 * (hi - lo), levels = double((1u << g.bits) - 1u);
  for (int i = 0; i < g.bits; ++i) g.alpha[i] = half * double(1u << (g.bits - 1 - i)) / levels;
  GroupStats s;
  search_codes(g, s);
}

//! Per-thread byte buffer of at least n entries (reused across calls).
inline std::vector<std::uint8_t>& scratch_codes(index_t n) {
  thread_local std::vector<std::uint8_t> buf;
  if (buf.size() < static_cast<std::size_t>(n)) buf.resize(static_cast<std::size_t>(n));
  return buf;
}

}  // namespace detail
}  // namespace quant
ANYBCQ_NAMESPACE_END
