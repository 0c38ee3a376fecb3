// AnyBCQ tensors in safetensors: bit-exact round trips (any layout/scale type, quantizer output included)
// and metadata that disagrees with the entries rejected cleanly.
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/io/bcq_tensor.hpp"
#include "anybcq/layout/interleaved.hpp"
#include "io/test_helpers.hpp"

using namespace anybcq;
using namespace anybcq_test_io;

namespace {
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

using Cases = std::tuple<std::pair<layout::PlaneMajor, half_t>, std::pair<layout::Interleaved, half_t>,
                         std::pair<layout::PlaneMajor, bfloat16_t>, std::pair<layout::Interleaved, float>>;

TEST_CASE_TEMPLATE_DEFINE("bcq tensor: write, read and dequantize are bit-exact in every layout and scale type", TP,
                          bcq_round_trip) {
  using L = typename TP::first_type;
  using S = typename TP::second_type;
  const BcqShape shapes[] = {{37, 96, 32, 2, 4, false}, {5, 64, 64, 1, 3, true}, {16, 256, 128, 3, 3, false}};
  unsigned seed = 900;
  for (const BcqShape& s : shapes) {
    const auto w = random_weights<L, S>(s, ++seed);
    io::SafetensorsWriter wr;
    io::add_bcq_tensor(wr, "layers.0.q.weight", w, io::DType::BF16);
    std::vector<float> other(6, 1.5f);
    wr.add_copy("norm.weight", {6}, other.data());
    const std::vector<std::uint8_t> bytes = wr.serialize();
    const io::SafetensorsReader r = io::SafetensorsReader::from_memory(bytes.data(), bytes.size());

    const auto list = io::bcq_tensors(r);
    REQUIRE(list.size() == 1);
    const io::BcqTensorInfo& info = list[0];
    CHECK(info.name == "layers.0.q.weight");
    CHECK(info.original_dtype == io::DType::BF16);
    CHECK(info.layout == L::name());
    CHECK(info.scale_dtype == io::dtype_of<S>());
    CHECK(info.storage_bytes() == w.storage_bytes());
    for (int p = s.p_min; p <= s.p_max; ++p) CHECK(info.bytes(p) == w.bytes(p));

    const auto back = io::load_bcq_tensor<L, S>(r, "layers.0.q.weight");
    CHECK(back.planes() == w.planes());
    REQUIRE(back.alpha().size() == w.alpha().size());
    CHECK(std::memcmp(back.alpha().data(), w.alpha().data(), w.alpha().size() * sizeof(S)) == 0);
    CHECK(back.beta().size() == w.beta().size());
    if (!w.beta().empty()) CHECK(std::memcmp(back.beta().data(), w.beta().data(), w.beta().size() * sizeof(S)) == 0);
    // Loading into the other layout (planes repacked) and float scales gives the same weights, bit for bit.
    const auto pm = io::load_bcq_tensor<layout::PlaneMajor, float>(r, "layers.0.q.weight");
    const auto il = io::load_bcq_tensor<layout::Interleaved, S>(r, "layers.0.q.weight");
    for (int p = s.p_min; p <= s.p_max; ++p) {
      const auto ref = deq(w, p);
      CHECK(bit_equal(deq(back, p), ref));
      CHECK(bit_equal(deq(pm, p), ref));
      CHECK(bit_equal(deq(il, p), ref));
    }
  }
}
TEST_CASE_TEMPLATE_APPLY(bcq_round_trip, Cases);

namespace {
// A valid file with one 8x64 weight (g = 32, p = 2..3), rebuilt with entries dropped/added and metadata edited.
struct Fixture {
  MultiPrecisionWeights<> w = random_weights(BcqShape{8, 64, 32, 2, 3, false}, 17);
  std::vector<std::uint8_t> base;
  Fixture() {
    io::SafetensorsWriter wr;
    io::add_bcq_tensor(wr, "x", w, io::DType::F16);
    base = wr.serialize();
  }
  // Rebuild: drop entries for which `drop` holds, add `extra`, edit the metadata JSON with `edit`.
  std::string load_error(const std::function<void(nlohmann::json&)>& edit,
                         const std::function<bool(const std::string&)>& drop = {},
                         const std::function<void(io::SafetensorsWriter&)>& extra = {}) const {
    const io::SafetensorsReader r = io::SafetensorsReader::from_memory(base.data(), base.size());
    io::SafetensorsWriter wr;
    for (const io::TensorInfo& t : r.tensors())
      if (!drop || !drop(t.name)) wr.add_view(t.name, t.dtype, t.shape, r.data(t), t.nbytes());
    if (extra) extra(wr);
    for (const auto& kv : r.metadata()) {
      if (kv.first == "anybcq.x") {
        nlohmann::json j = nlohmann::json::parse(kv.second);
        if (edit) edit(j);
        wr.set_metadata(kv.first, j.dump());
      } else {
        wr.set_metadata(kv.first, kv.second);
      }
    }
    const std::vector<std::uint8_t> bytes = wr.serialize();
    return error_of([&] {
      const io::SafetensorsReader rr = io::SafetensorsReader::from_memory(bytes.data(), bytes.size());
      (void)io::bcq_tensors(rr);
      (void)io::load_bcq_tensor(rr, "x");
    });
  }
};
std::vector<std::uint8_t> zero_bytes(std::size_t n) { return std::vector<std::uint8_t>(n, 0); }
}  // namespace

TEST_CASE("bcq tensor: metadata that disagrees with the entries, or out-of-range values, is rejected") {
  const Fixture f;
  CHECK(f.load_error({}) == "<no error>");
  CHECK(has(f.load_error([](auto& j) { j["p_max"] = 9; }), "\"p_max\" = 9 is outside 1..8"));
  CHECK(has(f.load_error([](auto& j) { j["p_min"] = 0; }), "\"p_min\" = 0 is outside"));
  CHECK(has(f.load_error([](auto& j) { j["p_min"] = 3; j["p_max"] = 2; }), "exceeds p_max"));
  CHECK(has(f.load_error([](auto& j) { j["group"] = 48; }), "does not divide K = 64"));
  CHECK(has(f.load_error([](auto& j) { j["group"] = 0; }), "\"group\" = 0 is outside"));
  CHECK(has(f.load_error([](auto& j) { j["rows"] = -8; }), "\"rows\" = -8 is outside"));
  CHECK(has(f.load_error([](auto& j) { j["cols"] = 1ll << 40; }), "is outside 1..4294967296"));
  CHECK(has(f.load_error([](auto& j) { j["cols"] = 96; j["original_shape"] = {8, 96}; }), "bcq_planes\" has shape"));
  CHECK(has(f.load_error([](auto& j) { j["cols"] = 48; j["group"] = 16; j["original_shape"] = {8, 48}; }),
            "not a multiple of the layout word width"));
  CHECK(has(f.load_error([](auto& j) { j["rows"] = 9; }), "original_shape"));
  CHECK(has(f.load_error([](auto& j) { j["rows"] = 9; j["original_shape"] = {9, 64}; }), "has shape [3, 8, 2]"));
  CHECK(has(f.load_error([](auto& j) { j["format_version"] = 2; }), "format_version 2 is not supported"));
  CHECK(has(f.load_error([](auto& j) { j["layout"] = "zzz"; }), "is unknown"));
  CHECK(has(f.load_error([](auto& j) { j["layout"] = "kpm32"; }), "has shape [3, 8, 2] but the metadata implies [2, 3, 8]"));
  CHECK(has(f.load_error([](auto& j) { j["symmetric"] = "no"; }), "true or false"));
  CHECK(has(f.load_error([](auto& j) { j["symmetric"] = true; }), "symmetric weight has an offset entry"));
  CHECK(has(f.load_error([](auto& j) { j["scale_dtype"] = "F32"; }), "has dtype F16, expected F32"));
  CHECK(has(f.load_error([](auto& j) { j["scale_dtype"] = "I8"; }), "is not F16, BF16 or F32"));
  CHECK(has(f.load_error([](auto& j) { j["original_dtype"] = "I32"; }), "not a floating-point dtype"));
  CHECK(has(f.load_error([](auto& j) { j.erase("group"); }), "lacks \"group\""));
  CHECK(has(f.load_error([](auto& j) { j = nlohmann::json::array(); }), "not a JSON object"));
  CHECK(has(f.load_error({}, [](const std::string& n) { return n == "x.bcq_beta.p3"; }),
            "entry \"x.bcq_beta.p3\" is missing"));
  CHECK(has(f.load_error({}, [](const std::string& n) { return n == "x.bcq_planes"; }), "\"x.bcq_planes\" is missing"));
  CHECK(has(f.load_error({}, {}, [](io::SafetensorsWriter& w) { w.add("x.bcq_alpha.p4", io::DType::F16, {2, 4, 8}, zero_bytes(128)); }),
            "outside the precision range"));
  CHECK(has(f.load_error({}, {}, [](io::SafetensorsWriter& w) { w.add("y.bcq_planes", io::DType::I32, {1}, zero_bytes(4)); }),
            "has no metadata key \"anybcq.y\""));
  CHECK(has(f.load_error({}, {}, [](io::SafetensorsWriter& w) { w.add("x", io::DType::F16, {1}, zero_bytes(2)); }),
            "plain tensor of the same name"));
  // Metadata text that is not JSON at all.
  {
    const io::SafetensorsReader r = io::SafetensorsReader::from_memory(f.base.data(), f.base.size());
    io::SafetensorsWriter wr;
    for (const io::TensorInfo& t : r.tensors()) wr.add_view(t.name, t.dtype, t.shape, r.data(t), t.nbytes());
    wr.set_metadata("anybcq.x", "{\"rows\": 8,");
    const auto b = wr.serialize();
    CHECK(has(error_of([&] {
                (void)io::bcq_tensors(io::SafetensorsReader::from_memory(b.data(), b.size()));
              }),
              "malformed JSON"));
  }
}

TEST_CASE("bcq tensor: entry names map back to their weight") {
  CHECK(io::bcq_owner("a.b.weight.bcq_planes") == "a.b.weight");
  CHECK(io::bcq_owner("a.weight.bcq_alpha.p3") == "a.weight");
  CHECK(io::bcq_owner("a.weight.bcq_beta.p12") == "a.weight");
  CHECK(io::bcq_owner("a.weight.bcq_beta.p") == "");
  CHECK(io::bcq_owner("a.weight.bcq_beta.px") == "");
  CHECK(io::bcq_owner("a.weight") == "");
  CHECK(io::bcq_owner(".bcq_planes") == "");
}

TEST_CASE_TEMPLATE("bcq tensor: deferred (streamed) entries produce the same file as eager ones", L, layout::PlaneMajor,
                   layout::Interleaved) {
  for (const BcqShape& s : {BcqShape{9, 64, 32, 2, 4, false}, BcqShape{4, 96, 96, 1, 2, true}}) {
    const auto w = random_weights<L, half_t>(s, 31);
    io::SafetensorsWriter eager, lazy;
    std::vector<float> n(3, 2.0f);
    eager.add_copy("n", {3}, n.data());
    lazy.add_copy("n", {3}, n.data());
    io::add_bcq_tensor(eager, "q", w, io::DType::F16);
    int calls = 0;
    io::add_bcq_tensor_deferred<L, half_t>(lazy, "q", s, io::DType::F16, [&] {
      ++calls;
      return w;
    });
    eager.add_copy("z", {3}, n.data());
    lazy.add_copy("z", {3}, n.data());
    CHECK(eager.serialize() == lazy.serialize());
    CHECK(calls == 1);
  }
}

TEST_CASE("bcq tensor: a failing producer leaves neither the output nor its temporary behind") {
  TempDir dir;
  const BcqShape s{4, 32, 32, 2, 2, false};
  io::SafetensorsWriter w;
  io::add_bcq_tensor_deferred<layout::PlaneMajor, half_t>(w, "q", s, io::DType::F16, []() -> MultiPrecisionWeights<> {
    throw Error("anybcq: producer failed on purpose");
  });
  const std::string path = dir.file("out.safetensors");
  CHECK(error_of([&] { w.write(path); }) == "anybcq: producer failed on purpose");
  CHECK(std::fopen(path.c_str(), "rb") == nullptr);
  CHECK(std::fopen(io::partial_path(path).c_str(), "rb") == nullptr);
  // A producer that returns a weight of another shape is caught too.
  io::SafetensorsWriter w2;
  io::add_bcq_tensor_deferred<layout::PlaneMajor, half_t>(w2, "q", s, io::DType::F16,
                                                          [] { return random_weights(BcqShape{4, 64, 32, 2, 2, false}, 1); });
  CHECK(error_of([&] { (void)w2.serialize(); }).find("different shape") != std::string::npos);
}
