// The service driven in-process through App::handle: no sockets, no threads
// of our own. Covers routing, validation and the problem+json answers.

#include "app.hpp"
#include "command_line.hpp"
#include "controller.hpp"
#include "hello_controller.hpp"
#include "jobs_controller.hpp"

#include "catch.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace jobtrack::examples::http;
using nlohmann::json;

namespace {

AppOptions fastOptions() {
  AppOptions options;
  options.timeScale = 0.01;
  return options;
}

Request makeRequest(std::string method, std::string path, std::string body = {},
                    std::string contentType = "application/json") {
  Request request;
  request.method = std::move(method);
  const auto question = path.find('?');
  if (question != std::string::npos) {
    std::string query = path.substr(question + 1);
    path.resize(question);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string pair = query.substr(0, amp);
      const auto equals = pair.find('=');
      request.query.emplace(pair.substr(0, equals),
                            equals == std::string::npos ? "" : pair.substr(equals + 1));
      query = amp == std::string::npos ? "" : query.substr(amp + 1);
    }
  }
  request.path = std::move(path);
  request.body = std::move(body);
  if (!contentType.empty()) request.headers.emplace("Content-Type", std::move(contentType));
  return request;
}

void requireProblem(const Response& response, int status) {
  INFO(response.body);
  REQUIRE(response.status == status);
  REQUIRE(response.contentType == "application/problem+json");
  const json body = json::parse(response.body);
  CHECK(body.at("status") == status);
  CHECK(body.at("type") == "about:blank");
  CHECK(body.at("title").get<std::string>() == std::string(reasonPhrase(status)));
  CHECK_FALSE(body.at("detail").get<std::string>().empty());
}

json waitForJob(const App& app, const std::string& id) {
  const Response response = app.handle(makeRequest("GET", "/api/jobs/" + id + "?wait=30", "", ""));
  REQUIRE(response.status == 200);
  return json::parse(response.body);
}

}  // namespace

TEST_CASE("POST /api/hello answers 202 with Location and Retry-After, and the job completes") {
  App app(fastOptions());
  const Response accepted = app.handle(makeRequest("POST", "/api/hello", R"({"name":"john"})"));
  REQUIRE(accepted.status == 202);
  const json body = json::parse(accepted.body);
  const std::string id = body.at("jobId");
  CHECK(body.at("status") == "PENDING");
  CHECK(accepted.header("Location") == "/api/jobs/" + id);
  CHECK(accepted.header("Retry-After") == "1");

  const json job = waitForJob(app, id);
  CHECK(job.at("status") == "COMPLETED");
  CHECK(job.at("result") == "Hello, John!");
  CHECK(job.at("name") == "hello:john");
  CHECK(job.at("progress") == 100);
}

TEST_CASE("compose and race give the seed's results") {
  App app(fastOptions());
  const Response compose =
      app.handle(makeRequest("POST", "/api/hello/compose", R"({"name":"john"})"));
  REQUIRE(compose.status == 202);
  const Response race = app.handle(makeRequest("POST", "/api/hello/race", "", ""));
  REQUIRE(race.status == 202);
  CHECK(waitForJob(app, json::parse(compose.body).at("jobId")).at("result") ==
        "hello John (composed)");
  CHECK(waitForJob(app, json::parse(race.body).at("jobId")).at("result") == "Fast hello");
}

TEST_CASE("name validation") {
  json ok = {{"name", "john"}};
  CHECK(validateName(ok).name == "john");
  CHECK(validateName(json{{"name", std::string(100, 'x')}}).name.has_value());
  CHECK(validateName(json{{"name", "\xC3\xA9" + std::string(99, 'x')}})
            .name.has_value());  // 100 code points
  for (const json& bad :
       {json::object(), json{{"name", nullptr}}, json{{"name", ""}}, json{{"name", "   "}},
        json{{"name", 42}}, json{{"name", json::array()}}, json{{"name", std::string(101, 'x')}}}) {
    INFO(bad.dump());
    const NameOrProblem result = validateName(bad);
    CHECK_FALSE(result.name.has_value());
    REQUIRE(result.error.has_value());
    requireProblem(*result.error, 400);
  }
}

TEST_CASE("Content-Type check accepts application/json with a UTF-8 charset only") {
  CHECK(isJsonContentType("application/json"));
  CHECK(isJsonContentType("Application/JSON; charset=UTF-8"));
  CHECK(isJsonContentType("application/json;charset=\"utf-8\""));
  CHECK_FALSE(isJsonContentType("application/json; charset=latin1"));
  CHECK_FALSE(isJsonContentType("text/plain"));
  CHECK_FALSE(isJsonContentType("application/jsonx"));
  CHECK_FALSE(isJsonContentType(""));
}

