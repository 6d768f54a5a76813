// redis_crash_helper URL PREFIX: a service instance for the crash test. It
// submits a job that never finishes on its own through a tracker with a
// RedisJobStore (instance "crash-helper", 1 s lease), prints the job's id
// once Redis shows it RUNNING, then waits for EOF on stdin (the test kills it
// with SIGKILL first; EOF ends it if the test dies).

#include <jobtrack/jobtrack.hpp>
#include <jobtrack/redis_store.hpp>

#include <chrono>
#include <condition_variable>
#include <iostream>
#include <latch>
#include <mutex>
#include <stop_token>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc != 3) {
    std::cerr << "usage: redis_crash_helper REDIS_URL KEY_PREFIX\n";
    return 2;
  }
  jobtrack::AsyncExecutor executor;
  jobtrack::RedisStoreOptions options;
  options.url = argv[1];
  options.keyPrefix = argv[2];
  options.instanceId = "crash-helper";
  options.leaseTtl = 1s;
  auto store = std::make_shared<jobtrack::RedisJobStore<>>(options);
  jobtrack::JobTracker<> tracker(executor, {}, store);

  std::latch running(1);
  const auto id = tracker.submit("crash:victim", [&](jobtrack::JobContext context) {
    return executor.executeAsync([&running, context] {
      context.reportProgress(5, "started");
      running.count_down();
      // Runs until cancelled (or killed).
      std::mutex mutex;
      std::condition_variable_any cv;
      std::unique_lock lock(mutex);
      auto token = context.stopToken();
      cv.wait(lock, token, [] { return false; });
      return 0;
    });
  });
  running.wait();
  if (!store->flush(30s)) {
    std::cerr << "redis_crash_helper: could not write the job to Redis\n";
    return 1;
  }
  std::cout << to_string(id) << std::endl;
  while (std::cin.get() != std::char_traits<char>::eof()) {
  }
  return 0;
}
