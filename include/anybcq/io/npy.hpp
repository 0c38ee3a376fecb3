// AnyBCQ — NumPy .npy files holding one float32/float16 array (single matrices on the command line).
// Format: "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2/v3), a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (M, K), } padded to 64 bytes, then the raw data.
#pragma once
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/io/dtype.hpp"
#include "anybcq/io/mapped_file.hpp"
#include "anybcq/io/safetensors.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace io {

namespace detail {

//! Parser for the subset of Python literals an .npy header uses.
class NpyHeaderParser {
 public:
  NpyHeaderParser(const char* p, std::size_t n, const std::string& origin) : p_(p), end_(p + n), origin_(origin) {}

  void parse(std::string& descr, bool& fortran, std::vector<index_t>& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') {
        ++p_;
        break;
      }
      const std::string key = str();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        descr = str();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = boolean();
        have_fortran = true;
      } else if (key == "shape") {
        shape = tuple();
        have_shape = true;
      } else {
        fail("unknown header key '" + key + "'");
      }
      ws();
      if (peek() == ',') {
        ++p_;
      } else {
        ws();
        expect('}');
        break;
      }
    }
    if (!have_descr || !have_fortran || !have_shape) fail("header lacks 'descr', 'fortran_order' or 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    ::anybcq::detail::throw_error("anybcq: ", origin_, ": malformed .npy header: ", why);
  }
  char peek() const { return p_ < end_ ? *p_ : '\0'; }
  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  void expect(char c) {
    ws();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++p_;
  }
  std::string str() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++p_;
    std::string s;
    while (p_ < end_ && *p_ != q) {
      if (s.size() > 64) fail("string too long");
      s.push_back(*p_++);
    }
    if (p_ >= end_) fail("unterminated string");
    ++p_;
    return s;
  }
  bool boolean() {
    auto match = [&](const char* w) {
      const std::size_t n = std::strlen(w);
      if (std::size_t(end_ - p_) >= n && std::memcmp(p_, w, n) == 0) {
        p_ += n;
        return true;
      }
      return false;
    };
    if (match("True")) return true;
    if (match("False")) return false;
    fail("expected True or False");
  }
  std::vector<index_t> tuple() {
    expect('(');
    std::vector<index_t> out;
    for (;;) {
      ws();
      if (peek() == ')') {
        ++p_;
        return out;
      }
      if (peek() < '0' || peek() > '9') fail("shape entries must be non-negative integers");
      std::uint64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (std::uint64_t(std::numeric_limits<index_t>::max()) - 9) / 10) fail("shape entry too large");
        v = v * 10 + std::uint64_t(*p_++ - '0');
      }
      if (out.size() >= kMaxRank) fail("too many dimensions");
      out.push_back(index_t(v));
      ws();
      if (peek() == ',') {
        ++p_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in shape");
      }
    }
  }
  const char* p_;
  const char* end_;
  const std::string& origin_;
};

}  // namespace detail

//! A validated .npy array (C order, little-endian F32 or F16), memory-mapped or borrowed.
class NpyArray {
 public:
  //! Maps and validates `path`.
  static NpyArray open(const std::string& path) {
    NpyArray a;
    a.file_ = MappedFile(path);
    a.parse(a.file_.data(), a.file_.size(), path);
    return a;
  }
  //! Validates `size` bytes at `data` (borrowed).
  static NpyArray from_memory(const std::uint8_t* data, std::size_t size, const std::string& origin = "<memory>") {
    NpyArray a;
    a.parse(data, size, origin);
    return a;
  }
  DType dtype() const { return dtype_; }
  const std::vector<index_t>& shape() const { return shape_; }
  index_t numel() const {
    index_t n = 1;
    for (index_t d : shape_) n *= d;
    return n;
  }
  const std::uint8_t* data() const { return data_; }
  //! The array converted to float.
  std::vector<float> read_float() const {
    std::vector<float> out(static_cast<std::size_t>(numel()));
    convert_to_float(dtype_, data_, out.size(), out.data());
    return out;
  }

