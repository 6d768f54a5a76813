#pragma once

/// @file
/// Future<T> and Promise<T>: a continuation-capable, cancellable future.

#include "jobtrack/detail/shared_state.hpp"
#include "jobtrack/errors.hpp"

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/system_executor.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace jobtrack {

template <class T>
class Future;
template <class T>
class Promise;

namespace detail {

template <class R>
struct UnwrapFuture {
  using type = R;
};
template <class U>
struct UnwrapFuture<Future<U>> {
  using type = U;
};

template <class R>
inline constexpr bool IsFuture = false;
template <class U>
inline constexpr bool IsFuture<Future<U>> = true;

/// What `f` returns when given the value of a Future<T> (nothing for void).
template <class F, class T>
struct ValueCallResult {
  using type = std::invoke_result_t<F&, T>;
};
template <class F>
struct ValueCallResult<F, void> {
  using type = std::invoke_result_t<F&>;
};

template <class T>
std::shared_ptr<SharedState<T>>& stateOf(Future<T>& future) noexcept {
  return future.state_;
}

template <class T>
Future<T> futureFrom(std::shared_ptr<SharedState<T>> state) noexcept {
  return Future<T>(std::move(state));
}

/// Makes `next` follow `source`: started when the source starts, and a
/// cancel of `next` cancels the source.
inline void linkStage(StateBase& source, const std::shared_ptr<StateBase>& next) {
  source.onStarted([weakNext = std::weak_ptr<StateBase>(next)] {
    if (auto n = weakNext.lock()) n->markStarted();
  });
  next->setCancelHook([weakSource = source.weak_from_this()] {
    if (auto s = weakSource.lock()) s->cancel();
  });
}

/// Completes `next` with the outcome of `inner` (flattening Future<Future<U>>).
template <class U>
void chainInto(Future<U> inner, const std::shared_ptr<SharedState<U>>& next) {
  auto innerState = std::move(stateOf(inner));
  if (!innerState) {
    next->setException(std::make_exception_ptr(std::future_error(std::future_errc::no_state)));
    return;
  }
  linkStage(*innerState, next);
  innerState->setContinuation([innerState, next] { forwardOutcome(*innerState, *next); });
}

/// Runs `produce` and completes `next` with what it returns: a value, a
/// Future to follow, or the exception it throws.
template <class U, class Produce>
void completeFrom(const std::shared_ptr<SharedState<U>>& next, Produce&& produce) noexcept {
  using R = std::invoke_result_t<Produce&>;
  try {
    if constexpr (IsFuture<R>) {
      chainInto<U>(produce(), next);
    } else if constexpr (std::is_void_v<R>) {
      produce();
      next->setValue();
    } else {
      next->setValue(produce());
    }
  } catch (...) {
    next->setException(std::current_exception());
  }
}

}  // namespace detail

/// The eventual result of asynchronous work: a value of type T (T may be
/// void) or an exception.
///
/// A Future is a move-only handle with a single consumer: `get()`, `then()`,
/// `recover()` and `asyncGet()` consume it (afterwards `valid()` is false).
/// `wait`, `waitFor`, `isReady` and `cancel` may be called from any thread,
/// concurrently with the producer. Continuations run on the executor's pools
/// (inline when the work completes on a pool thread), never on the thread
/// that calls `cancel()` or `get()`; a future from a bare `Promise` has no
/// pools and runs them on the completing thread.
template <class T>
class [[nodiscard]] Future {
 public:
  using ValueType = T;

  /// An invalid future (valid() is false).
  Future() noexcept = default;
  Future(Future&&) noexcept = default;
  Future& operator=(Future&&) noexcept = default;
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;

  /// Whether this handle refers to a shared state.
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

  /// Whether the result (value or error) is available. Throws std::future_error if invalid.
  [[nodiscard]] bool isReady() const { return checked().isReady(); }

  /// Whether the work behind this future has begun running on a thread.
  [[nodiscard]] bool isStarted() const { return checked().isStarted(); }

  /// Blocks until the result is available.
  void wait() const { checked().wait(); }

  /// Blocks until the result is available or `timeout` passes; returns readiness.
  template <class Rep, class Period>
  bool waitFor(const std::chrono::duration<Rep, Period>& timeout) const {
    return checked().waitUntil(std::chrono::steady_clock::now() + timeout);
  }

  /// Waits, then returns the value or rethrows the stored exception (of any
  /// type). Consumes the future.
  T get() {
    auto state = take();
    state->wait();
    if constexpr (std::is_void_v<T>) {
      state->takeValue();
    } else {
      return state->takeValue();
    }
  }

  /// Completes the future at once with CancelledError (if it is not complete
  /// yet). Work that has not started never starts; running work gets its
  /// stop token signalled (a coroutine gets an Asio cancellation signal) and
  /// whatever it returns later is discarded. Returns whether this call
  /// cancelled it. Thread-safe.
  bool cancel() { return checked().cancel(); }

  /// Chains `f`, called with the value (nothing for void) when this future
  /// succeeds; `f` returns U or Future<U>. A failure skips `f` and passes
  /// through. Cancelling the returned future cancels this one. Consumes
  /// this future. `f` runs on the executor's pools (inline on the pool
  /// thread that completed this future, else posted to the core pool): keep
  /// it short, or use AsyncExecutor::executeAndThen for blocking follow-up work.
  template <class F>
  auto then(F&& f) {
    using R = typename detail::ValueCallResult<std::decay_t<F>, T>::type;
    using U = typename detail::UnwrapFuture<R>::type;
    auto source = take();
    auto next = detail::makeRecycled<detail::SharedState<U>>(source->scheduler());
    detail::linkStage(*source, next);
    source->setContinuation([source, next, f = std::forward<F>(f)]() mutable {
      if (next->isReady()) return;
      if (source->exception()) {
        next->setException(source->exception());
        return;
      }
      detail::completeFrom<U>(next, [&]() -> R {
        if constexpr (std::is_void_v<T>) {
          return std::invoke(f);
        } else {
          return std::invoke(f, source->takeValue());
        }
      });
    });
    return Future<U>(std::move(next));
  }

  /// Chains `f`, called with this future once it is ready (value or
  /// failure: call `get()` on it); `f` returns U or Future<U>. This is the
  /// failure-handling form of `then`. Consumes this future.
  template <class F>
  auto recover(F&& f) {
    using R = std::invoke_result_t<std::decay_t<F>&, Future<T>>;
    using U = typename detail::UnwrapFuture<R>::type;
    auto source = take();
    auto next = detail::makeRecycled<detail::SharedState<U>>(source->scheduler());
    detail::linkStage(*source, next);
    source->setContinuation([source, next, f = std::forward<F>(f)]() mutable {
      if (next->isReady()) return;
      detail::completeFrom<U>(next, [&]() -> R { return std::invoke(f, Future<T>(source)); });
    });
    return Future<U>(std::move(next));
  }

  /// Waits asynchronously, the Asio way: completes `token` with
  /// `(std::exception_ptr, T)` (or `(std::exception_ptr)` for void), so
  /// `co_await f.asyncGet(asio::use_awaitable)` returns the value or throws.
  /// The handler runs on its associated executor (the core pool if none).
  /// Cancelling the operation (its cancellation slot) cancels the future.
  /// Consumes the future. For non-void T, T must be default-constructible.
  template <class Token>
  auto asyncGet(Token&& token) {
    using Signature = std::conditional_t<std::is_void_v<T>, void(std::exception_ptr),
                                         void(std::exception_ptr, detail::Stored<T>)>;
    return asio::async_initiate<Token, Signature>(
        [](auto handler, std::shared_ptr<detail::SharedState<T>> state) {
          completeWhenReady(std::move(handler), std::move(state));
        },
        token, take());
  }

 private:
  template <class U>
  friend class Future;
  template <class U>
  friend class Promise;
  template <class U>
  friend std::shared_ptr<detail::SharedState<U>>& detail::stateOf(Future<U>&) noexcept;
  template <class U>
  friend Future<U> detail::futureFrom(std::shared_ptr<detail::SharedState<U>>) noexcept;

  explicit Future(std::shared_ptr<detail::SharedState<T>> state) noexcept
      : state_(std::move(state)) {}

  detail::SharedState<T>& checked() const {
    if (!state_) throw std::future_error(std::future_errc::no_state);
    return *state_;
  }

  std::shared_ptr<detail::SharedState<T>> take() {
    checked();
    return std::move(state_);
  }

  template <class Handler>
  static void completeWhenReady(Handler handler, std::shared_ptr<detail::SharedState<T>> state) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) {
      slot.assign([weak = std::weak_ptr<detail::SharedState<T>>(state)](asio::cancellation_type) {
        if (auto s = weak.lock()) s->cancel();
      });
    }
    asio::any_io_executor fallback = state->scheduler()
                                         ? state->scheduler()->executor()
                                         : asio::any_io_executor(asio::system_executor());
    // Keep the handler's executor busy until we complete, as Asio's own
    // operations do, so its io_context or pool does not run out of work.
    auto work = asio::prefer(asio::get_associated_executor(handler, fallback),
                             asio::execution::outstanding_work.tracked);
    // Posted, never dispatched: the handler must not run inside asyncGet
    // itself (a ready future) nor inside the cancellation slot's handler
    // (a cancel emitted on the handler's own executor), as Asio requires.
    state->setContinuation([state, work, handler = std::move(handler)]() mutable {
      asio::post(work, [state, handler = std::move(handler)]() mutable {
        asio::get_associated_cancellation_slot(handler).clear();
        if constexpr (std::is_void_v<T>) {
          std::move(handler)(state->exception());
        } else {
          if (auto error = state->exception()) {
            std::move(handler)(error, detail::Stored<T>{});
          } else {
            std::move(handler)(std::exception_ptr(), state->takeValue());
          }
        }
      });
    });
  }

  std::shared_ptr<detail::SharedState<T>> state_;
};

