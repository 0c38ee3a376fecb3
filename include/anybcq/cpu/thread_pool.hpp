// AnyBCQ — a small persistent fork-join pool for the CPU kernels (spawning threads per 100 µs call
// costs more than the call).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/parallel.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {

//! Persistent workers that run one job at a time; the calling thread takes part as worker 0.
//! `run` calls from several threads are serialized; the pool holds no global state.
class ThreadPool {
 public:
  //! A pool of `threads` workers in total (≤ 0 means all hardware threads); threads − 1 are spawned.
  explicit ThreadPool(int threads = 0, int spin_us = 50) : size_(::anybcq::detail::resolve_threads(threads)), spin_us_(spin_us) {
    workers_.reserve(static_cast<std::size_t>(size_ - 1));
    for (int w = 1; w < size_; ++w) workers_.emplace_back([this, w] { loop(w); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  //! Number of workers, the caller included.
  int size() const { return size_; }

  //! Calls f(worker, workers) once on each of `workers` threads (1 ≤ workers ≤ size(); ≤ 0 means
  //! size()) and returns when all have finished; the first exception is rethrown here.
  template <class F>
  void run(F&& f, int workers = 0) {
    const int n = workers <= 0 ? size_ : workers;
    ANYBCQ_REQUIRE(n <= size_, "ThreadPool::run: ", n, " workers requested but the pool has ", size_);
    if (n == 1) {
      f(0, 1);
      return;
    }
    std::lock_guard<std::mutex> serial(run_mu_);
    using Fn = std::remove_reference_t<F>;
    job_ = [](void* ctx, int w, int nw) { (*static_cast<Fn*>(ctx))(w, nw); };
    ctx_ = static_cast<void*>(&f);
    active_ = n;
    error_ = nullptr;
    pending_.store(n - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    invoke(0);
    while (pending_.load(std::memory_order_acquire) != 0) pause();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
  }

  void invoke(int w) {
    try {
      job_(ctx_, w, active_);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void loop(int w) {
    unsigned seen = 0;
    for (;;) {
      // Spin briefly (calls come back to back during inference), then sleep.
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < until) pause();
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      if (w < active_) {
        invoke(w);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  int size_;
  int spin_us_;
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_;
  std::atomic<unsigned> generation_{0};
  std::atomic<int> pending_{0};
  void (*job_)(void*, int, int) = nullptr;
  void* ctx_ = nullptr;
  int active_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace cpu
ANYBCQ_NAMESPACE_END
