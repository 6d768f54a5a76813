// Tests of ChromaDbService (jobs over a real Chroma server) and of its
// argument validation.
//
// Run them through scripts/with-chroma, which starts a server and sets
//   CHROMA_URL        the server to test against
//   CHROMA_START_CMD  "CMD DATA_DIR [PORT]" starts another server, prints "PID PORT"
// Without CHROMA_URL the tests fail when CI is set and are skipped otherwise.
//
// No test sleeps to wait for an event: they wait for jobs with
// tracker.wait(id, generous timeout) and REQUIRE a terminal snapshot, and for
// subscription events and gates on condition variables with a bound.

#include "chroma_client.hpp"
#include "chroma_service.hpp"
#include "chroma_test_support.hpp"
#include "embedding.hpp"
#include <jobtrack/jobtrack.hpp>

#include "catch.hpp"
#include <nlohmann/json.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <random>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace chroma = jobtrack::examples::chroma;
using namespace std::chrono_literals;
using jobtrack::AsyncExecutor;
using jobtrack::ErrorKind;
using jobtrack::JobId;
using jobtrack::JobStatus;
using Tracker = jobtrack::JobTracker<nlohmann::json>;
using Snapshot = Tracker::Snapshot;

namespace {

/// Generous bound for one job against a local Chroma.
constexpr auto kJobTimeout = 120s;

using jobtrack::examples::chroma::testing::requiredEnv;

std::string uniqueName(const std::string& purpose) {
  return jobtrack::examples::chroma::testing::uniqueName("jobtrack-service", purpose);
}

chroma::ChromaServiceOptions serviceOptions(const std::string& url) {
  chroma::ChromaServiceOptions options;
  options.client.baseUrl = url;
  options.client.initialBackoff = 10ms;
  return options;
}

/// Deletes a collection when the test leaves, whatever happened.
class CollectionGuard {
 public:
  CollectionGuard(std::string url, std::string name)
      : url_(std::move(url)), name_(std::move(name)) {}
  CollectionGuard(const CollectionGuard&) = delete;
  CollectionGuard& operator=(const CollectionGuard&) = delete;
  ~CollectionGuard() {
    try {
      chroma::ChromaDbOptions options;
      options.baseUrl = url_;
      options.maxRetries = 0;
      chroma::ChromaDbClient(options).deleteCollection(name_);
    } catch (const std::exception&) {  // already gone, or the server is down
    }
  }

