// AnyBCQ — weights for the CPU lookup-table kernels: layout::RowTiled planes plus a copy of the
// per-precision scales re-tiled to match them.
//
// In the canonical ScaleLayout, α^p is [G][p][M] and β^p is [G][M]: the 16 rows of one tile have their
// scales in G·(p + 1) pieces of 32 bytes, M rows apart. A GEMV streaming tile after tile then reads the
// scales as G·(p + 1) interleaved streams next to its p plane streams, which costs memory bandwidth
// (measured: with group = K, i.e. one scale set per row, the same planes streamed 1.5–2.4× faster).
// LutScales keeps, for each precision p, α^p as [tile][G][p][16] and β^p as [tile][G][16] (rows past M
// are zeros), so a call at precision p reads its scales as two sequential streams, tile by tile.
#pragma once
#include <utility>
#include <vector>

#include "anybcq/core/config.hpp"
#include "anybcq/core/memory.hpp"
#include "anybcq/core/numeric.hpp"
#include "anybcq/core/weights.hpp"
#include "anybcq/layout/row_tiled.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {

//! Where the scales of precision p are and how to step through them: α^p of (tile, group, plane) starts
//! at alpha + tile·a_tile + g·a_group + b·a_plane, β^p of (tile, group) at beta + tile·b_tile + g·b_group,
//! 16 consecutive rows each. from_canonical describes the core ScaleLayout; LutScales the tiled copy.
template <class Scale>
struct LutScaleView {
  const Scale* alpha = nullptr;
  const Scale* beta = nullptr;  //!< nullptr when symmetric
  index_t a_tile = 0, a_group = 0, a_plane = 0, b_tile = 0, b_group = 0;
  bool tiled = false;  //!< true: one tile's α (and β) are contiguous

  //! α^p_b of group g for the 16 rows of `tile`.
  const Scale* alpha_at(index_t tile, index_t g, int b) const { return alpha + tile * a_tile + g * a_group + b * a_plane; }
  //! β^p of group g for the 16 rows of `tile` (beta must be non-null).
  const Scale* beta_at(index_t tile, index_t g) const { return beta + tile * b_tile + g * b_group; }

  static LutScaleView from_canonical(const WeightView<layout::RowTiled, Scale>& v) {
    LutScaleView s;
    s.alpha = v.alpha;
    s.beta = v.beta;
    s.a_tile = layout::RowTiled::kTileRows;
    s.a_group = index_t(v.bits) * v.rows;
    s.a_plane = v.rows;
    s.b_tile = layout::RowTiled::kTileRows;
    s.b_group = v.rows;
    return s;
  }
};

//! The tiled scale copy of a RowTiled weight, for every precision it holds.
template <class Scale>
class LutScales {
 public:
  LutScales() = default;
  explicit LutScales(const MultiPrecisionView<layout::RowTiled, Scale>& mv)
      : p_min_(mv.p_min()), tiles_(mv.layout.tiles()), groups_(mv.cols / mv.group) {
    constexpr index_t R = layout::RowTiled::kTileRows;
    index_t na = 0, nb = 0;
    for (int p = p_min_; p <= mv.p_max(); ++p) {
      a_off_.push_back(na);
      b_off_.push_back(nb);
      na += tiles_ * groups_ * p * R;
      if (mv.beta) nb += tiles_ * groups_ * R;
    }
    alpha_.assign(static_cast<std::size_t>(na), from_float<Scale>(0.0f));
    beta_.assign(static_cast<std::size_t>(nb), from_float<Scale>(0.0f));
    for (int p = p_min_; p <= mv.p_max(); ++p) {
      const auto c = LutScaleView<Scale>::from_canonical(mv.at(p));
      const auto t = view(p);
      Scale* ta = alpha_.data() + a_off_[std::size_t(p - p_min_)];
      Scale* tb = mv.beta ? beta_.data() + b_off_[std::size_t(p - p_min_)] : nullptr;
      for (index_t tile = 0; tile < tiles_; ++tile)
        for (index_t i = 0; i < R && tile * R + i < mv.rows; ++i)
          for (index_t g = 0; g < groups_; ++g) {
            for (int b = 0; b < p; ++b)
              ta[tile * t.a_tile + g * t.a_group + b * t.a_plane + i] = c.alpha[tile * c.a_tile + g * c.a_group + b * c.a_plane + i];
            if (tb) tb[tile * t.b_tile + g * t.b_group + i] = c.beta[tile * c.b_tile + g * c.b_group + i];
          }
    }
  }

  //! Scales of precision p (p_min ≤ p ≤ p_max of the weight it was built from).
  LutScaleView<Scale> view(int p) const {
    constexpr index_t R = layout::RowTiled::kTileRows;
    const auto k = static_cast<std::size_t>(p - p_min_);
    LutScaleView<Scale> s;
    s.alpha = alpha_.data() + a_off_[k];
    s.beta = beta_.empty() ? nullptr : beta_.data() + b_off_[k];
    s.a_tile = groups_ * p * R;
    s.a_group = index_t(p) * R;
    s.a_plane = R;
    s.b_tile = groups_ * R;
    s.b_group = R;
    s.tiled = true;
    return s;
  }
  //! Bytes held (α and β of every precision).
  index_t storage_bytes() const { return index_t((alpha_.size() + beta_.size()) * sizeof(Scale)); }

 private:
  int p_min_ = 0;
  index_t tiles_ = 0, groups_ = 0;
  std::vector<index_t> a_off_, b_off_;
  bulk_vector<Scale> alpha_, beta_;
};

//! RowTiled weights and their tiled scale copy: what the CPU lookup-table kernels read fastest.
//! Built from `MultiPrecisionWeights<layout::RowTiled, Scale>` (e.g. `weights.convert<layout::RowTiled>()`);
//! immutable afterwards, so that the two scale copies cannot disagree. The scale copy adds the size of
//! the scales (≈ 15% of the planes at g = 128) to the memory held.
template <class Scale>
class LutWeights {
 public:
  using Weights = MultiPrecisionWeights<layout::RowTiled, Scale>;
  LutWeights() = default;
  LutWeights(Weights w) : w_(std::move(w)), scales_(w_.multi_view()) {}  // NOLINT: implicit by design

  const Weights& weights() const { return w_; }
  MultiPrecisionView<layout::RowTiled, Scale> multi_view() const { return w_.multi_view(); }
  WeightView<layout::RowTiled, Scale> view(int p) const { return w_.view(p); }
  const LutScales<Scale>& scales() const { return scales_; }
  const BcqShape& shape() const { return w_.shape(); }
  index_t rows() const { return w_.rows(); }
  index_t cols() const { return w_.cols(); }
  index_t group() const { return w_.group(); }
  int p_min() const { return w_.p_min(); }
  int p_max() const { return w_.p_max(); }
  void check_bits(int p) const { w_.check_bits(p); }
  //! Bytes a call at precision p reads (p planes, α^p, β^p).
  index_t bytes(int p) const { return w_.bytes(p); }
  //! Bytes held: planes, canonical scales and the tiled scale copy.
  index_t storage_bytes() const { return w_.storage_bytes() + scales_.storage_bytes(); }

 private:
  Weights w_;
  LutScales<Scale> scales_;
};

template <class Scale>
LutWeights(MultiPrecisionWeights<layout::RowTiled, Scale>) -> LutWeights<Scale>;

}  // namespace cpu
ANYBCQ_NAMESPACE_END
