// RedisJobStore against a real redis-server (label redis): what
// tests/test_job_store.cpp proves with an in-process store, across two
// trackers sharing Redis, plus the failure modes: a killed instance, a
// restarted Redis, garbage under a job key.
//
// Run: scripts/with-redis ctest --test-dir build-redis -L redis --output-on-failure
// Without REDIS_URL the tests fail when CI is set and are skipped otherwise
// (the URL parsing tests need no server; the restart test starts its own).

#include "redis_test_support.hpp"
#include <jobtrack/jobtrack.hpp>
#include <jobtrack/redis_store.hpp>

#include "catch.hpp"

#include <chrono>
#include <future>
#include <latch>
#include <mutex>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using jobtrack::CancelResult;
using jobtrack::ErrorKind;
using jobtrack::JobId;
using jobtrack::JobStatus;
using jobtrack::RedisJobStore;
using Snapshot = jobtrack::JobSnapshot<nlohmann::json>;
using Tracker = jobtrack::JobTracker<>;

/// A job that runs until `gate` opens, reporting progress first.
auto gatedJob(jobtrack::AsyncExecutor& executor, std::latch& gate) {
  return [&executor, &gate](jobtrack::JobContext context) {
    return executor.executeAsync([&gate, context] {
      context.reportProgress(10, "waiting for the gate");
      gate.wait();
      return std::string("Hello, John!");
    });
  };
}

/// Resolves a promise with the first event matching `match`.
class EventLatch {
 public:
  template <class Match>
  explicit EventLatch(Match match) : match_(std::move(match)) {}
  void operator()(const Snapshot& s) {
    std::lock_guard lock(mutex_);
    if (!fired_ && match_(s)) {
      fired_ = true;
      promise_.set_value(s);
    }
  }
  std::optional<Snapshot> wait(std::chrono::milliseconds timeout) {
    if (future_.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return future_.get();
  }

 private:
  std::function<bool(const Snapshot&)> match_;
  std::mutex mutex_;
  bool fired_ = false;
  std::promise<Snapshot> promise_;
  std::future<Snapshot> future_ = promise_.get_future();
};

}  // namespace

TEST_CASE("Redis URLs are parsed, malformed ones rejected clearly", "[redis][url]") {
  using jobtrack::detail::parseRedisUrl;
  auto plain = parseRedisUrl("redis://example.org");
  REQUIRE(plain.host == "example.org");
  REQUIRE(plain.port == 6379);
  REQUIRE(plain.database == 0);
  REQUIRE(plain.password.empty());

  auto full = parseRedisUrl("redis://app:s%40cret@10.0.0.5:6380/3");
  REQUIRE(full.host == "10.0.0.5");
  REQUIRE(full.port == 6380);
  REQUIRE(full.user == "app");
  REQUIRE(full.password == "s@cret");
  REQUIRE(full.database == 3);

  auto passwordOnly = parseRedisUrl("redis://:pw@localhost/");
  REQUIRE(passwordOnly.user.empty());
  REQUIRE(passwordOnly.password == "pw");

  auto v6 = parseRedisUrl("redis://[::1]:7000");
  REQUIRE(v6.host == "::1");
  REQUIRE(v6.port == 7000);

  for (const char* bad :
       {"", "localhost:6379", "http://localhost", "rediss://localhost", "redis://",
        "redis://host:", "redis://host:0", "redis://host:65536", "redis://host:12ab",
        "redis://host/x", "redis://[::1", "redis://host?db=1", "redis://u:%zz@host"}) {
    INFO("URL: " << bad);
    REQUIRE_THROWS_AS(parseRedisUrl(bad), std::invalid_argument);
  }
  try {
    parseRedisUrl("redis://host:99999");
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    REQUIRE(what.find("port '99999'") != std::string::npos);
    REQUIRE(what.find("expected redis://") != std::string::npos);
  }
  jobtrack::RedisStoreOptions options;
  options.url = "redis//nope";
  REQUIRE_THROWS_AS(RedisJobStore<>(options), std::invalid_argument);
}

