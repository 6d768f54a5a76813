#pragma once

/// @file
/// The small harness behind jobtrack_bench: sizes from the command line,
/// result rows (ours, baseline, ratio, goal), clocks, percentiles, resident
/// memory and running a measurement in a forked child.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace jobtrack::bench {

using Clock = std::chrono::steady_clock;

/// Sizes and knobs; every size is a flag so the smoke run stays tiny.
struct Config {
  std::size_t threads = 2;  ///< pool size on both sides of figure 1
  std::size_t throughputJobs = 1'000'000;
  std::size_t asyncJobs = 20'000;    ///< std::async makes a thread per task
  std::size_t trackerKeep = 10'000;  ///< maxFinishedJobs in figure 1
  std::size_t inflightJobs = 1'000'000;
  std::chrono::milliseconds hold{1000};  ///< timer wait of an in-flight job
  std::size_t registryJobs = 1'000'000;
  std::size_t registrySmall = 10'000;
  std::size_t lookups = 200'000;
  std::size_t listCalls = 2'000;
  std::size_t timeoutJobs = 10'000;
  std::size_t blockingThreads = 32;  ///< figure 4: the pool that is saturated
  std::size_t races = 200;
  std::chrono::microseconds checkEvery{100};  ///< figure 5: busy work between checks
  std::vector<int> figures{1, 2, 3, 4, 5};
  std::string tsvPath;  ///< also write the rows here, tab-separated
};

/// One line of the results table.
struct Row {
  std::string figure;  ///< e.g. "1 throughput"
  std::string metric;  ///< what is measured
  double ours = 0;
  double baseline = 0;
  std::string unit;  ///< unit of ours and baseline
  std::string baselineName;
  std::string goal;  ///< in words, e.g. "ratio >= 0.5"; empty: informational
  std::optional<bool> met;
  std::string note;

  [[nodiscard]] double ratio() const { return baseline != 0 ? ours / baseline : 0; }
};

/// Seconds between two time points, as a double.
template <class Rep, class Period>
double seconds(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration<double>(d).count();
}
template <class Rep, class Period>
double micros(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

/// `value` with `digits` decimals, for notes.
inline std::string fixed(double value, int digits = 2) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

/// The q-quantile (0..1) of `samples` (sorted in place), nearest rank.
inline double quantile(std::vector<double>& samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(rank, samples.size() - 1)];
}

/// Resident bytes of this process, from /proc/self/statm.
inline std::size_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t sizePages = 0;
  std::size_t residentPages = 0;
  statm >> sizePages >> residentPages;
  return residentPages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

/// CPU time consumed by the calling thread.
inline std::chrono::nanoseconds threadCpuTime() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

/// CPU time consumed by every thread of this process.
inline std::chrono::nanoseconds processCpuTime() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

/// Polls `done` every 200 µs until it holds; returns when it first held.
template <class Predicate>
Clock::time_point waitUntil(Predicate done) {
  while (!done()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  return Clock::now();
}

/// Runs `measure` in a forked child (so its memory and threads never touch
/// the parent or the other variants) and returns the doubles it produced.
/// Fork before any thread exists in the parent: the figures that fork create
/// their pools inside the child only.
inline std::vector<double> inChild(const std::function<std::vector<double>()>& measure) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    int status = 0;
    try {
      const auto values = measure();
      const auto bytes = static_cast<ssize_t>(values.size() * sizeof(double));
      if (write(fds[1], values.data(), static_cast<std::size_t>(bytes)) != bytes) status = 3;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      status = 2;
    }
    close(fds[1]);
    std::fflush(nullptr);
    _exit(status);  // no destructors or atexit handlers of the parent's objects
  }
  close(fds[1]);
  std::vector<double> values;
  double value = 0;
  while (read(fds[0], &value, sizeof value) == static_cast<ssize_t>(sizeof value))
    values.push_back(value);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("a measuring child failed");
  return values;
}

// The figures; each appends its rows.
void figureThroughput(const Config& config, std::vector<Row>& rows);
void figureMemory(const Config& config, std::vector<Row>& rows);
void figureRegistry(const Config& config, std::vector<Row>& rows);
void figureTimers(const Config& config, std::vector<Row>& rows);
void figureRace(const Config& config, std::vector<Row>& rows);

}  // namespace jobtrack::bench
