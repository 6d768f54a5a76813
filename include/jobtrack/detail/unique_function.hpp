#pragma once

#include "jobtrack/detail/recycling_allocator.hpp"

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace jobtrack::detail {

/// A move-only `void()` callable (C++23's std::move_only_function is not
/// available in C++20): continuations capture move-only handlers and values.
///
/// Callables of up to `InlineSize` bytes that move without throwing are kept
/// inline, so the usual capture (a few pointers, a shared_ptr or two) costs
/// no allocation: a tracked job creates several of these. Larger ones live
/// in recycled storage: they are often freed on another thread.
template <std::size_t InlineSize>
class BasicUniqueFunction {
 public:
  static constexpr std::size_t inlineSize = InlineSize;

  BasicUniqueFunction() noexcept = default;

  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, BasicUniqueFunction> &&
             std::is_invocable_v<std::remove_cvref_t<F>&>)
  BasicUniqueFunction(F&& f) {  // NOLINT(google-explicit-constructor): a function wrapper
    using Fn = std::remove_cvref_t<F>;
    if constexpr (fitsInline<Fn>()) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
      ops_ = &inlineOps<Fn>;
    } else {
      RecyclingAllocator<Fn> allocator;
      Fn* callable = allocator.allocate(1);
      try {
        ::new (static_cast<void*>(callable)) Fn(std::forward<F>(f));
      } catch (...) {
        allocator.deallocate(callable, 1);
        throw;
      }
      ::new (static_cast<void*>(storage_)) Fn*(callable);
      ops_ = &heapOps<Fn>;
    }
  }

  BasicUniqueFunction(BasicUniqueFunction&& other) noexcept { moveFrom(other); }

  BasicUniqueFunction& operator=(BasicUniqueFunction&& other) noexcept {
    if (this != &other) {
      reset();
      moveFrom(other);
    }
    return *this;
  }

  BasicUniqueFunction(const BasicUniqueFunction&) = delete;
  BasicUniqueFunction& operator=(const BasicUniqueFunction&) = delete;

  ~BasicUniqueFunction() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  void operator()() { ops_->call(storage_); }

 private:
  /// What a stored callable can do; one static table per callable type.
  struct Ops {
    void (*call)(void* storage);
    /// Move-constructs into `to` from `from` and destroys `from`'s callable.
    void (*relocate)(void* from, void* to) noexcept;
    void (*destroy)(void* storage) noexcept;
  };

  template <class Fn>
  static constexpr bool fitsInline() {
    return sizeof(Fn) <= inlineSize && alignof(Fn) <= alignof(void*) &&
           std::is_nothrow_move_constructible_v<Fn>;
  }

  template <class Fn>
  static constexpr Ops inlineOps{
      [](void* s) { (*std::launder(static_cast<Fn*>(s)))(); },
      [](void* from, void* to) noexcept {
        Fn* source = std::launder(static_cast<Fn*>(from));
        ::new (to) Fn(std::move(*source));
        source->~Fn();
      },
      [](void* s) noexcept { std::launder(static_cast<Fn*>(s))->~Fn(); },
  };

  template <class Fn>
  static constexpr Ops heapOps{
      [](void* s) { (**std::launder(static_cast<Fn**>(s)))(); },
      [](void* from, void* to) noexcept { ::new (to) Fn*(*std::launder(static_cast<Fn**>(from))); },
      [](void* s) noexcept {
        Fn* callable = *std::launder(static_cast<Fn**>(s));
        callable->~Fn();
        RecyclingAllocator<Fn>{}.deallocate(callable, 1);
      },
  };

  void moveFrom(BasicUniqueFunction& other) noexcept {
    if (!other.ops_) return;
    other.ops_->relocate(other.storage_, storage_);
    ops_ = std::exchange(other.ops_, nullptr);
  }

  void reset() noexcept {
    if (auto* ops = std::exchange(ops_, nullptr)) ops->destroy(storage_);
  }

  alignas(void*) unsigned char storage_[inlineSize];
  const Ops* ops_ = nullptr;
};

/// The usual size: room for the tracker's largest continuation capture.
using UniqueFunction = BasicUniqueFunction<48>;

}  // namespace jobtrack::detail
