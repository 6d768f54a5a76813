/// @file
/// Figure 1: empty jobs per second through JobTracker + executeAsync, next to
/// raw asio::post (the floor), asio::post with use_future, and std::async.

#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_future.hpp>

#include <deque>
#include <future>

#include <jobtrack/jobtrack.hpp>

#include "harness.hpp"

namespace jobtrack::bench {
namespace {

/// Floor: an empty lambda posted to an asio::thread_pool; completion is a counter.
double rawPost(std::size_t jobs, std::size_t threads) {
  asio::thread_pool pool(threads);
  std::atomic<std::size_t> done{0};
  const auto start = Clock::now();
  for (std::size_t i = 0; i < jobs; ++i) {
    asio::post(pool, [&done] { done.fetch_add(1, std::memory_order_relaxed); });
  }
  const auto end = waitUntil([&] { return done.load(std::memory_order_relaxed) == jobs; });
  pool.join();
  return static_cast<double>(jobs) / seconds(end - start);
}

/// A std::future per task, no registry.
double postUseFuture(std::size_t jobs, std::size_t threads) {
  asio::thread_pool pool(threads);
  std::vector<std::future<void>> futures;
  futures.reserve(jobs);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < jobs; ++i) {
    futures.push_back(asio::post(pool, asio::use_future([] {})));
  }
  for (auto& future : futures) future.get();
  const auto end = Clock::now();
  pool.join();
  return static_cast<double>(jobs) / seconds(end - start);
}

/// std::async: a thread per task. At most 256 in flight, so finished but
/// unjoined threads do not pile up.
double stdAsync(std::size_t jobs) {
  std::deque<std::future<void>> window;
  const auto start = Clock::now();
  for (std::size_t i = 0; i < jobs; ++i) {
    if (window.size() == 256) {
      window.front().get();
      window.pop_front();
    }
    window.push_back(std::async(std::launch::async, [] {}));
  }
  for (auto& future : window) future.get();
  const auto end = Clock::now();
  return static_cast<double>(jobs) / seconds(end - start);
}

/// Ours: JobTracker::submit of executeAsync(empty callable); done when every
/// job has reached COMPLETED in the registry (not merely run).
double tracked(std::size_t jobs, std::size_t threads, std::size_t keep) {
  AsyncExecutor executor(ExecutorOptions{.coreThreads = threads, .blockingThreads = threads});
  JobTracker<> tracker(executor, TrackerOptions{.maxFinishedJobs = keep});
  const auto finished = [&] {
    const auto s = tracker.stats();
    return s.completed + s.evicted == jobs;
  };
  const auto start = Clock::now();
  for (std::size_t i = 0; i < jobs; ++i) {
    tracker.submit("bench", [&executor] { return executor.executeAsync([] {}); });
  }
  const auto end = waitUntil(finished);
  return static_cast<double>(jobs) / seconds(end - start);
}

}  // namespace

void figureThroughput(const Config& config, std::vector<Row>& rows) {
  const auto n = config.throughputJobs;
  const auto t = config.threads;
  // Interleaved and repeated would be fairer still; one pass each keeps the
  // run short. The floor is measured first and last and the mean is used,
  // so a drift in machine load shows as a spread in the note.
  const double raw1 = rawPost(n, t);
  const double ours = tracked(n, t, config.trackerKeep);
  const double useFuture = postUseFuture(n, t);
  const double async = stdAsync(config.asyncJobs);
  const double raw2 = rawPost(n, t);
  const double raw = (raw1 + raw2) / 2;

  const std::string fig = "1 throughput";
  const std::string spread = "raw post runs: " + std::to_string(static_cast<long>(raw1)) + " and " +
                             std::to_string(static_cast<long>(raw2)) + " jobs/s";
  Row vsRaw{fig, "tracked jobs/s vs raw asio::post", ours, raw, "jobs/s", "asio::post (floor)", "ratio >= 0.5", {}, spread};
  vsRaw.met = vsRaw.ratio() >= 0.5;
  rows.push_back(vsRaw);
  Row vsFuture{fig, "tracked jobs/s vs post(use_future)", ours, useFuture, "jobs/s", "asio::post(use_future)",
               "ratio >= 1", {}, ""};
  vsFuture.met = vsFuture.ratio() >= 1.0;
  rows.push_back(vsFuture);
  rows.push_back(Row{fig, "tracked jobs/s vs std::async", ours, async, "jobs/s", "std::async", "", {},
                     "std::async: " + std::to_string(config.asyncJobs) + " tasks (a thread each)"});
}

}  // namespace jobtrack::bench