TEST_CASE("the bad-input table, in process") {
  App app(fastOptions());
  struct Case {
    std::string method, path, body, contentType;
    int status;
  };
  const std::string unknownId = "123e4567-e89b-42d3-a456-426614174000";
  const std::vector<Case> cases = {
      {"POST", "/api/hello", "{", "application/json", 400},
      {"POST", "/api/hello", "", "application/json", 400},
      {"POST", "/api/hello", "[1,2]", "application/json", 400},
      {"POST", "/api/hello", R"({"name":""})", "application/json", 400},
      {"POST", "/api/hello", R"({"nom":"john"})", "application/json", 400},
      {"POST", "/api/hello", R"({"name":")" + std::string(101, 'a') + R"("})", "application/json",
       400},
      {"POST", "/api/hello", "\"\xFF\"", "application/json", 400},
      {"POST", "/api/hello", R"({"name":"john"})", "text/plain", 415},
      {"POST", "/api/hello", R"({"name":"john"})", "", 415},
      {"POST", "/api/hello/compose", R"({"name":"john"})", "application/json; charset=iso-8859-1",
       415},
      {"POST", "/api/hello", std::string(64 * 1024 + 1, ' '), "application/json", 413},
      {"POST", "/api/hello/race", "nope", "application/json", 400},
      {"GET", "/api/jobs/not-a-uuid", "", "", 400},
      {"GET", "/api/jobs/00000000-0000-0000-0000-000000000000", "", "", 400},
      {"GET", "/api/jobs/" + unknownId, "", "", 404},
      {"DELETE", "/api/jobs/" + unknownId, "", "", 404},
      {"DELETE", "/api/jobs/xyz", "", "", 400},
      {"GET", "/api/jobs/" + unknownId + "/events", "", "", 404},
      {"GET", "/api/jobs?limit=abc", "", "", 400},
      {"GET", "/api/jobs?limit=0", "", "", 400},
      {"GET", "/api/jobs?limit=-1", "", "", 400},
      {"GET", "/api/jobs?limit=5x", "", "", 400},
      {"GET", "/api/jobs?status=DONE", "", "", 400},
      {"GET", "/api/jobs/" + unknownId + "?wait=-1", "", "", 400},
      {"GET", "/api/jobs/" + unknownId + "?wait=soon", "", "", 400},
      {"GET", "/api/jobs/" + unknownId + "?wait=nan", "", "", 400},
      {"GET", "/nowhere", "", "", 404},
      {"GET", "/api/jobs/", "", "", 404},
      {"GET", "/api/hello", "", "", 405},
      {"PUT", "/api/jobs", "", "", 405},
      {"DELETE", "/api/jobs", "", "", 405},
      {"POST", "/healthz", "", "", 405},
      {"BREW", "/", "", "", 501},
  };
  for (const Case& c : cases) {
    INFO(c.method << " " << c.path.substr(0, 80) << " [" << c.contentType << "] "
                  << c.body.substr(0, 40));
    requireProblem(app.handle(makeRequest(c.method, c.path, c.body, c.contentType)), c.status);
  }
}

TEST_CASE("405 names the allowed methods; OPTIONS lists them") {
  App app(fastOptions());
  const Response wrong =
      app.handle(makeRequest("PATCH", "/api/jobs/123e4567-e89b-42d3-a456-426614174000"));
  requireProblem(wrong, 405);
  CHECK(wrong.header("Allow") == "DELETE, GET, HEAD, OPTIONS");
  const Response options = app.handle(makeRequest("OPTIONS", "/api/hello"));
  CHECK(options.status == 204);
  CHECK(options.header("Allow") == "OPTIONS, POST");
}

TEST_CASE("GET /api/jobs: newest first, limit defaulted and capped, status filter") {
  App app(fastOptions());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const Response r = app.handle(
        makeRequest("POST", "/api/hello", R"({"name":"n)" + std::to_string(i) + R"("})"));
    REQUIRE(r.status == 202);
    ids.push_back(json::parse(r.body).at("jobId"));
  }
  for (const auto& id : ids) REQUIRE(waitForJob(app, id).at("status") == "COMPLETED");

  json all = json::parse(app.handle(makeRequest("GET", "/api/jobs", "", "")).body);
  CHECK(all.at("limit") == 20);
  REQUIRE(all.at("jobs").size() == 3);
  CHECK(all.at("jobs")[0].at("jobId") == ids[2]);
  CHECK(all.at("jobs")[2].at("jobId") == ids[0]);

  CHECK(json::parse(app.handle(makeRequest("GET", "/api/jobs?limit=1000", "", "")).body)
            .at("limit") == 100);
  CHECK(json::parse(app.handle(makeRequest("GET", "/api/jobs?limit=2", "", "")).body)
            .at("jobs")
            .size() == 2);
  CHECK(json::parse(app.handle(makeRequest("GET", "/api/jobs?status=completed", "", "")).body)
            .at("jobs")
            .size() == 3);
  CHECK(json::parse(app.handle(makeRequest("GET", "/api/jobs?status=RUNNING", "", "")).body)
            .at("jobs")
            .empty());
}