/// The producer side of a Future<T>: for wrapping callback-based APIs.
/// Destroying a Promise that was never fulfilled breaks its future with
/// BrokenPromiseError. Thread-safe like the future.
template <class T>
class Promise {
 public:
  /// A promise whose future runs continuations on the completing thread.
  /// Use AsyncExecutor::makePromise for one whose continuations run on the pools.
  Promise() : state_(detail::makeRecycled<detail::SharedState<T>>(nullptr)) {}
  explicit Promise(std::shared_ptr<detail::Scheduler> scheduler)
      : state_(detail::makeRecycled<detail::SharedState<T>>(std::move(scheduler))) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      breakIfUnfulfilled();
      state_ = std::move(other.state_);
      retrieved_ = other.retrieved_;
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { breakIfUnfulfilled(); }

  /// The future of this promise; callable once (std::future_error otherwise).
  Future<T> getFuture() {
    if (!state_) throw std::future_error(std::future_errc::no_state);
    if (retrieved_) throw std::future_error(std::future_errc::future_already_retrieved);
    retrieved_ = true;
    return Future<T>(state_);
  }

  /// Fulfils the future; returns false if it was already complete (e.g. cancelled).
  template <class... Args>
  bool setValue(Args&&... args) {
    return state().setValue(std::forward<Args>(args)...);
  }

