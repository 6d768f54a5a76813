// Reliability: injected faults. Work that throws (std and non-std), ignores
// its stop token or never finishes; executors and trackers destroyed with
// jobs in flight; continuations that throw; subscribers that throw or block.
// In every case: no job is lost or left unfinished, nothing hangs, and what
// happened is reported.
//
// No sleeps: every wait is on the event itself, with a generous bound; work
// that must "never finish" waits on a Gate that the test opens at its end.

#include <jobtrack/jobtrack.hpp>

#include "catch.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using jobtrack::AsyncExecutor;
using jobtrack::ErrorKind;
using jobtrack::ExecutorOptions;
using jobtrack::JobContext;
using jobtrack::JobId;
using jobtrack::JobStatus;
using jobtrack::JobTracker;

namespace {

constexpr auto kBound = 60s;

/// A one-shot latch with a bounded wait; shared so detached work can outlive the test's frame.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;
  void release() {
    {
      std::lock_guard lock(mutex);
      open = true;
    }
    cv.notify_all();
  }
  bool wait(std::chrono::milliseconds bound = kBound) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, bound, [&] { return open; });
  }
};

ExecutorOptions small(std::chrono::milliseconds shutdownTimeout = 5000ms) {
  ExecutorOptions options;
  options.coreThreads = 2;
  options.blockingThreads = 2;
  options.shutdownTimeout = shutdownTimeout;
  return options;
}

template <class Tracker>
typename Tracker::Snapshot finished(const Tracker& tracker, const JobId& id) {
  const auto snapshot = tracker.wait(id, kBound);
  REQUIRE(snapshot);
  REQUIRE(isTerminal(snapshot->status));
  return *snapshot;
}

struct NotAnException {
  int code;
};

}  // namespace

TEST_CASE("work that throws std and non-std exceptions ends FAILED with its message",
          "[reliability][faults]") {
  AsyncExecutor executor(small());
  JobTracker<int> tracker(executor);

  const JobId stdError = tracker.submit("std", [&] {
    return executor.executeAsync([]() -> int { throw std::out_of_range("range"); });
  });
  const JobId integer =
      tracker.submit("int", [&] { return executor.executeAsync([]() -> int { throw 7; }); });
  const JobId custom = tracker.submit(
      "custom", [&] { return executor.executeAsync([]() -> int { throw NotAnException{3}; }); });
  const JobId coroutine = tracker.submit("coroutine", [&] {
    return executor.executeAsync([]() -> asio::awaitable<int> {
      throw std::runtime_error("in a coroutine");
      co_return 0;
    });
  });
  const JobId supplier =
      tracker.submit("supplier", []() -> jobtrack::Future<int> { throw NotAnException{4}; });
  const JobId invalid = tracker.submit("invalid future", [] { return jobtrack::Future<int>{}; });

  const std::pair<JobId, std::string> expected[] = {{stdError, "range"},
                                                    {integer, "non-standard exception"},
                                                    {custom, "non-standard exception"},
                                                    {coroutine, "in a coroutine"},
                                                    {supplier, "non-standard exception"}};
  for (const auto& [id, message] : expected) {
    const auto s = finished(tracker, id);
    CHECK(s.status == JobStatus::Failed);
    CHECK(s.errorKind == ErrorKind::Exception);
    CHECK(s.error == message);
  }
  CHECK(finished(tracker, invalid).status == JobStatus::Failed);

  // The executor keeps working after all that.
  const JobId ok = tracker.submit("ok", [&] { return executor.executeAsync([] { return 1; }); });
  CHECK(finished(tracker, ok).result == 1);
  const auto stats = tracker.stats();
  CHECK(stats.failed == 6);
  CHECK(stats.completed == 1);
}

TEST_CASE(
    "work that ignores its stop token: the job is CANCELLED at once and shutdown reports the "
    "thread",
    "[reliability][faults][shutdown]") {
  auto gate = std::make_shared<Gate>();
  auto ended = std::make_shared<Gate>();
  auto started = std::make_shared<Gate>();
  jobtrack::ShutdownReport report;
  {
    AsyncExecutor executor(small(100ms));
    JobTracker<int> tracker(executor);
    const JobId id = tracker.submit("stubborn", [&] {
      return executor.executeAsync(
          [gate, ended, started](std::stop_token) {  // takes the token, never looks
            started->release();
            gate->wait();
            ended->release();
            return 1;
          });
    });
    REQUIRE(started->wait());
    CHECK(tracker.cancel(id) == jobtrack::CancelResult::Cancelled);
    CHECK(finished(tracker, id).status == JobStatus::Cancelled);
    CHECK(executor.stats().cancelledStillRunning == 1);

    // Shutdown must not wait for it beyond its timeout; run it on another
    // thread so that a hang fails the test instead of blocking it.
    auto shutdown = std::async(std::launch::async, [&] { return executor.shutdown(); });
    REQUIRE(shutdown.wait_for(kBound) == std::future_status::ready);
    report = shutdown.get();
    CHECK(tracker.get(id)->status == JobStatus::Cancelled);  // the late result changed nothing
  }  // tracker and executor destroyed while the stubborn work still runs
  CHECK(report.abandonedThreads == 1);
  gate->release();
  REQUIRE(ended->wait());  // the detached thread finishes on its own, touching nothing freed
}

