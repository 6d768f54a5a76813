#pragma once

#include "jobtrack/detail/executor_core.hpp"
#include "jobtrack/detail/shared_state.hpp"
#include "jobtrack/errors.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

namespace jobtrack::detail {

/// Many deadlines over one Asio timer, as event loops' timer queues do
/// (Netty's and folly's wheels, Asio's own heap): a deadline costs a heap
/// entry instead of a timer, a strand and their allocations, and one
/// wake-up expires every entry that is due.
///
/// The timer is armed for the earliest deadline only; an entry removed
/// before its deadline (its work finished in time) costs a heap removal, and
/// the timer is cancelled once no entry is left, so an idle executor keeps
/// no pending wait. Expiries run on the executor's threads, outside the
/// queue's lock; a long burst is drained in chunks, each chunk first posting
/// the next so other threads of the pool can take it.
///
/// Thread safety: every member function may be called from any thread. The
/// Asio timer is touched only under the queue's mutex.
class TimeoutQueue : public std::enable_shared_from_this<TimeoutQueue> {
 public:
  using Clock = std::chrono::steady_clock;

  /// A deadline in the queue. `expire()` is called once, on a thread of the
  /// executor, when the deadline passes, unless the entry was removed first.
  class Entry {
   public:
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    virtual ~Entry() = default;
    /// The deadline passed.
    virtual void expire() noexcept = 0;
    /// The queue closed (its executor shuts down) before the deadline.
    virtual void abandon() noexcept = 0;

   private:
    friend class TimeoutQueue;
    static constexpr std::size_t notQueued = std::numeric_limits<std::size_t>::max();
    Clock::time_point deadline_;
    std::size_t index_ = notQueued;  // position in the heap; guarded by the queue's mutex
  };

  /// A queue whose timer runs on `owner`'s executor; keeps `owner` alive as
  /// long as itself (and with it an owned core pool; an executor passed in
  /// by the caller must outlive the AsyncExecutor, as always).
  explicit TimeoutQueue(std::shared_ptr<Scheduler> owner)
      : owner_(std::move(owner)), executor_(owner_->executor()), timer_(executor_) {}

  TimeoutQueue(const TimeoutQueue&) = delete;
  TimeoutQueue& operator=(const TimeoutQueue&) = delete;

  /// The deadline `timeout` from now, saturating instead of overflowing.
  template <class Rep, class Period>
  [[nodiscard]] static Clock::time_point deadlineAfter(std::chrono::duration<Rep, Period> timeout) {
    const auto now = Clock::now();
    if (timeout <= timeout.zero()) return now;
    using Seconds = std::chrono::duration<double>;
    if (Seconds(timeout) >= Seconds(Clock::time_point::max() - now)) {
      return Clock::time_point::max();
    }
    return now + std::chrono::ceil<Clock::duration>(timeout);
  }

  /// Queues `entry` (not queued yet) to expire at `deadline`; false (and
  /// nothing queued) once the queue is closed.
  bool add(std::shared_ptr<Entry> entry, Clock::time_point deadline) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    entry->deadline_ = deadline;
    entry->index_ = heap_.size();
    heap_.push_back(std::move(entry));
    siftUp(heap_.size() - 1);
    if (!armed_ || deadline < armedFor_) arm(heap_.front()->deadline_);
    return true;
  }

  /// Takes `entry` out of the queue; false if it expired (or was removed) already.
  bool remove(Entry& entry) {
    std::shared_ptr<Entry> removed;  // released outside the lock
    std::lock_guard lock(mutex_);
    if (entry.index_ == Entry::notQueued) return false;
    removed = take(entry.index_);
    if (heap_.empty() && armed_) {
      // No pending wait is left behind: a pool can drain, an io_context's run() return.
      timer_.cancel();
      armed_ = false;
    }
    return true;
  }