 private:
  std::string url_;
  std::string name_;
};

/// Waits for the job and REQUIREs that it finished.
Snapshot finished(const Tracker& tracker, const JobId& id) {
  const auto snapshot = tracker.wait(id, kJobTimeout);
  REQUIRE(snapshot.has_value());
  INFO("job " << snapshot->name << " is " << toString(snapshot->status) << ": "
              << snapshot->error.value_or(""));
  REQUIRE(jobtrack::isTerminal(snapshot->status));
  return *snapshot;
}

/// Waits for the job and REQUIREs that it COMPLETED; returns its result.
nlohmann::json completed(const Tracker& tracker, const JobId& id) {
  const auto snapshot = finished(tracker, id);
  INFO("job " << snapshot.name << ": " << snapshot.error.value_or(""));
  REQUIRE(snapshot.status == JobStatus::Completed);
  REQUIRE(snapshot.result.has_value());
  return *snapshot.result;
}

/// Waits for the job and REQUIREs that it FAILED; returns its error text.
std::string failed(const Tracker& tracker, const JobId& id) {
  const auto snapshot = finished(tracker, id);
  INFO("job " << snapshot.name << " result: " << snapshot.result.value_or(nullptr).dump());
  REQUIRE(snapshot.status == JobStatus::Failed);
  CHECK(snapshot.errorKind == ErrorKind::Exception);
  REQUIRE(snapshot.error.has_value());
  return *snapshot.error;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Records every snapshot of one job that a subscription delivers and lets
/// the test wait (bounded) until the terminal one has arrived.
class JobRecorder {
 public:
  void operator()(const Snapshot& snapshot) {
    {
      std::lock_guard lock(mutex_);
      if (!id_) {
        early_.push_back(snapshot);
        return;
      }
      if (!(snapshot.id == *id_)) return;
      seen_.push_back(snapshot);
    }
    changed_.notify_all();
  }

  /// Follows job `id` (events that arrived before are picked up).
  void follow(const JobId& id) {
    {
      std::lock_guard lock(mutex_);
      id_ = id;
      for (auto& snapshot : early_) {
        if (snapshot.id == id) seen_.push_back(std::move(snapshot));
      }
      early_.clear();
    }
    changed_.notify_all();
  }

  /// Every event of the job, in delivery order, once the terminal one arrived.
  std::vector<Snapshot> untilTerminal() {
    std::unique_lock lock(mutex_);
    const bool done = changed_.wait_for(lock, kJobTimeout, [&] {
      return std::any_of(seen_.begin(), seen_.end(),
                         [](const Snapshot& s) { return jobtrack::isTerminal(s.status); });
    });
    REQUIRE(done);
    return seen_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<JobId> id_;
  std::vector<Snapshot> early_;
  std::vector<Snapshot> seen_;
};

std::string documentText(std::size_t i) {
  static const std::vector<std::string> topics{"rivers",   "compilers", "gardens",  "orbits",
                                               "harbours", "violins",   "glaciers", "markets",
                                               "lanterns", "forests"};
  static const std::vector<std::string> verbs{"describes",  "measures", "questions", "maps",
                                              "celebrates", "compares", "predicts"};
  return "Report " + std::to_string(i) + " " + verbs[i % verbs.size()] + " " +
         topics[i % topics.size()] + " and " + topics[(i / topics.size()) % topics.size()] +
         " in volume " + std::to_string(i / 7);
}

std::vector<chroma::ChromaDocument> makeDocuments(std::size_t count) {
  std::vector<chroma::ChromaDocument> documents;
  documents.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    documents.push_back({"doc-" + std::to_string(i),
                         documentText(i),
                         {{"index", i}, {"even", i % 2 == 0}},
                         std::nullopt});
  }
  return documents;
}

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

/// A Chroma server started through CHROMA_START_CMD on a given port; stopped
/// with SIGTERM when destroyed. The start command returns once the server
/// answers its heartbeat.
class ChromaServer {
 public:
  ChromaServer(const std::string& startCommand, const std::filesystem::path& dataDir, int port) {
    const std::string command =
        startCommand + " '" + dataDir.string() + "' " + std::to_string(port);
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    int pid = 0;
    int actualPort = 0;
    const int fields = std::fscanf(pipe, "%d %d", &pid, &actualPort);
    const int status = ::pclose(pipe);
    INFO("start command: " << command);
    REQUIRE(status == 0);
    REQUIRE(fields == 2);
    REQUIRE(actualPort == port);
    pid_ = pid;
  }
  ChromaServer(const ChromaServer&) = delete;
  ChromaServer& operator=(const ChromaServer&) = delete;

  /// SIGTERM, then waits (bounded) for the process to exit through a pidfd:
  /// the server is not our child, so waitpid cannot see it.
  ~ChromaServer() {
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    ::kill(pid_, SIGTERM);
    if (pidfd >= 0) {
      pollfd exited{pidfd, POLLIN, 0};
      (void)::poll(&exited, 1, 30'000);
      ::close(pidfd);
    }
  }

 private:
  int pid_ = 0;
};

}  // namespace

TEST_CASE("service: create, get-or-create twice, and a duplicate create fails with a conflict",
          "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) return;
  AsyncExecutor executor;
  Tracker tracker(executor);
  chroma::ChromaDbService service(executor, tracker, serviceOptions(*url));
  const auto name = uniqueName("create");
  CollectionGuard guard(*url, name);

  const auto id = service.startCreateCollectionJob(name, {{"purpose", "test"}, {"version", 1}});
  const auto created = completed(tracker, id);
  CHECK(created.at("name") == name);
  CHECK(!created.at("id").get<std::string>().empty());
  CHECK(created.at("metadata") == nlohmann::json{{"purpose", "test"}, {"version", 1}});
  CHECK(created.at("tenant") == "default_tenant");
  CHECK(created.at("database") == "default_database");
  CHECK(tracker.get(id)->name == "chroma:create:" + name);

  SECTION("get-or-create twice gives the existing collection") {
    const auto first = service.startCreateCollectionJob(name, nullptr, /*getOrCreate=*/true);
    const auto second = service.startCreateCollectionJob(name, nullptr, /*getOrCreate=*/true);
    CHECK(completed(tracker, first).at("id") == created.at("id"));
    CHECK(completed(tracker, second).at("id") == created.at("id"));
  }

  SECTION("create of an existing name ends FAILED with a clear conflict error") {
    const auto error = failed(tracker, service.startCreateCollectionJob(name));
    INFO(error);
    CHECK(contains(error, "Conflict"));
    CHECK(contains(error, "already exists"));
    CHECK(contains(error, name));
    CHECK(contains(error, "409"));
  }
}

TEST_CASE("service: add 1,000 documents in batches with progress, count, query, delete",
          "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) return;
  AsyncExecutor executor;
  Tracker tracker(executor);
  chroma::ChromaDbService service(executor, tracker, serviceOptions(*url));  // batches of 100
  const auto name = uniqueName("documents");
  CollectionGuard guard(*url, name);
  completed(tracker, service.startCreateCollectionJob(name));

  JobRecorder recorder;
  auto subscription = tracker.subscribe([&recorder](const Snapshot& s) { recorder(s); });
  const auto addId = service.startAddDocumentsJob(name, makeDocuments(1000));
  recorder.follow(addId);
  CHECK(completed(tracker, addId) == nlohmann::json{{"added", 1000}, {"collection", name}});

  // Progress as a subscriber saw it: never decreasing, one report per batch, reaching 100.
  const auto events = recorder.untilTerminal();
  std::vector<int> progress;
  std::vector<std::string> messages;
  for (const auto& event : events) {
    progress.push_back(event.progress);
    messages.push_back(event.message);
  }
  INFO("progress values seen: " << nlohmann::json(progress).dump());
  CHECK(std::is_sorted(progress.begin(), progress.end()));
  CHECK(progress.back() == 100);
  CHECK(std::count(messages.begin(), messages.end(), "batch 10/10") >= 1);
  for (int batch = 1; batch <= 10; ++batch) {
    CHECK(std::count(progress.begin(), progress.end(), batch * 10) >= 1);
  }

  CHECK(completed(tracker, service.startCountJob(name)) ==
        nlohmann::json{{"collection", name}, {"count", 1000}});

  SECTION("a query finds the nearest document first") {
    const auto result = completed(tracker, service.startQueryJob(name, documentText(417), 5));
    CHECK(result.at("collection") == name);
    const auto& matches = result.at("matches");
    REQUIRE(matches.size() == 5);
    CHECK(matches[0].at("id") == "doc-417");
    CHECK(matches[0].at("text") == documentText(417));
    CHECK(matches[0].at("metadata").at("index") == 417);
    CHECK(matches[0].at("distance").get<double>() < 1e-4);
    for (std::size_t i = 1; i < matches.size(); ++i) {
      CHECK(matches[i - 1].at("distance").get<double>() <= matches[i].at("distance").get<double>());
    }
  }

  SECTION("delete removes the collection; jobs on it then fail with not found") {
    CHECK(completed(tracker, service.startDeleteCollectionJob(name)) ==
          nlohmann::json{{"deleted", name}});
    for (const auto& id : {service.startCountJob(name), service.startQueryJob(name, "rivers", 1),
                           service.startAddDocumentsJob(name, makeDocuments(1))}) {
      const auto error = failed(tracker, id);
      INFO(error);
      CHECK(contains(error, "Not found"));
      CHECK(contains(error, name));
    }
  }
}

TEST_CASE("service: documents and queries may carry their own embeddings", "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) return;
  AsyncExecutor executor;
  Tracker tracker(executor);
  chroma::ChromaDbService service(executor, tracker, serviceOptions(*url));
  const auto name = uniqueName("own-embeddings");
  CollectionGuard guard(*url, name);
  completed(tracker, service.startCreateCollectionJob(name));

  std::vector<chroma::ChromaDocument> documents{
      {"x", "the x axis", {{"axis", "x"}}, chroma::Embedding{1, 0, 0}},
      {"y", "the y axis", nullptr, chroma::Embedding{0, 1, 0}},
      {"z", "the z axis", nlohmann::json::object(), chroma::Embedding{0, 0, 1}},
  };
  completed(tracker, service.startAddDocumentsJob(name, documents));

  const auto result = completed(
      tracker, service.startQueryJob(name, "ignored", 2, chroma::Embedding{0.1F, 0.2F, 1.0F}));
  const auto& matches = result.at("matches");
  REQUIRE(matches.size() == 2);
  CHECK(matches[0].at("id") == "z");
  CHECK(matches[0].at("text") == "the z axis");
  CHECK(matches[0].at("metadata").is_null());
  CHECK(matches[1].at("id") == "y");

  // The collection now has dimension 3: a text query embedded with the
  // default 256-dimensional function is refused by Chroma.
  const auto error = failed(tracker, service.startQueryJob(name, "the x axis", 1));
  INFO(error);
  CHECK(contains(error, "Bad request"));
  CHECK(contains(error, "dimension"));
}

TEST_CASE("service: the embedding function is injectable", "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) return;
  AsyncExecutor executor;
  Tracker tracker(executor);
  auto options = serviceOptions(*url);
  options.embedding = std::make_shared<chroma::HashingEmbeddingFunction>(32);
  options.batchSize = 7;
  chroma::ChromaDbService service(executor, tracker, options);
  CHECK(service.embeddingFunction().dimension() == 32);
  const auto name = uniqueName("injected");
  CollectionGuard guard(*url, name);
  completed(tracker, service.startCreateCollectionJob(name));
  const auto addId = service.startAddDocumentsJob(name, makeDocuments(20));
  completed(tracker, addId);
  CHECK(tracker.get(addId)->message == "batch 3/3");

  const chroma::ChromaDbClient client(options.client);
  CHECK(client.getCollection(name).dimension == 32);
  const auto result = completed(tracker, service.startQueryJob(name, documentText(12), 1));
  CHECK(result.at("matches").at(0).at("id") == "doc-12");
}

namespace {

/// An EmbeddingFunction that blocks its `blockAt`-th call until the test
/// opens the gate, so a test can act while a job is between two batches.
class GatedEmbedding final : public chroma::EmbeddingFunction {
 public:
  explicit GatedEmbedding(int blockAt) : blockAt_(blockAt) {}

  std::vector<float> embed(std::string_view text) const override {
    std::unique_lock lock(mutex_);
    if (++calls_ == blockAt_) {
      reached_ = true;
      changed_.notify_all();
      changed_.wait_for(lock, kJobTimeout, [&] { return open_; });
    }
    return inner_.embed(text);
  }
  std::size_t dimension() const noexcept override { return inner_.dimension(); }

  /// Waits (bounded) until the blocking call has been reached.
  bool waitUntilReached() const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kJobTimeout, [&] { return reached_; });
  }
  void open() const {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }

 private:
  chroma::HashingEmbeddingFunction inner_{16};
  int blockAt_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  mutable int calls_ = 0;
  mutable bool reached_ = false;
  mutable bool open_ = false;
};

}  // namespace

