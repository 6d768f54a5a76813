#pragma once

/// @file
/// HelloService: the seed design's demo service in C++, shared by the
/// terminal demo (examples/hello) and the HTTP example (examples/http_server).
/// Each start* method returns a JobId at once; the work runs on the
/// AsyncExecutor and is tracked by the JobTracker.

#include <jobtrack/jobtrack.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jobtrack::examples {

/// "john" -> "John": upper-cases a leading ASCII letter, leaves the rest.
inline std::string capitalize(std::string_view name) {
  std::string result(name);
  if (!result.empty() && result.front() >= 'a' && result.front() <= 'z') {
    result.front() = static_cast<char>(result.front() - 'a' + 'A');
  }
  return result;
}

/// The seed's HelloService, plus one job for each remaining combinator.
/// Every simulated duration is multiplied by `timeScale` (the demo's --fast,
/// the HTTP service's --time-scale). Thread-safe; the executor and tracker
/// must outlive the jobs.
class HelloService {
 public:
  using Snapshot = JobSnapshot<nlohmann::json>;

  /// Throws std::invalid_argument unless `timeScale` is a positive finite number.
  HelloService(AsyncExecutor& executor, JobTracker<>& tracker, double timeScale = 1.0)
      : executor_(executor), tracker_(tracker), timeScale_(timeScale) {
    if (!(timeScale > 0.0) || !std::isfinite(timeScale)) {
      throw std::invalid_argument("time scale must be a positive number");
    }
  }

  /// Two seconds of work, then "Hello, John!" for "john".
  JobId startHelloJob(const std::string& name) {
    return tracker_.submit("hello:" + name, [this, name](JobContext context) {
      return executor_.executeAsync([this, name, context](std::stop_token stop) {
        work(std::chrono::seconds(2), stop,
             [&](int percent) { context.reportProgress(percent, "working"); });
        return "Hello, " + capitalize(name) + "!";
      });
    });
  }

  /// Two one-second steps chained with executeAndThen: "hello John", then
  /// "hello John (composed)".
  JobId startComposeHelloJob(const std::string& name) {
    return tracker_.submit("compose:" + name, [this, name](JobContext context) {
      return executor_.executeAndThen(
          [this, name, context](std::stop_token stop) {
            work(std::chrono::seconds(1), stop,
                 [&](int percent) { context.reportProgress(percent / 2, "step 1 of 2"); });
            return "hello " + capitalize(name);
          },
          [this, context](std::string greeting) {
            return executor_.executeAsync([this, context,
                                           greeting = std::move(greeting)](std::stop_token stop) {
              work(std::chrono::seconds(1), stop,
                   [&](int percent) { context.reportProgress(50 + percent / 2, "step 2 of 2"); });
              return greeting + " (composed)";
            });
          });
    });
  }

  /// Greeters of 3 s, 1 s and 2 s race with executeAny: "Fast hello" wins
  /// after about a second and the other two are cancelled. Progress follows
  /// the runner closest to the finish line.
  JobId startRaceJob() {
    return tracker_.submit("race", [this](JobContext context) {
      auto best = std::make_shared<std::atomic<int>>(0);
      auto runner = [this, context, best](std::string greeting,
                                          std::chrono::milliseconds duration) {
        return
            [this, context, best, greeting = std::move(greeting), duration](std::stop_token stop) {
              work(duration, stop, [&](int percent) {
                if (raiseTo(*best, percent)) context.reportProgress(percent, "racing");
              });
              return greeting;
            };
      };
      return executor_.executeAny(runner("Slow hello", std::chrono::seconds(3)),
                                  runner("Fast hello", std::chrono::seconds(1)),
                                  runner("Medium hello", std::chrono::seconds(2)));
    });
  }

  /// Three greetings at once with executeAll:
  /// ["Hello, Ada!", "Hello, Alan!", "Hello, Grace!"].
  JobId startAllJob() {
    return tracker_.submit("all", [this](JobContext context) {
      const std::vector<std::string> names = {"ada", "alan", "grace"};
      auto greeted = std::make_shared<std::atomic<int>>(0);
      std::vector<std::function<std::string(std::stop_token)>> greetings;
      for (std::size_t i = 0; i < names.size(); ++i) {
        greetings.emplace_back([this, context, greeted, name = names[i], i](std::stop_token stop) {
          work(std::chrono::milliseconds(500 * static_cast<int>(i + 1)), stop, [](int) {});
          context.reportProgress(++*greeted * 100 / 3, "greeted " + capitalize(name));
          return "Hello, " + capitalize(name) + "!";
        });
      }
      return executor_.executeAll(greetings);
    });
  }

  /// Three seconds of work under a one-second withTimeout: ends FAILED with
  /// errorKind "timeout", and the work is cancelled.
  JobId startTimeoutJob() {
    return tracker_.submit("timeout", [this](JobContext context) {
      auto slow = executor_.executeAsync([this, context](std::stop_token stop) {
        work(std::chrono::seconds(3), stop,
             [&](int percent) { context.reportProgress(percent, "working"); });
        return std::string("too late");
      });
      return executor_.withTimeout(std::move(slow), scaled(std::chrono::seconds(1)));
    });
  }

  /// Work that fails after half a second, rescued by withFallback: "Fallback hello".
  JobId startFallbackJob() {
    return tracker_.submit("fallback", [this](JobContext context) {
      auto failing = executor_.executeAsync([this, context](std::stop_token stop) -> std::string {
        work(std::chrono::milliseconds(500), stop,
             [&](int percent) { context.reportProgress(percent, "working"); });
        throw std::runtime_error("greeter is unavailable");
      });
      return executor_.withFallback(std::move(failing), std::string("Fallback hello"));
    });
  }

  /// The job's snapshot, or nullopt for an unknown id.
  [[nodiscard]] std::optional<Snapshot> getJob(const JobId& id) const { return tracker_.get(id); }

  /// The newest jobs first.
  [[nodiscard]] std::vector<Snapshot> listJobs(std::size_t limit) const {
    return tracker_.list(limit);
  }

 private:
  std::chrono::nanoseconds scaled(std::chrono::nanoseconds duration) const {
    return std::chrono::nanoseconds(static_cast<std::chrono::nanoseconds::rep>(
        static_cast<double>(duration.count()) * timeScale_));
  }

  /// Simulated work: `duration` (scaled) in 20 slices, calling
  /// `onProgress(percent)` after each. A stop request ends it at once with
  /// CancelledError: a cancelled job stops within one slice, not a whole sleep.
  template <class OnProgress>
  void work(std::chrono::nanoseconds duration, const std::stop_token& stop,
            OnProgress&& onProgress) const {
    constexpr int slices = 20;
    const auto total = scaled(duration);
    std::mutex mutex;
    std::condition_variable_any wakeUp;  // never notified: only the stop token ends a wait early
    std::unique_lock lock(mutex);
    const auto start = std::chrono::steady_clock::now();
    for (int slice = 1; slice <= slices; ++slice) {
      wakeUp.wait_until(lock, stop, start + total * slice / slices, [] { return false; });
      if (stop.stop_requested()) throw CancelledError();
      onProgress(100 * slice / slices);
    }
  }

  /// Raises `best` to `value`; true if it rose.
  static bool raiseTo(std::atomic<int>& best, int value) {
    int previous = best.load();
    while (value > previous) {
      if (best.compare_exchange_weak(previous, value)) return true;
    }
    return false;
  }

  AsyncExecutor& executor_;
  JobTracker<>& tracker_;
  double timeScale_;
};

}  // namespace jobtrack::examples
