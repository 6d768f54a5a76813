#pragma once

/// @file
/// The seed's three demonstration jobs, submitted to a JobTracker.

#include <chrono>
#include <string>
#include <string_view>

#include <jobtrack/jobtrack.hpp>

namespace jobtrack::examples::http {

/// Scales every simulated duration (0.01 makes a 2 s job take 20 ms).
class TimeScale {
 public:
  /// `factor` must be positive and finite.
  explicit TimeScale(double factor = 1.0);

  /// `duration` multiplied by the factor.
  [[nodiscard]] std::chrono::nanoseconds operator()(std::chrono::nanoseconds duration) const;

  [[nodiscard]] double factor() const noexcept { return factor_; }

 private:
  double factor_;
};

/// "john" -> "John": upper-cases a leading ASCII letter, leaves the rest.
[[nodiscard]] std::string capitalize(std::string_view name);

/// Starts the hello jobs; each returns the tracked job's id at once.
class HelloService {
 public:
  using Tracker = JobTracker<nlohmann::json>;

  HelloService(AsyncExecutor& executor, Tracker& tracker, TimeScale scale);

  /// 2 s of work, then "Hello, John!" for "john".
  JobId startHelloJob(const std::string& name);
  /// Two 1 s steps chained with executeAndThen: "hello John", then "hello John (composed)".
  JobId startComposeHelloJob(const std::string& name);
  /// executeAny of "Slow hello" (3 s), "Fast hello" (1 s), "Medium hello" (2 s):
  /// "Fast hello" wins, the others are cancelled.
  JobId startRaceJob();

 private:
  AsyncExecutor& executor_;
  Tracker& tracker_;
  TimeScale scale_;
};

}  // namespace jobtrack::examples::http
