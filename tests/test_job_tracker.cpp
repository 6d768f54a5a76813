// Tests for JobTracker<Result>: the job state machine, submit/get/list,
// cancel, wait/asyncWait, subscriptions, retention, stats, the JSON of
// snapshots, lifetime and a multi-threaded stress run.
//
// No test sleeps to wait for an event: work bodies block on gates the test
// opens, and the test waits on latches, futures or the tracker's own
// wait()/asyncWait(), always with a generous bound that it REQUIREs.

#include "jobtrack/detail/iso_time.hpp"
#include "jobtrack/executor.hpp"
#include "jobtrack/future.hpp"
#include "jobtrack/job_snapshot.hpp"
#include "jobtrack/job_tracker.hpp"

#include "catch.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using jobtrack::AsyncExecutor;
using jobtrack::CancelResult;
using jobtrack::ErrorKind;
using jobtrack::ExecutorOptions;
using jobtrack::Future;
using jobtrack::JobContext;
using jobtrack::JobId;
using jobtrack::JobStatus;
using jobtrack::JobTracker;
using jobtrack::ListFilter;
using jobtrack::TrackerOptions;
using nlohmann::json;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define JOBTRACK_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define JOBTRACK_TEST_SANITIZED 1
#endif
#endif
#ifndef JOBTRACK_TEST_SANITIZED
#define JOBTRACK_TEST_SANITIZED 0
#endif

namespace {

using Tracker = JobTracker<json>;
using Snapshot = Tracker::Snapshot;

/// How long any test waits for an event before it fails. Generous: a loaded
/// machine (or ThreadSanitizer) must never make a correct test fail.
constexpr auto bound = std::chrono::milliseconds(20s);

/// A count-down latch shared by copies (work bodies capture it by value, so
/// it outlives the test if a body runs late). Counting below zero is allowed
/// and ignored; waits are bounded.
class Latch {
 public:
  explicit Latch(std::ptrdiff_t count = 1) : state_(std::make_shared<State>()) {
    state_->count = count;
  }

  void countDown() const {
    {
      std::lock_guard lock(state_->mutex);
      if (state_->count > 0) --state_->count;
    }
    state_->cv.notify_all();
  }

  /// Opens the latch whatever its count.
  void release() const {
    {
      std::lock_guard lock(state_->mutex);
      state_->count = 0;
    }
    state_->cv.notify_all();
  }

  /// Waits until the count reaches zero; false if `timeout` passed first.
  [[nodiscard]] bool waitFor(std::chrono::milliseconds timeout = bound) const {
    std::unique_lock lock(state_->mutex);
    return state_->cv.wait_for(lock, timeout, [&] { return state_->count == 0; });
  }

  [[nodiscard]] bool isOpen() const {
    std::lock_guard lock(state_->mutex);
    return state_->count == 0;
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    std::ptrdiff_t count = 0;
  };
  std::shared_ptr<State> state_;
};

/// A gate work bodies wait on until the test opens it. Opened at the end of
/// its scope too, so a failing test never leaves a body blocked.
class Gate {
 public:
  Gate() = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  ~Gate() { open(); }

  void open() const { latch_.release(); }
  /// What a body captures: waits (bounded) for the gate.
  [[nodiscard]] Latch handle() const { return latch_; }

 private:
  Latch latch_{1};
};

/// Counts down `latch` when the last copy is destroyed: a body capturing it
/// tells the test that the executor has finished with the task (its result
/// delivered or discarded).
std::shared_ptr<void> onDestroy(Latch latch) {
  return {nullptr, [latch](void*) { latch.countDown(); }};
}

/// Whether `text` matches ^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$ (checked by
/// hand: GCC 12's std::regex trips -Wmaybe-uninitialized under sanitizers).
bool isIsoMillis(std::string_view text) {
  constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (text.size() != shape.size()) return false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const bool ok = shape[i] == 'd' ? (text[i] >= '0' && text[i] <= '9') : text[i] == shape[i];
    if (!ok) return false;
  }
  return true;
}

/// Saturates a one-thread blocking pool: the returned job holds the thread
/// until `gate` opens. Returns once its body runs.
JobId occupyTheOnlyThread(Tracker& tracker, AsyncExecutor& executor, const Gate& gate) {
  Latch started;
  const auto id = tracker.submit("blocker", [&executor, started, g = gate.handle()] {
    return executor.executeAsync([started, g] {
      started.countDown();
      (void)g.waitFor();
      return 0;
    });
  });
  REQUIRE(started.waitFor());
  return id;
}

/// Collects every event a subscription delivers.
struct Recorder {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<Snapshot> events;

  void operator()(const Snapshot& s) {
    {
      std::lock_guard lock(mutex);
      events.push_back(s);
    }
    cv.notify_all();
  }

  std::size_t terminalCount() {
    std::lock_guard lock(mutex);
    return static_cast<std::size_t>(std::count_if(
        events.begin(), events.end(), [](const Snapshot& s) { return isTerminal(s.status); }));
  }

  /// Waits until at least `n` terminal events arrived.
  bool waitForTerminals(std::size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, bound, [&] {
      return static_cast<std::size_t>(
                 std::count_if(events.begin(), events.end(),
                               [](const Snapshot& s) { return isTerminal(s.status); })) >= n;
    });
  }

  std::vector<Snapshot> of(const JobId& id) {
    std::lock_guard lock(mutex);
    std::vector<Snapshot> mine;
    for (const auto& e : events) {
      if (e.id == id) mine.push_back(e);
    }
    return mine;
  }
};

struct Point {
  int x = 0;
  int y = 0;
};
void to_json(json& j, const Point& p) { j = json{{"x", p.x}, {"y", p.y}}; }

ExecutorOptions smallPools(std::size_t blockingThreads = 4) {
  ExecutorOptions options;
  options.coreThreads = 2;
  options.blockingThreads = blockingThreads;
  return options;
}

}  // namespace

// ---------------------------------------------------------------------------
// The state machine

TEST_CASE("a job is PENDING while queued and RUNNING only once its body runs",
          "[tracker][status]") {
  AsyncExecutor executor(smallPools(1));
  Tracker tracker(executor);
  Gate blockerGate;
  occupyTheOnlyThread(tracker, executor, blockerGate);

  Latch bodyStarted;
  Gate jobGate;
  const auto id = tracker.submit("queued", [&executor, bodyStarted, g = jobGate.handle()] {
    return executor.executeAsync([bodyStarted, g] {
      bodyStarted.countDown();
      (void)g.waitFor();
      return 42;
    });
  });

  auto queued = tracker.get(id);
  REQUIRE(queued);
  CHECK(queued->status == JobStatus::Pending);
  CHECK(queued->id == id);
  CHECK(queued->name == "queued");
  CHECK_FALSE(queued->startedAt);
  CHECK_FALSE(queued->completedAt);
  CHECK(queued->progress == 0);
  CHECK(queued->errorKind == ErrorKind::None);

  blockerGate.open();
  REQUIRE(bodyStarted.waitFor());
  auto running = tracker.get(id);
  REQUIRE(running);
  CHECK(running->status == JobStatus::Running);
  REQUIRE(running->startedAt);
  CHECK(*running->startedAt >= running->createdAt);
  CHECK_FALSE(running->completedAt);

  jobGate.open();
  auto done = tracker.wait(id, bound);
  REQUIRE(done);
  REQUIRE(done->status == JobStatus::Completed);
  CHECK(done->progress == 100);
  CHECK(done->result == json(42));
  CHECK_FALSE(done->error);
  CHECK(done->errorKind == ErrorKind::None);
  REQUIRE(done->completedAt);
  CHECK(*done->completedAt >= *done->startedAt);
  CHECK(done->startedAt == running->startedAt);  // never reset
}

