// AnyBCQ — multi-precision BCQ weights stored as safetensors entries plus JSON metadata
// (specified in docs/format.md). For a weight called NAME the file holds:
//   NAME.bcq_planes   I32 bit-planes ([P, M, K/32] for layout "pmk32", [K/32, P, M] for "kpm32")
//   NAME.bcq_alpha.pP  scales α^p as [G, p, M] for every p in p_min..p_max (scale dtype)
//   NAME.bcq_beta.pP   offsets β^p as [G, M] (absent when symmetric)
//   __metadata__["anybcq.NAME"] = {"format_version":1,"layout":..,"rows":M,"cols":K,"group":g,
//       "p_min":..,"p_max":..,"symmetric":..,"scale_dtype":..,"original_dtype":..,"original_shape":[M,K]}
#pragma once
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/weights.hpp"
#include "anybcq/io/dtype.hpp"
#include "anybcq/io/safetensors.hpp"
#include "anybcq/layout/interleaved.hpp"
#include "anybcq/layout/pack.hpp"
#include "anybcq/layout/plane_major.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace io {

//! Version written to and required in every AnyBCQ tensor's metadata.
inline constexpr int kBcqFormatVersion = 1;
//! Metadata key holding the format version of the file as a whole.
inline constexpr const char* kBcqFormatKey = "anybcq_format_version";
//! Largest M or K the loader accepts (keeps every derived size far from overflow).
inline constexpr index_t kMaxBcqExtent = index_t(1) << 32;

//! Entry names of the pieces of quantized weight `name`.
inline std::string bcq_planes_name(const std::string& name) { return name + ".bcq_planes"; }
inline std::string bcq_alpha_name(const std::string& name, int p) { return name + ".bcq_alpha.p" + std::to_string(p); }
inline std::string bcq_beta_name(const std::string& name, int p) { return name + ".bcq_beta.p" + std::to_string(p); }
//! Metadata key holding the JSON description of quantized weight `name`.
inline std::string bcq_meta_key(const std::string& name) { return "anybcq." + name; }

//! If `entry` is a piece of a quantized weight (planes, alpha or beta), its weight's name; else "".
inline std::string bcq_owner(const std::string& entry) {
  static const char* const kSuffixes[] = {".bcq_planes", ".bcq_alpha.p", ".bcq_beta.p"};
  for (const char* s : kSuffixes) {
    const std::size_t pos = entry.rfind(s);
    if (pos == std::string::npos || pos == 0) continue;
    const std::string tail = entry.substr(pos + std::strlen(s));
    const bool planes = std::strcmp(s, ".bcq_planes") == 0;
    bool ok = planes ? tail.empty() : (!tail.empty() && tail.size() <= 2);
    for (char c : tail) ok = ok && c >= '0' && c <= '9';
    if (ok) return entry.substr(0, pos);
  }
  return {};
}

//! Description of one quantized weight in a file (from its metadata, checked against its entries).
struct BcqTensorInfo {
  std::string name;
  BcqShape shape;
  std::string layout;  //!< "pmk32" (layout::PlaneMajor) or "kpm32" (layout::Interleaved)
  DType scale_dtype = DType::F16;
  DType original_dtype = DType::F16;
  std::vector<index_t> original_shape;
  int format_version = kBcqFormatVersion;

  //! Bytes a call at precision p reads: p planes + α^p (+ β^p).
  index_t bytes(int p) const {
    return shape.rows * (shape.cols / kWordBits) * 4 * p +
           shape.rows * shape.groups() * (p + (shape.symmetric ? 0 : 1)) * index_t(dtype_size(scale_dtype));
  }
  //! Bytes stored for every precision.
  index_t storage_bytes() const {
    index_t s = shape.rows * (shape.cols / kWordBits) * 4 * shape.p_max;
    for (int p = shape.p_min; p <= shape.p_max; ++p)
      s += shape.rows * shape.groups() * (p + (shape.symmetric ? 0 : 1)) * index_t(dtype_size(scale_dtype));
    return s;
  }
  //! Expected shape of the planes entry.
  std::vector<index_t> planes_shape() const {
    const index_t kw = shape.cols / kWordBits;
    if (layout == layout::Interleaved::name()) return {kw, shape.p_max, shape.rows};
    return {shape.p_max, shape.rows, kw};
  }
};

