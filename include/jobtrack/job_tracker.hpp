#pragma once

/// @file
/// JobTracker<Result>: the registry that makes "fire and track" work.

#include "jobtrack/detail/recycling_allocator.hpp"
#include "jobtrack/detail/ring_queue.hpp"
#include "jobtrack/errors.hpp"
#include "jobtrack/executor.hpp"
#include "jobtrack/future.hpp"
#include "jobtrack/job_id.hpp"
#include "jobtrack/job_snapshot.hpp"
#include "jobtrack/job_status.hpp"
#include "jobtrack/job_store.hpp"

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace jobtrack {

/// Retention of finished jobs. Pending and running jobs are never evicted.
struct TrackerOptions {
  /// At most this many finished jobs are kept; the oldest finished go first.
  std::size_t maxFinishedJobs = 10'000;
  /// Finished jobs are evicted this long after they finished (a timer sweeps).
  std::chrono::milliseconds finishedTtl = std::chrono::hours(1);
};

/// The answer of JobTracker::cancel.
enum class CancelResult {
  Cancelled,        ///< the job is now CANCELLED and its work was asked to stop
  AlreadyFinished,  ///< the job had reached a terminal state already
  NotFound,         ///< no such job (never submitted, or evicted)
};

/// What JobTracker::list returns: jobs with this status (if set) whose
/// name starts with `namePrefix`; with `localOnly`, only the jobs this
/// tracker runs itself (not other instances' jobs from a shared store).
struct ListFilter {
  std::optional<JobStatus> status;
  std::string namePrefix;
  bool localOnly = false;
};

/// Counts of the jobs currently kept, by status, and running totals.
struct TrackerStats {
  std::size_t pending = 0;
  std::size_t running = 0;
  std::size_t completed = 0;
  std::size_t failed = 0;
  std::size_t cancelled = 0;
  std::uint64_t submitted = 0;  ///< jobs ever submitted
  std::uint64_t evicted = 0;    ///< finished jobs removed by retention
};

namespace detail {

/// What a JobContext reports to; implemented by the tracker.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void reportProgress(int percent, std::string message) = 0;
};

}  // namespace detail

/// Handed to a job's supplier: the job's id, a way to report progress, and
/// the job's stop token (signalled when the job is cancelled). Cheap to copy;
/// thread-safe; safe to use after the tracker is gone (reports are dropped).
class JobContext {
 public:
  JobContext(JobId id, std::stop_token stopToken, std::shared_ptr<detail::ProgressSink> sink)
      : id_(id), stopToken_(std::move(stopToken)), sink_(std::move(sink)) {}

  /// The id of the job.
  [[nodiscard]] const JobId& id() const noexcept { return id_; }

  /// Records progress: `percent` is clamped to 0-100; `message` describes
  /// the step. Reporting also marks a pending job RUNNING. Ignored once the
  /// job has finished.
  void reportProgress(int percent, std::string message = {}) const {
    if (sink_) sink_->reportProgress(percent, std::move(message));
  }

  /// Signalled when the job is cancelled.
  [[nodiscard]] std::stop_token stopToken() const noexcept { return stopToken_; }

  /// Whether the job was asked to stop.
  [[nodiscard]] bool stopRequested() const noexcept { return stopToken_.stop_requested(); }

 private:
  JobId id_;
  std::stop_token stopToken_;
  std::shared_ptr<detail::ProgressSink> sink_;
};

/// Ends a subscription when destroyed (RAII) or reset. Move-only.
class Subscription {
 public:
  Subscription() noexcept = default;
  explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  Subscription(Subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, nullptr)) {}
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      reset();
      cancel_ = std::exchange(other.cancel_, nullptr);
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { reset(); }

  /// Stops delivery. If a callback of this subscription is running on
  /// another thread, waits until it returns: afterwards the callback never
  /// runs again. May be called from within the callback itself.
  void reset() noexcept {
    if (auto cancel = std::exchange(cancel_, nullptr)) cancel();
  }

  /// Whether this object still holds a subscription.
  [[nodiscard]] bool active() const noexcept { return cancel_ != nullptr; }

 private:
  std::function<void()> cancel_;
};

namespace detail {

/// Converts a job's value to the tracker's Result type.
template <class Result, class T>
Result toResult(Stored<T>&& value) {
  if constexpr (std::is_same_v<Result, nlohmann::json>) {
    if constexpr (std::is_void_v<T>) {
      return nlohmann::json(nullptr);
    } else {
      return nlohmann::json(std::move(value));
    }
  } else if constexpr (std::is_void_v<T>) {
    return Result{};
  } else {
    static_assert(std::is_convertible_v<T, Result>,
                  "the job's value must convert to the tracker's Result");
    return Result(std::move(value));
  }
}

/// The error kind and message for a failure.
inline std::pair<ErrorKind, std::string> classify(const std::exception_ptr& error) {
  // The library's own cancels and timeouts share one error each: known
  // without the cost of a rethrow.
  if (error == cancelledErrorPtr()) return {ErrorKind::Cancelled, CancelledError{}.what()};
  if (error == timeoutErrorPtr()) return {ErrorKind::Timeout, TimeoutError{}.what()};
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError& e) {
    return {ErrorKind::Cancelled, e.what()};
  } catch (const TimeoutError& e) {
    return {ErrorKind::Timeout, e.what()};
  } catch (const std::exception& e) {
    return {ErrorKind::Exception, e.what()};
  } catch (...) {
    return {ErrorKind::Exception, "non-standard exception"};
  }
}

