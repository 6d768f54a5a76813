// Integration tests: start jobtrack_http_server on port 0, read the port from
// its "listening on" line, and drive it with a real HTTP client.
//
// No sleeps: job completion is awaited with the server's long-poll
// (?wait=SECONDS), streams with blocking reads, process exit with a pidfd.

#include "server_process.hpp"

#include "catch.hpp"
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <latch>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using jobtrack::testing::ServerProcess;

/// An HTTP client of `server`, with generous timeouts.
httplib::Client clientOf(const ServerProcess& server) {
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  client.set_connection_timeout(10, 0);
  return client;
}

const httplib::Headers kNoHeaders;

json postJob(httplib::Client& client, const std::string& path,
             const std::string& body = R"({"name":"john"})") {
  auto response = client.Post(path.c_str(), body, "application/json");
  REQUIRE(response);
  INFO(response->body);
  REQUIRE(response->status == 202);
  const json accepted = json::parse(response->body);
  REQUIRE(response->get_header_value("Location") ==
          "/api/jobs/" + accepted.at("jobId").get<std::string>());
  REQUIRE(response->get_header_value("Retry-After") == "1");
  return accepted;
}

/// Long-polls the job until it is terminal (bounded number of rounds).
json awaitJob(httplib::Client& client, const std::string& id) {
  for (int round = 0; round < 10; ++round) {
    auto response = client.Get(("/api/jobs/" + id + "?wait=30").c_str());
    REQUIRE(response);
    REQUIRE(response->status == 200);
    json job = json::parse(response->body);
    const std::string status = job.at("status");
    if (status == "COMPLETED" || status == "FAILED" || status == "CANCELLED") {
      CHECK_FALSE(response->has_header("Retry-After"));
      return job;
    }
    CHECK(response->has_header("Retry-After"));
  }
  FAIL("job " << id << " did not finish");
  return {};
}

void requireProblem(const httplib::Result& response, int status) {
  REQUIRE(response);
  INFO(response->body);
  REQUIRE(response->status == status);
  CHECK(response->get_header_value("Content-Type") == "application/problem+json");
  const json body = json::parse(response->body);
  CHECK(body.at("status") == status);
  CHECK(body.contains("type"));
  CHECK(body.contains("title"));
  CHECK_FALSE(body.at("detail").get<std::string>().empty());
}

/// Reads a text/event-stream; `onEvent` gets each event's data as JSON and
/// the comment lines; returning false stops reading.
struct SseReader {
  std::string buffer;
  std::vector<json> events;
  int comments = 0;

  template <class OnEvent>
  bool feed(const char* data, std::size_t size, OnEvent&& onEvent) {
    buffer.append(data, size);
    std::size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string block = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (block.rfind(':', 0) == 0) {
        ++comments;
        if (!onEvent(std::optional<json>{})) return false;
        continue;
      }
      const auto data = block.find("data: ");
      if (data == std::string::npos) continue;
      events.push_back(json::parse(block.substr(data + 6, block.find('\n', data) - data - 6)));
      if (!onEvent(std::optional<json>{events.back()})) return false;
    }
    return true;
  }
};

std::map<std::string, double> parseMetrics(const std::string& text) {
  std::map<std::string, double> values;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    values[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return values;
}

/// Sends raw bytes and returns the server's answer (one response, or what
/// came before it closed). `halfClose` ends the request stream at once, for
/// requests that would otherwise wait for the server's read timeout.
std::string rawExchange(int port, const std::string& request, bool halfClose = false) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  if (halfClose) ::shutdown(fd, SHUT_WR);
  // Read one response: its head, then Content-Length bytes (or until closed).
  std::string answer;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
    answer.append(buffer, static_cast<std::size_t>(n));
    const auto headEnd = answer.find("\r\n\r\n");
    if (headEnd == std::string::npos) continue;
    const auto length = answer.find("Content-Length: ");
    const std::size_t bodySize = length < headEnd ? std::stoul(answer.substr(length + 16)) : 0;
    if (answer.size() >= headEnd + 4 + bodySize) break;
  }
  ::close(fd);
  return answer;
}

}  // namespace