TEST_CASE("service: cancelling an add job stops it between batches", "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) return;
  const auto name = uniqueName("cancel");
  CollectionGuard guard(*url, name);
  constexpr int batchSize = 10;
  auto gate = std::make_shared<GatedEmbedding>(batchSize + 1);  // the first text of batch 2
  std::size_t stored = 0;
  {
    AsyncExecutor executor;
    Tracker tracker(executor);
    auto options = serviceOptions(*url);
    options.embedding = gate;
    options.batchSize = batchSize;
    chroma::ChromaDbService service(executor, tracker, options);
    completed(tracker, service.startCreateCollectionJob(name));

    const auto id = service.startAddDocumentsJob(name, makeDocuments(100));
    REQUIRE(gate->waitUntilReached());  // batch 1 is stored, batch 2 is being embedded
    CHECK(tracker.get(id)->message == "batch 1/10");
    CHECK(tracker.cancel(id) == jobtrack::CancelResult::Cancelled);
    gate->open();
    const auto snapshot = finished(tracker, id);
    CHECK(snapshot.status == JobStatus::Cancelled);
    // Shutdown joins the blocking pool: nothing was abandoned, so the work
    // honoured its stop token and has returned.
    CHECK(executor.shutdown().abandonedThreads == 0);
    chroma::ChromaDbOptions clientOptions;
    clientOptions.baseUrl = *url;
    const chroma::ChromaDbClient client(clientOptions);
    stored = client.count(client.getCollection(name).id);
  }
  CHECK(stored == batchSize);  // batch 2 was never sent
}