TEST_CASE("the terminal state is set once: a late result never overwrites CANCELLED",
          "[tracker][status][cancel]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  Recorder recorder;
  auto subscription = tracker.subscribe([&recorder](const Snapshot& s) { recorder(s); });

  Latch started;
  Latch taskGone;  // the executor is done with the body: its value was offered and refused
  Gate gate;
  std::promise<JobContext> contextPromise;
  const auto id = tracker.submit("stubborn", [&](JobContext ctx) {
    contextPromise.set_value(ctx);
    // The body ignores every stop token and returns a value anyway.
    return executor.executeAsync([started, g = gate.handle(), guard = onDestroy(taskGone)] {
      started.countDown();
      (void)g.waitFor();
      return json("late value");
    });
  });
  const JobContext ctx = contextPromise.get_future().get();
  REQUIRE(started.waitFor());

  REQUIRE(tracker.cancel(id) == CancelResult::Cancelled);
  const auto cancelled = tracker.get(id);
  REQUIRE(cancelled);
  REQUIRE(cancelled->status == JobStatus::Cancelled);
  CHECK(cancelled->errorKind == ErrorKind::Cancelled);
  CHECK(cancelled->error);
  REQUIRE(cancelled->completedAt);

  // Late writers: the body's value, a progress report, a second cancel.
  ctx.reportProgress(80, "too late");
  gate.open();
  REQUIRE(taskGone.waitFor());
  CHECK(tracker.cancel(id) == CancelResult::AlreadyFinished);

  const auto after = tracker.get(id);
  REQUIRE(after);
  CHECK(*after == *cancelled);  // nothing changed: status, result, progress, times
  CHECK_FALSE(after->result);

  // A subscriber saw exactly one terminal event for the job, and it was CANCELLED.
  REQUIRE(recorder.waitForTerminals(1));
  const auto marker = tracker.submit("marker", [] { return jobtrack::makeReadyFuture(1); });
  REQUIRE(recorder.waitForTerminals(2));
  const auto events = recorder.of(id);
  std::size_t terminals = 0;
  for (const auto& e : events) {
    if (isTerminal(e.status)) {
      ++terminals;
      CHECK(e.status == JobStatus::Cancelled);
    }
  }
  CHECK(terminals == 1);
  REQUIRE_FALSE(recorder.of(marker).empty());
  CHECK(recorder.of(marker).back().status == JobStatus::Completed);
}

TEST_CASE("progress is clamped to 0-100, keeps its message and is 100 on completion",
          "[tracker][progress]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  Latch reportedLow;
  Latch reportedHigh;
  Gate afterLow;
  Gate afterHigh;
  const auto id = tracker.submit(
      "progress", [&, a = afterLow.handle(), b = afterHigh.handle()](JobContext ctx) {
        return executor.executeAsync([ctx, reportedLow, reportedHigh, a, b] {
          ctx.reportProgress(-5, "starting");
          reportedLow.countDown();
          (void)a.waitFor();
          ctx.reportProgress(250, "almost there");
          reportedHigh.countDown();
          (void)b.waitFor();
          return 1;
        });
      });

  REQUIRE(reportedLow.waitFor());
  auto low = tracker.get(id);
  REQUIRE(low);
  CHECK(low->status == JobStatus::Running);
  CHECK(low->progress == 0);
  CHECK(low->message == "starting");

  afterLow.open();
  REQUIRE(reportedHigh.waitFor());
  auto high = tracker.get(id);
  REQUIRE(high);
  CHECK(high->status == JobStatus::Running);  // 100% reported is not completion
  CHECK(high->progress == 100);
  CHECK(high->message == "almost there");

  afterHigh.open();
  auto done = tracker.wait(id, bound);
  REQUIRE(done);
  REQUIRE(done->status == JobStatus::Completed);
  CHECK(done->progress == 100);
  CHECK(done->message == "almost there");
}

TEST_CASE("reporting progress marks a pending job RUNNING", "[tracker][progress][status]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  // A promise-backed job: nothing marks it started but its own report.
  auto promise = std::make_shared<jobtrack::Promise<int>>();
  std::optional<JobContext> context;
  const auto id = tracker.submit("promised", [&](JobContext ctx) {
    context = ctx;
    return promise->getFuture();
  });
  REQUIRE(context);
  CHECK(context->id() == id);
  CHECK(tracker.get(id)->status == JobStatus::Pending);

  context->reportProgress(30, "a third");
  auto running = tracker.get(id);
  REQUIRE(running);
  CHECK(running->status == JobStatus::Running);
  CHECK(running->startedAt);
  CHECK(running->progress == 30);

  promise->setValue(9);
  auto done = tracker.wait(id, bound);
  REQUIRE(done);
  CHECK(done->status == JobStatus::Completed);
  CHECK(done->result == json(9));
}

// ---------------------------------------------------------------------------
// submit

TEST_CASE("submit accepts suppliers with and without a JobContext and converts their values",
          "[tracker][submit]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);

  auto finished = [&](const JobId& id) {
    auto s = tracker.wait(id, bound);
    REQUIRE(s);
    REQUIRE(isTerminal(s->status));
    return *s;
  };

  SECTION("a supplier without context") {
    const auto id =
        tracker.submit("plain", [&] { return executor.executeAsync([] { return 42; }); });
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Completed);
    CHECK(s.result == json(42));
  }
  SECTION("a supplier taking the JobContext, whose id is the job's") {
    std::promise<JobId> seen;
    const auto id = tracker.submit("with context", [&](JobContext ctx) {
      seen.set_value(ctx.id());
      CHECK_FALSE(ctx.stopRequested());
      return executor.executeAsync([] { return std::string("text"); });
    });
    CHECK(seen.get_future().get() == id);
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Completed);
    CHECK(s.result == json("text"));
  }
  SECTION("a custom type with to_json") {
    const auto id = tracker.submit("point", [&] {
      return executor.executeAsync([] { return Point{1, 2}; });
    });
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Completed);
    CHECK(s.result == json{{"x", 1}, {"y", 2}});
  }
  SECTION("a void job has a null result") {
    const auto id = tracker.submit("void", [&] { return executor.executeAsync([] {}); });
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Completed);
    CHECK(json(s)["result"].is_null());
    CHECK((!s.result || s.result->is_null()));
  }
  SECTION("a coroutine job") {
    const auto id = tracker.submit("coroutine", [&] {
      return executor.executeAsync([]() -> asio::awaitable<int> { co_return 5; });
    });
    CHECK(finished(id).result == json(5));
  }
  SECTION("a ready future completes the job at once") {
    const auto id = tracker.submit("ready", [] { return jobtrack::makeReadyFuture(7); });
    const auto s = tracker.get(id);
    REQUIRE(s);
    CHECK(s->status == JobStatus::Completed);
    CHECK(s->result == json(7));
  }
  SECTION("a chained future") {
    const auto id = tracker.submit("chained", [&] {
      return executor.executeAsync([] { return 20; }).then([](int v) { return v + 1; });
    });
    CHECK(finished(id).result == json(21));
  }
  SECTION("a supplier that throws a std exception fails the job") {
    const auto id =
        tracker.submit("throws", []() -> Future<int> { throw std::runtime_error("no supply"); });
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Failed);
    CHECK(s.error == "no supply");
    CHECK(s.errorKind == ErrorKind::Exception);
    CHECK_FALSE(s.result);
  }
  SECTION("a supplier that throws a non-std exception fails the job") {
    const auto id = tracker.submit("throws int", []() -> Future<int> { throw 42; });
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Failed);
    REQUIRE(s.error);
    CHECK_FALSE(s.error->empty());
    CHECK(s.errorKind == ErrorKind::Exception);
  }
  SECTION("work that throws a std exception fails the job") {
    const auto id = tracker.submit("work throws", [&] {
      return executor.executeAsync([]() -> int { throw std::invalid_argument("bad input"); });
    });
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Failed);
    CHECK(s.error == "bad input");
    CHECK(s.errorKind == ErrorKind::Exception);
  }
  SECTION("work that throws a non-std exception fails the job") {
    const auto id = tracker.submit("work throws int",
                                   [&] { return executor.executeAsync([]() -> int { throw 7; }); });
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Failed);
    REQUIRE(s.error);
    CHECK(s.errorKind == ErrorKind::Exception);
  }
  SECTION("a supplier returning an invalid future fails the job") {
    const auto id = tracker.submit("invalid", [] { return Future<int>(); });
    const auto s = finished(id);
    CHECK(s.status == JobStatus::Failed);
    CHECK(s.errorKind == ErrorKind::Exception);
  }
}

TEST_CASE("a JobTracker<std::string> keeps string results", "[tracker][submit]") {
  AsyncExecutor executor(smallPools());
  JobTracker<std::string> tracker(executor);

  const auto text = tracker.submit(
      "text", [&] { return executor.executeAsync([] { return std::string("hello"); }); });
  const auto literal =
      tracker.submit("literal", [&] { return executor.executeAsync([] { return "converted"; }); });
  const auto none = tracker.submit("void", [&] { return executor.executeAsync([] {}); });
  const auto failing = tracker.submit("fails", [&] {
    return executor.executeAsync([]() -> std::string { throw std::runtime_error("nope"); });
  });

  auto s = tracker.wait(text, bound);
  REQUIRE(s);
  CHECK(s->status == JobStatus::Completed);
  CHECK(s->result == std::string("hello"));
  s = tracker.wait(literal, bound);
  REQUIRE(s);
  CHECK(s->result == std::string("converted"));
  s = tracker.wait(none, bound);
  REQUIRE(s);
  CHECK(s->status == JobStatus::Completed);
  CHECK(s->result.value_or("x").empty());
  s = tracker.wait(failing, bound);
  REQUIRE(s);
  CHECK(s->status == JobStatus::Failed);
  CHECK(s->error == "nope");

  const json j = *tracker.get(text);
  CHECK(j["result"] == "hello");
  CHECK(j.get<JobTracker<std::string>::Snapshot>() == *tracker.get(text));
}

