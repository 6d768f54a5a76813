#pragma once

/// @file
/// RedisJobStore<Result>: a JobStore shared through Redis, so that several
/// service instances (replicas behind a load balancer) see one registry of
/// jobs. Optional: needs hiredis, through the CMake target jobtrack::redis;
/// the umbrella header jobtrack/jobtrack.hpp does not include it.
///
///   auto store = std::make_shared<jobtrack::RedisJobStore<>>(
///       jobtrack::RedisStoreOptions{.url = "redis://redis:6379"});
///   jobtrack::JobTracker<> tracker(executor, {}, store);
///
/// Key layout (prefix "jobtrack" by default), see docs/scaling.md:
///   {prefix}:job:{id}        hash: data (snapshot JSON), status, owner,
///                            incarnation; finished jobs expire after finishedTtl
///   {prefix}:jobs            sorted set of ids by creation time (list)
///   {prefix}:active          set of ids not yet finished (the lease scan)
///   {prefix}:instance:{iid}  an instance's lease: its incarnation, with a TTL
///   {prefix}:events          channel: every change, {"origin","incarnation","snapshot"}
///   {prefix}:cancel:{iid}    channel: cancel requests for that instance's jobs
///
/// Threads: a writer (saves, its own connection), a subscriber (pub/sub),
/// a lease/scan thread; load/list/requestCancel share one mutex-guarded
/// connection. All are stopped and joined by the destructor.

#include "jobtrack/detail/redis_connection.hpp"
#include "jobtrack/job_id.hpp"
#include "jobtrack/job_snapshot.hpp"
#include "jobtrack/job_status.hpp"
#include "jobtrack/job_store.hpp"
#include "jobtrack/job_tracker.hpp"
#include "jobtrack/json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace jobtrack {

/// Settings of a RedisJobStore.
struct RedisStoreOptions {
  /// `redis://[[user]:password@]host[:port][/db]`.
  std::string url = "redis://127.0.0.1:6379";
  /// Every key and channel starts with `{keyPrefix}:`; instances sharing jobs
  /// use the same prefix.
  std::string keyPrefix = "jobtrack";
  /// This instance's name, unique among the live instances; empty: a random
  /// one. A restarted instance may reuse its name (its old jobs are still
  /// marked lost: each start is a new incarnation).
  std::string instanceId;
  /// An instance whose lease is not renewed for this long is dead, and its
  /// unfinished jobs become FAILED with errorKind "lost". Renewed every
  /// leaseTtl/3, which is also how often live instances scan for lost jobs.
  std::chrono::seconds leaseTtl{10};
  /// Finished jobs expire from Redis this long after they finished (match
  /// TrackerOptions::finishedTtl).
  std::chrono::milliseconds finishedTtl = std::chrono::hours(1);
  /// Bound on connecting, and on each reply of load/list/requestCancel.
  std::chrono::milliseconds connectTimeout{500};
  std::chrono::milliseconds commandTimeout{500};
  /// How long requestCancel waits for the owning instance to answer.
  std::chrono::milliseconds cancelTimeout{2000};
  /// Reconnection backoff: doubles from min to max while Redis is unreachable.
  std::chrono::milliseconds reconnectDelayMin{100};
  std::chrono::milliseconds reconnectDelayMax{5000};
  /// At most this many jobs wait to be written; past it, further saves are
  /// dropped and rewritten from the newest snapshot once the queue drains.
  std::size_t maxQueuedSaves = 100'000;
  /// Receives errors and warnings (one line each, no newline); called from
  /// the store's threads. Empty: written to std::cerr.
  std::function<void(std::string_view)> logger;
};

/// Counters of a RedisJobStore, for monitoring and tests.
struct RedisStoreStats {
  std::uint64_t written = 0;     ///< snapshots written to Redis
  std::uint64_t dropped = 0;     ///< saves dropped because the queue was full
  std::uint64_t reconnects = 0;  ///< times the writer reconnected after a failure
  std::uint64_t lostMarked = 0;  ///< other instances' jobs this one marked lost
  std::uint64_t badRecords = 0;  ///< unreadable job records or messages skipped
  std::size_t queued = 0;        ///< jobs waiting to be written
};

namespace detail {

// Writes a job snapshot unless the stored one is terminal already; keeps the
// index, the active set, the owner's lease, and publishes the change.
// KEYS: job, jobs index, active set, own lease.
// ARGV: data, status, owner, incarnation, score, finishedTtl ms, id, channel,
//       event, terminal ("1"/"0"), lease ms.
inline constexpr std::string_view redisSaveScript = R"lua(
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local current = redis.call('HGET', KEYS[1], 'status')
if current == 'COMPLETED' or current == 'FAILED' or current == 'CANCELLED' then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'status', ARGV[2], 'owner', ARGV[3], 'incarnation', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[7])
if ARGV[10] == '1' then
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('SREM', KEYS[3], ARGV[7])
else
  redis.call('PERSIST', KEYS[1])
  redis.call('SADD', KEYS[3], ARGV[7])
end
redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[11])
redis.call('PUBLISH', ARGV[8], ARGV[9])
return 1
)lua";

// Marks a job lost, atomically: only while it is unfinished, still owned by
// the same incarnation, and (unless ARGV[7] is "1", the owner itself) that
// incarnation's lease is gone. So one survivor writes it, and a terminal
// state is never overwritten.
// KEYS: job, active set, the owner's lease.
// ARGV: incarnation, data, finishedTtl ms, id, channel, event, self.
inline constexpr std::string_view redisMarkLostScript = R"lua(
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  redis.call('SREM', KEYS[2], ARGV[4])
  return 0
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'COMPLETED' or status == 'FAILED' or status == 'CANCELLED' then
  redis.call('SREM', KEYS[2], ARGV[4])
  return 0
