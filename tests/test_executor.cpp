// Tests for AsyncExecutor: every combinator on its success, failure, cancel
// and timeout paths, nested combinations, blocking and coroutine work, the
// two pools, detached losers, shutdown and the statistics.
//
// Ground rules: no test sleeps to wait for an event; it waits on the event
// (Event / Countdown below, or Future::waitFor) with a generous bound and
// REQUIREs that it happened. Work that may outlive a test's scope (losers,
// abandoned tasks) owns everything it touches through shared_ptr.
//
// Coroutines name a future before they co_await it, never
// `co_await exec.executeAsync([=] {...}).asyncGet(...)`: GCC 12 destroyed the
// temporaries of such a co_await expression twice when it threw (ASan saw the
// lambda's captured shared_ptrs released twice).

#include "jobtrack/executor.hpp"

#include "catch.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

using namespace jobtrack;
using namespace std::chrono_literals;

namespace {

/// The bound for waiting on something that must happen: generous, so a
/// loaded machine or a sanitizer never makes a passing test fail.
constexpr auto kPatience = 10s;

/// A failure that is not a std::exception.
struct CustomError {
  int code;
};

/// A one-shot event: set() once (later calls are ignored), waited on by others.
class Event {
 public:
  void set() {
    std::call_once(once_, [this] { promise_.set_value(); });
  }
  void wait() const { future_.wait(); }
  [[nodiscard]] bool waitFor(std::chrono::milliseconds timeout = kPatience) const {
    return future_.wait_for(timeout) == std::future_status::ready;
  }
  [[nodiscard]] bool isSet() const { return waitFor(0ms); }

 private:
  std::once_flag once_;
  std::promise<void> promise_;
  std::shared_future<void> future_ = promise_.get_future().share();
};

/// Opens when countDown() was called `count` times.
class Countdown {
 public:
  explicit Countdown(int count) : count_(count) {}
  void countDown() {
    std::lock_guard lock(mutex_);
    if (--count_ == 0) cv_.notify_all();
  }
  [[nodiscard]] bool waitFor(std::chrono::milliseconds timeout = kPatience) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return count_ <= 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int count_;
};

/// Sets an event when the scope ends, also when a REQUIRE fails: declared
/// after the executor, it releases parked work before the executor shuts down.
struct SetOnExit {
  std::shared_ptr<Event> event;
  ~SetOnExit() { event->set(); }
};

/// A token for work to capture by value: `released` becomes ready once every
/// copy is destroyed, i.e. once the executor is done with the work's closure.
struct ReleaseProbe {
  std::shared_future<void> released;
  std::shared_ptr<void> token;
};
ReleaseProbe makeReleaseProbe() {
  auto promise = std::make_shared<std::promise<void>>();
  auto released = promise->get_future().share();
  return {released, std::shared_ptr<void>(nullptr, [promise](void*) { promise->set_value(); })};
}

/// Blocks until `token` is signalled (the cooperative way to wait for a cancel).
void waitForStop(const std::stop_token& token) {
  std::mutex mutex;
  std::condition_variable_any cv;
  std::unique_lock lock(mutex);
  cv.wait(lock, token, [] { return false; });
}

/// A coroutine that waits an hour unless cancelled (then it throws
/// operation_aborted); records whether it was cancelled.
asio::awaitable<void> waitAnHour(std::shared_ptr<std::atomic<bool>> sawCancel = nullptr) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
  try {
    co_await timer.async_wait(asio::use_awaitable);
  } catch (const std::system_error& error) {
    if (sawCancel && error.code() == asio::error::operation_aborted) *sawCancel = true;
    throw;
  }
}

/// Pools small enough to saturate on purpose.
ExecutorOptions smallPools(
    std::size_t blockingThreads = 4,
    std::chrono::milliseconds shutdownTimeout = std::chrono::milliseconds(kPatience)) {
  ExecutorOptions options;
  options.coreThreads = 2;
  options.blockingThreads = blockingThreads;
  options.shutdownTimeout = shutdownTimeout;
  return options;
}

template <class T>
[[nodiscard]] bool readySoon(const Future<T>& future) {
  return future.waitFor(kPatience);
}

/// Tells when a promise's consumer cancelled it. A timeout cancels its
/// source just *after* it publishes TimeoutError, so a test that saw the
/// TimeoutError waits for this rather than checking isCancelled() at once.
class CancelWatch {
 public:
  template <class T>
  explicit CancelWatch(Promise<T>& promise)
      : event_(std::make_shared<Event>()),
        callback_(promise.stopToken(), [event = event_] { event->set(); }) {}
  [[nodiscard]] bool waitFor() const { return event_->waitFor(); }

 private:
  std::shared_ptr<Event> event_;  // declared first: callback_'s initializer copies it
  std::stop_callback<std::function<void()>> callback_;
};

}  // namespace

// ---------------------------------------------------------------------------
// executeAsync
// ---------------------------------------------------------------------------

TEST_CASE("executeAsync runs plain callables and coroutines and returns their values",
          "[executor][async]") {
  AsyncExecutor exec(smallPools());
  const auto testThread = std::this_thread::get_id();

  SECTION("T()") {
    auto future = exec.executeAsync([] { return std::string("blocking"); });
    REQUIRE(future.get() == "blocking");
  }
  SECTION("void(), on another thread") {
    std::thread::id ranOn;
    auto future = exec.executeAsync([&ranOn] { ranOn = std::this_thread::get_id(); });
    future.get();
    REQUIRE(ranOn != testThread);
  }
  SECTION("T(std::stop_token), the token not signalled when nobody cancels") {
    auto future = exec.executeAsync([](std::stop_token stop) { return stop.stop_requested(); });
    REQUIRE_FALSE(future.get());
  }
  SECTION("asio::awaitable<T> with a steady_timer") {
    auto future = exec.executeAsync([]() -> asio::awaitable<int> {
      asio::steady_timer timer(co_await asio::this_coro::executor, 5ms);
      co_await timer.async_wait(asio::use_awaitable);
      co_return 42;
    });
    REQUIRE(future.get() == 42);
  }
  SECTION("asio::awaitable<void>") {
    auto ran = std::make_shared<std::atomic<bool>>(false);
    auto future = exec.executeAsync([ran]() -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
      co_await timer.async_wait(asio::use_awaitable);
      *ran = true;
    });
    future.get();
    REQUIRE(*ran);
  }
}

TEST_CASE("failures of any type are captured and rethrown by get()", "[executor][async][errors]") {
  AsyncExecutor exec(smallPools());

  SECTION("a std exception from a callable") {
    auto future = exec.executeAsync([]() -> int { throw std::invalid_argument("bad"); });
    REQUIRE_THROWS_AS(future.get(), std::invalid_argument);
  }
  SECTION("throw 42 from a callable") {
    auto future = exec.executeAsync([]() -> int { throw 42; });
    try {
      (void)future.get();
      FAIL("get() should have thrown");
    } catch (int value) {
      REQUIRE(value == 42);
    }
  }
  SECTION("a custom struct from a void callable") {
    auto future = exec.executeAsync([] { throw CustomError{7}; });
    try {
      future.get();
      FAIL("get() should have thrown");
    } catch (const CustomError& error) {
      REQUIRE(error.code == 7);
    }
  }
  SECTION("throw 42 from a coroutine") {
    auto future = exec.executeAsync([]() -> asio::awaitable<int> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      throw 42;
    });
    REQUIRE_THROWS_AS(future.get(), int);
  }
  SECTION("a custom struct from a void coroutine") {
    auto future = exec.executeAsync([]() -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      throw CustomError{8};
    });
    REQUIRE_THROWS_AS(future.get(), CustomError);
  }
}

TEST_CASE("cancel reaches running work: a stop token or a cancellation signal",
          "[executor][async][cancel]") {
  AsyncExecutor exec(smallPools());

  SECTION("a blocking callable sees its stop token") {
    auto running = std::make_shared<Event>();
    auto ended = std::make_shared<Event>();
    auto sawStop = std::make_shared<std::atomic<bool>>(false);
    auto future = exec.executeAsync([=](std::stop_token stop) {
      running->set();
      waitForStop(stop);
      *sawStop = stop.stop_requested();
      ended->set();
      return 1;
    });
    REQUIRE(running->waitFor());
    REQUIRE(future.isStarted());
    REQUIRE(future.cancel());
    REQUIRE_THROWS_AS(future.get(), CancelledError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawStop);
  }
  SECTION("a suspended coroutine gets operation_aborted") {
    auto sawCancel = std::make_shared<std::atomic<bool>>(false);
    auto ended = std::make_shared<Event>();
    auto running = std::make_shared<Event>();
    auto future = exec.executeAsync([=]() -> asio::awaitable<int> {
      running->set();
      try {
        co_await waitAnHour(sawCancel);
      } catch (...) {
        ended->set();
        throw;
      }
      co_return 1;
    });
    REQUIRE(running->waitFor());
    REQUIRE(future.cancel());
    REQUIRE_THROWS_AS(future.get(), CancelledError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawCancel);
  }
}

