#include "httplib_adapter.hpp"

#include <httplib.h>

#include <sys/socket.h>

namespace jobtrack::examples::http {

namespace {

/// Longer paths are refused before cpp-httplib's std::regex sees them
/// (libstdc++'s regex recurses per character).
constexpr std::size_t kMaxPathLength = 2048;

/// Requests without a body are answered before cpp-httplib's own routing:
/// it refuses a POST without Content-Length, and has no table for methods
/// such as TRACE. Requests with a body take the normal path, where
/// cpp-httplib reads it (enforcing the size limit) first.
bool hasNoBody(const httplib::Request& request) {
  if (request.has_header("Transfer-Encoding")) return false;
  return !request.has_header("Content-Length") || request.get_header_value("Content-Length") == "0";
}

}  // namespace

/// cpp-httplib's server, with access to its listening socket.
class HttplibServer : public httplib::Server {
 public:
  /// Debian's build listens with a backlog of 5, too few for a burst of
  /// clients (their SYNs would be dropped and retried a second later).
  /// listen() again on the bound socket raises it.
  void raiseBacklog() {
    const socket_t socket = svr_sock_;
    if (socket != INVALID_SOCKET) ::listen(socket, SOMAXCONN);
  }
};

Request fromHttplib(const httplib::Request& request) {
  Request result;
  result.method = request.method;
  result.path = request.path;
  for (const auto& [name, value] : request.params) result.query.emplace(name, value);
  for (const auto& [name, value] : request.headers) result.headers.emplace(name, value);
  result.body = request.body;
  return result;
}

void toHttplib(Response response, httplib::Response& out) {
  out.status = response.status;
  for (const auto& [name, value] : response.headers) out.set_header(name, value);
  if (response.stream) {
    out.set_chunked_content_provider(
        response.contentType,
        [stream = std::move(response.stream)](std::size_t, httplib::DataSink& sink) {
          stream([&sink](std::string_view piece) {
            return sink.is_writable() && sink.write(piece.data(), piece.size());
          });
          sink.done();
          return true;
        });
  } else if (!response.body.empty() || !response.contentType.empty()) {
    out.set_content(response.body, response.contentType);
  }
}

HttpServer::HttpServer(App& app, ServerOptions options)
    : app_(app), options_(std::move(options)), server_(std::make_unique<HttplibServer>()) {
  HttplibServer& server = *server_;
  server.new_task_queue = [threads = options_.threads] { return new httplib::ThreadPool(threads); };
  server.set_keep_alive_max_count(options_.keepAliveMaxRequests);
  server.set_keep_alive_timeout(static_cast<time_t>(options_.keepAliveTimeout.count()));
  server.set_read_timeout(static_cast<time_t>(options_.readTimeout.count()), 0);
  server.set_write_timeout(static_cast<time_t>(options_.writeTimeout.count()), 0);
  // Small JSON answers must not wait for Nagle's algorithm and delayed ACKs
  // (about 40 ms each on loopback, measured by scripts/bench).
  server.set_tcp_nodelay(true);
  server.set_payload_max_length(options_.maxBodyBytes);

  const auto serve = [this](const httplib::Request& request, httplib::Response& response) {
    toHttplib(app_.handle(fromHttplib(request)), response);
  };
  server.set_pre_routing_handler(
      [this](const httplib::Request& request, httplib::Response& response) {
        if (request.path.size() > kMaxPathLength) {
          toHttplib(problem(414, "The path is longer than " + std::to_string(kMaxPathLength) +
                                     " characters."),
                    response);
          return httplib::Server::HandlerResponse::Handled;
        }
        if (hasNoBody(request)) {
          toHttplib(app_.handle(fromHttplib(request)), response);
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      });
  // Every path reaches the App's router, which owns 404 and 405.
  const std::string any = "[\\s\\S]*";
  server.Get(any, serve);
  server.Post(any, serve);
  server.Put(any, serve);
  server.Patch(any, serve);
  server.Delete(any, serve);
  server.Options(any, serve);

  // Errors cpp-httplib raises itself (413 body too large, 400 unparsable
  // request, ...) become problem documents too.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& response) {
        if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string detail;
        switch (response.status) {
          case 413:
            detail = "The request body is too large.";
            break;
          case 414:
            detail = "The request URI is too long.";
            break;
          case 404:
            detail = "There is no such resource.";
            break;
          case 400:
            detail = "The request could not be parsed (request line, headers or body framing).";
            break;
          default:
            detail = "The request could not be processed.";
            break;
        }
        toHttplib(problem(response.status, detail), response);
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr error) {
        std::string what = "unknown error";
        try {
          if (error) std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        toHttplib(problem(500, "The server failed to handle the request: " + what), response);
      });
  server.set_logger([this](const httplib::Request&, const httplib::Response& response) {
    app_.httpMetrics().record(response.status);
  });
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  int port = -1;
  if (options_.port == 0) {
    port = server_->bind_to_any_port(options_.host);
  } else if (server_->bind_to_port(options_.host, options_.port)) {
    port = options_.port;
  }
  if (port > 0) server_->raiseBacklog();
  return port;
}

bool HttpServer::run() { return server_->listen_after_bind(); }

void HttpServer::stop() { server_->stop(); }

}  // namespace jobtrack::examples::http
