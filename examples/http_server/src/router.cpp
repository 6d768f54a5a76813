#include "router.hpp"

#include <algorithm>
#include <exception>
#include <set>

namespace jobtrack::examples::http {

bool isKnownMethod(std::string_view method) noexcept {
  static constexpr std::string_view kMethods[] = {"GET",    "HEAD",    "POST",    "PUT",  "PATCH",
                                                  "DELETE", "OPTIONS", "CONNECT", "TRACE"};
  return std::find(std::begin(kMethods), std::end(kMethods), method) != std::end(kMethods);
}

void Router::add(std::string method, std::string pattern, Handler handler) {
  routes_.push_back(Route{std::move(method), split(pattern), std::move(handler)});
}

std::vector<std::string> Router::split(std::string_view path) {
  std::vector<std::string> segments;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return segments;
  while (true) {
    const auto slash = path.find('/');
    segments.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

bool Router::match(const Route& route, const std::vector<std::string>& segments,
                   std::map<std::string, std::string>& params) {
  if (route.segments.size() != segments.size()) return false;
  std::map<std::string, std::string> found;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string& expected = route.segments[i];
    if (expected.size() > 2 && expected.front() == '{' && expected.back() == '}') {
      if (segments[i].empty()) return false;
      found[expected.substr(1, expected.size() - 2)] = segments[i];
    } else if (expected != segments[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

Response Router::handle(Request request) const {
  try {
    if (!isKnownMethod(request.method)) {
      return problem(501, "The method '" + request.method + "' is not supported by this server.");
    }
    const std::string method = request.method == "HEAD" ? "GET" : request.method;
    const auto segments = split(request.path);
    std::set<std::string> allowed;
    for (const Route& route : routes_) {
      std::map<std::string, std::string> params;
      if (!match(route, segments, params)) continue;
      if (route.method == method) {
        request.pathParams = std::move(params);
        return route.handler(request);
      }
      allowed.insert(route.method);
      if (route.method == "GET") allowed.insert("HEAD");
    }
    if (allowed.empty()) {
      return problem(404, "There is no resource at '" + request.path + "'.");
    }
    allowed.insert("OPTIONS");
    std::string allow;
    for (const std::string& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    if (request.method == "OPTIONS") {
      Response response;
      response.status = 204;
      response.contentType.clear();
      response.setHeader("Allow", allow);
      return response;
    }
    Response response = problem(405, "The method " + request.method + " is not allowed on '" +
                                         request.path + "'; use " + allow + ".");
    response.setHeader("Allow", allow);
    return response;
  } catch (const std::exception& e) {
    return problem(500, std::string("The server failed to handle the request: ") + e.what());
  } catch (...) {
    return problem(500, "The server failed to handle the request.");
  }
}

}  // namespace jobtrack::examples::http