namespace detail {

template <class Scale>
constexpr DType scale_dtype_of() {
  return dtype_of<Scale>();
}

inline const nlohmann::json& meta_field(const nlohmann::json& j, const char* key, const std::string& what) {
  ANYBCQ_REQUIRE(j.contains(key), what, ": metadata lacks \"", key, "\"");
  return j[key];
}

inline index_t meta_int(const nlohmann::json& j, const char* key, index_t lo, index_t hi, const std::string& what) {
  const nlohmann::json& v = meta_field(j, key, what);
  ANYBCQ_REQUIRE(v.is_number_integer(), what, ": metadata \"", key, "\" is ", v.dump(), "; it must be an integer");
  const bool in_range = v.is_number_unsigned() ? v.get<std::uint64_t>() <= std::uint64_t(hi) &&
                                                     index_t(v.get<std::uint64_t>()) >= lo
                                               : v.get<std::int64_t>() >= lo && v.get<std::int64_t>() <= hi;
  ANYBCQ_REQUIRE(in_range, what, ": metadata \"", key, "\" = ", v.dump(), " is outside ", lo, "..", hi);
  return v.is_number_unsigned() ? index_t(v.get<std::uint64_t>()) : index_t(v.get<std::int64_t>());
}

inline DType meta_dtype(const nlohmann::json& j, const char* key, const std::string& what) {
  const nlohmann::json& v = meta_field(j, key, what);
  DType t{};
  ANYBCQ_REQUIRE(v.is_string() && parse_dtype(v.get<std::string>(), t), what, ": metadata \"", key, "\" = ",
                 v.dump(), " is not a dtype name");
  return t;
}

inline void require_entry(const SafetensorsReader& r, const std::string& entry, const std::vector<DType>& dtypes,
                          const std::vector<index_t>& shape, const std::string& what) {
  const TensorInfo* t = r.find(entry);
  ANYBCQ_REQUIRE(t != nullptr, what, ": entry \"", entry, "\" is missing");
  bool dt_ok = false;
  for (DType d : dtypes) dt_ok = dt_ok || t->dtype == d;
  ANYBCQ_REQUIRE(dt_ok, what, ": entry \"", entry, "\" has dtype ", dtype_name(t->dtype), ", expected ",
                 dtype_name(dtypes[0]));
  ANYBCQ_REQUIRE(t->shape == shape, what, ": entry \"", entry, "\" has shape ", shape_string(t->shape),
                 " but the metadata implies ", shape_string(shape));
}

}  // namespace detail

//! Parses and checks the metadata and entries of quantized weight `name` in `r`.
inline BcqTensorInfo bcq_tensor_info(const SafetensorsReader& r, const std::string& name) {
  const std::string what = r.origin() + ": quantized weight \"" + name + "\"";
  auto mit = r.metadata().find(bcq_meta_key(name));
  ANYBCQ_REQUIRE(mit != r.metadata().end(), what, ": no metadata key \"", bcq_meta_key(name), "\"");
  const std::string& text = mit->second;
  const nlohmann::json j = detail::parse_json_strict(text.data(), text.data() + text.size(), what, 2);
  ANYBCQ_REQUIRE(j.is_object(), what, ": metadata is not a JSON object");
  BcqTensorInfo info;
  info.name = name;
  info.format_version = int(detail::meta_int(j, "format_version", 0, 1 << 30, what));
  ANYBCQ_REQUIRE(info.format_version == kBcqFormatVersion, what, ": format_version ", info.format_version,
                 " is not supported (this reader knows version ", kBcqFormatVersion, ")");
  const nlohmann::json& lay = detail::meta_field(j, "layout", what);
  ANYBCQ_REQUIRE(lay.is_string() && (lay.get<std::string>() == layout::PlaneMajor::name() ||
                                     lay.get<std::string>() == layout::Interleaved::name()),
                 what, ": layout ", lay.dump(), " is unknown (known: \"pmk32\", \"kpm32\")");
  info.layout = lay.get<std::string>();
  info.shape.rows = detail::meta_int(j, "rows", 1, kMaxBcqExtent, what);
  info.shape.cols = detail::meta_int(j, "cols", 1, kMaxBcqExtent, what);
  info.shape.group = detail::meta_int(j, "group", 1, kMaxBcqExtent, what);
  info.shape.p_min = int(detail::meta_int(j, "p_min", 1, kMaxBits, what));
  info.shape.p_max = int(detail::meta_int(j, "p_max", 1, kMaxBits, what));
  const nlohmann::json& sym = detail::meta_field(j, "symmetric", what);
  ANYBCQ_REQUIRE(sym.is_boolean(), what, ": metadata \"symmetric\" must be true or false");
  info.shape.symmetric = sym.get<bool>();
  try {
    validate(info.shape);
  } catch (const Error& e) {
    ::anybcq::detail::throw_error(what, ": ", e.what());
  }
  info.scale_dtype = detail::meta_dtype(j, "scale_dtype", what);
  ANYBCQ_REQUIRE(info.scale_dtype == DType::F16 || info.scale_dtype == DType::BF16 || info.scale_dtype == DType::F32,
                 what, ": scale_dtype ", dtype_name(info.scale_dtype), " is not F16, BF16 or F32");
  info.original_dtype = detail::meta_dtype(j, "original_dtype", what);
  ANYBCQ_REQUIRE(is_float_dtype(info.original_dtype), what, ": original_dtype ", dtype_name(info.original_dtype),
                 " is not a floating-point dtype");
  const nlohmann::json& os = detail::meta_field(j, "original_shape", what);
  ANYBCQ_REQUIRE(os.is_array() && os.size() == 2 && os[0].is_number_integer() && os[1].is_number_integer() &&
                     os[0] == info.shape.rows && os[1] == info.shape.cols,
                 what, ": original_shape ", os.dump(), " disagrees with rows x cols = [", info.shape.rows, ", ",
                 info.shape.cols, "]");
  info.original_shape = {info.shape.rows, info.shape.cols};
  ANYBCQ_REQUIRE(r.find(name) == nullptr, what, ": the file also holds a plain tensor of the same name");

  const index_t M = info.shape.rows, G = info.shape.groups();
  detail::require_entry(r, bcq_planes_name(name), {DType::I32, DType::U32}, info.planes_shape(), what);
  for (int p = info.shape.p_min; p <= info.shape.p_max; ++p) {
    detail::require_entry(r, bcq_alpha_name(name, p), {info.scale_dtype}, {G, p, M}, what);
    if (!info.shape.symmetric) {
      detail::require_entry(r, bcq_beta_name(name, p), {info.scale_dtype}, {G, M}, what);
    } else {
      ANYBCQ_REQUIRE(r.find(bcq_beta_name(name, p)) == nullptr, what, ": symmetric weight has an offset entry \"",
                     bcq_beta_name(name, p), "\"");
    }
  }
  return info;
}

