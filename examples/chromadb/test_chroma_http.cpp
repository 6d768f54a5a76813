// Tests of ChromaDbController inside the HTTP example service: the App from
// examples/http_server with the controller added through App::addController
// (exactly what `--chroma-url` wiring does), driven
//   - without sockets through App::handle (input validation, 202 answers), and
//   - over real HTTP through the cpp-httplib HttpServer against a real Chroma
//     (create, conflict, add 1,000 documents, query, delete, not found).
//
// The Chroma flow needs CHROMA_URL (scripts/with-chroma sets it); without it
// that test fails when CI is set and is skipped otherwise. Jobs are awaited
// with the service's long-poll (GET /api/jobs/{id}?wait=30), never by sleeping.

#include "app.hpp"
#include "chroma_client.hpp"
#include "chroma_service.hpp"
#include "chroma_test_support.hpp"
#include "chromadb_controller.hpp"
#include "httplib_adapter.hpp"
#include <jobtrack/jobtrack.hpp>

#include "catch.hpp"
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace chroma = jobtrack::examples::chroma;
namespace http = jobtrack::examples::http;
using namespace std::chrono_literals;

namespace {

using jobtrack::examples::chroma::testing::requiredEnv;

std::string uniqueName(const std::string& purpose) {
  return jobtrack::examples::chroma::testing::uniqueName("jobtrack-http", purpose);
}

/// A TCP port on 127.0.0.1 where nothing listens (bound once, then released).
int unusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  REQUIRE(bound);
  return ntohs(address.sin_port);
}

/// The App with the ChromaDB controller added, as the `--chroma-url` wiring does.
struct ChromaApp {
  explicit ChromaApp(const std::string& chromaUrl, int maxRetries = 3) {
    chroma::ChromaServiceOptions options;
    options.client.baseUrl = chromaUrl;
    options.client.maxRetries = maxRetries;
    options.client.initialBackoff = 10ms;
    app.addController(std::make_unique<chroma::ChromaDbController>(
        std::make_shared<chroma::ChromaDbService>(app.executor(), app.tracker(), options)));
  }
  http::App app;
};

http::Request request(std::string method, std::string path, std::string body = {},
                      std::string contentType = "application/json") {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  if (!contentType.empty()) r.headers.emplace("Content-Type", std::move(contentType));
  return r;
}

http::Request post(std::string path, const nlohmann::json& body) {
  return request("POST", std::move(path), body.dump());
}

/// REQUIREs a problem+json answer with `status`; returns its detail.
std::string problemDetail(const http::Response& response, int status) {
  INFO("answer " << response.status << ": " << response.body);
  REQUIRE(response.status == status);
  CHECK(response.contentType == "application/problem+json");
  const auto body = nlohmann::json::parse(response.body);
  CHECK(body.at("status") == status);
  return body.at("detail").get<std::string>();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

nlohmann::json documentsBody(std::size_t count) {
  nlohmann::json documents = nlohmann::json::array();
  for (std::size_t i = 0; i < count; ++i) {
    documents.push_back(
        {{"id", "doc-" + std::to_string(i)},
         {"text", "note " + std::to_string(i) + " about topic " + std::to_string(i % 17) +
                      " and subject " + std::to_string(i % 23)},
         {"metadata", {{"index", i}}}});
  }
  return {{"documents", std::move(documents)}};
}

}  // namespace

