// AnyBCQ — the multi-precision weight object and its non-owning views.
#pragma once
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/memory.hpp"
#include "anybcq/core/numeric.hpp"
#include "anybcq/layout/concepts.hpp"
#include "anybcq/layout/pack.hpp"
#include "anybcq/layout/plane_major.hpp"
#include "anybcq/layout/scales.hpp"

ANYBCQ_NAMESPACE_BEGIN

//! Shape and precision range of a multi-precision BCQ matrix.
struct BcqShape {
  index_t rows = 0;   //!< M, output features
  index_t cols = 0;   //!< K, input features
  index_t group = 0;  //!< g, input features sharing one scale set (divides K)
  int p_min = 2;
  int p_max = 4;
  bool symmetric = false;  //!< β ≡ 0 when true

  index_t groups() const { return group > 0 ? cols / group : 0; }
};

//! Throws anybcq::Error unless `s` is a shape AnyBCQ can store.
inline void validate(const BcqShape& s) {
  ANYBCQ_REQUIRE(s.rows > 0 && s.cols > 0, "matrix is empty (", s.rows, " x ", s.cols,
                 "); rows and columns must be positive");
  ANYBCQ_REQUIRE(s.cols % kWordBits == 0, "K = ", s.cols, " is not a multiple of the layout word width ",
                 kWordBits);
  ANYBCQ_REQUIRE(s.group > 0 && s.cols % s.group == 0, "group size ", s.group,
                 " does not divide K = ", s.cols, "; the group size must be a positive divisor of K");
  ANYBCQ_REQUIRE(s.p_min >= 1 && s.p_min <= kMaxBits, "p_min = ", s.p_min, " is outside 1..", kMaxBits);
  ANYBCQ_REQUIRE(s.p_max >= 1 && s.p_max <= kMaxBits, "p_max = ", s.p_max, " is outside 1..", kMaxBits);
  ANYBCQ_REQUIRE(s.p_min <= s.p_max, "p_min = ", s.p_min, " exceeds p_max = ", s.p_max);
}

//! Non-owning, trivially copyable view of one precision p: planes 0..p−1, α^p as [G][p][M],
//! β^p as [G][M] (nullptr when symmetric). Usable from device code when the pointers are.
template <class Layout, class Scale>
struct WeightView {
  const std::uint32_t* planes = nullptr;
  const Scale* alpha = nullptr;
  const Scale* beta = nullptr;
  Layout layout{};
  index_t rows = 0;
  index_t cols = 0;
  index_t group = 0;
  int bits = 0;  //!< the precision p of this view

  ANYBCQ_HOST_DEVICE index_t groups() const { return cols / group; }
  ANYBCQ_HOST_DEVICE float alpha_at(index_t grp, int i, index_t m) const {
    return to_float(alpha[(grp * bits + i) * rows + m]);
  }
  ANYBCQ_HOST_DEVICE float beta_at(index_t grp, index_t m) const {
    return beta ? to_float(beta[grp * rows + m]) : 0.0f;
  }
  //! Dequantized weight Ŵ_p[m][k].
  ANYBCQ_HOST_DEVICE float weight(index_t m, index_t k) const {
    const index_t grp = k / group;
    float w = beta_at(grp, m);
    for (int i = 0; i < bits; ++i) w += alpha_at(grp, i, m) * float(layout::get_code(layout, planes, i, m, k));
    return w;
  }
};
static_assert(std::is_trivially_copyable_v<WeightView<layout::PlaneMajor, half_t>>);

//! Non-owning view of every precision (for per-request precision inside one call).
template <class Layout, class Scale>
struct MultiPrecisionView {
  const std::uint32_t* planes = nullptr;
  const Scale* alpha = nullptr;  //!< all levels, see layout::ScaleLayout
  const Scale* beta = nullptr;   //!< all levels; nullptr when symmetric
  Layout layout{};
  layout::ScaleLayout scales{};
  index_t rows = 0;
  index_t cols = 0;
  index_t group = 0;
  //! An upper bound on |α| over every level, or +∞ (NaN) when not known. cuda::DeviceWeights sets it at
  //! upload; cuda::Gemm's register-dequantizing kernels rely on it for fp16 activations (docs/perf/gpu.md).
  float alpha_max = std::numeric_limits<float>::infinity();

  ANYBCQ_HOST_DEVICE int p_min() const { return scales.p_min; }
  ANYBCQ_HOST_DEVICE int p_max() const { return scales.p_max; }
  //! The single-precision view at p (p_min ≤ p ≤ p_max; not checked here, see has()).
  ANYBCQ_HOST_DEVICE WeightView<Layout, Scale> at(int p) const {
    WeightView<Layout, Scale> v;
    v.planes = planes;
    v.alpha = alpha + scales.alpha_base(p);
    v.beta = beta ? beta + scales.beta_base(p) : nullptr;
    v.layout = layout;
    v.rows = rows;
    v.cols = cols;
    v.group = group;
    v.bits = p;
    return v;
  }
  ANYBCQ_HOST_DEVICE bool has(int p) const { return p >= scales.p_min && p <= scales.p_max; }
};

