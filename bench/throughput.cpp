/// @file
/// Figure 1: empty jobs per second through JobTracker + executeAsync, next to
/// raw asio::post (the floor), asio::post with use_future, and std::async.

#include "harness.hpp"
#include <jobtrack/jobtrack.hpp>

#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_future.hpp>

#include <deque>
#include <future>

namespace jobtrack::bench {
namespace {

/// Wall-clock rate and process CPU per job of one variant. On a busy
/// machine the rate mostly says how much CPU the process was given; the CPU
/// per job says what each job cost.
struct Measured {
  double jobsPerSecond = 0;
  double cpuMicrosPerJob = 0;
};

/// Times `run` (which submits `jobs` and returns when all are complete).
template <class Run>
Measured timed(std::size_t jobs, Run run) {
  const auto cpu0 = processCpuTime();
  const auto start = Clock::now();
  const auto end = run();
  const auto cpu = processCpuTime() - cpu0;
  return {static_cast<double>(jobs) / seconds(end - start),
          micros(cpu) / static_cast<double>(jobs)};
}

/// Floor: an empty lambda posted to an asio::thread_pool; completion is a counter.
Measured rawPost(std::size_t jobs, std::size_t threads) {
  asio::thread_pool pool(threads);
  std::atomic<std::size_t> done{0};
  const auto result = timed(jobs, [&] {
    for (std::size_t i = 0; i < jobs; ++i) {
      asio::post(pool, [&done] { done.fetch_add(1, std::memory_order_relaxed); });
    }
    return waitUntil([&] { return done.load(std::memory_order_relaxed) == jobs; });
  });
  pool.join();
  return result;
}

/// A std::future per task, no registry.
Measured postUseFuture(std::size_t jobs, std::size_t threads) {
  asio::thread_pool pool(threads);
  std::vector<std::future<void>> futures;
  futures.reserve(jobs);
  const auto result = timed(jobs, [&] {
    for (std::size_t i = 0; i < jobs; ++i) {
      futures.push_back(asio::post(pool, asio::use_future([] {})));
    }
    for (auto& future : futures) future.get();
    return Clock::now();
  });
  pool.join();
  return result;
}

/// std::async: a thread per task. At most 256 in flight, so finished but
/// unjoined threads do not pile up.
Measured stdAsync(std::size_t jobs) {
  std::deque<std::future<void>> window;
  return timed(jobs, [&] {
    for (std::size_t i = 0; i < jobs; ++i) {
      if (window.size() == 256) {
        window.front().get();
        window.pop_front();
      }
      window.push_back(std::async(std::launch::async, [] {}));
    }
    for (auto& future : window) future.get();
    return Clock::now();
  });
}

/// Ours: JobTracker::submit of executeAsync(empty callable); done when every
/// job has reached COMPLETED in the registry (not merely run).
Measured tracked(std::size_t jobs, std::size_t threads, std::size_t keep) {
  AsyncExecutor executor(ExecutorOptions{.coreThreads = threads, .blockingThreads = threads});
  JobTracker<> tracker(executor, TrackerOptions{.maxFinishedJobs = keep});
  const auto finished = [&] {
    const auto s = tracker.stats();
    return s.completed + s.evicted == jobs;
  };
  return timed(jobs, [&] {
    for (std::size_t i = 0; i < jobs; ++i) {
      tracker.submit("bench", [&executor] { return executor.executeAsync([] {}); });
    }
    return waitUntil(finished);
  });
}

}  // namespace

void figureThroughput(const Config& config, std::vector<Row>& rows) {
  const auto n = config.throughputJobs;
  const auto t = config.threads;
  // The machine's speed drifts within seconds: each variant runs once per
  // round, the rounds interleaved, and each is reported by its median round.
  constexpr int rounds = 3;
  std::vector<Measured> raws;
  std::vector<Measured> trackeds;
  std::vector<Measured> futures;
  for (int round = 0; round < rounds; ++round) {
    raws.push_back(rawPost(n, t));
    trackeds.push_back(tracked(n, t, config.trackerKeep));
    futures.push_back(postUseFuture(n, t));
  }
  const auto median = [](std::vector<Measured> runs) {
    std::vector<double> rates;
    std::vector<double> cpus;
    for (const auto& run : runs) {
      rates.push_back(run.jobsPerSecond);
      cpus.push_back(run.cpuMicrosPerJob);
    }
    return Measured{quantile(rates, 0.5), quantile(cpus, 0.5)};
  };
  const auto raw = median(raws);
  const auto ours = median(trackeds);
  const auto useFuture = median(futures);
  const auto async = stdAsync(config.asyncJobs);
  const auto rates = [](const std::vector<Measured>& runs) {
    std::string text;
    for (const auto& run : runs) {
      text += (text.empty() ? "" : ", ") + std::to_string(static_cast<long>(run.jobsPerSecond));
    }
    return text;
  };

  const std::string fig = "1 throughput";
  const std::string context = std::to_string(n) + " jobs; pools of " + std::to_string(t) +
                              " threads; maxFinishedJobs " + std::to_string(config.trackerKeep) +
                              "; median of " + std::to_string(rounds) +
                              " interleaved rounds (jobs/s) - ours: " + rates(trackeds) +
                              "; raw post: " + rates(raws) + "; use_future: " + rates(futures);
  Row vsRaw{fig,
            "tracked jobs/s vs raw asio::post",
            ours.jobsPerSecond,
            raw.jobsPerSecond,
            "jobs/s",
            "asio::post (floor)",
            "ratio >= 0.5",
            {},
            context};
  vsRaw.met = vsRaw.ratio() >= 0.5;
  rows.push_back(vsRaw);
  Row vsFuture{fig,
               "tracked jobs/s vs post(use_future)",
               ours.jobsPerSecond,
               useFuture.jobsPerSecond,
               "jobs/s",
               "asio::post(use_future)",
               "ratio >= 1",
               {},
               ""};
  vsFuture.met = vsFuture.ratio() >= 1.0;
  rows.push_back(vsFuture);
  rows.push_back(Row{fig,
                     "tracked jobs/s vs std::async",
                     ours.jobsPerSecond,
                     async.jobsPerSecond,
                     "jobs/s",
                     "std::async",
                     "",
                     {},
                     "std::async: " + std::to_string(config.asyncJobs) + " tasks (a thread each)"});
  rows.push_back(
      Row{fig,
          "process CPU per job vs raw asio::post",
          ours.cpuMicrosPerJob,
          raw.cpuMicrosPerJob,
          "us/job",
          "asio::post (floor)",
          "",
          {},
          "all threads; post(use_future): " + fixed(useFuture.cpuMicrosPerJob) + " us/job"});
}

}  // namespace jobtrack::bench