//! Every quantized weight in `r`, in data order; throws if any metadata or entry is inconsistent,
//! including AnyBCQ entries that belong to no described weight.
inline std::vector<BcqTensorInfo> bcq_tensors(const SafetensorsReader& r) {
  std::vector<BcqTensorInfo> out;
  std::set<std::string> described;
  for (const auto& kv : r.metadata()) {
    if (kv.first.rfind("anybcq.", 0) != 0) continue;
    const std::string name = kv.first.substr(7);
    ANYBCQ_REQUIRE(!name.empty(), r.origin(), ": metadata key \"anybcq.\" names no weight");
    described.insert(name);
  }
  std::set<std::string> done;
  for (const TensorInfo& t : r.tensors()) {
    const std::string owner = bcq_owner(t.name);
    if (owner.empty()) continue;
    ANYBCQ_REQUIRE(described.count(owner), r.origin(), ": entry \"", t.name, "\" belongs to quantized weight \"",
                   owner, "\", which has no metadata key \"", bcq_meta_key(owner), "\"");
    if (!done.insert(owner).second) continue;
    out.push_back(bcq_tensor_info(r, owner));
  }
  for (const std::string& n : described) {
    if (!done.count(n)) out.push_back(bcq_tensor_info(r, n));  // throws: its entries are missing
  }
  // Entries that match a weight's suffix pattern but lie outside its p range.
  for (const TensorInfo& t : r.tensors()) {
    const std::string owner = bcq_owner(t.name);
    if (owner.empty()) continue;
    bool known = t.name == bcq_planes_name(owner);
    for (const BcqTensorInfo& b : out) {
      if (b.name != owner) continue;
      for (int p = b.shape.p_min; p <= b.shape.p_max; ++p)
        known = known || t.name == bcq_alpha_name(owner, p) || (!b.shape.symmetric && t.name == bcq_beta_name(owner, p));
    }
    ANYBCQ_REQUIRE(known, r.origin(), ": entry \"", t.name, "\" lies outside the precision range of \"", owner, "\"");
  }
  return out;
}

namespace detail {
template <class Scale>
void read_scales(const SafetensorsReader& r, const TensorInfo& t, Scale* dst) {
  const std::size_t n = static_cast<std::size_t>(t.numel());
  if (t.dtype == dtype_of<Scale>()) {
    if (n) std::memcpy(dst, r.data(t), n * sizeof(Scale));
    return;
  }
  std::vector<float> tmp(n);
  convert_to_float(t.dtype, r.data(t), n, tmp.data());
  for (std::size_t i = 0; i < n; ++i) dst[i] = from_float<Scale>(tmp[i]);
}
}  // namespace detail

