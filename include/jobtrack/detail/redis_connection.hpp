#pragma once

/// @file
/// Internals of jobtrack/redis_store.hpp: Redis URL parsing and a small RAII
/// wrapper over one synchronous hiredis connection. Needs hiredis (the
/// jobtrack::redis CMake target); the core library does not include it.

#include <hiredis/hiredis.h>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <vector>

namespace jobtrack::detail {

/// Where and how to connect, as read from a `redis://` URL.
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      ///< ACL user (Redis 6+); empty for the default user
  std::string password;  ///< empty: no AUTH
  int database = 0;      ///< SELECTed after connecting when not 0
};

/// Decodes %XX escapes (user and password may contain reserved characters).
inline std::string decodeUrlPart(std::string_view text, std::string_view url) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    int value = 0;
    if (i + 2 >= text.size()) {
      throw std::invalid_argument("jobtrack: malformed Redis URL '" + std::string(url) +
                                  "': bad %-escape");
    }
    const auto [end, error] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (error != std::errc() || end != text.data() + i + 3) {
      throw std::invalid_argument("jobtrack: malformed Redis URL '" + std::string(url) +
                                  "': bad %-escape");
    }
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

/// Parses `redis://[[user]:password@]host[:port][/db]` (host may be a
/// bracketed IPv6 address). Throws std::invalid_argument naming what is wrong
/// (other schemes such as rediss:// or unix:// are not supported).
inline RedisEndpoint parseRedisUrl(std::string_view url) {
  const auto fail = [&](std::string_view why) {
    return std::invalid_argument("jobtrack: malformed Redis URL '" + std::string(url) +
                                 "': " + std::string(why) +
                                 " (expected redis://[[user]:password@]host[:port][/db])");
  };
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) {
    if (url.find("://") != std::string_view::npos)
      throw fail("only the redis:// scheme is supported");
    throw fail("missing redis:// scheme");
  }
  std::string_view rest = url.substr(scheme.size());
  RedisEndpoint endpoint;

  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (rest.find_first_of("?#") != std::string_view::npos)
    throw fail("query strings are not supported");
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userInfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (const auto colon = userInfo.find(':'); colon != std::string_view::npos) {
      endpoint.user = decodeUrlPart(userInfo.substr(0, colon), url);
      endpoint.password = decodeUrlPart(userInfo.substr(colon + 1), url);
    } else {
      endpoint.password =
          decodeUrlPart(userInfo, url);  // redis://secret@host, as redis-cli reads it
    }
  }

  std::string_view portText;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) throw fail("unterminated [IPv6] host");
    endpoint.host = std::string(rest.substr(1, close - 1));
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) throw fail("unexpected text after ]");
      portText = after.substr(1);
      if (portText.empty()) throw fail("empty port");
    }
  } else {
    const auto colon = rest.find(':');
    endpoint.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      portText = rest.substr(colon + 1);
      if (portText.empty()) throw fail("empty port");
    }
  }
  if (endpoint.host.empty()) throw fail("missing host");

  const auto parseNumber = [&](std::string_view text, int low, int high, std::string_view what) {
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < low || value > high) {
      throw fail(std::string(what) + " '" + std::string(text) + "' is not a number in " +
                 std::to_string(low) + "-" + std::to_string(high));
    }
    return value;
  };
  if (!portText.empty()) endpoint.port = parseNumber(portText, 1, 65535, "port");
  if (!path.empty()) endpoint.database = parseNumber(path, 0, 1'000'000, "database");
  return endpoint;
}

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
/// One reply; null when the connection failed (see RedisConnection::error).
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

/// The reply's bytes (strings, statuses and errors), else empty.
inline std::string_view replyText(const redisReply* reply) noexcept {
  if (reply == nullptr || reply->str == nullptr) return {};
  return {reply->str, reply->len};
}

inline bool isErrorReply(const redisReply* reply) noexcept {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR;
}

