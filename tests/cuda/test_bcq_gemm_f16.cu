// CUDA GEMV/GEMM at run-time precision (f16 activations), checked against the float64 CPU reference.
#include <algorithm>
#include <limits>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "cuda/gemm_test_common.cuh"

using namespace anybcq;
using namespace gemm_test;

TEST_CASE("f16 fused small: GEMV and small batch match the reference at every p") { if (have_gpu()) fused_small<__half>(); }
TEST_CASE("f16 odd M, several K and group sizes, batch 1..64 (fused and dequantize+cuBLAS), p_min 1..p_max 5") { if (have_gpu()) fused_shapes<__half>(); }
TEST_CASE("f16 dequantize + cuBLAS: large batch matches the reference") { if (have_gpu()) dequant_cublas<__half>(); }
TEST_CASE("f16 warpgroup kernel (wgmma-dq): odd M, partial chunks, every group size, batch 1..257") { if (have_gpu()) wgmma_dequant<__half>(); }
TEST_CASE("f16 binary-mma kernel: batch 1..8, odd M, every group size >= 128, every K split, outlier channels") { if (have_gpu()) binary_mma<__half>(); }
TEST_CASE("f16 per-row precision: each row equals its single-precision result") { if (have_gpu()) per_row_precision<__half>(); }
TEST_CASE("f16 scales near and beyond the fast decode's range: the dispatcher and every path stay exact") { if (have_gpu()) large_scales<__half>(); }





