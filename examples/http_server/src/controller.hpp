#pragma once

/// @file
/// Controllers group related routes; the App registers each on its Router.

#include "http_types.hpp"
#include "router.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace jobtrack::examples::http {

/// A set of routes (HelloController, JobsController, later ChromaDbController...).
class Controller {
 public:
  virtual ~Controller() = default;
  /// Adds this controller's routes to `router`; handlers may capture `this`.
  virtual void registerRoutes(Router& router) = 0;
};

/// Limits applied to every request body.
struct BodyLimits {
  std::size_t maxBytes = 64 * 1024;
};

/// The outcome of reading a JSON request body: the document, or the problem
/// response to send instead (413, 415 or 400).
struct JsonBody {
  std::optional<nlohmann::json> value;
  std::optional<Response> error;
};

/// Checks size and Content-Type (`application/json`, optional
/// `charset=utf-8`) and parses the body. With `allowEmpty`, an empty body
/// with any Content-Type gives an empty object.
[[nodiscard]] JsonBody readJsonBody(const Request& request, const BodyLimits& limits,
                                    bool allowEmpty = false);

/// True when `contentType` is application/json with no charset or UTF-8.
[[nodiscard]] bool isJsonContentType(std::string_view contentType);

}  // namespace jobtrack::examples::http