TEST_CASE(
    "service: while Chroma is down jobs fail as unavailable, the tracker keeps answering, "
    "and jobs succeed once it is back",
    "[chroma]") {
  const auto url = requiredEnv("CHROMA_URL");
  if (!url) return;
  const auto startCommand = requiredEnv("CHROMA_START_CMD");
  if (!startCommand) return;

  AsyncExecutor executor;
  Tracker tracker(executor);
  const int port = unusedPort();
  auto downOptions = serviceOptions("http://127.0.0.1:" + std::to_string(port));
  downOptions.client.maxRetries = 2;
  downOptions.client.initialBackoff = 50ms;
  downOptions.client.connectTimeout = 1s;
  chroma::ChromaDbService down(executor, tracker, downOptions);
  chroma::ChromaDbService up(executor, tracker, serviceOptions(*url));
  const auto name = uniqueName("outage");
  CollectionGuard guard(*url, name);

  const auto downId = down.startCreateCollectionJob(name, nullptr, /*getOrCreate=*/true);
  // The service keeps answering while the job retries: get, list and other jobs work.
  REQUIRE(tracker.get(downId).has_value());
  const auto listed = tracker.list(100, jobtrack::ListFilter{std::nullopt, "chroma:create:"});
  CHECK(
      std::any_of(listed.begin(), listed.end(), [&](const Snapshot& s) { return s.id == downId; }));
  CHECK(completed(tracker, up.startCreateCollectionJob(name, nullptr, true)).at("name") == name);

  const auto error = failed(tracker, downId);
  INFO(error);
  CHECK(contains(error, "Chroma is unavailable"));
  CHECK(contains(error, "gave up after 3 attempts"));
  CHECK(contains(error, "127.0.0.1:" + std::to_string(port)));
  CHECK(tracker.get(downId)->status == JobStatus::Failed);

  // Chroma comes up on that port: the same service's next job succeeds.
  const auto workDir = std::filesystem::temp_directory_path() / uniqueName("outage-server");
  {
    ChromaServer server(*startCommand, workDir / "data", port);
    const auto created = completed(tracker, down.startCreateCollectionJob(name, nullptr, true));
    CHECK(created.at("name") == name);
    completed(tracker, down.startAddDocumentsJob(name, makeDocuments(3)));
    const auto result = completed(tracker, down.startQueryJob(name, documentText(1), 1));
    CHECK(result.at("matches").at(0).at("id") == "doc-1");
  }
  std::error_code ignored;
  std::filesystem::remove_all(workDir, ignored);
}