TEST_CASE("per-row precision: rows asking for a precision the weights lack come out NaN, others are right") {
  if (!have_gpu()) return;
  // Group 64, M = 40: the register-dequantizing kernel's per-row mode with its scales read from global
  // memory, and the precision splits (warpgroup kernel in sm_90a builds) and the bit-serial kernel forced;
  // M = 48, group 128: the same per-row mode with the scale runs in its ring (one loop per highest
  // precision), and the binary-mma kernel forced; the precision splits on 20 rows, some of which ask for
  // precisions the weights lack; and a batch whose rows all do.
  struct Case {
    index_t M, g;
    cuda::GemmPath path;
  };
  // One per-row call (rows' precisions in db) on path, synchronized.
  auto per_row_call = [](const cuda::DeviceWeights<>& dw, const DeviceBuffer<__half>& dx, DeviceBuffer<__half>& dy,
                         const DeviceBuffer<int>& db, index_t n, cuda::GemmPath path) {
    cuda::Gemm<__half> gemm;
    const auto a = gemm_args<__half>(dw, dx.ptr, dy.ptr, n, 0, db.ptr, path);
    INFO("path ", cuda::to_string(cuda::Gemm<__half>::path(a)));
    const std::size_t ws_bytes = cuda::Gemm<__half>::workspace_size(a);
    DeviceBuffer<unsigned char> ws(ws_bytes);
    REQUIRE(gemm.run(a, ws.ptr, ws_bytes, nullptr) == cuda::Status::kSuccess);
    ANYBCQ_CUDA_CHECK(cudaDeviceSynchronize());
  };
  for (const Case c : {Case{40, 64, cuda::GemmPath::kAuto}, Case{40, 64, cuda::GemmPath::kSplitDequant},
                       Case{40, 64, cuda::GemmPath::kFusedBitSerial}, Case{40, 64, cuda::GemmPath::kSplitCublas},
                       Case{40, 64, cuda::GemmPath::kSplitWgmma}, Case{48, 128, cuda::GemmPath::kAuto},
                       Case{48, 128, cuda::GemmPath::kBinaryMma}}) {
    if (c.path == cuda::GemmPath::kSplitWgmma && !cuda::kHaveWgmma) continue;
    const index_t M = c.M;
    const auto w = random_weights(M, 256, c.g, 2, 3);
    const cuda::DeviceWeights<> dw(w);
    const index_t n = 3, K = 256;
    const std::vector<int> bits{2, 7, 3};
    const auto x = random_x<__half>(n, K);
    DeviceBuffer<__half> dx(static_cast<std::size_t>(n * K)), dy(static_cast<std::size_t>(n * M));
    DeviceBuffer<int> db(3);
    dx.upload(x.data());
    db.upload(bits.data());
    dy.poison();
    CAPTURE(M);
    per_row_call(dw, dx, dy, db, n, c.path);
    std::vector<half_t> y(static_cast<std::size_t>(n * M));
    dy.download(y.data());
    for (index_t m = 0; m < M; ++m) CHECK(std::isnan(to_float(y[static_cast<std::size_t>(M + m)])));
    const auto ref = cpu::gemm_naive_f64(w.view(3), x.data() + 2 * K, 1);
    double num = 0, den = 0;
    for (index_t m = 0; m < M; ++m) {
      const double d = to_float(y[static_cast<std::size_t>(2 * M + m)]) - ref[static_cast<std::size_t>(m)];
      num += d * d;
      den += ref[static_cast<std::size_t>(m)] * ref[static_cast<std::size_t>(m)];
    }
    CHECK(std::sqrt(num / den) < 2e-3);
  }
  // the precision splits (batch > 8): rows the weights lack among valid ones, in every batch tile
  for (const cuda::GemmPath path : {cuda::GemmPath::kSplitDequant, cuda::GemmPath::kSplitWgmma}) {
    if (path == cuda::GemmPath::kSplitWgmma && !cuda::kHaveWgmma) continue;
    const index_t M = 48, K = 256, n = 20;
    const auto w = random_weights(M, K, 128, 2, 4);
    const cuda::DeviceWeights<> dw(w);
    std::vector<int> bits(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = i % 5 == 1 ? 7 : i % 7 == 3 ? 1 : 2 + int(i % 3);
    const auto x = random_x<__half>(n, K);
    DeviceBuffer<__half> dx(static_cast<std::size_t>(n * K)), dy(static_cast<std::size_t>(n * M));
    DeviceBuffer<int> db(bits.size());
    dx.upload(x.data());
    db.upload(bits.data());
    dy.poison();
    INFO("precision split, some rows invalid");
    per_row_call(dw, dx, dy, db, n, path);
    std::vector<half_t> y(static_cast<std::size_t>(n * M));
    dy.download(y.data());
    for (index_t r = 0; r < n; ++r) {
      const int p = bits[static_cast<std::size_t>(r)];
      CAPTURE(r);
      if (p < 2 || p > 4) {
        for (index_t m = 0; m < M; ++m) CHECK(std::isnan(to_float(y[static_cast<std::size_t>(r * M + m)])));
        continue;
      }
      const auto ref = cpu::gemm_naive_f64(w.view(p), x.data() + r * K, 1);
      double num = 0, den = 0;
      for (index_t m = 0; m < M; ++m) {
        const double d = to_float(y[static_cast<std::size_t>(r * M + m)]) - ref[static_cast<std::size_t>(m)];
        num += d * d;
        den += ref[static_cast<std::size_t>(m)] * ref[static_cast<std::size_t>(m)];
      }
      CHECK(std::sqrt(num / den) < 2e-3);
    }
  }
  for (const cuda::GemmPath path : {cuda::GemmPath::kAuto, cuda::GemmPath::kSplitDequant, cuda::GemmPath::kSplitWgmma}) {
    if (path == cuda::GemmPath::kSplitWgmma && !cuda::kHaveWgmma) continue;
    const index_t M = 48, K = 256, n = 5;
    const auto w = random_weights(M, K, 128, 2, 3);
    const cuda::DeviceWeights<> dw(w);
    const std::vector<int> bits{7, 0, 1, 4, -3};
    const auto x = random_x<__half>(n, K);
    DeviceBuffer<__half> dx(static_cast<std::size_t>(n * K)), dy(static_cast<std::size_t>(n * M));
    DeviceBuffer<int> db(bits.size());
    dx.upload(x.data());
    db.upload(bits.data());
    std::vector<half_t> y0(static_cast<std::size_t>(n * M), to_half(1.0f));
    dy.upload(y0.data());  // finite: every output must be written NaN
    INFO("all rows invalid");
    per_row_call(dw, dx, dy, db, n, path);
    dy.download(y0.data());
    int finite = 0;
    for (const half_t v : y0) finite += std::isnan(to_float(v)) ? 0 : 1;
    CHECK(finite == 0);
  }
}

TEST_CASE("split-wg packing: each valid row lands in one packed row, every tile holds one precision (host)") {
  // split_rows_kernel's table built on the host (rows sorted stably by precision; seg[2p] = first sorted
  // position of p, seg[2p + 1] = its count; p = 0: rows outside p_min … p_max), then every packed row of
  // the ⌈batch/128⌉ + P − 1 tile bound and one tile past it mapped back (detail::split_packed_row). Runs
  // without a GPU.
  std::mt19937 gen(12345);
  for (const auto& pr : {std::pair{2, 4}, std::pair{1, 8}, std::pair{3, 3}})
    for (index_t n : {1, 5, 127, 128, 129, 300, 1024}) {
      const int p_min = pr.first, p_max = pr.second;
      std::uniform_int_distribution<int> pd(p_min - 1, p_max + 1);  // a few rows the weights lack
      std::vector<int> bits(static_cast<std::size_t>(n));
      for (auto& b : bits) b = pd(gen);
      auto valid_bits = [&](index_t r) {
        const int b = bits[static_cast<std::size_t>(r)];
        return b < p_min || b > p_max ? 0 : b;
      };
      std::vector<int> seg(static_cast<std::size_t>(cuda::detail::kSplitSegInts), 0), order;
      for (int p = 0; p <= kMaxBits; ++p) {
        seg[static_cast<std::size_t>(2 * p)] = static_cast<int>(order.size());
        for (index_t r = 0; r < n; ++r)
          if (valid_bits(r) == p) order.push_back(static_cast<int>(r));
        seg[static_cast<std::size_t>(2 * p + 1)] = static_cast<int>(order.size()) - seg[static_cast<std::size_t>(2 * p)];
      }
      const index_t tiles = (n + cuda::detail::kWgBatch - 1) / cuda::detail::kWgBatch + (p_max - p_min);
      std::vector<int> seen(static_cast<std::size_t>(n), 0), tile_bits(static_cast<std::size_t>(tiles + 1), 0);
      CAPTURE(n);
      CAPTURE(p_min);
      CAPTURE(p_max);
      for (index_t r = 0; r < (tiles + 1) * cuda::detail::kWgBatch; ++r) {
        const index_t src = cuda::detail::split_packed_row(seg.data(), order.data(), r);
        if (src < 0) continue;
        REQUIRE(src < n);
        const int p = valid_bits(src);
        const index_t tile = r / cuda::detail::kWgBatch, base = cuda::detail::split_tile_base(seg.data(), p);
        CHECK(p > 0);
        CHECK(tile < tiles);
        CHECK((tile >= base && tile < base + cuda::detail::split_tiles(seg.data(), p)));
        int& tb = tile_bits[static_cast<std::size_t>(tile)];
        CHECK((tb == 0 || tb == p));
        tb = p;
        ++seen[static_cast<std::size_t>(src)];
      }
      for (index_t r = 0; r < n; ++r) CHECK(seen[static_cast<std::size_t>(r)] == (valid_bits(r) > 0 ? 1 : 0));
    }
}

TEST_CASE("binary-mma operands: A bits from MmaTiled words line up with the B columns (host)") {
  // For every lane and half-chunk, each bit of the two MmaTiled words a lane loads lands in exactly one
  // bit of the A registers: row g's bits in a0, row g + 8's in a1, at the position i whose B column
  // bmma_column(t, i) + 128·h is that bit's column. Runs without a GPU.
  using layout::MmaTiled;
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    for (int h = 0; h < 2; ++h) {
      std::uint32_t seen0 = 0, seen1 = 0;
      for (int w = 2 * h; w < 2 * h + 2; ++w)
        for (int q = 0; q < 32; ++q) {
          const auto c = MmaTiled::coord(lane, w, q);
          std::uint32_t a0 = 0, a1 = 0;
          const std::uint32_t v = 1u << q;
          cuda::detail::bmma_a_operands(w == 2 * h ? v : 0u, w == 2 * h ? 0u : v, a0, a1);
          CAPTURE(lane);
          CAPTURE(w);
          CAPTURE(q);
          REQUIRE(((a0 == 0) != (a1 == 0)));  // exactly one register takes the bit …
          const std::uint32_t a = a0 | a1;
          REQUIRE((a & (a - 1)) == 0u);        // … as exactly one bit
          int i = 0;
          while (!((a >> i) & 1u)) ++i;
          CHECK(c.row == (a0 ? g : g + 8));
          CHECK(c.col == cuda::detail::bmma_column(t, i) + 128 * h);
          (a0 ? seen0 : seen1) |= a;
        }
      CHECK(seen0 == 0xFFFFFFFFu);  // every A bit is fed
      CHECK(seen1 == 0xFFFFFFFFu);
    }
  }
}

