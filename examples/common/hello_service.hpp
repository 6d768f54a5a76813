#pragma once

/// @file
/// HelloService: the seed design's demo service in C++, shared by the
/// terminal demo and the HTTP example. Each start* method returns a JobId at
/// once; the work runs on the AsyncExecutor and is tracked by the JobTracker.

#include <jobtrack/jobtrack.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace jobtrack::examples {

/// "john" -> "John".
inline std::string capitalize(std::string text) {
  if (!text.empty()) text.front() = static_cast<char>(std::toupper(static_cast<unsigned char>(text.front())));
  return text;
}

/// The seed's HelloService. Durations are multiplied by `timeScale` (the demo's
/// --fast flag and the tests use a small scale). Thread-safe.
class HelloService {
 public:
  using Snapshot = JobSnapshot<nlohmann::json>;

  HelloService(AsyncExecutor& executor, JobTracker<>& tracker, double timeScale = 1.0)
      : executor_(executor), tracker_(tracker), timeScale_(timeScale) {}

  /// Two seconds of work, then "Hello, John!" for "john".
  JobId startHelloJob(const std::string& name) {
    return tracker_.submit("hello:" + name, [this, name](JobContext context) {
      return executor_.executeAsync([this, name, context](std::stop_token stop) {
        work(std::chrono::seconds(2), stop, context, 0, 100);
        return "Hello, " + capitalize(name) + "!";
      });
    });
  }

  /// Two one-second steps chained with executeAndThen: "hello John (composed)".
  JobId startComposeHelloJob(const std::string& name) {
    return tracker_.submit("compose:" + name, [this, name](JobContext context) {
      return executor_.executeAndThen(
          [this, name, context](std::stop_token stop) {
            work(std::chrono::seconds(1), stop, context, 0, 50);
            return "hello " + capitalize(name);
          },
          [this, context](std::string base) {
            return executor_.executeAsync([this, context, base](std::stop_token stop) {
              work(std::chrono::seconds(1), stop, context, 50, 100);
              return base + " (composed)";
            });
          });
    });
  }

  /// Three greeters of 3 s, 1 s and 2 s race with executeAny: "Fast hello"
  /// wins after about a second and the other two are cancelled.
  JobId startRaceJob() {
    return tracker_.submit("race", [this](JobContext context) {
      context.reportProgress(0, "racing three greeters");
      return executor_.executeAny(greeter(std::chrono::seconds(3), "Slow hello", context),
                                  greeter(std::chrono::seconds(1), "Fast hello", context),
                                  greeter(std::chrono::seconds(2), "Medium hello", context));
    });
  }

  /// Three greetings at once with executeAll: ["Hello, Ada!", "Hello, Alan!", "Hello, Grace!"].
  JobId startAllJob() {
    return tracker_.submit("all", [this](JobContext context) {
      const std::vector<std::string> names = {"ada", "alan", "grace"};
      auto greeted = std::make_shared<std::atomic<int>>(0);
      std::vector<std::function<std::string(std::stop_token)>> greetings;
      for (std::size_t i = 0; i < names.size(); ++i) {
        greetings.emplace_back([this, context, greeted, name = names[i], i](std::stop_token stop) {
          work(std::chrono::milliseconds(500 * static_cast<int>(i + 1)), stop, context, 0, 0);
          context.reportProgress(++*greeted * 100 / 3, "greeted " + capitalize(name));
          return "Hello, " + capitalize(name) + "!";
        });
      }
      context.reportProgress(0, "greeting three people");
      return executor_.executeAll(greetings);
    });
  }

  /// Three seconds of work under a one-second withTimeout: ends FAILED, errorKind "timeout".
  JobId startTimeoutJob() {
    return tracker_.submit("timeout", [this](JobContext context) {
      auto slow = executor_.executeAsync([this, context](std::stop_token stop) {
        work(std::chrono::seconds(3), stop, context, 0, 100);
        return std::string("too late");
      });
      return executor_.withTimeout(std::move(slow), scaled(std::chrono::seconds(1)));
    });
  }

  /// Work that fails after half a second, rescued by withFallback: "Fallback hello".
  JobId startFallbackJob() {
    return tracker_.submit("fallback", [this](JobContext context) {
      auto failing = executor_.executeAsync([this, context](std::stop_token stop) -> std::string {
        work(std::chrono::milliseconds(500), stop, context, 0, 50);
        throw std::runtime_error("greeter is unavailable");
      });
      return executor_.withFallback(std::move(failing), std::string("Fallback hello"));
    });
  }

  /// The job's snapshot, or nullopt for an unknown id.
  [[nodiscard]] std::optional<Snapshot> getJob(const JobId& id) const { return tracker_.get(id); }

  /// The newest jobs first.
  [[nodiscard]] std::vector<Snapshot> listJobs(std::size_t limit) const { return tracker_.list(limit); }

 private:
  template <class Rep, class Period>
  std::chrono::nanoseconds scaled(std::chrono::duration<Rep, Period> duration) const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double, std::nano>(std::chrono::duration<double, std::nano>(duration).count() *
                                                 timeScale_));
  }

  /// Simulated work: `duration` (scaled) in small slices, reporting progress
  /// from `from` to `to` percent, stopping early when asked to.
  template <class Rep, class Period>
  void work(std::chrono::duration<Rep, Period> duration, const std::stop_token& stop, const JobContext& context,
            int from, int to) const {
    constexpr int slices = 20;
    const auto slice = scaled(duration) / slices;
    for (int i = 1; i <= slices; ++i) {
      if (stop.stop_requested()) throw CancelledError();
      std::this_thread::sleep_for(slice);
      if (to > from) context.reportProgress(from + (to - from) * i / slices, "working");
    }
  }

  std::function<std::string(std::stop_token)> greeter(std::chrono::milliseconds duration, std::string text,
                                                      const JobContext& context) {
    return [this, duration, text = std::move(text), context](std::stop_token stop) {
      work(duration, stop, context, 0, 0);
      return text;
    };
  }

  AsyncExecutor& executor_;
  JobTracker<>& tracker_;
  double timeScale_;
};

}  // namespace jobtrack::examples