TEST_CASE(
    "a cancel of a coroutine that is running between awaits takes effect at its next co_await",
    "[executor][async][cancel][coroutine]") {
  AsyncExecutor exec(smallPools());
  auto running = std::make_shared<Event>();
  auto gate = std::make_shared<Event>();
  auto ended = std::make_shared<Event>();
  auto aborted = std::make_shared<std::atomic<bool>>(false);
  SetOnExit openGate{gate};
  const bool yieldFirst = GENERATE(false, true);

  auto future = exec.executeAsync([=]() -> asio::awaitable<void> {
    running->set();
    gate->wait();  // running (not suspended) while the test cancels
    try {
      if (yieldFirst) {
        // A co_await the cancel cannot interrupt: the cancel must still be
        // remembered for the next one.
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      }
      asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
      co_await timer.async_wait(asio::use_awaitable);
    } catch (const std::system_error& error) {
      *aborted = error.code() == asio::error::operation_aborted;
    }
    ended->set();
  });
  REQUIRE(running->waitFor());
  REQUIRE(future.cancel());
  gate->set();
  REQUIRE(ended->waitFor());
  REQUIRE(*aborted);
  REQUIRE_THROWS_AS(future.get(), CancelledError);
}

TEST_CASE("a cancel that arrives before the work starts is never lost",
          "[executor][async][cancel][started]") {
  AsyncExecutor exec(smallPools(1));
  auto gate = std::make_shared<Event>();
  auto parked = std::make_shared<Event>();
  SetOnExit openGate{gate};
  auto blocker = exec.executeAsync([=] {
    parked->set();
    gate->wait();
  });
  REQUIRE(parked->waitFor());

  auto bodyRan = std::make_shared<std::atomic<bool>>(false);
  auto queued = exec.executeAsync([bodyRan] { *bodyRan = true; });
  REQUIRE_FALSE(queued.isStarted());
  REQUIRE(exec.stats().blockingQueueDepth == 1);
  REQUIRE(queued.cancel());
  REQUIRE_THROWS_AS(queued.get(), CancelledError);

  // Work queued after the cancelled task runs after it (FIFO): once it ran,
  // the cancelled task had its chance and did not take it.
  auto after = exec.executeAsync([] { return 1; });
  gate->set();
  REQUIRE_NOTHROW(blocker.get());
  REQUIRE(after.get() == 1);
  REQUIRE_FALSE(*bodyRan);
}

TEST_CASE("isStarted() is false while work is queued behind a saturated pool, true once it runs",
          "[executor][started]") {
  AsyncExecutor exec(smallPools(1));
  auto gate = std::make_shared<Event>();
  auto parked = std::make_shared<Event>();
  SetOnExit openGate{gate};
  auto blocker = exec.executeAsync([=] {
    parked->set();
    gate->wait();
  });
  REQUIRE(parked->waitFor());
  REQUIRE(blocker.isStarted());

  auto running = std::make_shared<Event>();
  auto release = std::make_shared<Event>();
  SetOnExit releaseOnExit{release};
  auto queued = exec.executeAsync([=] {
    running->set();
    release->wait();
    return 5;
  });
  auto chained = std::move(queued).then([](int v) { return v + 1; });
  REQUIRE_FALSE(chained.isStarted());
  REQUIRE_FALSE(chained.isReady());

  gate->set();
  REQUIRE(running->waitFor());
  REQUIRE(chained.isStarted());  // markStarted runs before the body
  release->set();
  REQUIRE(chained.get() == 6);
  blocker.get();
}

// ---------------------------------------------------------------------------
// executeAndThen
// ---------------------------------------------------------------------------

TEST_CASE("a burst of blocking tasks gets as many threads as it needs, round after round",
          "[executor][async][blocking]") {
  // Each round needs every blocking thread at once: a wake-up skipped while a
  // worker polls for work (and then takes only one task) would hang a round.
  constexpr std::size_t threads = 4;
  AsyncExecutor exec(smallPools(threads));
  for (int round = 0; round < 300; ++round) {
    auto allRunning = std::make_shared<Countdown>(static_cast<int>(threads));
    std::vector<Future<bool>> tasks;
    for (std::size_t i = 0; i < threads; ++i) {
      tasks.push_back(exec.executeAsync([allRunning] {
        allRunning->countDown();
        return allRunning->waitFor();
      }));
    }
    for (auto& task : tasks) REQUIRE(task.get());
  }
}

TEST_CASE("executeAndThen runs the second stage with the first one's value", "[executor][then]") {
  AsyncExecutor exec(smallPools());

  SECTION("blocking, then blocking") {
    auto future =
        exec.executeAndThen([] { return 20; }, [](int v) { return std::to_string(v + 1); });
    REQUIRE(future.get() == "21");
  }
  SECTION("void first stage") {
    auto future = exec.executeAndThen([] {}, [] { return 3; });
    REQUIRE(future.get() == 3);
  }
  SECTION("void second stage") {
    auto seen = std::make_shared<std::atomic<int>>(0);
    auto future = exec.executeAndThen([] { return 4; }, [seen](int v) { *seen = v; });
    future.get();
    REQUIRE(*seen == 4);
  }
  SECTION("a second stage returning Future<U> is flattened") {
    auto future = exec.executeAndThen(
        [] { return 2; }, [&exec](int v) { return exec.executeAsync([v] { return v * 10; }); });
    REQUIRE(future.get() == 20);
  }
  SECTION("a coroutine second stage") {
    auto future =
        exec.executeAndThen([] { return 5; },
                            [](int v) -> asio::awaitable<int> {
                              asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
                              co_await timer.async_wait(asio::use_awaitable);
                              co_return v * 2;
                            });
    REQUIRE(future.get() == 10);
  }
  SECTION("a coroutine first stage") {
    auto future = exec.executeAndThen([]() -> asio::awaitable<int> { co_return 6; },
                                      [](int v) { return v + 1; });
    REQUIRE(future.get() == 7);
  }
}

TEST_CASE("executeAndThen: a failure of either stage fails the whole", "[executor][then][errors]") {
  AsyncExecutor exec(smallPools());

  SECTION("the first stage fails: the second never runs") {
    auto secondRan = std::make_shared<std::atomic<bool>>(false);
    auto future = exec.executeAndThen([]() -> int { throw CustomError{1}; },
                                      [secondRan](int v) {
                                        *secondRan = true;
                                        return v;
                                      });
    REQUIRE_THROWS_AS(future.get(), CustomError);
    REQUIRE_FALSE(*secondRan);
  }
  SECTION("the second stage fails") {
    auto future = exec.executeAndThen([] { return 1; }, [](int) -> int { throw 42; });
    REQUIRE_THROWS_AS(future.get(), int);
  }
}

TEST_CASE("executeAndThen: a cancel reaches whichever stage runs", "[executor][then][cancel]") {
  AsyncExecutor exec(smallPools());
  auto running = std::make_shared<Event>();
  auto ended = std::make_shared<Event>();
  auto sawStop = std::make_shared<std::atomic<bool>>(false);

  SECTION("the running first stage; the second never runs") {
    auto secondRan = std::make_shared<std::atomic<bool>>(false);
    auto future = exec.executeAndThen(
        [=](std::stop_token stop) {
          running->set();
          waitForStop(stop);
          *sawStop = stop.stop_requested();
          ended->set();
          return 1;
        },
        [secondRan](int v) {
          *secondRan = true;
          return v;
        });
    REQUIRE(running->waitFor());
    REQUIRE(future.cancel());
    REQUIRE_THROWS_AS(future.get(), CancelledError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawStop);
    REQUIRE_FALSE(*secondRan);
  }
  SECTION("the running second stage sees its stop token") {
    auto future = exec.executeAndThen([] { return 1; },
                                      [=](int v, std::stop_token stop) {
                                        running->set();
                                        waitForStop(stop);
                                        *sawStop = stop.stop_requested();
                                        ended->set();
                                        return v;
                                      });
    REQUIRE(running->waitFor());
    REQUIRE(future.cancel());
    REQUIRE_THROWS_AS(future.get(), CancelledError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawStop);
  }
  SECTION("the running second stage of a void first stage") {
    auto future = exec.executeAndThen([] {},
                                      [=](std::stop_token stop) {
                                        running->set();
                                        waitForStop(stop);
                                        *sawStop = stop.stop_requested();
                                        ended->set();
                                      });
    REQUIRE(running->waitFor());
    REQUIRE(future.cancel());
    REQUIRE_THROWS_AS(future.get(), CancelledError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawStop);
  }
  SECTION("the running future a second stage returned") {
    auto future = exec.executeAndThen([] { return 1; },
                                      [&exec, running, ended, sawStop](int v) {
                                        return exec.executeAsync([=](std::stop_token stop) {
                                          running->set();
                                          waitForStop(stop);
                                          *sawStop = stop.stop_requested();
                                          ended->set();
                                          return v;
                                        });
                                      });
    REQUIRE(running->waitFor());
    REQUIRE(future.cancel());
    REQUIRE_THROWS_AS(future.get(), CancelledError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawStop);
  }
  SECTION("a running coroutine second stage") {
    auto sawCancel = std::make_shared<std::atomic<bool>>(false);
    auto future = exec.executeAndThen([] { return 1; },
                                      [=](int v) -> asio::awaitable<int> {
                                        running->set();
                                        try {
                                          co_await waitAnHour(sawCancel);
                                        } catch (...) {
                                          ended->set();
                                          throw;
                                        }
                                        co_return v;
                                      });
    REQUIRE(running->waitFor());
    REQUIRE(future.cancel());
    REQUIRE_THROWS_AS(future.get(), CancelledError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawCancel);
  }
}

