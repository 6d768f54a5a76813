#pragma once

/// @file
/// Command-line options of jobtrack_http_server.

#include "app.hpp"
#include "httplib_adapter.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace jobtrack::examples::http {

/// Everything the command line configures.
struct CommandLine {
  AppOptions app;
  ServerOptions server;
  std::optional<std::string> chromaUrl;  ///< --chroma-url: adds the /api/chromadb routes
  std::optional<std::string>
      redisUrl;            ///< --redis-url: share jobs with other instances through Redis
  std::string instanceId;  ///< --instance-id (default: a random one)
  std::chrono::seconds leaseTtl{10};  ///< --lease-seconds
  bool help = false;
};

/// The usage text.
[[nodiscard]] std::string usage(const std::string& program);

/// Parses arguments (without the program name): the options, or an error message.
[[nodiscard]] std::variant<CommandLine, std::string> parseCommandLine(
    const std::vector<std::string>& args);

}  // namespace jobtrack::examples::http