//! Owns one set of bit-planes (P = p_max) and the scale sets of every precision p_min..p_max.
//! Layout: a bit-plane layout policy (layout/…); Scale: float, half_t (default) or bfloat16_t.
template <class Layout = layout::PlaneMajor, class Scale = half_t>
class MultiPrecisionWeights {
  static_assert(layout::is_layout_v<Layout>, "Layout must be a bit-plane layout policy");
  static_assert(is_storage_float_v<Scale>, "Scale must be float, half_t or bfloat16_t");

 public:
  using layout_type = Layout;
  using scale_type = Scale;

  MultiPrecisionWeights() = default;
  //! Zero-filled storage for `shape` (validated).
  explicit MultiPrecisionWeights(const BcqShape& shape) : shape_(shape) {
    validate(shape);
    layout_ = layout::make<Layout>(shape.rows, shape.cols, shape.p_max);
    scales_ = layout::ScaleLayout{shape.rows, shape.groups(), shape.p_min, shape.p_max};
    planes_.assign(static_cast<std::size_t>(layout_.size_words()), 0u);
    alpha_.assign(static_cast<std::size_t>(scales_.alpha_size()), from_float<Scale>(0.0f));
    if (!shape.symmetric) beta_.assign(static_cast<std::size_t>(scales_.beta_size()), from_float<Scale>(0.0f));
  }

  const BcqShape& shape() const { return shape_; }
  index_t rows() const { return shape_.rows; }
  index_t cols() const { return shape_.cols; }
  index_t group() const { return shape_.group; }
  int p_min() const { return shape_.p_min; }
  int p_max() const { return shape_.p_max; }
  bool symmetric() const { return shape_.symmetric; }
  const Layout& layout() const { return layout_; }
  const layout::ScaleLayout& scale_layout() const { return scales_; }

  //! Storage (bulk_vector: std::vector on BulkAllocator, huge pages where the system offers them).
  bulk_vector<std::uint32_t>& planes() { return planes_; }
  const bulk_vector<std::uint32_t>& planes() const { return planes_; }
  bulk_vector<Scale>& alpha() { return alpha_; }
  const bulk_vector<Scale>& alpha() const { return alpha_; }
  bulk_vector<Scale>& beta() { return beta_; }
  const bulk_vector<Scale>& beta() const { return beta_; }

  void check_bits(int p) const {
    ANYBCQ_REQUIRE(p >= shape_.p_min && p <= shape_.p_max, "precision p = ", p,
                   " is outside the range this weight was built with (", shape_.p_min, "..", shape_.p_max, ")");
  }

  //! View at precision p (throws if p is outside p_min..p_max).
  WeightView<Layout, Scale> view(int p) const {
    check_bits(p);
    return multi_view().at(p);
  }
  MultiPrecisionView<Layout, Scale> multi_view() const {
    MultiPrecisionView<Layout, Scale> v;
    v.planes = planes_.data();
    v.alpha = alpha_.data();
    v.beta = shape_.symmetric ? nullptr : beta_.data();
    v.layout = layout_;
    v.scales = scales_;
    v.rows = shape_.rows;
    v.cols = shape_.cols;
    v.group = shape_.group;
    return v;
  }

  //! Bytes a call at precision p must read: p planes plus α^p (and β^p).
  index_t bytes(int p) const {
    check_bits(p);
    const index_t scale_entries = shape_.rows * shape_.groups() * (p + (shape_.symmetric ? 0 : 1));
    return layout_.words_read(p) * 4 + scale_entries * index_t(sizeof(Scale));
  }
  //! Bytes stored for all precisions (planes + every scale set).
  index_t storage_bytes() const {
    return index_t(planes_.size()) * 4 + index_t(alpha_.size() + beta_.size()) * index_t(sizeof(Scale));
  }

  //! The same weights in another bit-plane layout and/or scale type.
  template <class To, class ToScale = Scale>
  MultiPrecisionWeights<To, ToScale> convert() const {
    MultiPrecisionWeights<To, ToScale> out(shape_);
    layout::repack(layout_, planes_.data(), out.layout(), out.planes().data());
    for (std::size_t i = 0; i < alpha_.size(); ++i) out.alpha()[i] = from_float<ToScale>(to_float(alpha_[i]));
    for (std::size_t i = 0; i < beta_.size(); ++i) out.beta()[i] = from_float<ToScale>(to_float(beta_[i]));
    return out;
  }

 private:
  BcqShape shape_{};
  Layout layout_{};
  layout::ScaleLayout scales_{};
  bulk_vector<std::uint32_t> planes_;
  bulk_vector<Scale> alpha_;
  bulk_vector<Scale> beta_;
};

ANYBCQ_NAMESPACE_END