/// The current time at the precision snapshots are written to JSON
/// (milliseconds), so that a snapshot read back from its JSON equals it.
inline std::chrono::system_clock::time_point snapshotNow() {
  return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

/// `timeout` capped at a century: the clocks count nanoseconds, so
/// milliseconds::max() ("wait forever") would overflow into the past.
inline std::chrono::milliseconds boundedTimeout(std::chrono::milliseconds timeout) {
  constexpr std::chrono::milliseconds century = std::chrono::hours(24 * 365 * 100);
  return std::min(timeout, century);
}

/// A short pause inside a spin-wait.
inline void cpuRelax() noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Locks the deferred `lock`, trying for a moment before it blocks: the
/// registry's critical sections last a few hundred nanoseconds, while
/// sleeping on a lock and being woken costs a futex round trip (tens of
/// microseconds on a virtual machine).
template <class Lock>
void lockSpinning(Lock& lock) {
  for (int attempt = 0; attempt < 128; ++attempt) {
    if (lock.try_lock()) return;
    cpuRelax();
  }
  lock.lock();
}

/// The callbacks waiting for a job to finish. Most jobs have none, so the
/// list is made on first use: a record holds a pointer, not a list.
class Waiters {
 public:
  using Position = std::list<UniqueFunction>::iterator;

  Position add(UniqueFunction waiter) {
    if (!list_) list_ = std::make_unique<std::list<UniqueFunction>>();
    return list_->insert(list_->end(), std::move(waiter));
  }
  /// Removes a waiter `add` returned, which must still be here.
  void remove(Position position) { list_->erase(position); }
  void swap(Waiters& other) noexcept { list_.swap(other.list_); }
  void runAll() {
    if (!list_) return;
    for (auto& waiter : *list_) waiter();
  }

 private:
  std::unique_ptr<std::list<UniqueFunction>> list_;
};

/// One job's mutable state. Fields below the mutex are guarded by it.
template <class Result>
struct JobRecord {
  using Snapshot = JobSnapshot<Result>;

  /// createdAt is set when the job is registered (or copied from its owner).
  JobRecord(JobId id, std::string name) {
    snapshot.id = id;
    snapshot.name = std::move(name);
  }

  mutable std::mutex mutex;
  Snapshot snapshot;
  std::shared_ptr<StateBase> work;          // to cancel; dropped when finished
  std::stop_source stop{std::nostopstate};  // the JobContext's, if one was made
  Waiters waiters;                          // run once, when the job finishes

  // Registration order: a tracker-wide sequence number, and the neighbours
  // in the registry shard's list (guarded by the shard's lock).
  std::uint64_t sequence = 0;
  JobRecord* newer = nullptr;
  JobRecord* older = nullptr;
  // The next record in the shard's hash bucket (guarded by the shard's lock).
  std::shared_ptr<JobRecord> nextInBucket;
};

/// Serial, bounded delivery of events to one subscriber.
template <class Result>
struct Subscriber {
  using Snapshot = JobSnapshot<Result>;
  // Past this many undelivered events, non-terminal ones are dropped so a
  // stalled subscriber cannot grow memory without bound.
  static constexpr std::size_t maxQueued = 4096;

  explicit Subscriber(std::function<void(const Snapshot&)> cb) : callback(std::move(cb)) {}

  std::function<void(const Snapshot&)> callback;
  std::mutex mutex;
  std::condition_variable idle;  // notified when a callback returns
  std::deque<Snapshot> queue;
  std::thread::id deliveringOn;  // the thread running the callback, if any
  bool draining = false;
  bool active = true;
};

template <class Result>
class TrackerCore : public JobStoreListener<Result>,
                    public std::enable_shared_from_this<TrackerCore<Result>> {
 public:
  using Snapshot = JobSnapshot<Result>;
  using Record = JobRecord<Result>;
  using RecordPtr = std::shared_ptr<Record>;

  TrackerCore(std::shared_ptr<ExecutorCore> executor, TrackerOptions options,
              std::shared_ptr<JobStore<Result>> store)
      : executor_(std::move(executor)), options_(options), store_(std::move(store)) {}

  const std::shared_ptr<JobStore<Result>>& store() const noexcept { return store_; }

  // ---- jobs owned by other instances (only with a store) ----

  /// A local mirror of a job another instance owns, kept while someone
  /// waits on it, so wait/asyncWait work the same for remote jobs.
  RecordPtr findOrMirror(const JobId& id) {
    if (auto record = find(id)) return record;
    if (!store_) return nullptr;
    auto loaded = store_->load(id);
    if (!loaded) return nullptr;
    RecordPtr mirror;
    {
      std::lock_guard lock(mirrorsMutex_);
      std::erase_if(mirrors_, [](const auto& entry) { return entry.second.expired(); });
      if (auto existing = mirrors_[id].lock()) {
        mirror = existing;
      } else {
        mirror = makeRecycled<Record>(id, loaded->name);
        mirrors_[id] = mirror;
      }
    }
    applyRemote(*mirror, *loaded);
    // The job may have finished between the load and the mirror's creation.
    if (auto again = store_->load(id)) applyRemote(*mirror, *again);
    return mirror;
  }

  void onRemoteChange(const Snapshot& snapshot) override {
    RecordPtr mirror;
    {
      std::lock_guard lock(mirrorsMutex_);
      if (auto it = mirrors_.find(snapshot.id); it != mirrors_.end()) mirror = it->second.lock();
    }
    if (mirror) {
      applyRemote(*mirror, snapshot);
    } else {
      deliver(snapshot);
    }
  }

  bool onCancelRequest(const JobId& id) override {
    if (!find(id)) return false;
    cancel(id);
    return true;
  }

  // ---- registry ----

  void insert(const RecordPtr& record) {
    // Counted and announced as PENDING before the job becomes visible:
    // once list() can show it, another thread may cancel it, and its
    // CANCELLED event must come after (and instead of a second) PENDING.
    submitted_.fetch_add(1, std::memory_order_relaxed);
    const std::size_t hash = hashOf(record->snapshot.id);
    auto& shard = shards_[hash % shardCount];
    std::unique_lock lock(shard.mutex, std::defer_lock);
    lockSpinning(lock);
    std::lock_guard recordLock(record->mutex);
    // Under the shard's lock, so each shard's list is in sequence order;
    // list() merges the shards by sequence, which is also createdAt's order.
    record->sequence = nextSequence();
    record->snapshot.createdAt = createdAtOf(record->sequence);
    publish(record->snapshot);
    // Ids are random 122-bit values: a new one is not looked for first.
    assert(!record->nextInBucket && !record->newer && !record->older && "inserted twice");
    if (shard.size == shard.buckets.size()) shard.grow();
    shard.pushFront(hash, record);
    ++shard.size;
    record->older = shard.newest;
    if (shard.newest) shard.newest->newer = record.get();
    shard.newest = record.get();
  }

  RecordPtr find(const JobId& id) const {
    const std::size_t hash = hashOf(id);
    const auto& shard = shards_[hash % shardCount];
    std::shared_lock lock(shard.mutex, std::defer_lock);
    lockSpinning(lock);
    for (const RecordPtr* link = &shard.bucketOf(hash); *link; link = &(*link)->nextInBucket) {
      if ((*link)->snapshot.id == id) return *link;
    }
    return nullptr;
  }

  std::vector<Snapshot> list(std::size_t limit, const ListFilter& filter) const {
    std::vector<Snapshot> result;
    result.reserve(std::min<std::size_t>(limit, 1024));
    // Every shard's list is newest first: merge them by sequence number.
    std::array<std::shared_lock<std::shared_mutex>, shardCount> locks;
    std::array<const Record*, shardCount> next{};
    for (std::size_t i = 0; i < shardCount; ++i) {
      locks[i] = std::shared_lock(shards_[i].mutex);
      next[i] = shards_[i].newest;
    }
    while (result.size() < limit) {
      const Record** newest = nullptr;
      for (auto& candidate : next) {
        if (candidate && (!newest || candidate->sequence > (*newest)->sequence)) {
          newest = &candidate;
        }
      }
      if (!newest) break;
      const Record& record = **newest;
      *newest = record.older;
      if (!std::string_view(record.snapshot.name).starts_with(filter.namePrefix)) continue;
      std::lock_guard recordLock(record.mutex);
      if (filter.status && record.snapshot.status != *filter.status) continue;
      result.push_back(record.snapshot);
    }
    return result;
  }

  // ---- transitions; each publishes its event under the record's lock so
  // a subscriber sees one job's events in order ----

  void markRunning(Record& record) {
    std::lock_guard lock(record.mutex);
    if (record.snapshot.status != JobStatus::Pending) return;
    record.snapshot.status = JobStatus::Running;
    record.snapshot.startedAt = snapshotNow();
    adjust(JobStatus::Pending, JobStatus::Running);
    publish(record.snapshot);
  }

  void reportProgress(Record& record, int percent, std::string message) {
    std::lock_guard lock(record.mutex);
    auto& s = record.snapshot;
    if (isTerminal(s.status)) return;
    if (s.status == JobStatus::Pending) {
      s.status = JobStatus::Running;
      s.startedAt = snapshotNow();
      adjust(JobStatus::Pending, JobStatus::Running);
    }
    s.progress = std::clamp(percent, 0, 100);
    s.message = std::move(message);
    publish(s);
  }

  /// Moves the job to its one terminal state; a later writer changes nothing.
  /// `update` fills in the outcome. Returns false if the job had finished.
  template <class Update>
  bool finish(const RecordPtr& record, JobStatus status, Update&& update) {
    Waiters waiters;
    std::shared_ptr<StateBase> work;
    std::stop_source stop(std::nostopstate);
    {
      std::lock_guard lock(record->mutex);
      auto& s = record->snapshot;
      if (isTerminal(s.status)) return false;
      const JobStatus previous = s.status;
      s.status = status;
      s.completedAt = snapshotNow();
      std::forward<Update>(update)(s);
      adjust(previous, status);
      waiters.swap(record->waiters);
      work = std::move(record->work);
      stop = std::move(record->stop);
      publish(s);
    }
    if (status == JobStatus::Cancelled) {
      if (work) work->cancel();
      if (stop.stop_possible()) stop.request_stop();
    }
    RecordPtr expired;
    bool moreExpired = false;
    {
      std::lock_guard lock(retentionMutex_);
      const auto now = std::chrono::steady_clock::now();
      try {
        finished_.push_back({record, now});
      } catch (const std::bad_alloc&) {
        // Out of memory: the job stays kept (never evicted), its waiters still run.
      }
      expired = takeExpiredLocked(now);
      moreExpired = hasExpiredLocked(now);
    }
    // Usually exactly one job leaves as this one joins the kept ones.
    if (expired) remove(std::move(expired));
    if (moreExpired) sweep();
    waiters.runAll();
    return true;
  }

  void complete(const RecordPtr& record, Result value) {
    finish(record, JobStatus::Completed, [&](Snapshot& s) {
      s.progress = 100;
      s.result = std::move(value);
    });
  }

  void fail(const RecordPtr& record, const std::exception_ptr& error) {
    auto classified = classify(error);
    const ErrorKind kind = classified.first;
    const auto status = kind == ErrorKind::Cancelled ? JobStatus::Cancelled : JobStatus::Failed;
    finish(record, status, [&](Snapshot& s) {
      s.errorKind = kind;
      s.error = std::move(classified.second);
    });
  }

  CancelResult cancel(const JobId& id) {
    auto record = find(id);
    if (!record) return store_ ? store_->requestCancel(id) : CancelResult::NotFound;
    const bool cancelled = finish(record, JobStatus::Cancelled, [](Snapshot& s) {
      s.errorKind = ErrorKind::Cancelled;
      s.error = "cancelled";
    });
    return cancelled ? CancelResult::Cancelled : CancelResult::AlreadyFinished;
  }

  /// Adds `waiter` to run when the job finishes; returns false (adding
  /// nothing) if it has finished already. `position` receives the handle.
  bool addWaiter(Record& record, UniqueFunction waiter, Waiters::Position& position) {
    std::lock_guard lock(record.mutex);
    if (isTerminal(record.snapshot.status)) return false;
    position = record.waiters.add(std::move(waiter));
    return true;
  }

  // ---- retention ----

  /// Evicts every finished job retention no longer keeps (past the TTL or
  /// over the limit); called by the sweep timer, and by finish() for a backlog.
  void sweep() {
    for (;;) {
      RecordPtr expired;
      {
        std::lock_guard lock(retentionMutex_);
        expired = takeExpiredLocked(std::chrono::steady_clock::now());
      }
      if (!expired) return;
      remove(std::move(expired));
    }
  }

  // ---- subscriptions ----

  Subscription subscribe(std::function<void(const Snapshot&)> callback) {
    auto subscriber = std::make_shared<Subscriber<Result>>(std::move(callback));
    {
      std::lock_guard lock(subscribersMutex_);
      auto next = std::make_shared<std::vector<std::shared_ptr<Subscriber<Result>>>>(
          subscribers_ ? *subscribers_ : std::vector<std::shared_ptr<Subscriber<Result>>>{});
      next->push_back(subscriber);
      subscribers_ = std::move(next);
      hasSubscribers_.store(true, std::memory_order_release);
    }
    std::weak_ptr<TrackerCore> weakSelf = this->shared_from_this();
    return Subscription([weakSelf, subscriber] {
      {
        std::unique_lock lock(subscriber->mutex);
        subscriber->active = false;
        subscriber->queue.clear();
        // Once reset() returns the callback is never running, so what it
        // captured may be destroyed; a callback may end its own subscription.
        subscriber->idle.wait(lock, [&] {
          return subscriber->deliveringOn == std::thread::id() ||
                 subscriber->deliveringOn == std::this_thread::get_id();
        });
      }
      if (auto self = weakSelf.lock()) self->removeSubscriber(subscriber);
    });
  }

  TrackerStats stats() const {
    TrackerStats s;
    // Moves out, moves in, moves out again: a job that passed through the
    // status between the reads would otherwise be counted as still there.
    // Read while jobs move, a count is still approximate (clamped at zero).
    auto count = [&](JobStatus status) {
      const auto i = static_cast<std::size_t>(status);
      const auto& into = status == JobStatus::Pending ? submitted_ : moves_.into[i];
      auto out = moves_.outOf[i].load(std::memory_order_acquire);
      std::uint64_t in = 0;
      for (int attempt = 0; attempt < 4; ++attempt) {
        in = into.load(std::memory_order_acquire);
        const auto outAgain = moves_.outOf[i].load(std::memory_order_acquire);
        if (outAgain == out) break;
        out = outAgain;
      }
      return in > out ? static_cast<std::size_t>(in - out) : std::size_t{0};
    };
    s.pending = count(JobStatus::Pending);
    s.running = count(JobStatus::Running);
    s.completed = count(JobStatus::Completed);
    s.failed = count(JobStatus::Failed);
    s.cancelled = count(JobStatus::Cancelled);
    s.submitted = submitted_.load(std::memory_order_relaxed);
    s.evicted = moves_.evicted.load(std::memory_order_relaxed);
    return s;
  }

  const std::shared_ptr<ExecutorCore>& executor() const noexcept { return executor_; }
  const TrackerOptions& options() const noexcept { return options_; }

  /// Called by ~JobTracker: later outcomes and progress are dropped, even
  /// from a continuation that still holds this core for a moment.
  void detach() noexcept { detached_.store(true, std::memory_order_release); }

  /// This core while its JobTracker exists, null once it was destroyed.
  static std::shared_ptr<TrackerCore> attached(const std::weak_ptr<TrackerCore>& weak) {
    auto core = weak.lock();
    if (core && core->detached_.load(std::memory_order_acquire)) core.reset();
    return core;
  }

 private:
  struct Finished {
    RecordPtr record;
    std::chrono::steady_clock::time_point at;
  };

  /// Counts a job's move between statuses (entering PENDING is counted as `submitted_`).
  void adjust(JobStatus from, JobStatus to) noexcept {
    moves_.outOf[static_cast<std::size_t>(from)].fetch_add(1, std::memory_order_relaxed);
    moves_.into[static_cast<std::size_t>(to)].fetch_add(1, std::memory_order_relaxed);
  }

  /// Whether retention no longer keeps the oldest finished job. Called
  /// with retentionMutex_ held.
  [[nodiscard]] bool hasExpiredLocked(std::chrono::steady_clock::time_point now) const {
    return !finished_.empty() && (finished_.size() > options_.maxFinishedJobs ||
                                  finished_.front().at <= now - options_.finishedTtl);
  }

  /// Takes the oldest finished job out of retention if it is no longer
  /// kept; null otherwise. Called with retentionMutex_ held.
  RecordPtr takeExpiredLocked(std::chrono::steady_clock::time_point now) {
    if (!hasExpiredLocked(now)) return nullptr;
    auto record = std::move(finished_.front().record);
    finished_.pop_front();
    return record;
  }

  /// Drops an evicted job from the registry. Each lock is held only to
  /// unlink; the record is destroyed on return, after every lock is released.
  void remove(RecordPtr record) {
    {
      const std::size_t hash = hashOf(record->snapshot.id);
      auto& shard = shards_[hash % shardCount];
      std::unique_lock lock(shard.mutex, std::defer_lock);
      lockSpinning(lock);
      RecordPtr* link = &shard.bucketOf(hash);
      while (*link && *link != record) link = &(*link)->nextInBucket;
      if (*link) {
        const RecordPtr unlinked = std::move(*link);  // `record` keeps it alive
        *link = std::move(unlinked->nextInBucket);
        --shard.size;
        (record->newer ? record->newer->older : shard.newest) = record->older;
        if (record->older) record->older->newer = record->newer;
        record->newer = record->older = nullptr;
      }
    }
    JobStatus status;
    {
      std::lock_guard recordLock(record->mutex);
      status = record->snapshot.status;
    }
    moves_.outOf[static_cast<std::size_t>(status)].fetch_add(1, std::memory_order_relaxed);
    moves_.evicted.fetch_add(1, std::memory_order_relaxed);
  }

  /// Updates a mirror with a remote snapshot (never backwards), tells
  /// subscribers, and runs its waiters once it is terminal.
  void applyRemote(Record& mirror, const Snapshot& snapshot) {
    Waiters waiters;
    {
      std::lock_guard lock(mirror.mutex);
      if (isTerminal(mirror.snapshot.status)) return;
      mirror.snapshot = snapshot;
      deliver(snapshot);
      if (isTerminal(snapshot.status)) waiters.swap(mirror.waiters);
    }
    waiters.runAll();
  }

  /// Records a change of a local job: in the store, if any, and for every
  /// subscriber. Called with the record's lock held.
  void publish(const Snapshot& snapshot) {
    if (store_) store_->save(snapshot);
    deliver(snapshot);
  }

  /// Queues `snapshot` for every subscriber. Called with the record's lock held.
  void deliver(const Snapshot& snapshot) {
    // Most trackers have no subscriber: skip the lock on every event.
    if (!hasSubscribers_.load(std::memory_order_acquire)) return;
    std::shared_ptr<const std::vector<std::shared_ptr<Subscriber<Result>>>> subscribers;
    {
      std::lock_guard lock(subscribersMutex_);
      subscribers = subscribers_;
    }
    if (!subscribers) return;
    for (const auto& subscriber : *subscribers) {
      bool startDrain = false;
      {
        std::lock_guard lock(subscriber->mutex);
        if (!subscriber->active) continue;
        if (subscriber->queue.size() >= Subscriber<Result>::maxQueued) {
          auto it = std::find_if(subscriber->queue.begin(), subscriber->queue.end(),
                                 [](const Snapshot& s) { return !isTerminal(s.status); });
          if (it != subscriber->queue.end()) subscriber->queue.erase(it);
        }
        subscriber->queue.push_back(snapshot);
        startDrain = !std::exchange(subscriber->draining, true);
      }
      if (startDrain) scheduleDrain(subscriber);
    }
  }

  // Callbacks run on the blocking pool, one at a time per subscriber, so a
  // slow or blocking callback delays only its own events.
  void scheduleDrain(const std::shared_ptr<Subscriber<Result>>& subscriber) {
    BlockingPool::Task task{nullptr, [subscriber] {
                              std::unique_lock lock(subscriber->mutex);
                              for (;;) {
                                if (subscriber->queue.empty() || !subscriber->active) {
                                  subscriber->draining = false;
                                  return;
                                }
                                Snapshot next = std::move(subscriber->queue.front());
                                subscriber->queue.pop_front();
                                subscriber->deliveringOn = std::this_thread::get_id();
                                lock.unlock();
                                try {
                                  subscriber->callback(next);
                                } catch (...) {  // NOLINT(bugprone-empty-catch)
                                  // A throwing subscriber must not stop delivery to itself or
                                  // others.
                                }
                                lock.lock();
                                subscriber->deliveringOn = std::thread::id();
                                subscriber->idle.notify_all();
                              }
                            }};
    if (!executor_->postBlocking(task)) {
      std::lock_guard lock(subscriber->mutex);
      subscriber->draining = false;
    }
  }

  void removeSubscriber(const std::shared_ptr<Subscriber<Result>>& subscriber) {
    std::lock_guard lock(subscribersMutex_);
    if (!subscribers_) return;
    auto next = std::make_shared<std::vector<std::shared_ptr<Subscriber<Result>>>>(*subscribers_);
    std::erase(*next, subscriber);
    subscribers_ = next->empty() ? nullptr : std::move(next);
    hasSubscribers_.store(subscribers_ != nullptr, std::memory_order_release);
  }

  std::shared_ptr<ExecutorCore> executor_;
  TrackerOptions options_;
  std::shared_ptr<JobStore<Result>> store_;

  std::mutex mirrorsMutex_;
  std::unordered_map<JobId, std::weak_ptr<Record>> mirrors_;

  // The registry is split by id so that threads rarely meet on one lock.
  // Each shard is a hash table chained through the records themselves
  // (Record::nextInBucket): registering a job allocates nothing more and
  // touches no other job's memory.
  static constexpr std::size_t shardCount = 16;
  static std::size_t hashOf(const JobId& id) noexcept { return std::hash<JobId>{}(id); }
  // A cache line (or two) each, so that threads on different shards do not meet there either.
  struct alignas(64) Shard {
    mutable std::shared_mutex mutex;
    std::vector<RecordPtr> buckets = std::vector<RecordPtr>(64);  // a power of two
    std::size_t size = 0;
    Record* newest = nullptr;  // then older and older through Record::older

    // The shard was chosen by the hash modulo shardCount: the bucket uses the bits above.
    std::size_t bucketIndex(std::size_t hash) const {
      return (hash / shardCount) & (buckets.size() - 1);
    }
    RecordPtr& bucketOf(std::size_t hash) { return buckets[bucketIndex(hash)]; }
    const RecordPtr& bucketOf(std::size_t hash) const { return buckets[bucketIndex(hash)]; }

    /// Links `record` at the head of its bucket (no look-up, no count).
    void pushFront(std::size_t hash, RecordPtr record) {
      auto& head = bucketOf(hash);
      record->nextInBucket = std::move(head);
      head = std::move(record);
    }

    Shard() = default;
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;
    ~Shard() {
      // Chain by chain, link by link: no recursion through the records' destructors.
      for (auto& head : buckets) {
        while (head) head = RecordPtr(std::move(head->nextInBucket));
      }
    }

    /// Doubles the buckets (load factor 1).
    void grow() {
      std::vector<RecordPtr> old(buckets.size() * 2);
      old.swap(buckets);
      for (auto& chain : old) {
        while (chain) {
          RecordPtr record = std::move(chain);
          chain = std::move(record->nextInBucket);
          const std::size_t hash = hashOf(record->snapshot.id);
          pushFront(hash, std::move(record));
        }
      }
    }
  };
  std::array<Shard, shardCount> shards_;

  // Registration sequence numbers: the creation time in milliseconds in the
  // high bits, a counter in the low ones. Increasing across threads without
  // a lock, and createdAt (read back from it) never goes backwards.
  static constexpr int sequenceCounterBits = 22;
  std::uint64_t nextSequence() {
    const auto now =
        static_cast<std::uint64_t>(snapshotNow().time_since_epoch() / std::chrono::milliseconds(1));
    auto last = lastSequence_.load(std::memory_order_relaxed);
    std::uint64_t next = 0;
    do {
      next = std::max(last + 1, now << sequenceCounterBits);
    } while (!lastSequence_.compare_exchange_weak(last, next, std::memory_order_relaxed));
    return next;
  }
  static std::chrono::system_clock::time_point createdAtOf(std::uint64_t sequence) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::milliseconds(sequence >> sequenceCounterBits)));
  }
  alignas(64) std::atomic<std::uint64_t> lastSequence_{0};  // the submitting threads'

  alignas(64) std::mutex retentionMutex_;  // the finishing threads'
  RingQueue<Finished> finished_;           // in the order jobs finished

  // Kept jobs by status, as monotonic counts of the moves into and out of
  // each status: submitting a job writes only submitted_, on a cache line
  // of its own, never one that the finishing threads write.
  alignas(64) std::atomic<std::uint64_t> submitted_{0};
  struct alignas(64) Moves {
    std::array<std::atomic<std::uint64_t>, 5> into{};   // PENDING's is submitted_
    std::array<std::atomic<std::uint64_t>, 5> outOf{};  // eviction included
    std::atomic<std::uint64_t> evicted{0};
  } moves_;
  std::atomic<bool> detached_{false};  // the JobTracker is gone

  std::mutex subscribersMutex_;
  std::atomic<bool> hasSubscribers_{false};  // subscribers_ != nullptr
  std::shared_ptr<const std::vector<std::shared_ptr<Subscriber<Result>>>> subscribers_;
};