TEST_CASE("two trackers sharing Redis see each other's jobs", "[redis]") {
  const auto url = redis_test::redisUrl();
  if (!url) return;
  const std::string prefix = redis_test::uniquePrefix();
  jobtrack::AsyncExecutor executor;
  auto storeA = std::make_shared<RedisJobStore<>>(redis_test::storeOptions(*url, prefix));
  auto storeB = std::make_shared<RedisJobStore<>>(redis_test::storeOptions(*url, prefix));
  REQUIRE(storeA->instanceId() != storeB->instanceId());
  Tracker a(executor, {}, storeA);
  Tracker b(executor, {}, storeB);
  REQUIRE(storeA->waitSubscribed(30s));
  REQUIRE(storeB->waitSubscribed(30s));

  std::latch gate(1);
  const JobId id = a.submit("hello:john", gatedJob(executor, gate));
  REQUIRE(storeA->flush(30s));

  SECTION("get and list on the other instance") {
    const auto seen = b.get(id);
    REQUIRE(seen);
    REQUIRE(seen->name == "hello:john");
    const auto listed = b.list(10);
    REQUIRE(listed.size() == 1);
    REQUIRE(listed[0].id == id);
    REQUIRE(b.list(10, {JobStatus::Completed, ""}).empty());
    REQUIRE(b.list(10, {std::nullopt, "bye:"}).empty());
    gate.count_down();
    const auto done = b.wait(id, 30s);
    REQUIRE(done);
    REQUIRE(done->status == JobStatus::Completed);
    REQUIRE(done->result == "Hello, John!");
    REQUIRE(b.get(id)->status == JobStatus::Completed);
    REQUIRE(b.list(10, {JobStatus::Completed, "hello:"}).size() == 1);
  }

  SECTION("asyncWait on the other instance") {
    std::promise<std::optional<Snapshot>> result;
    b.asyncWait(id, 30s, [&](std::optional<Snapshot> s) { result.set_value(std::move(s)); });
    gate.count_down();
    auto future = result.get_future();
    REQUIRE(future.wait_for(30s) == std::future_status::ready);
    const auto snapshot = future.get();
    REQUIRE(snapshot);
    REQUIRE(snapshot->status == JobStatus::Completed);
  }

  SECTION("cancel on the other instance cancels the owner's work") {
    REQUIRE(b.cancel(id) == CancelResult::Cancelled);
    REQUIRE(a.get(id)->status == JobStatus::Cancelled);
    REQUIRE(b.cancel(id) == CancelResult::AlreadyFinished);
    REQUIRE(b.get(id)->status == JobStatus::Cancelled);
    gate.count_down();
  }

  SECTION("subscribers on the other instance see the changes") {
    std::mutex mutex;
    std::vector<JobStatus> seen;
    EventLatch terminal([](const Snapshot& s) { return jobtrack::isTerminal(s.status); });
    auto subscription = b.subscribe([&](const Snapshot& s) {
      {
        std::lock_guard lock(mutex);
        seen.push_back(s.status);
      }
      terminal(s);
    });
    gate.count_down();
    const auto last = terminal.wait(30s);
    REQUIRE(last);
    REQUIRE(last->status == JobStatus::Completed);
    REQUIRE(last->id == id);
  }

  REQUIRE(b.get(JobId::generate()) == std::nullopt);
  REQUIRE(b.cancel(JobId::generate()) == CancelResult::NotFound);
}

