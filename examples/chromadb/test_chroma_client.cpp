// Tests of ChromaDbClient against a real Chroma server.
//
// Run them through scripts/with-chroma, which starts a server and sets
//   CHROMA_URL        the server to test against
//   CHROMA_START_CMD  "CMD DATA_DIR [PORT]" starts another server, prints "PID PORT"
// Without CHROMA_URL the tests fail when CI is set and are skipped otherwise.
// Collection names carry a random suffix, so reruns on one server do not clash.

#include "chroma_client.hpp"
#include "chroma_test_support.hpp"
#include "embedding.hpp"

#include "catch.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <random>
#include <signal.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace chroma = jobtrack::examples::chroma;
using namespace std::chrono_literals;

namespace {

using jobtrack::examples::chroma::testing::requiredEnv;

std::string uniqueName(const std::string& purpose) {
  return jobtrack::examples::chroma::testing::uniqueName("jobtrack-test", purpose);
}

/// Deletes a collection when the test leaves, whatever happened.
class CollectionGuard {
 public:
  CollectionGuard(const chroma::ChromaDbClient& client, std::string name)
      : client_(client), name_(std::move(name)) {}
  CollectionGuard(const CollectionGuard&) = delete;
  CollectionGuard& operator=(const CollectionGuard&) = delete;
  ~CollectionGuard() {
    try {
      client_.deleteCollection(name_);
    } catch (const std::exception&) {  // already gone, or the server is down
    }
  }

 private:
  const chroma::ChromaDbClient& client_;
  std::string name_;
};

/// A TCP port on 127.0.0.1 where nothing listens (bound once, then released).
int unusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  REQUIRE(bound);
  return ntohs(address.sin_port);
}

chroma::ChromaDbOptions optionsFor(const std::string& url) {
  chroma::ChromaDbOptions options;
  options.baseUrl = url;
  options.initialBackoff = 10ms;
  return options;
}

/// Polls until `client` reports the server unavailable, at most `timeout`.
/// Polling (50 ms interval): the server is not our child process, so there is
/// no exit event to wait on. Returns whether it became unavailable.
bool waitUntilUnavailable(const chroma::ChromaDbClient& client, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      (void)client.heartbeat();
    } catch (const chroma::ChromaUnavailableError&) {
      return true;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

/// A Chroma server started through CHROMA_START_CMD, stopped with SIGTERM.
class ChromaServer {
 public:
  /// Starts a server on dataDir (and port, when given); the start command
  /// returns once the server answers its heartbeat.
  ChromaServer(std::string startCommand, std::filesystem::path dataDir)
      : startCommand_(std::move(startCommand)), dataDir_(std::move(dataDir)) {
    start(std::nullopt);
  }
  ChromaServer(const ChromaServer&) = delete;
  ChromaServer& operator=(const ChromaServer&) = delete;
  ~ChromaServer() { stop(); }

  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// SIGTERM, then waits (bounded) until the port stops answering.
  void stop() {
    if (pid_ <= 0) {
      return;
    }
    ::kill(pid_, SIGTERM);
    pid_ = 0;
    auto probeOptions = optionsFor(url());
    probeOptions.maxRetries = 0;
    probeOptions.readTimeout = 1s;
    CHECK(waitUntilUnavailable(chroma::ChromaDbClient(probeOptions), 30s));
  }

  /// Starts again on the same port and data directory.
  void restart() { start(port_); }

 private:
  void start(std::optional<int> port) {
    std::string command = startCommand_ + " '" + dataDir_.string() + "'";
    if (port) {
      command += " " + std::to_string(*port);
    }
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    int pid = 0;
    int actualPort = 0;
    const int fields = std::fscanf(pipe, "%d %d", &pid, &actualPort);
    const int status = ::pclose(pipe);
    INFO("start command: " << command);
    REQUIRE(status == 0);
    REQUIRE(fields == 2);
    pid_ = pid;
    port_ = actualPort;
  }

  std::string startCommand_;
  std::filesystem::path dataDir_;
  int pid_ = 0;
  int port_ = 0;
};

/// Whether text contains part (Catch2 v2 and v3 name their matchers differently).
bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<float> repeated(std::size_t dimension, float value) {
  return std::vector<float>(dimension, value);
}

}  // namespace

TEST_CASE("heartbeat, version and pre-flight checks answer", "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) {
    return;
  }
  const chroma::ChromaDbClient client(optionsFor(*url));
  CHECK(client.heartbeat() > 0);
  const auto version = client.version();
  INFO("version " << version);
  CHECK(!version.empty());
  CHECK(std::isdigit(static_cast<unsigned char>(version.front())) != 0);
  CHECK(client.maxBatchSize() >= 100);  // the batch size the tests use
}