// ---------------------------------------------------------------------------
// executeAny
// ---------------------------------------------------------------------------

TEST_CASE("executeAny: the first success wins, at once, and the losers see their stop token",
          "[executor][any][cancel]") {
  AsyncExecutor exec(smallPools(4));
  auto losersRunning = std::make_shared<Countdown>(2);
  auto losersDone = std::make_shared<Countdown>(2);
  auto sawStop = std::make_shared<std::atomic<int>>(0);
  auto loser = [=](std::stop_token stop) {
    losersRunning->countDown();
    waitForStop(stop);
    if (stop.stop_requested()) ++*sawStop;
    losersDone->countDown();
    return 0;
  };
  // The winner waits until both losers run, so they are cancelled running.
  auto winner = [=](std::stop_token) {
    (void)losersRunning->waitFor();
    return 7;
  };

  SECTION("variadic") {
    auto race = exec.executeAny(loser, winner, loser);
    REQUIRE(race.get() == 7);
  }
  SECTION("range") {
    std::vector<std::function<int(std::stop_token)>> alternatives{loser, loser, winner};
    auto race = exec.executeAny(alternatives);
    REQUIRE(race.get() == 7);
  }
  REQUIRE(losersDone->waitFor());
  REQUIRE(*sawStop == 2);
}

TEST_CASE("executeAny: coroutine losers get a cancellation signal",
          "[executor][any][cancel][coroutine]") {
  AsyncExecutor exec(smallPools());
  auto losersRunning = std::make_shared<Countdown>(2);
  auto losersDone = std::make_shared<Countdown>(2);
  auto sawCancel = std::make_shared<std::atomic<int>>(0);
  auto loser = [=]() -> asio::awaitable<int> {
    losersRunning->countDown();
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    try {
      co_await waitAnHour(cancelled);
    } catch (...) {
    }
    if (*cancelled) ++*sawCancel;
    losersDone->countDown();
    co_return 0;
  };
  // The winner waits until both losers run: a loser cancelled before it
  // started would never run at all.
  auto winner = [=] {
    (void)losersRunning->waitFor();
    return 3;
  };
  auto race = exec.executeAny(loser, winner, loser);
  REQUIRE(race.get() == 3);
  REQUIRE(losersDone->waitFor());
  REQUIRE(*sawCancel == 2);
}

TEST_CASE("executeAny: a fast failure does not beat a success", "[executor][any][errors]") {
  AsyncExecutor exec(smallPools());
  auto race = exec.executeAny([]() -> int { throw CustomError{1}; }, [] { return 5; },
                              []() -> int { throw 42; });
  REQUIRE(race.get() == 5);
}

TEST_CASE("executeAny: when every alternative fails, AllFailedError carries each failure in order",
          "[executor][any][errors]") {
  AsyncExecutor exec(smallPools());
  auto check = [](Future<int> race) {
    try {
      (void)race.get();
      FAIL("the race should have failed");
    } catch (const AllFailedError& error) {
      REQUIRE(std::string(error.what()).find("all 3 alternatives failed") != std::string::npos);
      REQUIRE(error.errors().size() == 3);
      REQUIRE_THROWS_AS(std::rethrow_exception(error.errors()[0]), int);
      REQUIRE_THROWS_AS(std::rethrow_exception(error.errors()[1]), CustomError);
      REQUIRE_THROWS_AS(std::rethrow_exception(error.errors()[2]), std::runtime_error);
    }
  };
  SECTION("variadic, blocking and coroutine alternatives") {
    check(exec.executeAny([]() -> asio::awaitable<int> { throw 42; },
                          []() -> int { throw CustomError{2}; },
                          []() -> int { throw std::runtime_error("three"); }));
  }
  SECTION("range") {
    std::vector<std::function<int()>> alternatives{
        []() -> int { throw 42; }, []() -> int { throw CustomError{2}; },
        []() -> int { throw std::runtime_error("three"); }};
    check(exec.executeAny(alternatives));
  }
}

TEST_CASE("executeAny of an empty range fails at once with AllFailedError",
          "[executor][any][errors]") {
  AsyncExecutor exec(smallPools());
  std::vector<std::function<int()>> none;
  auto race = exec.executeAny(none);
  REQUIRE(race.isReady());
  try {
    (void)race.get();
    FAIL("the race should have failed");
  } catch (const AllFailedError& error) {
    REQUIRE(error.errors().empty());
  }
}

TEST_CASE("executeAny of void alternatives", "[executor][any]") {
  AsyncExecutor exec(smallPools());
  auto race = exec.executeAny([] { throw CustomError{1}; }, [] {});
  REQUIRE_NOTHROW(race.get());
}

TEST_CASE("cancelling a race cancels every alternative", "[executor][any][cancel]") {
  AsyncExecutor exec(smallPools());
  auto running = std::make_shared<Countdown>(2);
  auto done = std::make_shared<Countdown>(2);
  auto sawStop = std::make_shared<std::atomic<int>>(0);
  auto alternative = [=](std::stop_token stop) {
    running->countDown();
    waitForStop(stop);
    if (stop.stop_requested()) ++*sawStop;
    done->countDown();
    return 0;
  };
  auto race = exec.executeAny(alternative, alternative);
  REQUIRE(running->waitFor());
  REQUIRE(race.isStarted());
  REQUIRE(race.cancel());
  REQUIRE_THROWS_AS(race.get(), CancelledError);
  REQUIRE(done->waitFor());
  REQUIRE(*sawStop == 2);
}

TEST_CASE(
    "a race's loser that finishes after the race future and the executor are gone touches no freed "
    "memory",
    "[executor][any][lifetime]") {
  // One blocking thread, the loser's: an idle thread could be counted as
  // abandoned if a loaded machine does not schedule it within the 50 ms.
  auto exec = std::make_unique<AsyncExecutor>(smallPools(1, 50ms));
  auto gate = std::make_shared<Event>();
  SetOnExit openGate{gate};
  auto probe = makeReleaseProbe();
  {
    // The winner (a coroutine) waits until the loser runs; the loser
    // ignores its stop token until the gate opens.
    auto loserRunning = std::make_shared<Promise<void>>(exec->makePromise<void>());
    auto race = exec->executeAny(
        [gate, loserRunning, token = std::move(probe.token)] {
          loserRunning->setValue();
          gate->wait();
          return std::string("late loser");
        },
        [running = loserRunning->getFuture()]() mutable -> asio::awaitable<std::string> {
          co_await std::move(running).asyncGet(asio::use_awaitable);
          co_return "winner";
        });
    REQUIRE(race.get() == "winner");  // complete at once: the loser still runs
  }
  const auto report = exec->shutdown();
  REQUIRE(report.abandonedThreads == 1);
  exec.reset();
  gate->set();
  REQUIRE(probe.released.wait_for(kPatience) == std::future_status::ready);
}

// ---------------------------------------------------------------------------
// executeAll
// ---------------------------------------------------------------------------

TEST_CASE("executeAll collects every value in order", "[executor][all]") {
  AsyncExecutor exec(smallPools());

  SECTION("variadic: a tuple of mixed types, void as std::monostate") {
    auto all = exec.executeAll([] { return 1; }, [] { return std::string("two"); }, [] {},
                               []() -> asio::awaitable<double> { co_return 4.0; });
    auto [one, two, three, four] = all.get();
    REQUIRE(one == 1);
    REQUIRE(two == "two");
    REQUIRE(three == std::monostate{});
    REQUIRE(four == 4.0);
  }
  SECTION("range: a vector in input order, whatever order they finish in") {
    // Each task waits for the one after it, so they finish in reverse order.
    auto finished = std::make_shared<std::vector<Event>>(4);
    std::vector<std::function<int()>> tasks;
    for (int i = 0; i < 4; ++i) {
      tasks.emplace_back([finished, i] {
        if (i + 1 < 4) (*finished)[i + 1].wait();
        (*finished)[i].set();
        return i * 10;
      });
    }
    auto all = exec.executeAll(tasks);
    REQUIRE(all.get() == std::vector<int>{0, 10, 20, 30});
  }
  SECTION("range of void callables: Future<void>") {
    auto count = std::make_shared<std::atomic<int>>(0);
    std::vector<std::function<void()>> tasks(3, [count] { ++*count; });
    Future<void> all = exec.executeAll(tasks);
    all.get();
    REQUIRE(*count == 3);
  }
}

TEST_CASE("executeAll of an empty range is ready with an empty vector", "[executor][all]") {
  AsyncExecutor exec(smallPools());
  std::vector<std::function<int()>> none;
  auto all = exec.executeAll(none);
  REQUIRE(all.isReady());
  REQUIRE(all.get().empty());
}

TEST_CASE("a failed executeAll reports the first genuine failure, never a sibling's CancelledError",
          "[executor][all][errors][cancel]") {
  AsyncExecutor exec(smallPools(4));
  auto siblingsRunning = std::make_shared<Countdown>(2);
  auto siblingsDone = std::make_shared<Countdown>(2);
  auto sawStop = std::make_shared<std::atomic<int>>(0);
  auto sibling = [=](std::stop_token stop) {
    siblingsRunning->countDown();
    waitForStop(stop);
    if (stop.stop_requested()) ++*sawStop;
    siblingsDone->countDown();
    return 0;
  };
  auto failing = [=]() -> int {
    (void)siblingsRunning->waitFor();
    throw CustomError{9};
  };

  SECTION("range") {
    std::vector<std::function<int(std::stop_token)>> tasks{
        sibling, [failing](std::stop_token) { return failing(); }, sibling};
    auto all = exec.executeAll(tasks);
    REQUIRE_THROWS_AS(all.get(), CustomError);
  }
  SECTION("variadic") {
    auto all = exec.executeAll(sibling, failing, sibling);
    REQUIRE_THROWS_AS(all.get(), CustomError);
  }
  REQUIRE(siblingsDone->waitFor());
  REQUIRE(*sawStop == 2);
}

