#pragma once

#include "jobtrack/detail/blocking_pool.hpp"
#include "jobtrack/detail/shared_state.hpp"
#include "jobtrack/detail/unique_function.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace jobtrack::detail {

/// The core threads: an io_context run by a fixed set of threads. Not
/// asio::thread_pool, because a strand over io_context's executor (24 bytes)
/// fits inside an any_io_executor, while one over thread_pool's does not and
/// would cost a coroutine a heap allocation for every executor it converts.
class CorePool : public asio::io_context {  // never deleted through a base pointer
 public:
  explicit CorePool(std::size_t threads)
      : asio::io_context(static_cast<int>(threads)), work_(asio::make_work_guard(*this)) {
    threads_.reserve(threads);
    try {
      for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
    } catch (...) {
      stop();  // a thread could not be started: end the ones that were
      joinThreads();
      throw;
    }
  }
  CorePool(const CorePool&) = delete;
  CorePool& operator=(const CorePool&) = delete;
  ~CorePool() {
    stop();
    joinThreads();
  }

  /// Lets the threads finish once the work runs out, and waits for them.
  void join() {
    work_.reset();
    joinThreads();
  }

  /// Destroys handlers that can no longer run (breaking ownership cycles
  /// through suspended coroutines after a forced stop).
  void destroyPendingWork() { shutdown(); }

