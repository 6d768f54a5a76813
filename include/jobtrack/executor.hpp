#pragma once

/// @file
/// AsyncExecutor: runs blocking callables and coroutines on Asio pools and
/// composes their futures (then, any, all, timeout, fallback).

#include "jobtrack/detail/executor_core.hpp"
#include "jobtrack/detail/timeout_queue.hpp"
#include "jobtrack/errors.hpp"
#include "jobtrack/future.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <stop_token>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(ASIO_HAS_CO_AWAIT)
#error \
    "jobtrack needs Asio coroutine support: with clang 14 and libstdc++ define ASIO_HAS_CO_AWAIT=1 and ASIO_HAS_STD_COROUTINE=1 (the jobtrack CMake target does)"
#endif

namespace jobtrack {

class AsyncExecutor;
namespace detail {
inline const std::shared_ptr<ExecutorCore>& coreOf(const AsyncExecutor& executor) noexcept;
}  // namespace detail

/// Sizes and limits of an AsyncExecutor's pools.
struct ExecutorOptions {
  /// Threads for coroutines, timers and continuations (0: hardware threads, at least 2).
  std::size_t coreThreads = 0;
  /// Threads for blocking callables (0: 32). Work beyond this many waits in a queue.
  std::size_t blockingThreads = 0;
  /// How long shutdown waits for cancelled work before it stops waiting.
  std::chrono::milliseconds shutdownTimeout{5000};
};

/// A snapshot of an executor's task counters (leaf tasks: what executeAsync
/// runs). Read without a lock, so concurrent changes may be half-seen.
/// `submitted == queued + running + completed + failed + cancelled`.
struct ExecutorStats {
  std::uint64_t submitted = 0;  ///< tasks accepted
  std::uint64_t queued = 0;     ///< accepted, not started, not cancelled
  std::uint64_t running = 0;    ///< body executing, not cancelled
  std::uint64_t completed = 0;  ///< body returned and its value was delivered
  std::uint64_t failed = 0;     ///< body threw and its error was delivered
  std::uint64_t cancelled = 0;  ///< future cancelled (before or while running)
  /// Cancelled tasks whose body is still executing: work that has not (yet)
  /// honoured its stop token.
  std::uint64_t cancelledStillRunning = 0;
  /// Blocking tasks waiting for a thread.
  std::uint64_t blockingQueueDepth = 0;
};

/// What a shutdown achieved.
struct ShutdownReport {
  /// Blocking threads still running work (that ignored its stop token) when
  /// the timeout passed; they were detached and finish on their own.
  std::size_t abandonedThreads = 0;
  /// False if the core pool still had work at the timeout and was stopped.
  bool coreDrained = true;
};

namespace detail {

template <class R>
inline constexpr bool IsAwaitable = false;
template <class T, class E>
inline constexpr bool IsAwaitable<asio::awaitable<T, E>> = true;

template <class R>
struct AwaitableValue;
template <class T, class E>
struct AwaitableValue<asio::awaitable<T, E>> {
  using type = T;
};

/// The value type of the future that running `F` produces.
template <class F>
struct TaskTraits {
  static constexpr bool takesStopToken = std::is_invocable_v<F&, std::stop_token>;
  using Returned =
      typename std::conditional_t<takesStopToken, std::invoke_result<F&, std::stop_token>,
                                  std::invoke_result<F&>>::type;
  static constexpr bool isCoroutine = IsAwaitable<Returned>;
  using Value = typename std::conditional_t<isCoroutine, AwaitableValue<Returned>,
                                            std::type_identity<Returned>>::type;
};

template <class F>
concept Task = std::is_invocable_v<F&> || std::is_invocable_v<F&, std::stop_token>;

template <class F>
using TaskValue = typename TaskTraits<std::decay_t<F>>::Value;

/// The second stage of executeAndThen: called with the first stage's value
/// (nothing for void), optionally followed by a std::stop_token.
template <class G, class T>
struct StageTraits {
  static constexpr bool takesStopToken = std::is_invocable_v<G&, T, std::stop_token>;
  using Result =
      typename std::conditional_t<takesStopToken, std::invoke_result<G&, T, std::stop_token>,
                                  std::invoke_result<G&, T>>::type;
};
template <class G>
struct StageTraits<G, void> {
  static constexpr bool takesStopToken = std::is_invocable_v<G&, std::stop_token>;
  using Result =
      typename std::conditional_t<takesStopToken, std::invoke_result<G&, std::stop_token>,
                                  std::invoke_result<G&>>::type;
};

/// Cancels the state if a coroutine frame is destroyed before finishing
/// (its pool was torn down), so no future stays pending.
struct CancelIfUnfinished {
  StateBase* state;
  ~CancelIfUnfinished() {
    if (!state->isReady()) state->cancel();
  }
};

/// A coroutine task's state: its future's state, plus what its cancel hook
/// needs and its place in the executor's list of running coroutines. One
/// block per task, freed when the future, the frame and the completion
/// handler have all let go.
template <class T>
class CoroutineState final : public SharedState<T> {
 public:
  CoroutineState(const std::shared_ptr<ExecutorCore>& core, std::uint8_t strand)
      : SharedState<T>(core), strand(strand) {}
  ~CoroutineState() override { core().removeLive(live); }
  CoroutineState(const CoroutineState&) = delete;
  CoroutineState& operator=(const CoroutineState&) = delete;

