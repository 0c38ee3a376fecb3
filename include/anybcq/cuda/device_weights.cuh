// AnyBCQ — device-side owner of multi-precision weights in a GPU layout (MmaTiled by default).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "anybcq/core/weights.hpp"
#include "anybcq/cuda/common.cuh"
#include "anybcq/layout/mma_tiled.hpp"
#include "anybcq/layout/pack.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cuda {
namespace detail {
//! The device layout of an M×K matrix with P planes, and the host repack into it. MmaTiled pads rows
//! and columns and has its own (threaded) repack; any other layout uses layout::make / layout::repack.
template <class L>
L make_device_layout(index_t rows, index_t cols, int planes) {
  if constexpr (std::is_same_v<L, layout::MmaTiled>) return layout::make_mma_tiled(rows, cols, planes);
  else return layout::make<L>(rows, cols, planes);
}
template <class From, class To>
void repack_for_device(const From& from, const std::uint32_t* src, const To& to, std::uint32_t* dst, int threads) {
  if constexpr (std::is_same_v<To, layout::MmaTiled>) layout::repack_to_mma(from, src, to, dst, threads);
  else layout::repack(from, src, to, dst);
}
}  // namespace detail

//! Owns device copies of the bit planes (repacked on the host to DeviceLayout: layout::MmaTiled for
//! cuda::Gemm, layout::GemvTiled for cuda::LutGemv) and of every precision's scales
//! (layout::ScaleLayout, unchanged). Hands out a MultiPrecisionView with device pointers. Move-only.
template <class Scale = half_t, class DeviceLayout = layout::MmaTiled>
class DeviceWeights {
  static_assert(is_storage_float_v<Scale>, "Scale must be float, half_t or bfloat16_t");

 public:
  using view_type = MultiPrecisionView<DeviceLayout, Scale>;

  DeviceWeights() = default;
  //! Repack `w` (any word-granular host layout) on the host and upload it (synchronous).
  template <class Layout>
  explicit DeviceWeights(const MultiPrecisionWeights<Layout, Scale>& w, int threads = 0) {
    const BcqShape& s = w.shape();
    const DeviceLayout tiled = detail::make_device_layout<DeviceLayout>(s.rows, s.cols, s.p_max);
    std::vector<std::uint32_t> words(static_cast<std::size_t>(tiled.size_words()), 0u);
    detail::repack_for_device(w.layout(), w.planes().data(), tiled, words.data(), threads);
    upload(s, words.data(), w.alpha().data(), s.symmetric ? nullptr : w.beta().data());
  }
  //! Upload planes already in DeviceLayout order (size_words() words) and scales in ScaleLayout order.
  DeviceWeights(const BcqShape& s, const std::uint32_t* tiled_words, const Scale* alpha, const Scale* beta) {
    upload(s, tiled_words, alpha, beta);
  }
  DeviceWeights(const DeviceWeights&) = delete;
  DeviceWeights& operator=(const DeviceWeights&) = delete;
  DeviceWeights(DeviceWeights&& o) noexcept { swap(o); }
  DeviceWeights& operator=(DeviceWeights&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~DeviceWeights() { release(); }

  const BcqShape& shape() const { return shape_; }
  //! View of every precision, device pointers.
  view_type view() const {
    view_type v;
    v.planes = planes_;
    v.alpha = alpha_;
    v.beta = beta_;
    v.layout = detail::make_device_layout<DeviceLayout>(shape_.rows, shape_.cols, shape_.p_max);
    v.scales = layout::ScaleLayout{shape_.rows, shape_.groups(), shape_.p_min, shape_.p_max};
    v.rows = shape_.rows;
    v.cols = shape_.cols;
    v.group = shape_.group;
    v.alpha_max = alpha_max_;
    return v;
  }
  //! Bytes a call at precision p must read from device memory: p planes (padded) plus α^p, β^p.
  index_t bytes(int p) const {
    const auto l = detail::make_device_layout<DeviceLayout>(shape_.rows, shape_.cols, shape_.p_max);
    return l.words_read(p) * 4 +
           shape_.rows * shape_.groups() * (p + (shape_.symmetric ? 0 : 1)) * index_t(sizeof(Scale));
  }

 private:
  void upload(const BcqShape& s, const std::uint32_t* words, const Scale* alpha, const Scale* beta) {
    validate(s);
    ANYBCQ_REQUIRE(words != nullptr && alpha != nullptr, "DeviceWeights: planes and alpha must not be null");
    ANYBCQ_REQUIRE(s.symmetric || beta != nullptr, "DeviceWeights: beta is null but the shape is not symmetric");
    shape_ = s;
    const DeviceLayout tiled = detail::make_device_layout<DeviceLayout>(s.rows, s.cols, s.p_max);
    const layout::ScaleLayout sl{s.rows, s.groups(), s.p_min, s.p_max};
    const std::size_t pw = static_cast<std::size_t>(tiled.size_words()) * 4;
    const std::size_t aw = static_cast<std::size_t>(sl.alpha_size()) * sizeof(Scale);
    const std::size_t bw = static_cast<std::size_t>(sl.beta_size()) * sizeof(Scale);
    alpha_max_ = 0.0f;
    for (index_t i = 0; i < sl.alpha_size(); ++i) {
      const float v = std::fabs(to_float(alpha[i]));
      if (std::isnan(v)) {
        alpha_max_ = v;  // no bound
        break;
      }
      alpha_max_ = v > alpha_max_ ? v : alpha_max_;
    }
    try {
      copy_in(reinterpret_cast<void**>(&planes_), words, pw);
      copy_in(reinterpret_cast<void**>(&alpha_), alpha, aw);
      if (!s.symmetric) copy_in(reinterpret_cast<void**>(&beta_), beta, bw);
    } catch (...) {
      release();
      throw;
    }
  }
  // At least 16 bytes each, so a kernel's 16-byte load of a tiny table stays inside the allocation.
  static void copy_in(void** dst, const void* src, std::size_t n) {
    ANYBCQ_CUDA_CHECK(cudaMalloc(dst, n < 16 ? 16 : n));
    ANYBCQ_CUDA_CHECK(cudaMemcpy(*dst, src, n, cudaMemcpyHostToDevice));
  }
  void release() noexcept {
    if (planes_) cudaFree(planes_);
    if (alpha_) cudaFree(alpha_);
    if (beta_) cudaFree(beta_);
    planes_ = nullptr;
    alpha_ = beta_ = nullptr;
  }
  void swap(DeviceWeights& o) noexcept {
    std::swap(shape_, o.shape_);
    std::swap(planes_, o.planes_);
    std::swap(alpha_, o.alpha_);
    std::swap(beta_, o.beta_);
    std::swap(alpha_max_, o.alpha_max_);
  }

  BcqShape shape_{};
  std::uint32_t* planes_ = nullptr;
  Scale* alpha_ = nullptr;
  Scale* beta_ = nullptr;
  float alpha_max_ = std::numeric_limits<float>::infinity();  //!< max |α| over every level (view().alpha_max)
};

}  // namespace cuda
ANYBCQ_NAMESPACE_END