TEST_CASE("DELETE cancels a running job, then 409") {
  AppOptions options;
  options.timeScale = 100;  // the job would run for minutes
  App app(options);
  const Response accepted = app.handle(makeRequest("POST", "/api/hello", R"({"name":"slow"})"));
  const std::string id = json::parse(accepted.body).at("jobId");
  const Response cancelled = app.handle(makeRequest("DELETE", "/api/jobs/" + id, "", ""));
  REQUIRE((cancelled.status == 200 || cancelled.status == 202));
  CHECK(json::parse(cancelled.body).at("jobId") == id);
  CHECK(waitForJob(app, id).at("status") == "CANCELLED");
  const Response again = app.handle(makeRequest("DELETE", "/api/jobs/" + id, "", ""));
  requireProblem(again, 409);
  CHECK(json::parse(again.body).at("jobStatus") == "CANCELLED");
}

TEST_CASE("the event stream starts with the current snapshot and ends at the terminal state") {
  App app(fastOptions());
  const Response accepted =
      app.handle(makeRequest("POST", "/api/hello/compose", R"({"name":"sse"})"));
  const std::string id = json::parse(accepted.body).at("jobId");
  const Response stream = app.handle(makeRequest("GET", "/api/jobs/" + id + "/events", "", ""));
  REQUIRE(stream.status == 200);
  CHECK(stream.contentType == "text/event-stream");
  REQUIRE(stream.stream);
  std::vector<json> events;
  stream.stream([&](std::string_view piece) {
    const auto data = piece.find("data: ");
    if (data != std::string_view::npos) {
      events.push_back(json::parse(piece.substr(data + 6, piece.find('\n', data) - data - 6)));
    }
    return true;
  });  // returns once the job is terminal
  REQUIRE_FALSE(events.empty());
  CHECK(events.front().at("jobId") == id);
  CHECK(events.back().at("status") == "COMPLETED");
  for (std::size_t i = 1; i < events.size(); ++i)
    CHECK(events[i].at("progress") >= events[i - 1].at("progress"));
}

TEST_CASE("shutdown cancels unfinished jobs and ends event streams") {
  AppOptions options;
  options.timeScale = 100;
  App app(options);
  const std::string id =
      json::parse(app.handle(makeRequest("POST", "/api/hello", R"({"name":"x"})")).body)
          .at("jobId");
  app.beginShutdown();
  CHECK(waitForJob(app, id).at("status") == "CANCELLED");
  requireProblem(app.handle(makeRequest("GET", "/healthz", "", "")), 503);
}

TEST_CASE("/metrics and /healthz") {
  App app(fastOptions());
  app.httpMetrics().record(202);
  app.httpMetrics().record(202);
  const Response health = app.handle(makeRequest("GET", "/healthz", "", ""));
  CHECK(health.status == 200);
  const Response metrics = app.handle(makeRequest("GET", "/metrics", "", ""));
  CHECK(metrics.status == 200);
  CHECK(metrics.contentType.rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(metrics.body.find("jobtrack_http_requests_total{code=\"202\"} 2\n") != std::string::npos);
  CHECK(metrics.body.find("jobtrack_jobs{status=\"COMPLETED\"} 0\n") != std::string::npos);
  CHECK(metrics.body.find("# TYPE jobtrack_jobs_submitted_total counter\n") != std::string::npos);
}

TEST_CASE("the dashboard is HTML that never uses innerHTML") {
  App app(fastOptions());
  const Response page = app.handle(makeRequest("GET", "/", "", ""));
  CHECK(page.status == 200);
  CHECK(page.contentType == "text/html; charset=utf-8");
  CHECK(page.body.find("<!doctype html>") == 0);
  CHECK(page.body.find("innerHTML") == std::string::npos);
  CHECK(page.body.find("textContent") != std::string::npos);
}

TEST_CASE("command line") {
  auto parsed =
      parseCommandLine({"--port", "0", "--threads", "8", "--time-scale", "0.01", "--host", "::1"});
  REQUIRE(std::holds_alternative<CommandLine>(parsed));
  const auto& options = std::get<CommandLine>(parsed);
  CHECK(options.server.port == 0);
  CHECK(options.server.threads == 8);
  CHECK(options.server.host == "::1");
  CHECK(options.app.timeScale == 0.01);
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--port"},
                                              {"--port", "70000"},
                                              {"--threads", "0"},
                                              {"--time-scale", "-1"},
                                              {"--time-scale", "inf"},
                                              {"--bogus", "1"}}) {
    CHECK(std::holds_alternative<std::string>(parseCommandLine(bad)));
  }
}
