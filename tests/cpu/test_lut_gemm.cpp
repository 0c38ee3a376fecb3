#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "anybcq/cpu/lut_gemm.hpp"
#include "anybcq/cpu/reference.hpp"
#include "cpu/lut_test_util.hpp"

using namespace anybcq;
using lut_test::nmse;
using lut_test::random_weights;
using lut_test::random_x;
using lut_test::supported_isas;

namespace {

std::vector<float> poisoned(index_t n) {
  return std::vector<float>(static_cast<std::size_t>(n), std::numeric_limits<float>::quiet_NaN());
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("lut: activation tables are identical on every ISA level") {
  for (auto type : {cpu::LutTables::kInt8, cpu::LutTables::kInt16})
    for (index_t ab : {32, 64, 128}) {
      const bool wide = type == cpu::LutTables::kInt16;
      CAPTURE(wide);
      CAPTURE(ab);
      const auto x = random_x(3, 256, 77 + unsigned(ab), 0.02);
      const auto ref = cpu::LutActivations::build(x.data(), 3, 256, ab, cpu::Isa::kScalar, nullptr, 0, type);
      const index_t bpw = ref.bytes_per_word();
      CHECK(bpw == (wide ? 256 : 128));
      // entries really are the quantized signed sums
      for (index_t j = 0; j < 256 / 4; ++j) {
        const float* xj = x.data() + 4 * j;
        const index_t kw = j / 8, jj = j % 8;
        const std::int8_t* t = ref.tables(0) + kw * bpw + (jj % 2) * 64 + (jj / 2) * 16;
        const float s = ref.scale(0, 4 * j / ab);
        for (int v = 0; v < 16; ++v) {
          float e = 0;
          for (int q = 0; q < 4; ++q) e += ((v >> q) & 1) ? xj[q] : -xj[q];
          const int entry = wide ? 256 * t[128 + v] + int(static_cast<std::uint8_t>(t[v])) : int(t[v]);
          REQUIRE(std::fabs(float(entry) * s - e) <= 0.5f * s + 1e-5f * std::fabs(e));
        }
      }
      for (cpu::Isa isa : supported_isas()) {
        CAPTURE(cpu::isa_name(isa));
        const auto a = cpu::LutActivations::build(x.data(), 3, 256, ab, isa, nullptr, 0, type);
        for (index_t r = 0; r < 3; ++r) {
          CHECK(std::memcmp(a.tables(r), ref.tables(r), std::size_t(8 * bpw)) == 0);
          for (index_t b = 0; b < 256 / ab; ++b) CHECK(a.scale(r, b) == ref.scale(r, b));
          for (index_t kw = 0; kw < 8; ++kw) CHECK(a.sum32(r, kw) == ref.sum32(r, kw));
        }
      }
    }
}

TEST_CASE("lut: tables built on a pool equal the single-thread build") {
  const auto x = random_x(3, 4096, 99, 0.01);  // 3·4096 features: large enough to be split
  cpu::ThreadPool pool(3);
  for (cpu::Isa isa : supported_isas()) {
    CAPTURE(cpu::isa_name(isa));
    const auto one = cpu::LutActivations::build(x.data(), 3, 4096, 128, isa);
    const auto many = cpu::LutActivations::build(x.data(), 3, 4096, 128, isa, &pool);
    CHECK(one.row_stride() == 128 * 128 + 512);  // 16 KiB of tables per row: padded off the 4 KiB grid
    for (index_t r = 0; r < 3; ++r) {
      CHECK(std::memcmp(one.tables(r), many.tables(r), 128 * 128) == 0);
      for (index_t b = 0; b < 32; ++b) CHECK(one.scale(r, b) == many.scale(r, b));
    }
  }
}

TEST_CASE_TEMPLATE("lut_gemm: every path matches the reference and the scalar emulation bit for bit", Scale, half_t,
                   float, bfloat16_t) {
  struct Case {
    index_t M, K, g;
    int pmin, pmax;
    bool sym;
    index_t n;
  };
  const Case cases[] = {{37, 96, 32, 1, 3, false, 1},    {67, 256, 64, 2, 4, false, 3}, {16, 384, 128, 2, 4, true, 2},
                        {129, 512, 256, 3, 8, false, 5}, {50, 640, 128, 2, 4, false, 11}, {1, 32, 32, 1, 2, false, 2},
                        {3, 64, 64, 4, 4, true, 1}};
  unsigned seed = 100;
  for (const Case& c : cases) {
    CAPTURE(c.M);
    CAPTURE(c.K);
    CAPTURE(c.g);
    const BcqShape s{c.M, c.K, c.g, c.pmin, c.pmax, c.sym};
    const auto wp = random_weights<Scale>(s, ++seed);
    const auto w = wp.template convert<layout::RowTiled>();
    const auto x = random_x(c.n, c.K, ++seed, 0.01);
    // mixed per-row precision covering every level
    std::vector<int> bits(static_cast<std::size_t>(c.n));
    for (index_t r = 0; r < c.n; ++r) bits[std::size_t(r)] = c.pmin + int((r * 7 + 3) % (c.pmax - c.pmin + 1));
    std::vector<float> ref(static_cast<std::size_t>(c.n * c.M));
    cpu::gemm(wp.multi_view(), bits.data(), x.data(), c.n, ref.data());

    for (auto type : {cpu::LutTables::kInt8, cpu::LutTables::kInt16}) {
      CAPTURE(int(type));
      cpu::LutOptions o;
      o.isa = cpu::Isa::kScalar;
      o.tables = type;
      std::vector<float> scalar = poisoned(c.n * c.M);
      cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), c.n, scalar.data(), nullptr, o);
      for (float v : scalar) REQUIRE(std::isfinite(v));
      CHECK(nmse(scalar.data(), ref.data(), c.n * c.M) < (type == cpu::LutTables::kInt8 ? 1e-3 : 1e-8));
      for (cpu::Isa isa : supported_isas()) {
        CAPTURE(cpu::isa_name(isa));
        std::vector<float> y = poisoned(c.n * c.M);
        o.isa = isa;
        cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), c.n, y.data(), nullptr, o);
        CHECK(same_bits(y, scalar));
      }
    }
    // one precision for the whole batch, every p
    for (int p = c.pmin; p <= c.pmax; ++p) {
      std::vector<float> r1(static_cast<std::size_t>(c.n * c.M)), y1 = poisoned(c.n * c.M);
      cpu::gemm(wp.view(p), x.data(), c.n, r1.data());
      cpu::lut_gemm(w, p, x.data(), c.n, y1.data());
      CHECK(nmse(y1.data(), r1.data(), c.n * c.M) < 1e-3);
    }
  }
}