TEST_CASE("http: bad input to the ChromaDB routes is a 400 problem, before any job or Chroma call",
          "[chroma]") {
  // Chroma is never contacted: the URL points nowhere.
  ChromaApp chromaApp("http://127.0.0.1:" + std::to_string(unusedPort()), 0);
  auto& app = chromaApp.app;
  const std::string collections = "/api/chromadb/collections";

  SECTION("create") {
    CHECK(contains(problemDetail(app.handle(request("POST", collections, "{\"name\": ")), 400),
                   "not valid JSON"));
    CHECK(contains(problemDetail(app.handle(post(collections, {{"metadata", {{"a", 1}}}})), 400),
                   "'name' is required"));
    CHECK(contains(problemDetail(app.handle(post(collections, {{"name", ""}})), 400),
                   "must not be empty"));
    CHECK(contains(problemDetail(app.handle(post(collections, {{"name", 42}})), 400),
                   "must be a string"));
    CHECK(contains(problemDetail(app.handle(post(collections, {{"name", "ab"}})), 400), "3-512"));
    CHECK(contains(
        problemDetail(app.handle(post(collections, {{"name", std::string(513, 'a')}})), 400),
        "3-512"));
    CHECK(contains(problemDetail(app.handle(post(collections, {{"name", "bad name"}})), 400),
                   "only letters, digits"));
    CHECK(contains(problemDetail(app.handle(post(collections, {{"name", "_abc"}})), 400),
                   "start and end"));
    CHECK(contains(problemDetail(app.handle(post(collections, {{"name", "a..b"}})), 400), ".."));
    CHECK(contains(
        problemDetail(
            app.handle(post(collections, {{"name", "valid"}, {"metadata", {{"a", {1, 2}}}}})), 400),
        "strings, numbers and booleans"));
    CHECK(contains(
        problemDetail(app.handle(post(collections, {{"name", "valid"}, {"getOrCreate", "yes"}})),
                      400),
        "boolean"));
    CHECK(problemDetail(
              app.handle(request("POST", collections, "{\"name\":\"valid\"}", "text/plain")),
              415) != "");
    // The usual 64 KiB cap applies to this route.
    const nlohmann::json big = {{"name", "valid"},
                                {"metadata", {{"pad", std::string(70'000, 'x')}}}};
    CHECK(contains(problemDetail(app.handle(post(collections, big)), 413), "65536"));
  }

  SECTION("documents") {
    const std::string documents = collections + "/notes/documents";
    CHECK(contains(
        problemDetail(app.handle(post(collections + "/x/documents", documentsBody(1))), 400),
        "3-512"));
    CHECK(contains(problemDetail(app.handle(post(documents, {{"documents", "text"}})), 400),
                   "must be an array"));
    CHECK(contains(
        problemDetail(app.handle(post(documents, {{"documents", nlohmann::json::array()}})), 400),
        "1 to 10000"));
    CHECK(contains(problemDetail(app.handle(post(documents, nlohmann::json::object())), 400),
                   "'documents' is required"));
    CHECK(contains(problemDetail(app.handle(post(documents, documentsBody(10'001))), 400),
                   "it has 10001"));
    CHECK(contains(
        problemDetail(app.handle(post(documents, {{"documents", {{{"text", "t"}}}}})), 400),
        "'documents[0].id' is required"));
    CHECK(
        contains(problemDetail(app.handle(post(documents, {{"documents", {{{"id", "a"}}}}})), 400),
                 "'documents[0].text' is required"));
    CHECK(contains(
        problemDetail(app.handle(post(documents, {{"documents", {{{"id", "a"}, {"text", 3}}}}})),
                      400),
        "must be a string"));
    CHECK(contains(problemDetail(app.handle(post(documents, {{"documents",
                                                              {{{"id", "a"}, {"text", "t"}},
                                                               {{"id", "a"}, {"text", "u"}}}}})),
                                 400),
                   "more than once"));
    CHECK(contains(
        problemDetail(app.handle(post(documents,
                                      {{"documents",
                                        {{{"id", "a"}, {"text", "t"}, {"embedding", {1, "x"}}}}}})),
                      400),
        "array of numbers"));
    CHECK(contains(problemDetail(app.handle(post(documents, {{"documents", {1, 2}}})), 400),
                   "must be an object"));
    // Larger than 64 KiB is fine on this route, larger than 4 MiB is not.
    auto over = documentsBody(1);
    over["documents"][0]["text"] = std::string(chroma::kDocumentsBodyLimit, 'x');
    CHECK(contains(problemDetail(app.handle(post(documents, over)), 413), "4194304"));
  }

  SECTION("query") {
    const std::string query = collections + "/notes/query";
    CHECK(contains(problemDetail(app.handle(post(query, {{"n", 3}})), 400), "'text' is required"));
    for (const auto& n : {nlohmann::json(0), nlohmann::json(101), nlohmann::json(-1),
                          nlohmann::json(2.5), nlohmann::json("3"), nlohmann::json(true)}) {
      INFO("n = " << n.dump());
      CHECK(contains(problemDetail(app.handle(post(query, {{"text", "hi"}, {"n", n}})), 400),
                     "integer from 1 to 100"));
    }
    CHECK(contains(
        problemDetail(
            app.handle(post(query, {{"text", "hi"}, {"embedding", nlohmann::json::array()}})), 400),
        "1 to 65536"));
    CHECK(contains(
        problemDetail(app.handle(post(collections + "/a..b/query", {{"text", "hi"}})), 400), ".."));
  }

  CHECK(app.tracker().stats().submitted == 0);
}

TEST_CASE(
    "http: a valid request answers 202 with Location and Retry-After, and the job is "
    "polled through /api/jobs",
    "[chroma]") {
  // No Chroma at that port and no retries: the job fails fast as unavailable.
  ChromaApp chromaApp("http://127.0.0.1:" + std::to_string(unusedPort()), 0);
  auto& app = chromaApp.app;
  const auto accepted = app.handle(post("/api/chromadb/collections/notes/query", {{"text", "hi"}}));
  INFO(accepted.body);
  REQUIRE(accepted.status == 202);
  const auto body = nlohmann::json::parse(accepted.body);
  const std::string jobId = body.at("jobId");
  CHECK(body.at("status") == "PENDING");
  CHECK(accepted.header("Location") == "/api/jobs/" + jobId);
  CHECK(accepted.header("Retry-After") == "1");

  auto poll = request("GET", "/api/jobs/" + jobId, "", "");
  poll.query.emplace("wait", "30");
  const auto answer = app.handle(poll);
  REQUIRE(answer.status == 200);
  const auto snapshot = nlohmann::json::parse(answer.body);
  INFO(snapshot.dump());
  REQUIRE(snapshot.at("status") == "FAILED");
  CHECK(snapshot.at("name") == "chroma:query:notes");
  CHECK(snapshot.at("errorKind") == "exception");
  CHECK(contains(snapshot.at("error").get<std::string>(), "Chroma is unavailable"));
}

namespace {

/// The App served over HTTP on a free port, with a 4 MiB transport body cap
/// (the documents route's), stopped on every exit path.
class RunningServer {
 public:
  explicit RunningServer(http::App& app) : server_(app, options()) {
    port_ = server_.bind();
    REQUIRE(port_ > 0);
    // The socket listens from here on; requests queue until run() accepts them.
    thread_ = std::thread([this] { server_.run(); });
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;
  ~RunningServer() {
    // stop() is a no-op until run() accepts; an answered request proves it does.
    (void)client().Get("/healthz");
    server_.stop();
    thread_.join();
  }

  [[nodiscard]] httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

 private:
  static http::ServerOptions options() {
    http::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 8;
    options.maxBodyBytes = chroma::kDocumentsBodyLimit + 64 * 1024;
    return options;
  }

  http::HttpServer server_;
  int port_ = 0;
  std::thread thread_;
};

/// POSTs `body`, REQUIREs 202 and long-polls the job's Location until it
/// finishes; returns the final snapshot.
nlohmann::json runJob(httplib::Client& client, const std::string& method, const std::string& path,
                      const std::optional<nlohmann::json>& body) {
  auto accepted = method == "DELETE"
                      ? client.Delete(path)
                      : client.Post(path, body ? body->dump() : std::string(), "application/json");
  REQUIRE(accepted);
  INFO(method << " " << path << " -> " << accepted->status << " " << accepted->body);
  REQUIRE(accepted->status == 202);
  REQUIRE(accepted->has_header("Location"));
  CHECK(accepted->get_header_value("Retry-After") == "1");
  const std::string location = accepted->get_header_value("Location");
  // A generous bound made of long-polls (the service caps one at 30 s).
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto polled = client.Get(location + "?wait=30");
    REQUIRE(polled);
    REQUIRE(polled->status == 200);
    auto snapshot = nlohmann::json::parse(polled->body);
    const std::string status = snapshot.at("status");
    if (status == "COMPLETED" || status == "FAILED" || status == "CANCELLED") return snapshot;
  }
  FAIL("the job at " << location << " did not finish within 120 s");
  return {};
}

}  // namespace

TEST_CASE("http: the whole ChromaDB flow over HTTP against a real Chroma", "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) return;
  ChromaApp chromaApp(*url);
  RunningServer server(chromaApp.app);
  auto client = server.client();
  const auto name = uniqueName("flow");
  const std::string collection = "/api/chromadb/collections/" + name;

  auto created = runJob(client, "POST", "/api/chromadb/collections",
                        nlohmann::json{{"name", name}, {"metadata", {{"owner", "tests"}}}});
  INFO(created.dump());
  REQUIRE(created.at("status") == "COMPLETED");
  CHECK(created.at("result").at("name") == name);
  CHECK(created.at("result").at("metadata") == nlohmann::json{{"owner", "tests"}});
  CHECK(created.at("progress") == 100);

  const auto again =
      runJob(client, "POST", "/api/chromadb/collections", nlohmann::json{{"name", name}});
  REQUIRE(again.at("status") == "FAILED");
  CHECK(contains(again.at("error").get<std::string>(), "already exists"));
  const auto getOrCreate = runJob(client, "POST", "/api/chromadb/collections",
                                  nlohmann::json{{"name", name}, {"getOrCreate", true}});
  REQUIRE(getOrCreate.at("status") == "COMPLETED");
  CHECK(getOrCreate.at("result").at("id") == created.at("result").at("id"));

  // About 100 KB: more than the 64 KiB other routes accept.
  const auto body = documentsBody(1000);
  REQUIRE(body.dump().size() > 64 * 1024);
  const auto added = runJob(client, "POST", collection + "/documents", body);
  INFO(added.dump());
  REQUIRE(added.at("status") == "COMPLETED");
  CHECK(added.at("result") == nlohmann::json{{"added", 1000}, {"collection", name}});
  CHECK(added.at("message") == "batch 10/10");

  const std::string probe = body.at("documents").at(417).at("text");
  const auto queried =
      runJob(client, "POST", collection + "/query", nlohmann::json{{"text", probe}, {"n", 3}});
  INFO(queried.dump());
  REQUIRE(queried.at("status") == "COMPLETED");
  const auto& matches = queried.at("result").at("matches");
  REQUIRE(matches.size() == 3);
  CHECK(matches[0].at("id") == "doc-417");
  CHECK(matches[0].at("text") == probe);
  CHECK(matches[0].at("metadata") == nlohmann::json{{"index", 417}});
  CHECK(matches[0].at("distance").get<double>() <= matches[1].at("distance").get<double>());

  auto listed = client.Get("/api/jobs?name=chroma:&limit=100");
  REQUIRE(listed);
  REQUIRE(listed->status == 200);
  CHECK(nlohmann::json::parse(listed->body).at("jobs").size() == 5);

  const auto deleted = runJob(client, "DELETE", collection, std::nullopt);
  REQUIRE(deleted.at("status") == "COMPLETED");
  CHECK(deleted.at("result") == nlohmann::json{{"deleted", name}});

  const auto missing =
      runJob(client, "POST", collection + "/query", nlohmann::json{{"text", "note"}});
  REQUIRE(missing.at("status") == "FAILED");
  CHECK(contains(missing.at("error").get<std::string>(), "Not found"));

  // Bad input over the wire: the same problem documents.
  auto bad = client.Post(collection + "/query", R"({"text": "x", "n": 0})", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(bad->get_header_value("Content-Type") == "application/problem+json");
}