end
if redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[1] then return 0 end
if ARGV[7] ~= '1' and redis.call('GET', KEYS[3]) == ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'status', 'FAILED')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SREM', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
)lua";

// Deletes a lease only if it is still this incarnation's.
inline constexpr std::string_view redisReleaseLeaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

inline std::string randomHex(std::size_t digits) {
  std::string text = to_string(JobId::generate()) + to_string(JobId::generate());
  std::erase(text, '-');
  return text.substr(0, digits);
}

inline std::string millisText(std::chrono::milliseconds ms) { return std::to_string(ms.count()); }

/// The shared state of a RedisJobStore and its threads (which keep it alive
/// through shared_ptr, so the store may be destroyed on one of them).
template <class Result>
class RedisStoreCore : public std::enable_shared_from_this<RedisStoreCore<Result>> {
 public:
  using Snapshot = JobSnapshot<Result>;
  using SnapshotPtr = std::shared_ptr<const Snapshot>;
  using Clock = std::chrono::steady_clock;

  explicit RedisStoreCore(RedisStoreOptions options)
      : options_(std::move(options)), endpoint_(parseRedisUrl(options_.url)) {
    if (options_.leaseTtl.count() <= 0)
      throw std::invalid_argument("jobtrack: RedisStoreOptions::leaseTtl must be positive");
    if (options_.finishedTtl.count() <= 0) {
      throw std::invalid_argument("jobtrack: RedisStoreOptions::finishedTtl must be positive");
    }
    if (options_.maxQueuedSaves == 0)
      throw std::invalid_argument("jobtrack: RedisStoreOptions::maxQueuedSaves must be positive");
    if (options_.instanceId.empty()) options_.instanceId = "instance-" + randomHex(12);
    incarnation_ = randomHex(32);
    const std::string& p = options_.keyPrefix;
    jobsKey_ = p + ":jobs";
    activeKey_ = p + ":active";
    eventsChannel_ = p + ":events";
    cancelChannel_ = cancelChannelOf(options_.instanceId);
    leaseKey_ = leaseKeyOf(options_.instanceId);
  }

  void start() {
    auto self = this->shared_from_this();
    writer_ = std::thread([self] { self->writerLoop(); });
    subscriber_ = std::thread([self] { self->subscriberLoop(); });
    lease_ = std::thread([self] { self->leaseLoop(); });
  }

  /// Stops and joins the threads (detaching the calling one, if it is one
  /// of them), then marks this instance's unfinished jobs lost and releases
  /// its lease. Bounded by the timeouts. Idempotent.
  void stop() {
    if (stopping_.exchange(true)) return;
    { std::lock_guard lock(queueMutex_); }
    queueCv_.notify_all();
    { std::lock_guard lock(stopMutex_); }
    stopCv_.notify_all();
    {
      std::lock_guard lock(subscriberMutex_);
      if (subscriberFd_ >= 0) ::shutdown(subscriberFd_, SHUT_RDWR);
    }
    for (std::thread* thread : {&writer_, &subscriber_, &lease_}) {
      if (!thread->joinable()) continue;
      if (thread->get_id() == std::this_thread::get_id()) {
        thread->detach();
      } else {
        thread->join();
      }
    }
    releaseOwnJobs();
  }

  void attach(std::weak_ptr<JobStoreListener<Result>> listener) {
    std::lock_guard lock(listenerMutex_);
    listener_ = std::move(listener);
  }

  // ---- save: the hot path, no I/O ----