TEST_CASE("lut_gemm: threads 1..N and every ISA give identical results") {
  const BcqShape s{301, 512, 128, 2, 4, false};
  const auto w = random_weights(s, 9).convert<layout::RowTiled>();
  const auto x = random_x(9, 512, 10, 0.01);
  std::vector<int> bits = {4, 2, 3, 3, 4, 2, 2, 4, 3};
  std::vector<float> base = poisoned(9 * 301);
  cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), 9, base.data(), nullptr, {cpu::Isa::kScalar});
  cpu::ThreadPool pool(4);
  for (cpu::Isa isa : supported_isas())
    for (int t = 1; t <= 4; ++t) {
      CAPTURE(cpu::isa_name(isa));
      CAPTURE(t);
      std::vector<float> y = poisoned(9 * 301);
      cpu::LutOptions o;
      o.isa = isa;
      o.threads = t;
      cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), 9, y.data(), &pool, o);
      CHECK(same_bits(y, base));
    }
  // concurrent calls on the same const weights and the same pool
  std::vector<float> y1 = poisoned(9 * 301), y2 = poisoned(9 * 301);
  std::thread other([&] { cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), 9, y1.data(), &pool); });
  cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), 9, y2.data(), &pool);
  other.join();
  CHECK(same_bits(y1, base));
  CHECK(same_bits(y2, base));
}

