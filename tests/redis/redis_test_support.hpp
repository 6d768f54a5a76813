#pragma once

// Helpers for the RedisJobStore tests: the server under test (REDIS_URL, as
// scripts/with-redis exports it), a private redis-server the test can stop
// and restart, and a raw connection to put things into Redis directly.

#include <jobtrack/redis_store.hpp>

#include "catch.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace redis_test {

using namespace std::chrono_literals;

/// REDIS_URL, or nullopt after printing the skip line. Fails the test when
/// CI is set: there, a missing Redis is a broken setup, not a reason to skip.
inline std::optional<std::string> redisUrl() {
  if (const char* value = std::getenv("REDIS_URL"); value != nullptr && *value != '\0')
    return std::string(value);
  const std::string hint = "REDIS_URL is not set; run through scripts/with-redis";
  if (std::getenv("CI") != nullptr) FAIL(hint + " (CI is set, so a missing Redis is a failure)");
  std::cout << "SKIPPED: REDIS tests: " << hint << std::endl;
  return std::nullopt;
}

/// A key prefix of its own, so tests never see each other's jobs.
inline std::string uniquePrefix() { return "jt-test-" + jobtrack::detail::randomHex(12); }

/// Options for a test store: short timeouts, a quick reconnect, and a
/// logger that keeps the lines (and echoes them for failing tests).
struct LogCapture {
  std::mutex mutex;
  std::condition_variable added;
  std::vector<std::string> lines;
  void add(std::string_view line) {
    {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    }
    added.notify_all();
  }
  bool containsLocked(std::string_view text) const {
    for (const auto& line : lines) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  bool contains(std::string_view text) {
    std::lock_guard lock(mutex);
    return containsLocked(text);
  }
  /// Waits (bounded) until a line containing `text` is logged.
  bool waitFor(std::string_view text, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return added.wait_for(lock, timeout, [&] { return containsLocked(text); });
  }
};

inline jobtrack::RedisStoreOptions storeOptions(const std::string& url, const std::string& prefix,
                                                std::shared_ptr<LogCapture> log = nullptr) {
  jobtrack::RedisStoreOptions options;
  options.url = url;
  options.keyPrefix = prefix;
  options.leaseTtl = 1s;
  options.reconnectDelayMin = 20ms;
  options.reconnectDelayMax = 200ms;
  if (log) {
    options.logger = [log](std::string_view line) { log->add(line); };
  }
  return options;
}

/// A raw connection for the tests' own commands.
class RawRedis {
 public:
  explicit RawRedis(const std::string& url) {
    if (!connection_.connect(jobtrack::detail::parseRedisUrl(url), 2s, 5s)) {
      throw std::runtime_error("cannot connect to " + url + ": " + connection_.error());
    }
  }
  jobtrack::detail::RedisReplyPtr operator()(std::initializer_list<std::string_view> args) {
    auto reply = connection_.command(args);
    if (!reply) throw std::runtime_error("redis command failed: " + connection_.error());
    return reply;
  }

 private:
  jobtrack::detail::RedisConnection connection_;
};

/// A free TCP port on 127.0.0.1 (free when asked).
inline int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

/// A redis-server of the test's own (no persistence, temp dir), which the
/// test may stop and start again on the same port.
class RedisServer {
 public:
  RedisServer() : port_(freePort()) {
    dir_ = std::filesystem::temp_directory_path() /
           ("jobtrack-redis-test-" + jobtrack::detail::randomHex(8));
    std::filesystem::create_directories(dir_);
    start();
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  void start() {
    const std::string port = std::to_string(port_);
    const std::string dir = dir_.string();
    const std::string logFile = (dir_ / "redis.log").string();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port.c_str(),
               "--save", "", "--appendonly", "no", "--dir", dir.c_str(), "--daemonize", "no",
               "--logfile", logFile.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Wait (bounded) until it answers: a process start, not a tracker event.
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      jobtrack::detail::RedisConnection probe;
      if (probe.connect(jobtrack::detail::parseRedisUrl(url()), 200ms, 200ms)) {
        if (auto pong = probe.command({"PING"});
            pong && jobtrack::detail::replyText(pong.get()) == "PONG")
          return;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("redis-server exited at start (see " + logFile + ")");
      }
      std::this_thread::sleep_for(20ms);
    }
    stop();
    throw std::runtime_error("redis-server did not answer on port " + port);
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);  // like a crash; nothing is persisted anyway
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  int port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

}  // namespace redis_test
