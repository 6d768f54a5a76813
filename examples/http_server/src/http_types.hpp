#pragma once

/// @file
/// Transport-neutral request and response types. Controllers see only these,
/// so the whole service can be driven without sockets (tests, fuzzers); the
/// cpp-httplib adapter (httplib_adapter.hpp) converts at the edge.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jobtrack::examples::http {

/// Case-insensitive ordering for header names.
struct CaseInsensitiveLess {
  bool operator()(std::string_view a, std::string_view b) const noexcept;
  using is_transparent = void;
};

/// Header fields, names compared case-insensitively.
using Headers = std::multimap<std::string, std::string, CaseInsensitiveLess>;

/// Decoded query parameters (a name may repeat).
using QueryParams = std::multimap<std::string, std::string>;

/// An HTTP request, already parsed by the transport.
struct Request {
  std::string method;  ///< "GET", "POST", ...
  std::string path;    ///< decoded path, without the query
  QueryParams query;   ///< decoded query parameters
  Headers headers;
  std::string body;
  std::map<std::string, std::string> pathParams;  ///< filled by the router, e.g. {"id": "..."}

  /// The first value of header `name`, if present.
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
  /// The first value of query parameter `name`, if present.
  [[nodiscard]] std::optional<std::string> queryParam(const std::string& name) const;
};

/// Writes one piece of a streamed body; returns false once the peer is gone.
using StreamWriter = std::function<bool(std::string_view)>;

/// An HTTP response. Either `body` or, for long-lived streams such as
/// server-sent events, `stream` (run once, on the connection's thread).
struct Response {
  int status = 200;
  Headers headers;
  std::string contentType = "application/json";
  std::string body;
  std::function<void(const StreamWriter&)> stream;

  /// Sets (replacing) header `name`.
  void setHeader(const std::string& name, std::string value);
  /// The first value of header `name`, if present.
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
};

/// A 2xx/4xx response whose body is `value`.
[[nodiscard]] Response jsonResponse(int status, const nlohmann::json& value);

/// The standard reason phrase for `status` ("Not Found"), or "Unknown".
[[nodiscard]] std::string_view reasonPhrase(int status) noexcept;

/// An RFC 9457 problem document (`application/problem+json`):
/// {"type", "title", "status", "detail"} plus optional extension members.
[[nodiscard]] Response problem(int status, std::string detail,
                               nlohmann::json extensions = nlohmann::json::object());

/// Media type of problem responses.
inline constexpr std::string_view kProblemJson = "application/problem+json";

}  // namespace jobtrack::examples::http
