/// @file
/// jobtrack_http_server: the hello jobs behind a small REST API, a dashboard,
/// server-sent events and Prometheus metrics. See docs/http.md.

#include "app.hpp"
#include "chromadb_controller.hpp"

#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>
#include <pthread.h>
#include <thread>
#if JOBTRACK_HTTP_WITH_REDIS
#include <jobtrack/redis_store.hpp>
#endif
#include "command_line.hpp"
#include "httplib_adapter.hpp"

namespace http = jobtrack::examples::http;

int main(int argc, char** argv) {
  const std::string program = argc > 0 ? argv[0] : "jobtrack_http_server";
  auto parsed =
      http::parseCommandLine(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
  if (auto* error = std::get_if<std::string>(&parsed)) {
    std::cerr << program << ": " << *error << "\n" << http::usage(program);
    return 2;
  }
  auto& options = std::get<http::CommandLine>(parsed);
  if (options.help) {
    std::cout << http::usage(program);
    return 0;
  }

  // SIGINT/SIGTERM are blocked in every thread (the mask is inherited) and
  // taken synchronously by one sigwait thread: no async-signal-safety issues.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client hanging up must not kill the server

  try {
#if JOBTRACK_HTTP_WITH_REDIS
    if (options.redisUrl) {
      jobtrack::RedisStoreOptions redis;
      redis.url = *options.redisUrl;
      if (!options.instanceId.empty()) redis.instanceId = options.instanceId;
      redis.leaseTtl = options.leaseTtl;
      redis.finishedTtl = options.app.tracker.finishedTtl;
      options.app.store = std::make_shared<jobtrack::RedisJobStore<nlohmann::json>>(redis);
    }
#endif
    http::App app(options.app);
    if (options.chromaUrl) {
      jobtrack::examples::chroma::ChromaServiceOptions chroma;
      chroma.client.baseUrl = *options.chromaUrl;
      app.addController(std::make_unique<jobtrack::examples::chroma::ChromaDbController>(
          std::make_shared<jobtrack::examples::chroma::ChromaDbService>(app.executor(),
                                                                        app.tracker(), chroma),
          options.app.bodyLimits));
    }
    http::HttpServer server(app, options.server);
    const int port = server.bind();
    if (port < 0) {
      std::cerr << program << ": cannot listen on " << options.server.host << ":"
                << options.server.port << "\n";
      return 1;
    }
    const bool ipv6 = options.server.host.find(':') != std::string::npos;
    std::cout << "listening on http://" << (ipv6 ? "[" : "") << options.server.host
              << (ipv6 ? "]" : "") << ":" << port
              << std::endl;  // flushed: tests read the port from this line

    std::mutex mutex;
    std::condition_variable served;
    bool finished = false;
    bool signalled = false;
    std::thread signalWaiter([&] {
      int signal = 0;
      sigwait(&stopSignals, &signal);
      {
        std::lock_guard lock(mutex);
        if (finished) return;  // woken by main below, not by a user
        signalled = true;
      }
      std::cerr << "signal " << signal << ": shutting down" << std::endl;
      app.beginShutdown();
      // stop() is a no-op until the server is listening: repeat until run() returns.
      std::unique_lock lock(mutex);
      while (!finished) {
        lock.unlock();
        server.stop();
        lock.lock();
        served.wait_for(lock, std::chrono::milliseconds(100), [&] { return finished; });
      }
    });

    const bool ok = server.run();
    bool wakeWaiter = false;
    {
      std::lock_guard lock(mutex);
      finished = true;
      wakeWaiter = !signalled;
    }
    served.notify_all();
    // The server ended on its own: release the waiter from sigwait.
    if (wakeWaiter) pthread_kill(signalWaiter.native_handle(), SIGTERM);
    signalWaiter.join();
    app.beginShutdown();
    if (!ok && !app.shutdownToken().stop_requested()) {
      std::cerr << program << ": the server stopped unexpectedly\n";
      return 1;
    }
    std::cerr << "stopped" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}
