#pragma once

#include "jobtrack/detail/ring_queue.hpp"
#include "jobtrack/detail/shared_state.hpp"
#include "jobtrack/detail/unique_function.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace jobtrack::detail {

/// The executor that owns the current thread (a pool marker; compared, never dereferenced).
inline thread_local const void* currentPoolOwner = nullptr;

/// A bounded pool of threads for blocking work, kept apart from the core pool
/// so that sleeping or blocking calls never delay timers and continuations.
///
/// Everything a worker touches is owned through a shared_ptr, so a worker
/// stuck in user code past the shutdown deadline can be detached safely.
class BlockingPool {
 public:
  /// A unit of blocking work and the state to cancel if it never runs (may be null).
  struct Task {
    std::shared_ptr<StateBase> state;
    UniqueFunction run;
  };

  BlockingPool(std::size_t threads, const void* owner) : shared_(std::make_shared<Shared>()) {
    shared_->running.resize(threads);
    shared_->exited.resize(threads, false);
    shared_->liveWorkers = threads;
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back(&BlockingPool::workerLoop, shared_, i, owner);
    }
  }

  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;
  ~BlockingPool() { shutdown(std::chrono::milliseconds(0)); }

  /// Queues `task`; returns false (and leaves it untouched) once shut down.
  bool post(Task& task) {
    bool wake = false;
    {
      std::lock_guard lock(shared_->mutex);
      if (shared_->stopping) return false;
      shared_->queue.push_back(std::move(task));
      shared_->queuedHint.store(shared_->queue.size(), std::memory_order_relaxed);
      // A spinning worker looks at the queue again before it sleeps: waking
      // a sleeper as well would cost a futex call for nothing.
      wake = shared_->sleeping > 0 && shared_->spinning == 0;
    }
    if (wake) shared_->workAvailable.notify_one();
    return true;
  }

  /// Stops taking work, cancels queued and running tasks, and waits up to
  /// `timeout` for the workers busy in a task (idle ones are always waited
  /// for: they are on their way out). Returns how many were still busy
  /// (stuck in work that ignores its stop token) and were detached.
  std::size_t shutdown(std::chrono::milliseconds timeout) {
    RingQueue<Task> drained;
    std::vector<std::shared_ptr<StateBase>> running;
    {
      std::lock_guard lock(shared_->mutex);
      if (shared_->stopping && threads_.empty()) return 0;
      shared_->stopping = true;
      drained = std::move(shared_->queue);
      shared_->queuedHint.store(0, std::memory_order_relaxed);
      for (const auto& state : shared_->running) {
        if (state) running.push_back(state);
      }
    }
    shared_->workAvailable.notify_all();
    for (; !drained.empty(); drained.pop_front()) {
      if (drained.front().state) drained.front().state->cancel();
    }
    for (auto& state : running) state->cancel();
    running.clear();

    std::size_t stuck = 0;
    {
      std::unique_lock lock(shared_->mutex);
      shared_->workerExited.wait_for(lock, timeout, [this] { return shared_->liveWorkers == 0; });
      // Past the deadline only a worker inside a task can be stuck: an idle
      // one is on its way out (perhaps not yet scheduled, on a busy machine)
      // and is waited for, not reported.
      shared_->workerExited.wait(lock, [this] {
        return shared_->liveWorkers == shared_->busyWorkers.load(std::memory_order_relaxed);
      });
      stuck = shared_->liveWorkers;
    }
    for (std::size_t i = 0; i < threads_.size(); ++i) {
      bool exited = false;
      {
        std::lock_guard lock(shared_->mutex);
        exited = shared_->exited[i];
      }
      if (exited) {
        threads_[i].join();
      } else {
        threads_[i].detach();
      }
    }
    threads_.clear();
    return stuck;
  }

  /// Tasks waiting for a thread.
  [[nodiscard]] std::size_t queued() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->queue.size();
  }

 private:
  struct Shared {
    mutable std::mutex mutex;
    std::condition_variable workAvailable;
    std::condition_variable workerExited;
    RingQueue<Task> queue;
    std::vector<std::shared_ptr<StateBase>> running;
    std::vector<bool> exited;
    std::size_t liveWorkers = 0;
    // Workers inside a task, or releasing what their last one left (user
    // code too: a result's destructor). Decremented without the lock: that
    // only ever makes shutdown's "only busy workers left" false.
    std::atomic<std::size_t> busyWorkers{0};
    std::size_t sleeping = 0;  // workers waiting on workAvailable
    std::size_t spinning = 0;  // workers polling queuedHint before they sleep
    bool stopping = false;
    // queue.size(), readable without the lock (written under it).
    std::atomic<std::size_t> queuedHint{0};
  };

  /// Polls for new work for a short while. Sleeping and being woken costs
  /// two system calls and a context switch per task, far more than a short
  /// task itself; a burst of submissions is served by the spinning worker.
  static bool spinForWork(const Shared& shared) {
    constexpr int rounds = 64;
    for (int i = 0; i < rounds; ++i) {
      if (shared.queuedHint.load(std::memory_order_relaxed) != 0) return true;
      // Gives the core to the submitting thread when it needs it (2 cores
      // and a busy producer are common); costs little otherwise.
      std::this_thread::yield();
    }
    return false;
  }

  static void workerLoop(std::shared_ptr<Shared> shared, std::size_t index, const void* owner) {
    currentPoolOwner = owner;
    // The state of the task just run. Released outside the lock: for a
    // worker detached at shutdown it may be the executor's last owner,
    // whose destructor locks this mutex.
    std::shared_ptr<StateBase> finished;
    bool busy = false;  // counted in busyWorkers
    const auto idle = [&] {
      finished.reset();
      if (busy) shared->busyWorkers.fetch_sub(1, std::memory_order_relaxed);
      busy = false;
    };
    std::unique_lock lock(shared->mutex);
    for (;;) {
      if (shared->queue.empty()) {
        if (shared->stopping) break;
        const bool spin = shared->spinning == 0;
        if (spin) ++shared->spinning;
        lock.unlock();
        idle();
        if (spin) spinForWork(*shared);
        lock.lock();
        if (spin) --shared->spinning;
        if (!shared->queue.empty() || shared->stopping) continue;
        ++shared->sleeping;
        shared->workAvailable.wait(lock,
                                   [&] { return shared->stopping || !shared->queue.empty(); });
        --shared->sleeping;
        continue;
      }
      Task task = std::move(shared->queue.front());
      shared->queue.pop_front();
      shared->queuedHint.store(shared->queue.size(), std::memory_order_relaxed);
      shared->running[index] = std::move(task.state);
      if (!busy) shared->busyWorkers.fetch_add(1, std::memory_order_relaxed);
      busy = true;
      // post() skips the wake-up while a worker spins; that worker takes one
      // task only, so more queued work must wake a sleeper now.
      const bool wakeAnother =
          !shared->queue.empty() && shared->sleeping > 0 && shared->spinning == 0;
      lock.unlock();
      if (wakeAnother) shared->workAvailable.notify_one();
      finished.reset();
      task.run();
      task = {};
      lock.lock();
      finished = std::move(shared->running[index]);
    }
    lock.unlock();
    idle();
    lock.lock();
    shared->exited[index] = true;
    --shared->liveWorkers;
    shared->workerExited.notify_all();
  }

  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace jobtrack::detail
