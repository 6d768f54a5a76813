#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace jobtrack::detail {

/// A move-only `void()` callable (C++23's std::move_only_function is not
/// available in C++20): continuations capture move-only handlers and values.
class UniqueFunction {
 public:
  UniqueFunction() noexcept = default;

  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, UniqueFunction> &&
             std::is_invocable_v<std::remove_cvref_t<F>&>)
  UniqueFunction(F&& f)  // NOLINT(google-explicit-constructor): a function wrapper
      : callable_(std::make_unique<Model<std::remove_cvref_t<F>>>(std::forward<F>(f))) {}

  UniqueFunction(UniqueFunction&&) noexcept = default;
  UniqueFunction& operator=(UniqueFunction&&) noexcept = default;

  explicit operator bool() const noexcept { return callable_ != nullptr; }
  void operator()() { callable_->call(); }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual void call() = 0;
  };
  template <class F>
  struct Model final : Concept {
    template <class G>
    explicit Model(G&& g) : f(std::forward<G>(g)) {}
    void call() override { f(); }
    F f;
  };

  std::unique_ptr<Concept> callable_;
};

}  // namespace jobtrack::detail
