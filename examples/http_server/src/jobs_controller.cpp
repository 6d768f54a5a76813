#include "jobs_controller.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

namespace jobtrack::examples::http {

namespace {

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

nlohmann::json toJson(const JobsController::Snapshot& snapshot) {
  nlohmann::json json = snapshot;
  return json;
}

/// Orders snapshots of one job: later statuses, then more progress.
bool isNewer(const JobsController::Snapshot& candidate, const JobsController::Snapshot& last) {
  if (lifecycleStage(candidate.status) != lifecycleStage(last.status))
    return lifecycleStage(candidate.status) > lifecycleStage(last.status);
  if (candidate.progress != last.progress) return candidate.progress > last.progress;
  return candidate.message != last.message;
}

Response snapshotResponse(int status, const JobsController::Snapshot& snapshot) {
  Response response = jsonResponse(status, toJson(snapshot));
  if (!isTerminal(snapshot.status)) response.setHeader("Retry-After", "1");
  return response;
}

}  // namespace

ParamOrProblem<std::size_t> parseLimit(const Request& request, const JobsApiOptions& options) {
  const auto text = request.queryParam("limit");
  if (!text) return {options.defaultLimit, std::nullopt};
  std::size_t value = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (text->empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range) ||
      (ec == std::errc() && value == 0)) {
    return {std::nullopt,
            problem(400, "The query parameter 'limit' must be a positive integer (at most " +
                             std::to_string(options.maxLimit) + " are returned), not '" + *text +
                             "'.")};
  }
  if (ec == std::errc::result_out_of_range) value = options.maxLimit;
  return {std::min(value, options.maxLimit), std::nullopt};
}

ParamOrProblem<std::chrono::milliseconds> parseWait(const Request& request,
                                                    const JobsApiOptions& options) {
  const auto text = request.queryParam("wait");
  if (!text) return {std::chrono::milliseconds(0), std::nullopt};
  double seconds = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, seconds, std::chars_format::fixed);
  if (text->empty() || ptr != end || ec != std::errc() || !std::isfinite(seconds) || seconds < 0) {
    return {std::nullopt,
            problem(400, "The query parameter 'wait' must be a number of seconds between 0 and " +
                             std::to_string(options.maxWait.count() / 1000) + ", not '" + *text +
                             "'.")};
  }
  const double cappedMs = std::min(seconds * 1000.0, static_cast<double>(options.maxWait.count()));
  return {std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(cappedMs)),
          std::nullopt};
}

ParamOrProblem<std::optional<JobStatus>> parseStatus(const Request& request) {
  const auto text = request.queryParam("status");
  if (!text) return {std::optional<JobStatus>{}, std::nullopt};
  if (auto status = parseJobStatus(upper(*text)))
    return {std::optional<JobStatus>{*status}, std::nullopt};
  return {std::nullopt,
          problem(400,
                  "The query parameter 'status' must be one of PENDING, RUNNING, COMPLETED, "
                  "FAILED, CANCELLED, not '" +
                      *text + "'.")};
}

ParamOrProblem<JobId> parseJobId(const Request& request) {
  const auto it = request.pathParams.find("id");
  const std::string text = it == request.pathParams.end() ? std::string() : it->second;
  if (auto id = JobId::parse(text); id && !id->isNil()) return {*id, std::nullopt};
  return {std::nullopt, problem(400, "'" + text.substr(0, 64) + (text.size() > 64 ? "..." : "") +
                                         "' is not a job id; job ids are UUIDs like "
                                         "'123e4567-e89b-12d3-a456-426614174000'.")};
}

std::string formatEvent(std::uint64_t eventId, const nlohmann::json& snapshot) {
  return "id: " + std::to_string(eventId) +
         "\ndata: " + snapshot.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n\n";
}

JobsController::JobsController(Tracker& tracker, JobsApiOptions options, std::stop_token shutdown)
    : tracker_(tracker), options_(options), shutdown_(std::move(shutdown)) {}

void JobsController::registerRoutes(Router& router) {
  router.add("GET", "/api/jobs", [this](const Request& r) { return list(r); });
  router.add("GET", "/api/jobs/{id}", [this](const Request& r) { return get(r); });
  router.add("DELETE", "/api/jobs/{id}", [this](const Request& r) { return cancel(r); });
  router.add("GET", "/api/jobs/{id}/events", [this](const Request& r) { return events(r); });
}