  void save(const Snapshot& snapshot) {
    auto shared = std::make_shared<const Snapshot>(snapshot);
    const bool terminal = isTerminal(snapshot.status);
    {
      std::lock_guard lock(queueMutex_);
      if (terminal) rememberTerminal(snapshot.id, snapshot.status);
      unwritten_[snapshot.id] = shared;
      if (auto it = pending_.find(snapshot.id); it != pending_.end()) {
        it->second = std::move(shared);
      } else if (pending_.size() < options_.maxQueuedSaves) {
        pending_.emplace(snapshot.id, std::move(shared));
        order_.push_back(snapshot.id);
      } else {
        overflowed_ = true;
        dropped_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    queueCv_.notify_one();
  }

  bool flush(std::chrono::milliseconds timeout) {
    std::unique_lock lock(queueMutex_);
    return flushedCv_.wait_for(
        lock, timeout, [&] { return order_.empty() && replies_.empty() && inFlight_ == 0; });
  }

  // ---- synchronous reads, on the shared connection ----

  std::optional<Snapshot> load(const JobId& id) {
    std::unique_lock lock(syncMutex_);
    if (!ensureSyncConnected()) return std::nullopt;
    const std::string key = jobKey(id);
    auto reply = sync_.command({"HGET", key, "data"});
    if (!reply) return syncFailed();
    lock.unlock();
    auto snapshot = readRecord(key, reply.get());
    if (snapshot && !isTerminal(snapshot->status)) watch(id);
    return snapshot;
  }

  std::vector<Snapshot> list(std::size_t limit, const ListFilter& filter) {
    std::vector<Snapshot> result;
    if (limit == 0) return result;
    std::lock_guard lock(syncMutex_);
    if (!ensureSyncConnected()) return result;
    const std::size_t page = std::clamp<std::size_t>(limit, 32, 1000);
    std::vector<std::string> stale;
    for (std::size_t start = 0; result.size() < limit; start += page) {
      auto ids = sync_.command(
          {"ZREVRANGE", jobsKey_, std::to_string(start), std::to_string(start + page - 1)});
      if (!ids) {
        syncFailed();
        return result;
      }
      if (ids->type != REDIS_REPLY_ARRAY || ids->elements == 0) break;
      for (std::size_t i = 0; i < ids->elements; ++i) {
        sync_.append({"HGET",
                      options_.keyPrefix + ":job:" + std::string(replyText(ids->element[i])),
                      "data"});
      }
      for (std::size_t i = 0; i < ids->elements; ++i) {
        auto reply = sync_.reply();
        if (!reply) {
          syncFailed();
          return result;
        }
        const std::string member(replyText(ids->element[i]));
        if (reply->type == REDIS_REPLY_NIL) {
          stale.push_back(member);  // expired: drop it from the index
          continue;
        }
        auto snapshot = readRecord(options_.keyPrefix + ":job:" + member, reply.get());
        if (!snapshot || result.size() >= limit) continue;
        if (filter.status && snapshot->status != *filter.status) continue;
        if (!std::string_view(snapshot->name).starts_with(filter.namePrefix)) continue;
        result.push_back(std::move(*snapshot));
      }
      if (ids->elements < page) break;
    }
    if (!stale.empty()) {
      std::vector<std::string> command{"ZREM", jobsKey_};
      command.insert(command.end(), stale.begin(), stale.end());
      if (!sync_.command(command)) syncFailed();
    }
    return result;
  }

  CancelResult requestCancel(const JobId& id) {
    std::unique_lock lock(syncMutex_);
    if (!ensureSyncConnected()) return CancelResult::NotFound;
    const std::string key = jobKey(id);
    auto record = sync_.command({"HMGET", key, "status", "owner", "incarnation"});
    if (!record) return syncFailedCancel();
    if (isErrorReply(record.get())) {
      reportBad("job record " + key + " is not a hash: " + std::string(replyText(record.get())));
      return CancelResult::NotFound;
    }
    if (record->type != REDIS_REPLY_ARRAY || record->elements != 3 ||
        record->element[0]->type != REDIS_REPLY_STRING) {
      return CancelResult::NotFound;
    }
    const std::string status(replyText(record->element[0]));
    const std::string owner(replyText(record->element[1]));
    const std::string incarnation(replyText(record->element[2]));
    if (const auto parsed = parseJobStatus(status); parsed && isTerminal(*parsed)) {
      return CancelResult::AlreadyFinished;
    }

    const std::string replyKey = options_.keyPrefix + ":cancel-reply:" + randomHex(32);
    const nlohmann::json request{{"jobId", id}, {"replyTo", replyKey}};
    const auto deadline = Clock::now() + options_.cancelTimeout;
    bool delivered = false;
    for (;;) {
      auto receivers = sync_.command({"PUBLISH", cancelChannelOf(owner), request.dump()});
      if (!receivers) return syncFailedCancel();
      delivered = receivers->type == REDIS_REPLY_INTEGER && receivers->integer > 0;
      if (delivered || Clock::now() >= deadline) break;
      // Nobody listens: a live owner is reconnecting (retry until the
      // deadline); a dead one never will.
      auto lease = sync_.command({"GET", leaseKeyOf(owner)});
      if (!lease) return syncFailedCancel();
      if (lease->type != REDIS_REPLY_STRING || replyText(lease.get()) != incarnation) break;
      lock.unlock();
      const bool running = pause(std::chrono::milliseconds(50));
      lock.lock();
      if (!running || !ensureSyncConnected()) return CancelResult::NotFound;
    }
    std::string answer;
    if (delivered) {
      const double seconds = static_cast<double>(options_.cancelTimeout.count()) / 1000.0;
      char secondsText[32];
      std::snprintf(secondsText, sizeof secondsText, "%.3f", seconds);
      sync_.setTimeout(options_.cancelTimeout + options_.commandTimeout);
      auto popped = sync_.command({"BLPOP", replyKey, secondsText});
      sync_.setTimeout(options_.commandTimeout);
      if (!popped) return syncFailedCancel();
      if (popped->type == REDIS_REPLY_ARRAY && popped->elements == 2)
        answer = replyText(popped->element[1]);
    }
    if (answer == "cancelled") return CancelResult::Cancelled;
    if (answer == "finished") return CancelResult::AlreadyFinished;
    // Nobody answered for the job: if its owner's incarnation is dead, the
    // job is lost, and marking it so (at most once, atomically) finishes it.
    auto lease = sync_.command({"GET", leaseKeyOf(owner)});
    if (!lease) return syncFailedCancel();
    if (replyText(lease.get()) != incarnation || lease->type == REDIS_REPLY_NIL) {
      lock.unlock();
      if (auto snapshot = load(id); snapshot && !isTerminal(snapshot->status)) {
        std::lock_guard relock(syncMutex_);
        if (sync_.connected()) markLost(sync_, *snapshot, owner, incarnation, false);
      }
      auto after = load(id);
      return after && isTerminal(after->status) ? CancelResult::AlreadyFinished
                                                : CancelResult::NotFound;
    }
    log(answer.empty()
            ? "cancel of job " + to_string(id) + ": its owner '" + owner + "' did not answer"
            : "cancel of job " + to_string(id) + ": its owner '" + owner + "' does not know it");
    return CancelResult::NotFound;
  }

  const std::string& instanceId() const noexcept { return options_.instanceId; }

  bool waitSubscribed(std::chrono::milliseconds timeout) {
    std::unique_lock lock(subscriberMutex_);
    return subscribedCv_.wait_for(lock, timeout, [&] { return subscribed_; });
  }

  RedisStoreStats stats() const {
    RedisStoreStats s;
    s.written = written_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.reconnects = reconnects_.load(std::memory_order_relaxed);
    s.lostMarked = lostMarked_.load(std::memory_order_relaxed);
    s.badRecords = badRecords_.load(std::memory_order_relaxed);
    std::lock_guard lock(queueMutex_);
    s.queued = pending_.size() + inFlight_;
    return s;
  }

 private:
  struct PendingReply {
    std::string key;
    std::string value;
  };
  struct BatchItem {
    JobId id;
    SnapshotPtr snapshot;
  };

  std::string jobKey(const JobId& id) const { return options_.keyPrefix + ":job:" + to_string(id); }
  std::string leaseKeyOf(const std::string& instance) const {
    return options_.keyPrefix + ":instance:" + instance;
  }
  std::string cancelChannelOf(const std::string& instance) const {
    return options_.keyPrefix + ":cancel:" + instance;
  }

  std::string eventOf(const std::string& origin, const std::string& incarnation,
                      const std::string& data) const {
    return R"({"origin":)" + nlohmann::json(origin).dump() + R"(,"incarnation":)" +
           nlohmann::json(incarnation).dump() + R"(,"snapshot":)" + data + "}";
  }

  static std::string dataOf(const Snapshot& snapshot) {
    // Invalid UTF-8 (in a message, say) is replaced rather than thrown on.
    return nlohmann::json(snapshot).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  // ---- logging ----

  void log(const std::string& message) const {
    const std::string line = "jobtrack redis store '" + options_.instanceId + "': " + message;
    try {
      if (options_.logger) {
        options_.logger(line);
      } else {
        std::cerr << line << std::endl;
      }
    } catch (...) {  // NOLINT(bugprone-empty-catch): a throwing logger must not stop the store
    }
  }

  void reportBad(const std::string& message) {
    badRecords_.fetch_add(1, std::memory_order_relaxed);
    log("bad data skipped: " + message);
  }

  /// The snapshot in a record's `data` reply, or nullopt (logged) for
  /// anything unreadable.
  std::optional<Snapshot> readRecord(const std::string& key, const redisReply* reply) {
    if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
    if (reply->type != REDIS_REPLY_STRING) {
      reportBad(key + ": " +
                (isErrorReply(reply) ? std::string(replyText(reply)) : "unexpected reply type"));
      return std::nullopt;
    }
    try {
      return nlohmann::json::parse(replyText(reply)).template get<Snapshot>();
    } catch (const std::exception& e) {
      reportBad(key + ": " + e.what());
      return std::nullopt;
    }
  }

  // ---- the shared synchronous connection (syncMutex_ held) ----

  bool ensureSyncConnected() {
    if (sync_.connected()) return true;
    const auto now = Clock::now();
    if (now < syncRetryAt_) return false;  // fail fast while Redis is down
    if (sync_.connect(endpoint_, options_.connectTimeout, options_.commandTimeout)) {
      syncDelay_ = options_.reconnectDelayMin;
      if (syncDown_) log("reconnected (requests)");
      syncDown_ = false;
      return true;
    }
    if (!syncDown_) log("Redis unreachable (requests): " + sync_.error());
    syncDown_ = true;
    syncRetryAt_ = now + syncDelay_;
    syncDelay_ = std::min(syncDelay_ * 2, options_.reconnectDelayMax);
    return false;
  }

  std::nullopt_t syncFailed() {
    if (!syncDown_) log("Redis connection lost (requests): " + sync_.error());
    syncDown_ = true;
    syncRetryAt_ = Clock::now();  // the next request tries once more, then backs off
    return std::nullopt;
  }

  CancelResult syncFailedCancel() {
    syncFailed();
    return CancelResult::NotFound;
  }

  // ---- jobs of other instances someone is looking at ----

  void watch(const JobId& id) {
    std::lock_guard lock(watchMutex_);
    if (!watched_.insert(id).second) return;
    watchOrder_.push_back(id);
    constexpr std::size_t maxWatched = 4096;
    while (watchOrder_.size() > maxWatched) {
      watched_.erase(watchOrder_.front());
      watchOrder_.pop_front();
    }
  }

  void unwatch(const JobId& id) {
    std::lock_guard lock(watchMutex_);
    if (watched_.erase(id) != 0) std::erase(watchOrder_, id);
  }

  std::shared_ptr<JobStoreListener<Result>> listener() {
    std::lock_guard lock(listenerMutex_);
    return listener_.lock();
  }

  /// After the subscriber was disconnected, events may have been missed:
  /// re-read the unfinished remote jobs someone loaded and report them.
  void reloadWatched() {
    std::vector<JobId> ids;
    {
      std::lock_guard lock(watchMutex_);
      ids.assign(watchOrder_.begin(), watchOrder_.end());
    }
    auto target = listener();
    for (const auto& id : ids) {
      if (stopping_) return;
      auto snapshot = load(id);
      if (!snapshot) continue;
      if (isTerminal(snapshot->status)) unwatch(id);
      if (target) target->onRemoteChange(*snapshot);
    }
  }

  // ---- terminal states saved recently (to answer cancel requests) ----

  void rememberTerminal(const JobId& id, JobStatus status) {  // queueMutex_ held
    if (recentTerminal_.insert_or_assign(id, status).second) recentOrder_.push_back(id);
    constexpr std::size_t maxRemembered = 4096;
    while (recentOrder_.size() > maxRemembered) {
      recentTerminal_.erase(recentOrder_.front());
      recentOrder_.pop_front();
    }
  }

  // ---- waiting ----

  /// Waits `delay` or until stop. Returns false when stopping.
  bool pause(std::chrono::milliseconds delay) {
    std::unique_lock lock(stopMutex_);
    return !stopCv_.wait_for(lock, delay, [&] { return stopping_.load(); });
  }

  // ---- the writer thread ----

  void writerLoop() {
    RedisConnection connection;
    bool everConnected = false;
    bool needResync = false;
    bool down = false;
    std::string saveSha;
    auto delay = options_.reconnectDelayMin;
    for (;;) {
      bool stopping = false;
      {
        std::unique_lock lock(queueMutex_);
        queueCv_.wait(lock, [&] {
          return stopping_ || !order_.empty() || !replies_.empty() || resyncRequested_;
        });
        stopping = stopping_;
        // Stopping: write what is queued while Redis answers, then exit.
        if (stopping && order_.empty() && replies_.empty()) break;
      }
      if (!connection.connected()) {
        if (!connectWriter(connection, saveSha)) {
          if (!down) log("Redis unreachable (writer), saves are queued: " + connection.error());
          down = true;
          if (stopping || !pause(delay)) break;
          delay = std::min(delay * 2, options_.reconnectDelayMax);
          continue;
        }
        if (everConnected) {
          needResync = true;
          reconnects_.fetch_add(1, std::memory_order_relaxed);
        }
        if (down) log("reconnected (writer), re-saving this instance's unfinished jobs");
        down = false;
        everConnected = true;
      }

      std::vector<BatchItem> batch;
      std::vector<PendingReply> replies;
      {
        std::lock_guard lock(queueMutex_);
        if (needResync || resyncRequested_ || (overflowed_ && order_.empty())) {
          // Everything not yet durably finished in Redis, newest snapshot each.
          for (const auto& [id, snapshot] : unwritten_) {
            if (pending_.try_emplace(id, snapshot).second) order_.push_back(id);
          }
          needResync = false;
          resyncRequested_ = false;
          overflowed_ = false;
        }
        constexpr std::size_t maxBatch = 256;
        while (!order_.empty() && batch.size() < maxBatch) {
          const JobId id = order_.front();
          order_.pop_front();
          auto it = pending_.find(id);
          batch.push_back({id, std::move(it->second)});
          pending_.erase(it);
        }
        replies.swap(replies_);
        inFlight_ = batch.size() + replies.size();
      }

      std::vector<BatchItem> failed;
      std::vector<BatchItem> done;
      writeBatch(connection, saveSha, batch, replies, failed, done);

      {
        std::lock_guard lock(queueMutex_);
        for (auto it = failed.rbegin(); it != failed.rend(); ++it) {
          if (pending_.try_emplace(it->id, it->snapshot).second) order_.push_front(it->id);
        }
        for (const auto& item : done) {
          auto it = unwritten_.find(item.id);
          if (it != unwritten_.end() && it->second == item.snapshot &&
              isTerminal(item.snapshot->status)) {
            unwritten_.erase(it);
          }
        }
        inFlight_ = 0;
        if (order_.empty() && replies_.empty()) flushedCv_.notify_all();
      }
      if (connection.connected()) {
        delay = options_.reconnectDelayMin;
      } else {
        if (stopping) break;
        if (!down) log("Redis connection lost (writer), saves are queued: " + connection.error());
        down = true;
        if (!pause(delay)) break;
        delay = std::min(delay * 2, options_.reconnectDelayMax);
      }
    }
  }

  /// Errors worth retrying after a reconnect (others are logged and the
  /// save dropped: retrying would fail the same way forever).
  static bool isTransientError(std::string_view error) {
    for (std::string_view code :
         {"NOSCRIPT", "LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN"}) {
      if (error.starts_with(code)) return true;
    }
    return false;
  }

  bool connectWriter(RedisConnection& connection, std::string& saveSha) {
    if (!connection.connect(endpoint_, options_.connectTimeout, options_.commandTimeout))
      return false;
    auto loaded = connection.command({"SCRIPT", "LOAD", redisSaveScript});
    if (!loaded) return false;
    if (loaded->type != REDIS_REPLY_STRING) {
      connection.closeWithError("cannot load the save script: " +
                                std::string(replyText(loaded.get())));
      return false;
    }
    saveSha = replyText(loaded.get());
    return true;
  }

  /// Writes the batch (pipelined), then the cancel replies. Items that could
  /// not be written for a connection failure go to `failed`; those written
  /// (or refused because Redis holds a terminal state) to `done`.
  void writeBatch(RedisConnection& connection, std::string& saveSha, std::vector<BatchItem>& batch,
                  std::vector<PendingReply>& replies, std::vector<BatchItem>& failed,
                  std::vector<BatchItem>& done) {
    const std::string leaseMs = millisText(options_.leaseTtl);
    const std::string ttlMs = millisText(options_.finishedTtl);
    std::size_t sent = 0;
    for (; sent < batch.size(); ++sent) {
      const Snapshot& s = *batch[sent].snapshot;
      const std::string id = to_string(s.id);
      const std::string data = dataOf(s);
      const auto created =
          std::chrono::duration_cast<std::chrono::milliseconds>(s.createdAt.time_since_epoch())
              .count();
      const bool ok = connection.append(
          {"EVALSHA", saveSha, "4", jobKey(s.id), jobsKey_, activeKey_, leaseKey_, data,
           toString(s.status), options_.instanceId, incarnation_, std::to_string(created), ttlMs,
           id, eventsChannel_, eventOf(options_.instanceId, incarnation_, data),
           isTerminal(s.status) ? "1" : "0", leaseMs});
      if (!ok) break;
    }
    std::string retryReason;
    std::size_t read = 0;
    for (; read < sent; ++read) {
      auto reply = connection.reply();
      if (!reply) break;
      if (isErrorReply(reply.get())) {
        if (isTransientError(replyText(reply.get()))) {
          // Redis restarted without us noticing, is loading, out of memory,
          // a read-only replica...: reconnect (with backoff) and retry.
          retryReason = "save refused: " + std::string(replyText(reply.get()));
          failed.push_back(std::move(batch[read]));
        } else {
          log("save of job " + to_string(batch[read].id) +
              " failed: " + std::string(replyText(reply.get())));
          done.push_back(std::move(batch[read]));
        }
        continue;
      }
      written_.fetch_add(1, std::memory_order_relaxed);
      done.push_back(std::move(batch[read]));
    }
    for (; read < batch.size(); ++read) failed.push_back(std::move(batch[read]));
    if (!retryReason.empty())
      connection.closeWithError(retryReason);  // reconnecting loads the script again
    if (!connection.connected()) return;       // replies are dropped: the requester times out

    for (const auto& reply : replies) {
      connection.append({"RPUSH", reply.key, reply.value});
      connection.append({"PEXPIRE", reply.key, "60000"});
    }
    for (std::size_t i = 0; i < replies.size() * 2; ++i) {
      if (!connection.reply()) return;
    }
  }

  // ---- the subscriber thread ----

  void subscriberLoop() {
    RedisConnection connection;
    bool down = false;
    auto delay = options_.reconnectDelayMin;
    while (!stopping_) {
      if (!connection.connect(endpoint_, options_.connectTimeout, options_.commandTimeout)) {
        if (!down) log("Redis unreachable (events): " + connection.error());
        down = true;
        if (!pause(delay)) break;
        delay = std::min(delay * 2, options_.reconnectDelayMax);
        continue;
      }
      {
        std::lock_guard lock(subscriberMutex_);
        if (stopping_) break;
        subscriberFd_ = connection.fd();
      }
      bool subscribed = connection.append({"SUBSCRIBE", eventsChannel_, cancelChannel_});
      for (int i = 0; subscribed && i < 2; ++i) subscribed = connection.reply() != nullptr;
      if (subscribed) {
        if (down) log("reconnected (events)");
        down = false;
        delay = options_.reconnectDelayMin;
        connection.setTimeout(
            std::chrono::milliseconds(0));  // block until a message (stop() shuts the socket)
        reloadWatched();  // events published while we were not subscribed are lost
        {
          std::lock_guard lock(subscriberMutex_);
          subscribed_ = true;
        }
        subscribedCv_.notify_all();
        while (auto message = connection.reply()) handleMessage(message.get());
      }
      {
        std::lock_guard lock(subscriberMutex_);
        subscriberFd_ = -1;
        subscribed_ = false;
      }
      connection.close();
      if (stopping_) break;
      if (!down) log("Redis connection lost (events): " + connection.error());
      down = true;
      if (!pause(delay)) break;
    }
  }

  void handleMessage(const redisReply* message) {
    if (message->type != REDIS_REPLY_ARRAY || message->elements != 3) return;
    if (replyText(message->element[0]) != "message") return;
    const std::string_view channel = replyText(message->element[1]);
    const std::string_view payload = replyText(message->element[2]);
    try {
      if (channel == eventsChannel_) {
        const auto event = nlohmann::json::parse(payload);
        if (event.at("incarnation").get<std::string>() == incarnation_) return;  // our own change
        const auto snapshot = event.at("snapshot").get<Snapshot>();
        if (isTerminal(snapshot.status)) unwatch(snapshot.id);
        if (auto target = listener()) target->onRemoteChange(snapshot);
      } else if (channel == cancelChannel_) {
        const auto request = nlohmann::json::parse(payload);
        const auto id = request.at("jobId").get<JobId>();
        const auto replyTo = request.at("replyTo").get<std::string>();
        handleCancel(id, replyTo);
      }
    } catch (const std::exception& e) {
      reportBad("message on " + std::string(channel) + ": " + e.what());
    }
  }

  void handleCancel(const JobId& id, const std::string& replyTo) {
    bool wasRunning = false;
    {
      std::lock_guard lock(queueMutex_);
      auto it = unwritten_.find(id);
      wasRunning = it != unwritten_.end() && !isTerminal(it->second->status);
    }
    auto target = listener();
    const bool owned = target && target->onCancelRequest(id);
    std::string answer = "unknown";
    if (owned) {
      std::lock_guard lock(queueMutex_);
      auto it = recentTerminal_.find(id);
      answer = wasRunning && it != recentTerminal_.end() && it->second == JobStatus::Cancelled
                   ? "cancelled"
                   : "finished";
    }
    {
      std::lock_guard lock(queueMutex_);
      replies_.push_back({replyTo, std::move(answer)});
    }
    queueCv_.notify_one();
  }

  // ---- the lease / lost-job scan thread ----

  void leaseLoop() {
    RedisConnection connection;
    bool everConnected = false;
    bool down = false;
    auto delay = options_.reconnectDelayMin;
    const auto period = std::max<std::chrono::milliseconds>(
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.leaseTtl) / 3,
        std::chrono::milliseconds(1));
    while (!stopping_) {
      if (!connection.connected()) {
        if (!connection.connect(endpoint_, options_.connectTimeout, options_.commandTimeout)) {
          if (!down) log("Redis unreachable (lease): " + connection.error());
          down = true;
          if (!pause(delay)) break;
          delay = std::min(delay * 2, options_.reconnectDelayMax);
          continue;
        }
        if (everConnected) {
          // Redis may have restarted empty: have the writer re-save our jobs.
          {
            std::lock_guard lock(queueMutex_);
            resyncRequested_ = true;
          }
          queueCv_.notify_one();
        }
        if (down) log("reconnected (lease)");
        down = false;
        everConnected = true;
        delay = options_.reconnectDelayMin;
      }
      if (connection.command(
              {"SET", leaseKey_, incarnation_, "PX", millisText(options_.leaseTtl)})) {
        scanForLost(connection);
      }
      if (!pause(connection.connected() ? period : delay)) break;
    }
  }

  /// Marks the unfinished jobs of dead incarnations FAILED "lost".
  void scanForLost(RedisConnection& connection) {
    auto members = connection.command({"SMEMBERS", activeKey_});
    if (!members || members->type != REDIS_REPLY_ARRAY) return;
    struct Candidate {
      std::string id;
      std::string owner;
      std::string incarnation;
    };
    std::vector<Candidate> candidates;
    std::vector<std::string> gone;
    for (std::size_t i = 0; i < members->elements; ++i) {
      connection.append({"HMGET",
                         options_.keyPrefix + ":job:" + std::string(replyText(members->element[i])),
                         "status", "owner", "incarnation"});
    }
    for (std::size_t i = 0; i < members->elements; ++i) {
      auto fields = connection.reply();
      if (!fields) return;
      const std::string id(replyText(members->element[i]));
      if (isErrorReply(fields.get())) {
        reportBad("job record " + options_.keyPrefix + ":job:" + id + ": " +
                  std::string(replyText(fields.get())));
        gone.push_back(id);
        continue;
      }
      if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 3) continue;
      if (fields->element[0]->type != REDIS_REPLY_STRING) {
        gone.push_back(id);  // expired or deleted
        continue;
      }
      const auto status = parseJobStatus(replyText(fields->element[0]));
      if (status && isTerminal(*status)) {
        gone.push_back(id);
        continue;
      }
      Candidate candidate{id, std::string(replyText(fields->element[1])),
                          std::string(replyText(fields->element[2]))};
      if (candidate.incarnation != incarnation_) candidates.push_back(std::move(candidate));
    }
    if (!gone.empty()) {
      std::vector<std::string> command{"SREM", activeKey_};
      command.insert(command.end(), gone.begin(), gone.end());
      if (!connection.command(command)) return;
    }
    // Which owners are alive (a lease holding the same incarnation)?
    std::unordered_map<std::string, std::string> leases;
    for (const auto& candidate : candidates) leases.emplace(candidate.owner, std::string());
    std::vector<std::string> owners;
    for (const auto& [owner, value] : leases) {
      owners.push_back(owner);
      connection.append({"GET", leaseKeyOf(owner)});
    }
    for (const auto& owner : owners) {
      auto value = connection.reply();
      if (!value) return;
      leases[owner] =
          value->type == REDIS_REPLY_STRING ? std::string(replyText(value.get())) : std::string();
    }
    for (const auto& candidate : candidates) {
      if (stopping_) return;
      if (leases[candidate.owner] == candidate.incarnation) continue;
      const std::string key = options_.keyPrefix + ":job:" + candidate.id;
      auto data = connection.command({"HGET", key, "data"});
      if (!data) return;
      auto snapshot = readRecord(key, data.get());
      if (!snapshot) {
        if (data->type != REDIS_REPLY_NIL) connection.command({"SREM", activeKey_, candidate.id});
        continue;
      }
      if (markLost(connection, *snapshot, candidate.owner, candidate.incarnation, false)) {
        lostMarked_.fetch_add(1, std::memory_order_relaxed);
        log("job " + candidate.id + " of instance '" + candidate.owner +
            "' marked lost (its lease expired)");
      }
    }
  }

  /// Writes `snapshot` as FAILED "lost" if it is still the unfinished job of
  /// `incarnation` and that incarnation is dead (or `self`). Returns whether
  /// it was written.
  bool markLost(RedisConnection& connection, Snapshot snapshot, const std::string& owner,
                const std::string& incarnation, bool self) {
    snapshot.status = JobStatus::Failed;
    snapshot.errorKind = ErrorKind::Lost;
    snapshot.error = self ? "lost: instance '" + owner + "' stopped before the job finished"
                          : "lost: instance '" + owner + "' stopped renewing its lease";
    snapshot.completedAt =
        std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
    const std::string data = dataOf(snapshot);
    auto reply = connection.command(
        {"EVAL", redisMarkLostScript, "3", jobKey(snapshot.id), activeKey_, leaseKeyOf(owner),
         incarnation, data, millisText(options_.finishedTtl), to_string(snapshot.id),
         eventsChannel_, eventOf(owner, incarnation, data), self ? "1" : "0"});
    if (reply && isErrorReply(reply.get()))
      log("marking job lost failed: " + std::string(replyText(reply.get())));
    return reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
  }

  /// At stop: this instance's unfinished jobs will never finish (their
  /// tracker is gone), so mark them lost now rather than after the lease,
  /// and release the lease.
  void releaseOwnJobs() {
    std::vector<SnapshotPtr> unfinished;
    {
      std::lock_guard lock(queueMutex_);
      for (const auto& [id, snapshot] : unwritten_) {
        if (!isTerminal(snapshot->status)) unfinished.push_back(snapshot);
      }
    }
    std::lock_guard lock(syncMutex_);
    syncRetryAt_ = {};
    if (!ensureSyncConnected()) return;
    for (const auto& snapshot : unfinished) {
      markLost(sync_, *snapshot, options_.instanceId, incarnation_, true);
      if (!sync_.connected()) return;
    }
    sync_.command({"EVAL", redisReleaseLeaseScript, "1", leaseKey_, incarnation_});
    sync_.close();
  }

  RedisStoreOptions options_;
  RedisEndpoint endpoint_;
  std::string incarnation_;
  std::string jobsKey_, activeKey_, eventsChannel_, cancelChannel_, leaseKey_;

  std::atomic<bool> stopping_{false};
  std::mutex stopMutex_;
  std::condition_variable stopCv_;
  std::thread writer_, subscriber_, lease_;

  std::mutex listenerMutex_;
  std::weak_ptr<JobStoreListener<Result>> listener_;

  // The write queue: the newest unwritten snapshot per job, in arrival order.
  mutable std::mutex queueMutex_;
  std::condition_variable queueCv_;
  std::condition_variable flushedCv_;
  std::unordered_map<JobId, SnapshotPtr> pending_;
  std::deque<JobId> order_;
  std::size_t inFlight_ = 0;
  std::vector<PendingReply> replies_;
  // Newest snapshot of each own job not yet durably terminal in Redis (resync).
  std::unordered_map<JobId, SnapshotPtr> unwritten_;
  bool overflowed_ = false;
  bool resyncRequested_ = false;
  std::unordered_map<JobId, JobStatus> recentTerminal_;
  std::deque<JobId> recentOrder_;

  std::mutex syncMutex_;
  RedisConnection sync_;
  Clock::time_point syncRetryAt_{};
  std::chrono::milliseconds syncDelay_{options_.reconnectDelayMin};
  bool syncDown_ = false;

  std::mutex subscriberMutex_;
  std::condition_variable subscribedCv_;
  int subscriberFd_ = -1;
  bool subscribed_ = false;

  std::mutex watchMutex_;
  std::unordered_set<JobId> watched_;
  std::deque<JobId> watchOrder_;

  std::atomic<std::uint64_t> written_{0}, dropped_{0}, reconnects_{0}, lostMarked_{0},
      badRecords_{0};
};

}  // namespace detail