  [[nodiscard]] ExecutorCore& core() const noexcept {
    return static_cast<ExecutorCore&>(*this->scheduler());
  }

  // Declared first: where SharedState<T> ends in padding (T = void, bool...)
  // it takes no room of its own.
  std::uint8_t strand;  // the number of the core's strand it runs on
  asio::cancellation_signal signal;
  LiveLink live;
};

/// The body of a coroutine task. `core` is the state's scheduler, which the
/// state keeps alive: the frame holds no second reference to it.
template <class T, class F>
asio::awaitable<void> runCoroutine(std::shared_ptr<SharedState<T>> state, F f, ExecutorCore* core) {
  CancelIfUnfinished guard{state.get()};
  if (core->isClosed()) {
    state->cancel();
    co_return;
  }
  if (!core->beginTask(*state)) co_return;
  bool delivered = false;
  bool threw = false;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await f();
      delivered = state->setValue();
    } else {
      delivered = state->setValue(co_await f());
    }
  } catch (...) {
    threw = true;
    delivered = state->setException(std::current_exception());
  }
  core->finishTask(*state, delivered, threw);
}

template <class T, class F>
void runBlocking(SharedState<T>& state, F& f, ExecutorCore& core) noexcept {
  if (!core.beginTask(state)) return;
  bool delivered = false;
  bool threw = false;
  try {
    if constexpr (TaskTraits<F>::takesStopToken) {
      auto token = state.stopToken();
      if constexpr (std::is_void_v<T>) {
        f(std::move(token));
        delivered = state.setValue();
      } else {
        delivered = state.setValue(f(std::move(token)));
      }
    } else if constexpr (std::is_void_v<T>) {
      f();
      delivered = state.setValue();
    } else {
      delivered = state.setValue(f());
    }
  } catch (...) {
    threw = true;
    delivered = state.setException(std::current_exception());
  }
  core.finishTask(state, delivered, threw);
}

