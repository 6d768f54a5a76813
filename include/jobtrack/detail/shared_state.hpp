#pragma once

#include "jobtrack/detail/recycling_allocator.hpp"
#include "jobtrack/detail/unique_function.hpp"
#include "jobtrack/errors.hpp"

#include <asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <variant>

namespace jobtrack::detail {

/// Where continuations run: an executor's pools. Implemented by the executor.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  /// Runs `fn` on the pools: inline when called from one of their threads
  /// (with a bounded nesting depth), posted otherwise.
  virtual void dispatch(UniqueFunction fn) = 0;
  /// The executor used for timers and for completion handlers that have none.
  [[nodiscard]] virtual asio::any_io_executor executor() const = 0;
};

/// Where threads blocked on a future sleep. States share a fixed table of
/// these, picked by address, instead of carrying a condition variable each:
/// most futures are never waited on, and a tracked job keeps its future's
/// state for as long as it is in flight.
struct alignas(64) WaitPlace {
  std::mutex mutex;
  std::condition_variable wakeUp;
};

inline WaitPlace& waitPlaceFor(const void* state) noexcept {
  static constexpr std::size_t count = 64;
  // Never destroyed: a detached thread may still wait or complete a future
  // after static destruction began.
  static WaitPlace* const places = new WaitPlace[count];
  // Blocks are 16-byte aligned and hundreds of bytes long: skip the low bits.
  const auto address = reinterpret_cast<std::uintptr_t>(state);
  return places[(address >> 6 ^ address >> 12) % count];
}

/// The cancel hook and the started callback: their captures (a weak or two,
/// a couple of pointers) are smaller than a continuation's, and every state
/// carries one of each.
using SmallFunction = BasicUniqueFunction<32>;

/// What a state stores for T: void results are stored as std::monostate.
template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// The part of a future's shared state that does not depend on T: readiness,
/// cancellation, the started notification, the continuation and waiting.
/// Every member function is thread-safe. Callbacks are never invoked while
/// the state's mutex is held.
class StateBase : public std::enable_shared_from_this<StateBase> {
 public:
  explicit StateBase(std::shared_ptr<Scheduler> scheduler) noexcept
      : scheduler_(std::move(scheduler)) {}
  virtual ~StateBase() = default;
  StateBase(const StateBase&) = delete;
  StateBase& operator=(const StateBase&) = delete;

  [[nodiscard]] bool isReady() const noexcept { return ready_.load(std::memory_order_acquire); }

  void wait() const {
    WaitPlace* place = registerWaiter();
    if (!place) return;
    std::unique_lock lock(place->mutex);
    place->wakeUp.wait(lock, [this] { return isReady(); });
  }

  template <class Clock, class Duration>
  bool waitUntil(const std::chrono::time_point<Clock, Duration>& deadline) const {
    WaitPlace* place = registerWaiter();
    if (!place) return true;
    std::unique_lock lock(place->mutex);
    return place->wakeUp.wait_until(lock, deadline, [this] { return isReady(); });
  }