// ---------------------------------------------------------------------------
// get and list

TEST_CASE("get returns nullopt for an unknown id and snapshots are independent values",
          "[tracker][get]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);

  CHECK_FALSE(tracker.get(JobId::generate()));
  CHECK_FALSE(tracker.get(JobId{}));

  Gate gate;
  Latch started;
  const auto id = tracker.submit("value", [&executor, started, g = gate.handle()](JobContext ctx) {
    return executor.executeAsync([ctx, started, g] {
      ctx.reportProgress(10, "ten");
      started.countDown();
      (void)g.waitFor();
      return 3;
    });
  });
  REQUIRE(started.waitFor());
  const Snapshot before = *tracker.get(id);
  gate.open();
  REQUIRE(tracker.wait(id, bound)->status == JobStatus::Completed);
  // The copy taken earlier did not change.
  CHECK(before.status == JobStatus::Running);
  CHECK(before.progress == 10);
  CHECK(before.message == "ten");
  CHECK_FALSE(before.result);
  CHECK_FALSE(before.completedAt);
}

TEST_CASE("list returns the newest jobs first, honours the limit and filters", "[tracker][list]") {
  AsyncExecutor executor(smallPools(1));
  Tracker tracker(executor);
  Gate gate;

  // In submission order: completed, failed, running (holds the only thread), pending, completed.
  const auto a1 = tracker.submit("alpha-1", [] { return jobtrack::makeReadyFuture(1); });
  const auto b1 = tracker.submit("beta-1", []() -> Future<int> { throw std::runtime_error("x"); });
  const auto a2 = occupyTheOnlyThread(tracker, executor, gate);  // named "blocker"
  const auto a3 =
      tracker.submit("alpha-3", [&] { return executor.executeAsync([] { return 3; }); });
  const auto b2 = tracker.submit("beta-2", [] { return jobtrack::makeReadyFuture(2); });

  auto ids = [](const std::vector<Snapshot>& snapshots) {
    std::vector<JobId> out;
    for (const auto& s : snapshots) out.push_back(s.id);
    return out;
  };

  CHECK(ids(tracker.list()) == std::vector<JobId>{b2, a3, a2, b1, a1});
  CHECK(ids(tracker.list(2)) == std::vector<JobId>{b2, a3});
  CHECK(tracker.list(0).empty());
  CHECK(ids(tracker.list(100, ListFilter{.status = {}, .namePrefix = "alpha"})) ==
        std::vector<JobId>{a3, a1});
  CHECK(ids(tracker.list(1, ListFilter{.status = {}, .namePrefix = "alpha"})) ==
        std::vector<JobId>{a3});
  CHECK(ids(tracker.list(100, ListFilter{.status = JobStatus::Completed, .namePrefix = ""})) ==
        std::vector<JobId>{b2, a1});
  CHECK(ids(tracker.list(100, ListFilter{.status = JobStatus::Failed, .namePrefix = {}})) ==
        std::vector<JobId>{b1});
  CHECK(ids(tracker.list(100, ListFilter{.status = JobStatus::Pending, .namePrefix = {}})) ==
        std::vector<JobId>{a3});
  CHECK(ids(tracker.list(100, ListFilter{.status = JobStatus::Running, .namePrefix = {}})) ==
        std::vector<JobId>{a2});
  CHECK(ids(tracker.list(100, ListFilter{.status = JobStatus::Completed, .namePrefix = "beta"})) ==
        std::vector<JobId>{b2});
  CHECK(tracker.list(100, ListFilter{.status = JobStatus::Cancelled, .namePrefix = {}}).empty());
  CHECK(tracker.list(100, ListFilter{.status = {}, .namePrefix = "gamma"}).empty());

  gate.open();
  REQUIRE(tracker.wait(a3, bound)->status == JobStatus::Completed);
}

// ---------------------------------------------------------------------------
// cancel

TEST_CASE("cancel answers NotFound, AlreadyFinished or Cancelled", "[tracker][cancel]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);

  CHECK(tracker.cancel(JobId::generate()) == CancelResult::NotFound);

  const auto done = tracker.submit("done", [] { return jobtrack::makeReadyFuture(1); });
  CHECK(tracker.cancel(done) == CancelResult::AlreadyFinished);
  CHECK(tracker.get(done)->status == JobStatus::Completed);

  const auto failed =
      tracker.submit("failed", []() -> Future<int> { throw std::runtime_error("x"); });
  CHECK(tracker.cancel(failed) == CancelResult::AlreadyFinished);
  CHECK(tracker.get(failed)->status == JobStatus::Failed);

  auto promise = std::make_shared<jobtrack::Promise<int>>();
  const auto open = tracker.submit("open", [&] { return promise->getFuture(); });
  CHECK(tracker.cancel(open) == CancelResult::Cancelled);
  CHECK(tracker.cancel(open) == CancelResult::AlreadyFinished);
  CHECK(promise->isCancelled());  // the work's future was cancelled too
  CHECK_FALSE(promise->setValue(5));
  CHECK(tracker.get(open)->status == JobStatus::Cancelled);
}

TEST_CASE("a job cancelled while queued never runs its body", "[tracker][cancel]") {
  AsyncExecutor executor(smallPools(1));
  Tracker tracker(executor);
  Gate gate;
  occupyTheOnlyThread(tracker, executor, gate);

  auto ran = std::make_shared<std::atomic<bool>>(false);
  const auto id = tracker.submit("queued", [&executor, ran](JobContext ctx) {
    return executor.executeAsync([ran, ctx] {
      ran->store(true);
      return ctx.stopRequested();
    });
  });
  REQUIRE(tracker.get(id)->status == JobStatus::Pending);
  REQUIRE(tracker.cancel(id) == CancelResult::Cancelled);

  const auto s = tracker.get(id);
  REQUIRE(s);
  CHECK(s->status == JobStatus::Cancelled);
  CHECK(s->errorKind == ErrorKind::Cancelled);
  CHECK(s->error);
  CHECK_FALSE(s->startedAt);
  CHECK(s->completedAt);

  // The pool is FIFO with one thread: once a job queued after the cancelled
  // one has run, the cancelled body would have run before it.
  gate.open();
  const auto later =
      tracker.submit("later", [&] { return executor.executeAsync([] { return 1; }); });
  REQUIRE(tracker.wait(later, bound)->status == JobStatus::Completed);
  CHECK_FALSE(ran->load());
  CHECK(tracker.get(id)->status == JobStatus::Cancelled);
  CHECK_FALSE(tracker.get(id)->startedAt);
}

TEST_CASE("a running job that is cancelled sees its stop token and its JobContext's",
          "[tracker][cancel]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  Latch started;
  Latch workStop;
  Latch contextStop;
  const auto id =
      tracker.submit("cooperative", [&, started, workStop, contextStop](JobContext ctx) {
        return executor.executeAsync([ctx, started, workStop, contextStop](std::stop_token token) {
          std::stop_callback onWork(token, [workStop] { workStop.countDown(); });
          std::stop_callback onContext(ctx.stopToken(), [contextStop] { contextStop.countDown(); });
          started.countDown();
          (void)workStop.waitFor();
          (void)contextStop.waitFor();
          return ctx.stopRequested();
        });
      });
  REQUIRE(started.waitFor());
  REQUIRE(tracker.get(id)->status == JobStatus::Running);
  REQUIRE(tracker.cancel(id) == CancelResult::Cancelled);
  CHECK(workStop.waitFor());
  CHECK(contextStop.waitFor());
  const auto s = tracker.wait(id, bound);
  REQUIRE(s);
  CHECK(s->status == JobStatus::Cancelled);
  CHECK(s->errorKind == ErrorKind::Cancelled);
  CHECK(s->startedAt);
}

TEST_CASE(
    "a job cancelled while its supplier runs is cancelled, and its context token is signalled",
    "[tracker][cancel]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  std::optional<JobContext> seen;
  std::optional<CancelResult> answer;
  const auto id = tracker.submit("self-cancelling", [&](JobContext ctx) {
    // The job is visible (list) while its supplier runs; cancel it from here.
    const auto jobs = tracker.list(1);
    if (jobs.size() == 1) answer = tracker.cancel(jobs.front().id);
    seen = ctx;
    return executor.executeAsync([] { return 1; });
  });
  REQUIRE(answer == CancelResult::Cancelled);
  REQUIRE(seen);
  CHECK(seen->stopRequested());
  const auto s = tracker.wait(id, bound);
  REQUIRE(s);
  CHECK(s->status == JobStatus::Cancelled);
}

