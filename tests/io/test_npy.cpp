// .npy reader: float32/float16 round trips and damaged headers rejected cleanly.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "anybcq/io/npy.hpp"
#include "io/test_helpers.hpp"

using namespace anybcq;
using namespace anybcq_test_io;

namespace {
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
std::vector<std::uint8_t> npy_with_header(const std::string& dict, std::size_t data_bytes, int major = 1) {
  std::vector<std::uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', std::uint8_t(major), 0};
  if (major == 1) {
    b.push_back(std::uint8_t(dict.size() & 0xFF));
    b.push_back(std::uint8_t(dict.size() >> 8));
  } else {
    for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(dict.size() >> (8 * i)));
  }
  b.insert(b.end(), dict.begin(), dict.end());
  b.resize(b.size() + data_bytes, 0);
  return b;
}
std::string rejected(const std::vector<std::uint8_t>& b) {
  return error_of([&] { (void)io::NpyArray::from_memory(b.data(), b.size()); });
}
}  // namespace

TEST_CASE("npy: float32 and float16 matrices round trip through a file") {
  std::mt19937 rng(77);
  std::normal_distribution<float> nd;
  std::vector<float> f(13 * 96);
  for (auto& x : f) x = nd(rng);
  std::vector<half_t> h(f.size());
  for (std::size_t i = 0; i < f.size(); ++i) h[i] = to_half(f[i]);
  TempDir dir;
  io::write_npy(dir.file("a.npy"), io::DType::F32, {13, 96}, f.data());
  io::write_npy(dir.file("b.npy"), io::DType::F16, {13, 96}, h.data());
  const io::NpyArray a = io::NpyArray::open(dir.file("a.npy"));
  CHECK(a.dtype() == io::DType::F32);
  CHECK(a.shape() == std::vector<index_t>{13, 96});
  CHECK(a.read_float() == f);
  const io::NpyArray b = io::NpyArray::open(dir.file("b.npy"));
  CHECK(b.dtype() == io::DType::F16);
  const auto bf = b.read_float();
  for (std::size_t i = 0; i < f.size(); ++i) CHECK(bf[i] == to_float(h[i]));
  // Version 2 headers (u32 length) and 1-D shapes are read too.
  const auto v2 = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", 12, 2);
  CHECK(rejected(v2) == "<no error>");
}

TEST_CASE("npy: damaged or unsupported files are rejected with a clear error") {
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  CHECK(rejected(npy_with_header(good, 24)) == "<no error>");
  CHECK(has(rejected({1, 2, 3}), "not a .npy file"));
  auto b = npy_with_header(good, 24);
  b[0] = 'X';
  CHECK(has(rejected(b), "not a .npy file"));
  b = npy_with_header(good, 24);
  b[6] = 9;
  CHECK(has(rejected(b), "version 9"));
  b = npy_with_header(good, 24);
  b[8] = 0xFF;
  b[9] = 0xFF;
  CHECK(has(rejected(b), "runs past the end"));
  CHECK(has(rejected(npy_with_header(good, 20)), "needs 24 data bytes but the file holds 20"));
  CHECK(has(rejected(npy_with_header(good, 28)), "needs 24 data bytes but the file holds 28"));
  CHECK(has(rejected(npy_with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24)),
            "not supported"));
  CHECK(has(rejected(npy_with_header("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 24)),
            "not supported"));
  CHECK(has(rejected(npy_with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24)),
            "Fortran-order"));
  CHECK(has(rejected(npy_with_header("{'descr': '<f4', 'shape': (2, 3), }", 24)), "lacks"));
  CHECK(has(rejected(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 24)),
            "non-negative integers"));
  CHECK(has(rejected(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0)),
            "too large"));
  CHECK(has(rejected(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0)),
            "overflows"));
  CHECK(has(rejected(npy_with_header("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", 24)),
            "True or False"));
  CHECK(has(rejected(npy_with_header("{'descr': '<f4", 0)), "unterminated"));
  CHECK(has(rejected(npy_with_header("{'descr': '<f4', 'evil': 1}", 0)), "unknown header key"));
}
