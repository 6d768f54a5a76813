// Tests for Future<T> and Promise<T> on their own (no executor): values,
// failures of any type, cancellation, continuations (then / recover, with
// flattening), the started notification and asyncGet.

#include "jobtrack/future.hpp"

#include "catch.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using jobtrack::BrokenPromiseError;
using jobtrack::CancelledError;
using jobtrack::Future;
using jobtrack::Promise;
using namespace std::chrono_literals;

namespace {

/// A failure that is not a std::exception.
struct CustomError {
  int code;
};

}  // namespace

TEST_CASE("a promise's value reaches its future", "[future]") {
  SECTION("a value") {
    Promise<std::string> promise;
    auto future = promise.getFuture();
    REQUIRE(future.valid());
    REQUIRE_FALSE(future.isReady());
    REQUIRE_FALSE(future.waitFor(0ms));
    REQUIRE(promise.setValue("done"));
    REQUIRE(future.isReady());
    REQUIRE(future.waitFor(0ms));
    REQUIRE(future.get() == "done");
    REQUIRE_FALSE(future.valid());
  }
  SECTION("void") {
    Promise<void> promise;
    auto future = promise.getFuture();
    REQUIRE(promise.setValue());
    future.wait();
    REQUIRE_NOTHROW(future.get());
  }
  SECTION("a move-only value") {
    Promise<std::unique_ptr<int>> promise;
    auto future = promise.getFuture();
    promise.setValue(std::make_unique<int>(7));
    REQUIRE(*future.get() == 7);
  }
  SECTION("set from another thread while get() blocks") {
    Promise<int> promise;
    auto future = promise.getFuture();
    std::thread producer([&] { promise.setValue(5); });
    REQUIRE(future.get() == 5);
    producer.join();
  }
  SECTION("only the first result counts") {
    Promise<int> promise;
    auto future = promise.getFuture();
    REQUIRE(promise.setValue(1));
    REQUIRE_FALSE(promise.setValue(2));
    REQUIRE_FALSE(promise.setException(std::make_exception_ptr(std::runtime_error("late"))));
    REQUIRE(future.get() == 1);
  }
}

TEST_CASE("threads blocked on many futures each wake for their own", "[future][wait]") {
  // Blocked threads sleep in a table of wait places shared by address: with
  // more futures than places, completing one future must neither lose
  // another's wake-up nor end another's wait.
  constexpr int count = 300;
  constexpr int threads = 8;
  std::vector<Promise<int>> promises(count);
  std::vector<Future<int>> futures;
  for (auto& promise : promises) futures.push_back(promise.getFuture());

  std::atomic<int> woken{0};
  std::atomic<int> wrong{0};
  // Each future is fulfilled only once its waiter is about to block on it.
  std::vector<std::atomic<bool>> aboutToWait(count);
  std::vector<std::thread> waiters;
  for (int t = 0; t < threads; ++t) {
    waiters.emplace_back([&, t] {
      // In the producer's order, so that several threads are asleep at once
      // on futures about to complete.
      for (int i = t; i < count; i += threads) {
        aboutToWait[i] = true;
        if (i % 2 == 0) {
          futures[i].wait();
        } else if (!futures[i].waitFor(60s)) {
          ++wrong;
        }
        if (futures[i].get() != i) ++wrong;
        ++woken;
      }
    });
  }
  Promise<int> never;
  auto unfulfilled = never.getFuture();
  std::atomic<bool> producing{true};
  std::atomic<int> endedEarly{0};
  std::thread bystander([&] {
    while (producing) {
      if (unfulfilled.waitFor(1ms)) ++endedEarly;
    }
  });

  for (int i = 0; i < count; ++i) {
    while (!aboutToWait[i]) std::this_thread::yield();
    promises[i].setValue(i);
  }
  for (auto& waiter : waiters) waiter.join();
  producing = false;
  bystander.join();

  REQUIRE(woken == count);
  REQUIRE(wrong == 0);
  REQUIRE(endedEarly == 0);
  REQUIRE_FALSE(unfulfilled.isReady());
}

