#include "hello_service.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>

namespace jobtrack::examples::http {

using namespace std::chrono_literals;

TimeScale::TimeScale(double factor) : factor_(factor) {
  if (!(factor > 0.0) || !std::isfinite(factor)) throw std::invalid_argument("time scale must be a positive number");
}

std::chrono::nanoseconds TimeScale::operator()(std::chrono::nanoseconds duration) const {
  return std::chrono::nanoseconds(static_cast<std::chrono::nanoseconds::rep>(static_cast<double>(duration.count()) * factor_));
}

std::string capitalize(std::string_view name) {
  std::string result(name);
  if (!result.empty() && result.front() >= 'a' && result.front() <= 'z') result.front() = static_cast<char>(result.front() - 'a' + 'A');
  return result;
}

namespace {

constexpr int kSteps = 20;

/// Simulated work: `total` split into kSteps slices, each a wait that a stop
/// request ends at once. Calls `onStep(done, kSteps)` after each slice.
/// Throws CancelledError when stopped.
template <class OnStep>
void simulateWork(std::chrono::nanoseconds total, const std::stop_token& stop, OnStep&& onStep) {
  std::mutex mutex;
  std::condition_variable_any wakeUp;  // never notified: only the stop token ends a wait early
  std::unique_lock lock(mutex);
  const auto start = std::chrono::steady_clock::now();
  for (int step = 1; step <= kSteps; ++step) {
    const auto deadline = start + total * step / kSteps;
    wakeUp.wait_until(lock, stop, deadline, [] { return false; });
    if (stop.stop_requested()) throw CancelledError();
    onStep(step, kSteps);
  }
}

int percent(int done, int of, int from = 0, int to = 100) { return from + (to - from) * done / of; }

}  // namespace

HelloService::HelloService(AsyncExecutor& executor, Tracker& tracker, TimeScale scale)
    : executor_(executor), tracker_(tracker), scale_(scale) {}

JobId HelloService::startHelloJob(const std::string& name) {
  return tracker_.submit("hello:" + name, [&executor = executor_, name, work = scale_(2s)](JobContext ctx) {
    return executor.executeAsync([name, ctx, work](std::stop_token stop) {
      simulateWork(work, stop, [&](int done, int of) { ctx.reportProgress(percent(done, of), "working"); });
      return nlohmann::json("Hello, " + capitalize(name) + "!");
    });
  });
}

JobId HelloService::startComposeHelloJob(const std::string& name) {
  return tracker_.submit("compose:" + name, [&executor = executor_, name, step = scale_(1s)](JobContext ctx) {
    return executor.executeAndThen(
        [name, ctx, step](std::stop_token stop) {
          simulateWork(step, stop, [&](int done, int of) { ctx.reportProgress(percent(done, of, 0, 50), "step 1 of 2"); });
          return "hello " + capitalize(name);
        },
        [&executor, ctx, step](std::string greeting) {
          return executor.executeAsync([greeting = std::move(greeting), ctx, step](std::stop_token stop) {
            simulateWork(step, stop, [&](int done, int of) { ctx.reportProgress(percent(done, of, 50, 100), "step 2 of 2"); });
            return nlohmann::json(greeting + " (composed)");
          });
        });
  });
}

JobId HelloService::startRaceJob() {
  return tracker_.submit("race", [&executor = executor_, scale = scale_](JobContext ctx) {
    // Progress follows the runner closest to the finish line.
    auto best = std::make_shared<std::atomic<int>>(0);
    auto runner = [ctx, best](std::string result, std::chrono::nanoseconds work) {
      return [ctx, best, result = std::move(result), work](std::stop_token stop) {
        simulateWork(work, stop, [&](int done, int of) {
          const int p = percent(done, of);
          int previous = best->load();
          while (p > previous && !best->compare_exchange_weak(previous, p)) {
          }
          if (p > previous) ctx.reportProgress(p, "racing");
        });
        return nlohmann::json(result);
      };
    };
    return executor.executeAny(runner("Slow hello", scale(3s)), runner("Fast hello", scale(1s)),
                               runner("Medium hello", scale(2s)));
  });
}

}  // namespace jobtrack::examples::http