 private:
  void parse(const std::uint8_t* b, std::size_t size, const std::string& origin) {
    static const unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    ANYBCQ_REQUIRE(size >= 10 && std::memcmp(b, kMagic, 6) == 0, origin,
                   ": not a .npy file (it must start with \\x93NUMPY)");
    const int major = b[6];
    ANYBCQ_REQUIRE(major >= 1 && major <= 3, origin, ": .npy format version ", major, " is not supported (1..3)");
    std::size_t hlen = 0, pre = 0;
    if (major == 1) {
      hlen = std::size_t(b[8]) | (std::size_t(b[9]) << 8);
      pre = 10;
    } else {
      ANYBCQ_REQUIRE(size >= 12, origin, ": truncated .npy preamble");
      std::uint32_t l = 0;
      std::memcpy(&l, b + 8, 4);
      hlen = l;
      pre = 12;
    }
    ANYBCQ_REQUIRE(hlen <= size - pre, origin, ": .npy header length ", hlen, " runs past the end of the file (",
                   size, " bytes)");
    std::string descr;
    bool fortran = false;
    detail::NpyHeaderParser(reinterpret_cast<const char*>(b + pre), hlen, origin).parse(descr, fortran, shape_);
    ANYBCQ_REQUIRE(descr.size() == 3 && (descr[0] == '<' || descr[0] == '=' || descr[0] == '|'), origin,
                   ": dtype '", descr, "' is not supported; use little-endian float32 ('<f4') or float16 ('<f2')");
    if (descr.substr(1) == "f4") dtype_ = DType::F32;
    else if (descr.substr(1) == "f2") dtype_ = DType::F16;
    else
      ::anybcq::detail::throw_error("anybcq: ", origin, ": dtype '", descr,
                                    "' is not supported; use float32 ('<f4') or float16 ('<f2')");
    ANYBCQ_REQUIRE(!fortran, origin, ": Fortran-order arrays are not supported; save with np.ascontiguousarray");
    std::uint64_t need = 0;
    ANYBCQ_REQUIRE(detail::checked_nbytes(shape_, dtype_size(dtype_), need), origin, ": shape ",
                   detail::shape_string(shape_), " overflows a 64-bit byte count");
    const std::uint64_t have = size - pre - hlen;
    ANYBCQ_REQUIRE(need == have, origin, ": shape ", detail::shape_string(shape_), " of ", descr, " needs ", need,
                   " data bytes but the file holds ", have);
    data_ = b + pre + hlen;
  }

  MappedFile file_;
  DType dtype_ = DType::F32;
  std::vector<index_t> shape_;
  const std::uint8_t* data_ = nullptr;
};

//! The bytes of a version-1.0 .npy file holding `data` (dtype F32 or F16, C order).
inline std::vector<std::uint8_t> npy_bytes(DType dtype, const std::vector<index_t>& shape, const void* data) {
  ANYBCQ_REQUIRE(dtype == DType::F32 || dtype == DType::F16, "npy: dtype ", dtype_name(dtype),
                 " cannot be written; use F32 or F16");
  std::string h = std::string("{'descr': '<") + (dtype == DType::F32 ? "f4" : "f2") +
                  "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) h += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
  h += "), }";
  while ((10 + h.size() + 1) % 64 != 0) h.push_back(' ');
  h.push_back('\n');
  std::uint64_t nb = 0;
  ANYBCQ_REQUIRE(detail::checked_nbytes(shape, dtype_size(dtype), nb), "npy: shape overflows");
  ANYBCQ_REQUIRE(h.size() <= 0xFFFF, "npy: header too long");
  const std::uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, std::uint8_t(h.size() & 0xFF),
                                std::uint8_t(h.size() >> 8)};
  std::vector<std::uint8_t> out(10 + h.size() + static_cast<std::size_t>(nb));
  std::memcpy(out.data(), pre, 10);
  std::memcpy(out.data() + 10, h.data(), h.size());
  if (nb) std::memcpy(out.data() + 10 + h.size(), data, static_cast<std::size_t>(nb));
  return out;
}

//! Writes a .npy file atomically (temporary name, then rename).
inline void write_npy(const std::string& path, DType dtype, const std::vector<index_t>& shape, const void* data) {
  const std::vector<std::uint8_t> bytes = npy_bytes(dtype, shape, data);
  const std::string tmp = partial_path(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  ANYBCQ_REQUIRE(f != nullptr, "cannot create '", tmp, "': ", std::strerror(errno));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    ::anybcq::detail::throw_error("anybcq: writing '", path, "' failed: ", std::strerror(e));
  }
}

}  // namespace io
ANYBCQ_NAMESPACE_END