/// Starts `f` as a leaf task of `core`. When the executor is closed: throws
/// ExecutorShutdownError if `throwIfClosed`, else returns a cancelled future.
template <class F>
Future<TaskValue<F>> launch(const std::shared_ptr<ExecutorCore>& core, F&& f, bool throwIfClosed) {
  using Fn = std::decay_t<F>;
  using T = TaskValue<F>;
  // Cancelled even when throwing: once counted as submitted, the task must
  // also be counted as cancelled, or the stats show it queued forever.
  auto refuse = [throwIfClosed](std::shared_ptr<SharedState<T>> state) -> Future<T> {
    state->cancel();
    if (throwIfClosed) throw ExecutorShutdownError{};
    return futureFrom(std::move(state));
  };
  ExecutorCore* rawCore = core.get();
  if constexpr (TaskTraits<Fn>::isCoroutine) {
    auto strand = core->isClosed() ? std::nullopt : core->coroutineStrand();
    if (!strand) return refuse(makeRecycled<SharedState<T>>(core));
    auto state = makeRecycled<CoroutineState<T>>(core, strand->number);
    if (!core->addLive(state->live, *state)) {
      return refuse(std::shared_ptr<SharedState<T>>(std::move(state)));
    }
    core->countSubmitted();
    // The cancellation signal is emitted on the coroutine's strand:
    // emitting from the cancelling thread would race with the coroutine.
    // Neither the hook (it lives in the state) nor the posted emission (it
    // may wait in a stopped pool, and the state owns the pool's executor)
    // owns the state: a state already gone has no coroutine left to signal.
    state->setCancelHook([rawCore, rawState = state.get()] {
      rawCore->countCancelled(*rawState);
      std::weak_ptr<StateBase> weak = rawState->weak_from_this();
      rawCore->postToCoroutineStrand(rawState->strand, [weak = std::move(weak)] {
        if (auto self = weak.lock()) {
          static_cast<CoroutineState<T>&>(*self).signal.emit(asio::cancellation_type::all);
        }
      });
    });
    // The completion handler keeps the state, and so the signal its slot
    // points into, alive until the coroutine has ended.
    auto& signal = state->signal;
    asio::co_spawn(
        strand->executor, runCoroutine<T>(state, Fn(std::forward<F>(f)), rawCore),
        asio::bind_cancellation_slot(signal.slot(), [keep = state](const std::exception_ptr&) {}));
    return futureFrom(std::shared_ptr<SharedState<T>>(std::move(state)));
  } else {
    auto state = makeRecycled<SharedState<T>>(core);
    if (core->isClosed()) return refuse(std::move(state));
    StateBase* rawState = state.get();
    core->countSubmitted();
    state->setCancelHook([rawCore, rawState] { rawCore->countCancelled(*rawState); });
    // The task's `state` keeps the state alive until the body has run.
    BlockingPool::Task task{state,
                            [typed = state.get(), rawCore, fn = Fn(std::forward<F>(f))]() mutable {
                              runBlocking(*typed, fn, *rawCore);
                            }};
    if (!core->postBlocking(task)) return refuse(std::move(state));
    return futureFrom(std::move(state));
  }
}

/// The first success of `sources` wins; the others are then cancelled.
template <class T>
Future<T> firstSuccess(const std::shared_ptr<ExecutorCore>& core, std::vector<Future<T>> futures) {
  auto result = std::make_shared<SharedState<T>>(core);
  if (futures.empty()) {
    result->setException(std::make_exception_ptr(AllFailedError({})));
    return futureFrom(std::move(result));
  }
  struct Race {
    std::mutex mutex;
    std::vector<std::exception_ptr> errors;
    std::size_t remaining;
    std::vector<std::shared_ptr<SharedState<T>>> sources;
    std::atomic<bool> won{false};  ///< claimed by the first success
  };
  auto race = std::make_shared<Race>();
  race->remaining = futures.size();
  race->errors.resize(futures.size());
  for (auto& future : futures) race->sources.push_back(std::move(stateOf(future)));

  auto cancelAllBut = [](Race& r, std::size_t winner) {
    for (std::size_t i = 0; i < r.sources.size(); ++i) {
      if (i != winner) r.sources[i]->cancel();
    }
  };
  result->setCancelHook([race, cancelAllBut] { cancelAllBut(*race, race->sources.size()); });
  for (std::size_t i = 0; i < race->sources.size(); ++i) {
    auto& source = race->sources[i];
    source->onStarted([weak = std::weak_ptr<SharedState<T>>(result)] {
      if (auto r = weak.lock()) r->markStarted();
    });
    source->setContinuation([i, race, result, cancelAllBut] {
      auto& source = *race->sources[i];
      if (!source.exception()) {
        // The first success claims the race and stops the losers before it
        // delivers its value: waking a waiter can cost this thread its CPU.
        if (race->won.exchange(true, std::memory_order_acq_rel)) return;
        try {
          cancelAllBut(*race, i);
        } catch (...) {
          result->setValue(source.takeValue());  // a throwing stop callback loses no result
          throw;
        }
        result->setValue(source.takeValue());
        return;
      }
      std::vector<std::exception_ptr> errors;
      {
        std::lock_guard lock(race->mutex);
        race->errors[i] = source.exception();
        if (--race->remaining != 0) return;
        errors = std::move(race->errors);
      }
      result->setException(std::make_exception_ptr(AllFailedError(std::move(errors))));
    });
  }
  return futureFrom(std::move(result));
}

