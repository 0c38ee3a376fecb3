// AnyBCQ — safetensors reader (memory-mapped, validated against hostile input) and writer.
// Format: u64 little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data section; offsets are relative to the data section start.
#pragma once
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/io/dtype.hpp"
#include "anybcq/io/mapped_file.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace io {

//! Largest header the reader accepts (the safetensors specification's limit).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
//! Largest tensor rank the reader accepts.
inline constexpr std::size_t kMaxRank = 32;

//! One tensor entry of a safetensors header.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<index_t> shape;
  std::uint64_t begin = 0;  //!< byte offset in the data section
  std::uint64_t end = 0;    //!< one past the last byte

  std::uint64_t nbytes() const { return end - begin; }
  //! Number of elements (validated at load time not to overflow).
  index_t numel() const {
    index_t n = 1;
    for (index_t d : shape) n *= d;
    return n;
  }
};

namespace detail {

inline std::string shape_string(const std::vector<index_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

//! Element count of `shape` times `elem` bytes; false on overflow or a negative extent.
inline bool checked_nbytes(const std::vector<index_t>& shape, std::size_t elem, std::uint64_t& out) {
  std::uint64_t n = elem;
  for (index_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return false;
  }
  out = n;
  return true;
}

//! Parses JSON text, rejecting duplicate keys in any object and nesting deeper than `max_depth`.
inline nlohmann::json parse_json_strict(const char* first, const char* last, const std::string& origin,
                                        int max_depth) {
  std::vector<std::unordered_map<std::string, int>> seen;  // keys of each open object
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) -> bool {
    using E = nlohmann::json::parse_event_t;
    if (depth > max_depth)
      ::anybcq::detail::throw_error("anybcq: ", origin, ": JSON nesting deeper than ", max_depth,
                                    " levels; this header format never nests that deep");
    if (ev == E::object_start) {
      seen.emplace_back();
    } else if (ev == E::object_end) {
      if (!seen.empty()) seen.pop_back();
    } else if (ev == E::key && !seen.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!seen.back().emplace(k, 0).second)
        ::anybcq::detail::throw_error("anybcq: ", origin, ": duplicate key \"", k,
                                      "\" in a JSON object; every name must appear once");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(first, last, cb, /*allow_exceptions=*/true);
  } catch (const nlohmann::json::exception& e) {
    ::anybcq::detail::throw_error("anybcq: ", origin, ": malformed JSON: ", e.what());
  }
}

inline std::uint64_t json_u64(const nlohmann::json& v, const std::string& what) {
  ANYBCQ_REQUIRE(v.is_number_integer(), what, " is ", v.dump(), "; it must be a non-negative integer");
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  const auto s = v.get<std::int64_t>();
  ANYBCQ_REQUIRE(s >= 0, what, " is ", s, "; it must be a non-negative integer");
  return static_cast<std::uint64_t>(s);
}

}  // namespace detail

//! A parsed safetensors file: tensor index and metadata over a byte range it maps or borrows.
//! Every offset, size and shape is checked when the file is opened; afterwards data(t) is safe.
class SafetensorsReader {
 public:
  SafetensorsReader() = default;

  //! Memory-maps and validates `path`.
  static SafetensorsReader open(const std::string& path) {
    SafetensorsReader r;
    r.file_ = MappedFile(path);
    r.parse(r.file_.data(), r.file_.size(), path);
    return r;
  }
  //! Validates `size` bytes at `data` (borrowed: they must outlive the reader).
  static SafetensorsReader from_memory(const std::uint8_t* data, std::size_t size,
                                       const std::string& origin = "<memory>") {
    SafetensorsReader r;
    r.parse(data, size, origin);
    return r;
  }

  const std::string& origin() const { return origin_; }
  //! Tensors in data-section order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  //! The string-to-string "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  //! The tensor called `name`, or nullptr.
  const TensorInfo* find(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
  }
  //! The tensor called `name`; throws if absent.
  const TensorInfo& at(std::string_view name) const {
    const TensorInfo* t = find(name);
    ANYBCQ_REQUIRE(t != nullptr, origin_, ": no tensor named \"", name, "\"");
    return *t;
  }
  //! First byte of `t`'s data (any alignment; nullptr only for an empty data section).
  const std::uint8_t* data(const TensorInfo& t) const { return data_ + t.begin; }
  //! Size of the data section in bytes.
  std::uint64_t data_size() const { return data_size_; }

