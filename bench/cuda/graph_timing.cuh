// Event timing shared by the CUDA benchmarks: every CUDA call is checked (ANYBCQ_CUDA_CHECK throws).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "anybcq/cuda/common.cuh"

namespace bench {

//! Milliseconds of `reps` runs of run(), each between two events recorded on `s`, sorted ascending.
template <class F>
std::vector<float> event_times(cudaStream_t s, int reps, F&& run) {
  cudaEvent_t a, b;
  ANYBCQ_CUDA_CHECK(cudaEventCreate(&a));
  ANYBCQ_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int i = 0; i < reps; ++i) {
    ANYBCQ_CUDA_CHECK(cudaEventRecord(a, s));
    run();
    ANYBCQ_CUDA_CHECK(cudaEventRecord(b, s));
    ANYBCQ_CUDA_CHECK(cudaEventSynchronize(b));
    ANYBCQ_CUDA_CHECK(cudaGetLastError());
    float ms = 0;
    ANYBCQ_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  ANYBCQ_CUDA_CHECK(cudaEventDestroy(a));
  ANYBCQ_CUDA_CHECK(cudaEventDestroy(b));
  return t;
}

//! µs per call: enqueue() puts `calls_per_graph` calls on `s` while it is captured into a graph; the graph
//! is replayed 3 times untimed, then `replays` times between events; the median replay / calls_per_graph.
template <class F>
double time_graph(cudaStream_t s, int calls_per_graph, int replays, F&& enqueue) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ANYBCQ_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  enqueue();
  ANYBCQ_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  ANYBCQ_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 3; ++i) ANYBCQ_CUDA_CHECK(cudaGraphLaunch(exec, s));
  ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(s));
  const std::vector<float> t = event_times(s, replays, [&] { ANYBCQ_CUDA_CHECK(cudaGraphLaunch(exec, s)); });
  ANYBCQ_CUDA_CHECK(cudaGraphExecDestroy(exec));
  ANYBCQ_CUDA_CHECK(cudaGraphDestroy(graph));
  return 1e3 * t[t.size() / 2] / calls_per_graph;
}

}  // namespace bench
