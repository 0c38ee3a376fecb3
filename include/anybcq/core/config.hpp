// AnyBCQ — configuration macros shared by every header.
#pragma once

#define ANYBCQ_VERSION_MAJOR 0
#define ANYBCQ_VERSION_MINOR 1
#define ANYBCQ_VERSION_PATCH 0

//! Versioned inline namespace: `anybcq::v0` is spelled `anybcq` by users.
#define ANYBCQ_NAMESPACE_BEGIN namespace anybcq { inline namespace v0 {
#define ANYBCQ_NAMESPACE_END } }

#if defined(__CUDACC__) || defined(__HIPCC__)
#define ANYBCQ_HOST_DEVICE __host__ __device__
#define ANYBCQ_DEVICE __device__
#else
#define ANYBCQ_HOST_DEVICE
#define ANYBCQ_DEVICE
#endif

#if defined(__CUDA_ARCH__)
#define ANYBCQ_IS_DEVICE_CODE 1
#else
#define ANYBCQ_IS_DEVICE_CODE 0
#endif

#if defined(_MSC_VER)
#define ANYBCQ_FORCEINLINE __forceinline
#else
#define ANYBCQ_FORCEINLINE inline __attribute__((always_inline))
#endif

#if __cplusplus >= 202002L && defined(__cpp_concepts)
#define ANYBCQ_HAS_CONCEPTS 1
#else
#define ANYBCQ_HAS_CONCEPTS 0
#endif

#include <cstdint>

ANYBCQ_NAMESPACE_BEGIN
using index_t = std::int64_t;  //!< signed extent/offset type used by every view and layout
//! Highest precision (number of bit-planes) any weight may carry.
inline constexpr int kMaxBits = 8;
//! Bits per storage word of a bit-plane; K must be a multiple of this.
inline constexpr int kWordBits = 32;
ANYBCQ_NAMESPACE_END