  /// Fails the future with `error`; returns false if it was already complete.
  bool setException(std::exception_ptr error) { return state().setException(std::move(error)); }

  /// Reports that the work behind the future has begun running.
  void markStarted() { state().markStarted(); }

  /// Whether the future was cancelled by its consumer.
  [[nodiscard]] bool isCancelled() const {
    return state_ && state_->isReady() && state_->wasCancelled();
  }

  /// A token signalled when the consumer cancels the future.
  [[nodiscard]] std::stop_token stopToken() { return state().stopToken(); }

 private:
  detail::SharedState<T>& state() {
    if (!state_) throw std::future_error(std::future_errc::no_state);
    return *state_;
  }
  void breakIfUnfulfilled() noexcept {
    if (state_ && !state_->isReady()) {
      state_->setException(std::make_exception_ptr(BrokenPromiseError{}));
    }
  }

  std::shared_ptr<detail::SharedState<T>> state_;
  bool retrieved_ = false;
};

/// A future that is ready with `value`.
template <class T>
Future<std::decay_t<T>> makeReadyFuture(T&& value) {
  Promise<std::decay_t<T>> promise;
  promise.setValue(std::forward<T>(value));
  return promise.getFuture();
}

/// A ready Future<void>.
inline Future<void> makeReadyFuture() {
  Promise<void> promise;
  promise.setValue();
  return promise.getFuture();
}

/// A future that is ready with the exception `error`.
template <class T>
Future<T> makeFailedFuture(std::exception_ptr error) {
  Promise<T> promise;
  promise.setException(std::move(error));
  return promise.getFuture();
}

}  // namespace jobtrack
