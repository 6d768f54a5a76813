#include "system_controller.hpp"

#include "dashboard_html.hpp"

#include <sstream>

namespace jobtrack::examples::http {

void HttpMetrics::record(int status) {
  std::lock_guard lock(mutex_);
  ++byStatus_[status];
}

std::map<int, std::uint64_t> HttpMetrics::byStatus() const {
  std::lock_guard lock(mutex_);
  return byStatus_;
}

SystemController::SystemController(AsyncExecutor& executor, Tracker& tracker, HttpMetrics& metrics,
                                   std::stop_token shutdown)
    : executor_(executor),
      tracker_(tracker),
      httpMetrics_(metrics),
      shutdown_(std::move(shutdown)) {}

void SystemController::registerRoutes(Router& router) {
  router.add("GET", "/", [this](const Request& r) { return dashboard(r); });
  router.add("GET", "/healthz", [this](const Request& r) { return health(r); });
  router.add("GET", "/metrics", [this](const Request& r) { return metrics(r); });
}

Response SystemController::dashboard(const Request&) const {
  Response response;
  response.contentType = "text/html; charset=utf-8";
  response.body = std::string(kDashboardHtml);
  response.setHeader("Cache-Control", "no-cache");
  // The page loads nothing from elsewhere; say so to the browser.
  response.setHeader("Content-Security-Policy",
                     "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                     "connect-src 'self'; "
                     "form-action 'none'; base-uri 'none'; frame-ancestors 'none'");
  response.setHeader("X-Content-Type-Options", "nosniff");
  return response;
}

Response SystemController::health(const Request&) const {
  if (shutdown_.stop_requested()) return problem(503, "The server is shutting down.");
  return jsonResponse(200, {{"status", "ok"}});
}

Response SystemController::metrics(const Request&) const {
  const TrackerStats jobs = tracker_.stats();
  const ExecutorStats executor = executor_.stats();
  std::ostringstream out;
  out << "# HELP jobtrack_jobs Jobs currently tracked, by status.\n"
         "# TYPE jobtrack_jobs gauge\n";
  const std::pair<JobStatus, std::size_t> byStatus[] = {{JobStatus::Pending, jobs.pending},
                                                        {JobStatus::Running, jobs.running},
                                                        {JobStatus::Completed, jobs.completed},
                                                        {JobStatus::Failed, jobs.failed},
                                                        {JobStatus::Cancelled, jobs.cancelled}};
  for (const auto& [status, count] : byStatus)
    out << "jobtrack_jobs{status=\"" << toString(status) << "\"} " << count << '\n';
  out << "# HELP jobtrack_jobs_submitted_total Jobs submitted since start.\n"
         "# TYPE jobtrack_jobs_submitted_total counter\n"
         "jobtrack_jobs_submitted_total "
      << jobs.submitted << '\n'
      << "# HELP jobtrack_jobs_evicted_total Finished jobs forgotten (TTL or capacity).\n"
         "# TYPE jobtrack_jobs_evicted_total counter\n"
         "jobtrack_jobs_evicted_total "
      << jobs.evicted << '\n'
      << "# HELP jobtrack_executor_queued Tasks waiting for an executor thread.\n"
         "# TYPE jobtrack_executor_queued gauge\n"
         "jobtrack_executor_queued "
      << executor.queued << '\n'
      << "# HELP jobtrack_executor_running Tasks running on an executor thread.\n"
         "# TYPE jobtrack_executor_running gauge\n"
         "jobtrack_executor_running "
      << executor.running << '\n'
      << "# HELP jobtrack_executor_tasks_total Executor tasks finished, by outcome.\n"
         "# TYPE jobtrack_executor_tasks_total counter\n"
         "jobtrack_executor_tasks_total{outcome=\"completed\"} "
      << executor.completed << '\n'
      << "jobtrack_executor_tasks_total{outcome=\"failed\"} " << executor.failed << '\n'
      << "jobtrack_executor_tasks_total{outcome=\"cancelled\"} " << executor.cancelled << '\n'
      << "# HELP jobtrack_http_requests_total HTTP requests answered, by status code.\n"
         "# TYPE jobtrack_http_requests_total counter\n";
  for (const auto& [code, count] : httpMetrics_.byStatus()) {
    out << "jobtrack_http_requests_total{code=\"" << code << "\"} " << count << '\n';
  }
  Response response;
  response.contentType = "text/plain; version=0.0.4; charset=utf-8";
  response.body = out.str();
  return response;
}

}  // namespace jobtrack::examples::http