//! Loads quantized weight `name` into Layout/Scale (planes repacked, scales converted through float
//! when the file's layout or scale dtype differ). All sizes are checked before anything is read.
template <class Layout = layout::PlaneMajor, class Scale = half_t>
MultiPrecisionWeights<Layout, Scale> load_bcq_tensor(const SafetensorsReader& r, const std::string& name,
                                                    BcqTensorInfo* info_out = nullptr) {
  const BcqTensorInfo info = bcq_tensor_info(r, name);
  MultiPrecisionWeights<Layout, Scale> w(info.shape);
  const TensorInfo& pt = r.at(bcq_planes_name(name));
  const index_t M = info.shape.rows, K = info.shape.cols;
  const int P = info.shape.p_max;
  if (info.layout == Layout::name()) {
    std::memcpy(w.planes().data(), r.data(pt), w.planes().size() * 4);
  } else {
    const std::vector<std::uint32_t> src = r.read<std::uint32_t>(pt);
    if (info.layout == layout::PlaneMajor::name())
      layout::repack(layout::make<layout::PlaneMajor>(M, K, P), src.data(), w.layout(), w.planes().data());
    else
      layout::repack(layout::make<layout::Interleaved>(M, K, P), src.data(), w.layout(), w.planes().data());
  }
  const layout::ScaleLayout& sl = w.scale_layout();
  for (int p = info.shape.p_min; p <= info.shape.p_max; ++p) {
    detail::read_scales(r, r.at(bcq_alpha_name(name, p)), w.alpha().data() + sl.alpha_base(p));
    if (!info.shape.symmetric) detail::read_scales(r, r.at(bcq_beta_name(name, p)), w.beta().data() + sl.beta_base(p));
  }
  if (info_out) *info_out = info;
  return w;
}

namespace detail {
inline void check_bcq_name(const std::string& name, DType original_dtype) {
  ANYBCQ_REQUIRE(is_float_dtype(original_dtype), "quantized weight \"", name, "\": original dtype ",
                 dtype_name(original_dtype), " is not floating-point");
  ANYBCQ_REQUIRE(!name.empty() && bcq_owner(name).empty(), "quantized weight name \"", name,
                 "\" is empty or ends like an AnyBCQ entry");
}
//! The storage layout a Layout is written in: itself for PlaneMajor/Interleaved, else PlaneMajor.
template <class Layout>
using stored_layout_t = std::conditional_t<std::is_same_v<Layout, layout::Interleaved>, layout::Interleaved,
                                           layout::PlaneMajor>;
}  // namespace detail

//! The metadata JSON text of a quantized weight (see docs/format.md).
inline std::string bcq_metadata(const BcqShape& s, const std::string& layout_name, DType scale_dtype,
                                DType original_dtype) {
  const nlohmann::json meta = {{"format_version", kBcqFormatVersion},
                               {"layout", layout_name},
                               {"rows", s.rows},
                               {"cols", s.cols},
                               {"group", s.group},
                               {"p_min", s.p_min},
                               {"p_max", s.p_max},
                               {"symmetric", s.symmetric},
                               {"scale_dtype", dtype_name(scale_dtype)},
                               {"original_dtype", dtype_name(original_dtype)},
                               {"original_shape", {s.rows, s.cols}}};
  return meta.dump();
}