TEST_CASE("hello, compose and race over HTTP; metrics add up") {
  ServerProcess server({"--time-scale", "0.01"});
  auto client = clientOf(server);

  const json hello = postJob(client, "/api/hello");
  CHECK(hello.at("status") == "PENDING");
  const json compose = postJob(client, "/api/hello/compose");
  const json race = postJob(client, "/api/hello/race", "");

  const json helloJob = awaitJob(client, hello.at("jobId"));
  CHECK(helloJob.at("status") == "COMPLETED");
  CHECK(helloJob.at("result") == "Hello, John!");
  CHECK(helloJob.at("progress") == 100);
  CHECK(awaitJob(client, compose.at("jobId")).at("result") == "hello John (composed)");
  CHECK(awaitJob(client, race.at("jobId")).at("result") == "Fast hello");

  auto list = client.Get("/api/jobs?limit=2");
  REQUIRE(list);
  REQUIRE(list->status == 200);
  const json jobs = json::parse(list->body).at("jobs");
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].at("jobId") == race.at("jobId"));  // newest first

  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);

  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0) == 0);
  const auto values = parseMetrics(metrics->body);
  CHECK(values.at("jobtrack_jobs_submitted_total") == 3);
  CHECK(values.at("jobtrack_jobs{status=\"COMPLETED\"}") == 3);
  CHECK(values.at("jobtrack_jobs{status=\"RUNNING\"}") == 0);
  CHECK(values.at("jobtrack_http_requests_total{code=\"202\"}") == 3);
  CHECK(values.count("jobtrack_executor_queued") == 1);
  CHECK(values.count("jobtrack_executor_running") == 1);

  auto page = client.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type") == "text/html; charset=utf-8");
}

TEST_CASE("long-poll returns the current state when the wait passes; cancel; 409; 404") {
  ServerProcess server({"--time-scale", "100"});  // a hello job would take 200 s
  auto client = clientOf(server);
  const std::string id = postJob(client, "/api/hello").at("jobId");

  auto polled = client.Get(("/api/jobs/" + id + "?wait=0.2").c_str());
  REQUIRE(polled);
  CHECK(polled->status == 200);
  const std::string status = json::parse(polled->body).at("status");
  CHECK((status == "PENDING" || status == "RUNNING"));
  CHECK(polled->get_header_value("Retry-After") == "1");

  auto cancelled = client.Delete(("/api/jobs/" + id).c_str());
  REQUIRE(cancelled);
  REQUIRE((cancelled->status == 200 || cancelled->status == 202));
  CHECK(json::parse(cancelled->body).at("jobId") == id);
  CHECK(awaitJob(client, id).at("status") == "CANCELLED");

  requireProblem(client.Delete(("/api/jobs/" + id).c_str()), 409);
  requireProblem(client.Delete("/api/jobs/123e4567-e89b-42d3-a456-426614174000"), 404);
  requireProblem(client.Get("/api/jobs/123e4567-e89b-42d3-a456-426614174000?wait=1"), 404);

  auto cancelledList = client.Get("/api/jobs?status=CANCELLED");
  REQUIRE(cancelledList);
  CHECK(json::parse(cancelledList->body).at("jobs").size() == 1);
}

TEST_CASE(
    "server-sent events: snapshot first, a change per event, heartbeats, end at the terminal "
    "state") {
  SECTION("a job followed to completion") {
    ServerProcess server({"--time-scale", "0.05"});
    auto client = clientOf(server);
    const std::string id = postJob(client, "/api/hello/compose").at("jobId");
    SseReader reader;
    std::string contentType;
    auto response = client.Get(("/api/jobs/" + id + "/events").c_str(), kNoHeaders,
                               [&](const httplib::Response& r) {
                                 contentType = r.get_header_value("Content-Type");
                                 return true;
                               },
                               [&](const char* data, std::size_t size) {
                                 return reader.feed(data, size, [](const auto&) { return true; });
                               });
    REQUIRE(response);  // the server closed the stream itself
    CHECK(response->status == 200);
    CHECK(contentType == "text/event-stream");
    REQUIRE_FALSE(reader.events.empty());
    CHECK(reader.events.front().at("jobId") == id);
    CHECK(reader.events.back().at("status") == "COMPLETED");
    CHECK(reader.events.back().at("result") == "hello John (composed)");
    for (std::size_t i = 1; i < reader.events.size(); ++i) {
      CHECK(reader.events[i].at("progress") >= reader.events[i - 1].at("progress"));
    }
  }
  SECTION("an idle stream sends heartbeats, and a cancel ends it") {
    ServerProcess server({"--time-scale", "100", "--sse-heartbeat", "0.05"});
    auto client = clientOf(server);
    auto canceller = clientOf(server);
    const std::string id = postJob(client, "/api/hello").at("jobId");
    SseReader reader;
    bool cancelSent = false;
    auto response = client.Get(
        ("/api/jobs/" + id + "/events").c_str(), [&](const char* data, std::size_t size) {
          return reader.feed(data, size, [&](const std::optional<json>&) {
            if (!cancelSent && reader.comments > 0 && !reader.events.empty()) {
              cancelSent = true;
              auto deleted = canceller.Delete(("/api/jobs/" + id).c_str());
              return deleted && (deleted->status == 200 || deleted->status == 202);
            }
            return true;
          });
        });
    REQUIRE(response);
    CHECK(cancelSent);
    CHECK(reader.comments >= 1);
    REQUIRE_FALSE(reader.events.empty());
    const std::string first = reader.events.front().at("status");
    CHECK((first == "PENDING" || first == "RUNNING"));
    CHECK(reader.events.back().at("status") == "CANCELLED");
  }
}

