// redis_submit_latency [REDIS_URL] [JOBS]: JobTracker::submit latency with a
// RedisJobStore against the in-memory tracker, as a ratio. save() only
// queues (the writer thread does the network I/O), so submit should cost
// about the same with and without Redis. Prints numbers; asserts nothing.
//
//   scripts/with-redis build-redis/tests/redis/redis_submit_latency

#include <jobtrack/jobtrack.hpp>
#include <jobtrack/redis_store.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Summary {
  double median = 0;
  double p99 = 0;
  double mean = 0;
};

Summary summarize(std::vector<double> ns) {
  std::sort(ns.begin(), ns.end());
  Summary s;
  s.median = ns[ns.size() / 2];
  s.p99 = ns[ns.size() * 99 / 100];
  double total = 0;
  for (double v : ns) total += v;
  s.mean = total / static_cast<double>(ns.size());
  return s;
}

/// Submits `jobs` trivial jobs, returns each submit's duration in ns.
std::vector<double> run(jobtrack::AsyncExecutor& executor, jobtrack::JobTracker<>& tracker,
                        std::size_t jobs) {
  std::vector<double> ns;
  ns.reserve(jobs);
  std::vector<jobtrack::JobId> ids;
  ids.reserve(jobs);
  for (std::size_t i = 0; i < jobs; ++i) {
    const auto start = Clock::now();
    ids.push_back(
        tracker.submit("bench", [&executor] { return executor.executeAsync([] { return 1; }); }));
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count());
  }
  for (const auto& id : ids) tracker.wait(id, std::chrono::seconds(60));
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("REDIS_URL");
  const std::string url = argc > 1 ? argv[1] : env != nullptr ? env : "redis://127.0.0.1:6379";
  const std::size_t jobs = argc > 2 ? std::stoul(argv[2]) : 20'000;
  jobtrack::AsyncExecutor executor;
  jobtrack::RedisStoreOptions options;
  options.url = url;
  options.keyPrefix = "jt-bench-" + jobtrack::detail::randomHex(8);
  options.finishedTtl = std::chrono::minutes(1);
  auto store = std::make_shared<jobtrack::RedisJobStore<>>(options);
  jobtrack::JobTracker<> memory(executor);
  jobtrack::JobTracker<> redis(executor, {}, store);
  if (!store->waitSubscribed(std::chrono::seconds(10))) {
    std::fprintf(stderr, "redis_submit_latency: cannot reach %s\n", url.c_str());
    return 1;
  }

  run(executor, memory, jobs / 10);  // warm up both
  run(executor, redis, jobs / 10);
  std::vector<double> inMemory;
  std::vector<double> withRedis;
  for (int round = 0; round < 3; ++round) {  // alternate, so drift hits both
    auto m = run(executor, memory, jobs);
    inMemory.insert(inMemory.end(), m.begin(), m.end());
    auto r = run(executor, redis, jobs);
    withRedis.insert(withRedis.end(), r.begin(), r.end());
  }
  const auto flushStart = Clock::now();
  const bool flushed = store->flush(std::chrono::seconds(60));
  const double flushMs =
      std::chrono::duration<double, std::milli>(Clock::now() - flushStart).count();

  const Summary m = summarize(inMemory);
  const Summary r = summarize(withRedis);
  std::printf("submit latency over %zu jobs each (ns):\n", inMemory.size());
  std::printf("  in-memory     median %8.0f  p99 %8.0f  mean %8.0f\n", m.median, m.p99, m.mean);
  std::printf("  RedisJobStore median %8.0f  p99 %8.0f  mean %8.0f\n", r.median, r.p99, r.mean);
  std::printf("  ratio (Redis / in-memory): median %.2f  p99 %.2f  mean %.2f\n",
              r.median / m.median, r.p99 / m.p99, r.mean / m.mean);
  const auto stats = store->stats();
  std::printf("  store: %llu snapshots written, %llu dropped; final flush %s in %.1f ms\n",
              static_cast<unsigned long long>(stats.written),
              static_cast<unsigned long long>(stats.dropped), flushed ? "done" : "TIMED OUT",
              flushMs);
  return 0;
}