/// Waits for every future, keeping input order; the first failure fails the
/// whole and cancels the rest.
template <class T>
Future<std::vector<T>> allValues(const std::shared_ptr<ExecutorCore>& core,
                                 std::vector<Future<T>> futures) {
  auto result = std::make_shared<SharedState<std::vector<T>>>(core);
  if (futures.empty()) {
    result->setValue();
    return futureFrom(std::move(result));
  }
  struct Gather {
    std::mutex mutex;
    std::vector<std::optional<T>> values;
    std::size_t remaining;
    std::vector<std::shared_ptr<SharedState<T>>> sources;
    std::atomic<bool> failed{false};  ///< claimed by the first failure
  };
  auto gather = std::make_shared<Gather>();
  gather->remaining = futures.size();
  gather->values.resize(futures.size());
  for (auto& future : futures) gather->sources.push_back(std::move(stateOf(future)));

  auto cancelAll = [](Gather& g) {
    for (auto& source : g.sources) source->cancel();
  };
  result->setCancelHook([gather, cancelAll] { cancelAll(*gather); });
  for (std::size_t i = 0; i < gather->sources.size(); ++i) {
    gather->sources[i]->onStarted([weak = std::weak_ptr<SharedState<std::vector<T>>>(result)] {
      if (auto r = weak.lock()) r->markStarted();
    });
    gather->sources[i]->setContinuation([i, gather, result, cancelAll] {
      auto& source = *gather->sources[i];
      if (source.exception()) {
        // The first failure claims the whole and cancels the siblings before
        // it delivers the failure; their CancelledErrors arrive after the
        // claim and lose: the first genuine failure is what the whole reports.
        if (gather->failed.exchange(true, std::memory_order_acq_rel)) return;
        try {
          cancelAll(*gather);
        } catch (...) {
          result->setException(source.exception());  // a throwing stop callback loses no result
          throw;
        }
        result->setException(source.exception());
        return;
      }
      std::vector<T> values;
      {
        std::lock_guard lock(gather->mutex);
        gather->values[i].emplace(source.takeValue());
        if (--gather->remaining != 0) return;
        values.reserve(gather->values.size());
        for (auto& value : gather->values) values.push_back(std::move(*value));
      }
      result->setValue(std::move(values));
    });
  }
  return futureFrom(std::move(result));
}

}  // namespace detail

/// Runs work in the background on Asio pools and composes the futures.
///
/// Two pools: the *core* pool runs coroutines, timers and continuations and
/// must never block; the *blocking* pool (bounded) runs plain callables, so
/// a sleeping or blocking callable never delays a timer, a timeout or a
/// continuation. The core pool is owned, or an executor the service already
/// has (`AsyncExecutor(io.get_executor())`).
///
/// Detached work: a race or a timeout completes its future at once and asks
/// the losers to stop; they run to their end on their own. Everything such
/// work touches must therefore be owned by it: capture by value or through
/// shared_ptr, never references to locals of the caller.
///
/// Thread safety: every member function may be called from any thread.
class AsyncExecutor {
 public:
  /// An executor owning both pools, sized by `options`.
  explicit AsyncExecutor(ExecutorOptions options = {})
      : options_(resolve(options)),
        core_(std::make_shared<detail::ExecutorCore>(options_.coreThreads, options_.blockingThreads,
                                                     options_.shutdownTimeout)) {}

  /// An executor running coroutines, timers and continuations on `coreExecutor`
  /// (e.g. an io_context the service already runs), with its own blocking pool.
  explicit AsyncExecutor(asio::any_io_executor coreExecutor, ExecutorOptions options = {})
      : options_(resolve(options)),
        core_(std::make_shared<detail::ExecutorCore>(
            std::move(coreExecutor), options_.blockingThreads, options_.shutdownTimeout)) {}