/// A JobStore in Redis. Give one to each JobTracker (one per service
/// instance); all instances with the same URL and keyPrefix share their jobs.
///
/// - save() never blocks on the network: snapshots go to a bounded queue
///   (the newest per job) that a writer thread drains.
/// - load/list/requestCancel use one shared connection with short timeouts;
///   while Redis is unreachable they return nullopt / empty / NotFound
///   quickly, and the local tracker keeps working from memory.
/// - Each instance holds a lease; the unfinished jobs of an instance whose
///   lease expires are marked FAILED, errorKind "lost", by a survivor.
///
/// Thread safety: every member function may be called from any thread.
template <class Result = nlohmann::json>
class RedisJobStore final : public JobStore<Result> {
 public:
  using Snapshot = JobSnapshot<Result>;

  /// Starts the store's threads; connecting happens in the background (an
  /// unreachable Redis is not an error here). Throws std::invalid_argument
  /// for a malformed URL or invalid options.
  explicit RedisJobStore(RedisStoreOptions options = {})
      : core_(std::make_shared<detail::RedisStoreCore<Result>>(std::move(options))) {
    core_->start();
  }

  RedisJobStore(const RedisJobStore&) = delete;
  RedisJobStore& operator=(const RedisJobStore&) = delete;

  /// Writes what is queued (one attempt), marks this instance's unfinished
  /// jobs lost, releases the lease and joins the threads; bounded by the
  /// timeouts.
  ~RedisJobStore() override { core_->stop(); }