TEST_CASE("a job whose future times out is FAILED with errorKind timeout",
          "[tracker][cancel][timeout]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  Latch stopped;
  const auto id = tracker.submit("slow", [&, stopped] {
    return executor.withTimeout(executor.executeAsync([stopped](std::stop_token token) {
      std::stop_callback onStop(token, [stopped] { stopped.countDown(); });
      (void)stopped.waitFor();  // returns when the timeout cancels the work
      return 1;
    }),
                                50ms);
  });
  const auto s = tracker.wait(id, bound);
  REQUIRE(s);
  REQUIRE(s->status == JobStatus::Failed);
  CHECK(s->errorKind == ErrorKind::Timeout);
  CHECK(s->error);
  CHECK(stopped.waitFor());
  CHECK(json(*s)["errorKind"] == "timeout");
}

// ---------------------------------------------------------------------------
// wait and asyncWait

TEST_CASE("wait returns finished, running and unknown jobs as they are", "[tracker][wait]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);

  SECTION("a finished job at once") {
    const auto id = tracker.submit("done", [] { return jobtrack::makeReadyFuture(1); });
    const auto s = tracker.wait(id, bound);
    REQUIRE(s);
    CHECK(s->status == JobStatus::Completed);
  }
  SECTION("an unknown job: nullopt") { CHECK_FALSE(tracker.wait(JobId::generate(), bound)); }
  SECTION("a running job: its non-terminal snapshot once the timeout passes") {
    Gate gate;
    Latch started;
    const auto id = tracker.submit("running", [&, started, g = gate.handle()] {
      return executor.executeAsync([started, g] {
        started.countDown();
        (void)g.waitFor();
        return 1;
      });
    });
    REQUIRE(started.waitFor());
    const auto s = tracker.wait(id, 50ms);
    REQUIRE(s);
    CHECK(s->status == JobStatus::Running);
    gate.open();
    CHECK(tracker.wait(id, bound)->status == JobStatus::Completed);
  }
  SECTION("a job finishing while waited for") {
    Gate gate;
    const auto id = tracker.submit("finishing", [&, g = gate.handle()] {
      return executor.executeAsync([g] {
        (void)g.waitFor();
        return 1;
      });
    });
    std::thread opener([&] { gate.open(); });
    const auto s = tracker.wait(id, bound);
    opener.join();
    REQUIRE(s);
    CHECK(s->status == JobStatus::Completed);
  }
  SECTION("waiting 'forever' (milliseconds::max) still returns when the job finishes") {
    Gate gate;
    const auto id = tracker.submit("forever", [&, g = gate.handle()] {
      return executor.executeAsync([g] {
        (void)g.waitFor();
        return 1;
      });
    });
    std::thread opener([&] { gate.open(); });
    const auto s = tracker.wait(id, std::chrono::milliseconds::max());
    opener.join();
    REQUIRE(s);
    CHECK(s->status == JobStatus::Completed);
  }
  SECTION("many timed-out waiters, then the job finishes") {
    Gate gate;
    const auto id = tracker.submit("many", [&, g = gate.handle()] {
      return executor.executeAsync([g] {
        (void)g.waitFor();
        return 1;
      });
    });
    for (int i = 0; i < 20; ++i) CHECK_FALSE(isTerminal(tracker.wait(id, 0ms)->status));
    gate.open();
    CHECK(tracker.wait(id, bound)->status == JobStatus::Completed);
  }
}

TEST_CASE("asyncWait with a callback completes for finished, running and unknown jobs",
          "[tracker][asyncWait]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  std::promise<std::optional<Snapshot>> result;
  auto resultFuture = result.get_future();
  auto callback = [&result](std::optional<Snapshot> s) { result.set_value(std::move(s)); };
  auto awaited = [&]() -> std::optional<Snapshot> {
    REQUIRE(resultFuture.wait_for(bound) == std::future_status::ready);
    return resultFuture.get();
  };

  SECTION("a finished job") {
    const auto id = tracker.submit("done", [] { return jobtrack::makeReadyFuture(1); });
    tracker.asyncWait(id, bound, callback);
    const auto s = awaited();
    REQUIRE(s);
    CHECK(s->status == JobStatus::Completed);
  }
  SECTION("an unknown job: nullopt") {
    tracker.asyncWait(JobId::generate(), bound, callback);
    CHECK_FALSE(awaited());
  }
  SECTION("a running job whose timeout passes") {
    Gate gate;
    Latch started;
    const auto id = tracker.submit("running", [&, started, g = gate.handle()] {
      return executor.executeAsync([started, g] {
        started.countDown();
        (void)g.waitFor();
        return 1;
      });
    });
    REQUIRE(started.waitFor());
    tracker.asyncWait(id, 50ms, callback);
    const auto s = awaited();
    REQUIRE(s);
    CHECK(s->status == JobStatus::Running);
  }
  SECTION("a job that finishes while waited for") {
    Gate gate;
    const auto id = tracker.submit("finishing", [&, g = gate.handle()] {
      return executor.executeAsync([g] {
        (void)g.waitFor();
        return 1;
      });
    });
    tracker.asyncWait(id, 1h, callback);
    gate.open();
    const auto s = awaited();
    REQUIRE(s);
    CHECK(s->status == JobStatus::Completed);
  }
  SECTION("the cancellation slot completes it early with the current snapshot") {
    Gate gate;
    Latch started;
    const auto id = tracker.submit("running", [&, started, g = gate.handle()] {
      return executor.executeAsync([started, g] {
        started.countDown();
        (void)g.waitFor();
        return 1;
      });
    });
    REQUIRE(started.waitFor());
    asio::cancellation_signal signal;
    tracker.asyncWait(id, 1h, asio::bind_cancellation_slot(signal.slot(), callback));
    signal.emit(asio::cancellation_type::terminal);
    const auto s = awaited();
    REQUIRE(s);
    CHECK(s->status == JobStatus::Running);
  }
}

TEST_CASE("asyncWait runs its handler on the handler's executor and keeps it busy until then",
          "[tracker][asyncWait]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  asio::io_context io;
  Gate gate;
  const auto id = tracker.submit("job", [&, g = gate.handle()] {
    return executor.executeAsync([g] {
      (void)g.waitFor();
      return 1;
    });
  });
  std::optional<Snapshot> seen;
  std::thread::id ranOn;
  tracker.asyncWait(id, bound, asio::bind_executor(io, [&](std::optional<Snapshot> s) {
                      seen = std::move(s);
                      ranOn = std::this_thread::get_id();
                    }));
  gate.open();
  // run_for returns as soon as the io_context runs out of work: the pending
  // asyncWait must count as work, as Asio's own operations do.
  io.run_for(bound);
  REQUIRE(seen);
  CHECK(seen->status == JobStatus::Completed);
  CHECK(ranOn == std::this_thread::get_id());
}

TEST_CASE("asyncWait works with asio::use_awaitable in a coroutine",
          "[tracker][asyncWait][coroutine]") {
  using namespace asio::experimental::awaitable_operators;
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  asio::io_context io;
  Gate gate;
  Latch started;
  const auto id = tracker.submit("job", [&, started, g = gate.handle()] {
    return executor.executeAsync([started, g] {
      started.countDown();
      (void)g.waitFor();
      return 5;
    });
  });
  REQUIRE(started.waitFor());

  std::vector<std::optional<Snapshot>> seen;
  bool cancelledEarly = false;
  bool finished = false;
  auto coroutine = [&]() -> asio::awaitable<void> {
    // Unknown id: nullopt at once.
    seen.push_back(co_await tracker.asyncWait(JobId::generate(), bound, asio::use_awaitable));
    // Running, short timeout: the non-terminal snapshot.
    seen.push_back(co_await tracker.asyncWait(id, 50ms, asio::use_awaitable));
    // Cancelled by the losing side of ||: a timer wins, asyncWait must finish early.
    asio::steady_timer timer(co_await asio::this_coro::executor, 10ms);
    auto raced = co_await (tracker.asyncWait(id, 1h, asio::use_awaitable) ||
                           timer.async_wait(asio::use_awaitable));
    cancelledEarly = raced.index() == 1;
    // Finishes while waited for.
    gate.open();
    seen.push_back(co_await tracker.asyncWait(id, bound, asio::use_awaitable));
    // Finished: at once.
    seen.push_back(co_await tracker.asyncWait(id, bound, asio::use_awaitable));
    finished = true;
  };
  std::exception_ptr failure;
  asio::co_spawn(io, coroutine(), [&](std::exception_ptr e) { failure = e; });
  io.run_for(bound);
  REQUIRE_FALSE(failure);
  REQUIRE(finished);
  REQUIRE(seen.size() == 4);
  CHECK_FALSE(seen[0]);
  REQUIRE(seen[1]);
  CHECK(seen[1]->status == JobStatus::Running);
  CHECK(cancelledEarly);
  REQUIRE(seen[2]);
  CHECK(seen[2]->status == JobStatus::Completed);
  CHECK(seen[2]->result == json(5));
  REQUIRE(seen[3]);
  CHECK(seen[3]->status == JobStatus::Completed);
}