 private:
  void joinThreads() {
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

/// Phases of a leaf task, kept in StateBase::taskPhase().
enum TaskPhase : std::uint8_t {
  Queued = 0,
  Running = 1,
  Finished = 2,
  RunningCancelled = 3,
  CancelledBeforeStart = 4,
};

/// Executor counters; all monotonic but `cancelledStillRunning`. The
/// submitting threads write `submitted`, the pool threads the others: apart,
/// so that neither side's writes take the other's cache line away.
struct TaskCounters {
  alignas(64) std::atomic<std::uint64_t> submitted{0};
  alignas(64) std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<std::uint64_t> cancelledBeforeStart{0};
  std::atomic<std::int64_t> cancelledStillRunning{0};
};

/// A state's place in its executor's list of running coroutines, which
/// shutdown cancels. Intrusive, so registering allocates nothing; guarded by
/// the executor's lock. Linked while `next` is set.
struct LiveLink {
  LiveLink* previous = nullptr;
  LiveLink* next = nullptr;
  StateBase* state = nullptr;
};

/// The shared heart of an AsyncExecutor: its pools, counters and the states
/// to cancel at shutdown. Futures keep it alive (as their Scheduler), so a
/// future or continuation that outlives its AsyncExecutor stays safe; after
/// shutdown, continuations run on the completing thread.
class ExecutorCore final : public Scheduler {
 public:
  ExecutorCore(std::size_t coreThreads, std::size_t blockingThreads,
               std::chrono::milliseconds shutdownTimeout)
      : pool_(std::in_place, coreThreads),
        poolExecutor_(pool_->get_executor()),
        coreExecutor_(*poolExecutor_),
        blocking_(blockingThreads, this),
        shutdownTimeout_(shutdownTimeout) {}

  ExecutorCore(asio::any_io_executor external, std::size_t blockingThreads,
               std::chrono::milliseconds shutdownTimeout)
      : coreExecutor_(std::move(external)),
        blocking_(blockingThreads, this),
        shutdownTimeout_(shutdownTimeout) {}

  void dispatch(UniqueFunction fn) override {
    thread_local int depth = 0;
    // Bounded, so a long chain of ready continuations cannot overflow the stack.
    constexpr int maxInlineDepth = 16;
    if (depth < maxInlineDepth && onOwnThread()) {
      ++depth;
      fn();
      --depth;
      return;
    }
    std::shared_lock gate(gate_);
    if (closed_.load(std::memory_order_relaxed)) {
      gate.unlock();
      fn();
      return;
    }
    asio::post(coreExecutor_, std::move(fn));
  }

  [[nodiscard]] asio::any_io_executor executor() const override { return coreExecutor_; }

  /// One of the strands coroutines run on, and its number.
  struct CoroutineStrand {
    asio::any_io_executor executor;
    std::uint8_t number = 0;
  };

  /// A strand for a new coroutine; nullopt once shut down. Coroutines share
  /// a fixed set of strands, handed out in turn, instead of allocating one
  /// each: a strand only has to keep a coroutine from running concurrently
  /// with its own cancellation, and coroutines never block, so sharing
  /// costs little. The strands are made on first use. A running coroutine
  /// holds its strand until it ends; the executor keeps the set until its
  /// own pool goes, or, on a caller's context, until shutdown returns (a
  /// strand must not outlive its execution context).
  [[nodiscard]] std::optional<CoroutineStrand> coroutineStrand() {
    std::lock_guard lock(liveMutex_);
    if (liveClosed_) return std::nullopt;
    if (strands_.empty()) strands_ = makeStrands();
    const auto number = static_cast<std::uint8_t>(nextStrand_++ % strands_.size());
    return CoroutineStrand{strands_[number], number};
  }

  /// Posts `fn` to coroutine strand `number`. Once a shutdown on a caller's
  /// context has dropped the strands, `fn` is not run: shutdown cancelled
  /// the coroutines before.
  template <class Fn>
  void postToCoroutineStrand(std::uint8_t number, Fn&& fn) {
    std::optional<asio::any_io_executor> strand;
    {
      std::lock_guard lock(liveMutex_);
      if (number < strands_.size()) strand = strands_[number];
    }
    if (strand) asio::post(*strand, std::forward<Fn>(fn));
  }

  /// Whether shutdown has begun. A hint for the submitting thread, which
  /// reads it without the gate: whatever it then queues, the pools refuse
  /// or cancel once closed.
  [[nodiscard]] bool isClosed() const noexcept { return closed_.load(std::memory_order_acquire); }

  /// Queues blocking work; false once shut down.
  bool postBlocking(BlockingPool::Task& task) { return blocking_.post(task); }

  /// Registers `state`, through its `link`, to be cancelled if the executor
  /// shuts down before the state is destroyed; false once shut down.
  bool addLive(LiveLink& link, StateBase& state) {
    std::lock_guard lock(liveMutex_);
    if (liveClosed_) return false;
    link.state = &state;
    link.previous = live_.previous;
    link.next = &live_;
    live_.previous->next = &link;
    live_.previous = &link;
    return true;
  }
  /// Unregisters `link` (if it was registered). Called before the state it
  /// names is destroyed.
  void removeLive(LiveLink& link) noexcept {
    std::lock_guard lock(liveMutex_);
    if (!link.next) return;
    link.previous->next = link.next;
    link.next->previous = link.previous;
    link.previous = link.next = nullptr;
  }

  /// Registers `hook` to run when the executor shuts down (e.g. to stop a
  /// periodic timer that would otherwise keep the core pool busy). A hook
  /// added after shutdown began runs at once.
  using HookHandle = std::list<std::function<void()>>::iterator;
  std::optional<HookHandle> addShutdownHook(std::function<void()> hook) {
    {
      std::lock_guard lock(liveMutex_);
      if (!liveClosed_) return hooks_.insert(hooks_.end(), std::move(hook));
    }
    hook();
    return std::nullopt;
  }
  void removeShutdownHook(HookHandle handle) {
    std::list<std::function<void()>> removed;  // destroyed after the unlock
    std::lock_guard lock(liveMutex_);
    if (!liveClosed_) removed.splice(removed.end(), hooks_, handle);
  }

  // Leaf-task bookkeeping (see TaskPhase).
  void countSubmitted() noexcept { counters_.submitted.fetch_add(1, std::memory_order_relaxed); }

  /// Moves a leaf from queued to running; false if it was cancelled first.
  bool beginTask(StateBase& state) noexcept {
    auto phase = static_cast<std::uint8_t>(Queued);
    if (!state.taskPhase().compare_exchange_strong(phase, Running, std::memory_order_acq_rel)) {
      return false;
    }
    counters_.started.fetch_add(1, std::memory_order_relaxed);
    // cancel() completes the state before it runs the cancel hook that moves
    // the phase away from Queued: a cancel in that window has already
    // completed the future, so the body must not run. (A leaf's state only
    // becomes ready through its body or a cancel.)
    if (state.isReady()) {
      finishTask(state, false, false);
      return false;
    }
    state.markStarted();
    return true;
  }

  /// Records the end of a leaf's body; `delivered` is whether its result won.
  void finishTask(StateBase& state, bool delivered, bool threw) noexcept {
    const auto previous = state.taskPhase().exchange(Finished, std::memory_order_acq_rel);
    if (delivered) {
      (threw ? counters_.failed : counters_.completed).fetch_add(1, std::memory_order_relaxed);
    } else if (previous == RunningCancelled) {
      counters_.cancelledStillRunning.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  /// Called from a leaf's cancel hook (so exactly once per cancelled leaf).
  void countCancelled(StateBase& state) noexcept {
    counters_.cancelled.fetch_add(1, std::memory_order_relaxed);
    auto phase = static_cast<std::uint8_t>(Queued);
    if (state.taskPhase().compare_exchange_strong(phase, CancelledBeforeStart,
                                                  std::memory_order_acq_rel)) {
      counters_.cancelledBeforeStart.fetch_add(1, std::memory_order_relaxed);
    } else if (phase == Running && state.taskPhase().compare_exchange_strong(
                                       phase, RunningCancelled, std::memory_order_acq_rel)) {
      counters_.cancelledStillRunning.fetch_add(1, std::memory_order_relaxed);
    }
  }

  [[nodiscard]] const TaskCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t blockingQueued() const { return blocking_.queued(); }

  /// Result of a shutdown.
  struct ShutdownResult {
    std::size_t abandonedThreads = 0;
    bool coreDrained = true;
  };

  /// Stops taking work, cancels everything pending or running, and joins
  /// the threads within the shutdown timeout. Idempotent.
  ShutdownResult shutdown() {
    // Held throughout, so a concurrent second call waits for the first one
    // and returns its result instead of reading it while it is written.
    std::lock_guard serialize(shutdownMutex_);
    {
      std::unique_lock gate(gate_);
      if (closed_.load(std::memory_order_relaxed)) return lastShutdown_;
      closed_.store(true, std::memory_order_release);
    }
    std::vector<std::shared_ptr<StateBase>> live;
    std::list<std::function<void()>> hooks;
    {
      std::unique_lock lock(liveMutex_);
      liveClosed_ = true;
      hooks.swap(hooks_);
      // A state whose destructor is waiting for this lock to unlink itself
      // can no longer be locked: it is skipped.
      for (auto* link = live_.next; link != &live_; link = link->next) {
        std::shared_ptr<StateBase> state = link->state->weak_from_this().lock();
        if (!state) continue;
        try {
          live.push_back(std::move(state));
        } catch (...) {
          // Dropping what may be the last reference unlinks the state,
          // which takes this lock: release it first.
          lock.unlock();
          state.reset();
          throw;
        }
      }
    }
    for (auto& state : live) state->cancel();
    live.clear();
    for (auto& hook : hooks) hook();

    const auto deadline = std::chrono::steady_clock::now() + shutdownTimeout_;
    ShutdownResult result;
    result.abandonedThreads = blocking_.shutdown(shutdownTimeout_);
    if (pool_) {
      // join() returns once the pool runs out of work; cancelled coroutines
      // and timers finish quickly. Past the deadline, stop it instead.
      std::promise<void> joined;
      auto joinedFuture = joined.get_future();
      std::thread joiner([this, &joined] {
        pool_->join();
        joined.set_value();
      });
      if (joinedFuture.wait_until(deadline) != std::future_status::ready) {
        result.coreDrained = false;
        pool_->stop();
      }
      joiner.join();
      pool_->destroyPendingWork();
    } else {
      // The caller's context may go once we return, and a strand must not
      // outlive its context. (Our own pool's strands stay until the pool
      // goes, so that a cancel racing with shutdown still reaches them.)
      std::vector<asio::any_io_executor> strands;
      std::lock_guard lock(liveMutex_);
      strands.swap(strands_);
    }
    lastShutdown_ = result;
    return result;
  }

 private:
  [[nodiscard]] bool onOwnThread() const noexcept {
    return currentPoolOwner == this || (poolExecutor_ && poolExecutor_->running_in_this_thread());
  }

  std::optional<CorePool> pool_;
  std::optional<asio::io_context::executor_type> poolExecutor_;
  asio::any_io_executor coreExecutor_;
  BlockingPool blocking_;
  std::chrono::milliseconds shutdownTimeout_;
  TaskCounters counters_;

  std::vector<asio::any_io_executor> makeStrands() const {
    constexpr std::size_t count = 64;  // numbered by a std::uint8_t
    std::vector<asio::any_io_executor> strands;
    strands.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      if (poolExecutor_) {
        strands.emplace_back(asio::make_strand(*poolExecutor_));
      } else {
        strands.emplace_back(asio::make_strand(coreExecutor_));
      }
    }
    return strands;
  }

  std::mutex shutdownMutex_;
  mutable std::shared_mutex gate_;
  std::atomic<bool> closed_{false};  // written under gate_ (unique)
  ShutdownResult lastShutdown_;

  std::mutex liveMutex_;                        // guards the members below
  std::vector<asio::any_io_executor> strands_;  // each a strand
  std::size_t nextStrand_ = 0;
  LiveLink live_{&live_, &live_, nullptr};  // the head of a circular list
  std::list<std::function<void()>> hooks_;
  bool liveClosed_ = false;
};

}  // namespace jobtrack::detail