TEST_CASE("get() rethrows a failure of any type", "[future]") {
  SECTION("a std exception") {
    Promise<int> promise;
    auto future = promise.getFuture();
    promise.setException(std::make_exception_ptr(std::invalid_argument("bad input")));
    REQUIRE_THROWS_AS(future.get(), std::invalid_argument);
  }
  SECTION("an int (throw 42)") {
    Promise<int> promise;
    auto future = promise.getFuture();
    promise.setException(std::make_exception_ptr(42));
    try {
      (void)future.get();
      FAIL("get() should have thrown");
    } catch (int value) {
      REQUIRE(value == 42);
    }
  }
  SECTION("a custom struct, through a void future") {
    Promise<void> promise;
    auto future = promise.getFuture();
    promise.setException(std::make_exception_ptr(CustomError{7}));
    try {
      future.get();
      FAIL("get() should have thrown");
    } catch (const CustomError& error) {
      REQUIRE(error.code == 7);
    }
  }
}

TEST_CASE("a promise destroyed unfulfilled breaks its future", "[future]") {
  SECTION("destroyed") {
    Future<int> future;
    {
      Promise<int> promise;
      future = promise.getFuture();
    }
    REQUIRE(future.isReady());
    REQUIRE_THROWS_AS(future.get(), BrokenPromiseError);
  }
  SECTION("overwritten by move assignment") {
    Promise<int> promise;
    auto future = promise.getFuture();
    promise = Promise<int>();
    REQUIRE_THROWS_AS(future.get(), BrokenPromiseError);
  }
  SECTION("a fulfilled promise breaks nothing") {
    Future<int> future;
    {
      Promise<int> promise;
      future = promise.getFuture();
      promise.setValue(3);
    }
    REQUIRE(future.get() == 3);
  }
}

TEST_CASE("misuse of a consumed or invalid future throws std::future_error", "[future]") {
  Promise<int> promise;
  auto future = promise.getFuture();
  promise.setValue(1);
  REQUIRE(future.get() == 1);

  SECTION("get() twice") { REQUIRE_THROWS_AS(future.get(), std::future_error); }
  SECTION("any use after get()") {
    REQUIRE_THROWS_AS(future.isReady(), std::future_error);
    REQUIRE_THROWS_AS(future.cancel(), std::future_error);
    REQUIRE_THROWS_AS(future.then([](int v) { return v; }), std::future_error);
  }
  SECTION("a default-constructed future") {
    Future<int> invalid;
    REQUIRE_FALSE(invalid.valid());
    REQUIRE_THROWS_AS(invalid.wait(), std::future_error);
  }
  SECTION("getFuture() twice") {
    try {
      (void)promise.getFuture();
      FAIL("getFuture() should have thrown");
    } catch (const std::future_error& error) {
      REQUIRE(error.code() == std::future_errc::future_already_retrieved);
    }
  }
}

TEST_CASE("cancel() completes the future with CancelledError and tells the producer",
          "[future][cancel]") {
  Promise<int> promise;
  auto future = promise.getFuture();

  SECTION("the stop token, asked for before the cancel") {
    auto token = promise.stopToken();
    REQUIRE_FALSE(token.stop_requested());
    REQUIRE(future.cancel());
    REQUIRE(token.stop_requested());
  }
  SECTION("the stop token, asked for after the cancel") {
    REQUIRE(future.cancel());
    REQUIRE(promise.stopToken().stop_requested());
  }
  SECTION("isCancelled, and a late value is refused") {
    REQUIRE_FALSE(promise.isCancelled());
    REQUIRE(future.cancel());
    REQUIRE(promise.isCancelled());
    REQUIRE_FALSE(promise.setValue(1));
  }
  SECTION("only the first cancel wins, and a completed future is not cancelled") {
    REQUIRE(future.cancel());
    REQUIRE_FALSE(future.cancel());
  }
  REQUIRE(future.isReady());
  REQUIRE_THROWS_AS(future.get(), CancelledError);
}

TEST_CASE("cancel() of a completed future changes nothing", "[future][cancel]") {
  Promise<int> promise;
  auto future = promise.getFuture();
  promise.setValue(9);
  REQUIRE_FALSE(future.cancel());
  REQUIRE_FALSE(promise.isCancelled());
  REQUIRE(future.get() == 9);
}

