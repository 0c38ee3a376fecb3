// Writes the fuzz seed corpus next to this file (run once; the outputs are committed):
//   g++ -std=c++17 -I include tests/io/corpus/make_corpus.cpp -o /tmp/make_corpus && /tmp/make_corpus tests/io/corpus
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "anybcq/io/bcq_tensor.hpp"
#include "anybcq/io/npy.hpp"
#include "anybcq/io/safetensors.hpp"
#include "anybcq/layout/interleaved.hpp"

using namespace anybcq;

template <class L, class S>
MultiPrecisionWeights<L, S> random_weights(const BcqShape& s, unsigned seed) {
  MultiPrecisionWeights<L, S> w(s);
  std::mt19937 rng(seed);
  for (auto& x : w.planes()) x = static_cast<std::uint32_t>(rng());
  std::uniform_real_distribution<float> d(0.01f, 1.0f);
  for (auto& x : w.alpha()) x = from_float<S>(d(rng));
  for (auto& x : w.beta()) x = from_float<S>(d(rng) - 0.5f);
  return w;
}

void put(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  {
    io::SafetensorsWriter w;
    std::vector<float> a = {1.0f, -2.0f, 3.5f, 0.25f, 7.0f, -0.5f};
    w.add_copy("model.embed_tokens.weight", {2, 3}, a.data());
    std::vector<half_t> h = {to_half(0.5f), to_half(-1.0f), to_half(2.0f), to_half(4.0f)};
    w.add_copy("model.norm.weight", {4}, h.data());
    std::vector<bfloat16_t> b = {to_bfloat16(1.0f), to_bfloat16(3.0f)};
    w.add_copy("lm_head.weight", {1, 2}, b.data());
    w.set_metadata("format", "pt");
    put(dir + "/plain.safetensors", w.serialize());
  }
  {
    io::SafetensorsWriter w;
    io::add_bcq_tensor(w, "layers.0.q_proj.weight", random_weights<layout::PlaneMajor, half_t>({2, 64, 32, 1, 3, false}, 1),
                       io::DType::BF16);
    std::vector<float> n = {1.0f, 1.0f};
    w.add_copy("layers.0.norm.weight", {2}, n.data());
    put(dir + "/bcq_asym_pmk32.safetensors", w.serialize());
  }
  {
    io::SafetensorsWriter w;
    io::add_bcq_tensor(w, "w", random_weights<layout::Interleaved, float>({3, 32, 16, 2, 2, true}, 2), io::DType::F16);
    put(dir + "/bcq_sym_kpm32.safetensors", w.serialize());
  }
  {
    io::SafetensorsWriter w;
    io::add_bcq_tensor(w, "a", random_weights<layout::PlaneMajor, bfloat16_t>({1, 32, 32, 2, 4, false}, 3), io::DType::F32);
    io::add_bcq_tensor(w, "b", random_weights<layout::PlaneMajor, half_t>({2, 32, 8, 1, 1, true}, 4), io::DType::F16);
    put(dir + "/bcq_two.safetensors", w.serialize());
  }
  {
    std::vector<float> m(4 * 32);
    for (std::size_t i = 0; i < m.size(); ++i) m[i] = float(i) * 0.01f - 0.3f;
    put(dir + "/matrix_f32.npy", io::npy_bytes(io::DType::F32, {4, 32}, m.data()));
    std::vector<half_t> h(2 * 32, to_half(0.75f));
    put(dir + "/matrix_f16.npy", io::npy_bytes(io::DType::F16, {2, 32}, h.data()));
  }
  return 0;
}
