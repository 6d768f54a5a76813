// JobTracker with a JobStore: two trackers sharing one in-process store see
// each other's jobs. The Redis store has its own tests against a real server.

#include <jobtrack/jobtrack.hpp>

#include "catch.hpp"
#include <asio/io_context.hpp>

#include <chrono>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <thread>

namespace {

using namespace std::chrono_literals;
using jobtrack::JobId;
using jobtrack::JobStatus;
using Snapshot = jobtrack::JobSnapshot<nlohmann::json>;

/// A store shared in-process: what several instances behind Redis would see.
class SharedMemory {
 public:
  class Store final : public jobtrack::JobStore<nlohmann::json> {
   public:
    explicit Store(SharedMemory& shared) : shared_(shared) {}
    void attach(std::weak_ptr<jobtrack::JobStoreListener<nlohmann::json>> listener) override {
      std::lock_guard lock(shared_.mutex_);
      listener_ = listener;
      shared_.members_.push_back(this);
    }
    void save(const Snapshot& snapshot) override {
      std::vector<std::shared_ptr<jobtrack::JobStoreListener<nlohmann::json>>> others;
      {
        std::lock_guard lock(shared_.mutex_);
        shared_.jobs_[snapshot.id] = snapshot;
        shared_.owner_[snapshot.id] = this;
        for (auto* member : shared_.members_) {
          if (member == this) continue;
          if (auto l = member->listener_.lock()) others.push_back(l);
        }
      }
      for (auto& other : others) other->onRemoteChange(snapshot);
    }
    std::optional<Snapshot> load(const JobId& id) override {
      std::lock_guard lock(shared_.mutex_);
      auto it = shared_.jobs_.find(id);
      return it == shared_.jobs_.end() ? std::nullopt : std::optional<Snapshot>(it->second);
    }
    std::vector<Snapshot> list(std::size_t limit, const jobtrack::ListFilter&) override {
      std::lock_guard lock(shared_.mutex_);
      std::vector<Snapshot> all;
      for (auto& [id, s] : shared_.jobs_) all.push_back(s);
      std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.createdAt > b.createdAt; });
      if (all.size() > limit) all.resize(limit);
      return all;
    }
    jobtrack::CancelResult requestCancel(const JobId& id) override {
      std::shared_ptr<jobtrack::JobStoreListener<nlohmann::json>> owner;
      {
        std::lock_guard lock(shared_.mutex_);
        auto it = shared_.jobs_.find(id);
        if (it == shared_.jobs_.end()) return jobtrack::CancelResult::NotFound;
        if (jobtrack::isTerminal(it->second.status)) return jobtrack::CancelResult::AlreadyFinished;
        owner = shared_.owner_[id]->listener_.lock();
      }
      return owner && owner->onCancelRequest(id) ? jobtrack::CancelResult::Cancelled
                                                 : jobtrack::CancelResult::NotFound;
    }

   private:
    SharedMemory& shared_;
    std::weak_ptr<jobtrack::JobStoreListener<nlohmann::json>> listener_;
  };

 private:
  std::mutex mutex_;
  std::map<JobId, Snapshot> jobs_;
  std::map<JobId, Store*> owner_;
  std::vector<Store*> members_;
};

}  // namespace

TEST_CASE("two trackers sharing a store see each other's jobs", "[store]") {
  SharedMemory shared;
  jobtrack::AsyncExecutor executor;
  jobtrack::JobTracker<> a(executor, {}, std::make_shared<SharedMemory::Store>(shared));
  jobtrack::JobTracker<> b(executor, {}, std::make_shared<SharedMemory::Store>(shared));

  std::latch gate(1);
  const JobId id = a.submit("hello:john", [&] {
    return executor.executeAsync([&gate] {
      gate.wait();
      return std::string("Hello, John!");
    });
  });

  SECTION("get and list on the other instance") {
    REQUIRE(b.get(id).has_value());
    REQUIRE(b.list(10).size() == 1);
    gate.count_down();
    const auto done = b.wait(id, 30s);
    REQUIRE(done);
    REQUIRE(done->status == JobStatus::Completed);
    REQUIRE(done->result == "Hello, John!");
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
    REQUIRE(b.cancel(id) == jobtrack::CancelResult::Cancelled);
    REQUIRE(a.get(id)->status == JobStatus::Cancelled);
    REQUIRE(b.cancel(id) == jobtrack::CancelResult::AlreadyFinished);
    gate.count_down();
  }

  SECTION("subscribers on the other instance see the changes") {
    std::mutex mutex;
    std::vector<JobStatus> seen;
    std::promise<void> terminal;
    auto subscription = b.subscribe([&](const Snapshot& s) {
      std::lock_guard lock(mutex);
      seen.push_back(s.status);
      if (jobtrack::isTerminal(s.status)) terminal.set_value();
    });
    gate.count_down();
    REQUIRE(terminal.get_future().wait_for(30s) == std::future_status::ready);
    std::lock_guard lock(mutex);
    REQUIRE(seen.back() == JobStatus::Completed);
  }

  REQUIRE(b.get(JobId::generate()) == std::nullopt);
  REQUIRE(b.cancel(JobId::generate()) == jobtrack::CancelResult::NotFound);
}
