// Shared helpers for the io tests: random BCQ weights, temporary files, hand-built safetensors bytes.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "anybcq/core/weights.hpp"
#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/io/safetensors.hpp"

namespace anybcq_test_io {

//! Ŵ_p of `w` as floats, into a poisoned buffer.
template <class L, class S>
std::vector<float> deq(const anybcq::MultiPrecisionWeights<L, S>& w, int p) {
  std::vector<float> out(static_cast<std::size_t>(w.rows() * w.cols()), -12345.0f);  // poisoned
  anybcq::cpu::dequantize(w.view(p), out.data());
  return out;
}
//! Bitwise equality of two float vectors.
inline bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

//! A fresh temporary directory removed (with its files) at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/anybcq_io_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    path = p ? p : "/tmp";
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  ~TempDir() {
    const std::string cmd = "rm -rf '" + path + "'";
    if (path.rfind("/tmp/anybcq_io_", 0) == 0) (void)std::system(cmd.c_str());
  }
};

//! Weights with random planes and random non-zero scales (no quantizer needed).
template <class Layout = anybcq::layout::PlaneMajor, class Scale = anybcq::half_t>
anybcq::MultiPrecisionWeights<Layout, Scale> random_weights(const anybcq::BcqShape& s, unsigned seed) {
  anybcq::MultiPrecisionWeights<Layout, Scale> w(s);
  std::mt19937 rng(seed);
  for (auto& x : w.planes()) x = static_cast<std::uint32_t>(rng());
  std::uniform_real_distribution<float> a(0.01f, 1.0f), b(-0.5f, 0.5f);
  for (auto& x : w.alpha()) x = anybcq::from_float<Scale>(a(rng));
  for (auto& x : w.beta()) x = anybcq::from_float<Scale>(b(rng));
  return w;
}

//! The anybcq::Error message `f` throws, or "<no error>". Any other exception type fails the test.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const anybcq::Error& e) {
    return e.what();
  }
  return "<no error>";
}

//! Bytes of a safetensors file whose header is exactly `header` and whose data section is `data`.
inline std::vector<std::uint8_t> raw_file(const std::string& header, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out(8 + header.size() + data.size());
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[std::size_t(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return;
  if (!b.empty()) std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

}  // namespace anybcq_test_io
