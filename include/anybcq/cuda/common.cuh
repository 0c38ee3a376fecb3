// AnyBCQ — CUDA backend basics: error checks, status codes, element types.
#pragma once
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/numeric.hpp"

//! Throw anybcq::Error naming the failed CUDA runtime call and its error string.
#define ANYBCQ_CUDA_CHECK(expr)                                                                        \
  do {                                                                                                 \
    const cudaError_t anybcq_err_ = (expr);                                                            \
    if (anybcq_err_ != cudaSuccess)                                                                    \
      ::anybcq::detail::throw_error("anybcq: CUDA call ", #expr, " failed: ", cudaGetErrorString(anybcq_err_)); \
  } while (0)

//! Throw anybcq::Error naming the failed cuBLAS call and its status.
#define ANYBCQ_CUBLAS_CHECK(expr)                                                                      \
  do {                                                                                                 \
    const cublasStatus_t anybcq_st_ = (expr);                                                          \
    if (anybcq_st_ != CUBLAS_STATUS_SUCCESS)                                                           \
      ::anybcq::detail::throw_error("anybcq: cuBLAS call ", #expr, " failed: ", cublasGetStatusString(anybcq_st_)); \
  } while (0)

ANYBCQ_NAMESPACE_BEGIN
namespace cuda {

//! Outcome of a host adapter call (CUTLASS-style).
enum class Status {
  kSuccess,
  kInvalidProblem,     //!< shape, group size or precision the kernels cannot take
  kMisalignedOperand,  //!< pointer without the required alignment, or null
  kWorkspaceTooSmall,  //!< workspace smaller than workspace_size(args)
  kCudaError,          //!< a launch or runtime call failed
  kCublasError,        //!< cuBLAS returned an error
};

//! Readable name of a Status.
inline const char* to_string(Status s) {
  switch (s) {
    case Status::kSuccess: return "success";
    case Status::kInvalidProblem: return "invalid problem";
    case Status::kMisalignedOperand: return "misaligned or null operand";
    case Status::kWorkspaceTooSmall: return "workspace too small";
    case Status::kCudaError: return "CUDA error";
    case Status::kCublasError: return "cuBLAS error";
  }
  return "unknown";
}

//! A Status with the explanation of what was wrong (empty on success).
struct Check {
  Status status = Status::kSuccess;
  std::string message;
  bool ok() const { return status == Status::kSuccess; }
  explicit operator bool() const { return ok(); }
};

//! True for the activation/output element types the kernels take.
template <class T>
inline constexpr bool is_element_v = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

namespace detail {

//! Scale storage → float on the device, without the host bit-twiddling path.
__device__ __forceinline__ float scale_to_float(half_t s) { return __half2float(__ushort_as_half(s.bits)); }
__device__ __forceinline__ float scale_to_float(bfloat16_t s) { return __uint_as_float(std::uint32_t(s.bits) << 16); }
__device__ __forceinline__ float scale_to_float(float s) { return s; }

//! v combined over the 32 lanes of a warp with op (a five-step butterfly; every lane gets the result).
template <class T, class Op>
__device__ __forceinline__ T warp_all_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  return v;
}

template <class E>
__device__ __forceinline__ E from_f32(float v);
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

//! Two floats packed as one 32-bit register of element type E (low half = a).
template <class E>
__device__ __forceinline__ std::uint32_t pack2(float a, float b) {
  if constexpr (std::is_same_v<E, __half>) {
    const __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<const std::uint32_t*>(&h);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const std::uint32_t*>(&h);
  }
}

template <class E>
inline cudaDataType_t cuda_data_type() {
  return std::is_same_v<E, __half> ? CUDA_R_16F : CUDA_R_16BF;
}

}  // namespace detail
}  // namespace cuda
ANYBCQ_NAMESPACE_END