TEST_CASE("collections: create, get, list, get-or-create, conflict, delete", "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) {
    return;
  }
  const chroma::ChromaDbClient client(optionsFor(*url));
  const auto name = uniqueName("lifecycle");
  CollectionGuard guard(client, name);

  const auto created = client.createCollection(name, {{"purpose", "test"}, {"version", 1}});
  CHECK(created.name == name);
  CHECK(!created.id.empty());
  CHECK(created.metadata == nlohmann::json{{"purpose", "test"}, {"version", 1}});
  CHECK(created.tenant == "default_tenant");
  CHECK(created.database == "default_database");

  const auto fetched = client.getCollection(name);
  CHECK(fetched.id == created.id);
  CHECK(fetched.metadata == created.metadata);

  const auto all = client.listCollections();
  CHECK(std::any_of(all.begin(), all.end(), [&](const auto& c) { return c.id == created.id; }));

  SECTION("get-or-create twice returns the same collection") {
    const auto first = client.createCollection(name, nullptr, /*getOrCreate=*/true);
    const auto second = client.createCollection(name, nullptr, /*getOrCreate=*/true);
    CHECK(first.id == created.id);
    CHECK(second.id == created.id);
  }

  SECTION("create of an existing name is a ChromaConflictError") {
    try {
      (void)client.createCollection(name);
      FAIL("expected ChromaConflictError");
    } catch (const chroma::ChromaConflictError& error) {
      const std::string what = error.what();
      INFO(what);
      CHECK(error.status() == 409);
      CHECK(error.info().method == "POST");
      CHECK(contains(what, "POST"));
      CHECK(
          contains(what, "/api/v2/tenants/default_tenant/databases/default_database/collections"));
      CHECK(contains(what, "409"));
      CHECK(contains(what, "already exists"));
    }
  }

  SECTION("delete, then get is a ChromaNotFoundError") {
    client.deleteCollection(name);
    CHECK_THROWS_AS(client.getCollection(name), chroma::ChromaNotFoundError);
    CHECK_THROWS_AS(client.deleteCollection(name), chroma::ChromaNotFoundError);
    CHECK_THROWS_AS(client.count(created.id), chroma::ChromaNotFoundError);
  }
}

TEST_CASE("an invalid collection name is a ChromaBadRequestError with Chroma's message",
          "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) {
    return;
  }
  const chroma::ChromaDbClient client(optionsFor(*url));
  try {
    (void)client.createCollection("x");  // too short: 3-512 characters
    FAIL("expected ChromaBadRequestError");
  } catch (const chroma::ChromaBadRequestError& error) {
    CHECK(error.status() == 400);
    CHECK(contains(std::string(error.what()), "Expected a name"));
  }
}

