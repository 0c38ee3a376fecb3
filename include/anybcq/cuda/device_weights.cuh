// AnyBCQ — device-side owner of multi-precision weights in the GPU layout (layout::MmaTiled).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "anybcq/core/weights.hpp"
#include "anybcq/cuda/common.cuh"
#include "anybcq/layout/mma_tiled.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cuda {

//! Owns device copies of the bit planes (repacked to layout::MmaTiled) and of every precision's scales
//! (layout::ScaleLayout, unchanged). Hands out a MultiPrecisionView with device pointers. Move-only.
template <class Scale = half_t>
class DeviceWeights {
  static_assert(is_storage_float_v<Scale>, "Scale must be float, half_t or bfloat16_t");

 public:
  using view_type = MultiPrecisionView<layout::MmaTiled, Scale>;

  DeviceWeights() = default;
  //! Repack `w` (any word-granular host layout) on the host and upload it (synchronous).
  template <class Layout>
  explicit DeviceWeights(const MultiPrecisionWeights<Layout, Scale>& w, int threads = 0) {
    const BcqShape& s = w.shape();
    const layout::MmaTiled tiled = layout::make_mma_tiled(s.rows, s.cols, s.p_max);
    std::vector<std::uint32_t> words(static_cast<std::size_t>(tiled.size_words()));
    layout::repack_to_mma(w.layout(), w.planes().data(), tiled, words.data(), threads);
    upload(s, words.data(), w.alpha().data(), s.symmetric ? nullptr : w.beta().data());
  }
  //! Upload planes already in MmaTiled order (tiled.size_words() words) and scales in ScaleLayout order.
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
    v.layout = layout::make_mma_tiled(shape_.rows, shape_.cols, shape_.p_max);
    v.scales = layout::ScaleLayout{shape_.rows, shape_.groups(), shape_.p_min, shape_.p_max};
    v.rows = shape_.rows;
    v.cols = shape_.cols;
    v.group = shape_.group;
    return v;
  }
  //! Bytes a call at precision p must read from device memory: p planes (padded) plus α^p, β^p.
  index_t bytes(int p) const {
    const auto l = layout::make_mma_tiled(shape_.rows, shape_.cols, shape_.p_max);
    return l.words_read(p) * 4 +
           shape_.rows * shape_.groups() * (p + (shape_.symmetric ? 0 : 1)) * index_t(sizeof(Scale));
  }

 private:
  void upload(const BcqShape& s, const std::uint32_t* words, const Scale* alpha, const Scale* beta) {
    validate(s);
    ANYBCQ_REQUIRE(words != nullptr && alpha != nullptr, "DeviceWeights: planes and alpha must not be null");
    ANYBCQ_REQUIRE(s.symmetric || beta != nullptr, "DeviceWeights: beta is null but the shape is not symmetric");
    shape_ = s;
    const layout::MmaTiled tiled = layout::make_mma_tiled(s.rows, s.cols, s.p_max);
    const layout::ScaleLayout sl{s.rows, s.groups(), s.p_min, s.p_max};
    const std::size_t pw = static_cast<std::size_t>(tiled.size_words()) * 4;
    const std::size_t aw = static_cast<std::size_t>(sl.alpha_size()) * sizeof(Scale);
    const std::size_t bw = static_cast<std::size_t>(sl.beta_size()) * sizeof(Scale);
    try {
      ANYBCQ_CUDA_CHECK(cudaMalloc(&planes_, pw));
      ANYBCQ_CUDA_CHECK(cudaMalloc(&alpha_, aw));
      ANYBCQ_CUDA_CHECK(cudaMemcpy(planes_, words, pw, cudaMemcpyHostToDevice));
      ANYBCQ_CUDA_CHECK(cudaMemcpy(alpha_, alpha, aw, cudaMemcpyHostToDevice));
      if (!s.symmetric) {
        ANYBCQ_CUDA_CHECK(cudaMalloc(&beta_, bw));
        ANYBCQ_CUDA_CHECK(cudaMemcpy(beta_, beta, bw, cudaMemcpyHostToDevice));
      }
    } catch (...) {
      release();
      throw;
    }
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
  }

  BcqShape shape_{};
  std::uint32_t* planes_ = nullptr;
  Scale* alpha_ = nullptr;
  Scale* beta_ = nullptr;
};

}  // namespace cuda
ANYBCQ_NAMESPACE_END