  AsyncExecutor(const AsyncExecutor&) = delete;
  AsyncExecutor& operator=(const AsyncExecutor&) = delete;

  /// Shuts down (see shutdown()).
  ~AsyncExecutor() { shutdown(); }

  /// Runs `f` in the background and returns its future at once.
  /// `f` is `T()` or `T(std::stop_token)` (runs on the blocking pool; the
  /// token is signalled on cancel), or returns `asio::awaitable<T>` (runs as
  /// a coroutine on the core pool, on a strand it shares with other
  /// coroutines, so it must never block; cancel delivers an Asio
  /// cancellation signal). Throws ExecutorShutdownError after shutdown.
  template <detail::Task F>
  Future<detail::TaskValue<F>> executeAsync(F&& f) {
    return detail::launch(core_, std::forward<F>(f), true);
  }

  /// Runs `first`, then `then` with its result. `then` returns U (run on the
  /// blocking pool; it may take a std::stop_token after the value, signalled
  /// on cancel), Future<U>, or asio::awaitable<U> (run as a coroutine).
  /// A failure of `first` skips `then`; a cancel reaches whichever stage runs.
  template <detail::Task F, class G>
  auto executeAndThen(F&& first, G&& then) {
    using T = detail::TaskValue<F>;
    using Stage = detail::StageTraits<std::decay_t<G>, T>;
    using R = typename Stage::Result;
    auto firstFuture = executeAsync(std::forward<F>(first));
    if constexpr (Stage::takesStopToken) {
      static_assert(
          !detail::IsFuture<R> && !detail::IsAwaitable<R>,
          "executeAndThen: a second stage taking a std::stop_token must return a plain value");
      return firstFuture.then([core = core_,
                               then = std::forward<G>(then)](auto&&... value) mutable {
        auto stage = [then = std::move(then), ... captured = std::forward<decltype(value)>(value)](
                         std::stop_token stop) mutable -> R {
          return std::invoke(then, std::move(captured)..., std::move(stop));
        };
        return detail::launch(core, std::move(stage), false);
      });
    } else if constexpr (detail::IsFuture<R>) {
      return firstFuture.then(std::forward<G>(then));
    } else {
      return firstFuture.then(
          [core = core_, then = std::forward<G>(then)](auto&&... value) mutable {
            auto stage = [then = std::move(then),
                          ... captured = std::forward<decltype(value)>(value)]() mutable -> R {
              return std::invoke(then, std::move(captured)...);
            };
            return detail::launch(core, std::move(stage), false);
          });
    }
  }

  /// Starts every callable at once; the first to *succeed* wins and the
  /// others are cancelled (stop token or cancellation signal) and their
  /// results discarded. If every one fails, fails with AllFailedError
  /// carrying each failure. First *success* rather than first completion:
  /// "ask several servers, take the fastest good answer" should not lose to
  /// one that fails fast. All callables must produce the same type.
  template <detail::Task F, detail::Task... Fs>
  auto executeAny(F&& f, Fs&&... fs) {
    using T = detail::TaskValue<F>;
    static_assert((std::is_same_v<T, detail::TaskValue<Fs>> && ...),
                  "executeAny: every alternative must produce the same type");
    std::vector<Future<T>> futures;
    futures.reserve(1 + sizeof...(Fs));
    futures.push_back(executeAsync(std::forward<F>(f)));
    (futures.push_back(executeAsync(std::forward<Fs>(fs))), ...);
    return detail::firstSuccess(core_, std::move(futures));
  }

  /// executeAny over a range of callables. An empty range fails at once with AllFailedError.
  template <std::ranges::input_range R>
    requires detail::Task<std::ranges::range_value_t<R>>
  auto executeAny(R&& callables) {
    using T = detail::TaskValue<std::ranges::range_value_t<R>>;
    std::vector<Future<T>> futures;
    for (auto&& f : callables) futures.push_back(executeAsync(std::forward<decltype(f)>(f)));
    return detail::firstSuccess(core_, std::move(futures));
  }