TEST_CASE("add 1,000 documents in batches, count, query nearest first, delete records",
          "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) {
    return;
  }
  const chroma::ChromaDbClient client(optionsFor(*url));
  const chroma::HashingEmbeddingFunction embedder;
  const auto name = uniqueName("documents");
  CollectionGuard guard(client, name);
  const auto collection = client.createCollection(name);

  const std::vector<std::string> topics{"rivers",  "compilers", "gardens", "orbits",   "harbours",
                                        "violins", "glaciers",  "markets", "lanterns", "forests"};
  const std::vector<std::string> verbs{"describes",  "measures", "questions", "maps",
                                       "celebrates", "compares", "predicts"};
  auto documentText = [&](std::size_t i) {
    return "Report " + std::to_string(i) + " " + verbs[i % verbs.size()] + " " +
           topics[i % topics.size()] + " and " + topics[(i / topics.size()) % topics.size()] +
           " in volume " + std::to_string(i / 7);
  };

  constexpr std::size_t total = 1000;
  constexpr std::size_t batchSize = 100;
  for (std::size_t start = 0; start < total; start += batchSize) {
    std::vector<std::string> ids;
    std::vector<std::string> documents;
    std::vector<nlohmann::json> metadatas;
    for (std::size_t i = start; i < start + batchSize; ++i) {
      ids.push_back("doc-" + std::to_string(i));
      documents.push_back(documentText(i));
      metadatas.push_back({{"index", i}, {"topic", topics[i % topics.size()]}});
    }
    client.add(collection.id, ids, embedder.embedAll(documents), documents, metadatas);
  }
  REQUIRE(client.count(collection.id) == total);
  CHECK(client.getCollection(name).dimension == static_cast<std::int64_t>(embedder.dimension()));

  SECTION("the embedding of a document's own text finds it first") {
    const std::vector<std::size_t> probes{0, 417, 999};
    std::vector<chroma::Embedding> queries;
    for (auto i : probes) {
      queries.push_back(embedder.embed(documentText(i)));
    }
    const auto results = client.query(collection.id, queries, 5);
    REQUIRE(results.size() == probes.size());
    for (std::size_t q = 0; q < probes.size(); ++q) {
      INFO("probe doc-" << probes[q]);
      REQUIRE(results[q].size() == 5);
      const auto& best = results[q].front();
      CHECK(best.id == "doc-" + std::to_string(probes[q]));
      CHECK(best.document == documentText(probes[q]));
      CHECK(best.metadata.at("index") == probes[q]);
      REQUIRE(best.distance.has_value());
      CHECK(*best.distance < 1e-4F);
      for (std::size_t i = 1; i < results[q].size(); ++i) {
        CHECK(*results[q][i - 1].distance <= *results[q][i].distance);
      }
    }
  }

  SECTION("include selects the returned fields") {
    const auto results = client.query(collection.id, {embedder.embed(documentText(5))}, 2,
                                      {chroma::ChromaInclude::Embeddings});
    REQUIRE(results.size() == 1);
    REQUIRE(results[0].size() == 2);
    const auto& best = results[0].front();
    CHECK(best.id == "doc-5");
    CHECK(!best.document.has_value());
    CHECK(!best.distance.has_value());
    CHECK(best.metadata.is_null());
    REQUIRE(best.embedding.has_value());
    CHECK(best.embedding->size() == embedder.dimension());
  }

  SECTION("an embedding of the wrong dimension is a ChromaBadRequestError") {
    CHECK_THROWS_AS(client.add(collection.id, {"bad"}, {repeated(3, 0.5F)}),
                    chroma::ChromaBadRequestError);
    CHECK_THROWS_AS(client.query(collection.id, {repeated(3, 0.5F)}, 1),
                    chroma::ChromaBadRequestError);
  }

  SECTION("deleteRecords removes records") {
    client.deleteRecords(collection.id, {"doc-1", "doc-2", "no-such-id"});
    CHECK(client.count(collection.id) == total - 2);
  }
}

TEST_CASE("one client serves several threads at once", "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) {
    return;
  }
  const chroma::ChromaDbClient client(optionsFor(*url));
  const chroma::HashingEmbeddingFunction embedder(64);
  const auto name = uniqueName("threads");
  CollectionGuard guard(client, name);
  const auto collection = client.createCollection(name);

  constexpr int threads = 4;
  constexpr int perThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      try {
        for (int i = 0; i < perThread; ++i) {
          const std::string text = "thread " + std::to_string(t) + " item " + std::to_string(i);
          client.add(collection.id, {"t" + std::to_string(t) + "-" + std::to_string(i)},
                     {embedder.embed(text)}, {text});
          (void)client.query(collection.id, {embedder.embed(text)}, 1);
        }
      } catch (const std::exception& error) {
        std::cerr << "worker " << t << ": " << error.what() << '\n';
        ++failures;
      }
    });
  }
  for (auto& worker : workers) {
    worker.join();
  }
  CHECK(failures == 0);
  CHECK(client.count(collection.id) == threads * perThread);
}

TEST_CASE(
    "a client to a port where nothing listens throws ChromaUnavailableError after its retries",
    "[chroma]") {
  chroma::ChromaDbOptions options;
  options.baseUrl = "http://127.0.0.1:" + std::to_string(unusedPort());
  options.maxRetries = 2;
  options.initialBackoff = 1ms;
  options.connectTimeout = 500ms;
  const chroma::ChromaDbClient client(options);
  try {
    (void)client.heartbeat();
    FAIL("expected ChromaUnavailableError");
  } catch (const chroma::ChromaUnavailableError& error) {
    const std::string what = error.what();
    INFO(what);
    CHECK(error.status() == 0);
    CHECK(error.info().method == "GET");
    CHECK(error.info().path == "/api/v2/heartbeat");
    CHECK(contains(what, "after 3 attempts"));
    CHECK(contains(what, options.baseUrl));
  }
  CHECK_THROWS_AS(client.createCollection("anything"), chroma::ChromaUnavailableError);
}

