// Reliability: several threads hammer one JobTracker with a seeded random mix
// of submit, get, list, cancel, wait, asyncWait and subscribe, then check the
// invariants a job system is trusted for:
//   - no job is lost: every submitted id is still found, or was evicted by
//     the retention rule (maxFinishedJobs) after it finished;
//   - each job reached exactly one terminal state, and the one its kind and
//     any successful cancel() imply;
//   - no subscriber saw a job's status (or progress) go backwards;
//   - stats() add up, and the registry stays bounded (finished jobs kept
//     <= maxFinishedJobs, plus the jobs finishing at that instant);
//   - the executor's task counters add up after shutdown.
//
// Reproducible: every thread draws from its own std::mt19937 seeded from
// JOBTRACK_STRESS_SEED (default below) and its index; the seed is printed on
// failure. Thread interleaving is not reproducible, the operation mix is.
// Bounded: kThreads * kOpsPerThread operations; every wait has a generous bound.

#include <jobtrack/jobtrack.hpp>

#include "catch.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

using namespace std::chrono_literals;
using jobtrack::AsyncExecutor;
using jobtrack::CancelResult;
using jobtrack::ExecutorOptions;
using jobtrack::JobContext;
using jobtrack::JobId;
using jobtrack::JobStatus;
using jobtrack::JobTracker;
using jobtrack::TrackerOptions;

namespace {

constexpr int kThreads = 4;
constexpr int kOpsPerThread = 1000;
constexpr std::size_t kMaxFinished = 64;
constexpr auto kBound = 60s;  // generous bound on every wait for an event

std::uint32_t baseSeed() {
  if (const char* text = std::getenv("JOBTRACK_STRESS_SEED"))
    return static_cast<std::uint32_t>(std::strtoul(text, nullptr, 10));
  return 20261128;
}

/// What kind of work a job does; decides its expected terminal state.
enum class Kind { Value, Progress, ThrowsStd, ThrowsOther, SupplierThrows, Cooperative, Coroutine };
constexpr int kKinds = 7;

/// A subscriber that records, per job, what it saw, and checks order as it goes.
struct Recorder {
  struct PerJob {
    int lastRank = -1;
    int lastProgress = -1;
    int terminalEvents = 0;
    JobStatus terminal = JobStatus::Pending;
  };
  std::mutex mutex;
  std::condition_variable changed;
  std::unordered_map<JobId, PerJob> jobs;
  std::vector<std::string> violations;
  std::size_t terminals = 0;
  std::uint64_t events = 0;

  void see(const JobTracker<int>::Snapshot& s) {
    std::lock_guard lock(mutex);
    ++events;
    PerJob& job = jobs[s.id];
    const int r = lifecycleStage(s.status);
    if (r < job.lastRank) violations.push_back(to_string(s.id) + ": status went backwards");
    if (r == job.lastRank && r == 1 && s.progress < job.lastProgress) {
      violations.push_back(to_string(s.id) + ": progress went backwards");
    }
    if (job.terminalEvents > 0)
      violations.push_back(to_string(s.id) + ": an event after the terminal one");
    job.lastRank = r;
    job.lastProgress = s.progress;
    if (isTerminal(s.status)) {
      ++job.terminalEvents;
      job.terminal = s.status;
      ++terminals;
      changed.notify_all();
    }
  }

  bool waitForTerminals(std::size_t count) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, kBound, [&] { return terminals >= count; });
  }
};

struct Submitted {
  JobId id;
  Kind kind;
  bool cancelledByUs = false;  // cancel() answered Cancelled
};

}  // namespace