inline timeval toTimeval(std::chrono::milliseconds timeout) noexcept {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(timeout.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((timeout.count() % 1000) * 1000);
  return tv;
}

/// One synchronous hiredis connection. Not thread-safe (like hiredis
/// contexts): use each from one thread at a time. After an I/O error the
/// connection closes itself; connect() again.
class RedisConnection {
 public:
  RedisConnection() = default;
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection() { close(); }

  /// Connects (and AUTHs/SELECTs as the endpoint says) within
  /// `connectTimeout`; replies must arrive within `commandTimeout`. Returns
  /// false with error() set on failure.
  bool connect(const RedisEndpoint& endpoint, std::chrono::milliseconds connectTimeout,
               std::chrono::milliseconds commandTimeout) {
    close();
    redisContext* context =
        redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, toTimeval(connectTimeout));
    if (context == nullptr) {
      error_ = "cannot allocate a hiredis context";
      return false;
    }
    context_ = context;
    if (context_->err != 0) return fail();
    if (redisSetTimeout(context_, toTimeval(commandTimeout)) != REDIS_OK) return fail();
    redisEnableKeepAlive(context_);
    if (!endpoint.password.empty()) {
      auto reply = endpoint.user.empty() ? command({"AUTH", endpoint.password})
                                         : command({"AUTH", endpoint.user, endpoint.password});
      if (!checkSetup(reply, "AUTH")) return false;
    }
    if (endpoint.database != 0) {
      auto reply = command({"SELECT", std::to_string(endpoint.database)});
      if (!checkSetup(reply, "SELECT")) return false;
    }
    return true;
  }

  [[nodiscard]] bool connected() const noexcept { return context_ != nullptr; }

  /// Why the last connect or command failed.
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

  void close() noexcept {
    if (context_ != nullptr) redisFree(context_);
    context_ = nullptr;
  }

  /// Closes, recording why (for error()).
  void closeWithError(std::string why) {
    error_ = std::move(why);
    close();
  }

  /// The socket, for shutdown() from another thread; -1 when closed.
  [[nodiscard]] int fd() const noexcept { return context_ != nullptr ? context_->fd : -1; }

  void setTimeout(std::chrono::milliseconds timeout) noexcept {
    if (context_ != nullptr) redisSetTimeout(context_, toTimeval(timeout));
  }

  /// Sends one command and reads its reply. Null on I/O error (then closed).
  RedisReplyPtr command(std::initializer_list<std::string_view> args) {
    return append(args.begin(), args.size()) ? reply() : nullptr;
  }
  RedisReplyPtr command(const std::vector<std::string>& args) {
    return append(args.data(), args.size()) ? reply() : nullptr;
  }

  /// Queues one command without reading (pipelining); read with reply().
  bool append(const std::vector<std::string>& args) { return append(args.data(), args.size()); }
  bool append(std::initializer_list<std::string_view> args) {
    return append(args.begin(), args.size());
  }

  /// Reads the next reply. Null on I/O error or timeout (then closed).
  RedisReplyPtr reply() {
    if (context_ == nullptr) return nullptr;
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      fail();
      return nullptr;
    }
    return RedisReplyPtr(static_cast<redisReply*>(raw));
  }

 private:
  template <class String>
  bool append(const String* args, std::size_t count) {
    if (context_ == nullptr) {
      if (error_.empty()) error_ = "not connected";
      return false;
    }
    std::vector<const char*> argv(count);
    std::vector<std::size_t> lengths(count);
    for (std::size_t i = 0; i < count; ++i) {
      argv[i] = args[i].data();
      lengths[i] = args[i].size();
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(count), argv.data(), lengths.data()) !=
        REDIS_OK) {
      return fail();
    }
    return true;
  }

  bool fail() {
    error_ =
        context_ != nullptr && context_->errstr[0] != '\0' ? context_->errstr : "connection failed";
    close();
    return false;
  }

  bool checkSetup(const RedisReplyPtr& reply, std::string_view what) {
    if (!reply) return false;
    if (isErrorReply(reply.get())) {
      error_ = std::string(what) + " failed: " + std::string(replyText(reply.get()));
      close();
      return false;
    }
    return true;
  }

  redisContext* context_ = nullptr;
  std::string error_;
};

}  // namespace jobtrack::detail