TEST_CASE("can_implement names what it cannot take") {
  // Host-only checks: no GPU needed.
  auto w = random_weights(40, 256, 64, 2, 3);
  cuda::Gemm<__half>::Arguments a;
  MultiPrecisionView<layout::MmaTiled, half_t> v;
  v.planes = reinterpret_cast<const std::uint32_t*>(std::uintptr_t(256));
  v.alpha = reinterpret_cast<const half_t*>(std::uintptr_t(512));
  v.layout = layout::make_mma_tiled(40, 256, 3);
  v.scales = layout::ScaleLayout{40, 4, 2, 3};
  v.rows = 40;
  v.cols = 256;
  v.group = 64;
  v.alpha_max = 0.5f;
  a.weights = v;
  a.x = reinterpret_cast<const __half*>(std::uintptr_t(1024));
  a.y = reinterpret_cast<__half*>(std::uintptr_t(2048));
  a.batch = 4;
  a.bits = 3;
  CHECK(cuda::Gemm<__half>::can_implement(a).ok());
  auto b = a;
  b.bits = 4;
  auto r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("p = 4") != std::string::npos);
  b = a;
  b.weights.group = 32;
  b.weights.scales.groups = 8;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("group size 32") != std::string::npos);
  b = a;
  b.x = reinterpret_cast<const __half*>(std::uintptr_t(1026));
  CHECK(cuda::Gemm<__half>::can_implement(b).status == cuda::Status::kMisalignedOperand);
  b = a;
  b.weights.planes = nullptr;
  CHECK(cuda::Gemm<__half>::can_implement(b).status == cuda::Status::kMisalignedOperand);
  b = a;
  b.weights.layout.rows = 41;
  CHECK(cuda::Gemm<__half>::can_implement(b).status == cuda::Status::kInvalidProblem);
  // Per-row precision (group 64, so not the binary-mma kernel): the register-dequantizing kernel's per-row
  // mode up to batch 16 where p_max ≤ 4 (it needs no fast decode), the precision split on it up to batch
  // 127 on these small weights (95 on weights of M·K ≥ 2^25), in sm_90a builds the split on the warpgroup
  // kernel from there up to 256 (768; 1536 where M ≥ 2K), through cuBLAS above or where the fast decode
  // does not hold; a forced one-precision path cannot take it, and the splits take nothing else.
  b = a;
  b.row_bits = reinterpret_cast<const int*>(std::uintptr_t(4096));
  CHECK(cuda::Gemm<__half>::can_implement(b).ok());
  {  // row_bits_mask: the weights' precisions (2, 3) only, and only with row_bits
    auto h = b;
    h.row_bits_mask = 1u << 3;
    CHECK(cuda::Gemm<__half>::can_implement(h).ok());
    h.row_bits_mask = (1u << 2) | (1u << 3);
    CHECK(cuda::Gemm<__half>::can_implement(h).ok());
    h.row_bits_mask = (1u << 2) | (1u << 4);
    r = cuda::Gemm<__half>::can_implement(h);
    CHECK(r.status == cuda::Status::kInvalidProblem);
    CHECK(r.message.find("row_bits_mask = 0x14 names precisions the weights lack") != std::string::npos);
    h.row_bits_mask = 1u << 1;
    CHECK(cuda::Gemm<__half>::can_implement(h).status == cuda::Status::kInvalidProblem);
    h = a;
    h.row_bits_mask = 1u << 3;
    r = cuda::Gemm<__half>::can_implement(h);
    CHECK(r.status == cuda::Status::kInvalidProblem);
    CHECK(r.message.find("without row_bits") != std::string::npos);
  }
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  CHECK(cuda::Gemm<__half>::workspace_size(b) == 0);
  b.batch = 16;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.batch = 17;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kSplitDequant);
  CHECK(cuda::Gemm<__half>::workspace_size(b) > 0);
  {  // a workspace that is too small or not 16-byte aligned is refused before anything is launched
    cuda::Gemm<__half> g;
    std::string msg;
    const std::size_t need = cuda::Gemm<__half>::workspace_size(b);
    CHECK(g.run(b, reinterpret_cast<void*>(std::uintptr_t(8192 + 4)), need, nullptr, &msg) ==
          cuda::Status::kMisalignedOperand);
    CHECK(msg.find("16-byte") != std::string::npos);
    CHECK(g.run(b, reinterpret_cast<void*>(std::uintptr_t(8192)), need - 1, nullptr, &msg) ==
          cuda::Status::kWorkspaceTooSmall);
  }
  b.batch = 127;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kSplitDequant);
  const cuda::GemmPath wg_or = cuda::kHaveWgmma ? cuda::GemmPath::kSplitWgmma : cuda::GemmPath::kSplitDequant;
  b.batch = 128;
  CHECK(cuda::Gemm<__half>::path(b) == wg_or);
  b.batch = 256;
  CHECK(cuda::Gemm<__half>::path(b) == (cuda::kHaveWgmma ? cuda::GemmPath::kSplitWgmma : cuda::GemmPath::kSplitCublas));
  CHECK(cuda::Gemm<__half>::workspace_size(b) > 2 * 40 * 256 * sizeof(__half));
  b.batch = 257;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kSplitCublas);
  CHECK(cuda::Gemm<__half>::workspace_size(b) > 2 * 40 * 256 * sizeof(__half));
  for (const index_t rows : {index_t(4096), index_t(8192)}) {  // weights of 2^25 elements, M < 2K and M = 2K
    auto big = b;                                                // (path() reads only the shape here)
    big.weights.rows = rows;
    big.weights.cols = index_t(1) << 25 >> (rows == 4096 ? 12 : 13);
    const index_t hi = rows == 4096 ? 768 : 1536;
    for (const auto& nb : {std::pair{index_t(95), cuda::GemmPath::kSplitDequant}, std::pair{index_t(96), wg_or},
                           std::pair{hi, cuda::kHaveWgmma ? cuda::GemmPath::kSplitWgmma : cuda::GemmPath::kSplitCublas},
                           std::pair{hi + 1, cuda::GemmPath::kSplitCublas}}) {
      big.batch = nb.first;
      CAPTURE(rows);
      CAPTURE(nb.first);
      CHECK(cuda::Gemm<__half>::path(big) == nb.second);
    }
  }
  b.batch = 17;
  b.weights.alpha_max = 300.0f;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kSplitCublas);
  b.batch = 16;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.weights.alpha_max = 0.5f;
  for (const auto p : {cuda::GemmPath::kFusedBitSerial, cuda::GemmPath::kFusedDequant, cuda::GemmPath::kSplitDequant,
                       cuda::GemmPath::kSplitCublas, cuda::GemmPath::kSplitWgmma}) {
    b.path = p;
    CHECK(cuda::Gemm<__half>::can_implement(b).ok() == (p != cuda::GemmPath::kSplitWgmma || cuda::kHaveWgmma));
  }
  b.path = cuda::GemmPath::kDequantCublas;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("per-row") != std::string::npos);
  for (const auto p : {cuda::GemmPath::kSplitDequant, cuda::GemmPath::kSplitWgmma}) {
    b.path = p;
    b.row_bits = nullptr;
    r = cuda::Gemm<__half>::can_implement(b);
    CHECK(r.status == cuda::Status::kInvalidProblem);
    CHECK(r.message.find(cuda::kHaveWgmma || p != cuda::GemmPath::kSplitWgmma ? "row_bits" : "sm_90a") !=
          std::string::npos);
  }
  b.row_bits = reinterpret_cast<const int*>(std::uintptr_t(4096));
  b.path = cuda::GemmPath::kAuto;
  b.weights.layout = layout::make_mma_tiled(40, 256, 5);
  b.weights.scales.p_max = 5;
  CHECK(cuda::Gemm<__half>::can_implement(b).ok());
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kSplitDequant);  // p_max 5: the split from batch 1
  b.weights.alpha_max = 300.0f;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kSplitCublas);
  b.weights.alpha_max = 0.5f;
  b.path = cuda::GemmPath::kFusedDequant;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("p_max = 5") != std::string::npos);
  b = a;
  b.k_slices = 3;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("k_slices = 3") != std::string::npos);
  // The LUT path takes one precision, batch ≤ kMaxLutBatch and group ≥ 128.
  auto g128 = a;
  g128.weights.group = 128;
  g128.weights.scales.groups = 2;
  b = g128;
  b.path = cuda::GemmPath::kLut;
  b.batch = cuda::DefaultTuning::kMaxLutBatch;
  b.k_slices = 8;
  CHECK(cuda::Gemm<__half>::can_implement(b).ok());
  b.k_slices = 16;
  CHECK(cuda::Gemm<__half>::can_implement(b).status == cuda::Status::kInvalidProblem);
  b.k_slices = 0;
  b.batch += 1;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("batch = 3") != std::string::npos);
  b = a;  // group 64
  b.path = cuda::GemmPath::kLut;
  b.batch = 1;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("group = 64") != std::string::npos);
  // The binary-mma path takes one precision, batch ≤ 8 and group ≥ 128; its workspace holds the
  // activation bit planes (512 bytes per 256 columns and row) and their scales.
  b = g128;
  b.path = cuda::GemmPath::kBinaryMma;
  b.batch = 8;
  b.k_slices = 8;
  CHECK(cuda::Gemm<__half>::can_implement(b).ok());
  CHECK(cuda::Gemm<__half>::workspace_size(b) >= std::size_t(8 * 512));
  b.k_slices = 16;
  CHECK(cuda::Gemm<__half>::can_implement(b).status == cuda::Status::kInvalidProblem);
  b.k_slices = 0;
  b.batch = 9;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("batch = 9") != std::string::npos);
  b = a;  // group 64
  b.path = cuda::GemmPath::kBinaryMma;
  b.batch = 1;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("group = 64") != std::string::npos);
  // Dispatcher: binary mma up to kMaxBmmaBatch when group ≥ 128, register-dequantizing up to kMaxFusedBatch
  // (or kWgmmaEarlyBatch when M ≥ kWgmmaMinRows), the warpgroup kernel up to kMaxWgmmaBatch in sm_90a
  // builds, then dequantize + cuBLAS. The LUT path is only taken when forced.
  b = g128;
  b.batch = 1;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kBinaryMma);
  CHECK(cuda::Gemm<__half>::workspace_size(b) > 0);
  b.batch = cuda::DefaultTuning::kMaxBmmaBatch;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kBinaryMma);
  b.batch = cuda::DefaultTuning::kMaxBmmaBatch + 1;  // M ≤ K: the register-dequantizing kernel; M > K: binary mma
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.weights.rows = b.weights.cols + 1;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kBinaryMma);
  b.batch = cuda::DefaultTuning::kMaxBmmaBatchTall;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kBinaryMma);
  b.batch = cuda::DefaultTuning::kMaxBmmaBatchTall + 1;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  // M ≤ K with at least kBmmaLargeWeights weights (the dispatcher reads only the shape and group here)
  b = g128;
  b.weights.rows = 4096;
  b.weights.cols = 14336;
  b.batch = cuda::DefaultTuning::kMaxBmmaBatchTall;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kBinaryMma);
  b.weights.cols = cuda::DefaultTuning::kBmmaLargeWeights / 4096 - 32;  // just below the bound, M < K
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.weights.cols = 4096;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.weights.rows = cuda::DefaultTuning::kBmmaLargeMinRows / 2;  // large enough, but too few rows
  b.weights.cols = 2 * cuda::DefaultTuning::kBmmaLargeWeights / cuda::DefaultTuning::kBmmaLargeMinRows;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.weights.rows = cuda::DefaultTuning::kBmmaLargeMinRows;  // 2048×16384: exactly the bound
  b.weights.cols = cuda::DefaultTuning::kBmmaLargeWeights / cuda::DefaultTuning::kBmmaLargeMinRows;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kBinaryMma);
  // Batch 5–8 (the 8-row batch tile) at p = kBmmaTileBits where M ≥ kBmmaTileRowsPerCol·K and M ≥ kBmmaLargeMinRows.
  b = g128;
  b.weights.cols = 4096;
  b.weights.rows = cuda::DefaultTuning::kBmmaTileRowsPerCol * 4096;
  b.bits = cuda::DefaultTuning::kBmmaTileBits;
  for (index_t n : {5, 8}) {
    b.batch = n;
    CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kBinaryMma);
  }
  b.batch = 9;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.batch = 8;
  b.bits = cuda::DefaultTuning::kBmmaTileBits + 1;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.bits = cuda::DefaultTuning::kBmmaTileBits;
  b.weights.rows -= 16;  // just below M = 3·K
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.weights.cols = 256;  // M ≥ 3·K but fewer than kBmmaLargeMinRows rows
  b.weights.rows = cuda::DefaultTuning::kBmmaLargeMinRows - 16;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b = a;
  b.batch = 1;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b = a;
  b.batch = cuda::DefaultTuning::kMaxFusedBatch;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  CHECK(cuda::Gemm<__half>::workspace_size(b) == 0);
  b.batch += 1;
  CHECK(cuda::Gemm<__half>::path(b) == (cuda::kHaveWgmma ? cuda::GemmPath::kWgmmaDequant : cuda::GemmPath::kDequantCublas));
  b.batch = cuda::DefaultTuning::kMaxWgmmaBatch + 1;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kDequantCublas);
  b.batch = cuda::DefaultTuning::kWgmmaEarlyBatch + 1;
  b.weights.rows = cuda::DefaultTuning::kWgmmaMinRows;
  CHECK(cuda::Gemm<__half>::path(b) == (cuda::kHaveWgmma ? cuda::GemmPath::kWgmmaDequant : cuda::GemmPath::kFusedDequant));
  b.weights.rows -= 1;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  // fp16: a register-dequantizing pick needs the weights' |alpha| bound below 255.9375; above it, or
  // unknown, the dispatcher takes dequantize + cuBLAS and a forced pick is refused. bf16 with half_t
  // scales (|alpha| <= 65504 < 2^63) takes any bound.
  b = a;
  b.batch = cuda::DefaultTuning::kMaxFusedBatch;
  b.weights.alpha_max = 255.9375f;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kDequantCublas);
  auto as_bf16 = [](const cuda::Gemm<__half>::Arguments& h) {
    cuda::Gemm<__nv_bfloat16>::Arguments o;
    o.weights = h.weights;
    o.x = reinterpret_cast<const __nv_bfloat16*>(h.x);
    o.y = reinterpret_cast<__nv_bfloat16*>(h.y);
    o.batch = h.batch;
    o.bits = h.bits;
    o.path = h.path;
    return o;
  };
  CHECK(cuda::Gemm<__nv_bfloat16>::path(as_bf16(b)) == cuda::GemmPath::kFusedDequant);
  b.weights.alpha_max = 255.93f;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.weights.alpha_max = std::numeric_limits<float>::infinity();
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kDequantCublas);
  CHECK(cuda::Gemm<__nv_bfloat16>::path(as_bf16(b)) == cuda::GemmPath::kFusedDequant);  // half_t scales: < 2^63
  b.batch = 8;  // one 8-row tile at p = 3: the planes go to the tensor cores as they are, any bound
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kFusedDequant);
  b.batch = 9;
  b.path = cuda::GemmPath::kFusedDequant;
  r = cuda::Gemm<__half>::can_implement(b);
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("alpha") != std::string::npos);
  CHECK(cuda::Gemm<__nv_bfloat16>::can_implement(as_bf16(b)).ok());
  b.path = cuda::GemmPath::kDequantCublas;
  CHECK(cuda::Gemm<__half>::can_implement(b).ok());
  b = a;
  if (!cuda::kHaveWgmma) {
    b.path = cuda::GemmPath::kWgmmaDequant;
    const cuda::Check c = cuda::Gemm<__half>::can_implement(b);
    CHECK(c.status == cuda::Status::kInvalidProblem);
    CHECK(c.message.find("sm_90a") != std::string::npos);
  }
  // Reusing packed activations needs the binary-mma path; there x may be null.
  b = a;
  b.reuse_packed_x = true;
  r = cuda::Gemm<__half>::can_implement(b);  // group 64: register-dequantizing path
  CHECK(r.status == cuda::Status::kInvalidProblem);
  CHECK(r.message.find("reuse_packed_x") != std::string::npos);
  b.weights.group = 128;
  b.weights.scales.groups = 2;
  b.batch = 1;
  b.x = nullptr;
  CHECK(cuda::Gemm<__half>::path(b) == cuda::GemmPath::kBinaryMma);
  CHECK(cuda::Gemm<__half>::can_implement(b).ok());
  b.batch = 8;
  CHECK(cuda::Gemm<__half>::can_implement(b).status == cuda::Status::kInvalidProblem);
  b.reuse_packed_x = false;
  CHECK(cuda::Gemm<__half>::can_implement(b).status == cuda::Status::kMisalignedOperand);  // x is read again
  // run() reports, never launches, on a bad problem.
  cuda::Gemm<__half> gemm;
  b = a;
  b.bits = 9;
  std::string msg;
  CHECK(gemm.run(b, nullptr, 0, nullptr, &msg) == cuda::Status::kInvalidProblem);
  CHECK(msg.find("p = 9") != std::string::npos);
  // Large batch needs a workspace.
  b = a;
  b.batch = 1000;
  CHECK(cuda::Gemm<__half>::workspace_size(b) >= std::size_t(40 * 256 * 2));
  CHECK(gemm.run(b, nullptr, 0, nullptr, &msg) == cuda::Status::kWorkspaceTooSmall);
  (void)w;
}

