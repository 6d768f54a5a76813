#pragma once

/// @file
/// Operational endpoints: GET / (dashboard), /healthz, /metrics; and the HTTP
/// request counters behind /metrics.

#include "controller.hpp"
#include <jobtrack/jobtrack.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>

namespace jobtrack::examples::http {

/// Counts answered HTTP requests by status code. Thread-safe.
class HttpMetrics {
 public:
  /// Records one answered request.
  void record(int status);
  /// Requests answered so far, by status code.
  [[nodiscard]] std::map<int, std::uint64_t> byStatus() const;

 private:
  mutable std::mutex mutex_;
  std::map<int, std::uint64_t> byStatus_;
};

/// Serves the dashboard, health and metrics.
class SystemController final : public Controller {
 public:
  using Tracker = JobTracker<nlohmann::json>;

  SystemController(AsyncExecutor& executor, Tracker& tracker, HttpMetrics& metrics,
                   std::stop_token shutdown);
  void registerRoutes(Router& router) override;

  Response dashboard(const Request& request) const;
  Response health(const Request& request) const;
  Response metrics(const Request& request) const;

 private:
  AsyncExecutor& executor_;
  Tracker& tracker_;
  HttpMetrics& httpMetrics_;
  std::stop_token shutdown_;
};

}  // namespace jobtrack::examples::http