// ---------------------------------------------------------------------------
// subscriptions

TEST_CASE("a subscriber receives every status and progress change in order",
          "[tracker][subscribe]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  Recorder recorder;
  auto subscription = tracker.subscribe([&recorder](const Snapshot& s) { recorder(s); });
  CHECK(subscription.active());

  // The body waits for the gate, so the tracker watches it start (a body
  // reporting before submit() returned would fold RUNNING into its report).
  Gate gate;
  const auto id = tracker.submit("steps", [&, g = gate.handle()](JobContext ctx) {
    return executor.executeAsync([ctx, g] {
      (void)g.waitFor();
      ctx.reportProgress(10, "a");
      ctx.reportProgress(50, "b");
      return 1;
    });
  });
  gate.open();
  REQUIRE(recorder.waitForTerminals(1));
  const auto events = recorder.of(id);
  struct Step {
    JobStatus status;
    int progress;
    std::string message;
  };
  const std::vector<Step> expected = {
      {JobStatus::Pending, 0, ""},      {JobStatus::Running, 0, ""},
      {JobStatus::Running, 10, "a"},    {JobStatus::Running, 50, "b"},
      {JobStatus::Completed, 100, "b"},
  };
  REQUIRE(events.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("event " << i);
    CHECK(events[i].status == expected[i].status);
    CHECK(events[i].progress == expected[i].progress);
    CHECK(events[i].message == expected[i].message);
    CHECK(events[i].name == "steps");
  }
  CHECK(events.back().result == json(1));
}

TEST_CASE("per job, statuses never go backwards in what a subscriber sees",
          "[tracker][subscribe]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  Recorder recorder;
  auto subscription = tracker.subscribe([&recorder](const Snapshot& s) { recorder(s); });

  constexpr int jobs = 200;
  std::vector<JobId> ids;
  for (int i = 0; i < jobs; ++i) {
    ids.push_back(tracker.submit("job-" + std::to_string(i), [&executor, i](JobContext ctx) {
      return executor.executeAsync([ctx, i](std::stop_token) {
        ctx.reportProgress(i % 100, "step");
        if (i % 7 == 0) throw std::runtime_error("seven");
        return i;
      });
    }));
    if (i % 5 == 0) (void)tracker.cancel(ids.back());
  }
  REQUIRE(recorder.waitForTerminals(jobs));

  for (const auto& id : ids) {
    const auto events = recorder.of(id);
    REQUIRE_FALSE(events.empty());
    CHECK(events.front().status == JobStatus::Pending);
    int terminals = 0;
    for (std::size_t i = 1; i < events.size(); ++i) {
      CHECK(lifecycleStage(events[i].status) >= lifecycleStage(events[i - 1].status));
      CHECK_FALSE(isTerminal(events[i - 1].status));  // nothing after the terminal event
    }
    for (const auto& e : events) terminals += isTerminal(e.status) ? 1 : 0;
    CHECK(terminals == 1);
    CHECK(events.back().status == tracker.get(id)->status);
  }
}

TEST_CASE("destroying a subscription stops its delivery, and only its own",
          "[tracker][subscribe]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  Recorder kept;
  Recorder dropped;
  auto keptSubscription = tracker.subscribe([&kept](const Snapshot& s) { kept(s); });

  SECTION("by destruction") {
    {
      auto droppedSubscription = tracker.subscribe([&dropped](const Snapshot& s) { dropped(s); });
    }
  }
  SECTION("by reset, and by moving another subscription over it") {
    auto droppedSubscription = tracker.subscribe([&dropped](const Snapshot& s) { dropped(s); });
    auto other = tracker.subscribe([&dropped](const Snapshot& s) { dropped(s); });
    droppedSubscription.reset();
    CHECK_FALSE(droppedSubscription.active());
    droppedSubscription.reset();  // idempotent
    jobtrack::Subscription empty;
    other = std::move(empty);  // ends the second one
    CHECK_FALSE(other.active());
  }

  const auto id = tracker.submit("after", [&] { return executor.executeAsync([] { return 1; }); });
  REQUIRE(kept.waitForTerminals(1));
  CHECK(kept.of(id).size() >= 2);
  CHECK(dropped.of(id).empty());
}

TEST_CASE("reset waits for a callback in progress, and may be called from inside one",
          "[tracker][subscribe]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);

  SECTION("from another thread: no callback runs once reset returns") {
    Latch inCallback;
    Gate gate;
    std::atomic<bool> running{false};
    auto subscription = tracker.subscribe([&, g = gate.handle()](const Snapshot&) {
      running = true;
      inCallback.countDown();
      (void)g.waitFor();
      running = false;
    });
    (void)tracker.submit("one", [] { return jobtrack::makeReadyFuture(1); });
    REQUIRE(inCallback.waitFor());
    bool runningAfterReset = true;
    std::thread resetter([&] {
      subscription.reset();
      runningAfterReset = running.load();
    });
    gate.open();
    resetter.join();
    CHECK_FALSE(runningAfterReset);
  }
  SECTION("from inside the callback itself") {
    // Events only come from the submit below, so the subscription is stored
    // before the callback can run.
    Latch resetDone;
    std::optional<jobtrack::Subscription> subscription;
    // resetDone by value: the callback still runs countDown() after the test's wait returns.
    subscription.emplace(tracker.subscribe([&subscription, resetDone](const Snapshot&) {
      if (subscription->active()) {
        subscription->reset();
        resetDone.countDown();
      }
    }));
    (void)tracker.submit("one", [] { return jobtrack::makeReadyFuture(1); });
    REQUIRE(resetDone.waitFor());
    // Destroying the executor below joins the thread that ran the callback.
  }
}

TEST_CASE("a throwing subscriber stops neither other subscribers nor the tracker",
          "[tracker][subscribe]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  constexpr int jobs = 10;
  // Each subscriber is delivered to on its own: the recorder may see every
  // event before a throwing one has run at all, so they are waited for.
  // Every job's terminal event (never one of those dropped for a slow
  // subscriber) must reach them, the last one long after their first throw.
  Latch stdTerminals(jobs + 1);
  Latch otherTerminals(jobs + 1);
  auto throwsStd = tracker.subscribe([stdTerminals](const Snapshot& s) {
    if (isTerminal(s.status)) stdTerminals.countDown();
    throw std::runtime_error("subscriber");
  });
  auto throwsInt = tracker.subscribe([otherTerminals](const Snapshot& s) {
    if (isTerminal(s.status)) otherTerminals.countDown();
    throw 1;
  });
  Recorder recorder;
  auto records = tracker.subscribe([&recorder](const Snapshot& s) { recorder(s); });

  std::vector<JobId> ids;
  for (int i = 0; i < jobs; ++i) {
    ids.push_back(
        tracker.submit("job", [&executor, i] { return executor.executeAsync([i] { return i; }); }));
  }
  for (const auto& id : ids) REQUIRE(tracker.wait(id, bound)->status == JobStatus::Completed);
  REQUIRE(recorder.waitForTerminals(jobs));
  // The throwing subscribers kept receiving: each event of the job after the first throw reached
  // them.
  const auto last = tracker.submit("last", [&] { return executor.executeAsync([] { return 0; }); });
  REQUIRE(recorder.waitForTerminals(jobs + 1));
  CHECK(tracker.wait(last, bound)->status == JobStatus::Completed);
  CHECK(stdTerminals.waitFor());
  CHECK(otherTerminals.waitFor());
}

