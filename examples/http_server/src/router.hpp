#pragma once

/// @file
/// A small method + path router: `/api/jobs/{id}` style patterns, 404 for an
/// unknown path, 405 with `Allow` for a known path and a wrong method, and
/// every handler failure turned into a problem response (never a crash).

#include "http_types.hpp"

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace jobtrack::examples::http {

/// A request handler.
using Handler = std::function<Response(const Request&)>;

/// Routes requests to handlers by method and path pattern.
class Router {
 public:
  /// Adds a route. `pattern` is a path whose segments are literal or
  /// `{name}` (one non-empty segment, exposed in `Request::pathParams`).
  void add(std::string method, std::string pattern, Handler handler);

  /// Dispatches `request` (HEAD is served by the GET route). Never throws.
  [[nodiscard]] Response handle(Request request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };

  static std::vector<std::string> split(std::string_view path);
  static bool match(const Route& route, const std::vector<std::string>& segments,
                    std::map<std::string, std::string>& params);

  std::vector<Route> routes_;
};

/// Every method that some controller might use; anything else is 501.
[[nodiscard]] bool isKnownMethod(std::string_view method) noexcept;

}  // namespace jobtrack::examples::http