TEST_CASE("every bad request gets a problem+json answer, and the server survives") {
  ServerProcess server({"--time-scale", "0.01"});
  auto client = clientOf(server);
  const std::string unknown = "/api/jobs/123e4567-e89b-42d3-a456-426614174000";

  requireProblem(client.Post("/api/hello", "{\"name\":", "application/json"), 400);
  requireProblem(client.Post("/api/hello", "{}", "application/json"), 400);
  requireProblem(client.Post("/api/hello", R"({"name":""})", "application/json"), 400);
  requireProblem(
      client.Post("/api/hello", R"({"name":")" + std::string(101, 'x') + "\"}", "application/json"),
      400);
  requireProblem(client.Post("/api/hello", R"({"name":7})", "application/json"), 400);
  requireProblem(client.Post("/api/hello", R"({"name":"john"})", "text/plain"), 415);
  requireProblem(client.Post("/api/hello/compose", R"({"name":"john"})", "application/xml"), 415);
  requireProblem(client.Post("/api/hello", std::string(64 * 1024 + 1, ' '), "application/json"),
                 413);
  requireProblem(client.Post("/api/hello/race", std::string(100 * 1024, ' '), "application/json"),
                 413);
  requireProblem(client.Get("/api/jobs/nope"), 400);
  requireProblem(client.Get(unknown.c_str()), 404);
  requireProblem(client.Get((unknown + "/events").c_str()), 404);
  requireProblem(client.Get("/api/jobs?limit=ten"), 400);
  requireProblem(client.Get("/api/jobs?status=SLEEPING"), 400);
  requireProblem(client.Get((unknown + "?wait=forever").c_str()), 400);
  requireProblem(client.Get("/no/such/route"), 404);
  requireProblem(client.Get(("/" + std::string(3000, 'a')).c_str()), 414);

  auto wrongMethod = client.Put("/api/hello", R"({"name":"john"})", "application/json");
  requireProblem(wrongMethod, 405);
  CHECK(wrongMethod->get_header_value("Allow") == "OPTIONS, POST");
  auto wrongDelete = client.Delete("/api/jobs");
  requireProblem(wrongDelete, 405);
  CHECK(wrongDelete->get_header_value("Allow") == "GET, HEAD, OPTIONS");

  // Charset parameters are fine; POST without a body is a 400, not a hang.
  CHECK(
      client.Post("/api/hello", R"({"name":"john"})", "application/json; charset=utf-8")->status ==
      202);
  requireProblem(client.Post("/api/hello", "", "application/json"), 400);
  CHECK(client.Post("/api/hello/race")->status == 202);

  // Garbage on the wire.
  CHECK(rawExchange(server.port(), "NOT HTTP AT ALL\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  CHECK(rawExchange(server.port(), "BREW /coffee HTTP/1.1\r\nHost: x\r\n\r\n")
            .rfind("HTTP/1.1 400", 0) == 0);
  CHECK(
      rawExchange(server.port(), "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 405", 0) ==
      0);
  // A truncated body: answered or closed, never a crash (checked by /healthz below).
  (void)rawExchange(server.port(),
                    "POST /api/hello HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 5\r\n\r\n{\"na",
                    /*halfClose=*/true);
  CHECK(rawExchange(server.port(), std::string(20000, 'G'), /*halfClose=*/true).size() < 20000);

  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  const auto values = parseMetrics(metrics->body);
  for (const auto& [name, value] : values) {
    if (name.rfind("jobtrack_http_requests_total{code=\"5", 0) == 0)
      FAIL("5xx answered: " << name << " " << value);
  }
  CHECK(values.at("jobtrack_http_requests_total{code=\"413\"}") == 2);
  CHECK(values.at("jobtrack_http_requests_total{code=\"415\"}") == 2);
}