TEST_CASE("CUDA graph capture: replays equal the eager result") {
  if (!have_gpu()) return;
  const auto w = random_weights(300, 2048, 128, 2, 4);
  const cuda::DeviceWeights<> dw(w);
  for (index_t n : {1, 8, 100}) {
    const index_t M = 300, K = 2048;
    const auto x = random_x<__half>(n, K);
    DeviceBuffer<__half> dx(static_cast<std::size_t>(n * K)), dy(static_cast<std::size_t>(n * M));
    dx.upload(x.data());
    cuda::Gemm<__half> gemm;
    gemm.initialize();
    cuda::Gemm<__half>::Arguments a;
    a.weights = dw.view();
    a.x = dx.ptr;
    a.y = dy.ptr;
    a.batch = n;
    a.bits = 3;
    const std::size_t wsb = cuda::Gemm<__half>::workspace_size(a);
    DeviceBuffer<unsigned char> ws(wsb);
    cudaStream_t s;
    ANYBCQ_CUDA_CHECK(cudaStreamCreate(&s));
    REQUIRE(gemm.run(a, ws.ptr, wsb, s) == cuda::Status::kSuccess);
    ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<half_t> eager(static_cast<std::size_t>(n * M)), replay(eager.size());
    dy.download(eager.data());
    dy.poison();
    replay_graph(s, 3, [&] { REQUIRE(gemm.run(a, ws.ptr, wsb, s) == cuda::Status::kSuccess); });
    dy.download(replay.data());
    CHECK(std::memcmp(eager.data(), replay.data(), eager.size() * sizeof(half_t)) == 0);
    ANYBCQ_CUDA_CHECK(cudaStreamDestroy(s));
  }
}

