// Tests for detail::UniqueFunction (48-byte inline buffer) and the states'
// 32-byte SmallFunction: small callables inline, large ones in recycled
// storage (over-aligned and very large ones from the heap); each callable is
// destroyed exactly once, and a throwing copy leaks nothing.

#include "jobtrack/detail/unique_function.hpp"

#include "catch.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>

using jobtrack::detail::BasicUniqueFunction;
using jobtrack::detail::UniqueFunction;
using SmallFunction = BasicUniqueFunction<32>;

namespace {

/// A callable of `Size` bytes of payload that counts its calls and holds
/// `alive` while it exists.
template <std::size_t Size, std::size_t Align = alignof(std::max_align_t)>
struct alignas(Align) Sized {
  std::shared_ptr<int> alive;
  int* calls;
  std::array<unsigned char, Size> payload{};
  void operator()() {
    ++*calls;
    // The object is where its alignment says it is.
    if (reinterpret_cast<std::uintptr_t>(this) % Align != 0) throw std::logic_error("misaligned");
  }
};

template <class Function, class Fn>
void callsAndDestroysOnce() {
  auto alive = std::make_shared<int>(0);
  int calls = 0;
  {
    Function f(Fn{alive, &calls});
    CHECK(alive.use_count() == 2);
    f();
    Function moved(std::move(f));
    CHECK_FALSE(f);  // NOLINT(bugprone-use-after-move): moved-from is empty
    moved();
    Function assigned;
    assigned = std::move(moved);
    assigned();
    CHECK(alive.use_count() == 2);
  }
  CHECK(calls == 3);
  CHECK(alive.use_count() == 1);
}

}  // namespace

// Sized<8, alignof(void*)> is 32 bytes: inline in both. Sized<16, ...> is
// 40: inline in UniqueFunction, recycled storage for SmallFunction.
static_assert(sizeof(Sized<8, alignof(void*)>) == 32);
static_assert(sizeof(Sized<16, alignof(void*)>) == 40);

TEST_CASE("UniqueFunction runs and destroys small and large callables exactly once") {
  SECTION("inline") { callsAndDestroysOnce<UniqueFunction, Sized<16, alignof(void*)>>(); }
  SECTION("larger than the inline buffer: recycled storage") {
    callsAndDestroysOnce<UniqueFunction, Sized<128>>();
  }
  SECTION("over-aligned") { callsAndDestroysOnce<UniqueFunction, Sized<8, 64>>(); }
  SECTION("larger than any cached block") { callsAndDestroysOnce<UniqueFunction, Sized<4096>>(); }
}

TEST_CASE("SmallFunction keeps 32 bytes inline and moves larger callables out") {
  SECTION("inline") { callsAndDestroysOnce<SmallFunction, Sized<8, alignof(void*)>>(); }
  SECTION("just over the inline buffer: recycled storage") {
    callsAndDestroysOnce<SmallFunction, Sized<16, alignof(void*)>>();
  }
  SECTION("over-aligned") { callsAndDestroysOnce<SmallFunction, Sized<8, 64>>(); }
}

TEST_CASE("A UniqueFunction whose callable throws while copied leaks nothing") {
  struct ThrowsOnCopy {
    std::array<unsigned char, 128> payload{};
    ThrowsOnCopy() = default;
    ThrowsOnCopy(const ThrowsOnCopy& /*other*/) { throw std::runtime_error("copy"); }
    void operator()() {}
  };
  const ThrowsOnCopy callable;
  CHECK_THROWS_AS(UniqueFunction(callable), std::runtime_error);
  // Under AddressSanitizer a leaked block would fail the run.
}
