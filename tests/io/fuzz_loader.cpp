// libFuzzer target for every loader of untrusted bytes: safetensors headers, AnyBCQ tensor metadata and
// entries (then a full load and dequantize), and .npy headers. Any anybcq::Error is an accepted outcome;
// a crash, sanitizer report, leak, hang or any other exception type is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/io/bcq_tensor.hpp"
#include "anybcq/io/npy.hpp"
#include "anybcq/io/safetensors.hpp"
#include "anybcq/layout/interleaved.hpp"

using namespace anybcq;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const io::SafetensorsReader r = io::SafetensorsReader::from_memory(data, size, "fuzz");
    for (const io::TensorInfo& t : r.tensors())
      if (io::is_float_dtype(t.dtype) && t.numel() <= (1 << 16)) (void)r.read_float(t);
    for (const io::BcqTensorInfo& info : io::bcq_tensors(r)) {
      const auto w = io::load_bcq_tensor<layout::PlaneMajor, half_t>(r, info.name);
      const auto wi = io::load_bcq_tensor<layout::Interleaved, float>(r, info.name);
      if (w.rows() * w.cols() <= (1 << 16)) {
        std::vector<float> out(static_cast<std::size_t>(w.rows() * w.cols()));
        for (int p = w.p_min(); p <= w.p_max(); ++p) {
          cpu::dequantize(w.view(p), out.data());
          cpu::dequantize(wi.view(p), out.data());
        }
      }
    }
  } catch (const Error&) {
  }
  try {
    const io::NpyArray a = io::NpyArray::from_memory(data, size, "fuzz");
    if (a.numel() <= (1 << 16)) (void)a.read_float();
  } catch (const Error&) {
  }
  return 0;
}
