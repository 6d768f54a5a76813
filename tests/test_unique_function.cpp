// Tests for detail::UniqueFunction: small callables inline, large ones in
// recycled storage (over-aligned and very large ones from the heap); each
// callable is destroyed exactly once, and a throwing copy leaks nothing.

#include "jobtrack/detail/unique_function.hpp"

#include "catch.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>

using jobtrack::detail::UniqueFunction;

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

template <class Fn>
void callsAndDestroysOnce() {
  auto alive = std::make_shared<int>(0);
  int calls = 0;
  {
    UniqueFunction f(Fn{alive, &calls});
    CHECK(alive.use_count() == 2);
    f();
    UniqueFunction moved(std::move(f));
    CHECK_FALSE(f);  // NOLINT(bugprone-use-after-move): moved-from is empty
    moved();
    UniqueFunction assigned;
    assigned = std::move(moved);
    assigned();
    CHECK(alive.use_count() == 2);
  }
  CHECK(calls == 3);
  CHECK(alive.use_count() == 1);
}

}  // namespace

TEST_CASE("UniqueFunction runs and destroys small and large callables exactly once") {
  SECTION("inline") { callsAndDestroysOnce<Sized<8>>(); }
  SECTION("larger than the inline buffer: recycled storage") { callsAndDestroysOnce<Sized<128>>(); }
  SECTION("over-aligned") { callsAndDestroysOnce<Sized<8, 64>>(); }
  SECTION("larger than any cached block") { callsAndDestroysOnce<Sized<4096>>(); }
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
