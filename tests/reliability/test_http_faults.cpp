// Reliability of the HTTP example under hostile input and hostile clients.
//
// In process (App::handle): markup in job names never reaches HTML; every
// error is problem+json, never HTML.
// Over 127.0.0.1 (a jobtrack_http_server child on port 0): clients that hang
// up mid long-poll or mid event stream, slow clients (cpp-httplib's 5 s read
// timeout), the keep-alive limits, and 1000 concurrent long-polls.
//
// No sleeps: every wait is a blocking read or poll() on a socket, with a
// generous bound. Times are measured and printed (docs/reliability.md), never
// asserted.

#include "app.hpp"
#include "command_line.hpp"
#include "server_process.hpp"

#include "catch.hpp"
#include <nlohmann/json.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

extern char** environ;

using nlohmann::json;
using namespace std::chrono_literals;
namespace http = jobtrack::examples::http;

namespace {

// ---- in process -----------------------------------------------------------------

http::Request request(std::string method, std::string path, std::string body = {}) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  if (!r.body.empty()) r.headers.emplace("Content-Type", "application/json");
  return r;
}

// ---- over the network -------------------------------------------------------------

using jobtrack::testing::ServerProcess;

/// A raw TCP connection to 127.0.0.1:port.
class Connection {
 public:
  explicit Connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
  }
  ~Connection() { close(); }
  Connection(Connection&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), received_(std::move(other.received_)) {}
  Connection& operator=(Connection&&) = delete;

  void send(const std::string& data) const {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
      sent += static_cast<std::size_t>(n);
    }
  }
  /// Abortive close (RST), as a client process that dies.
  void reset() {
    linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// Reads until `done(received)` or the peer closes; false on timeout.
  template <class Done>
  bool readUntil(Done&& done, std::chrono::milliseconds bound = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done(received_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
      char buffer[8192];
      // ACK at once: the server writes head and body separately, and Nagle
      // would hold the body back for our delayed ACK (40 ms per request).
      const int one = 1;
      ::setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        closedByPeer_ = true;
        return done(received_);
      }
      received_.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Waits until the server closes the connection (EOF or reset); false on timeout.
  bool waitClosed(std::chrono::milliseconds bound = 60s) {
    readUntil([&](const std::string&) { return closedByPeer_; }, bound);
    return closedByPeer_;
  }
  [[nodiscard]] const std::string& received() const noexcept { return received_; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  std::string& buffer() noexcept { return received_; }
  void markClosed() noexcept { closedByPeer_ = true; }

 private:
  int fd_;
  std::string received_;
  bool closedByPeer_ = false;
};

/// Whether `data` holds `count` complete Content-Length responses.
std::size_t completeResponses(const std::string& data) {
  std::size_t count = 0;
  std::size_t at = 0;
  for (;;) {
    const auto headEnd = data.find("\r\n\r\n", at);
    if (headEnd == std::string::npos) return count;
    const auto length = data.find("Content-Length: ", at);
    std::size_t bodySize = 0;
    if (length != std::string::npos && length < headEnd)
      bodySize = std::stoul(data.substr(length + 16));
    if (data.size() < headEnd + 4 + bodySize) return count;
    ++count;
    at = headEnd + 4 + bodySize;
  }
}

std::string bodyOf(const std::string& response) {
  const auto headEnd = response.find("\r\n\r\n");
  return headEnd == std::string::npos ? std::string() : response.substr(headEnd + 4);
}

int statusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

/// One request on a fresh connection (Connection: close), answered in full.
std::string exchange(int port, const std::string& method, const std::string& target,
                     const std::string& body = {}) {
  Connection c(port);
  std::string head =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty())
    head +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  c.send(head + "\r\n" + body);
  REQUIRE(c.readUntil([](const std::string& d) { return completeResponses(d) == 1; }));
  return c.received();
}

std::string submitJob(int port, const std::string& name = "x") {
  const std::string answer = exchange(port, "POST", "/api/hello", json{{"name", name}}.dump());
  REQUIRE(statusOf(answer) == 202);
  return json::parse(bodyOf(answer)).at("jobId");
}

std::string longPoll(const std::string& id, double seconds) {
  return "GET /api/jobs/" + id + "?wait=" + std::to_string(seconds) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

std::string eventStream(const std::string& id) {
  return "GET /api/jobs/" + id + "/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

bool hasFirstEvent(const std::string& d) {
  return d.find("data: ") != std::string::npos &&
         d.find("\n\n", d.find("data: ")) != std::string::npos;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Sends one request on each of `count` connections at once and reads every
/// answer with poll(); returns the status of each (0: none within the bound).
std::vector<int> concurrentRequests(int port, std::size_t count, const std::string& requestText,
                                    std::chrono::milliseconds bound) {
  std::vector<Connection> connections;
  connections.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    connections.emplace_back(port);
    connections.back().send(requestText);
  }
  std::vector<int> statuses(count, 0);
  std::size_t open = count;
  const auto deadline = std::chrono::steady_clock::now() + bound;
  std::vector<pollfd> fds(count);
  while (open > 0) {
    std::vector<std::size_t> index;
    fds.clear();
    for (std::size_t i = 0; i < count; ++i) {
      if (statuses[i] == 0 && connections[i].fd() >= 0) {
        fds.push_back({connections[i].fd(), POLLIN, 0});
        index.push_back(i);
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (ready <= 0) break;
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      Connection& c = connections[index[k]];
      char buffer[8192];
      const ssize_t n = ::recv(c.fd(), buffer, sizeof buffer, 0);
      if (n > 0) c.buffer().append(buffer, static_cast<std::size_t>(n));
      if (n <= 0 || completeResponses(c.received()) == 1) {
        statuses[index[k]] = completeResponses(c.received()) == 1 ? statusOf(c.received()) : -1;
        c.close();
        --open;
      }
    }
  }
  return statuses;
}

}  // namespace

// ---- security: markup never reaches HTML ------------------------------------------

TEST_CASE("a job named <script> comes back as a JSON string and never appears in the HTML page",
          "[reliability][http][security]") {
  http::AppOptions options;
  options.timeScale = 0.001;
  http::App app(options);
  const std::string pageBefore = app.handle(request("GET", "/")).body;

  const std::string hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
  const http::Response accepted =
      app.handle(request("POST", "/api/hello", json{{"name", hostile}}.dump()));
  REQUIRE(accepted.status == 202);
  const std::string id = json::parse(accepted.body).at("jobId");

  const http::Response job = app.handle(request("GET", "/api/jobs/" + id));
  CHECK(job.contentType == "application/json");
  CHECK(json::parse(job.body).at("name") == "hello:" + hostile);
  const http::Response list = app.handle(request("GET", "/api/jobs"));
  CHECK(list.contentType == "application/json");
  CHECK(json::parse(list.body).at("jobs").at(0).at("name") == "hello:" + hostile);

  // The page is static: it holds no job data, before or after; the browser
  // fills it in with textContent (examples/http_server/tests/browser checks the rendering).
  const http::Response page = app.handle(request("GET", "/"));
  CHECK(page.body == pageBefore);
  CHECK(page.body.find(id) == std::string::npos);
  CHECK(page.body.find("alert(") == std::string::npos);
  CHECK(page.body.find("innerHTML") == std::string::npos);
  CHECK(page.body.find("insertAdjacentHTML") == std::string::npos);
  CHECK(page.body.find("document.write") == std::string::npos);
  CHECK(page.header("Content-Security-Policy").has_value());
  CHECK(page.header("X-Content-Type-Options") == "nosniff");
}

TEST_CASE("malformed requests echoing markup are answered as problem+json, never HTML",
          "[reliability][http][security]") {
  http::App app;
  const std::string markup = "<script>alert(1)</script>";
  const http::Response answers[] = {
      app.handle(request("GET", "/" + markup)),
      app.handle(request("GET", "/api/jobs/" + markup)),
      app.handle(request("DELETE", "/api/jobs/" + markup)),
      app.handle(request(markup, "/")),
      app.handle(request("POST", "/api/hello", "{\"name\": " + markup + "}")),
      app.handle([&] {
        auto r = request("POST", "/api/hello", "{}");
        r.headers.erase("Content-Type");
        r.headers.emplace("Content-Type", markup);
        return r;
      }()),
      app.handle([&] {
        auto r = request("GET", "/api/jobs");
        r.query.emplace("status", markup);
        return r;
      }()),
  };
  for (const http::Response& answer : answers) {
    INFO(answer.body);
    CHECK(answer.status >= 400);
    CHECK(answer.contentType == "application/problem+json");
    // The input may be quoted in "detail", but only inside a JSON string.
    CHECK_NOTHROW(json::parse(answer.body).at("detail").get<std::string>());
  }
}

TEST_CASE("the server binds 127.0.0.1 by default and caps body size, list limit and long-poll wait",
          "[reliability][http][security]") {
  const auto parsed = http::parseCommandLine({});
  REQUIRE(std::holds_alternative<http::CommandLine>(parsed));
  const auto& defaults = std::get<http::CommandLine>(parsed);
  CHECK(defaults.server.host == "127.0.0.1");
  CHECK(defaults.server.maxBodyBytes == 64 * 1024);
  CHECK(defaults.app.bodyLimits.maxBytes == 64 * 1024);
  CHECK(defaults.app.jobsApi.maxLimit == 100);
  CHECK(defaults.app.jobsApi.maxWait == 30s);

  http::AppOptions options;
  options.timeScale = 1000;  // the job runs for the whole test
  options.jobsApi.maxWait = 20ms;
  http::App app(options);
  const http::Response accepted = app.handle(request("POST", "/api/hello", R"({"name":"slow"})"));
  const std::string id = json::parse(accepted.body).at("jobId");

  auto longPoll = request("GET", "/api/jobs/" + id);
  longPoll.query.emplace("wait", "1000000");  // capped to maxWait: answers with the running job
  const http::Response polled = app.handle(longPoll);
  CHECK(polled.status == 200);
  CHECK_FALSE(isTerminal(json::parse(polled.body).at("status").get<jobtrack::JobStatus>()));

  auto list = request("GET", "/api/jobs");
  list.query.emplace("limit", "1000");
  CHECK(json::parse(app.handle(list).body).at("limit") == 100);

  CHECK(app.handle(request("POST", "/api/hello", std::string(64 * 1024 + 1, ' '))).status == 413);
}

// ---- hostile clients, over 127.0.0.1 ------------------------------------------------

TEST_CASE(
    "clients that hang up mid event stream or mid long-poll: the server frees their threads and "
    "keeps serving",
    "[reliability][http][network]") {
  // Four connection threads only, so a thread that was not freed shows.
  ServerProcess server({"--threads", "4", "--time-scale", "1000", "--sse-heartbeat", "0.05"});
  const std::string id = submitJob(server.port());
  const std::size_t filesBefore = server.openFiles();

  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    // Four streams take every thread; each hangs up after its first event.
    std::vector<Connection> streams;
    for (int i = 0; i < 4; ++i) {
      streams.emplace_back(server.port());
      streams.back().send(eventStream(id));
    }
    for (auto& s : streams) REQUIRE(s.readUntil(hasFirstEvent));
    for (std::size_t i = 0; i < streams.size(); ++i) {
      if (i % 2 == 0) {
        streams[i].reset();
      } else {
        streams[i].close();
      }
    }
    // A stream notices at its next heartbeat; four new streams then need all four threads.
    std::vector<Connection> again;
    for (int i = 0; i < 4; ++i) {
      again.emplace_back(server.port());
      again.back().send(eventStream(id));
    }
    for (auto& s : again) REQUIRE(s.readUntil(hasFirstEvent));
    for (auto& s : again) s.reset();
  }

  // Long-polls that hang up: the thread stays in tracker.wait() until the
  // wait ends (a blocked handler cannot see the disconnect), then is freed.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    Connection poll(server.port());
    poll.send(longPoll(id, 0.5));
    poll.reset();
  }
  const std::string health = exchange(server.port(), "GET", "/healthz");
  CHECK(statusOf(health) == 200);
  WARN("4 hung-up long-polls (wait=0.5 s) on 4 threads: the next request was answered after "
       << secondsSince(start) << " s");

  // Nothing leaked: the server holds no more files than at the start, give or
  // take the connections the last exchanges are still closing.
  CHECK(server.openFiles() <= filesBefore + 4);
  CHECK(server.alive());
}

TEST_CASE(
    "slow clients: a stalled request is dropped after cpp-httplib's read timeout and frees its "
    "thread",
    "[reliability][http][network]") {
  ServerProcess server({"--threads", "2", "--time-scale", "0.001"});
  // Slowloris: two connections send half a request head and stall, taking both threads.
  std::vector<Connection> stalled;
  for (int i = 0; i < 2; ++i) {
    stalled.emplace_back(server.port());
    stalled.back().send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  }
  const auto start = std::chrono::steady_clock::now();
  // Queued behind them, a normal request is served once the read timeout (5 s) drops them.
  const std::string answer = exchange(server.port(), "GET", "/healthz");
  CHECK(statusOf(answer) == 200);
  WARN("2 stalled clients on 2 threads: a normal request waited " << secondsSince(start) << " s");
  for (auto& c : stalled) CHECK(c.waitClosed());
  for (auto& c : stalled) CHECK(c.received().find("HTTP/1.1 2") == std::string::npos);
}

TEST_CASE(
    "keep-alive: an idle connection is closed after the keep-alive timeout; at most 10000 requests "
    "per connection",
    "[reliability][http][network]") {
  ServerProcess server({"--threads", "4", "--time-scale", "0.001"});
  SECTION("idle timeout") {
    Connection c(server.port());
    c.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    REQUIRE(c.readUntil([](const std::string& d) { return completeResponses(d) == 1; }));
    const auto start = std::chrono::steady_clock::now();
    CHECK(c.waitClosed());
    WARN("an idle keep-alive connection was closed after " << secondsSince(start) << " s");
  }
  SECTION("request count limit") {
    constexpr std::size_t kLimit = 10'000;  // ServerOptions::keepAliveMaxRequests
    Connection c(server.port());
    // One request at a time (a pipelined batch of 100 got 2 answers before the
    // server closed, in one try); the server answers kLimit, then closes.
    std::size_t answered = 0;
    std::string lastAnswer;
    for (std::size_t i = 0; i < kLimit + 1; ++i) {
      try {
        c.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      } catch (const std::runtime_error&) {
        break;  // closed already
      }
      if (!c.readUntil([](const std::string& d) { return completeResponses(d) >= 1; })) break;
      ++answered;
      lastAnswer = c.received();
      c.buffer().clear();
    }
    CHECK(c.waitClosed());
    CHECK(answered == kLimit);
    CHECK(lastAnswer.find("Connection: close") != std::string::npos);
  }
}

TEST_CASE("1000 concurrent long-polls are all answered: at most --threads at once, the rest queued",
          "[reliability][http][network][load]") {
  constexpr std::size_t kClients = 1000;
  SECTION("with 1024 threads every long-poll waits at once and all see the cancel") {
    ServerProcess server({"--threads", "1024", "--time-scale", "1000"});
    const std::string id = submitJob(server.port());
    std::vector<Connection> polls;
    polls.reserve(kClients);
    for (std::size_t i = 0; i < kClients; ++i) {
      polls.emplace_back(server.port());
      polls.back().send(longPoll(id, 30));
    }
    const auto start = std::chrono::steady_clock::now();
    const std::string cancelled = exchange(server.port(), "DELETE", "/api/jobs/" + id);
    CHECK((statusOf(cancelled) == 200 || statusOf(cancelled) == 202));
    std::size_t answered = 0;
    std::size_t sawCancelled = 0;
    for (auto& p : polls) {
      if (!p.readUntil([](const std::string& d) { return completeResponses(d) == 1; })) continue;
      ++answered;
      if (statusOf(p.received()) == 200 &&
          json::parse(bodyOf(p.received())).at("status") == "CANCELLED")
        ++sawCancelled;
    }
    CHECK(answered == kClients);
    CHECK(sawCancelled == kClients);
    WARN(kClients << " long-polls on 1024 threads: all answered " << secondsSince(start)
                  << " s after the cancel");
  }
  SECTION("with the default 64 threads they queue and are served as threads free up") {
    ServerProcess server({"--time-scale", "1000"});
    const std::string id = submitJob(server.port());
    const auto start = std::chrono::steady_clock::now();
    const auto statuses = concurrentRequests(server.port(), kClients, longPoll(id, 0.2), 300s);
    const auto ok = std::count(statuses.begin(), statuses.end(), 200);
    CHECK(static_cast<std::size_t>(ok) == kClients);
    WARN(kClients << " long-polls (wait=0.2 s) on 64 threads took " << secondsSince(start)
                  << " s (all waiting at once would take 0.2 s; 1000/64 rounds take >= 3.2 s)");
    CHECK(statusOf(exchange(server.port(), "GET", "/healthz")) == 200);
  }
}
