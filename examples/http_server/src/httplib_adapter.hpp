#pragma once

/// @file
/// Serves an App over HTTP/1.1 with cpp-httplib. cpp-httplib runs one
/// connection per pool thread: a long-poll or an event stream holds a thread
/// for its whole duration, so `threads` caps how many of them can be open at
/// once (further connections wait in the queue).

#include "app.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace jobtrack::examples::http {

class HttplibServer;

/// Transport settings.
struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;           ///< 0 picks a free port
  std::size_t threads = 64;  ///< connection threads (long-polls and streams each hold one)
  std::size_t maxBodyBytes = 64 * 1024;
  std::size_t keepAliveMaxRequests = 10'000;
  /// A client silent this long while sending a request, or not reading an
  /// answer, is dropped (slow clients cannot hold a thread for ever).
  std::chrono::seconds readTimeout{5};
  std::chrono::seconds writeTimeout{5};
  std::chrono::seconds keepAliveTimeout{5};  ///< an idle keep-alive connection is closed after this
};

/// Converts a parsed cpp-httplib request to the transport-neutral type.
[[nodiscard]] Request fromHttplib(const httplib::Request& request);
/// Copies `response` into cpp-httplib's (a stream becomes a chunked body).
void toHttplib(Response response, httplib::Response& out);

/// An App served by cpp-httplib.
class HttpServer {
 public:
  HttpServer(App& app, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds the listening socket; returns the port (useful with port 0), or -1.
  int bind();
  /// Serves until stop(); returns false if it could not serve.
  bool run();
  /// Stops accepting and ends run() once open connections finish. Thread-safe.
  void stop();

 private:
  App& app_;
  ServerOptions options_;
  std::unique_ptr<HttplibServer> server_;
};

}  // namespace jobtrack::examples::http