Response JobsController::list(const Request& request) const {
  auto limit = parseLimit(request, options_);
  if (limit.error) return std::move(*limit.error);
  auto status = parseStatus(request);
  if (status.error) return std::move(*status.error);
  ListFilter filter;
  filter.status = *status.value;
  if (auto prefix = request.queryParam("name")) filter.namePrefix = *prefix;

  nlohmann::json jobs = nlohmann::json::array();
  for (const Snapshot& snapshot : tracker_.list(*limit.value, filter))
    jobs.push_back(toJson(snapshot));
  return jsonResponse(200, {{"jobs", std::move(jobs)}, {"limit", *limit.value}});
}

Response JobsController::get(const Request& request) const {
  auto id = parseJobId(request);
  if (id.error) return std::move(*id.error);
  auto wait = parseWait(request, options_);
  if (wait.error) return std::move(*wait.error);

  std::optional<Snapshot> snapshot = tracker_.get(*id.value);
  if (snapshot && !isTerminal(snapshot->status) && wait.value->count() > 0) {
    // Blocks this connection's thread on the tracker's completion event (no polling).
    snapshot = tracker_.wait(*id.value, *wait.value);
  }
  if (!snapshot) return problem(404, "There is no job with id '" + to_string(*id.value) + "'.");
  return snapshotResponse(200, *snapshot);
}

Response JobsController::cancel(const Request& request) {
  auto id = parseJobId(request);
  if (id.error) return std::move(*id.error);
  const std::string text = to_string(*id.value);
  switch (tracker_.cancel(*id.value)) {
    case CancelResult::NotFound:
      return problem(404, "There is no job with id '" + text + "'.");
    case CancelResult::AlreadyFinished: {
      const auto snapshot = tracker_.get(*id.value);
      const std::string status =
          snapshot ? std::string(toString(snapshot->status)) : std::string("finished");
      return problem(
          409, "Job '" + text + "' has already finished (" + status + "); it cannot be cancelled.",
          {{"jobId", text}, {"jobStatus", status}});
    }
    case CancelResult::Cancelled:
      break;
  }
  const auto snapshot = tracker_.get(*id.value);
  if (!snapshot) return problem(404, "There is no job with id '" + text + "'.");
  // 200 once the job shows CANCELLED; 202 while its work is still winding down.
  Response response = snapshotResponse(isTerminal(snapshot->status) ? 200 : 202, *snapshot);
  if (response.status == 202) response.setHeader("Location", "/api/jobs/" + text);
  return response;
}

Response JobsController::events(const Request& request) const {
  auto id = parseJobId(request);
  if (id.error) return std::move(*id.error);
  if (!tracker_.get(*id.value))
    return problem(404, "There is no job with id '" + to_string(*id.value) + "'.");
  Response response;
  response.status = 200;
  response.contentType = "text/event-stream";
  response.setHeader("Cache-Control", "no-cache");
  response.stream = [this, jobId = *id.value](const StreamWriter& write) {
    streamEvents(jobId, write);
  };
  return response;
}

void JobsController::streamEvents(const JobId& id, const StreamWriter& write) const {
  struct Inbox {
    std::mutex mutex;
    std::condition_variable_any changed;
    std::deque<Snapshot> snapshots;
  };
  auto inbox = std::make_shared<Inbox>();
  // Subscribe before reading the current state so that no change is missed.
  const auto subscription = tracker_.subscribe([inbox, id](const Snapshot& snapshot) {
    if (!(snapshot.id == id)) return;
    {
      std::lock_guard lock(inbox->mutex);
      inbox->snapshots.push_back(snapshot);
    }
    inbox->changed.notify_one();
  });

  std::optional<Snapshot> last = tracker_.get(id);
  if (!last) return;
  std::uint64_t eventId = 0;
  if (!write("retry: 1000\n\n") || !write(formatEvent(++eventId, toJson(*last)))) return;

  while (!isTerminal(last->status)) {
    std::deque<Snapshot> batch;
    {
      std::unique_lock lock(inbox->mutex);
      const bool changed = inbox->changed.wait_for(lock, shutdown_, options_.sseHeartbeat,
                                                   [&] { return !inbox->snapshots.empty(); });
      if (shutdown_.stop_requested()) return;
      if (!changed) {
        lock.unlock();
        // A comment line: invisible to EventSource, but a dead client fails the write.
        if (!write(": heartbeat\n\n")) return;
        continue;
      }
      batch.swap(inbox->snapshots);
    }
    for (const Snapshot& snapshot : batch) {
      if (!isNewer(snapshot, *last)) continue;  // queued before the first event, or a repeat
      if (!write(formatEvent(++eventId, toJson(snapshot)))) return;
      last = snapshot;
      if (isTerminal(last->status)) break;
    }
  }
}

}  // namespace jobtrack::examples::http