TEST_CASE("retry policy: 502/503/504 are retried, 4xx and other 5xx are not", "[chroma]") {
  // An in-process stand-in server: a real Chroma cannot be made to answer
  // 503 on demand. Each route counts its requests.
  httplib::Server fake;
  std::atomic<int> heartbeatCalls{0};
  std::atomic<int> unavailableCalls{0};
  std::atomic<int> badRequestCalls{0};
  std::atomic<int> serverErrorCalls{0};
  std::mutex headerMutex;
  std::string lastToken;
  std::string lastAuthorization;
  auto chromaError = [](httplib::Response& response, int status, const char* type,
                        const char* message) {
    response.status = status;
    response.set_content(nlohmann::json{{"error", type}, {"message", message}}.dump(),
                         "application/json");
  };
  fake.Get("/api/v2/heartbeat", [&](const httplib::Request& request, httplib::Response& response) {
    {
      std::lock_guard lock(headerMutex);
      lastToken = request.get_header_value("X-Chroma-Token");
      lastAuthorization = request.get_header_value("Authorization");
    }
    if (++heartbeatCalls <= 2) {
      chromaError(response, heartbeatCalls == 1 ? 503 : 502, "Unavailable", "warming up");
      return;
    }
    response.set_content(R"({"nanosecond heartbeat": 42})", "application/json");
  });
  fake.Get("/api/v2/version", [&](const httplib::Request&, httplib::Response& response) {
    ++unavailableCalls;
    chromaError(response, 504, "GatewayTimeout", "upstream timed out");
  });
  const std::string collections =
      "/api/v2/tenants/default_tenant/databases/default_database/collections";
  fake.Post(collections, [&](const httplib::Request&, httplib::Response& response) {
    ++badRequestCalls;
    chromaError(response, 422, "InvalidArgumentError", "bad metadata");
  });
  fake.Get(collections + "/broken", [&](const httplib::Request&, httplib::Response& response) {
    ++serverErrorCalls;
    chromaError(response, 500, "InternalError", "disk on fire");
  });
  const int port = fake.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  // The socket listens from here on; requests queue until the loop accepts.
  std::thread loop([&] { fake.listen_after_bind(); });
  // Stops the fake on every exit path. stop() is a no-op until the accept
  // loop runs (is_running()), which the first answered request proves; the
  // bounded wait only matters when a check failed before that.
  struct StopOnExit {
    httplib::Server& server;
    std::thread& thread;
    ~StopOnExit() {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      server.stop();
      thread.join();
    }
  } stopOnExit{fake, loop};

  chroma::ChromaDbOptions options;
  options.baseUrl = "http://127.0.0.1:" + std::to_string(port);
  options.maxRetries = 2;
  options.initialBackoff = 1ms;
  options.readTimeout = 5s;
  options.authToken = "secret";
  const chroma::ChromaDbClient client(options);

  CHECK(client.heartbeat() == 42);
  CHECK(heartbeatCalls == 3);
  {
    std::lock_guard lock(headerMutex);
    CHECK(lastToken == "secret");
    CHECK(lastAuthorization.empty());
  }

  try {
    (void)client.version();
    FAIL("expected ChromaUnavailableError");
  } catch (const chroma::ChromaUnavailableError& error) {
    INFO(error.what());
    CHECK(error.status() == 504);
    CHECK(contains(error.what(), "upstream timed out"));
  }
  CHECK(unavailableCalls == 3);

  CHECK_THROWS_AS(client.createCollection("valid-name"), chroma::ChromaBadRequestError);
  CHECK(badRequestCalls == 1);

  try {
    (void)client.getCollection("broken");
    FAIL("expected ChromaServerError");
  } catch (const chroma::ChromaServerError& error) {
    CHECK(error.status() == 500);
    CHECK(error.info().errorType == "InternalError");
    CHECK(contains(error.what(),
                   "GET " + collections + "/broken -> 500 InternalError: disk on fire"));
  }
  CHECK(serverErrorCalls == 1);

  options.authHeader = chroma::ChromaAuthHeader::AuthorizationBearer;
  heartbeatCalls = 2;  // answer the next heartbeat at once
  CHECK(chroma::ChromaDbClient(options).heartbeat() == 42);
  {
    std::lock_guard lock(headerMutex);
    CHECK(lastToken.empty());
    CHECK(lastAuthorization == "Bearer secret");
  }
}