/// JobContext's link to its record; outlives the tracker safely.
template <class Result>
class RecordProgress final : public ProgressSink {
 public:
  RecordProgress(std::weak_ptr<TrackerCore<Result>> core, std::shared_ptr<JobRecord<Result>> record)
      : core_(std::move(core)), record_(std::move(record)) {}
  void reportProgress(int percent, std::string message) override {
    if (auto core = TrackerCore<Result>::attached(core_)) {
      core->reportProgress(*record_, percent, std::move(message));
    }
  }

 private:
  std::weak_ptr<TrackerCore<Result>> core_;
  std::shared_ptr<JobRecord<Result>> record_;
};

}  // namespace detail

/// The job registry: submit work, get back a JobId at once, then poll,
/// wait for, list, cancel or subscribe to jobs.
///
/// Status: PENDING at submit; RUNNING once the work first runs on a thread
/// (or reports progress); then exactly one terminal state (COMPLETED,
/// FAILED, CANCELLED), set once: a late writer never overwrites it.
///
/// Thread safety: every member function may be called from any thread at
/// any time. Destroying the tracker while jobs run is safe: they finish on
/// their executor and their outcome is dropped.
template <class Result = nlohmann::json>
class JobTracker {
 public:
  using Snapshot = JobSnapshot<Result>;