TEST_CASE("a failed executeAll cancels coroutine siblings too",
          "[executor][all][errors][coroutine]") {
  AsyncExecutor exec(smallPools());
  auto siblingDone = std::make_shared<Event>();
  auto sawCancel = std::make_shared<std::atomic<bool>>(false);
  auto siblingRunning = std::make_shared<Event>();
  auto all = exec.executeAll(
      [=]() -> asio::awaitable<int> {
        siblingRunning->set();
        try {
          co_await waitAnHour(sawCancel);
        } catch (...) {
        }
        siblingDone->set();
        co_return 0;
      },
      [=]() -> int {
        siblingRunning->wait();
        throw 42;
      });
  REQUIRE_THROWS_AS(all.get(), int);
  REQUIRE(siblingDone->waitFor());
  REQUIRE(*sawCancel);
}

TEST_CASE("cancelling executeAll cancels every task", "[executor][all][cancel]") {
  AsyncExecutor exec(smallPools());
  auto running = std::make_shared<Countdown>(2);
  auto done = std::make_shared<Countdown>(2);
  auto sawStop = std::make_shared<std::atomic<int>>(0);
  auto task = [=](std::stop_token stop) {
    running->countDown();
    waitForStop(stop);
    if (stop.stop_requested()) ++*sawStop;
    done->countDown();
  };
  auto all = exec.executeAll(task, task);
  REQUIRE(running->waitFor());
  REQUIRE(all.cancel());
  REQUIRE_THROWS_AS(all.get(), CancelledError);
  REQUIRE(done->waitFor());
  REQUIRE(*sawStop == 2);
}

// ---------------------------------------------------------------------------
// withTimeout / withFallback
// ---------------------------------------------------------------------------

TEST_CASE("withTimeout passes an outcome that arrives in time", "[executor][timeout]") {
  AsyncExecutor exec(smallPools());
  SECTION("a value") {
    auto future = exec.withTimeout(exec.executeAsync([] { return 1; }), kPatience);
    REQUIRE(future.get() == 1);
  }
  SECTION("a failure") {
    auto future =
        exec.withTimeout(exec.executeAsync([]() -> int { throw CustomError{3}; }), kPatience);
    REQUIRE_THROWS_AS(future.get(), CustomError);
  }
  SECTION("void") {
    auto future = exec.withTimeout(exec.executeAsync([] {}), kPatience);
    REQUIRE_NOTHROW(future.get());
  }
}

TEST_CASE("withTimeout fails with TimeoutError and cancels what did not complete",
          "[executor][timeout][cancel]") {
  AsyncExecutor exec(smallPools());

  SECTION("a never-completing promise") {
    auto promise = exec.makePromise<int>();
    CancelWatch watch(promise);
    auto future = exec.withTimeout(promise.getFuture(), 20ms);
    REQUIRE_THROWS_AS(future.get(), TimeoutError);
    REQUIRE(watch.waitFor());
    REQUIRE(promise.isCancelled());
  }
  SECTION("a cooperative blocking task sees its stop token") {
    auto ended = std::make_shared<Event>();
    auto sawStop = std::make_shared<std::atomic<bool>>(false);
    auto future = exec.withTimeout(exec.executeAsync([=](std::stop_token stop) {
      waitForStop(stop);
      *sawStop = stop.stop_requested();
      ended->set();
    }),
                                   20ms);
    REQUIRE_THROWS_AS(future.get(), TimeoutError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawStop);
  }
  SECTION("a suspended coroutine is cancelled") {
    auto sawCancel = std::make_shared<std::atomic<bool>>(false);
    auto ended = std::make_shared<Event>();
    auto future = exec.withTimeout(exec.executeAsync([=]() -> asio::awaitable<void> {
      try {
        co_await waitAnHour(sawCancel);
      } catch (...) {
      }
      ended->set();
    }),
                                   20ms);
    REQUIRE_THROWS_AS(future.get(), TimeoutError);
    REQUIRE(ended->waitFor());
    REQUIRE(*sawCancel);
  }
}

TEST_CASE("cancelling a withTimeout future cancels its source", "[executor][timeout][cancel]") {
  AsyncExecutor exec(smallPools());
  auto promise = exec.makePromise<int>();
  auto future = exec.withTimeout(promise.getFuture(), 1h);
  REQUIRE(future.cancel());
  REQUIRE_THROWS_AS(future.get(), CancelledError);
  REQUIRE(promise.isCancelled());
}

TEST_CASE("withFallback with a value replaces failures and timeouts, not cancels",
          "[executor][fallback]") {
  AsyncExecutor exec(smallPools());
  SECTION("a value passes") {
    REQUIRE(exec.withFallback(exec.executeAsync([] { return 1; }), -1).get() == 1);
  }
  SECTION("a failure of a non-std type is replaced") {
    REQUIRE(exec.withFallback(exec.executeAsync([]() -> int { throw 42; }), -1).get() == -1);
  }
  SECTION("a timeout is replaced") {
    auto promise = exec.makePromise<int>();
    CancelWatch watch(promise);
    REQUIRE(exec.withFallback(exec.withTimeout(promise.getFuture(), 10ms), -2).get() == -2);
    REQUIRE(watch.waitFor());
  }
  SECTION("a future cancelled before it was given stays cancelled") {
    auto promise = exec.makePromise<int>();
    auto source = promise.getFuture();
    REQUIRE(source.cancel());
    REQUIRE_THROWS_AS(exec.withFallback(std::move(source), -3).get(), CancelledError);
  }
  SECTION("cancelling the fallback future cancels the source") {
    auto promise = exec.makePromise<int>();
    auto future = exec.withFallback(promise.getFuture(), -4);
    REQUIRE(future.cancel());
    REQUIRE_THROWS_AS(future.get(), CancelledError);
    REQUIRE(promise.isCancelled());
  }
}

TEST_CASE("withFallback with a handler sees the failure", "[executor][fallback]") {
  AsyncExecutor exec(smallPools());
  SECTION("the handler gets the exception") {
    auto future =
        exec.withFallback(exec.executeAsync([]() -> std::string { throw CustomError{5}; }),
                          [](const std::exception_ptr& error) {
                            try {
                              std::rethrow_exception(error);
                            } catch (const CustomError& e) {
                              return "custom " + std::to_string(e.code);
                            } catch (...) {
                              return std::string("other");
                            }
                          });
    REQUIRE(future.get() == "custom 5");
  }
  SECTION("the handler tells a timeout apart") {
    auto promise = exec.makePromise<std::string>();
    auto future = exec.withFallback(exec.withTimeout(promise.getFuture(), 10ms),
                                    [](const std::exception_ptr& error) {
                                      try {
                                        std::rethrow_exception(error);
                                      } catch (const TimeoutError&) {
                                        return std::string("timed out");
                                      } catch (...) {
                                        return std::string("other");
                                      }
                                    });
    REQUIRE(future.get() == "timed out");
  }
  SECTION("a throwing handler's error is the failure") {
    auto future = exec.withFallback(exec.executeAsync([]() -> int { throw 1; }),
                                    [](const std::exception_ptr&) -> int { throw CustomError{6}; });
    REQUIRE_THROWS_AS(future.get(), CustomError);
  }
  SECTION("a value does not call the handler") {
    auto called = std::make_shared<std::atomic<bool>>(false);
    auto future =
        exec.withFallback(exec.executeAsync([] { return 8; }), [called](const std::exception_ptr&) {
          *called = true;
          return 0;
        });
    REQUIRE(future.get() == 8);
    REQUIRE_FALSE(*called);
  }
}

// ---------------------------------------------------------------------------
// Nested combinations
// ---------------------------------------------------------------------------

namespace {

/// A coroutine alternative that awaits `future` (to put futures into
/// executeAny / executeAll, which take callables).
template <class T>
auto awaiting(Future<T> future) {
  return [future = std::move(future)]() mutable -> asio::awaitable<T> {
    co_return co_await std::move(future).asyncGet(asio::use_awaitable);
  };
}

}  // namespace