  /// Completes the state with CancelledError unless it is complete already,
  /// signals the stop token, and runs the cancel hook (which forwards the
  /// cancel to whatever produces this state). Returns whether this call won.
  bool cancel() {
    std::stop_source stop(std::nostopstate);
    SmallFunction hook;
    UniqueFunction continuation;
    SmallFunction started;
    WaitPlace* place = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (ready_.load(std::memory_order_relaxed)) return false;
      error_ = cancelledErrorPtr();
      cancelled_ = true;
      ready_.store(true, std::memory_order_release);
      stop = stop_;
      hook = std::move(cancelHook_);
      continuation = std::move(continuation_);
      started = std::move(startedCallback_);
      place = waitPlace_;
    }
    if (place) wakeWaiters(*place);
    if (stop.stop_possible()) stop.request_stop();
    if (hook) hook();
    if (continuation) schedule(std::move(continuation));
    return true;
  }

  /// True once the state was completed by `cancel()`.
  [[nodiscard]] bool wasCancelled() const {
    std::lock_guard lock(mutex_);
    return cancelled_;
  }

  /// The stored error (null for a value). Only meaningful once ready.
  [[nodiscard]] const std::exception_ptr& exception() const noexcept { return error_; }

  /// A stop token that is signalled when the state is cancelled (created on
  /// first use, so work that never asks pays nothing).
  [[nodiscard]] std::stop_token stopToken() {
    std::stop_source source = std::stop_source(std::nostopstate);
    bool cancelled = false;
    {
      std::lock_guard lock(mutex_);
      if (!stop_.stop_possible()) stop_ = std::stop_source();
      source = stop_;
      cancelled = cancelled_;
    }
    if (cancelled) source.request_stop();
    return source.get_token();
  }

  /// Installs what a cancel must also do (cancel the upstream stage, signal
  /// a coroutine). If the state was already cancelled, runs it at once: a
  /// cancel is never lost because a stage was attached late.
  void setCancelHook(SmallFunction hook) {
    {
      std::lock_guard lock(mutex_);
      if (!ready_.load(std::memory_order_relaxed)) {
        std::swap(cancelHook_, hook);
        return;
      }
      if (!cancelled_) return;
    }
    hook();
  }

  /// Installs the single continuation; scheduled once the state is ready.
  void setContinuation(UniqueFunction continuation) {
    {
      std::lock_guard lock(mutex_);
      if (!ready_.load(std::memory_order_relaxed)) {
        continuation_ = std::move(continuation);
        return;
      }
    }
    schedule(std::move(continuation));
  }

  /// Calls `callback` once the work behind this state first runs on a thread
  /// (at once if it already has). Not called for work that never started.
  void onStarted(SmallFunction callback) {
    {
      std::lock_guard lock(mutex_);
      if (!started_.load(std::memory_order_relaxed)) {
        if (ready_.load(std::memory_order_relaxed)) return;
        startedCallback_ = std::move(callback);
        return;
      }
    }
    callback();
  }

  /// Records that the work began running; the first call notifies.
  void markStarted() {
    if (started_.exchange(true, std::memory_order_acq_rel)) return;
    SmallFunction callback;
    {
      std::lock_guard lock(mutex_);
      callback = std::move(startedCallback_);
    }
    if (callback) callback();
  }

  [[nodiscard]] bool isStarted() const noexcept { return started_.load(std::memory_order_acquire); }

  [[nodiscard]] const std::shared_ptr<Scheduler>& scheduler() const noexcept { return scheduler_; }

  /// Executor bookkeeping for leaf tasks: see AsyncExecutor's statistics.
  [[nodiscard]] std::atomic<std::uint8_t>& taskPhase() noexcept { return taskPhase_; }

 protected:
  /// Stores a result through `store` unless already complete, then schedules
  /// the continuation. Returns false (and stores nothing) for a late writer.
  template <class Store>
  bool complete(Store&& store) {
    UniqueFunction continuation;
    SmallFunction hook;
    SmallFunction started;
    WaitPlace* place = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (ready_.load(std::memory_order_relaxed)) return false;
      std::forward<Store>(store)();
      ready_.store(true, std::memory_order_release);
      continuation = std::move(continuation_);
      hook = std::move(cancelHook_);
      started = std::move(startedCallback_);
      place = waitPlace_;
    }
    if (place) wakeWaiters(*place);
    if (continuation) schedule(std::move(continuation));
    return true;
  }

  void schedule(UniqueFunction fn) {
    if (scheduler_) {
      scheduler_->dispatch(std::move(fn));
    } else {
      fn();
    }
  }

  std::exception_ptr error_;

 private:
  /// Where a thread about to block must sleep; null if the state is ready
  /// already. Recorded in the state, under the lock where completion looks
  /// for it: a completion either sees the place and wakes it, or is seen.
  /// (Recorded rather than recomputed, so that code built into another
  /// shared library, with a table of its own, wakes the same place.)
  WaitPlace* registerWaiter() const {
    if (isReady()) return nullptr;
    std::lock_guard lock(mutex_);
    if (ready_.load(std::memory_order_relaxed)) return nullptr;
    if (!waitPlace_) waitPlace_ = &waitPlaceFor(this);
    return waitPlace_;
  }

  /// Wakes the threads blocked on this state (and any others sharing its
  /// wait place, which recheck and sleep again). Taking the place's lock
  /// first means a registered waiter is either still before its readiness
  /// check or already asleep.
  static void wakeWaiters(WaitPlace& place) {
    { std::lock_guard lock(place.mutex); }
    place.wakeUp.notify_all();
  }

  std::shared_ptr<Scheduler> scheduler_;
  mutable std::mutex mutex_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> started_{false};
  bool cancelled_ = false;
  std::atomic<std::uint8_t> taskPhase_{0};
  // Where blocked threads sleep, once one has blocked; guarded by mutex_.
  mutable WaitPlace* waitPlace_ = nullptr;
  std::stop_source stop_{std::nostopstate};  // made on first use
  UniqueFunction continuation_;
  SmallFunction cancelHook_;
  SmallFunction startedCallback_;
};

/// The shared state of a Future<T>/Promise<T>.
template <class T>
class SharedState : public StateBase {
 public:
  using StateBase::StateBase;

  template <class... Args>
  bool setValue(Args&&... args) {
    return complete([&] { value_.emplace(std::forward<Args>(args)...); });
  }

  bool setException(std::exception_ptr error) {
    return complete([&] { error_ = std::move(error); });
  }

  /// Moves the value out, or rethrows the stored error. Requires readiness.
  Stored<T> takeValue() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }

 private:
  std::optional<Stored<T>> value_;
};

/// Completes `target` with the outcome of the ready `source`.
template <class T>
void forwardOutcome(SharedState<T>& source, SharedState<T>& target) {
  if (source.exception()) {
    target.setException(source.exception());
  } else {
    target.setValue(source.takeValue());
  }
}

}  // namespace jobtrack::detail