//! Declares quantized weight `name` of shape `s`, whose data come from `make()` (returning a
//! MultiPrecisionWeights<Layout, Scale> of that shape). make() runs once, when the writer reaches the
//! planes entry; the result is released after the weight's last entry is written. This lets a converter
//! stream a whole model through the writer with one quantized weight in memory at a time.
template <class Layout, class Scale, class Make>
void add_bcq_tensor_deferred(SafetensorsWriter& out, const std::string& name, const BcqShape& s, DType original_dtype,
                             Make make) {
  using Stored = detail::stored_layout_t<Layout>;
  using W = MultiPrecisionWeights<Stored, Scale>;
  detail::check_bcq_name(name, original_dtype);
  validate(s);
  const index_t M = s.rows, G = s.groups(), kw = s.cols / kWordBits;
  auto slot = std::make_shared<std::unique_ptr<W>>();
  auto get = [slot, s, name]() -> const W& {
    ANYBCQ_REQUIRE(*slot != nullptr, "quantized weight \"", name, "\": entries written out of order");
    return **slot;
  };
  const std::string last = s.symmetric ? bcq_alpha_name(name, s.p_max) : bcq_beta_name(name, s.p_max);
  auto bytes_of = [](const auto* p, std::size_t n) {
    std::vector<std::uint8_t> b(n * sizeof(*p));
    if (!b.empty()) std::memcpy(b.data(), p, b.size());
    return b;
  };
  std::vector<index_t> pshape =
      std::is_same_v<Stored, layout::Interleaved> ? std::vector<index_t>{kw, s.p_max, M} : std::vector<index_t>{s.p_max, M, kw};
  out.add_deferred(bcq_planes_name(name), DType::I32, std::move(pshape), [slot, s, name, make, bytes_of]() mutable {
    auto w = make();
    const BcqShape& ws = w.shape();
    ANYBCQ_REQUIRE(ws.rows == s.rows && ws.cols == s.cols && ws.group == s.group && ws.p_min == s.p_min &&
                       ws.p_max == s.p_max && ws.symmetric == s.symmetric,
                   "quantized weight \"", name, "\": the producer returned a different shape than declared");
    if constexpr (std::is_same_v<typename decltype(w)::layout_type, Stored>) {
      *slot = std::make_unique<W>(std::move(w));
    } else {
      *slot = std::make_unique<W>(w.template convert<Stored>());
    }
    return bytes_of((*slot)->planes().data(), (*slot)->planes().size());
  });
  for (int p = s.p_min; p <= s.p_max; ++p) {
    const bool free_a = bcq_alpha_name(name, p) == last, free_b = bcq_beta_name(name, p) == last;
    out.add_deferred(bcq_alpha_name(name, p), dtype_of<Scale>(), {G, p, M}, [slot, get, p, free_a, bytes_of] {
      const W& w = get();
      auto b = bytes_of(w.alpha().data() + w.scale_layout().alpha_base(p), std::size_t(w.scale_layout().alpha_base(p + 1) - w.scale_layout().alpha_base(p)));
      if (free_a) slot->reset();
      return b;
    });
    if (!s.symmetric)
      out.add_deferred(bcq_beta_name(name, p), dtype_of<Scale>(), {G, M}, [slot, get, p, free_b, bytes_of] {
        const W& w = get();
        auto b = bytes_of(w.beta().data() + w.scale_layout().beta_base(p), std::size_t(w.rows() * w.shape().groups()));
        if (free_b) slot->reset();
        return b;
      });
  }
  out.set_metadata(bcq_meta_key(name), bcq_metadata(s, Stored::name(), dtype_of<Scale>(), original_dtype));
  out.set_metadata(kBcqFormatKey, std::to_string(kBcqFormatVersion));
}

//! Adds quantized weight `name` (planes, every α^p and β^p, metadata) to `out`, copying its data.
//! Layouts other than PlaneMajor and Interleaved are stored as PlaneMajor.
template <class Layout, class Scale>
void add_bcq_tensor(SafetensorsWriter& out, const std::string& name, const MultiPrecisionWeights<Layout, Scale>& w,
                    DType original_dtype) {
  using Stored = detail::stored_layout_t<Layout>;
  detail::check_bcq_name(name, original_dtype);
  if constexpr (!std::is_same_v<Layout, Stored>) {
    add_bcq_tensor(out, name, w.template convert<Stored>(), original_dtype);
  } else {
    const BcqShape& s = w.shape();
    const index_t M = s.rows, G = s.groups(), kw = s.cols / kWordBits;
    std::vector<index_t> pshape = std::is_same_v<Layout, layout::Interleaved>
                                      ? std::vector<index_t>{kw, s.p_max, M}
                                      : std::vector<index_t>{s.p_max, M, kw};
    std::vector<std::uint8_t> pb(w.planes().size() * 4);
    if (!pb.empty()) std::memcpy(pb.data(), w.planes().data(), pb.size());
    out.add(bcq_planes_name(name), DType::I32, std::move(pshape), std::move(pb));
    const layout::ScaleLayout& sl = w.scale_layout();
    for (int p = s.p_min; p <= s.p_max; ++p) {
      out.add_copy(bcq_alpha_name(name, p), {G, p, M}, w.alpha().data() + sl.alpha_base(p));
      if (!s.symmetric) out.add_copy(bcq_beta_name(name, p), {G, M}, w.beta().data() + sl.beta_base(p));
    }
    out.set_metadata(bcq_meta_key(name), bcq_metadata(s, Layout::name(), dtype_of<Scale>(), original_dtype));
    out.set_metadata(kBcqFormatKey, std::to_string(kBcqFormatVersion));
  }
}

}  // namespace io
ANYBCQ_NAMESPACE_END
