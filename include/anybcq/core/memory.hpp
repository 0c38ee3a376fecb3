// AnyBCQ — the allocator of the bulk storage (bit-planes, scale tables, activation tables).
#pragma once
#include <cstddef>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN

//! Allocator of the weight and table storage. Blocks are 64-byte aligned (whole cache lines, aligned
//! vector loads). Blocks of 2 MiB or more are 2 MiB aligned and, on Linux, advised as transparent huge
//! pages (`madvise(MADV_HUGEPAGE)`, before the first touch), so that streaming a large weight costs a
//! page walk per 2 MiB instead of per 4 KiB. Where the system has transparent huge pages off, or on
//! other systems, the advice is absent or ignored and nothing else changes. Stateless: all instances
//! are equal.
template <class T>
struct BulkAllocator {
  using value_type = T;
  static constexpr std::size_t kHugePage = std::size_t(2) << 20;

  BulkAllocator() = default;
  template <class U>
  BulkAllocator(const BulkAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit by design

  //! Alignment of a block of `bytes` bytes.
  static constexpr std::size_t alignment(std::size_t bytes) { return bytes >= kHugePage ? kHugePage : 64; }

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    void* p = ::operator new(bytes, std::align_val_t{alignment(bytes)});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHugePage) (void)::madvise(p, bytes & ~(kHugePage - 1), MADV_HUGEPAGE);  // advice only
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept { ::operator delete(p, std::align_val_t{alignment(n * sizeof(T))}); }

  friend bool operator==(const BulkAllocator&, const BulkAllocator&) { return true; }
  friend bool operator!=(const BulkAllocator&, const BulkAllocator&) { return false; }
};

//! std::vector on BulkAllocator: the container of bit-planes and scale tables.
template <class T>
using bulk_vector = std::vector<T, BulkAllocator<T>>;

ANYBCQ_NAMESPACE_END