  //! `t` converted to float (dtype F32, F16, BF16 or F64).
  std::vector<float> read_float(const TensorInfo& t) const {
    ANYBCQ_REQUIRE(is_float_dtype(t.dtype), origin_, ": tensor \"", t.name, "\" has dtype ", dtype_name(t.dtype),
                   "; a floating-point tensor (F32, F16, BF16, F64) is needed here");
    std::vector<float> out(static_cast<std::size_t>(t.numel()));
    convert_to_float(t.dtype, data(t), out.size(), out.data());
    return out;
  }
  //! `t` copied as elements of T; its dtype must be dtype_of<T>() (or I32 for U32 and back).
  template <class T>
  std::vector<T> read(const TensorInfo& t) const {
    const DType want = dtype_of<T>();
    const bool ok = t.dtype == want || (dtype_size(want) == 4 && (want == DType::U32 || want == DType::I32) &&
                                        (t.dtype == DType::U32 || t.dtype == DType::I32));
    ANYBCQ_REQUIRE(ok, origin_, ": tensor \"", t.name, "\" has dtype ", dtype_name(t.dtype), ", expected ",
                   dtype_name(want));
    std::vector<T> out(static_cast<std::size_t>(t.numel()));
    if (!out.empty()) std::memcpy(out.data(), data(t), out.size() * sizeof(T));
    return out;
  }

 private:
  void parse(const std::uint8_t* base, std::size_t size, const std::string& origin) {
    origin_ = origin;
    ANYBCQ_REQUIRE(size >= 8, origin, ": file is ", size,
                   " bytes; a safetensors file starts with an 8-byte header length");
    std::uint64_t n = 0;
    std::memcpy(&n, base, 8);
    ANYBCQ_REQUIRE(n <= kMaxHeaderBytes, origin, ": header length ", n, " exceeds the limit of ", kMaxHeaderBytes,
                   " bytes");
    ANYBCQ_REQUIRE(n <= size - 8, origin, ": header length ", n, " runs past the end of the file (", size,
                   " bytes)");
    ANYBCQ_REQUIRE(n >= 2 && base[8] == '{', origin, ": header does not start with a JSON object '{'");
    const char* h = reinterpret_cast<const char*>(base + 8);
    const nlohmann::json j = detail::parse_json_strict(h, h + n, origin, 3);
    ANYBCQ_REQUIRE(j.is_object(), origin, ": header is not a JSON object");
    data_ = base + 8 + n;
    data_size_ = size - 8 - n;

    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& name = it.key();
      const nlohmann::json& v = it.value();
      if (name == "__metadata__") {
        ANYBCQ_REQUIRE(v.is_object(), origin, ": \"__metadata__\" must be an object of strings");
        for (auto m = v.begin(); m != v.end(); ++m) {
          ANYBCQ_REQUIRE(m.value().is_string(), origin, ": metadata \"", m.key(), "\" is ", m.value().dump(),
                         "; metadata values must be strings");
          metadata_.emplace(m.key(), m.value().get<std::string>());
        }
        continue;
      }
      const std::string what = origin + ": tensor \"" + name + "\"";
      ANYBCQ_REQUIRE(!name.empty(), origin, ": a tensor has an empty name");
      ANYBCQ_REQUIRE(v.is_object(), what, " is not an object with dtype, shape and data_offsets");
      TensorInfo t;
      t.name = name;
      ANYBCQ_REQUIRE(v.contains("dtype") && v["dtype"].is_string(), what, " has no string \"dtype\"");
      const std::string ds = v["dtype"].get<std::string>();
      ANYBCQ_REQUIRE(parse_dtype(ds, t.dtype), what, " has unknown dtype \"", ds,
                     "\" (known: BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64)");
      ANYBCQ_REQUIRE(v.contains("shape") && v["shape"].is_array(), what, " has no \"shape\" array");
      const auto& sh = v["shape"];
      ANYBCQ_REQUIRE(sh.size() <= kMaxRank, what, " has rank ", sh.size(), "; at most ", kMaxRank, " is accepted");
      for (const auto& d : sh) {
        const std::uint64_t e = detail::json_u64(d, what + " shape extent");
        ANYBCQ_REQUIRE(e <= static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()), what,
                       " shape extent ", e, " is too large");
        t.shape.push_back(static_cast<index_t>(e));
      }
      ANYBCQ_REQUIRE(v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2,
                     what, " needs \"data_offsets\": [begin, end]");
      t.begin = detail::json_u64(v["data_offsets"][0], what + " data_offsets[0]");
      t.end = detail::json_u64(v["data_offsets"][1], what + " data_offsets[1]");
      ANYBCQ_REQUIRE(t.begin <= t.end, what, " has data_offsets [", t.begin, ", ", t.end, "] with begin > end");
      ANYBCQ_REQUIRE(t.end <= data_size_, what, " has data_offsets [", t.begin, ", ", t.end,
                     "] running past the end of the data section (", data_size_, " bytes)");
      std::uint64_t need = 0;
      ANYBCQ_REQUIRE(detail::checked_nbytes(t.shape, dtype_size(t.dtype), need), what, " shape ",
                     detail::shape_string(t.shape), " overflows a 64-bit byte count");
      ANYBCQ_REQUIRE(need == t.nbytes(), what, " has shape ", detail::shape_string(t.shape), " of ", ds, " = ", need,
                     " bytes but its data_offsets span ", t.nbytes(), " bytes");
      tensors_.push_back(std::move(t));
    }
    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t pos = 0;
    for (const TensorInfo& t : tensors_) {
      ANYBCQ_REQUIRE(t.begin >= pos, origin, ": tensor \"", t.name, "\" bytes [", t.begin, ", ", t.end,
                     ") overlap the previous tensor, which ends at ", pos);
      ANYBCQ_REQUIRE(t.begin == pos, origin, ": bytes [", pos, ", ", t.begin, ") of the data section belong to no tensor",
                     "; the data section must be fully indexed");
      pos = t.end;
    }
    ANYBCQ_REQUIRE(pos == data_size_, origin, ": the data section has ", data_size_ - pos,
                   " trailing bytes after the last tensor");
    for (std::size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
  }

  MappedFile file_;
  std::string origin_;
  const std::uint8_t* data_ = nullptr;
  std::uint64_t data_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

