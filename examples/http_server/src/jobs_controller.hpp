#pragma once

/// @file
/// /api/jobs: list, inspect (with long-polling), cancel, and follow jobs as
/// server-sent events.

#include "controller.hpp"
#include <jobtrack/jobtrack.hpp>

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>

namespace jobtrack::examples::http {

/// Knobs of the jobs API.
struct JobsApiOptions {
  std::size_t defaultLimit = 20;                   ///< GET /api/jobs without `limit`
  std::size_t maxLimit = 100;                      ///< larger `limit`s are capped to this
  std::chrono::milliseconds maxWait{30'000};       ///< larger `wait`s are capped to this
  std::chrono::milliseconds sseHeartbeat{15'000};  ///< comment line sent on an idle event stream
};

/// The outcome of parsing a query parameter: the value, or a 400 problem.
template <class T>
struct ParamOrProblem {
  std::optional<T> value;
  std::optional<Response> error;
};

/// `limit`: a positive integer, defaulted and capped by `options`.
[[nodiscard]] ParamOrProblem<std::size_t> parseLimit(const Request& request,
                                                     const JobsApiOptions& options);
/// `wait`: seconds (decimals allowed, >= 0), capped to `options.maxWait`; 0 when absent.
[[nodiscard]] ParamOrProblem<std::chrono::milliseconds> parseWait(const Request& request,
                                                                  const JobsApiOptions& options);
/// `status`: one of PENDING, RUNNING, COMPLETED, FAILED, CANCELLED (any case); nullopt when absent.
[[nodiscard]] ParamOrProblem<std::optional<JobStatus>> parseStatus(const Request& request);
/// The `{id}` path parameter as a JobId, or 400.
[[nodiscard]] ParamOrProblem<JobId> parseJobId(const Request& request);

/// Serves /api/jobs and /api/jobs/{id}[/events].
class JobsController final : public Controller {
 public:
  using Tracker = JobTracker<nlohmann::json>;
  using Snapshot = Tracker::Snapshot;

  /// `shutdown` ends open event streams when the server stops.
  JobsController(Tracker& tracker, JobsApiOptions options, std::stop_token shutdown);
  void registerRoutes(Router& router) override;

  Response list(const Request& request) const;
  Response get(const Request& request) const;
  Response cancel(const Request& request);
  Response events(const Request& request) const;

 private:
  void streamEvents(const JobId& id, const StreamWriter& write) const;

  Tracker& tracker_;
  JobsApiOptions options_;
  std::stop_token shutdown_;
};

/// One server-sent event carrying `snapshot` as JSON.
[[nodiscard]] std::string formatEvent(std::uint64_t eventId, const nlohmann::json& snapshot);

}  // namespace jobtrack::examples::http