  /// Refuses new entries, cancels the timer and abandons every queued entry
  /// (on this thread). Idempotent.
  void close() {
    std::vector<std::shared_ptr<Entry>> queued;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      queued.swap(heap_);
      for (auto& entry : queued) entry->index_ = Entry::notQueued;
      if (armed_) {
        timer_.cancel();
        armed_ = false;
      }
    }
    for (auto& entry : queued) entry->abandon();
  }

  /// Entries waiting for their deadline.
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return heap_.size();
  }

 private:
  /// Expiries per chunk of a burst: large enough to amortise the post of the
  /// next chunk, small enough that a second thread can help early.
  static constexpr std::size_t chunkSize = 64;

  /// Arms the timer for `deadline`, cancelling the pending wait. Requires the lock.
  void arm(Clock::time_point deadline) {
    if (closed_) return;
    timer_.expires_at(deadline);
    armed_ = true;
    armedFor_ = deadline;
    timer_.async_wait([weak = weak_from_this(), generation = ++generation_](std::error_code error) {
      if (error == asio::error::operation_aborted) return;
      if (auto self = weak.lock()) self->drain(generation);
    });
  }

  /// Expires a chunk of the due entries; called by the timer (`generation` of
  /// its arming) or by a posted drain (no generation).
  void drain(std::uint64_t generation = 0) {
    std::array<std::shared_ptr<Entry>, chunkSize> due;
    std::size_t count = 0;
    bool more = false;
    {
      std::lock_guard lock(mutex_);
      if (generation != 0 && generation == generation_) armed_ = false;
      const auto now = Clock::now();
      while (!heap_.empty() && heap_.front()->deadline_ <= now) {
        if (count == chunkSize) {
          more = true;
          break;
        }
        due[count++] = take(0);
      }
      // A burst continues in a posted drain, which re-arms when it is done.
      if (!more && !heap_.empty() && (!armed_ || heap_.front()->deadline_ < armedFor_)) {
        arm(heap_.front()->deadline_);
      }
    }
    if (more) {
      asio::post(executor_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->drain();
      });
    }
    for (std::size_t i = 0; i < count; ++i) due[i]->expire();
  }

  /// Removes and returns the entry at `index`. Requires the lock.
  std::shared_ptr<Entry> take(std::size_t index) {
    auto entry = std::move(heap_[index]);
    entry->index_ = Entry::notQueued;
    const std::size_t last = heap_.size() - 1;
    if (index != last) {
      place(index, std::move(heap_[last]));
      heap_.pop_back();
      siftDown(index);
      siftUp(index);
    } else {
      heap_.pop_back();
    }
    return entry;
  }

  void place(std::size_t index, std::shared_ptr<Entry> entry) {
    entry->index_ = index;
    heap_[index] = std::move(entry);
  }

  void siftUp(std::size_t index) {
    while (index > 0) {
      const std::size_t parent = (index - 1) / 2;
      if (!(heap_[index]->deadline_ < heap_[parent]->deadline_)) break;
      swapAt(index, parent);
      index = parent;
    }
  }

  void siftDown(std::size_t index) {
    for (;;) {
      const std::size_t left = 2 * index + 1;
      if (left >= heap_.size()) break;
      std::size_t child = left;
      if (left + 1 < heap_.size() && heap_[left + 1]->deadline_ < heap_[left]->deadline_) {
        child = left + 1;
      }
      if (!(heap_[child]->deadline_ < heap_[index]->deadline_)) break;
      swapAt(index, child);
      index = child;
    }
  }

  void swapAt(std::size_t a, std::size_t b) {
    std::swap(heap_[a], heap_[b]);
    heap_[a]->index_ = a;
    heap_[b]->index_ = b;
  }

  std::shared_ptr<Scheduler> owner_;  // declared first: outlives the timer
  asio::any_io_executor executor_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Entry>> heap_;  // min-heap on deadline_
  asio::steady_timer timer_;
  bool closed_ = false;
  bool armed_ = false;            // a wait for armedFor_ is pending
  Clock::time_point armedFor_;    // valid while armed_
  std::uint64_t generation_ = 0;  // of the latest arm()
};

/// The expiry of one `withTimeout`: fails `result` with the shared
/// TimeoutError and cancels `source`. Holds both weakly: a pending deadline
/// keeps no state alive.
template <class T>
class TimeoutExpiry final : public TimeoutQueue::Entry {
 public:
  TimeoutExpiry(const std::shared_ptr<SharedState<T>>& result,
                const std::shared_ptr<SharedState<T>>& source)
      : result_(result), source_(source) {}

  void expire() noexcept override {
    auto result = result_.lock();
    if (result && result->setException(timeoutErrorPtr())) {
      if (auto source = source_.lock()) source->cancel();
    }
  }

  /// The executor shuts down: cancels the result (and through it the source).
  void abandon() noexcept override {
    if (auto result = result_.lock()) result->cancel();
  }

 private:
  std::weak_ptr<SharedState<T>> result_;
  std::weak_ptr<SharedState<T>> source_;
};

/// An executor's TimeoutQueue, created on first use (so executors that
/// never time anything out keep no timer, and their pool no reactor) and
/// closed when the executor shuts down: every pending timeout is then
/// cancelled, and later ones are refused.
class LazyTimeoutQueue {
 public:
  /// The queue of `core`, created on the first call. Thread-safe.
  const std::shared_ptr<TimeoutQueue>& get(const std::shared_ptr<ExecutorCore>& core) {
    std::call_once(once_, [&] {
      queue_ = std::make_shared<TimeoutQueue>(core);
      // Runs at once if the executor is shut down already. Holds the queue
      // weakly: the queue keeps the core alive, not the other way round.
      core->addShutdownHook([weak = std::weak_ptr<TimeoutQueue>(queue_)] {
        if (auto queue = weak.lock()) queue->close();
      });
    });
    return queue_;
  }

 private:
  std::once_flag once_;
  std::shared_ptr<TimeoutQueue> queue_;
};

}  // namespace jobtrack::detail
