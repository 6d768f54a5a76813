#include "command_line.hpp"

#include "chromadb_controller.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <stdexcept>
#if JOBTRACK_HTTP_WITH_REDIS
#include <jobtrack/redis_store.hpp>
#endif

namespace jobtrack::examples::http {

namespace {

template <class T>
std::optional<T> parseNumber(const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || ec != std::errc()) return std::nullopt;
  return value;
}

}  // namespace

std::string usage(const std::string& program) {
  return "Usage: " + program +
         " [options]\n"
         "  --host HOST            address to listen on (default 127.0.0.1)\n"
         "  --port PORT            port; 0 picks a free one (default 8080)\n"
         "  --threads N            HTTP connection threads; each open long-poll or\n"
         "                         event stream holds one (default 64)\n"
         "  --time-scale F         multiply job durations by F, e.g. 0.01 (default 1)\n"
         "  --sse-heartbeat SEC    idle event streams send a comment this often (default 15)\n"
         "  --chroma-url URL       add the /api/chromadb routes, backed by the Chroma at URL\n"
         "  --redis-url URL        share jobs with other instances through Redis "
         "(redis://HOST:PORT)\n"
         "  --instance-id ID       this instance's name in Redis (default: random)\n"
         "  --lease-seconds N      heartbeat lease; jobs of an instance silent this long are lost "
         "(default 10)\n"
         "  --help                 this text\n"
         "Prints 'listening on http://HOST:PORT' once ready; SIGINT/SIGTERM stop it.\n";
}

std::variant<CommandLine, std::string> parseCommandLine(const std::vector<std::string>& args) {
  CommandLine result;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--help" || flag == "-h") {
      result.help = true;
      continue;
    }
    if (i + 1 >= args.size()) return "missing value after " + flag;
    const std::string& value = args[++i];
    if (flag == "--host") {
      if (value.empty()) return std::string("--host must not be empty");
      result.server.host = value;
    } else if (flag == "--port") {
      const auto port = parseNumber<int>(value);
      if (!port || *port < 0 || *port > 65535)
        return "--port must be 0..65535, not '" + value + "'";
      result.server.port = *port;
    } else if (flag == "--threads") {
      const auto threads = parseNumber<std::size_t>(value);
      if (!threads || *threads == 0 || *threads > 4096)
        return "--threads must be 1..4096, not '" + value + "'";
      result.server.threads = *threads;
    } else if (flag == "--time-scale") {
      const auto scale = parseNumber<double>(value);
      if (!scale || !std::isfinite(*scale) || *scale <= 0)
        return "--time-scale must be a positive number, not '" + value + "'";
      result.app.timeScale = *scale;
    } else if (flag == "--sse-heartbeat") {
      const auto seconds = parseNumber<double>(value);
      if (!seconds || !std::isfinite(*seconds) || *seconds <= 0 || *seconds > 3600) {
        return "--sse-heartbeat must be a number of seconds in (0, 3600], not '" + value + "'";
      }
      result.app.jobsApi.sseHeartbeat =
          std::chrono::milliseconds(static_cast<long long>(*seconds * 1000.0 + 0.5));
      if (result.app.jobsApi.sseHeartbeat.count() == 0)
        result.app.jobsApi.sseHeartbeat = std::chrono::milliseconds(1);
    } else if (flag == "--chroma-url") {
      try {
        (void)chroma::detail::parseUrl(value);
      } catch (const std::invalid_argument& e) {
        return std::string("--chroma-url: ") + e.what();
      }
      result.chromaUrl = value;
    } else if (flag == "--redis-url") {
#if JOBTRACK_HTTP_WITH_REDIS
      try {
        (void)jobtrack::detail::parseRedisUrl(value);
      } catch (const std::invalid_argument& e) {
        return std::string("--redis-url: ") + e.what();
      }
      result.redisUrl = value;
#else
      return std::string("--redis-url: this build has no Redis support (hiredis was not found)");
#endif
    } else if (flag == "--instance-id") {
      if (value.empty()) return std::string("--instance-id must not be empty");
      result.instanceId = value;
    } else if (flag == "--lease-seconds") {
      const auto seconds = parseNumber<int>(value);
      if (!seconds || *seconds < 1 || *seconds > 3600)
        return "--lease-seconds must be 1..3600, not '" + value + "'";
      result.leaseTtl = std::chrono::seconds(*seconds);
    } else {
      return "unknown option " + flag;
    }
  }
  if (!result.redisUrl && !result.instanceId.empty())
    return std::string("--instance-id needs --redis-url");
  result.app.bodyLimits.maxBytes = result.server.maxBodyBytes;
  // Documents for Chroma come in larger bodies; that route checks its own cap.
  if (result.chromaUrl)
    result.server.maxBodyBytes = std::max(result.server.maxBodyBytes, chroma::kDocumentsBodyLimit);
  return result;
}

}  // namespace jobtrack::examples::http