TEST_CASE("finished jobs expire after finishedTtl, unfinished ones do not", "[redis]") {
  const auto url = redis_test::redisUrl();
  if (!url) return;
  const std::string prefix = redis_test::uniquePrefix();
  jobtrack::AsyncExecutor executor;
  auto options = redis_test::storeOptions(*url, prefix);
  options.finishedTtl = 10min;
  auto store = std::make_shared<RedisJobStore<>>(options);
  Tracker tracker(executor, {}, store);
  redis_test::RawRedis raw(*url);

  std::latch gate(1);
  const JobId running = tracker.submit("ttl:running", gatedJob(executor, gate));
  const JobId done =
      tracker.submit("ttl:done", [&] { return executor.executeAsync([] { return 42; }); });
  REQUIRE(tracker.wait(done, 30s)->status == JobStatus::Completed);
  REQUIRE(store->flush(30s));

  const auto doneTtl = raw({"PTTL", prefix + ":job:" + to_string(done)});
  REQUIRE(doneTtl->integer > 0);
  REQUIRE(doneTtl->integer <= 600'000);
  REQUIRE(raw({"PTTL", prefix + ":job:" + to_string(running)})->integer == -1);
  REQUIRE(raw({"SISMEMBER", prefix + ":active", to_string(running)})->integer == 1);
  REQUIRE(raw({"SISMEMBER", prefix + ":active", to_string(done)})->integer == 0);
  REQUIRE(raw({"ZCARD", prefix + ":jobs"})->integer == 2);
  REQUIRE(raw({"PTTL", prefix + ":instance:" + store->instanceId()})->integer > 0);

  // An expired job leaves the index when list() meets it.
  raw({"DEL", prefix + ":job:" + to_string(done)});
  jobtrack::RedisJobStore<> other(redis_test::storeOptions(*url, prefix));
  REQUIRE(other.list(10, {}).size() == 1);
  REQUIRE(raw({"ZCARD", prefix + ":jobs"})->integer == 1);
  gate.count_down();
}

TEST_CASE("garbage in Redis is logged and skipped, never a crash", "[redis]") {
  const auto url = redis_test::redisUrl();
  if (!url) return;
  const std::string prefix = redis_test::uniquePrefix();
  jobtrack::AsyncExecutor executor;
  auto log = std::make_shared<redis_test::LogCapture>();
  auto storeA = std::make_shared<RedisJobStore<>>(redis_test::storeOptions(*url, prefix));
  auto storeB = std::make_shared<RedisJobStore<>>(redis_test::storeOptions(*url, prefix, log));
  Tracker a(executor, {}, storeA);
  Tracker b(executor, {}, storeB);
  REQUIRE(storeB->waitSubscribed(30s));
  redis_test::RawRedis raw(*url);

  const JobId good = a.submit("good", [&] { return executor.executeAsync([] { return 1; }); });
  REQUIRE(a.wait(good, 30s)->status == JobStatus::Completed);
  REQUIRE(storeA->flush(30s));

  const JobId notAHash = JobId::generate();
  const JobId badJson = JobId::generate();
  const JobId badSnapshot = JobId::generate();
  raw({"SET", prefix + ":job:" + to_string(notAHash), "not json at all"});
  raw({"HSET", prefix + ":job:" + to_string(badJson), "data", "{\"jobId\":", "status", "RUNNING"});
  raw({"HSET", prefix + ":job:" + to_string(badSnapshot), "data",
       R"({"jobId":"nope","status":"RUNNING"})"});
  for (const auto& id : {notAHash, badJson, badSnapshot}) {
    raw({"ZADD", prefix + ":jobs", "99999999999999", to_string(id)});
    raw({"SADD", prefix + ":active", to_string(id)});
  }

  REQUIRE(b.get(notAHash) == std::nullopt);
  REQUIRE(b.get(badJson) == std::nullopt);
  REQUIRE(b.get(badSnapshot) == std::nullopt);
  REQUIRE(b.cancel(notAHash) == CancelResult::NotFound);
  const auto listed = b.list(10);
  REQUIRE(listed.size() == 1);
  REQUIRE(listed[0].id == good);
  REQUIRE(log->contains("bad data skipped: " + prefix + ":job:" + to_string(notAHash)));
  REQUIRE(log->contains("bad data skipped: " + prefix + ":job:" + to_string(badJson)));
  REQUIRE(log->contains("bad data skipped: " + prefix + ":job:" + to_string(badSnapshot)));

  // A garbage event, then a good one: B skips the first and still sees the second.
  EventLatch next([](const Snapshot& s) {
    return s.name == "after-garbage" && jobtrack::isTerminal(s.status);
  });
  auto subscription = b.subscribe([&](const Snapshot& s) { next(s); });
  raw({"PUBLISH", prefix + ":events", "garbage"});
  raw({"PUBLISH", prefix + ":events", R"({"incarnation":"x","snapshot":{"jobId":1}})"});
  const JobId after =
      a.submit("after-garbage", [&] { return executor.executeAsync([] { return 2; }); });
  const auto seen = next.wait(30s);
  REQUIRE(seen);
  REQUIRE(seen->id == after);
  REQUIRE(log->contains("bad data skipped: message on " + prefix + ":events"));
  REQUIRE(storeB->stats().badRecords >= 5);
}

TEST_CASE("an instance killed mid-job: a survivor marks its job FAILED lost", "[redis][crash]") {
  const auto url = redis_test::redisUrl();
  if (!url) return;
  const std::string prefix = redis_test::uniquePrefix();
  jobtrack::AsyncExecutor executor;
  auto store = std::make_shared<RedisJobStore<>>(redis_test::storeOptions(*url, prefix));
  Tracker survivor(executor, {}, store);
  REQUIRE(store->waitSubscribed(30s));

  // The victim: a real process running a job through its own tracker.
  int toChild[2];
  int fromChild[2];
  REQUIRE(::pipe(toChild) == 0);
  REQUIRE(::pipe(fromChild) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(toChild[0], STDIN_FILENO);
    ::dup2(fromChild[1], STDOUT_FILENO);
    ::close(toChild[1]);
    ::close(fromChild[0]);
    ::execl(JOBTRACK_REDIS_CRASH_HELPER, JOBTRACK_REDIS_CRASH_HELPER, url->c_str(), prefix.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(toChild[0]);
  ::close(fromChild[1]);
  struct ChildGuard {
    pid_t pid;
    int in;
    int out;
    ~ChildGuard() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      ::close(in);
      ::close(out);
    }
  } guard{child, toChild[1], fromChild[0]};

  // The child prints the job's id once Redis shows it running.
  std::string line;
  pollfd readable{fromChild[0], POLLIN, 0};
  while (line.find('\n') == std::string::npos) {
    REQUIRE(::poll(&readable, 1, 60'000) == 1);
    char buffer[128];
    const auto n = ::read(fromChild[0], buffer, sizeof buffer);
    REQUIRE(n > 0);
    line.append(buffer, static_cast<std::size_t>(n));
  }
  const auto id = JobId::parse(line.substr(0, line.find('\n')));
  REQUIRE(id);
  const auto before = survivor.get(*id);
  REQUIRE(before);
  REQUIRE(before->status == JobStatus::Running);

  REQUIRE(::kill(child, SIGKILL) == 0);
  REQUIRE(::waitpid(child, nullptr, 0) == child);

  // Bounded by the 1 s lease and the scan every lease/3.
  const auto after = survivor.wait(*id, 60s);
  REQUIRE(after);
  REQUIRE(after->status == JobStatus::Failed);
  REQUIRE(after->errorKind == ErrorKind::Lost);
  REQUIRE(after->error->find("crash-helper") != std::string::npos);
  REQUIRE(survivor.cancel(*id) == CancelResult::AlreadyFinished);
}

TEST_CASE("an instance stopped mid-job marks its unfinished jobs lost at once", "[redis]") {
  const auto url = redis_test::redisUrl();
  if (!url) return;
  const std::string prefix = redis_test::uniquePrefix();
  jobtrack::AsyncExecutor executor;
  auto storeB = std::make_shared<RedisJobStore<>>(redis_test::storeOptions(*url, prefix));
  Tracker b(executor, {}, storeB);
  REQUIRE(storeB->waitSubscribed(30s));

  std::latch gate(1);
  JobId id;
  {
    auto options = redis_test::storeOptions(*url, prefix);
    options.leaseTtl = 3600s;  // so only the clean stop can mark it
    auto storeA = std::make_shared<RedisJobStore<>>(options);
    Tracker a(executor, {}, storeA);
    id = a.submit("stopped", gatedJob(executor, gate));
    REQUIRE(storeA->flush(30s));
    REQUIRE(b.get(id));
    storeA.reset();  // the tracker holds the last reference: ~Tracker, then ~RedisJobStore
  }
  const auto after = b.wait(id, 60s);
  REQUIRE(after);
  REQUIRE(after->status == JobStatus::Failed);
  REQUIRE(after->errorKind == ErrorKind::Lost);
  gate.count_down();
}

TEST_CASE("Redis down and restarted: instances keep working, then resynchronise",
          "[redis][restart]") {
  redis_test::RedisServer server;  // our own, to stop and start again
  const std::string prefix = redis_test::uniquePrefix();
  jobtrack::AsyncExecutor executor;
  auto log = std::make_shared<redis_test::LogCapture>();
  auto storeA =
      std::make_shared<RedisJobStore<>>(redis_test::storeOptions(server.url(), prefix, log));
  auto storeB =
      std::make_shared<RedisJobStore<>>(redis_test::storeOptions(server.url(), prefix, log));
  Tracker a(executor, {}, storeA);
  Tracker b(executor, {}, storeB);
  REQUIRE(storeA->waitSubscribed(30s));
  REQUIRE(storeB->waitSubscribed(30s));

  std::latch gate1(1);
  std::latch gate2(1);
  const JobId job1 = a.submit("restart:one", gatedJob(executor, gate1));
  const JobId job2 = a.submit("restart:two", gatedJob(executor, gate2));
  REQUIRE(storeA->flush(30s));
  REQUIRE(b.get(job1));
  REQUIRE(b.get(job2));
  // Registered now (asyncWait loads the job before returning), completed later.
  std::promise<std::optional<Snapshot>> waitOnB;
  b.asyncWait(job1, 60s, [&](std::optional<Snapshot> s) { waitOnB.set_value(std::move(s)); });

  server.stop();
  // Meanwhile: the owner serves its jobs from memory, and may start more;
  // the other instance sees nothing of them.
  REQUIRE_FALSE(jobtrack::isTerminal(a.get(job1)->status));
  std::latch gate3(1);
  const JobId job3 = a.submit("restart:three", gatedJob(executor, gate3));
  REQUIRE(a.get(job3));
  REQUIRE(b.get(job1) == std::nullopt);
  REQUIRE(b.list(10).empty());
  REQUIRE(b.cancel(job2) == CancelResult::NotFound);
  REQUIRE_FALSE(storeA->flush(50ms));

  // B loaded job2 before: once it is subscribed again, it re-reads it, so
  // its subscribers see job2 whether A re-saved it before or after that.
  EventLatch job2Back([&](const Snapshot& s) { return s.id == job2; });
  auto subscription = b.subscribe([&](const Snapshot& s) { job2Back(s); });
  server.start();  // empty: no persistence

  // A re-saves its unfinished jobs (job2 was not written since), and writes
  // the one submitted while Redis was down (flush waits for that).
  REQUIRE(job2Back.wait(60s));
  REQUIRE(storeA->flush(60s));
  REQUIRE_FALSE(jobtrack::isTerminal(b.get(job2)->status));
  REQUIRE(b.get(job3));

  gate1.count_down();
  auto waited = waitOnB.get_future();
  REQUIRE(waited.wait_for(60s) == std::future_status::ready);
  const auto done = waited.get();
  REQUIRE(done);
  REQUIRE(done->status == JobStatus::Completed);
  REQUIRE(b.cancel(job2) == CancelResult::Cancelled);
  REQUIRE(a.get(job2)->status == JobStatus::Cancelled);
  gate2.count_down();
  gate3.count_down();
  REQUIRE(a.wait(job3, 30s)->status == JobStatus::Completed);
  REQUIRE(log->contains("reconnected"));
  REQUIRE(storeA->stats().reconnects >= 1);
}

TEST_CASE("saves Redis refuses for a while (out of memory) are retried", "[redis][restart]") {
  redis_test::RedisServer server;
  const std::string prefix = redis_test::uniquePrefix();
  jobtrack::AsyncExecutor executor;
  auto log = std::make_shared<redis_test::LogCapture>();
  auto store =
      std::make_shared<RedisJobStore<>>(redis_test::storeOptions(server.url(), prefix, log));
  Tracker tracker(executor, {}, store);
  redis_test::RawRedis raw(server.url());
  REQUIRE(store->waitSubscribed(30s));

  raw({"CONFIG", "SET", "maxmemory", "1"});  // every write is refused with OOM
  const JobId id = tracker.submit("oom", [&] { return executor.executeAsync([] { return 1; }); });
  REQUIRE(tracker.wait(id, 30s)->status == JobStatus::Completed);
  REQUIRE(log->waitFor("OOM", 60s));  // the writer tried, was refused, and will retry
  REQUIRE(raw({"EXISTS", prefix + ":job:" + to_string(id)})->integer == 0);
  raw({"CONFIG", "SET", "maxmemory", "0"});
  REQUIRE(store->flush(60s));
  REQUIRE(raw({"HGET", prefix + ":job:" + to_string(id), "status"})->str ==
          std::string("COMPLETED"));
}