TEST_CASE("a race of timeouts", "[executor][any][timeout][nested]") {
  AsyncExecutor exec(smallPools());
  auto never1 = exec.makePromise<int>();
  auto never2 = exec.makePromise<int>();
  CancelWatch watch1(never1);
  CancelWatch watch2(never2);

  SECTION("the alternative that answers in time wins") {
    auto race = exec.executeAny(
        awaiting(exec.withTimeout(never1.getFuture(), 20ms)),
        awaiting(exec.withTimeout(exec.executeAsync([] { return 11; }), kPatience)));
    REQUIRE(race.get() == 11);
  }
  SECTION("every alternative times out: AllFailedError of TimeoutErrors") {
    auto race = exec.executeAny(awaiting(exec.withTimeout(never1.getFuture(), 10ms)),
                                awaiting(exec.withTimeout(never2.getFuture(), 20ms)));
    try {
      (void)race.get();
      FAIL("the race should have failed");
    } catch (const AllFailedError& error) {
      REQUIRE(error.errors().size() == 2);
      REQUIRE_THROWS_AS(std::rethrow_exception(error.errors()[0]), TimeoutError);
      REQUIRE_THROWS_AS(std::rethrow_exception(error.errors()[1]), TimeoutError);
    }
    REQUIRE(watch1.waitFor());
    REQUIRE(watch2.waitFor());
  }
  SECTION("a timeout around a race") {
    auto race = exec.executeAny(awaiting(never1.getFuture()), awaiting(never2.getFuture()));
    auto timed = exec.withTimeout(std::move(race), 10ms);
    REQUIRE_THROWS_AS(timed.get(), TimeoutError);
    // The timeout cancelled the race, which cancelled both coroutines,
    // whose asyncGet cancelled the promises' futures.
    REQUIRE(watch1.waitFor());
    REQUIRE(watch2.waitFor());
  }
}

TEST_CASE("all of fallbacks", "[executor][all][fallback][nested]") {
  AsyncExecutor exec(smallPools());
  auto never = exec.makePromise<int>();
  CancelWatch watch(never);
  auto all = exec.executeAll(
      awaiting(exec.withFallback(exec.executeAsync([] { return 1; }), -1)),
      awaiting(exec.withFallback(exec.executeAsync([]() -> int { throw CustomError{2}; }), -2)),
      awaiting(exec.withFallback(exec.withTimeout(never.getFuture(), 10ms), -3)));
  REQUIRE(all.get() == std::tuple{1, -2, -3});
  REQUIRE(watch.waitFor());
}

// ---------------------------------------------------------------------------
// The two pools
// ---------------------------------------------------------------------------

TEST_CASE("timers and coroutines keep working while the blocking pool is saturated",
          "[executor][pools]") {
  AsyncExecutor exec(smallPools(2));
  auto gate = std::make_shared<Event>();
  auto parked = std::make_shared<Countdown>(2);
  SetOnExit openGate{gate};
  auto parkThread = [=] {
    parked->countDown();
    gate->wait();
  };
  auto first = exec.executeAsync(parkThread);
  auto second = exec.executeAsync(parkThread);
  REQUIRE(parked->waitFor());  // every blocking thread is parked

  auto never = exec.makePromise<int>();
  auto timed = exec.withTimeout(never.getFuture(), 20ms);
  REQUIRE(readySoon(timed));
  REQUIRE_THROWS_AS(timed.get(), TimeoutError);

  auto coroutine = exec.executeAsync([]() -> asio::awaitable<int> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 5ms);
    co_await timer.async_wait(asio::use_awaitable);
    co_return 99;
  });
  REQUIRE(readySoon(coroutine));
  REQUIRE(coroutine.get() == 99);

  REQUIRE_FALSE(first.isReady());
  REQUIRE_FALSE(second.isReady());
  gate->set();
  REQUIRE_NOTHROW(first.get());
  REQUIRE_NOTHROW(second.get());
}

TEST_CASE("continuations never run on the thread that calls cancel() or get()",
          "[executor][then][threads]") {
  AsyncExecutor exec(smallPools());
  const auto testThread = std::this_thread::get_id();

  SECTION("asyncGet's handler, the future cancelled from the test thread through its slot") {
    auto promise = exec.makePromise<int>();
    asio::cancellation_signal signal;
    std::promise<std::thread::id> ranOn;
    promise.getFuture().asyncGet(asio::bind_cancellation_slot(
        signal.slot(),
        [&ranOn](std::exception_ptr, int) { ranOn.set_value(std::this_thread::get_id()); }));
    signal.emit(asio::cancellation_type::terminal);
    auto id = ranOn.get_future();
    REQUIRE(id.wait_for(kPatience) == std::future_status::ready);
    REQUIRE(id.get() != testThread);
    REQUIRE(promise.isCancelled());
  }
  SECTION("a continuation attached to a future the test thread cancelled") {
    auto promise = exec.makePromise<int>();
    auto future = promise.getFuture();
    REQUIRE(future.cancel());
    auto ranOn = std::move(future).recover([](Future<int> cancelled) {
      bool sawCancel = false;
      try {
        (void)cancelled.get();
      } catch (const CancelledError&) {
        sawCancel = true;
      }
      return std::pair{sawCancel, std::this_thread::get_id()};
    });
    const auto [sawCancel, thread] = ranOn.get();
    REQUIRE(sawCancel);
    REQUIRE(thread != testThread);
  }
  SECTION("a then-continuation of a future that completes while the test thread blocks in get()") {
    auto chained = exec.executeAsync([]() -> asio::awaitable<int> {
                         asio::steady_timer timer(co_await asio::this_coro::executor, 10ms);
                         co_await timer.async_wait(asio::use_awaitable);
                         co_return 1;
                       })
                       .then([](int) { return std::this_thread::get_id(); });
    REQUIRE(chained.get() != testThread);
  }
  SECTION("a then-continuation of a promise fulfilled by another thread") {
    auto promise = exec.makePromise<int>();
    auto chained = promise.getFuture().then([](int) { return std::this_thread::get_id(); });
    std::thread producer([&promise] { promise.setValue(1); });
    const auto ranOn = chained.get();
    producer.join();
    REQUIRE(ranOn != testThread);
  }
}

// ---------------------------------------------------------------------------
// asyncGet
// ---------------------------------------------------------------------------

TEST_CASE("asyncGet with use_awaitable inside a coroutine", "[executor][asio][coroutine]") {
  AsyncExecutor exec(smallPools());
  std::promise<int> result;

  SECTION("co_spawned on the core executor") {
    asio::co_spawn(
        exec.coreExecutor(),
        [&]() -> asio::awaitable<void> {
          auto five = exec.executeAsync([] { return 5; });
          int value = co_await five.asyncGet(asio::use_awaitable);
          auto failing = exec.executeAsync([]() -> int { throw CustomError{1}; });
          try {
            co_await failing.asyncGet(asio::use_awaitable);
          } catch (const CustomError& error) {
            value += error.code;
          }
          result.set_value(value);
        },
        asio::detached);
    auto value = result.get_future();
    REQUIRE(value.wait_for(kPatience) == std::future_status::ready);
    REQUIRE(value.get() == 6);
  }
  SECTION("co_spawned on an io_context") {
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto seven = exec.executeAsync([] { return 7; });
          result.set_value(co_await seven.asyncGet(asio::use_awaitable));
        },
        asio::detached);
    io.run();  // returns once the coroutine ended: asyncGet keeps io busy meanwhile
    REQUIRE(result.get_future().get() == 7);
  }
}

TEST_CASE("asyncGet with a plain callback runs it on the core pool, never inline",
          "[executor][asio]") {
  AsyncExecutor exec(smallPools());
  const auto testThread = std::this_thread::get_id();

  SECTION("a callback without an executor") {
    std::promise<std::pair<int, std::thread::id>> result;
    exec.executeAsync([] { return 3; }).asyncGet([&result](std::exception_ptr error, int value) {
      result.set_value({error ? -1 : value, std::this_thread::get_id()});
    });
    auto outcome = result.get_future();
    REQUIRE(outcome.wait_for(kPatience) == std::future_status::ready);
    const auto [value, thread] = outcome.get();
    REQUIRE(value == 3);
    REQUIRE(thread != testThread);
  }
  SECTION("a ready future, asyncGet called on the handler's strand") {
    auto strand = asio::make_strand(exec.coreExecutor());
    std::promise<bool> sawReturn;
    auto returned = std::make_shared<bool>(false);
    asio::post(strand, [&, returned] {
      jobtrack::makeReadyFuture(1).asyncGet(asio::bind_executor(
          strand,
          [&sawReturn, returned](std::exception_ptr, int) { sawReturn.set_value(*returned); }));
      *returned = true;
    });
    auto outcome = sawReturn.get_future();
    REQUIRE(outcome.wait_for(kPatience) == std::future_status::ready);
    REQUIRE(outcome.get());
  }
}

