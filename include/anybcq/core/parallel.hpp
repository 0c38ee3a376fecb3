// AnyBCQ — minimal fork-join helper for host-side loops (quantizer, reference utilities).
#pragma once
#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace detail {

//! Number of worker threads to use for `requested` (≤ 0 means all hardware threads).
inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

//! Calls f(begin, end, worker) on contiguous chunks of [0, n) from up to `threads` threads; the first
//! exception thrown by any chunk is rethrown on the caller's thread after all have joined.
template <class F>
void parallel_for(index_t n, int threads, F&& f) {
  if (n <= 0) return;
  const int t = static_cast<int>(std::min<index_t>(resolve_threads(threads), n));
  if (t == 1) {
    f(index_t{0}, n, 0);
    return;
  }
  std::exception_ptr error;
  std::mutex mu;
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(t));
  for (int w = 0; w < t; ++w) {
    const index_t b = n * w / t, e = n * (w + 1) / t;
    pool.emplace_back([&, b, e, w] {
      try {
        f(b, e, w);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace detail
ANYBCQ_NAMESPACE_END
