#pragma once

// The HTTP example's server as a child process, for the tests that talk to it
// over real sockets (examples/http_server/tests and tests/reliability).

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace jobtrack::testing {

/// A jobtrack_http_server child process on a free port of 127.0.0.1 (the
/// binary is JOBTRACK_HTTP_SERVER_BINARY), killed when destroyed.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extraArgs) {
    std::vector<std::string> args = {JOBTRACK_HTTP_SERVER_BINARY, "--port", "0"};
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      throw std::runtime_error(std::string("cannot start the server: ") + std::strerror(rc));
    }
    stdout_ = out[0];
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    port_ = readPort();
  }

  ~ServerProcess() {
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (pidfd_ >= 0) ::close(pidfd_);
    ::close(stdout_);
  }

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  [[nodiscard]] int port() const { return port_; }
  /// Whether the process still exists.
  [[nodiscard]] bool alive() const { return ::kill(pid_, 0) == 0; }
  /// Open file descriptors of the server (sockets included).
  [[nodiscard]] std::size_t openFiles() const {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/fd")) {
      ++n;
    }
    return n;
  }

  /// Sends `sig` to the process.
  void signal(int sig) const { ::kill(pid_, sig); }

  /// Waits (on the pidfd, no polling loop) up to `timeout` for the process to
  /// exit; returns its exit code, or nullopt if it is still running.
  std::optional<int> waitExit(std::chrono::milliseconds timeout) {
    pollfd fd{pidfd_, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  int readPort() {
    const std::string prefix = "listening on http://127.0.0.1:";
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd fd{stdout_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&fd, 1, static_cast<int>(left.count())) != 1) {
        throw std::runtime_error("the server did not print its port in time");
      }
      char buffer[256];
      const ssize_t n = ::read(stdout_, buffer, sizeof buffer);
      if (n <= 0) throw std::runtime_error("the server exited before listening: " + line);
      line.append(buffer, static_cast<std::size_t>(n));
    }
    line.resize(line.find('\n'));
    if (line.rfind(prefix, 0) != 0) throw std::runtime_error("unexpected first line: " + line);
    return std::stoi(line.substr(prefix.size()));
  }

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdout_ = -1;
  int port_ = 0;
  bool exited_ = false;
};

}  // namespace jobtrack::testing
