#pragma once

/// @file
/// The whole service without any transport: executor, tracker, services and
/// controllers wired to one Router. `handle()` answers a Request directly,
/// which is what the tests, a fuzzer and the cpp-httplib adapter all call.
/// (A fuzzer should use a small `timeScale` and `jobsApi.maxWait`, so that
/// jobs and long-polls end quickly.)

#include "controller.hpp"
#include "hello_service.hpp"
#include "jobs_controller.hpp"
#include "router.hpp"
#include "system_controller.hpp"
#include <jobtrack/jobtrack.hpp>

#include <memory>
#include <stop_token>
#include <vector>

namespace jobtrack::examples::http {

/// Everything configurable about the service.
struct AppOptions {
  double timeScale = 1.0;      ///< multiplies every simulated job duration
  ExecutorOptions executor{};  ///< the job executor's pools
  TrackerOptions tracker{};    ///< job retention
  JobsApiOptions jobsApi{};    ///< limits, long-poll cap, SSE heartbeat
  BodyLimits bodyLimits{};     ///< request body cap (64 KiB)
  /// A shared job store (e.g. RedisJobStore, --redis-url); none keeps jobs in memory.
  std::shared_ptr<JobStore<nlohmann::json>> store;
};

/// The HTTP example service, transport-free.
class App {
 public:
  explicit App(AppOptions options = {});
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  /// Answers one request. Thread-safe; never throws; a streamed response
  /// (`Response::stream`) must be run before the App is destroyed.
  [[nodiscard]] Response handle(Request request) const;

  /// Adds a controller's routes (the built-in ones are already registered).
  /// Call before serving: the router is not guarded against concurrent changes.
  void addController(std::unique_ptr<Controller> controller);

  /// Counters shown by /metrics; the transport records each answer here.
  [[nodiscard]] HttpMetrics& httpMetrics() noexcept { return httpMetrics_; }
  [[nodiscard]] JobTracker<nlohmann::json>& tracker() noexcept { return tracker_; }
  [[nodiscard]] AsyncExecutor& executor() noexcept { return executor_; }

  /// First step of a graceful stop: /healthz turns 503, event streams end,
  /// every unfinished job is cancelled. Idempotent.
  void beginShutdown();

  /// A token that is stopped by beginShutdown().
  [[nodiscard]] std::stop_token shutdownToken() const noexcept { return shutdown_.get_token(); }

 private:
  std::stop_source shutdown_;
  AsyncExecutor executor_;
  JobTracker<nlohmann::json> tracker_;
  HelloService hello_;
  HttpMetrics httpMetrics_;
  Router router_;
  std::vector<std::unique_ptr<Controller>> controllers_;
};

}  // namespace jobtrack::examples::http