TEST_CASE("a blocked subscriber stalls neither submit, get nor other subscribers",
          "[tracker][subscribe]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  Gate gate;
  Latch blocked;
  Recorder slow;
  auto blocking = tracker.subscribe([&slow, blocked, g = gate.handle()](const Snapshot& s) {
    blocked.countDown();
    (void)g.waitFor();
    slow(s);
  });
  Recorder fast;
  auto other = tracker.subscribe([&fast](const Snapshot& s) { fast(s); });

  const auto first = tracker.submit("first", [] { return jobtrack::makeReadyFuture(0); });
  REQUIRE(blocked.waitFor());  // the blocking subscriber is now stuck in its first event

  constexpr int jobs = 20;
  std::vector<JobId> ids{first};
  for (int i = 1; i <= jobs; ++i) {
    ids.push_back(tracker.submit(
        "more", [&executor, i] { return executor.executeAsync([i] { return i; }); }));
    REQUIRE(tracker.get(ids.back()));
  }
  for (const auto& id : ids) REQUIRE(tracker.wait(id, bound)->status == JobStatus::Completed);
  REQUIRE(fast.waitForTerminals(jobs + 1));
  CHECK(slow.terminalCount() == 0);

  gate.open();
  REQUIRE(slow.waitForTerminals(jobs + 1));  // nothing lost: it catches up
}

// ---------------------------------------------------------------------------
// retention and stats

TEST_CASE("a million short jobs keep at most maxFinishedJobs finished jobs",
          "[tracker][retention]") {
#if JOBTRACK_TEST_SANITIZED
  // Sanitizers make each job ~10-50x slower; the bound is what is under test,
  // not the count, so a smaller run shows the same thing.
  constexpr std::uint64_t count = 100'000;
#else
  constexpr std::uint64_t count = 1'000'000;
#endif
  constexpr std::size_t keep = 1000;
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor,
                  TrackerOptions{.maxFinishedJobs = keep, .finishedTtl = std::chrono::hours(1)});

  JobId first;
  std::vector<JobId> lastIds;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto id = tracker.submit("short", [i] { return jobtrack::makeReadyFuture(i); });
    if (i == 0) first = id;
    if (i >= count - keep) lastIds.push_back(id);
    if (i % 100'000 == 0) {
      const auto stats = tracker.stats();
      REQUIRE(stats.completed <= keep);
    }
  }
  const auto stats = tracker.stats();
  CHECK(stats.submitted == count);
  CHECK(stats.completed == keep);
  CHECK(stats.evicted == count - keep);
  CHECK(stats.pending == 0);
  CHECK(stats.running == 0);
  CHECK(stats.failed == 0);
  CHECK(stats.cancelled == 0);
  CHECK_FALSE(tracker.get(first));
  CHECK(tracker.cancel(first) == CancelResult::NotFound);
  CHECK_FALSE(tracker.wait(first, 0ms));
  for (const auto& id : lastIds) REQUIRE(tracker.get(id));
  CHECK(tracker.get(lastIds.back())->result == json(count - 1));
  CHECK(tracker.list(2 * keep).size() == keep);
}

TEST_CASE("the registry finds every kept job and none of the evicted ones as it grows",
          "[tracker][retention]") {
  constexpr std::size_t keep = 10'000;
  constexpr std::size_t count = 25'000;
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor,
                  TrackerOptions{.maxFinishedJobs = keep, .finishedTtl = std::chrono::hours(1)});
  std::vector<JobId> ids;
  for (std::size_t i = 0; i < count; ++i) {
    ids.push_back(tracker.submit("grow", [i] { return jobtrack::makeReadyFuture(i); }));
  }
  CHECK(tracker.stats().evicted == count - keep);
  std::size_t found = 0;
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const auto snapshot = tracker.get(ids[i]);
    if (!snapshot) continue;
    ++found;
    if (i < count - keep || snapshot->id != ids[i] || snapshot->result != json(i)) ++wrong;
  }
  CHECK(found == keep);
  CHECK(wrong == 0);
  CHECK(tracker.list(count).size() == keep);
}