  /// A tracker whose jobs run on `executor` (which also runs its retention
  /// timer and subscription callbacks).
  explicit JobTracker(AsyncExecutor& executor, TrackerOptions options = {})
      : JobTracker(executor, options, nullptr) {}

  /// A tracker that shares its jobs through `store` (e.g. a RedisJobStore):
  /// get, list, wait, asyncWait, cancel and subscribe then also see the jobs
  /// of every other instance using the same store. Its own jobs are still
  /// served from memory.
  JobTracker(AsyncExecutor& executor, TrackerOptions options,
             std::shared_ptr<JobStore<Result>> store)
      : core_(std::make_shared<detail::TrackerCore<Result>>(detail::coreOf(executor), options,
                                                            std::move(store))) {
    if (core_->store()) core_->store()->attach(core_);
    startSweep();
  }

  JobTracker(const JobTracker&) = delete;
  JobTracker& operator=(const JobTracker&) = delete;

  ~JobTracker() {
    core_->detach();
    if (sweepHook_) core_->executor()->removeShutdownHook(*sweepHook_);
    stopSweep(sweepTimer_);
  }

  /// Registers a job named `name` and starts it by calling `supplier`, which
  /// returns a Future<T> (typically from AsyncExecutor) and may take a
  /// JobContext. Returns the new id at once. T converts to Result (through
  /// to_json when Result is nlohmann::json). A supplier that throws, or
  /// returns an invalid future, gives a FAILED job: a job is never lost.
  template <class Supplier>
  JobId submit(std::string name, Supplier&& supplier) {
    static_assert(std::is_invocable_v<Supplier&, JobContext> || std::is_invocable_v<Supplier&>,
                  "a job supplier is callable as Future<T>() or Future<T>(JobContext)");
    const JobId id = JobId::generate();
    auto record = detail::makeRecycled<detail::JobRecord<Result>>(id, std::move(name));
    core_->insert(record);
    try {
      if constexpr (std::is_invocable_v<Supplier&, JobContext>) {
        // The job is visible (list) from insert() on: if it was cancelled
        // already, its context starts out stopped rather than never stopping.
        std::stop_source stop;
        {
          std::lock_guard lock(record->mutex);
          if (isTerminal(record->snapshot.status)) {
            stop.request_stop();
          } else {
            record->stop = stop;
          }
        }
        std::stop_token token = stop.get_token();
        auto sink = std::make_shared<detail::RecordProgress<Result>>(core_, record);
        attach(record, supplier(JobContext(id, std::move(token), std::move(sink))));
      } else {
        attach(record, supplier());
      }
    } catch (...) {
      core_->fail(record, std::current_exception());
    }
    return id;
  }

