// AnyBCQ — what a bit-plane layout policy provides.
#pragma once
#include <type_traits>

#include "anybcq/core/config.hpp"

#if ANYBCQ_HAS_CONCEPTS
#include <concepts>
#endif

ANYBCQ_NAMESPACE_BEGIN
namespace layout {

//! C++17 check: L is a trivially copyable layout with rows/k_words/planes, word_offset, size_words.
template <class L, class = void>
struct is_layout : std::false_type {};
template <class L>
struct is_layout<L, std::void_t<decltype(L::name()), decltype(L{}.rows), decltype(L{}.k_words),
                                decltype(L{}.planes), decltype(L{}.word_offset(0, index_t{}, index_t{})),
                                decltype(L{}.size_words())>>
    : std::bool_constant<std::is_trivially_copyable_v<L>> {};
template <class L>
inline constexpr bool is_layout_v = is_layout<L>::value;

#if ANYBCQ_HAS_CONCEPTS
//! A bit-plane layout policy (see layout/interleaved.hpp for the contract).
template <class L>
concept BitPlaneLayout = is_layout_v<L> && requires(const L l) {
  { l.word_offset(0, index_t{}, index_t{}) } -> std::convertible_to<index_t>;
  { l.size_words() } -> std::convertible_to<index_t>;
};
#define ANYBCQ_LAYOUT_PARAM ::anybcq::layout::BitPlaneLayout
#else
#define ANYBCQ_LAYOUT_PARAM class
#endif

//! Build a layout of type L for an M×K matrix with P planes.
template <class L>
constexpr L make(index_t rows, index_t cols, int planes) {
  static_assert(is_layout_v<L>, "L is not a bit-plane layout");
  L l{};
  l.rows = rows;
  l.k_words = cols / kWordBits;
  l.planes = planes;
  return l;
}

}  // namespace layout
ANYBCQ_NAMESPACE_END