TEST_CASE("finishedTtl evicts finished jobs through the timer sweep, never pending or running ones",
          "[tracker][retention]") {
  AsyncExecutor executor(smallPools(1));
  Tracker tracker(executor, TrackerOptions{.maxFinishedJobs = 10'000, .finishedTtl = 100ms});
  Gate gate;
  const auto running = occupyTheOnlyThread(tracker, executor, gate);
  const auto pending =
      tracker.submit("pending", [&] { return executor.executeAsync([] { return 1; }); });
  const auto finished = tracker.submit("finished", [] { return jobtrack::makeReadyFuture(1); });
  REQUIRE(tracker.get(finished));

  // No other job finishes from here on: only the sweep can evict. Polling
  // get() is the event under test.
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (tracker.get(finished) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE_FALSE(tracker.get(finished));
  CHECK(tracker.stats().evicted == 1);

  // The running and pending jobs are older than the TTL and still kept.
  REQUIRE(tracker.get(running));
  CHECK(tracker.get(running)->status == JobStatus::Running);
  REQUIRE(tracker.get(pending));
  CHECK(tracker.get(pending)->status == JobStatus::Pending);

  gate.open();
  REQUIRE(tracker.wait(pending, bound)->status == JobStatus::Completed);
}

TEST_CASE("maxFinishedJobs never evicts pending or running jobs", "[tracker][retention]") {
  AsyncExecutor executor(smallPools(1));
  Tracker tracker(executor,
                  TrackerOptions{.maxFinishedJobs = 2, .finishedTtl = std::chrono::hours(1)});
  Gate gate;
  const auto running = occupyTheOnlyThread(tracker, executor, gate);
  const auto pending =
      tracker.submit("pending", [&] { return executor.executeAsync([] { return 1; }); });
  std::vector<JobId> finished;
  for (int i = 0; i < 10; ++i) {
    finished.push_back(tracker.submit("instant", [i] { return jobtrack::makeReadyFuture(i); }));
  }
  const auto stats = tracker.stats();
  CHECK(stats.completed == 2);
  CHECK(stats.evicted == 8);
  CHECK(stats.running == 1);
  CHECK(stats.pending == 1);
  CHECK(tracker.get(running));
  CHECK(tracker.get(pending));
  CHECK_FALSE(tracker.get(finished.front()));
  CHECK(tracker.get(finished.back()));
  gate.open();
  REQUIRE(tracker.wait(pending, bound)->status == JobStatus::Completed);
  CHECK(tracker.stats().completed == 2);
}

TEST_CASE("stats count the kept jobs by status, and the counts add up", "[tracker][stats]") {
  AsyncExecutor executor(smallPools(1));
  Tracker tracker(executor);
  Gate gate;
  const auto blocker = occupyTheOnlyThread(tracker, executor, gate);  // running
  const auto pending =
      tracker.submit("pending", [&] { return executor.executeAsync([] { return 1; }); });
  (void)tracker.submit("done", [] { return jobtrack::makeReadyFuture(1); });
  (void)tracker.submit("done", [] { return jobtrack::makeReadyFuture(2); });
  (void)tracker.submit("failed", []() -> Future<int> { throw std::runtime_error("x"); });
  const auto cancelled =
      tracker.submit("cancelled", [&] { return executor.executeAsync([] { return 1; }); });
  REQUIRE(tracker.cancel(cancelled) == CancelResult::Cancelled);

  auto s = tracker.stats();
  CHECK(s.running == 1);
  CHECK(s.pending == 1);
  CHECK(s.completed == 2);
  CHECK(s.failed == 1);
  CHECK(s.cancelled == 1);
  CHECK(s.submitted == 6);
  CHECK(s.evicted == 0);
  CHECK(s.pending + s.running + s.completed + s.failed + s.cancelled + s.evicted == s.submitted);

  gate.open();
  REQUIRE(tracker.wait(blocker, bound));
  REQUIRE(tracker.wait(pending, bound)->status == JobStatus::Completed);
  s = tracker.stats();
  CHECK(s.running == 0);
  CHECK(s.pending == 0);
  CHECK(s.completed == 4);
  CHECK(s.pending + s.running + s.completed + s.failed + s.cancelled + s.evicted == s.submitted);
}

// ---------------------------------------------------------------------------
// JSON

TEST_CASE("the JSON of a snapshot has every key, ISO-8601 times, and round-trips",
          "[tracker][json]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);
  const std::set<std::string> keys = {"jobId",     "name",      "status",     "progress",
                                      "message",   "result",    "error",      "errorKind",
                                      "createdAt", "startedAt", "completedAt"};

  std::vector<JobId> ids;
  ids.push_back(tracker.submit("completed", [&](JobContext ctx) {
    return executor.executeAsync([ctx] {
      ctx.reportProgress(40, "working");
      return json{{"answer", 42}};
    });
  }));
  ids.push_back(tracker.submit("failed", [&] {
    return executor.executeAsync([]() -> int { throw std::runtime_error("it broke"); });
  }));
  auto promise = std::make_shared<jobtrack::Promise<int>>();
  ids.push_back(tracker.submit("cancelled", [&] { return promise->getFuture(); }));
  REQUIRE(tracker.cancel(ids.back()) == CancelResult::Cancelled);
  auto neverFulfilled = executor.makePromise<int>();
  ids.push_back(tracker.submit(
      "timed out", [&] { return executor.withTimeout(neverFulfilled.getFuture(), 1ms); }));

  std::map<std::string, json> byName;
  for (const auto& id : ids) {
    const auto s = tracker.wait(id, bound);
    REQUIRE(s);
    REQUIRE(isTerminal(s->status));
    const json j = *s;
    INFO(j.dump());
    REQUIRE(j.is_object());
    std::set<std::string> actual;
    for (const auto& [key, value] : j.items()) actual.insert(key);
    CHECK(actual == keys);
    CHECK(j["jobId"] == to_string(id));
    CHECK(isIsoMillis(j["createdAt"].get<std::string>()));
    CHECK(isIsoMillis(j["completedAt"].get<std::string>()));
    CHECK((j["startedAt"].is_null() || isIsoMillis(j["startedAt"].get<std::string>())));

    // snapshot -> JSON -> snapshot is the same snapshot, and JSON -> JSON too.
    const auto back = j.get<Snapshot>();
    CHECK(back == *s);
    CHECK(json(back) == j);
    byName[s->name] = j;
  }

  const auto& completed = byName["completed"];
  CHECK(completed["status"] == "COMPLETED");
  CHECK(completed["progress"] == 100);
  CHECK(completed["message"] == "working");
  CHECK(completed["result"] == json{{"answer", 42}});
  CHECK(completed["error"].is_null());
  CHECK(completed["errorKind"].is_null());
  CHECK(isIsoMillis(completed["startedAt"].get<std::string>()));

  const auto& failed = byName["failed"];
  CHECK(failed["status"] == "FAILED");
  CHECK(failed["error"] == "it broke");
  CHECK(failed["errorKind"] == "exception");
  CHECK(failed["result"].is_null());

  const auto& cancelled = byName["cancelled"];
  CHECK(cancelled["status"] == "CANCELLED");
  CHECK(cancelled["errorKind"] == "cancelled");
  CHECK(cancelled["startedAt"].is_null());

  const auto& timedOut = byName["timed out"];
  CHECK(timedOut["status"] == "FAILED");
  CHECK(timedOut["errorKind"] == "timeout");

  // A non-terminal snapshot has nulls where nothing happened yet.
  auto notYet = executor.makePromise<int>();
  const auto pending = tracker.submit("pending", [&] { return notYet.getFuture(); });
  const json p = *tracker.get(pending);
  CHECK(p["status"] == "PENDING");
  CHECK(p["startedAt"].is_null());
  CHECK(p["completedAt"].is_null());
  CHECK(p["result"].is_null());
  CHECK(p.get<Snapshot>() == *tracker.get(pending));
}

TEST_CASE("from_json rejects malformed snapshots with exceptions", "[tracker][json]") {
  const json good = {
      {"jobId", "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
      {"name", "n"},
      {"status", "RUNNING"},
      {"progress", 50},
      {"message", "m"},
      {"result", nullptr},
      {"error", nullptr},
      {"errorKind", nullptr},
      {"createdAt", "2026-11-28T21:05:03.042Z"},
      {"startedAt", "2026-11-28T21:05:04.000Z"},
      {"completedAt", nullptr},
  };
  const auto parsed = good.get<Snapshot>();
  CHECK(parsed.status == JobStatus::Running);
  CHECK(parsed.progress == 50);
  CHECK(json(parsed) == good);

  auto without = [&](const char* key) {
    json j = good;
    j.erase(key);
    return j;
  };
  auto with = [&](const char* key, json value) {
    json j = good;
    j[key] = std::move(value);
    return j;
  };

  SECTION("missing required keys") {
    CHECK_THROWS(without("jobId").get<Snapshot>());
    CHECK_THROWS(without("status").get<Snapshot>());
    CHECK_THROWS(without("createdAt").get<Snapshot>());
    CHECK_NOTHROW(without("name").get<Snapshot>());  // optional keys may be missing
    CHECK_NOTHROW(without("completedAt").get<Snapshot>());
  }
  SECTION("bad ids and statuses") {
    CHECK_THROWS(with("jobId", "not-an-id").get<Snapshot>());
    CHECK_THROWS(with("jobId", 12).get<Snapshot>());
    CHECK_THROWS(with("status", "DONE").get<Snapshot>());
    CHECK_THROWS(with("status", 1).get<Snapshot>());
    CHECK_THROWS(with("errorKind", "gremlins").get<Snapshot>());
  }
  SECTION("bad times") {
    CHECK_THROWS(with("createdAt", "yesterday").get<Snapshot>());
    CHECK_THROWS(with("createdAt", "2026-13-01T00:00:00.000Z").get<Snapshot>());
    CHECK_THROWS(with("createdAt", "2026-02-29T00:00:00.000Z").get<Snapshot>());
    CHECK_THROWS(with("createdAt", "2026-11-28T24:00:00.000Z").get<Snapshot>());
    CHECK_THROWS(with("createdAt", "2026-11-28T21:05:03Z").get<Snapshot>());
    CHECK_THROWS(with("createdAt", "2026-11-28T21:05:03.042+01:00").get<Snapshot>());
    CHECK_THROWS(with("createdAt", nullptr).get<Snapshot>());
    CHECK_THROWS(with("startedAt", "2026-11-28 21:05:03.042Z").get<Snapshot>());
    CHECK_THROWS(with("completedAt", 1700000000).get<Snapshot>());
  }
  SECTION("progress out of range or not an integer") {
    CHECK_THROWS(with("progress", 101).get<Snapshot>());
    CHECK_THROWS(with("progress", -1).get<Snapshot>());
    CHECK_THROWS(with("progress", 1e300).get<Snapshot>());
    CHECK_THROWS(with("progress", 50.5).get<Snapshot>());
    CHECK_THROWS(with("progress", true).get<Snapshot>());
    CHECK_THROWS(with("progress", "50").get<Snapshot>());
    CHECK_THROWS(with("progress", 4294967346ULL).get<Snapshot>());  // 2^32 + 50 must not wrap to 50
    CHECK_NOTHROW(with("progress", 100).get<Snapshot>());
    CHECK_NOTHROW(with("progress", 0).get<Snapshot>());
  }
  SECTION("wrong types and non-objects") {
    CHECK_THROWS(with("name", 5).get<Snapshot>());
    CHECK_THROWS(with("message", json::array()).get<Snapshot>());
    CHECK_THROWS(with("error", 5).get<Snapshot>());
    CHECK_THROWS(with("result", 5).get<JobTracker<std::string>::Snapshot>());
    CHECK_THROWS(json::array().get<Snapshot>());
    CHECK_THROWS(json("snapshot").get<Snapshot>());
    CHECK_THROWS(json(nullptr).get<Snapshot>());
    CHECK_THROWS(json(3).get<Snapshot>());
  }
  SECTION("a failed read leaves the target unchanged") {
    Snapshot target = parsed;
    CHECK_THROWS(from_json(with("progress", 101), target));
    CHECK(target == parsed);
  }
}

TEST_CASE("ISO-8601 times are UTC with milliseconds and parse back", "[tracker][json]") {
  using namespace std::chrono;
  using jobtrack::detail::formatIsoTime;
  using jobtrack::detail::parseIsoTime;
  const system_clock::time_point epoch{};
  CHECK(formatIsoTime(epoch) == "1970-01-01T00:00:00.000Z");
  CHECK(formatIsoTime(epoch + 1ms) == "1970-01-01T00:00:00.001Z");
  CHECK(formatIsoTime(epoch + 999us) == "1970-01-01T00:00:00.000Z");  // truncated, not rounded
  CHECK(formatIsoTime(epoch - 1ms) == "1969-12-31T23:59:59.999Z");
  const auto leapDay = sys_days{2024y / February / 29} + 23h + 59min + 58s + 123ms;
  CHECK(formatIsoTime(leapDay) == "2024-02-29T23:59:58.123Z");
  CHECK(parseIsoTime("2024-02-29T23:59:58.123Z") == leapDay);
  CHECK(parseIsoTime("1969-12-31T23:59:59.999Z") == epoch - 1ms);
  CHECK(parseIsoTime(formatIsoTime(epoch)) == epoch);

  CHECK_FALSE(parseIsoTime(""));
  CHECK_FALSE(parseIsoTime("2023-02-29T00:00:00.000Z"));
  CHECK_FALSE(parseIsoTime("2024-04-31T00:00:00.000Z"));
  CHECK_FALSE(parseIsoTime("2024-01-01T00:60:00.000Z"));
  CHECK_FALSE(parseIsoTime("2024-01-01T00:00:60.000Z"));
  CHECK_FALSE(parseIsoTime("2024-01-01T00:00:00.000z"));
  CHECK_FALSE(parseIsoTime("2024-01-01T00:00:00.0000"));
  CHECK_FALSE(parseIsoTime("2024-01-01T00:00:00.-00Z"));
  CHECK_FALSE(parseIsoTime("2024-00-01T00:00:00.000Z"));
  CHECK_FALSE(parseIsoTime("2024-01-00T00:00:00.000Z"));
  const auto now = floor<milliseconds>(system_clock::now());
  CHECK(isIsoMillis(formatIsoTime(now)));
  CHECK_FALSE(
      isIsoMillis("2026-11-28T21:05:03.42Z"));  // the test's own matcher rejects near misses
  CHECK_FALSE(isIsoMillis("2026-11-28T21:05:03.042"));
  CHECK_FALSE(isIsoMillis("2026-11-28 21:05:03.042Z"));
  CHECK(parseIsoTime(formatIsoTime(now)) == now);
}

// ---------------------------------------------------------------------------
// lifetime

TEST_CASE("a tracker destroyed while its jobs run is not touched when they finish",
          "[tracker][lifetime]") {
  AsyncExecutor executor(smallPools());
  Gate gate;
  Latch started(3);
  Latch bodiesDone(3);
  std::promise<std::optional<Snapshot>> asyncResult;
  auto asyncFuture = asyncResult.get_future();
  std::optional<jobtrack::Subscription> subscription;
  {
    Tracker tracker(executor);
    subscription.emplace(tracker.subscribe([](const Snapshot&) {}));
    for (int i = 0; i < 3; ++i) {
      const auto id = tracker.submit("orphan", [&, i, g = gate.handle()](JobContext ctx) {
        return executor.executeAsync([ctx, i, g, started, done = onDestroy(bodiesDone)] {
          started.countDown();
          (void)g.waitFor();
          ctx.reportProgress(50, "after the tracker is gone");
          if (i == 1) throw std::runtime_error("fails late");
          return i;
        });
      });
      if (i == 0) {
        tracker.asyncWait(id, 200ms, [&asyncResult](std::optional<Snapshot> s) {
          asyncResult.set_value(std::move(s));
        });
      }
    }
    REQUIRE(started.waitFor());
    (void)tracker.cancel(tracker.list(1).front().id);  // one cancelled, its work still running
  }
  gate.open();
  REQUIRE(bodiesDone.waitFor());
  // The pending asyncWait still completes (through its timer) with what it last knew.
  REQUIRE(asyncFuture.wait_for(bound) == std::future_status::ready);
  const auto s = asyncFuture.get();
  REQUIRE(s);
  CHECK_FALSE(isTerminal(s->status));
  subscription->reset();  // after the tracker: a no-op
}

TEST_CASE("a tracker that outlives its executor stays usable", "[tracker][lifetime]") {
  std::optional<AsyncExecutor> executor(std::in_place, smallPools());
  Tracker tracker(*executor);
  Gate gate;
  Latch started;
  const auto id = tracker.submit("cut short", [&, started, g = gate.handle()] {
    return executor->executeAsync([started, g](std::stop_token token) {
      std::stop_callback onStop(token, [g] { g.release(); });
      started.countDown();
      (void)g.waitFor();
      return 1;
    });
  });
  REQUIRE(started.waitFor());
  executor.reset();  // shuts down: the running job is cancelled
  const auto s = tracker.wait(id, bound);
  REQUIRE(s);
  CHECK(s->status == JobStatus::Cancelled);
  const auto late = tracker.submit("late", [] { return jobtrack::makeReadyFuture(1); });
  CHECK(tracker.get(late)->status == JobStatus::Completed);
}

// ---------------------------------------------------------------------------
// concurrency

TEST_CASE("many threads submitting, polling, listing, cancelling and waiting at once",
          "[tracker][stress]") {
  AsyncExecutor executor(smallPools());
  Tracker tracker(executor);

  std::mutex eventsMutex;
  std::map<JobId, std::vector<JobStatus>> events;  // per job, what the subscriber saw
  std::condition_variable eventsChanged;
  std::size_t terminalEvents = 0;
  auto subscription = tracker.subscribe([&](const Snapshot& s) {
    {
      std::lock_guard lock(eventsMutex);
      events[s.id].push_back(s.status);
      if (isTerminal(s.status)) ++terminalEvents;
    }
    eventsChanged.notify_all();
  });

  constexpr int threads = 4;
  constexpr int operationsPerThread = JOBTRACK_TEST_SANITIZED ? 300 : 600;
  std::mutex idsMutex;
  std::vector<JobId> ids;
  auto pickId = [&](std::mt19937& random) -> std::optional<JobId> {
    std::lock_guard lock(idsMutex);
    if (ids.empty()) return std::nullopt;
    return ids[std::uniform_int_distribution<std::size_t>(0, ids.size() - 1)(random)];
  };

  // Catch2 assertions are not thread-safe: the workers count mistakes instead.
  std::atomic<int> mistakes{0};
  std::atomic<int> asyncWaits{0};
  Latch asyncWaitsDone(1);
  std::atomic<bool> submitsDone{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t) * 7919U + 1U);
      for (int op = 0; op < operationsPerThread; ++op) {
        switch (std::uniform_int_distribution<int>(0, 6)(random)) {
          case 0:
          case 1: {
            const int kind = op % 4;
            const auto id =
                tracker.submit("stress-" + std::to_string(t), [&executor, kind](JobContext ctx) {
                  if (kind == 0) return jobtrack::makeReadyFuture(1);
                  return executor.executeAsync([ctx, kind](std::stop_token token) {
                    ctx.reportProgress(50, "half");
                    if (kind == 2) throw std::runtime_error("stress failure");
                    return token.stop_requested() ? 0 : kind;
                  });
                });
            std::lock_guard lock(idsMutex);
            ids.push_back(id);
            break;
          }
          case 2:
            if (auto id = pickId(random)) {
              if (auto s = tracker.get(*id); s && s->id != *id) ++mistakes;
            }
            break;
          case 3:
            for (const auto& s :
                 tracker.list(20, ListFilter{.status = {}, .namePrefix = "stress"})) {
              if (!s.name.starts_with("stress")) ++mistakes;
            }
            break;
          case 4:
            if (auto id = pickId(random)) (void)tracker.cancel(*id);
            break;
          case 5:
            if (auto id = pickId(random)) (void)tracker.wait(*id, 1ms);
            break;
          case 6:
            if (auto id = pickId(random)) {
              ++asyncWaits;
              tracker.asyncWait(
                  *id, 5ms,
                  [&asyncWaits, &submitsDone, asyncWaitsDone](const std::optional<Snapshot>&) {
                    if (--asyncWaits == 0 && submitsDone.load()) asyncWaitsDone.release();
                  });
            }
            break;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  CHECK(mistakes.load() == 0);
  submitsDone = true;
  if (asyncWaits.load() == 0) asyncWaitsDone.release();

  for (const auto& id : ids) {
    const auto s = tracker.wait(id, bound);
    REQUIRE(s);
    REQUIRE(isTerminal(s->status));
  }
  {
    std::unique_lock lock(eventsMutex);
    REQUIRE(eventsChanged.wait_for(lock, bound, [&] { return terminalEvents >= ids.size(); }));
  }
  REQUIRE(asyncWaitsDone.waitFor());

  std::lock_guard lock(eventsMutex);
  CHECK(terminalEvents == ids.size());
  CHECK(events.size() == ids.size());
  for (const auto& id : ids) {
    const auto& seen = events[id];
    REQUIRE_FALSE(seen.empty());
    CHECK(seen.front() == JobStatus::Pending);
    CHECK(isTerminal(seen.back()));
    CHECK(std::count_if(seen.begin(), seen.end(), [](JobStatus s) { return isTerminal(s); }) == 1);
    for (std::size_t i = 1; i < seen.size(); ++i)
      CHECK(lifecycleStage(seen[i]) >= lifecycleStage(seen[i - 1]));
    CHECK(seen.back() == tracker.get(id)->status);
  }
  const auto stats = tracker.stats();
  CHECK(stats.submitted == ids.size());
  CHECK(stats.pending == 0);
  CHECK(stats.running == 0);
  CHECK(stats.completed + stats.failed + stats.cancelled + stats.evicted == stats.submitted);
}
