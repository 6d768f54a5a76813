/// @file
/// Figure 2: in-flight coroutine jobs, each awaiting an Asio timer: resident
/// bytes per job, spawn rate and the drain after the deadline, tracked jobs
/// next to bare co_spawn'ed coroutines. Each variant runs in its own child.

#include "harness.hpp"
#include <jobtrack/jobtrack.hpp>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdio>

namespace jobtrack::bench {
namespace {

/// The body both variants run: count the start, wait for the shared deadline.
asio::awaitable<void> waitForDeadline(Clock::time_point deadline,
                                      std::atomic<std::size_t>& started) {
  started.fetch_add(1, std::memory_order_relaxed);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_at(deadline);
  co_await timer.async_wait(asio::use_awaitable);
}

/// What one child measured.
struct InFlight {
  double bytesPerJob = 0;
  double spawnRate = 0;     ///< jobs per second, spawn call until the body started
  double drainSeconds = 0;  ///< deadline until the last job is complete
  double spawnSeconds = 0;
  bool spawnedBeforeDeadline = false;
  double holdSeconds = 0;

  std::vector<double> encode() const {
    return {bytesPerJob, spawnRate, drainSeconds, spawnSeconds, spawnedBeforeDeadline ? 1.0 : 0.0,
            holdSeconds};
  }
  static InFlight decode(const std::vector<double>& v) {
    if (v.size() != 6) throw std::runtime_error("figure 2: malformed child result");
    return {v[0], v[1], v[2], v[3], v[4] != 0, v[5]};
  }
};

/// Spawns `jobs` with `spawn(deadline, started)`, then measures. `completed`
/// says how many have reached their final state.
template <class Spawn, class Completed>
InFlight measure(std::size_t jobs, std::chrono::milliseconds hold,
                 std::atomic<std::size_t>& started, Spawn spawn, Completed completed) {
  InFlight result;
  result.holdSeconds = seconds(hold);
  const auto before = residentBytes();
  const auto start = Clock::now();
  const auto deadline = start + hold;
  for (std::size_t i = 0; i < jobs; ++i) spawn(deadline);
  const auto allStarted =
      waitUntil([&] { return started.load(std::memory_order_relaxed) == jobs; });
  const auto after = residentBytes();
  result.spawnSeconds = seconds(allStarted - start);
  result.spawnedBeforeDeadline = allStarted < deadline;
  result.spawnRate = static_cast<double>(jobs) / result.spawnSeconds;
  result.bytesPerJob = static_cast<double>(after - before) / static_cast<double>(jobs);
  const auto end = waitUntil([&] { return completed() == jobs; });
  result.drainSeconds = seconds(end - deadline);
  return result;
}

InFlight bare(std::size_t jobs, std::size_t threads, std::chrono::milliseconds hold) {
  asio::thread_pool pool(threads);
  std::atomic<std::size_t> started{0};
  std::atomic<std::size_t> done{0};
  auto result = measure(
      jobs, hold, started,
      [&](Clock::time_point deadline) {
        asio::co_spawn(
            pool, waitForDeadline(deadline, started),
            [&done](const std::exception_ptr&) { done.fetch_add(1, std::memory_order_relaxed); });
      },
      [&] { return done.load(std::memory_order_relaxed); });
  pool.join();
  return result;
}

InFlight tracked(std::size_t jobs, std::size_t threads, std::chrono::milliseconds hold) {
  AsyncExecutor executor(ExecutorOptions{.coreThreads = threads, .blockingThreads = threads});
  // Every job is kept after it finishes, so COMPLETED can be counted.
  JobTracker<> tracker(executor, TrackerOptions{.maxFinishedJobs = jobs});
  std::atomic<std::size_t> started{0};
  return measure(
      jobs, hold, started,
      [&](Clock::time_point deadline) {
        tracker.submit("bench", [&executor, &started, deadline] {
          return executor.executeAsync(
              [&started, deadline] { return waitForDeadline(deadline, started); });
        });
      },
      [&] { return tracker.stats().completed; });
}

/// Runs a variant in a child. The hold is first sized from a calibration
/// child (a fiftieth of the jobs) so spawning ends before the deadline; if it
/// still did not (some jobs would have finished before memory was read),
/// the run is repeated with a longer hold.
template <class Variant>
InFlight inFreshChild(Variant variant, std::size_t jobs, std::size_t threads,
                      std::chrono::milliseconds hold) {
  const auto sample = std::max<std::size_t>(jobs / 50, 1);
  const auto calibration = InFlight::decode(
      inChild([&] { return variant(sample, threads, std::chrono::milliseconds(10)).encode(); }));
  const auto needed = std::chrono::milliseconds(
      static_cast<long>(1500.0 * static_cast<double>(jobs) / calibration.spawnRate));
  hold = std::max(hold, needed + std::chrono::milliseconds(200));
  for (int attempt = 0;; ++attempt) {
    const auto result =
        InFlight::decode(inChild([&] { return variant(jobs, threads, hold).encode(); }));
    if (result.spawnedBeforeDeadline || attempt == 2) {
      if (!result.spawnedBeforeDeadline)
        throw std::runtime_error("figure 2: spawning kept outlasting the deadline");
      return result;
    }
    hold = std::chrono::milliseconds(static_cast<long>(2000 * result.spawnSeconds)) + hold;
    std::fprintf(stderr, "  spawning took %.2f s, past the deadline: again with a %lld ms hold\n",
                 result.spawnSeconds, static_cast<long long>(hold.count()));
  }
}

}  // namespace

void figureMemory(const Config& config, std::vector<Row>& rows) {
  const auto n = config.inflightJobs;
  const auto base = inFreshChild(bare, n, config.threads, config.hold);
  const auto ours = inFreshChild(tracked, n, config.threads, config.hold);

  const std::string fig = "2 in-flight";
  Row memory{fig,
             "resident bytes per in-flight coroutine job",
             ours.bytesPerJob,
             base.bytesPerJob,
             "bytes/job",
             "bare co_spawn",
             "ratio <= 1.3",
             {},
             std::to_string(n) + " jobs per variant, each variant in a fresh child; timers held " +
                 fixed(ours.holdSeconds, 1) + " s (ours), " + fixed(base.holdSeconds, 1) +
                 " s (bare)"};
  memory.met = memory.ratio() <= 1.3;
  rows.push_back(memory);
  rows.push_back(Row{fig,
                     "spawn rate (spawn until body runs)",
                     ours.spawnRate,
                     base.spawnRate,
                     "jobs/s",
                     "bare co_spawn",
                     "",
                     {},
                     ""});
  rows.push_back(Row{fig,
                     "deadline until last job COMPLETED",
                     ours.drainSeconds * 1e3,
                     base.drainSeconds * 1e3,
                     "ms",
                     "bare co_spawn",
                     "",
                     {},
                     ""});
}

}  // namespace jobtrack::bench
