// Includes the installed CUDA headers and uses cuda::Gemm's host-side API (can_implement, path,
// workspace_size) on a view of device-shaped weights; exit code 0 on success. No GPU needed.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "anybcq/cuda/bcq_gemm.cuh"
#include "anybcq/cuda/device_weights.cuh"

namespace acuda = anybcq::cuda;

int main() {
  const anybcq::index_t M = 4096, K = 4096, group = 128;
  // A view as cuda::DeviceWeights hands out, over host buffers: the host-side checks read only shapes
  // and pointer alignment.
  const auto lay = anybcq::layout::make_mma_tiled(M, K, 4);
  const anybcq::layout::ScaleLayout sl{M, K / group, 2, 4};
  std::vector<std::uint32_t> planes(static_cast<std::size_t>(lay.size_words()));
  std::vector<anybcq::half_t> alpha(static_cast<std::size_t>(sl.alpha_size())), beta(static_cast<std::size_t>(sl.beta_size()));
  std::vector<__half> x(static_cast<std::size_t>(8 * K)), y(static_cast<std::size_t>(8 * M));
  acuda::DeviceWeights<>::view_type v;
  v.planes = planes.data();
  v.alpha = alpha.data();
  v.beta = beta.data();
  v.layout = lay;
  v.scales = sl;
  v.rows = M;
  v.cols = K;
  v.group = group;
  v.alpha_max = 0.1f;
  acuda::Gemm<__half>::Arguments a;
  a.weights = v;
  a.x = x.data();
  a.y = y.data();
  a.batch = 8;
  a.bits = 3;
  const acuda::Check ok = acuda::Gemm<__half>::can_implement(a);
  a.bits = 5;
  const acuda::Check bad = acuda::Gemm<__half>::can_implement(a);
  a.bits = 3;
  std::printf("consumer (CUDA): batch 8 at p = 3 takes %s, workspace %zu bytes; p = 5: %s\n",
              acuda::to_string(acuda::Gemm<__half>::path(a)), acuda::Gemm<__half>::workspace_size(a),
              bad.message.c_str());
  return ok && !bad ? EXIT_SUCCESS : EXIT_FAILURE;
}