TEST_CASE("a seeded random mix of operations from several threads keeps every invariant",
          "[reliability][stress]") {
  const std::uint32_t seed = baseSeed();
  INFO("JOBTRACK_STRESS_SEED=" << seed);

  ExecutorOptions executorOptions;
  executorOptions.coreThreads = 2;
  executorOptions.blockingThreads = 4;
  AsyncExecutor executor(executorOptions);
  TrackerOptions trackerOptions;
  trackerOptions.maxFinishedJobs = kMaxFinished;
  trackerOptions.finishedTtl = std::chrono::hours(1);  // only the capacity evicts here
  JobTracker<int> tracker(executor, trackerOptions);

  // Two subscribers for the whole run: one well-behaved, one that throws on
  // every other event (which must not cost it, or anyone, any event).
  Recorder recorder;
  Recorder throwingRecorder;
  std::atomic<std::uint64_t> thrown{0};
  auto subscription = tracker.subscribe([&](const auto& s) { recorder.see(s); });
  auto throwingSubscription = tracker.subscribe([&](const auto& s) {
    throwingRecorder.see(s);
    if (thrown.fetch_add(1) % 2 == 0) throw std::runtime_error("subscriber failure");
  });

  std::atomic<int> asyncWaitsStarted{0};
  std::atomic<int> asyncWaitsDone{0};
  std::mutex asyncMutex;
  std::condition_variable asyncDone;
  std::atomic<int> listViolations{0};
  std::atomic<int> orderViolations{0};
  std::atomic<int> boundViolations{0};
  std::atomic<std::uint64_t> transientSubscriptionEvents{0};

  std::vector<std::vector<Submitted>> perThread(kThreads);
  std::vector<std::map<std::string, int>> opCounts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed + static_cast<std::uint32_t>(t));
      auto& mine = perThread[static_cast<std::size_t>(t)];
      auto& counts = opCounts[static_cast<std::size_t>(t)];
      std::optional<jobtrack::Subscription> transient;
      int transientLeft = 0;
      auto pick = [&]() -> Submitted& {
        return mine[std::uniform_int_distribution<std::size_t>(0, mine.size() - 1)(rng)];
      };
      for (int op = 0; op < kOpsPerThread; ++op) {
        if (transient && --transientLeft <= 0) transient.reset();
        const int dice = std::uniform_int_distribution<int>(0, 99)(rng);
        if (dice < 40 || mine.empty()) {
          ++counts["submit"];
          const auto kind =
              static_cast<Kind>(std::uniform_int_distribution<int>(0, kKinds - 1)(rng));
          const int value = std::uniform_int_distribution<int>(0, 1000)(rng);
          JobId id;
          switch (kind) {
            case Kind::Value:
              id = tracker.submit(
                  "value", [&, value] { return executor.executeAsync([value] { return value; }); });
              break;
            case Kind::Progress:
              id = tracker.submit("progress", [&, value](JobContext ctx) {
                return executor.executeAsync([ctx, value] {
                  for (int p = 0; p <= 100; p += 25) ctx.reportProgress(p, "step");
                  return value;
                });
              });
              break;
            case Kind::ThrowsStd:
              id = tracker.submit("throws-std", [&] {
                return executor.executeAsync([]() -> int { throw std::runtime_error("boom"); });
              });
              break;
            case Kind::ThrowsOther:
              id = tracker.submit("throws-other",
                                  [&] { return executor.executeAsync([]() -> int { throw 42; }); });
              break;
            case Kind::SupplierThrows:
              id = tracker.submit("supplier-throws",
                                  []() -> jobtrack::Future<int> { throw std::logic_error("no"); });
              break;
            case Kind::Cooperative:
              // Runs until cancelled or for a few milliseconds, honouring its stop token.
              id = tracker.submit("cooperative", [&, value](JobContext ctx) {
                return executor.executeAsync([value, ctx](std::stop_token stop) {
                  std::mutex m;
                  std::condition_variable_any cv;
                  std::unique_lock lock(m);
                  cv.wait_for(lock, stop, 2ms, [] { return false; });
                  ctx.reportProgress(50, "halfway");
                  return value;
                });
              });
              break;
            case Kind::Coroutine:
              id = tracker.submit("coroutine", [&, value] {
                return executor.executeAsync(
                    [value]() -> asio::awaitable<int> { co_return value; });
              });
              break;
          }
          mine.push_back({id, kind});
        } else if (dice < 55) {
          ++counts["get"];
          const Submitted& job = pick();
          if (auto s = tracker.get(job.id); s && !(s->id == job.id)) listViolations.fetch_add(1);
        } else if (dice < 65) {
          ++counts["list"];
          const std::size_t limit = std::uniform_int_distribution<std::size_t>(1, 100)(rng);
          jobtrack::ListFilter filter;
          if (rng() % 2) filter.status = static_cast<JobStatus>(rng() % 5);
          const auto jobs = tracker.list(limit, filter);
          std::set<JobId> seen;
          bool ok = jobs.size() <= limit;
          for (std::size_t i = 0; i < jobs.size(); ++i) {
            ok = ok && seen.insert(jobs[i].id).second;
            ok = ok && (!filter.status || jobs[i].status == *filter.status);
            if (i > 0 && jobs[i - 1].createdAt < jobs[i].createdAt) orderViolations.fetch_add(1);
          }
          if (!ok) listViolations.fetch_add(1);
          if (!filter.status && limit == 100) {
            // Bounded memory: finished jobs kept <= maxFinishedJobs, plus those
            // finishing right now (between their state change and the eviction).
            const auto everything = tracker.list(std::numeric_limits<std::size_t>::max());
            const auto finished = std::count_if(everything.begin(), everything.end(),
                                                [](const auto& s) { return isTerminal(s.status); });
            if (static_cast<std::size_t>(finished) > kMaxFinished + 16)
              boundViolations.fetch_add(1);
          }
        } else if (dice < 80) {
          ++counts["cancel"];
          Submitted& job = pick();
          if (tracker.cancel(job.id) == CancelResult::Cancelled) job.cancelledByUs = true;
        } else if (dice < 90) {
          ++counts["wait"];
          const Submitted& job = pick();
          const auto timeout = std::chrono::milliseconds(rng() % 3);
          if (auto s = tracker.wait(job.id, timeout); s && isTerminal(s->status)) {
            // A terminal state never changes afterwards.
            if (auto again = tracker.get(job.id); again && again->status != s->status)
              listViolations.fetch_add(1);
          }
        } else if (dice < 95) {
          ++counts["asyncWait"];
          asyncWaitsStarted.fetch_add(1);
          tracker.asyncWait(pick().id, std::chrono::milliseconds(rng() % 3),
                            [&](std::optional<JobTracker<int>::Snapshot>) {
                              {
                                std::lock_guard lock(asyncMutex);
                                asyncWaitsDone.fetch_add(1);
                              }
                              asyncDone.notify_all();
                            });
        } else {
          ++counts["subscribe"];
          transient =
              tracker.subscribe([&](const auto&) { transientSubscriptionEvents.fetch_add(1); });
          transientLeft = std::uniform_int_distribution<int>(1, 20)(rng);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::vector<Submitted> all;
  for (auto& mine : perThread) all.insert(all.end(), mine.begin(), mine.end());
  std::map<std::string, int> totals;
  for (const auto& counts : opCounts) {
    for (const auto& [name, n] : counts) totals[name] += n;
  }
  for (const auto& [name, n] : totals) UNSCOPED_INFO(name << ": " << n);
  UNSCOPED_INFO("jobs: " << all.size());

  // Every job finishes: the subscribers see one terminal event per job.
  REQUIRE(recorder.waitForTerminals(all.size()));
  REQUIRE(throwingRecorder.waitForTerminals(all.size()));
  {
    std::unique_lock lock(asyncMutex);
    REQUIRE(asyncDone.wait_for(lock, kBound,
                               [&] { return asyncWaitsDone.load() == asyncWaitsStarted.load(); }));
  }

  CHECK(listViolations == 0);
  CHECK(orderViolations == 0);
  CHECK(boundViolations == 0);
  {
    std::lock_guard lock(recorder.mutex);
    for (const auto& v : recorder.violations) UNSCOPED_INFO(v);
    CHECK(recorder.violations.empty());
    CHECK(recorder.jobs.size() == all.size());
  }
  {
    std::lock_guard lock(throwingRecorder.mutex);
    CHECK(throwingRecorder.violations.empty());
    CHECK(throwingRecorder.jobs.size() == all.size());
  }

  std::size_t kept = 0;
  std::size_t missing = 0;
  std::size_t wrongOutcome = 0;
  std::map<JobStatus, std::size_t> keptByStatus;
  for (const Submitted& job : all) {
    const Recorder::PerJob seen = recorder.jobs.at(job.id);
    CHECK(seen.terminalEvents == 1);
    CHECK(throwingRecorder.jobs.at(job.id).terminalEvents == 1);
    CHECK(throwingRecorder.jobs.at(job.id).terminal == seen.terminal);
    // The terminal state the job's kind implies (any kind may be cancelled first).
    JobStatus expected = JobStatus::Completed;
    if (job.kind == Kind::ThrowsStd || job.kind == Kind::ThrowsOther ||
        job.kind == Kind::SupplierThrows) {
      expected = JobStatus::Failed;
    }
    // Only these threads cancel, each its own jobs: a job is CANCELLED exactly
    // when one of our cancel() calls answered Cancelled.
    if (job.cancelledByUs) expected = JobStatus::Cancelled;
    if (seen.terminal != expected) ++wrongOutcome;

    if (auto s = tracker.get(job.id)) {
      ++kept;
      ++keptByStatus[s->status];
      CHECK(s->status == seen.terminal);
      if (s->status == JobStatus::Failed) {
        const std::string expectedError = job.kind == Kind::ThrowsStd     ? "boom"
                                          : job.kind == Kind::ThrowsOther ? "non-standard exception"
                                                                          : "no";
        CHECK(s->error == expectedError);
      }
    } else {
      ++missing;  // evicted: only finished jobs are, which the subscriber confirms above
    }
  }
  CHECK(wrongOutcome == 0);

  // stats() add up, and the registry is bounded by the retention rule.
  const auto stats = tracker.stats();
  CHECK(stats.submitted == all.size());
  CHECK(stats.pending == 0);
  CHECK(stats.running == 0);
  CHECK(stats.completed == keptByStatus[JobStatus::Completed]);
  CHECK(stats.failed == keptByStatus[JobStatus::Failed]);
  CHECK(stats.cancelled == keptByStatus[JobStatus::Cancelled]);
  CHECK(stats.completed + stats.failed + stats.cancelled == kept);
  CHECK(stats.evicted == missing);
  CHECK(kept + missing == all.size());
  CHECK(kept <= kMaxFinished);
  CHECK(tracker.list(std::numeric_limits<std::size_t>::max()).size() == kept);

  subscription.reset();
  throwingSubscription.reset();
  const auto report = executor.shutdown();
  CHECK(report.abandonedThreads == 0);
  const auto executorStats = executor.stats();
  CHECK(executorStats.submitted == executorStats.queued + executorStats.running +
                                       executorStats.completed + executorStats.failed +
                                       executorStats.cancelled);
  CHECK(executorStats.queued == 0);
  CHECK(executorStats.running == 0);
}