  /// A snapshot of the job, or nullopt for an id never seen or evicted
  /// (never reported as PENDING). Never torn. Cost: one hash lookup.
  [[nodiscard]] std::optional<Snapshot> get(const JobId& id) const {
    auto record = core_->find(id);
    if (!record) return core_->store() ? core_->store()->load(id) : std::nullopt;
    std::lock_guard lock(record->mutex);
    return record->snapshot;
  }

  /// Up to `limit` jobs matching `filter`, newest first. Cost grows with
  /// `limit` (and with the jobs a filter skips), not with the jobs kept.
  [[nodiscard]] std::vector<Snapshot> list(std::size_t limit = 50,
                                           const ListFilter& filter = {}) const {
    auto local = core_->list(limit, filter);
    if (!core_->store() || filter.localOnly) return local;
    // The store has every instance's jobs; this instance's own are fresher in memory.
    auto merged = core_->store()->list(limit, filter);
    std::unordered_map<JobId, std::size_t> position;
    for (std::size_t i = 0; i < merged.size(); ++i) position.emplace(merged[i].id, i);
    for (auto& snapshot : local) {
      if (auto it = position.find(snapshot.id); it != position.end()) {
        merged[it->second] = std::move(snapshot);
      } else {
        merged.push_back(std::move(snapshot));
      }
    }
    std::stable_sort(merged.begin(), merged.end(), [](const Snapshot& a, const Snapshot& b) {
      return a.createdAt > b.createdAt;
    });
    if (merged.size() > limit) merged.resize(limit);
    return merged;
  }

