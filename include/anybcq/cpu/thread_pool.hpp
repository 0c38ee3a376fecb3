// AnyBCQ — a small persistent fork-join pool for the CPU kernels (spawning threads per 100 µs call
// costs more than the call).
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/parallel.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {

//! Persistent workers sharing one job at a time; the calling thread always takes part. Work is
//! claimed in chunks, so a worker that the OS has not scheduled yet is simply not waited for (the
//! others take its share). `run`/`parallel_for` calls from several threads are serialized; the pool
//! holds no global state.
class ThreadPool {
 public:
  //! A pool of `threads` workers in total (≤ 0 means all hardware threads); threads − 1 are spawned.
  //! spin_us: how long an idle worker polls for the next job before it sleeps.
  explicit ThreadPool(int threads = 0, int spin_us = 100)
      : size_(::anybcq::detail::resolve_threads(threads)), spin_us_(spin_us) {
    workers_.reserve(static_cast<std::size_t>(size_ - 1));
    for (int w = 1; w < size_; ++w) workers_.emplace_back([this] { loop(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true, std::memory_order_release);
      state_.fetch_add(kGenOne, std::memory_order_acq_rel);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  //! Number of workers, the caller included.
  int size() const { return size_; }

  //! Calls f(begin, end) on disjoint chunks of `grain` items (the last may be shorter) covering
  //! [0, n), from at most `workers` threads (≤ 0: size()); returns when every chunk is done. The
  //! first exception thrown is rethrown here (remaining chunks are skipped).
  template <class F>
  void parallel_for(index_t n, index_t grain, F&& f, int workers = 0) {
    if (n <= 0) return;
    grain = std::max<index_t>(grain, 1);
    const int nw = static_cast<int>(std::min<index_t>(workers <= 0 ? size_ : std::min(workers, size_), (n + grain - 1) / grain));
    if (nw <= 1) {
      for (index_t b = 0; b < n; b += grain) f(b, std::min(n, b + grain));
      return;
    }
    std::lock_guard<std::mutex> serial(run_mu_);
    using Fn = std::remove_reference_t<F>;
    job_ = [](void* ctx, index_t b, index_t e) { (*static_cast<Fn*>(ctx))(b, e); };
    ctx_ = static_cast<void*>(&f);
    n_ = n;
    grain_ = grain;
    next_.store(0, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    max_helpers_.store(nw - 1, std::memory_order_relaxed);
    error_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // new generation, no helper entered, open
      const std::uint64_t gen = (state_.load(std::memory_order_relaxed) >> kGenShift) + 1;
      state_.store(gen << kGenShift, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    // Close the job: helpers arriving from now on skip it; wait for those already inside.
    const std::uint64_t s = state_.fetch_or(kClosed, std::memory_order_acq_rel);
    const int entered = static_cast<int>(s & kCountMask);
    while (finished_.load(std::memory_order_acquire) != entered) pause();
    if (error_) std::rethrow_exception(error_);
  }

  //! Calls f(i, workers) for every i in [0, workers) (≤ 0: size()), each once, spread over the pool.
  template <class F>
  void run(F&& f, int workers = 0) {
    const int nw = workers <= 0 ? size_ : workers;
    ANYBCQ_REQUIRE(nw <= size_, "ThreadPool::run: ", nw, " workers requested but the pool has ", size_);
    parallel_for(
        nw, 1,
        [&](index_t b, index_t e) {
          for (index_t i = b; i < e; ++i) f(static_cast<int>(i), nw);
        },
        nw);
  }

 private:
  static constexpr std::uint64_t kCountMask = 0xFFFFu;
  static constexpr std::uint64_t kClosed = 0x10000u;
  static constexpr int kGenShift = 20;
  static constexpr std::uint64_t kGenOne = std::uint64_t(1) << kGenShift;

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
  }

  void work() {
    for (;;) {
      const index_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
      if (b >= n_) return;
      try {
        job_(ctx_, b, std::min(n_, b + grain_));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        next_.store(n_, std::memory_order_relaxed);
      }
    }
  }

  void loop() {
    // Generation 0 is the one before any job: a worker that starts late (after jobs, or after the
    // destructor's stop) must still see every later generation as new.
    std::uint64_t seen = 0;
    for (;;) {
      // Spin briefly (calls come back to back during inference), then sleep.
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
      while ((state_.load(std::memory_order_acquire) >> kGenShift) == seen &&
             std::chrono::steady_clock::now() < until)
        pause();
      if ((state_.load(std::memory_order_acquire) >> kGenShift) == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return (state_.load(std::memory_order_acquire) >> kGenShift) != seen; });
      }
      if (stop_.load(std::memory_order_acquire)) return;
      // Enter the current job if it is still open and has room for another helper.
      std::uint64_t s = state_.load(std::memory_order_acquire);
      seen = s >> kGenShift;
      bool entered = false;
      while (!(s & kClosed) && (s >> kGenShift) == seen &&
             int(s & kCountMask) < max_helpers_.load(std::memory_order_relaxed)) {
        if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
          entered = true;
          break;
        }
      }
      if (entered) {
        work();
        finished_.fetch_add(1, std::memory_order_acq_rel);
      }
    }
  }

  int size_;
  int spin_us_;
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_;
  std::atomic<std::uint64_t> state_{0};  // generation << 20 | closed bit 16 | helpers entered (bits 0..15)
  std::atomic<index_t> next_{0};
  std::atomic<int> finished_{0};
  std::atomic<bool> stop_{false};
  void (*job_)(void*, index_t, index_t) = nullptr;
  void* ctx_ = nullptr;
  index_t n_ = 0, grain_ = 1;
  std::atomic<int> max_helpers_{0};  // read by late workers racing the next job's setup
  std::exception_ptr error_;
};

}  // namespace cpu
ANYBCQ_NAMESPACE_END
