// AnyBCQ — error reporting.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN

//! Thrown for invalid arguments or data; the message names the bad value and the rule it broke.
class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
template <class... Args>
[[noreturn]] inline void throw_error(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}
}  // namespace detail

ANYBCQ_NAMESPACE_END

//! Throw anybcq::Error built from the streamed message parts unless `cond` holds.
#define ANYBCQ_REQUIRE(cond, ...)                              \
  do {                                                         \
    if (!(cond)) ::anybcq::detail::throw_error("anybcq: ", __VA_ARGS__); \
  } while (0)