  /// Cancels the job: it becomes CANCELLED and its work is asked to stop
  /// (its future is cancelled and the JobContext's stop token signalled).
  /// With a store, a job of another instance is cancelled by its owner.
  CancelResult cancel(const JobId& id) { return core_->cancel(id); }

  /// Blocks until the job finishes or `timeout` passes; returns its snapshot
  /// then (not finished if the time ran out), or nullopt for an unknown id.
  std::optional<Snapshot> wait(const JobId& id, std::chrono::milliseconds timeout) const {
    auto record = core_->findOrMirror(id);
    if (!record) return std::nullopt;
    struct Signal {
      std::mutex mutex;
      std::condition_variable cv;
      bool done = false;
    };
    auto signal = std::make_shared<Signal>();
    detail::Waiters::Position position;
    const bool added = core_->addWaiter(
        *record,
        [signal] {
          {
            std::lock_guard lock(signal->mutex);
            signal->done = true;
          }
          signal->cv.notify_all();
        },
        position);
    if (added) {
      std::unique_lock lock(signal->mutex);
      if (!signal->cv.wait_for(lock, detail::boundedTimeout(timeout),
                               [&] { return signal->done; })) {
        lock.unlock();
        removeWaiter(*record, position);
      }
    }
    std::lock_guard lock(record->mutex);
    return record->snapshot;
  }