TEST_CASE("work that never finishes: shutdown still completes in bounded time and reports it",
          "[reliability][faults][shutdown]") {
  auto gate = std::make_shared<Gate>();
  auto running = std::make_shared<std::atomic<int>>(0);
  auto bothRunning = std::make_shared<Gate>();
  AsyncExecutor executor(small(50ms));
  JobTracker<int> tracker(executor);
  std::vector<JobId> ids;
  // Two hung workers fill the blocking pool; three more jobs wait in its queue.
  for (int i = 0; i < 5; ++i) {
    ids.push_back(tracker.submit("hung", [&] {
      return executor.executeAsync([gate, running, bothRunning] {
        if (running->fetch_add(1) + 1 == 2) bothRunning->release();
        gate->wait(std::chrono::hours(1));
        running->fetch_sub(1);
        return 0;
      });
    }));
  }
  REQUIRE(bothRunning->wait());
  auto shutdown = std::async(std::launch::async, [&] { return executor.shutdown(); });
  REQUIRE(shutdown.wait_for(kBound) == std::future_status::ready);
  const auto report = shutdown.get();
  CHECK(report.abandonedThreads == 2);  // the hung two; the queued three never started
  CHECK(running->load() == 2);
  // No job is left PENDING or RUNNING: shutdown cancelled them all.
  for (const JobId& id : ids) CHECK(finished(tracker, id).status == JobStatus::Cancelled);
  CHECK(tracker.stats().cancelled == ids.size());
  gate->release();
}

TEST_CASE(
    "executor and tracker destroyed with jobs in flight: no crash, no hang, every job accounted "
    "for",
    "[reliability][faults][lifetime]") {
  SECTION("tracker first, then executor (the usual order)") {
    auto gate = std::make_shared<Gate>();
    std::atomic<int> callbacks{0};
    {
      AsyncExecutor executor(small(200ms));
      JobTracker<int> tracker(executor);
      auto subscription = tracker.subscribe([&](const auto&) { callbacks.fetch_add(1); });
      for (int i = 0; i < 20; ++i) {
        tracker.submit("cooperative", [&](JobContext ctx) {
          return executor.executeAsync([ctx](std::stop_token stop) {
            std::mutex m;
            std::condition_variable_any cv;
            std::unique_lock lock(m);
            ctx.reportProgress(10);
            cv.wait(lock, stop, [] { return false; });
            return 1;
          });
        });
        const JobId id =
            tracker.submit("instant", [&] { return executor.executeAsync([] { return 2; }); });
        tracker.asyncWait(id, 10s, [](auto) {});
      }
      subscription.reset();
    }
    SUCCEED("destroyed with 20 cooperative jobs running or queued");
  }
  SECTION("executor first: every job the tracker holds ends CANCELLED, none stays RUNNING") {
    auto executor = std::make_unique<AsyncExecutor>(small(200ms));
    JobTracker<int> tracker(*executor);
    std::vector<JobId> ids;
    for (int i = 0; i < 20; ++i) {
      ids.push_back(tracker.submit("cooperative", [&] {
        return executor->executeAsync([](std::stop_token stop) {
          std::mutex m;
          std::condition_variable_any cv;
          std::unique_lock lock(m);
          cv.wait(lock, stop, [] { return false; });
          return 1;
        });
      }));
    }
    const auto report = executor->shutdown();
    CHECK(report.abandonedThreads == 0);  // they honoured their stop tokens
    // Work submitted after shutdown is refused, and shows as a FAILED job, never a lost one.
    const JobId late =
        tracker.submit("late", [&] { return executor->executeAsync([] { return 0; }); });
    executor.reset();
    for (const JobId& id : ids) CHECK(finished(tracker, id).status == JobStatus::Cancelled);
    CHECK(finished(tracker, late).status == JobStatus::Failed);
    const auto stats = tracker.stats();
    CHECK(stats.pending + stats.running == 0);
    CHECK(stats.cancelled == ids.size());
  }
}

