/// @file
/// Figure 3: registry look-ups. get(id) latency with a large registry of
/// finished jobs while two threads keep submitting, and list(50) latency
/// with a small and a large registry.

#include "harness.hpp"
#include <jobtrack/jobtrack.hpp>

#include <random>
#include <thread>

namespace jobtrack::bench {
namespace {

/// Submits `count` empty jobs and waits until all are COMPLETED; returns their ids.
std::vector<JobId> fill(JobTracker<>& tracker, AsyncExecutor& executor, std::size_t count) {
  std::vector<JobId> ids;
  ids.reserve(count);
  const auto before = tracker.stats().completed;
  for (std::size_t i = 0; i < count; ++i) {
    ids.push_back(tracker.submit("bench", [&executor] { return executor.executeAsync([] {}); }));
  }
  waitUntil([&] { return tracker.stats().completed >= before + count; });
  return ids;
}

/// Median and p99 of list(50), in microseconds.
std::pair<double, double> listLatency(const JobTracker<>& tracker, std::size_t calls) {
  std::vector<double> samples;
  samples.reserve(calls);
  for (std::size_t i = 0; i < calls; ++i) {
    const auto start = Clock::now();
    const auto page = tracker.list(50);
    samples.push_back(micros(Clock::now() - start));
    if (page.size() != 50)
      throw std::runtime_error("figure 3: list(50) returned " + std::to_string(page.size()));
  }
  return {quantile(samples, 0.5), quantile(samples, 0.99)};
}

/// get(id) latency of the floor: the same kind of look-up in a bare
/// std::unordered_map<JobId, shared_ptr<...>> of the same size, no lock.
std::vector<double> bareLookups(const std::vector<JobId>& ids, std::size_t lookups) {
  std::unordered_map<JobId, std::shared_ptr<int>> map;
  map.reserve(ids.size());
  for (const auto& id : ids) map.emplace(id, std::make_shared<int>(1));
  std::mt19937_64 random(7);
  std::uniform_int_distribution<std::size_t> pick(ids.size() / 2, ids.size() - 1);
  std::vector<double> samples;
  samples.reserve(lookups);
  long found = 0;
  for (std::size_t i = 0; i < lookups; ++i) {
    const auto& id = ids[pick(random)];
    const auto start = Clock::now();
    const auto it = map.find(id);
    if (it != map.end()) found += *it->second;
    samples.push_back(micros(Clock::now() - start));
  }
  if (found == 0) throw std::runtime_error("figure 3: bare look-ups found nothing");
  return samples;
}

}  // namespace

void figureRegistry(const Config& config, std::vector<Row>& rows) {
  const std::string fig = "3 registry";
  AsyncExecutor executor(ExecutorOptions{.coreThreads = 2, .blockingThreads = 2});

  // list(50) with the small registry first.
  std::pair<double, double> listSmall;
  {
    JobTracker<> small(executor, TrackerOptions{.maxFinishedJobs = config.registrySmall});
    fill(small, executor, config.registrySmall);
    listSmall = listLatency(small, config.listCalls);
  }

  // The large registry: every job kept (the TTL default of 1 h keeps them too).
  JobTracker<> tracker(executor, TrackerOptions{.maxFinishedJobs = config.registryJobs});
  const auto ids = fill(tracker, executor, config.registryJobs);
  const auto listLarge = listLatency(tracker, config.listCalls);

  // get(id) on the quiet registry first: the difference to the loaded run
  // below is contention (and preemption), not the look-up itself.
  std::vector<double> quiet;
  {
    std::mt19937_64 random(11);
    std::uniform_int_distribution<std::size_t> pick(0, ids.size() - 1);
    quiet.reserve(config.lookups);
    for (std::size_t i = 0; i < config.lookups; ++i) {
      const auto& id = ids[pick(random)];
      const auto start = Clock::now();
      const auto snapshot = tracker.get(id);
      quiet.push_back(micros(Clock::now() - start));
      if (!snapshot) throw std::runtime_error("figure 3: a kept job was not found");
    }
  }

  // get(id) while two threads keep submitting (the registry stays full: each
  // new finished job evicts the oldest, so look-ups pick from the newer half).
  std::atomic<bool> stop{false};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 2; ++t) {
    submitters.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        tracker.submit("load", [&executor] { return executor.executeAsync([] {}); });
      }
    });
  }
  std::mt19937_64 random(7);
  std::uniform_int_distribution<std::size_t> pick(ids.size() / 2, ids.size() - 1);
  std::vector<double> samples;
  samples.reserve(config.lookups);
  std::size_t hits = 0;
  const auto statsBefore = tracker.stats();
  for (std::size_t i = 0; i < config.lookups; ++i) {
    const auto& id = ids[pick(random)];
    const auto start = Clock::now();
    const auto snapshot = tracker.get(id);
    samples.push_back(micros(Clock::now() - start));
    if (snapshot) ++hits;
  }
  stop = true;
  for (auto& thread : submitters) thread.join();
  const auto submittedMeanwhile = tracker.stats().submitted - statsBefore.submitted;
  auto bare = bareLookups(ids, config.lookups);

  const double p50 = quantile(samples, 0.5);
  const double p99 = quantile(samples, 0.99);
  const std::string context = std::to_string(ids.size()) + " kept; " +
                              std::to_string(submittedMeanwhile) +
                              " submitted meanwhile by 2 threads; " + std::to_string(hits) + "/" +
                              std::to_string(samples.size()) + " found";
  rows.push_back(Row{fig,
                     "get(id) median, under submit load",
                     p50,
                     quantile(bare, 0.5),
                     "us",
                     "unordered_map::find",
                     "",
                     {},
                     context});
  Row getP99{fig,
             "get(id) p99, under submit load",
             p99,
             quantile(bare, 0.99),
             "us",
             "unordered_map::find",
             "ours < 10 us",
             {},
             ""};
  getP99.met = p99 < 10.0;
  rows.push_back(getP99);
  rows.push_back(Row{fig,
                     "get(id) p99, quiet registry",
                     quantile(quiet, 0.99),
                     quantile(bare, 0.99),
                     "us",
                     "unordered_map::find",
                     "",
                     {},
                     "no submitters; median " + fixed(quantile(quiet, 0.5), 3) + " us"});
  Row list{fig,
           "list(50) median: large vs small registry",
           listLarge.first,
           listSmall.first,
           "us",
           "list(50) with " + std::to_string(config.registrySmall) + " kept",
           "ratio <= 2",
           {},
           std::to_string(config.registryJobs) + " kept vs " +
               std::to_string(config.registrySmall) + "; p99 " + fixed(listLarge.second) + " vs " +
               fixed(listSmall.second) + " us"};
  list.met = list.ratio() <= 2.0;
  rows.push_back(list);
}

}  // namespace jobtrack::bench