TEST_CASE("a client works again after its Chroma server is stopped and restarted", "[chroma]") {
  const auto startCommand = requiredEnv("CHROMA_START_CMD");
  if (!startCommand) {
    return;
  }
  const auto workDir = std::filesystem::temp_directory_path() / uniqueName("restart");
  std::filesystem::create_directories(workDir);
  {
    ChromaServer server(*startCommand, workDir / "data");
    auto options = optionsFor(server.url());
    options.maxRetries = 1;
    options.initialBackoff = 1ms;
    const chroma::ChromaDbClient client(options);
    const chroma::HashingEmbeddingFunction embedder(32);

    const auto collection = client.createCollection(uniqueName("persisted"));
    const std::vector<std::string> texts{"alpha beta", "gamma delta", "epsilon zeta"};
    client.add(collection.id, {"a", "b", "c"}, embedder.embedAll(texts), texts);
    REQUIRE(client.count(collection.id) == 3);

    server.stop();
    CHECK_THROWS_AS(client.heartbeat(), chroma::ChromaUnavailableError);
    CHECK_THROWS_AS(client.count(collection.id), chroma::ChromaUnavailableError);

    server.restart();  // returns once the server answers its heartbeat
    CHECK(client.heartbeat() > 0);
    CHECK(client.getCollection(collection.name).id == collection.id);
    CHECK(client.count(collection.id) == 3);
    const auto results = client.query(collection.id, {embedder.embed("gamma delta")}, 1);
    REQUIRE(results.size() == 1);
    REQUIRE(results[0].size() == 1);
    CHECK(results[0][0].id == "b");
  }
  std::error_code ignored;
  std::filesystem::remove_all(workDir, ignored);
}

TEST_CASE("options are validated", "[chroma]") {
  auto withUrl = [](std::string url) {
    chroma::ChromaDbOptions options;
    options.baseUrl = std::move(url);
    return options;
  };
  CHECK_THROWS_AS(chroma::ChromaDbClient(withUrl("127.0.0.1:8000")), std::invalid_argument);
  CHECK_THROWS_AS(chroma::ChromaDbClient(withUrl("ftp://127.0.0.1:8000")), std::invalid_argument);
  CHECK_THROWS_AS(chroma::ChromaDbClient(withUrl("http://:8000")), std::invalid_argument);
  CHECK_THROWS_AS(chroma::ChromaDbClient(withUrl("http://host:99999")), std::invalid_argument);
  CHECK_THROWS_AS(chroma::ChromaDbClient(withUrl("http://host:80a")), std::invalid_argument);
  CHECK_NOTHROW(chroma::ChromaDbClient(withUrl("http://[::1]:8000/")));
  CHECK_NOTHROW(chroma::ChromaDbClient(withUrl("https://chroma.example/prefix")));

  const auto parsed = chroma::detail::parseUrl("HTTPS://chroma.example/base/");
  CHECK(parsed.scheme == "https");
  CHECK(parsed.host == "chroma.example");
  CHECK(parsed.port == 443);
  CHECK(parsed.basePath == "/base");
  const auto ipv6 = chroma::detail::parseUrl("http://[::1]:8123");
  CHECK(ipv6.host == "[::1]");
  CHECK(ipv6.port == 8123);

  auto negative = withUrl("http://127.0.0.1:8000");
  negative.maxRetries = -1;
  CHECK_THROWS_AS(chroma::ChromaDbClient(negative), std::invalid_argument);
}

TEST_CASE("HashingEmbeddingFunction is deterministic, normalised and word-sensitive", "[chroma]") {
  const chroma::HashingEmbeddingFunction embedder(128);
  const auto a = embedder.embed("The quick brown fox");
  const auto b = embedder.embed("the QUICK, brown fox!");
  const auto c = embedder.embed("a slow green turtle");
  REQUIRE(a.size() == 128);
  CHECK(a == b);  // case and punctuation do not matter
  auto norm = [](const std::vector<float>& v) {
    double sum = 0;
    for (float x : v) {
      sum += static_cast<double>(x) * x;
    }
    return std::sqrt(sum);
  };
  auto squaredL2 = [](const std::vector<float>& x, const std::vector<float>& y) {
    double sum = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      sum += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    }
    return sum;
  };
  CHECK(std::abs(norm(a) - 1.0) < 1e-5);
  const auto near = embedder.embed("the quick brown dog");
  CHECK(squaredL2(a, near) < squaredL2(a, c));
  CHECK(embedder.embed("  ,;  ") == std::vector<float>(128, 0.0F));
  CHECK_THROWS_AS(chroma::HashingEmbeddingFunction(0), std::invalid_argument);
}