//! Where `path` is written before it is renamed into place (removed on failure).
inline std::string partial_path(const std::string& path) { return path + ".partial"; }

//! Collects tensors (owned bytes or borrowed pointers) and writes one safetensors file atomically.
class SafetensorsWriter {
 public:
  //! Sets a "__metadata__" entry.
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  //! Adds a tensor that owns its bytes.
  void add(const std::string& name, DType dtype, std::vector<index_t> shape, std::vector<std::uint8_t> bytes) {
    Entry e = make_entry(name, dtype, std::move(shape), bytes.size());
    e.owned = std::move(bytes);
    e.ptr = e.owned.data();
    push(std::move(e));
  }
  //! Adds a tensor whose `nbytes` bytes at `data` stay alive and unchanged until write() returns.
  void add_view(const std::string& name, DType dtype, std::vector<index_t> shape, const void* data,
                std::size_t nbytes) {
    Entry e = make_entry(name, dtype, std::move(shape), nbytes);
    e.ptr = data;
    push(std::move(e));
  }
  //! Adds a tensor whose bytes `produce()` returns when write() or serialize() reaches it (entries are
  //! produced in the order they were added, one at a time, so a large file never sits in memory whole).
  void add_deferred(const std::string& name, DType dtype, std::vector<index_t> shape,
                    std::function<std::vector<std::uint8_t>()> produce) {
    std::uint64_t nb = 0;
    ANYBCQ_REQUIRE(detail::checked_nbytes(shape, dtype_size(dtype), nb), "tensor \"", name, "\": shape overflows");
    Entry e = make_entry(name, dtype, std::move(shape), static_cast<std::size_t>(nb));
    e.produce = std::move(produce);
    push(std::move(e));
  }
  //! Adds a copy of a typed array of prod(shape) elements.
  template <class T>
  void add_copy(const std::string& name, std::vector<index_t> shape, const T* data) {
    std::uint64_t nb = 0;
    ANYBCQ_REQUIRE(detail::checked_nbytes(shape, sizeof(T), nb), "tensor \"", name, "\": shape overflows");
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(nb));
    if (nb) std::memcpy(bytes.data(), data, bytes.size());
    add(name, dtype_of<T>(), std::move(shape), std::move(bytes));
  }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  std::size_t size() const { return entries_.size(); }

  //! The length-prefixed JSON header (padded with spaces to a multiple of 8 bytes).
  std::string header() const {
    nlohmann::json j = nlohmann::json::object();
    std::uint64_t off = 0;
    for (const Entry& e : entries_) {
      j[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {off, off + e.nbytes}}};
      off += e.nbytes;
    }
    if (!metadata_.empty()) j["__metadata__"] = metadata_;
    std::string h;
    try {
      h = j.dump();
    } catch (const nlohmann::json::exception& ex) {
      ::anybcq::detail::throw_error("anybcq: cannot encode the safetensors header: ", ex.what());
    }
    while ((h.size() + 8) % 8 != 0) h.push_back(' ');
    const std::uint64_t n = h.size();
    std::string out(8, '\0');
    std::memcpy(&out[0], &n, 8);
    return out + h;
  }
  //! The whole file as bytes (for small files and tests).
  std::vector<std::uint8_t> serialize() const {
    const std::string h = header();
    std::vector<std::uint8_t> out(h.begin(), h.end());
    for (const Entry& e : entries_) {
      with_bytes(e, [&](const void* ptr) {
        const auto* p = static_cast<const std::uint8_t*>(ptr);
        out.insert(out.end(), p, p + e.nbytes);
      });
    }
    return out;
  }
  //! Writes to partial_path(path), syncs, then renames onto `path`: a reader never sees a half file.
  void write(const std::string& path) const {
    const std::string tmp = partial_path(path);
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    ANYBCQ_REQUIRE(f != nullptr, "cannot create '", tmp, "': ", std::strerror(errno));
    bool ok = true;
    int err = 0;
    try {
      const std::string h = header();
      ok = std::fwrite(h.data(), 1, h.size(), f) == h.size();
      for (const Entry& e : entries_) {
        if (!ok) break;
        with_bytes(e, [&](const void* p) { ok = e.nbytes == 0 || std::fwrite(p, 1, e.nbytes, f) == e.nbytes; });
      }
      err = errno;
    } catch (...) {  // a producer failed: leave nothing behind
      std::fclose(f);
      std::remove(tmp.c_str());
      throw;
    }
    ok = (std::fflush(f) == 0) && ok;
    ok = ok && ::fsync(fileno(f)) == 0;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      std::remove(tmp.c_str());
      ::anybcq::detail::throw_error("anybcq: writing '", tmp, "' failed: ", std::strerror(err ? err : errno));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      const int e = errno;
      std::remove(tmp.c_str());
      ::anybcq::detail::throw_error("anybcq: cannot rename '", tmp, "' to '", path, "': ", std::strerror(e));
    }
  }

 private:
  struct Entry {
    std::string name;
    DType dtype = DType::F32;
    std::vector<index_t> shape;
    std::vector<std::uint8_t> owned;
    const void* ptr = nullptr;
    std::size_t nbytes = 0;
    std::function<std::vector<std::uint8_t>()> produce;
  };
  template <class F>
  static void with_bytes(const Entry& e, F&& f) {
    if (!e.produce) {
      f(e.ptr);
      return;
    }
    const std::vector<std::uint8_t> b = e.produce();
    ANYBCQ_REQUIRE(b.size() == e.nbytes, "tensor \"", e.name, "\": producer returned ", b.size(), " bytes, expected ",
                   e.nbytes);
    f(b.data());
  }
  Entry make_entry(const std::string& name, DType dtype, std::vector<index_t> shape, std::size_t nbytes) const {
    ANYBCQ_REQUIRE(!name.empty() && name != "__metadata__", "tensor name \"", name,
                   "\" is reserved or empty");
    ANYBCQ_REQUIRE(!contains(name), "tensor \"", name, "\" added twice; names must be unique");
    std::uint64_t need = 0;
    ANYBCQ_REQUIRE(detail::checked_nbytes(shape, dtype_size(dtype), need) && need == nbytes, "tensor \"", name,
                   "\": shape ", detail::shape_string(shape), " of ", dtype_name(dtype), " needs ", need,
                   " bytes but ", nbytes, " were given");
    Entry e;
    e.name = name;
    e.dtype = dtype;
    e.shape = std::move(shape);
    e.nbytes = nbytes;
    return e;
  }
  void push(Entry&& e) {
    index_.emplace(e.name, entries_.size());
    entries_.push_back(std::move(e));
  }
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace io
ANYBCQ_NAMESPACE_END