TEST_CASE("then() chains on success and passes failures through", "[future][then]") {
  SECTION("value to value, ready or not yet") {
    Promise<int> promise;
    auto doubled = promise.getFuture().then([](int v) { return v * 2; }).then([](int v) {
      return std::to_string(v);
    });
    REQUIRE_FALSE(doubled.isReady());
    promise.setValue(21);
    REQUIRE(doubled.get() == "42");
  }
  SECTION("void to value and value to void") {
    Promise<void> promise;
    int seen = 0;
    auto done = promise.getFuture().then([] { return 5; }).then([&seen](int v) { seen = v; });
    promise.setValue();
    done.get();
    REQUIRE(seen == 5);
  }
  SECTION("a failure skips the continuation") {
    Promise<int> promise;
    bool called = false;
    auto next = promise.getFuture().then([&called](int v) {
      called = true;
      return v;
    });
    promise.setException(std::make_exception_ptr(CustomError{3}));
    REQUIRE_THROWS_AS(next.get(), CustomError);
    REQUIRE_FALSE(called);
  }
  SECTION("a continuation that throws fails the next future") {
    auto next = jobtrack::makeReadyFuture(1).then([](int) -> int { throw 42; });
    REQUIRE_THROWS_AS(next.get(), int);
  }
  SECTION("a continuation returning Future<U> is flattened") {
    Promise<int> outer;
    Promise<std::string> inner;
    Future<std::string> flat =
        outer.getFuture().then([&inner](int) -> Future<std::string> { return inner.getFuture(); });
    outer.setValue(1);
    REQUIRE_FALSE(flat.isReady());
    inner.setValue("inner");
    REQUIRE(flat.get() == "inner");
  }
  SECTION("a failed inner future fails the flattened one") {
    Promise<std::string> inner;
    auto flat = jobtrack::makeReadyFuture(1).then([&inner](int) { return inner.getFuture(); });
    inner.setException(std::make_exception_ptr(std::runtime_error("inner failed")));
    REQUIRE_THROWS_AS(flat.get(), std::runtime_error);
  }
}

TEST_CASE("cancelling a chained future cancels the stage that runs", "[future][then][cancel]") {
  SECTION("the source, before the continuation ran") {
    Promise<int> promise;
    bool called = false;
    auto next = promise.getFuture().then([&called](int v) {
      called = true;
      return v;
    });
    REQUIRE(next.cancel());
    REQUIRE(promise.isCancelled());
    REQUIRE(promise.stopToken().stop_requested());
    REQUIRE_FALSE(promise.setValue(1));
    REQUIRE_THROWS_AS(next.get(), CancelledError);
    REQUIRE_FALSE(called);
  }
  SECTION("the inner future of a flattened chain") {
    Promise<int> outer;
    Promise<int> inner;
    auto flat = outer.getFuture().then([&inner](int) { return inner.getFuture(); });
    outer.setValue(1);
    REQUIRE(flat.cancel());
    REQUIRE(inner.isCancelled());
    REQUIRE_THROWS_AS(flat.get(), CancelledError);
  }
}

TEST_CASE("recover() sees both outcomes", "[future][recover]") {
  SECTION("a failure is replaced") {
    auto recovered = jobtrack::makeFailedFuture<int>(std::make_exception_ptr(CustomError{1}))
                         .recover([](Future<int> ready) {
                           try {
                             return ready.get();
                           } catch (const CustomError& error) {
                             return -error.code;
                           }
                         });
    REQUIRE(recovered.get() == -1);
  }
  SECTION("a value is passed on") {
    auto recovered =
        jobtrack::makeReadyFuture(8).recover([](Future<int> ready) { return ready.get() + 1; });
    REQUIRE(recovered.get() == 9);
  }
  SECTION("a cancelled future reaches the handler as CancelledError") {
    Promise<int> promise;
    auto future = promise.getFuture();
    future.cancel();
    auto recovered = std::move(future).recover([](Future<int> ready) {
      try {
        ready.get();
        return std::string("value");
      } catch (const CancelledError&) {
        return std::string("cancelled");
      }
    });
    REQUIRE(recovered.get() == "cancelled");
  }
}