  void attach(std::weak_ptr<JobStoreListener<Result>> listener) override {
    core_->attach(std::move(listener));
  }
  /// Queues the snapshot (replacing an unwritten older one of the same job).
  void save(const Snapshot& snapshot) override { core_->save(snapshot); }
  /// The stored job; nullopt if unknown, expired, unreadable or Redis is down.
  std::optional<Snapshot> load(const JobId& id) override { return core_->load(id); }
  /// Up to `limit` stored jobs matching `filter`, newest first; unreadable
  /// records are skipped (and logged); empty while Redis is down.
  std::vector<Snapshot> list(std::size_t limit, const ListFilter& filter) override {
    return core_->list(limit, filter);
  }
  /// Asks the owning instance to cancel the job and waits for its answer
  /// (cancelTimeout). NotFound also when Redis or the owner cannot be
  /// reached; a job whose owner is dead is marked lost (AlreadyFinished).
  CancelResult requestCancel(const JobId& id) override { return core_->requestCancel(id); }

  /// This instance's id (options.instanceId, or the random one chosen).
  [[nodiscard]] const std::string& instanceId() const noexcept { return core_->instanceId(); }

  /// Blocks until every queued save has been written (true) or `timeout`
  /// passes (false), e.g. before handing a job id to another instance.
  bool flush(std::chrono::milliseconds timeout) { return core_->flush(timeout); }

  /// Blocks until the store receives other instances' events (true) or
  /// `timeout` passes (false): what happens before is not seen by this
  /// instance's subscribers (get/list/wait still load from Redis). E.g. for
  /// a readiness probe.
  bool waitSubscribed(std::chrono::milliseconds timeout) { return core_->waitSubscribed(timeout); }

  /// Counters; cheap.
  [[nodiscard]] RedisStoreStats stats() const { return core_->stats(); }

 private:
  std::shared_ptr<detail::RedisStoreCore<Result>> core_;
};

}  // namespace jobtrack
