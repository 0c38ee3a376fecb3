// Shared helpers of the CUDA test files: GPU presence, the host type of an element, device buffers.
#pragma once
#include <doctest/doctest.h>

#include <cstdio>
#include <type_traits>

#include "anybcq/core/numeric.hpp"
#include "anybcq/cuda/common.cuh"

namespace cuda_test {

using namespace anybcq;

//! Whether a CUDA device is present; without one, says so once and lets the caller skip.
inline bool have_gpu() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    static bool said = false;
    if (!said) std::fprintf(stderr, "anybcq_cuda_tests: no CUDA device: skipping the GPU test cases\n");
    said = true;
    MESSAGE("no CUDA device: skipping");
    return false;
  }
  return true;
}

template <class E>
using Host = std::conditional_t<std::is_same_v<E, __half>, half_t, bfloat16_t>;

template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  std::size_t count = 0;
  explicit DeviceBuffer(std::size_t n) : count(n) {
    if (n) ANYBCQ_CUDA_CHECK(cudaMalloc(&ptr, n * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const void* src) { ANYBCQ_CUDA_CHECK(cudaMemcpy(ptr, src, count * sizeof(T), cudaMemcpyHostToDevice)); }
  void download(void* dst) const {
    ANYBCQ_CUDA_CHECK(cudaMemcpy(dst, ptr, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
  void poison() { ANYBCQ_CUDA_CHECK(cudaMemset(ptr, 0xFF, count * sizeof(T))); }  // 0xFFFF: NaN in f16 and bf16
};

//! Captures what enqueue() puts on stream s into a CUDA graph, replays it `launches` times, waits for it and
//! frees the graph.
template <class F>
void replay_graph(cudaStream_t s, int launches, F&& enqueue) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ANYBCQ_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  enqueue();
  ANYBCQ_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  ANYBCQ_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < launches; ++i) ANYBCQ_CUDA_CHECK(cudaGraphLaunch(exec, s));
  ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(s));
  ANYBCQ_CUDA_CHECK(cudaGraphExecDestroy(exec));
  ANYBCQ_CUDA_CHECK(cudaGraphDestroy(graph));
}

}  // namespace cuda_test