TEST_CASE("a continuation that throws fails the next future with that error",
          "[reliability][faults][future]") {
  AsyncExecutor executor(small());
  // The error is inspected in a recover stage, on the pool: reading it on this
  // thread while a pool thread drops the last reference is fine, but TSan
  // cannot see libstdc++'s (uninstrumented) exception refcount and reports it.
  const auto messageOf = [](jobtrack::Future<int> failed) -> std::string {
    try {
      (void)failed.get();
      return "no error";
    } catch (const std::exception& e) {
      return e.what();
    }
  };
  SECTION("std exception") {
    auto next = executor.executeAsync([] { return 1; }).then([](int) -> int {
      throw std::runtime_error("then failed");
    });
    CHECK(std::move(next).recover(messageOf).get() == "then failed");
  }
  SECTION("non-std exception, passed through later stages, seen by recover") {
    bool laterStageRan = false;
    auto next = executor.executeAsync([] { return 1; })
                    .then([](int) -> int { throw NotAnException{9}; })
                    .then([&](int v) {
                      laterStageRan = true;
                      return v;
                    })
                    .recover([](jobtrack::Future<int> failed) {
                      try {
                        return failed.get();
                      } catch (const NotAnException& e) {
                        return e.code;
                      }
                    });
    CHECK(next.get() == 9);
    CHECK_FALSE(laterStageRan);
  }
  SECTION("a throwing continuation of a tracked job makes the job FAILED") {
    JobTracker<int> tracker(executor);
    const JobId id = tracker.submit("chained", [&] {
      return executor.executeAsync([] { return 1; }).then([](int) -> int {
        throw std::domain_error("stage 2");
      });
    });
    const auto s = finished(tracker, id);
    CHECK(s.status == JobStatus::Failed);
    CHECK(s.error == "stage 2");
  }
  SECTION("a throwing recover handler fails the next future too") {
    auto next =
        executor.executeAsync([]() -> int { throw 1; }).recover([](jobtrack::Future<int>) -> int {
          throw std::runtime_error("recover failed");
        });
    CHECK(std::move(next).recover(messageOf).get() == "recover failed");
  }
}

TEST_CASE("subscribers that throw or block do not stall the tracker; a stalled one stays bounded",
          "[reliability][faults][subscribe]") {
  constexpr int kJobs = 300;
  constexpr int kReports =
      20;  // kJobs * (kReports + 3) events: more than a subscriber queues (4096)
  ExecutorOptions options = small();
  options.blockingThreads = 3;  // the blocked subscriber holds one of them while it stalls
  AsyncExecutor executor(options);
  JobTracker<int> tracker(executor);

  auto gate = std::make_shared<Gate>();
  auto blockedOnce = std::make_shared<Gate>();
  auto caughtUp = std::make_shared<Gate>();
  std::atomic<int> throwingCalls{0};
  std::atomic<int> blockedCalls{0};
  std::atomic<int> blockedTerminals{0};
  std::mutex normalMutex;
  std::condition_variable normalCv;
  int normalTerminals = 0;

  auto throwing = tracker.subscribe([&](const auto&) {
    throwingCalls.fetch_add(1);
    throw std::runtime_error("subscriber");
  });
  auto blocking = tracker.subscribe([&, gate, blockedOnce, caughtUp](const auto& s) {
    blockedCalls.fetch_add(1);
    if (isTerminal(s.status) && blockedTerminals.fetch_add(1) + 1 == kJobs) caughtUp->release();
    blockedOnce->release();
    gate->wait();
  });
  auto normal = tracker.subscribe([&](const auto& s) {
    if (!isTerminal(s.status)) return;
    {
      std::lock_guard lock(normalMutex);
      ++normalTerminals;
    }
    normalCv.notify_all();
  });

  std::vector<JobId> ids;
  for (int i = 0; i < kJobs; ++i) {
    ids.push_back(tracker.submit("reporting", [&](JobContext ctx) {
      return executor.executeAsync([ctx] {
        for (int p = 1; p <= kReports; ++p) ctx.reportProgress(p * 100 / kReports);
        return 1;
      });
    }));
  }
  REQUIRE(blockedOnce->wait());
  // Every job completes and the well-behaved subscriber hears of each,
  // while one subscriber is blocked and another throws every time.
  for (const JobId& id : ids) CHECK(finished(tracker, id).status == JobStatus::Completed);
  {
    std::unique_lock lock(normalMutex);
    REQUIRE(normalCv.wait_for(lock, kBound, [&] { return normalTerminals == kJobs; }));
  }
  CHECK(throwingCalls.load() > kJobs);
  CHECK(blockedCalls.load() == 1);

  // Released, the blocked subscriber catches up: it may have lost progress
  // events (its queue is capped) but never a terminal one.
  gate->release();
  CHECK(caughtUp->wait());
  CHECK(blockedTerminals.load() == kJobs);
  CHECK(blockedCalls.load() <= 1 + 4096 + kJobs);
}
