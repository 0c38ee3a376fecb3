// The converter's core promise: quantize -> write -> read -> dequantize equals in-memory dequantize.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/io/bcq_tensor.hpp"
#include "anybcq/quant/quantize.hpp"
#include "io/test_helpers.hpp"

using namespace anybcq;
using namespace anybcq_test_io;

TEST_CASE("bcq tensor: quantize -> write file -> read -> dequantize equals in-memory dequantize, bit-exact") {
  const index_t M = 24, K = 128;
  std::mt19937 rng(4242);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<bfloat16_t> w(static_cast<std::size_t>(M * K));
  for (auto& x : w) x = to_bfloat16(nd(rng));
  quant::QuantizeOptions opt;
  opt.p_min = 2;
  opt.p_max = 4;
  opt.group = 64;
  opt.threads = 1;
  quant::AlternatingRefiner ref;
  ref.rounds = 3;
  const auto q = quant::quantize(w.data(), M, K, opt, ref);

  TempDir dir;
  io::SafetensorsWriter wr;
  io::add_bcq_tensor(wr, "w", q, io::DType::BF16);
  wr.write(dir.file("q.safetensors"));
  const io::SafetensorsReader r = io::SafetensorsReader::open(dir.file("q.safetensors"));
  const auto back = io::load_bcq_tensor(r, "w");
  for (int p = 2; p <= 4; ++p) {
    const auto a = deq(q, p), b = deq(back, p);
    CHECK(bit_equal(a, b));
    CHECK(cpu::relative_error(b.data(), w.data(), M * K) < 0.6);  // a real quantization, not zeros
  }
}