TEST_CASE("lut_gemm: batches spanning several K chunks and tile blocks match the scalar emulation bit for bit") {
  // K = 2304 is 72 words: the AVX-512 batch kernel walks it in chunks (16 words at 8 rows, 8 with int16
  // tables, a partial last chunk) over blocks of up to 8 tiles; M = 150 ends in a partial tile and a
  // partial block. Batches of 16 and 13 split into chunks of 8 rows and rows of mixed precision.
  const BcqShape s{150, 2304, 128, 2, 4, false};
  const auto w = random_weights(s, 71).convert<layout::RowTiled>();
  cpu::ThreadPool pool(2);
  for (index_t n : {2, 8, 13, 16}) {
    CAPTURE(n);
    const auto x = random_x(n, s.cols, 72 + unsigned(n), 0.01);
    std::vector<int> bits(static_cast<std::size_t>(n), 4);
    if (n == 13)
      for (index_t r = 0; r < n; ++r) bits[std::size_t(r)] = 2 + int((r * 5 + 1) % 3);
    for (auto type : {cpu::LutTables::kInt8, cpu::LutTables::kInt16}) {
      CAPTURE(int(type));
      cpu::LutOptions o;
      o.isa = cpu::Isa::kScalar;
      o.tables = type;
      std::vector<float> scalar = poisoned(n * s.rows);
      cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), n, scalar.data(), nullptr, o);
      for (float v : scalar) REQUIRE(std::isfinite(v));
      for (cpu::Isa isa : supported_isas())
        for (int t = 1; t <= 2; ++t) {
          CAPTURE(cpu::isa_name(isa));
          CAPTURE(t);
          std::vector<float> y = poisoned(n * s.rows);
          o.isa = isa;
          o.threads = t;
          cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), n, y.data(), &pool, o);
          CHECK(same_bits(y, scalar));
        }
    }
  }
}

TEST_CASE_TEMPLATE("lut_gemm: LutWeights (tiled scale copy) give the same bits as the RowTiled weights", Scale, half_t,
                   float) {
  struct Case {
    index_t M, K, g;
    int pmin, pmax;
    bool sym;
  };
  // odd M (partial last tile), groups 32..K, symmetric, a precision range starting at 1
  const Case cases[] = {{37, 256, 32, 1, 3, false}, {150, 1024, 128, 2, 4, false}, {83, 512, 512, 2, 5, true}};
  cpu::ThreadPool pool(2);
  unsigned seed = 300;
  for (const Case& c : cases) {
    CAPTURE(c.M);
    CAPTURE(c.g);
    const auto w = random_weights<Scale>(BcqShape{c.M, c.K, c.g, c.pmin, c.pmax, c.sym}, ++seed)
                       .template convert<layout::RowTiled>();
    const cpu::LutWeights<Scale> lw(w);
    CHECK(lw.storage_bytes() > w.storage_bytes());
    for (index_t n : {1, 3, 8, 13}) {
      CAPTURE(n);
      const auto x = random_x(n, c.K, ++seed, 0.01);
      std::vector<int> bits(static_cast<std::size_t>(n));
      for (index_t r = 0; r < n; ++r) bits[std::size_t(r)] = c.pmin + int((r * 3 + 1) % (c.pmax - c.pmin + 1));
      for (cpu::Isa isa : supported_isas()) {
        CAPTURE(cpu::isa_name(isa));
        cpu::LutOptions o;
        o.isa = isa;
        std::vector<float> a = poisoned(n * c.M), b = poisoned(n * c.M);
        cpu::lut_gemm(w.multi_view(), bits.data(), x.data(), n, a.data(), nullptr, o);
        cpu::lut_gemm(lw, bits.data(), x.data(), n, b.data(), &pool, o);
        CHECK(same_bits(a, b));
        for (int p = c.pmin; p <= c.pmax; ++p) {
          std::vector<float> a1 = poisoned(n * c.M), b1 = poisoned(n * c.M);
          cpu::lut_gemm(w, p, x.data(), n, a1.data(), nullptr, o);
          cpu::lut_gemm(lw, p, x.data(), n, b1.data(), &pool, o);
          CHECK(same_bits(a1, b1));
        }
      }
    }
    std::vector<float> y(static_cast<std::size_t>(c.M));
    const auto x1 = random_x(1, c.K, ++seed);
    CHECK_THROWS_AS(cpu::lut_gemv(lw, c.pmax + 1, x1.data(), y.data()), Error);
  }
}