TEST_CASE("asyncGet's cancellation slot cancels the future and its work",
          "[executor][asio][cancel]") {
  AsyncExecutor exec(smallPools());
  auto running = std::make_shared<Event>();
  auto sawStop = std::make_shared<std::atomic<bool>>(false);
  auto ended = std::make_shared<Event>();
  std::promise<bool> cancelled;
  asio::cancellation_signal signal;
  auto strand = asio::make_strand(exec.coreExecutor());
  asio::co_spawn(
      strand,
      [&]() -> asio::awaitable<void> {
        auto work = exec.executeAsync([=](std::stop_token stop) {
          running->set();
          waitForStop(stop);
          *sawStop = stop.stop_requested();
          ended->set();
          return 0;
        });
        try {
          co_await work.asyncGet(asio::bind_cancellation_slot(signal.slot(), asio::use_awaitable));
          cancelled.set_value(false);
        } catch (const CancelledError&) {
          cancelled.set_value(true);
        }
      },
      asio::detached);
  REQUIRE(running->waitFor());
  // The signal belongs to the coroutine's strand: emit it there.
  asio::post(strand, [&signal] { signal.emit(asio::cancellation_type::terminal); });
  auto outcome = cancelled.get_future();
  REQUIRE(outcome.wait_for(kPatience) == std::future_status::ready);
  REQUIRE(outcome.get());
  REQUIRE(ended->waitFor());
  REQUIRE(*sawStop);
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

TEST_CASE("shutdown with work in flight completes every future without hanging",
          "[executor][shutdown]") {
  AsyncExecutor exec(smallPools(1));
  auto running = std::make_shared<Event>();
  auto sawStop = std::make_shared<std::atomic<bool>>(false);
  auto cooperative = exec.executeAsync([=](std::stop_token stop) {
    running->set();
    waitForStop(stop);
    *sawStop = stop.stop_requested();
    return 1;
  });
  REQUIRE(running->waitFor());

  auto queuedRan = std::make_shared<std::atomic<bool>>(false);
  auto queued = exec.executeAsync([queuedRan] { *queuedRan = true; });

  auto suspended = std::make_shared<Event>();
  auto sawCancel = std::make_shared<std::atomic<bool>>(false);
  auto coroutine = exec.executeAsync([=]() -> asio::awaitable<int> {
    suspended->set();
    co_await waitAnHour(sawCancel);
    co_return 1;
  });
  REQUIRE(suspended->waitFor());

  const auto report = exec.shutdown();
  REQUIRE(report.abandonedThreads == 0);
  REQUIRE(report.coreDrained);
  REQUIRE(exec.isShutdown());

  REQUIRE(cooperative.isReady());
  REQUIRE(queued.isReady());
  REQUIRE(coroutine.isReady());
  REQUIRE_THROWS_AS(cooperative.get(), CancelledError);
  REQUIRE_THROWS_AS(queued.get(), CancelledError);
  REQUIRE_THROWS_AS(coroutine.get(), CancelledError);
  REQUIRE(*sawStop);
  REQUIRE_FALSE(*queuedRan);
  REQUIRE(*sawCancel);

  REQUIRE_THROWS_AS(exec.executeAsync([] { return 1; }), ExecutorShutdownError);
  REQUIRE_THROWS_AS(exec.executeAsync([]() -> asio::awaitable<void> { co_return; }),
                    ExecutorShutdownError);

  const auto again = exec.shutdown();  // idempotent
  REQUIRE(again.abandonedThreads == report.abandonedThreads);
  REQUIRE(again.coreDrained == report.coreDrained);

  const auto stats = exec.stats();
  REQUIRE(stats.submitted == 3);
  REQUIRE(stats.cancelled == 3);
  REQUIRE(stats.queued == 0);
  REQUIRE(stats.running == 0);
}

TEST_CASE("a coroutine cancelled while the executor shuts down still gets the signal",
          "[executor][shutdown][coroutine]") {
  // The cancel's signal is posted to the coroutine's strand: shutdown must
  // not drop the strand under it, or the coroutine would wait out its hour
  // and shutdown its whole timeout. Repeated, since it is a race.
  for (int round = 0; round < 20; ++round) {
    AsyncExecutor exec(smallPools(1));
    auto suspended = std::make_shared<Event>();
    auto sawCancel = std::make_shared<std::atomic<bool>>(false);
    auto coroutine = exec.executeAsync([=]() -> asio::awaitable<void> {
      suspended->set();
      co_await waitAnHour(sawCancel);
    });
    REQUIRE(suspended->waitFor());
    std::thread canceller([&coroutine] { coroutine.cancel(); });
    const auto report = exec.shutdown();
    canceller.join();
    REQUIRE(report.coreDrained);
    REQUIRE(*sawCancel);
    REQUIRE_THROWS_AS(coroutine.get(), CancelledError);
  }
}

TEST_CASE("a task ignoring its stop token is abandoned at shutdown and finishes later safely",
          "[executor][shutdown][lifetime]") {
  auto exec =
      std::make_unique<AsyncExecutor>(smallPools(1, 50ms));  // no idle thread to miss the 50 ms
  auto gate = std::make_shared<Event>();
  auto running = std::make_shared<Event>();
  SetOnExit openGate{gate};
  auto probe = makeReleaseProbe();
  auto stubborn = exec->executeAsync([gate, running, token = std::move(probe.token)] {
    running->set();
    gate->wait();  // ignores its stop token
    return 1;
  });
  REQUIRE(running->waitFor());

  const auto report = exec->shutdown();
  REQUIRE(report.abandonedThreads == 1);
  REQUIRE(stubborn.isReady());
  REQUIRE_THROWS_AS(stubborn.get(), CancelledError);

  // The abandoned thread now owns the last references to the executor's
  // internals: it must finish without touching freed memory (ASan) and
  // without deadlocking on the pool it destroys (TSan).
  exec.reset();
  gate->set();
  REQUIRE(probe.released.wait_for(kPatience) == std::future_status::ready);
}

TEST_CASE("shutdown from two threads at once: both wait, both get the same report",
          "[executor][shutdown]") {
  AsyncExecutor exec(smallPools(1));
  auto running = std::make_shared<Event>();
  auto task = exec.executeAsync([=](std::stop_token stop) {
    running->set();
    waitForStop(stop);
  });
  REQUIRE(running->waitFor());
  auto other = std::async(std::launch::async, [&exec] { return exec.shutdown(); });
  const auto mine = exec.shutdown();
  const auto theirs = other.get();
  REQUIRE(mine.abandonedThreads == theirs.abandonedThreads);
  REQUIRE(mine.coreDrained == theirs.coreDrained);
  REQUIRE(task.isReady());
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

TEST_CASE("ExecutorStats add up once everything settled", "[executor][stats]") {
  AsyncExecutor exec(smallPools(1));
  auto settled = std::make_shared<Countdown>(5);
  struct Settles {  // counts down once the executor destroyed the work's closure
    std::shared_ptr<Countdown> countdown;
    ~Settles() {
      if (countdown) countdown->countDown();
    }
    Settles(std::shared_ptr<Countdown> c) : countdown(std::move(c)) {}
    Settles(Settles&& other) noexcept : countdown(std::move(other.countdown)) {}
    Settles(const Settles&) = delete;
  };

  auto gate = std::make_shared<Event>();
  auto parked = std::make_shared<Event>();
  SetOnExit openGate{gate};
  auto ok = exec.executeAsync([=, s = Settles(settled)] {
    parked->set();
    gate->wait();
    return 1;
  });
  REQUIRE(parked->waitFor());
  auto cancelledQueued = exec.executeAsync([s = Settles(settled)] { return 2; });
  auto failing = exec.executeAsync([s = Settles(settled)]() -> int { throw 42; });
  auto coroutine =
      exec.executeAsync([s = Settles(settled)]() -> asio::awaitable<int> { co_return 3; });
  auto stopped = exec.executeAsync([s = Settles(settled)](std::stop_token stop) {
    waitForStop(stop);
    return 4;
  });

  auto during = exec.stats();
  REQUIRE(during.submitted == 5);
  REQUIRE(during.submitted ==
          during.queued + during.running + during.completed + during.failed + during.cancelled);

  REQUIRE(cancelledQueued.cancel());
  gate->set();
  REQUIRE(ok.get() == 1);
  REQUIRE_THROWS_AS(failing.get(), int);
  REQUIRE(coroutine.get() == 3);
  REQUIRE(stopped.cancel());  // running or still queued: cancelled either way
  REQUIRE_THROWS_AS(stopped.get(), CancelledError);
  REQUIRE(settled->waitFor());

  const auto stats = exec.stats();
  REQUIRE(stats.submitted == 5);
  REQUIRE(stats.queued == 0);
  REQUIRE(stats.running == 0);
  REQUIRE(stats.completed == 2);
  REQUIRE(stats.failed == 1);
  REQUIRE(stats.cancelled == 2);
  REQUIRE(stats.cancelledStillRunning == 0);
  REQUIRE(stats.blockingQueueDepth == 0);
  REQUIRE(stats.submitted ==
          stats.queued + stats.running + stats.completed + stats.failed + stats.cancelled);
}

TEST_CASE("cancelledStillRunning counts a cancelled task whose body still runs",
          "[executor][stats][cancel]") {
  AsyncExecutor exec(smallPools());
  auto gate = std::make_shared<Event>();
  auto running = std::make_shared<Event>();
  SetOnExit openGate{gate};
  auto probe = makeReleaseProbe();
  auto stubborn = exec.executeAsync([gate, running, token = std::move(probe.token)] {
    running->set();
    gate->wait();
    return 1;
  });
  REQUIRE(running->waitFor());
  REQUIRE(exec.stats().running == 1);
  REQUIRE(stubborn.cancel());
  REQUIRE_THROWS_AS(stubborn.get(), CancelledError);

  auto stats = exec.stats();
  REQUIRE(stats.cancelled == 1);
  REQUIRE(stats.cancelledStillRunning == 1);
  REQUIRE(stats.running == 0);

  gate->set();
  REQUIRE(probe.released.wait_for(kPatience) == std::future_status::ready);
  stats = exec.stats();
  REQUIRE(stats.cancelledStillRunning == 0);
  REQUIRE(stats.cancelled == 1);
  REQUIRE(stats.completed == 0);
  REQUIRE(stats.submitted ==
          stats.queued + stats.running + stats.completed + stats.failed + stats.cancelled);
}

// ---------------------------------------------------------------------------
// An external io_context
// ---------------------------------------------------------------------------

TEST_CASE("an executor on an external io_context runs coroutines there", "[executor][external]") {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread ioThread([&io] { io.run(); });
  const auto ioThreadId = ioThread.get_id();
  {
    AsyncExecutor exec(io.get_executor(), smallPools());
    auto ranOn = exec.executeAsync([]() -> asio::awaitable<std::thread::id> {
      asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
      co_await timer.async_wait(asio::use_awaitable);
      co_return std::this_thread::get_id();
    });
    REQUIRE(ranOn.get() == ioThreadId);

    auto continuedOn =
        exec.executeAsync([] { return 1; }).then([](int) { return std::this_thread::get_id(); });
    REQUIRE(continuedOn.get() != std::this_thread::get_id());

    auto never = exec.makePromise<int>();
    REQUIRE_THROWS_AS(exec.withTimeout(never.getFuture(), 10ms).get(), TimeoutError);
    exec.shutdown();
  }
  guard.reset();
  ioThread.join();
}

// ---------------------------------------------------------------------------
// The examples of docs/executor.md, verbatim (each followed by its checks),
// so that the documentation shows code that compiles and does what it says.
// ---------------------------------------------------------------------------

namespace docs {

/// Stands in for a slow service: answers after an hour, unless cancelled.
int slowLookup(std::stop_token stop) {
  std::mutex mutex;
  std::condition_variable_any answered;
  std::unique_lock lock(mutex);
  answered.wait_for(lock, stop, std::chrono::hours(1), [] { return false; });
  return 1;
}

}  // namespace docs

TEST_CASE("docs/executor.md examples", "[executor][docs]") {
  using docs::slowLookup;

  SECTION("quick start") {
    jobtrack::AsyncExecutor exec;  // core pool: one thread per core; blocking pool: 32 threads
    auto answer = exec.executeAsync([] { return 6 * 7; });
    int value = answer.get();  // 42
    REQUIRE(value == 42);
  }

  jobtrack::AsyncExecutor exec(smallPools());

  SECTION("executeAsync") {
    // A plain callable runs on the blocking pool.
    jobtrack::Future<int> sum = exec.executeAsync([] { return 1 + 2; });

    // Taking a std::stop_token lets it notice a cancel.
    jobtrack::Future<int> poll = exec.executeAsync([](std::stop_token stop) {
      int rounds = 0;
      while (!stop.stop_requested() && rounds < 3) ++rounds;  // one unit of work per round
      return rounds;
    });

    // A coroutine runs on the core pool; cancel reaches its pending co_await.
    jobtrack::Future<std::string> tick = exec.executeAsync([]() -> asio::awaitable<std::string> {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(5));
      co_await timer.async_wait(asio::use_awaitable);
      co_return "tick";
    });

    int three = sum.get();  // waits; rethrows whatever the work threw
    REQUIRE(three == 3);
    REQUIRE(poll.get() == 3);
    REQUIRE(tick.get() == "tick");
  }

  SECTION("cancel") {
    auto job = exec.executeAsync([](std::stop_token stop) {
      std::mutex mutex;
      std::condition_variable_any wakeUp;
      std::unique_lock lock(mutex);
      wakeUp.wait_for(lock, stop, std::chrono::hours(1), [] { return false; });  // until cancelled
      return stop.stop_requested() ? -1 : 0;
    });
    bool cancelled = job.cancel();  // true: job is complete now, its token signalled
    try {
      job.get();
    } catch (const jobtrack::CancelledError&) {
      // the body's return value, if any, is discarded
    }
    REQUIRE(cancelled);
  }

  SECTION("then and recover") {
    auto length = exec.executeAsync([] { return std::string("hello"); }).then([](std::string s) {
      return s.size();
    });
    auto safe = exec.executeAsync([]() -> int { throw std::runtime_error("boom"); })
                    .recover([](jobtrack::Future<int> failed) {
                      try {
                        return failed.get();
                      } catch (const std::exception&) {
                        return -1;
                      }
                    });
    REQUIRE(length.get() == 5);
    REQUIRE(safe.get() == -1);
  }

  SECTION("asyncGet") {
    std::promise<int> done;
    asio::co_spawn(
        exec.coreExecutor(),
        [&exec, &done]() -> asio::awaitable<void> {
          auto one = exec.executeAsync([] { return 1; });
          int value = co_await one.asyncGet(asio::use_awaitable);
          done.set_value(value);  // a failure would have been thrown by the co_await
        },
        asio::detached);

    exec.executeAsync([] { return 2; }).asyncGet([](std::exception_ptr error, int value) {
      // runs on the core pool; error is null on success
      (void)error;
      (void)value;
    });
    auto value = done.get_future();
    REQUIRE(value.wait_for(kPatience) == std::future_status::ready);
    REQUIRE(value.get() == 1);
  }

  SECTION("executeAndThen") {
    auto sorted = exec.executeAndThen(
        [] {
          return std::vector<int>{3, 1, 2};
        },                                              // blocking pool
        [](std::vector<int> v, std::stop_token stop) {  // blocking pool, sees a cancel
          if (!stop.stop_requested()) std::sort(v.begin(), v.end());
          return v;
        });
    auto viaCoroutine =
        exec.executeAndThen([] { return 20; },
                            [](int v) -> asio::awaitable<int> {
                              co_return v + 1;  // the second stage may be a coroutine...
                            });
    auto viaFuture = exec.executeAndThen(
        [] { return 20; },
        [&exec](int v) {
          return exec.executeAsync([v] { return v + 2; });  // ...or return a Future<U>
        });
    REQUIRE(sorted.get() == std::vector<int>{1, 2, 3});
    REQUIRE(viaCoroutine.get() == 21);
    REQUIRE(viaFuture.get() == 22);
  }

  SECTION("executeAny") {
    auto fastest =
        exec.executeAny([]() -> std::string { throw std::runtime_error("mirror 1 is down"); },
                        [] { return std::string("mirror 2"); });
    std::string from = fastest.get();  // "mirror 2": a failure never wins
    REQUIRE(from == "mirror 2");

    std::vector<std::function<int()>> mirrors{[]() -> int { throw std::runtime_error("down"); },
                                              []() -> int { throw 404; }};
    try {
      exec.executeAny(mirrors).get();
    } catch (const jobtrack::AllFailedError& error) {
      // error.errors()[i] is the failure of mirrors[i]
      REQUIRE(jobtrack::describeException(error.errors()[0]) == "down");
      REQUIRE(jobtrack::describeException(error.errors()[1]) == "non-standard exception");
    }
  }

  SECTION("executeAll") {
    auto [count, name, nothing] =
        exec.executeAll([] { return 3; }, [] { return std::string("three"); }, [] {}).get();

    std::vector<std::function<int()>> parts{[] { return 1; }, [] { return 2; }};
    std::vector<int> values = exec.executeAll(parts).get();  // {1, 2}: input order
    REQUIRE(count == 3);
    REQUIRE(name == "three");
    REQUIRE(nothing == std::monostate{});
    REQUIRE(values == std::vector<int>{1, 2});
  }

  SECTION("withTimeout and withFallback") {
    using namespace std::chrono_literals;
    auto never = exec.makePromise<int>();  // nobody fulfils it
    auto timed = exec.withTimeout(never.getFuture(), 20ms);
    // timed.get() throws jobtrack::TimeoutError; never's future is cancelled

    auto orZero = exec.withFallback(exec.withTimeout(exec.executeAsync(slowLookup), 10ms), 0);
    auto explained = exec.withFallback(
        exec.executeAsync([]() -> std::string { throw 42; }),
        [](std::exception_ptr error) { return jobtrack::describeException(error); });
    // Java's completeOnTimeout: replace a timeout only, let other failures through.
    auto onlyTimeouts = exec.withFallback(exec.withTimeout(exec.executeAsync(slowLookup), 10ms),
                                          [](std::exception_ptr error) -> int {
                                            try {
                                              std::rethrow_exception(error);
                                            } catch (const jobtrack::TimeoutError&) {
                                              return 0;
                                            }  // anything else propagates
                                          });
    REQUIRE_THROWS_AS(timed.get(), jobtrack::TimeoutError);
    REQUIRE(onlyTimeouts.get() == 0);
    REQUIRE(orZero.get() == 0);
    REQUIRE(explained.get() == "non-standard exception");
  }

  SECTION("shutdown and stats") {
    jobtrack::ExecutorOptions options;
    options.blockingThreads = 4;
    options.shutdownTimeout = std::chrono::milliseconds(500);
    jobtrack::AsyncExecutor service(options);

    auto pending = service.executeAsync([](std::stop_token stop) {
      std::mutex mutex;
      std::condition_variable_any wakeUp;
      std::unique_lock lock(mutex);
      wakeUp.wait(lock, stop, [] { return false; });  // honours its token
    });
    jobtrack::ExecutorStats stats = service.stats();  // submitted 1: queued or running
    jobtrack::ShutdownReport report = service.shutdown();
    // pending is complete (CancelledError); report.abandonedThreads == 0
    REQUIRE(stats.submitted == 1);
    REQUIRE(report.abandonedThreads == 0);
    REQUIRE_THROWS_AS(pending.get(), jobtrack::CancelledError);
    REQUIRE_THROWS_AS(service.executeAsync([] {}), jobtrack::ExecutorShutdownError);
  }
}

TEST_CASE("docs/executor.md example: an external io_context", "[executor][docs][external]") {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread ioThread([&io] { io.run(); });

  jobtrack::AsyncExecutor exec(io.get_executor());  // coroutines, timers, continuations run on io
  auto onIo = exec.executeAsync(
      []() -> asio::awaitable<std::thread::id> { co_return std::this_thread::get_id(); });
  REQUIRE(onIo.get() == ioThread.get_id());

  exec.shutdown();  // before the io_context stops running
  work.reset();
  ioThread.join();
}

// ---------------------------------------------------------------------------
// Timeouts at scale (one timer for every withTimeout, shared error objects)
// and combinators that stop the others before delivering their outcome
// ---------------------------------------------------------------------------

TEST_CASE("TimeoutError and CancelledError are caught by const reference on any thread",
          "[executor][timeout][errors]") {
  AsyncExecutor exec(smallPools());
  std::vector<Promise<int>> promises;
  std::vector<Future<int>> timed;
  for (int i = 0; i < 50; ++i) {
    promises.push_back(exec.makePromise<int>());
    timed.push_back(exec.withTimeout(promises.back().getFuture(), 1ms));
  }
  // Rethrown and caught on several threads at once.
  auto caught = std::make_shared<std::atomic<int>>(0);
  std::vector<Future<void>> checks;
  for (auto& future : timed) {
    checks.push_back(std::move(future).recover([caught](Future<int> ready) {
      try {
        (void)ready.get();
      } catch (const TimeoutError& error) {
        if (std::string(error.what()) == "jobtrack: operation timed out") ++*caught;
      }
    }));
  }
  for (auto& check : checks) check.get();
  REQUIRE(*caught == 50);
  auto promise = exec.makePromise<int>();
  auto future = promise.getFuture();
  REQUIRE(future.cancel());
  try {
    (void)future.get();
    FAIL("a cancelled future must throw");
  } catch (const CancelledError& error) {
    REQUIRE(std::string(error.what()) == "jobtrack: operation cancelled");
  }
}

TEST_CASE("withTimeout: a shorter deadline added after a longer one still fires first",
          "[executor][timeout][queue]") {
  AsyncExecutor exec(smallPools());
  auto slow = exec.makePromise<int>();
  auto fast = exec.makePromise<int>();
  auto late = exec.withTimeout(slow.getFuture(), 1h);
  auto early = exec.withTimeout(fast.getFuture(), 10ms);
  REQUIRE_THROWS_AS(early.get(), TimeoutError);
  REQUIRE_FALSE(late.isReady());
  REQUIRE(slow.setValue(7));
  REQUIRE(late.get() == 7);
}

TEST_CASE("withTimeout: many deadlines in any order each expire once, in-time ones pass",
          "[executor][timeout][queue]") {
  AsyncExecutor exec(smallPools());
  constexpr int count = 300;
  std::vector<Promise<int>> promises;
  std::vector<Future<int>> futures;
  for (int i = 0; i < count; ++i) {
    promises.push_back(exec.makePromise<int>());
    // Deadlines 0..29 ms in a scrambled order; every third one an hour.
    const auto timeout =
        i % 3 == 0 ? std::chrono::milliseconds(1h) : std::chrono::milliseconds((i * 7) % 30);
    futures.push_back(exec.withTimeout(promises.back().getFuture(), timeout));
  }
  for (int i = 0; i < count; i += 3) REQUIRE(promises[i].setValue(i));
  for (int i = 0; i < count; ++i) {
    if (i % 3 == 0) {
      REQUIRE(futures[i].get() == i);
    } else {
      REQUIRE_THROWS_AS(futures[i].get(), TimeoutError);
    }
  }
  for (int i = 1; i < count; ++i) {
    if (i % 3 == 0) continue;
    // The source is cancelled just after the TimeoutError is published.
    CancelWatch watch(promises[i]);
    REQUIRE(watch.waitFor());
  }
}

TEST_CASE("withTimeout: zero, negative, fractional and huge timeouts",
          "[executor][timeout][queue]") {
  AsyncExecutor exec(smallPools());
  auto never1 = exec.makePromise<int>();
  auto never2 = exec.makePromise<int>();
  auto never3 = exec.makePromise<int>();
  REQUIRE_THROWS_AS(exec.withTimeout(never1.getFuture(), 0ms).get(), TimeoutError);
  REQUIRE_THROWS_AS(exec.withTimeout(never2.getFuture(), -5s).get(), TimeoutError);
  REQUIRE_THROWS_AS(
      exec.withTimeout(never3.getFuture(), std::chrono::duration<double, std::milli>(1.5)).get(),
      TimeoutError);
  auto later = exec.makePromise<int>();
  auto huge = exec.withTimeout(later.getFuture(), std::chrono::hours::max());
  REQUIRE_FALSE(huge.isReady());
  REQUIRE(later.setValue(3));
  REQUIRE(huge.get() == 3);
}

TEST_CASE("withTimeout of a ready future passes its outcome at once",
          "[executor][timeout][queue]") {
  AsyncExecutor exec(smallPools());
  auto timed = exec.withTimeout(makeReadyFuture(5), 1h);
  REQUIRE(timed.isReady());
  REQUIRE(timed.get() == 5);
  auto failed =
      exec.withTimeout(makeFailedFuture<int>(std::make_exception_ptr(CustomError{4})), 1h);
  REQUIRE(failed.isReady());
  REQUIRE_THROWS_AS(failed.get(), CustomError);
}

TEST_CASE("withTimeout leaves no pending wait once its sources complete in time",
          "[executor][timeout][queue][external]") {
  // No work guard: run() returns once nothing is pending, which requires the
  // timeout queue to have cancelled its timer when its last entry left.
  asio::io_context io;
  AsyncExecutor exec(io.get_executor(), smallPools());
  auto first = exec.makePromise<int>();
  auto second = exec.makePromise<int>();
  auto a = exec.withTimeout(first.getFuture(), 1h);
  auto b = exec.withTimeout(second.getFuture(), 2h);
  REQUIRE(first.setValue(1));
  REQUIRE(second.setValue(2));
  io.run_for(kPatience);
  REQUIRE(io.stopped());  // ran out of work, rather than out of patience
  REQUIRE(a.get() == 1);
  REQUIRE(b.get() == 2);
}

TEST_CASE("shutdown cancels pending timeouts, and later ones are cancelled at once",
          "[executor][timeout][queue][shutdown]") {
  AsyncExecutor exec(smallPools());
  auto never = exec.makePromise<int>();
  CancelWatch watch(never);
  auto pending = exec.withTimeout(never.getFuture(), 1h);
  const auto report = exec.shutdown();
  REQUIRE(report.coreDrained);  // no timer wait held the core pool back
  REQUIRE(pending.isReady());
  REQUIRE_THROWS_AS(pending.get(), CancelledError);
  REQUIRE(watch.waitFor());

  auto after = exec.makePromise<int>();
  auto refused = exec.withTimeout(after.getFuture(), 1h);
  REQUIRE(refused.isReady());
  REQUIRE_THROWS_AS(refused.get(), CancelledError);
  REQUIRE(after.isCancelled());
  auto ready = exec.withTimeout(makeReadyFuture(1), 1h);
  REQUIRE_THROWS_AS(ready.get(), CancelledError);
}

TEST_CASE("executeAny stops the losers before the winner's value is delivered",
          "[executor][any][cancel]") {
  AsyncExecutor exec(smallPools());
  auto running = std::make_shared<Countdown>(2);
  // The losers' tokens, read when the value is delivered. (Not a stop
  // callback: request_stop() may wake waitForStop's own callback first, and
  // a loser that returns at once unregisters a callback not yet invoked.)
  auto tokens = std::make_shared<std::array<std::stop_token, 2>>();
  auto loser = [=](int index) {
    return [=](std::stop_token stop) {
      (*tokens)[static_cast<std::size_t>(index)] = stop;
      running->countDown();
      waitForStop(stop);
      return 0;
    };
  };
  auto race =
      exec.executeAny([running] { return running->waitFor() ? 1 : -1; }, loser(0), loser(1));
  // Runs as soon as the value is delivered: both stops were requested by then.
  auto seen = std::move(race).then([tokens](int value) {
    return std::make_pair(value, (*tokens)[0].stop_requested() && (*tokens)[1].stop_requested());
  });
  REQUIRE(seen.get() == std::make_pair(1, true));
}

TEST_CASE("executeAll cancels the siblings before the first failure is delivered",
          "[executor][all][cancel]") {
  AsyncExecutor exec(smallPools());
  auto running = std::make_shared<Countdown>(1);
  // The sibling's token, read when the failure is delivered (see above for
  // why not a stop callback).
  auto token = std::make_shared<std::stop_token>();
  auto all = exec.executeAll(
      [=](std::stop_token stop) {
        *token = stop;
        running->countDown();
        waitForStop(stop);
        return 0;
      },
      [running]() -> int { throw CustomError{running->waitFor() ? 9 : -1}; });
  auto seen = std::move(all).recover([token](auto ready) {
    int code = 0;
    try {
      (void)ready.get();
    } catch (const CustomError& error) {
      code = error.code;
    }
    return std::make_pair(code, token->stop_requested());
  });
  REQUIRE(seen.get() == std::make_pair(9, true));
}