  /// Starts every callable at once and collects their values in order, as
  /// `Future<std::tuple<T...>>` (void results appear as std::monostate).
  /// Fail-fast: the first failure fails the whole and cancels the rest.
  template <detail::Task... Fs>
  auto executeAll(Fs&&... fs) {
    using Tuple = std::tuple<detail::Stored<detail::TaskValue<Fs>>...>;
    std::vector<Future<std::monostate>> erased;
    erased.reserve(sizeof...(Fs));
    auto values = std::make_shared<Tuple>();
    storeEach(values, erased, std::index_sequence_for<Fs...>{}, std::forward<Fs>(fs)...);
    return detail::allValues(core_, std::move(erased)).then([values](std::vector<std::monostate>) {
      return std::move(*values);
    });
  }

  /// executeAll over a range of callables: `Future<std::vector<T>>` in input
  /// order (`Future<void>` for void callables). An empty range is ready at once.
  template <std::ranges::input_range R>
    requires detail::Task<std::ranges::range_value_t<R>>
  auto executeAll(R&& callables) {
    using T = detail::TaskValue<std::ranges::range_value_t<R>>;
    std::vector<Future<detail::Stored<T>>> futures;
    for (auto&& f : callables)
      futures.push_back(asStored(executeAsync(std::forward<decltype(f)>(f))));
    auto all = detail::allValues(core_, std::move(futures));
    if constexpr (std::is_void_v<T>) {
      return std::move(all).then([](std::vector<std::monostate>) {});
    } else {
      return all;
    }
  }

  /// Fails with TimeoutError if `future` is not ready within `timeout`, and
  /// then cancels it. No thread waits: the deadline joins the executor's
  /// timeout queue (one Asio timer for all of them). The TimeoutError is one
  /// shared object: catch it by const reference.
  template <class T, class Rep, class Period>
  Future<T> withTimeout(Future<T> future, std::chrono::duration<Rep, Period> timeout) {
    auto source = std::move(detail::stateOf(future));
    if (!source) throw std::future_error(std::future_errc::no_state);
    const auto deadline = detail::TimeoutQueue::deadlineAfter(timeout);
    auto result = detail::makeRecycled<detail::SharedState<T>>(core_);
    detail::linkStage(*source, result);
    if (source->isReady()) {
      // In time by definition, and nothing is left pending (after shutdown,
      // cancelled like every other withTimeout).
      if (core_->isClosed()) {
        result->cancel();
      } else {
        detail::forwardOutcome(*source, *result);
      }
      return detail::futureFrom(std::move(result));
    }
    const auto& queue = timeouts_.get(core_);
    auto expiry = detail::makeRecycled<detail::TimeoutExpiry<T>>(result, source);
    if (!queue->add(expiry, deadline)) {
      // Shut down: the queue's entries were cancelled, so is this one.
      result->cancel();
      return detail::futureFrom(std::move(result));
    }
    // A pending entry is cancelled when the executor shuts down (the queue
    // closes); its continuation takes it out of the queue first.
    source->setContinuation([source, result, expiry = std::move(expiry), queue] {
      queue->remove(*expiry);
      detail::forwardOutcome(*source, *result);
    });
    return detail::futureFrom(std::move(result));
  }

  /// Replaces a failure of `future` (a timeout included) with `value`. An
  /// explicit cancel stays a cancel.
  template <class T>
  Future<T> withFallback(Future<T> future, T value) {
    return withFallback(std::move(future),
                        [value = std::move(value)](const std::exception_ptr&) { return value; });
  }

  /// Replaces a failure of `future` with `handler(std::exception_ptr) -> T`.
  /// An explicit cancel stays a cancel; if the handler throws, that is the failure.
  template <class T, class Handler>
    requires std::is_invocable_r_v<T, Handler&, std::exception_ptr> Future<T> withFallback(
        Future<T> future, Handler handler) {
      return std::move(future).recover(
          [handler = std::move(handler)](Future<T> ready) mutable -> T {
            try {
              return ready.get();
            } catch (const CancelledError&) {
              throw;
            } catch (...) {
              return std::invoke(handler, std::current_exception());
            }
          });
    }