TEST_CASE("lut_gemm: activation blocks larger and smaller than the weight group") {
  const BcqShape s{45, 512, 64, 2, 3, false};
  const auto wp = random_weights(s, 61);
  const auto w = wp.convert<layout::RowTiled>();
  const auto x = random_x(3, 512, 62, 0.01);
  std::vector<float> ref(3 * 45);
  cpu::gemm(wp.view(3), x.data(), 3, ref.data());
  for (index_t ab : {32, 64, 128, 256, 512}) {
    CAPTURE(ab);
    cpu::LutOptions o;
    o.act_block = ab;
    o.isa = cpu::Isa::kScalar;
    std::vector<float> scalar = poisoned(3 * 45);
    cpu::lut_gemm(w, 3, x.data(), 3, scalar.data(), nullptr, o);
    CHECK(nmse(scalar.data(), ref.data(), 3 * 45) < 1e-3);
    for (cpu::Isa isa : supported_isas()) {
      std::vector<float> y = poisoned(3 * 45);
      o.isa = isa;
      cpu::lut_gemm(w, 3, x.data(), 3, y.data(), nullptr, o);
      CHECK(same_bits(y, scalar));
    }
  }
  // long segments (group and activation block 512 or 1024 features: 16 or 32 words per segment), which
  // the AVX2 kernels sum in int16 in windows of 8 words; outlier-free activations near the table limits
  {
    const BcqShape s2{45, 2048, 1024, 1, 3, false};
    const auto w2 = random_weights(s2, 63).convert<layout::RowTiled>();
    const auto x2 = random_x(3, 2048, 64, 0.0);
    for (index_t ab : {512, 1024}) {
      CAPTURE(ab);
      cpu::LutOptions o;
      o.act_block = ab;
      for (cpu::Isa isa : supported_isas())
        for (int p = 1; p <= 3; ++p) {
          CAPTURE(cpu::isa_name(isa));
          CAPTURE(p);
          std::vector<float> a = poisoned(3 * 45), b = poisoned(3 * 45);
          o.isa = cpu::Isa::kScalar;
          cpu::lut_gemm(w2, p, x2.data(), 3, a.data(), nullptr, o);
          o.isa = isa;
          cpu::lut_gemm(w2, p, x2.data(), 3, b.data(), nullptr, o);
          CHECK(same_bits(a, b));
          cpu::lut_gemv(w2, p, x2.data(), b.data(), nullptr, o);  // one row: the GEMV kernels
          cpu::lut_gemv(w2, p, x2.data(), a.data(), nullptr, {cpu::Isa::kScalar, ab});
          CHECK(std::memcmp(a.data(), b.data(), 45 * sizeof(float)) == 0);
        }
    }
  }
  cpu::LutOptions bad;
  bad.act_block = 96;  // neither divides nor is a multiple of 64
  std::vector<float> y(3 * 45);
  CHECK_THROWS_AS(cpu::lut_gemm(w, 3, x.data(), 3, y.data(), nullptr, bad), Error);
}

TEST_CASE("lut_gemm: prepared activations are reusable across matrices") {
  const BcqShape s{40, 256, 64, 2, 3, false};
  const auto q = random_weights(s, 21).convert<layout::RowTiled>();
  const auto k = random_weights(s, 22).convert<layout::RowTiled>();
  const auto x = random_x(2, 256, 23);
  const auto acts = cpu::LutActivations::build(x.data(), 2, 256, 64);
  const int bits[2] = {3, 2};
  for (const auto* w : {&q, &k}) {
    std::vector<float> a = poisoned(80), b = poisoned(80);
    cpu::lut_gemm(w->multi_view(), bits, acts, a.data());
    cpu::lut_gemm(w->multi_view(), bits, x.data(), 2, b.data());
    CHECK(same_bits(a, b));
  }
}