TEST_CASE("service: invalid arguments are refused before any job exists", "[chroma]") {
  AsyncExecutor executor;
  Tracker tracker(executor);
  chroma::ChromaDbService service(executor, tracker, serviceOptions("http://127.0.0.1:9"));

  for (const std::string& bad : std::vector<std::string>{
           "ab", std::string(513, 'a'), "-abc", "abc_", "a b c", "a..b", "192.168.0.1", "naïve"}) {
    INFO("name " << bad);
    CHECK_THROWS_AS(service.startCreateCollectionJob(bad), std::invalid_argument);
    CHECK(chroma::collectionNameProblem(bad).has_value());
  }
  for (const std::string& good :
       std::vector<std::string>{"abc", std::string(512, 'a'), "a.b-c_d", "1.2.3", "A1b"}) {
    INFO("name " << good);
    CHECK(!chroma::collectionNameProblem(good).has_value());
  }
  CHECK_THROWS_AS(service.startCreateCollectionJob("valid", {{"nested", {{"a", 1}}}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(service.startCreateCollectionJob("valid", {{"list", {1, 2}}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(service.startCreateCollectionJob("valid", "not an object"),
                  std::invalid_argument);

  CHECK_THROWS_AS(service.startAddDocumentsJob("valid", {}), std::invalid_argument);
  CHECK_THROWS_AS(service.startAddDocumentsJob("valid", makeDocuments(10'001)),
                  std::invalid_argument);
  auto duplicated = makeDocuments(3);
  duplicated[2].id = duplicated[0].id;
  CHECK_THROWS_AS(service.startAddDocumentsJob("valid", duplicated), std::invalid_argument);
  auto unnamed = makeDocuments(1);
  unnamed[0].id.clear();
  CHECK_THROWS_AS(service.startAddDocumentsJob("valid", unnamed), std::invalid_argument);
  auto mixed = makeDocuments(2);
  mixed[0].embedding = chroma::Embedding{1, 2};
  mixed[1].embedding = chroma::Embedding{1, 2, 3};
  CHECK_THROWS_AS(service.startAddDocumentsJob("valid", mixed), std::invalid_argument);

  CHECK_THROWS_AS(service.startQueryJob("valid", "text", 0), std::invalid_argument);
  CHECK_THROWS_AS(service.startQueryJob("valid", "text", 101), std::invalid_argument);
  CHECK_THROWS_AS(service.startQueryJob("valid", "text", 1, chroma::Embedding{}),
                  std::invalid_argument);

  CHECK(tracker.stats().submitted == 0);
  CHECK_THROWS_AS(chroma::ChromaDbService(executor, tracker,
                                          [] {
                                            chroma::ChromaServiceOptions options;
                                            options.batchSize = 0;
                                            return options;
                                          }()),
                  std::invalid_argument);
}