  /// Runs `f` (a `void()` callable) on the blocking pool with no future:
  /// fire and forget. Exceptions it throws are swallowed. Dropped silently
  /// once the executor is shut down.
  template <class F>
    requires std::is_invocable_v < std::decay_t<F>
  & > void executeDetached(F&& f) {
    detail::BlockingPool::Task task{nullptr, [fn = std::decay_t<F>(std::forward<F>(f))]() mutable {
                                      try {
                                        fn();
                                      } catch (...) {  // NOLINT(bugprone-empty-catch): documented
                                      }
                                    }};
    core_->postBlocking(task);
  }

  /// A promise whose future runs its continuations on this executor's pools.
  template <class T>
  Promise<T> makePromise() {
    return Promise<T>(core_);
  }

  /// The executor of the core pool (coroutines, timers, continuations).
  [[nodiscard]] asio::any_io_executor coreExecutor() const { return core_->executor(); }

  /// The options in force, with defaults resolved.
  [[nodiscard]] const ExecutorOptions& options() const noexcept { return options_; }

  /// The task counters.
  [[nodiscard]] ExecutorStats stats() const {
    const auto& c = core_->counters();
    ExecutorStats s;
    s.submitted = c.submitted.load(std::memory_order_relaxed);
    s.completed = c.completed.load(std::memory_order_relaxed);
    s.failed = c.failed.load(std::memory_order_relaxed);
    s.cancelled = c.cancelled.load(std::memory_order_relaxed);
    const auto started = c.started.load(std::memory_order_relaxed);
    const auto beforeStart = c.cancelledBeforeStart.load(std::memory_order_relaxed);
    const auto stillRunning = c.cancelledStillRunning.load(std::memory_order_relaxed);
    s.cancelledStillRunning = stillRunning > 0 ? static_cast<std::uint64_t>(stillRunning) : 0;
    s.queued = clampedDifference(s.submitted, started + beforeStart);
    s.running = clampedDifference(
        started, s.completed + s.failed + (s.cancelled - std::min(s.cancelled, beforeStart)));
    s.blockingQueueDepth = core_->blockingQueued();
    return s;
  }

  /// Stops taking work (later calls throw ExecutorShutdownError), cancels
  /// everything pending or running, and joins the threads within
  /// `shutdownTimeout`. Every future is complete afterwards. Idempotent;
  /// must not be called from one of the executor's own threads.
  ShutdownReport shutdown() {
    auto result = core_->shutdown();
    return ShutdownReport{result.abandonedThreads, result.coreDrained};
  }

  /// Whether shutdown() has begun.
  [[nodiscard]] bool isShutdown() const { return core_->isClosed(); }

 private:
  static ExecutorOptions resolve(ExecutorOptions options) {
    if (options.coreThreads == 0) {
      options.coreThreads = std::max<std::size_t>(2, std::thread::hardware_concurrency());
    }
    if (options.blockingThreads == 0) options.blockingThreads = 32;
    return options;
  }

  static std::uint64_t clampedDifference(std::uint64_t a, std::uint64_t b) {
    return a > b ? a - b : 0;
  }

  template <class T>
  static Future<detail::Stored<T>> asStored(Future<T> future) {
    if constexpr (std::is_void_v<T>) {
      return std::move(future).then([] { return std::monostate{}; });
    } else {
      return future;
    }
  }

  template <class Tuple, std::size_t... I, class... Fs>
  void storeEach(const std::shared_ptr<Tuple>& values, std::vector<Future<std::monostate>>& erased,
                 std::index_sequence<I...>, Fs&&... fs) {
    (erased.push_back(asStored(executeAsync(std::forward<Fs>(fs))).then([values](auto value) {
      std::get<I>(*values) = std::move(value);
      return std::monostate{};
    })),
     ...);
  }

  friend const std::shared_ptr<detail::ExecutorCore>& detail::coreOf(const AsyncExecutor&) noexcept;

  ExecutorOptions options_;
  std::shared_ptr<detail::ExecutorCore> core_;
  detail::LazyTimeoutQueue timeouts_;  ///< withTimeout's deadlines
};

namespace detail {
/// The shared core of `executor`, for library components that must outlive it safely.
inline const std::shared_ptr<ExecutorCore>& coreOf(const AsyncExecutor& executor) noexcept {
  return executor.core_;
}
}  // namespace detail

}  // namespace jobtrack