TEST_CASE("SIGTERM and SIGINT stop the server promptly with exit code 0") {
  for (const int sig : {SIGTERM, SIGINT}) {
    INFO("signal " << sig);
    ServerProcess server({"--time-scale", "100", "--sse-heartbeat", "0.05"});
    auto client = clientOf(server);
    const std::string id = postJob(client, "/api/hello").at("jobId");

    // A long-poll and an event stream are open when the signal arrives.
    std::optional<int> longPollStatus;
    std::latch streaming(1);
    std::thread longPoll([&] {
      auto c = clientOf(server);
      auto r = c.Get(("/api/jobs/" + id + "?wait=30").c_str());
      if (r) longPollStatus = r->status;
    });
    std::thread stream([&] {
      auto c = clientOf(server);
      bool counted = false;
      (void)c.Get(("/api/jobs/" + id + "/events").c_str(), [&](const char*, std::size_t) {
        if (!counted) streaming.count_down();
        counted = true;
        return true;
      });
      if (!counted) streaming.count_down();
    });
    streaming.wait();
    server.signal(sig);
    const auto code = server.waitExit(20s);
    longPoll.join();
    stream.join();
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    if (longPollStatus) CHECK(*longPollStatus == 200);
  }
}

TEST_CASE("200 concurrent clients submit and poll to completion", "[load]") {
  constexpr int kClients = 200;
  ServerProcess server({"--time-scale", "0.01", "--threads", "256"});
  std::atomic<int> accepted{0}, completed{0}, serverErrors{0}, transportErrors{0}, otherAnswers{0};
  std::mutex failuresMutex;
  std::vector<std::string> failures;
  std::latch start(kClients);
  std::vector<std::thread> clients;
  clients.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto client = clientOf(server);
      client.set_keep_alive(true);
      auto note = [&](const std::string& what) {
        std::lock_guard lock(failuresMutex);
        failures.push_back("client " + std::to_string(i) + ": " + what);
      };
      auto answered = [&](const httplib::Result& result, int expected) {
        if (!result) {
          ++transportErrors;
          note(httplib::to_string(result.error()));
          return false;
        }
        if (result->status >= 500) ++serverErrors;
        if (result->status == expected) return true;
        ++otherAnswers;
        note("answered " + std::to_string(result->status) + ": " + result->body);
        return false;
      };
      start.arrive_and_wait();
      auto posted = client.Post("/api/hello", json{{"name", "user" + std::to_string(i)}}.dump(),
                                "application/json");
      if (!answered(posted, 202)) return;
      ++accepted;
      const std::string location = posted->get_header_value("Location");
      for (int round = 0; round < 20; ++round) {
        auto polled = client.Get((location + "?wait=30").c_str());
        if (!answered(polled, 200)) return;
        const json job = json::parse(polled->body);
        const std::string status = job.at("status");
        if (status == "COMPLETED") {
          if (job.at("result") == "Hello, User" + std::to_string(i) + "!") {
            ++completed;
          } else {
            note("wrong result " + job.at("result").dump());
          }
          return;
        }
        if (status != "PENDING" && status != "RUNNING") return note("ended " + status);
      }
      note("never finished");
    });
  }
  for (auto& t : clients) t.join();
  for (const auto& failure : failures) UNSCOPED_INFO(failure);
  CHECK(transportErrors == 0);
  CHECK(serverErrors == 0);
  CHECK(otherAnswers == 0);
  CHECK(accepted == kClients);
  CHECK(completed == kClients);

  auto client = clientOf(server);
  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  const auto values = parseMetrics(metrics->body);
  CHECK(values.at("jobtrack_jobs_submitted_total") == kClients);
  CHECK(values.at("jobtrack_jobs{status=\"COMPLETED\"}") == kClients);
  CHECK(values.at("jobtrack_jobs{status=\"PENDING\"}") == 0);
  CHECK(values.at("jobtrack_jobs{status=\"RUNNING\"}") == 0);
  CHECK(values.at("jobtrack_http_requests_total{code=\"202\"}") == kClients);
  double answered200 = values.at("jobtrack_http_requests_total{code=\"200\"}");
  CHECK(answered200 >= kClients);  // at least one poll per job
  for (const auto& [name, value] : values) {
    if (name.rfind("jobtrack_http_requests_total{code=\"", 0) == 0 &&
        name != "jobtrack_http_requests_total{code=\"200\"}" &&
        name != "jobtrack_http_requests_total{code=\"202\"}") {
      FAIL("unexpected answers: " << name << " " << value);
    }
  }
}