  /// Waits asynchronously, the Asio way: completes `token` with
  /// `(std::optional<Snapshot>)` when the job finishes or `timeout` passes
  /// (the then-current snapshot), or at once with nullopt for an unknown id.
  /// No thread waits. The handler runs on its associated executor (the core
  /// pool if none). Emitting the operation's cancellation slot completes it
  /// early with the current snapshot.
  template <class Token>
  auto asyncWait(const JobId& id, std::chrono::milliseconds timeout, Token&& token) {
    return asio::async_initiate<Token, void(std::optional<Snapshot>)>(
        [core = core_, id, timeout](auto handler) {
          startAsyncWait(core, id, timeout, std::move(handler));
        },
        token);
  }

  /// Calls `callback` with a snapshot on every status and progress change of
  /// every job, until the returned Subscription is destroyed. Callbacks for
  /// one subscription run one at a time, in order, on the executor's
  /// blocking pool, never inside submit/cancel; a throwing callback is
  /// ignored, and a stalled one only delays (and may drop) its own
  /// non-terminal events, though it occupies a blocking-pool thread while
  /// it stalls. Destroying the Subscription waits for a callback in
  /// progress (see Subscription::reset).
  [[nodiscard]] Subscription subscribe(std::function<void(const Snapshot&)> callback) {
    return core_->subscribe(std::move(callback));
  }

  /// Counts of the kept jobs by status, total submitted and evicted.
  [[nodiscard]] TrackerStats stats() const { return core_->stats(); }

 private:
  using Core = detail::TrackerCore<Result>;
  using Record = detail::JobRecord<Result>;

  template <class F>
  void attach(const std::shared_ptr<Record>& record, F&& future) {
    using FutureType = std::decay_t<F>;
    static_assert(detail::IsFuture<FutureType>, "a job supplier must return a jobtrack::Future");
    using T = typename FutureType::ValueType;
    FutureType owned = std::forward<F>(future);
    auto state = std::move(detail::stateOf(owned));
    if (!state) throw std::future_error(std::future_errc::no_state);
    bool cancelledMeanwhile = false;
    {
      std::lock_guard lock(record->mutex);
      cancelledMeanwhile = isTerminal(record->snapshot.status);
      if (!cancelledMeanwhile) record->work = state;
    }
    if (cancelledMeanwhile) state->cancel();  // cancelled while the supplier ran
    std::weak_ptr<Core> weakCore = core_;
    state->onStarted([weakCore, record] {
      if (auto core = Core::attached(weakCore)) core->markRunning(*record);
    });
    state->setContinuation([weakCore, record, state] {
      auto core = Core::attached(weakCore);
      if (!core) return;
      if (const auto& error = state->exception()) {
        core->fail(record, error);
        return;
      }
      try {
        core->complete(record, detail::toResult<Result, T>(state->takeValue()));
      } catch (...) {
        core->fail(record, std::current_exception());
      }
    });
  }