TEST_CASE("binary-mma path: calls that reuse the packed activations equal calls that pack their own") {
  if (!have_gpu()) return;
  // Three matrices on one input (the Q/K/V pattern), K = 640 (a partial last chunk), odd M > K (so that
  // batch 3 and 4 take the binary-mma path too), batch 1..4:
  // the first call packs x, the next two take its bit planes from the workspace, with no synchronization
  // in between, eager and from a graph, with and without programmatic launch. Each output must equal the
  // same call made on its own, bit for bit, and every element must be written.
  const index_t K = 640;
  const index_t Ms[3] = {1001, 657, 1517};
  std::vector<std::unique_ptr<cuda::DeviceWeights<>>> dw;
  for (int j = 0; j < 3; ++j) dw.push_back(std::make_unique<cuda::DeviceWeights<>>(random_weights(Ms[j], K, 128, 2, 4, j == 1)));
  cudaStream_t s;
  ANYBCQ_CUDA_CHECK(cudaStreamCreate(&s));
  cuda::Gemm<__half> gemm;
  for (index_t n = 1; n <= 4; ++n)
    for (const bool pdl : {true, false}) {
      CAPTURE(n);
      CAPTURE(pdl);
      const auto x = random_x<__half>(n, K);
      DeviceBuffer<__half> dx(static_cast<std::size_t>(n * K));
      dx.upload(x.data());
      std::vector<std::unique_ptr<DeviceBuffer<__half>>> ys;
      for (int j = 0; j < 3; ++j) ys.push_back(std::make_unique<DeviceBuffer<__half>>(static_cast<std::size_t>(n * Ms[j])));
      auto args = [&](int j, bool reuse) {
        cuda::Gemm<__half>::Arguments a;
        a.weights = dw[std::size_t(j)]->view();
        a.x = reuse ? nullptr : dx.ptr;
        a.y = ys[std::size_t(j)]->ptr;
        a.batch = n;
        a.bits = 2 + (j + int(n)) % 3;
        a.pdl = pdl;
        a.reuse_packed_x = reuse;
        return a;
      };
      for (int j = 0; j < 3; ++j) REQUIRE(cuda::Gemm<__half>::path(args(j, false)) == cuda::GemmPath::kBinaryMma);
      std::size_t wsb = 0;
      for (int j = 0; j < 3; ++j) wsb = std::max(wsb, cuda::Gemm<__half>::workspace_size(args(j, false)));
      DeviceBuffer<unsigned char> ws(wsb);
      auto download = [&] {
        std::vector<std::vector<half_t>> out(3);
        for (int j = 0; j < 3; ++j) {
          out[std::size_t(j)].resize(static_cast<std::size_t>(n * Ms[j]));
          ys[std::size_t(j)]->download(out[std::size_t(j)].data());
        }
        return out;
      };
      // reference: each call packs its own activations, synchronized one by one
      for (int j = 0; j < 3; ++j) {
        ys[std::size_t(j)]->poison();
        REQUIRE(gemm.run(args(j, false), ws.ptr, wsb, s) == cuda::Status::kSuccess);
        ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(s));
      }
      const auto ref = download();
      for (const auto& o : ref)
        for (const half_t v : o) REQUIRE(std::isfinite(to_float(v)));
      auto enqueue = [&] {
        for (int j = 0; j < 3; ++j) REQUIRE(gemm.run(args(j, j > 0), ws.ptr, wsb, s) == cuda::Status::kSuccess);
      };
      auto check_equal = [&] {
        const auto out = download();
        for (int j = 0; j < 3; ++j)
          CHECK(std::memcmp(out[std::size_t(j)].data(), ref[std::size_t(j)].data(), out[std::size_t(j)].size() * sizeof(half_t)) == 0);
      };
      for (auto& y : ys) y->poison();
      ws.poison();  // the bit planes the later calls read must come from the first call of the chain
      enqueue();
      ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(s));
      check_equal();
      for (auto& y : ys) y->poison();
      ws.poison();
      replay_graph(s, 1, enqueue);
      check_equal();
    }
  ANYBCQ_CUDA_CHECK(cudaStreamDestroy(s));
}