TEST_CASE("isStarted() follows markStarted() along a chain", "[future][started]") {
  Promise<int> promise;
  auto future = promise.getFuture();
  REQUIRE_FALSE(future.isStarted());
  auto chained = std::move(future).then([](int v) { return v; });
  REQUIRE_FALSE(chained.isStarted());
  promise.markStarted();
  REQUIRE(chained.isStarted());
  promise.setValue(1);
  REQUIRE(chained.get() == 1);
}

TEST_CASE("makeReadyFuture and makeFailedFuture are ready at once", "[future]") {
  auto ready = jobtrack::makeReadyFuture(std::string("x"));
  REQUIRE(ready.isReady());
  REQUIRE(ready.get() == "x");
  auto readyVoid = jobtrack::makeReadyFuture();
  REQUIRE_NOTHROW(readyVoid.get());
  auto failed = jobtrack::makeFailedFuture<void>(std::make_exception_ptr(42));
  REQUIRE(failed.isReady());
  REQUIRE_THROWS_AS(failed.get(), int);
}

TEST_CASE("asyncGet completes a plain callback with (exception_ptr, value)", "[future][asio]") {
  asio::io_context io;
  std::optional<int> value;
  std::exception_ptr error;
  auto handler = asio::bind_executor(io, [&](std::exception_ptr e, int v) {
    error = e;
    if (!e) value = v;
  });

  SECTION("a value") {
    Promise<int> promise;
    promise.getFuture().asyncGet(handler);
    promise.setValue(4);
    io.run();
    REQUIRE_FALSE(error);
    REQUIRE(value == 4);
  }
  SECTION("a failure") {
    Promise<int> promise;
    promise.getFuture().asyncGet(handler);
    promise.setException(std::make_exception_ptr(CustomError{2}));
    io.run();
    REQUIRE(error);
    REQUIRE_THROWS_AS(std::rethrow_exception(error), CustomError);
    REQUIRE_FALSE(value);
  }
}

TEST_CASE("asyncGet never runs the handler inside asyncGet itself", "[future][asio]") {
  // The handler's executor is the io_context the caller runs on: dispatching
  // would call it inline, before asyncGet returned. Asio requires a post.
  asio::io_context io;
  bool asyncGetReturned = false;
  bool handlerSawReturn = false;
  asio::post(io, [&] {
    jobtrack::makeReadyFuture(1).asyncGet(asio::bind_executor(
        io, [&](std::exception_ptr, int) { handlerSawReturn = asyncGetReturned; }));
    asyncGetReturned = true;
  });
  io.run();
  REQUIRE(asyncGetReturned);
  REQUIRE(handlerSawReturn);
}

TEST_CASE("asyncGet with use_awaitable returns the value or throws in a coroutine",
          "[future][asio][coroutine]") {
  asio::io_context io;
  Promise<int> valuePromise;
  Promise<void> failingPromise;
  std::optional<int> value;
  bool threw = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto valueFuture = valuePromise.getFuture();
        value = co_await valueFuture.asyncGet(asio::use_awaitable);
        auto failingFuture = failingPromise.getFuture();
        try {
          co_await failingFuture.asyncGet(asio::use_awaitable);
        } catch (const CustomError&) {
          threw = true;
        }
      },
      asio::detached);
  valuePromise.setValue(10);
  failingPromise.setException(std::make_exception_ptr(CustomError{5}));
  io.run();
  REQUIRE(value == 10);
  REQUIRE(threw);
}

TEST_CASE("asyncGet's cancellation slot cancels the future", "[future][asio][cancel]") {
  asio::io_context io;
  asio::cancellation_signal signal;
  Promise<int> promise;
  std::exception_ptr error;
  bool called = false;
  promise.getFuture().asyncGet(asio::bind_cancellation_slot(
      signal.slot(), asio::bind_executor(io, [&](std::exception_ptr e, int) {
        called = true;
        error = e;
      })));
  signal.emit(asio::cancellation_type::terminal);
  REQUIRE(promise.isCancelled());
  io.run();
  REQUIRE(called);
  REQUIRE_THROWS_AS(std::rethrow_exception(error), CancelledError);
}