  static void removeWaiter(Record& record, detail::Waiters::Position position) {
    std::lock_guard lock(record.mutex);
    // Once the job has finished its waiters were taken away: nothing to remove.
    if (!isTerminal(record.snapshot.status)) record.waiters.remove(position);
  }

  template <class Handler>
  static void startAsyncWait(const std::shared_ptr<Core>& core, const JobId& id,
                             std::chrono::milliseconds timeout, Handler handler) {
    struct Operation {
      Operation(Handler h, asio::strand<asio::any_io_executor> s)
          : handler(std::move(h)),
            // Keep the handler's executor busy until we complete, as Asio's own operations do.
            work(asio::prefer(asio::get_associated_executor(*handler, s.get_inner_executor()),
                              asio::execution::outstanding_work.tracked)),
            strand(s),
            timer(std::move(s)) {}
      std::mutex mutex;
      bool done = false;
      std::optional<Handler> handler;
      asio::any_io_executor work;
      asio::strand<asio::any_io_executor> strand;
      asio::steady_timer timer;
      std::shared_ptr<Record> record;
      detail::Waiters::Position position;
      bool waiting = false;
    };
    auto fallback = core->executor()->executor();
    auto record = core->findOrMirror(id);
    auto op = std::make_shared<Operation>(std::move(handler), asio::make_strand(fallback));
    op->record = record;

    // Completes once, whoever comes first: the job, the timer, or a cancel.
    auto completeOnce = [](const std::shared_ptr<Operation>& o) {
      std::optional<Handler> h;
      asio::any_io_executor work;
      bool waiting = false;
      {
        std::lock_guard lock(o->mutex);
        if (o->done) return;
        o->done = true;
        h.emplace(std::move(*o->handler));
        o->handler.reset();
        work = std::move(o->work);
        waiting = o->waiting;
      }
      std::optional<Snapshot> snapshot;
      if (o->record) {
        if (waiting) removeWaiter(*o->record, o->position);
        std::lock_guard lock(o->record->mutex);
        snapshot = o->record->snapshot;
      }
      asio::post(o->strand, [o] { o->timer.cancel(); });
      // The slot is cleared by the posted completion, on the handler's own
      // executor: completeOnce may run on any thread (a slot is not
      // thread-safe) or inside the slot's handler (which clear() destroys).
      asio::post(work, [h = std::move(*h), snapshot = std::move(snapshot)]() mutable {
        asio::get_associated_cancellation_slot(h).clear();
        std::move(h)(std::move(snapshot));
      });
    };

    if (!record) {
      completeOnce(op);
      return;
    }
    auto slot = asio::get_associated_cancellation_slot(*op->handler);
    if (slot.is_connected()) {
      slot.assign([weakOp = std::weak_ptr<Operation>(op), completeOnce](asio::cancellation_type) {
        if (auto o = weakOp.lock()) completeOnce(o);
      });
    }
    {
      std::lock_guard lock(op->mutex);
      op->waiting = core->addWaiter(
          *record,
          [weakOp = std::weak_ptr<Operation>(op), completeOnce] {
            if (auto o = weakOp.lock()) completeOnce(o);
          },
          op->position);
    }
    if (!op->waiting) {
      completeOnce(op);
      return;
    }
    asio::post(op->strand, [op, timeout, completeOnce] {
      {
        // Completed before the timer was armed: its cancel has run already,
        // so arming it now would keep the operation alive until it expires.
        std::lock_guard lock(op->mutex);
        if (op->done) return;
      }
      op->timer.expires_after(detail::boundedTimeout(timeout));
      op->timer.async_wait([op, completeOnce](const std::error_code& error) {
        if (!error) completeOnce(op);
      });
    });
  }

  struct SweepTimer {
    explicit SweepTimer(const asio::any_io_executor& ex)
        : strand(asio::make_strand(ex)), timer(strand) {}
    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer timer;
    bool stopped = false;  // guarded by the strand
  };

  void startSweep() {
    const auto ttl = core_->options().finishedTtl;
    const auto interval = std::clamp<std::chrono::milliseconds>(
        ttl / 2, std::chrono::milliseconds(1), std::chrono::milliseconds(1000));
    sweepTimer_ = std::make_shared<SweepTimer>(core_->executor()->executor());
    // The timer must not keep the executor's shutdown waiting.
    sweepHook_ = core_->executor()->addShutdownHook([timer = sweepTimer_] { stopSweep(timer); });
    asio::post(sweepTimer_->strand, [timer = sweepTimer_, weakCore = std::weak_ptr<Core>(core_),
                                     interval] { scheduleSweep(timer, weakCore, interval); });
  }

  static void scheduleSweep(const std::shared_ptr<SweepTimer>& timer,
                            const std::weak_ptr<Core>& weakCore,
                            std::chrono::milliseconds interval) {
    if (timer->stopped) return;
    timer->timer.expires_after(interval);
    timer->timer.async_wait([timer, weakCore, interval](const std::error_code& error) {
      if (error) return;
      auto core = weakCore.lock();
      if (!core) return;
      core->sweep();
      scheduleSweep(timer, weakCore, interval);
    });
  }

  static void stopSweep(const std::shared_ptr<SweepTimer>& timer) {
    asio::post(timer->strand, [timer] {
      timer->stopped = true;
      timer->timer.cancel();
    });
  }

  std::shared_ptr<Core> core_;
  std::shared_ptr<SweepTimer> sweepTimer_;
  std::optional<detail::ExecutorCore::HookHandle> sweepHook_;
};

}  // namespace jobtrack