TEST_CASE("programmatic dependent launch: a call that reads the previous call's output sees all of it") {
  if (!have_gpu()) return;
  // y1 = Ŵ·x, y2 = Ŵ·y1, …: each call's activations are the output of the call before it on the same
  // stream, with no synchronization between them. The chain must equal the same calls synchronized one by
  // one, bit for bit, eager and replayed from a graph; at batch 1 (binary-mma path) and 8
  // (register-dequantizing path), and with per-row precision at batch 24 (the precision split: its sort
  // kernel and one launch per precision), 256 (the split on the warpgroup kernel in sm_90a builds: sort,
  // packing, one launch per precision) and 300 (through cuBLAS), each call's workspace reused by the next.
  // Symmetric weights on K = 1024 grow the activations by about 2.6× per call: all six stay finite in fp16.
  const index_t K = 1024;
  const auto w = random_weights(K, K, 128, 2, 4, true);
  const cuda::DeviceWeights<> dw(w);
  for (const auto& cfg : {std::pair{index_t(1), cuda::GemmPath::kBinaryMma},
                          std::pair{index_t(8), cuda::GemmPath::kFusedDequant},
                          std::pair{index_t(24), cuda::GemmPath::kSplitDequant},
                          std::pair{index_t(256), cuda::kHaveWgmma ? cuda::GemmPath::kSplitWgmma : cuda::GemmPath::kSplitCublas},
                          std::pair{index_t(300), cuda::GemmPath::kSplitCublas}}) {
    const index_t n = cfg.first;
    const bool per_row = cfg.second == cuda::GemmPath::kSplitDequant || cfg.second == cuda::GemmPath::kSplitCublas ||
                         cfg.second == cuda::GemmPath::kSplitWgmma;
    CAPTURE(n);
    const auto x = random_x<__half>(n, K);
    std::vector<int> bits(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = 4 - int(i * 7 % 3);
    DeviceBuffer<int> dbits(bits.size());
    dbits.upload(bits.data());
    constexpr int kLinks = 6;
    std::vector<std::unique_ptr<DeviceBuffer<__half>>> bufs;
    for (int i = 0; i <= kLinks; ++i) bufs.push_back(std::make_unique<DeviceBuffer<__half>>(static_cast<std::size_t>(n * K)));
    auto buf = [&](int i) -> DeviceBuffer<__half>& { return *bufs[static_cast<std::size_t>(i)]; };
    buf(0).upload(x.data());
    cuda::Gemm<__half> gemm;
    auto args = [&](int i) {
      cuda::Gemm<__half>::Arguments a;
      a.weights = dw.view();
      a.x = buf(i).ptr;
      a.y = buf(i + 1).ptr;
      a.batch = n;
      a.bits = 2 + i % 3;
      if (per_row) a.row_bits = dbits.ptr;
      return a;
    };
    REQUIRE(cuda::Gemm<__half>::path(args(0)) == cfg.second);
    const std::size_t wsb = cuda::Gemm<__half>::workspace_size(args(0));
    DeviceBuffer<unsigned char> ws(wsb);
    cudaStream_t s;
    ANYBCQ_CUDA_CHECK(cudaStreamCreate(&s));
    auto chain = [&](bool sync) {
      for (int i = 1; i <= kLinks; ++i) buf(i).poison();
      for (int i = 0; i < kLinks; ++i) {
        REQUIRE(gemm.run(args(i), ws.ptr, wsb, s) == cuda::Status::kSuccess);
        if (sync) ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(s));
      }
      ANYBCQ_CUDA_CHECK(cudaStreamSynchronize(s));
      std::vector<half_t> out(static_cast<std::size_t>(kLinks * n * K));
      for (int i = 1; i <= kLinks; ++i) buf(i).download(out.data() + (i - 1) * n * K);
      return out;
    };
    const auto ref = chain(true);
    for (const half_t v : ref) REQUIRE(std::isfinite(to_float(v)));
    for (int rep = 0; rep < 3; ++rep) CHECK(std::memcmp(chain(false).data(), ref.data(), ref.size() * sizeof(half_t)) == 0);
    for (int i = 1; i <= kLinks; ++i) buf(i).poison();
    replay_graph(s, 1, [&] {
      for (int i = 0; i < kLinks; ++i) REQUIRE(gemm.run(args(i), ws.ptr, wsb, s) == cuda::Status::kSuccess);
    });
    std::vector<half_t> out(ref.size());
    for (int i = 1; i <= kLinks; ++i) buf(i).download(out.data() + (i - 1) * n * K);
    CHECK(std::memcmp(out.data(), ref.data(), ref.size() * sizeof(half_t)) == 0);
    ANYBCQ_CUDA_CHECK(cudaStreamDestroy(s));
  }
}
