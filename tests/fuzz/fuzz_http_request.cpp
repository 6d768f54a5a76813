// libFuzzer target: the HTTP example's request handling, driven through
// App::handle (no sockets). Whatever the request, the service must answer
// without crashing, with a known status code, a parseable JSON body for JSON
// answers, an RFC 9457 problem document for every 4xx, and never a 500.
//
// Input format (lines separated by '\n'; missing lines are empty):
//   1. method             e.g. "POST" (any bytes: unknown methods get 501)
//   2. path               e.g. "/api/jobs/$ID/events"; "$ID" is replaced by
//                         the id of a hello job submitted for this input
//   3. query              "name=value&name=value", values taken verbatim (the
//                         transport has already decoded them)
//   4. Content-Type       omitted from the request when the line is empty
//   5. the rest           the body
//
// One App serves every input: its jobs are near-instant (time scale 1e-6),
// long-polls and idle event streams last a few milliseconds, and finished
// jobs are forgotten past 256, so memory stays bounded however long it runs.

#include "app.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace http = jobtrack::examples::http;

namespace {

http::App& app() {
  static http::App* const instance = [] {
    http::AppOptions options;
    options.timeScale = 1e-6;
    options.executor.coreThreads = 2;
    options.executor.blockingThreads = 4;
    options.tracker.maxFinishedJobs = 256;
    options.jobsApi.maxWait = std::chrono::milliseconds(5);
    options.jobsApi.sseHeartbeat = std::chrono::milliseconds(1);
    // Deliberately never destroyed: destruction order at exit is not what is fuzzed.
    return new http::App(options);
  }();
  return *instance;
}

[[noreturn]] void fail(const char* what, const http::Request& request,
                       const http::Response& response) {
  std::fprintf(stderr,
               "fuzz_http_request: %s\n  request: %s %s (%zu query params, %zu body bytes)\n  "
               "answer: %d %s\n  %s\n",
               what, request.method.c_str(), request.path.c_str(), request.query.size(),
               request.body.size(), response.status, response.contentType.c_str(),
               response.body.substr(0, 500).c_str());
  std::abort();
}

std::string_view takeLine(std::string_view& input) {
  const auto newline = input.find('\n');
  const std::string_view line = input.substr(0, newline);
  input = newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);
  return line;
}

void parseQuery(std::string_view query, http::QueryParams& params) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto equals = pair.find('=');
    params.emplace(std::string(pair.substr(0, equals)), equals == std::string_view::npos
                                                            ? std::string()
                                                            : std::string(pair.substr(equals + 1)));
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
  }
}

/// The id of a freshly submitted hello job, for paths that mention "$ID".
std::string submitJob() {
  http::Request post;
  post.method = "POST";
  post.path = "/api/hello";
  post.headers.emplace("Content-Type", "application/json");
  post.body = R"({"name":"fuzz"})";
  const http::Response accepted = app().handle(post);
  if (accepted.status != 202) fail("a valid POST /api/hello was not accepted", post, accepted);
  return nlohmann::json::parse(accepted.body).at("jobId").get<std::string>();
}

void checkResponse(const http::Request& request, const http::Response& response) {
  if (response.status < 100 || response.status > 599 ||
      http::reasonPhrase(response.status) == "Unknown") {
    fail("status code outside the service's table", request, response);
  }
  if (response.status == 500) fail("a handler failed (500)", request, response);
  const bool isProblem = response.contentType == http::kProblemJson;
  if (response.status >= 400 && response.status < 500 && !isProblem)
    fail("a 4xx without problem+json", request, response);
  if (response.stream && !response.body.empty())
    fail("a streamed response with a body", request, response);
  if (response.stream) return;
  if (isProblem || response.contentType == "application/json") {
    const auto body = nlohmann::json::parse(response.body, nullptr, false);
    if (body.is_discarded()) fail("a JSON answer that is not JSON", request, response);
    if (isProblem) {
      if (!body.is_object() || body.value("status", 0) != response.status ||
          !body.contains("type") || !body.contains("title") || !body["detail"].is_string() ||
          body["detail"].get<std::string>().empty()) {
        fail("a malformed problem document", request, response);
      }
    }
  }
  if (response.status == 405 && !response.header("Allow"))
    fail("405 without Allow", request, response);
}

/// Runs an event stream as a client that hangs up after a few pieces.
void runStream(const http::Request& request, const http::Response& response) {
  int pieces = 0;
  response.stream([&](std::string_view piece) {
    if (piece.empty()) fail("an empty stream write", request, response);
    return ++pieces < 4;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  http::Request request;
  request.method = std::string(takeLine(input));
  request.path = std::string(takeLine(input));
  parseQuery(takeLine(input), request.query);
  if (const std::string_view contentType = takeLine(input); !contentType.empty()) {
    request.headers.emplace("Content-Type", std::string(contentType));
  }
  request.body = std::string(input);
  if (const auto placeholder = request.path.find("$ID"); placeholder != std::string::npos) {
    request.path.replace(placeholder, 3, submitJob());
  }

  const http::Response response = app().handle(request);
  checkResponse(request, response);
  if (response.stream) runStream(request, response);
  return 0;
}