TEST_CASE("lut_gemm: 16-bit activations and outputs") {
  const BcqShape s{33, 128, 32, 2, 4, false};
  const auto wp = random_weights(s, 31);
  const auto w = wp.convert<layout::RowTiled>();
  const auto xf = random_x(2, 128, 32);
  std::vector<half_t> xh(xf.size());
  std::vector<bfloat16_t> xb(xf.size());
  for (std::size_t i = 0; i < xf.size(); ++i) {
    xh[i] = to_half(xf[i]);
    xb[i] = to_bfloat16(xf[i]);
  }
  std::vector<float> ref(66);
  cpu::gemm(wp.view(3), xh.data(), 2, ref.data());
  std::vector<half_t> yh(66, half_t{0x7E00});
  cpu::lut_gemm(w, 3, xh.data(), 2, yh.data());
  CHECK(nmse(yh.data(), ref.data(), 66) < 1e-3);
  std::vector<bfloat16_t> yb(66, bfloat16_t{0x7FC0});
  cpu::lut_gemm(w, 3, xb.data(), 2, yb.data());
  cpu::gemm(wp.view(3), xb.data(), 2, ref.data());
  CHECK(nmse(yb.data(), ref.data(), 66) < 1e-3);
}

TEST_CASE("lut_gemm: accuracy on activations with outlier channels (NMSE vs float64 reference)") {
  const BcqShape s{256, 2048, 128, 2, 4, false};
  const auto wp = random_weights(s, 41);
  const auto w = wp.convert<layout::RowTiled>();
  const auto x = random_x(4, 2048, 42, 0.01);
  for (int p = 2; p <= 4; ++p) {
    const auto ref = cpu::gemm_f64(wp.view(p), x.data(), 4);
    {
      std::vector<float> y = poisoned(4 * 256);
      cpu::LutOptions o;
      o.tables = cpu::LutTables::kInt16;
      cpu::lut_gemm(w, p, x.data(), 4, y.data(), nullptr, o);
      const double e = nmse(y.data(), ref.data(), 4 * 256);
      CAPTURE(e);
      CHECK(e < 1e-8);  // int16 tables: float-rounding level
    }
    for (index_t ab : {32, 128}) {
      std::vector<float> y = poisoned(4 * 256);
      cpu::LutOptions o;
      o.act_block = ab;
      cpu::lut_gemm(w, p, x.data(), 4, y.data(), nullptr, o);
      const double e = nmse(y.data(), ref.data(), 4 * 256);
      CAPTURE(p);
      CAPTURE(ab);
      CAPTURE(e);
      CHECK(e < 5e-4);
    }
  }
}

TEST_CASE("lut_gemm: invalid arguments are rejected with a clear error") {
  const BcqShape s{20, 64, 16, 2, 3, false};
  const auto w = random_weights(s, 51).convert<layout::RowTiled>();
  const auto x = random_x(1, 64, 52);
  std::vector<float> y(20);
  CHECK_THROWS_AS(cpu::lut_gemm(w, 2, x.data(), 1, y.data()), Error);  // group 16
  const BcqShape s2{20, 64, 32, 2, 3, false};
  const auto w2 = random_weights(s2, 53).convert<layout::RowTiled>();
  CHECK_THROWS_AS(cpu::lut_gemm(w2, 4, x.data(), 1, y.data()), Error);  // p out of range
  auto bad = x;
  bad[17] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(cpu::lut_gemm(w2, 2, bad.data(), 1, y.data()), Error);
  bad[17] = std::numeric_limits<float>::quiet_NaN();
  for (cpu::Isa isa : supported_isas()) CHECK_THROWS_AS(cpu::LutActivations::build(bad.data(), 1, 64, 32, isa), Error);
}
