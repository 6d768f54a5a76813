#pragma once

/// @file
/// POST /api/hello, /api/hello/compose, /api/hello/race: start a job, answer
/// 202 Accepted with its id, `Location` and `Retry-After`.

#include "controller.hpp"
#include "hello_service.hpp"

#include <optional>
#include <string>

namespace jobtrack::examples::http {

/// Longest accepted `name`, in Unicode code points.
inline constexpr std::size_t kMaxNameLength = 100;

/// Validates the `name` member of a hello request: the name, or a 400 problem.
struct NameOrProblem {
  std::optional<std::string> name;
  std::optional<Response> error;
};
[[nodiscard]] NameOrProblem validateName(const nlohmann::json& body);

/// The 202 answer for a freshly submitted job.
[[nodiscard]] Response acceptedResponse(const JobId& id);

/// Starts the hello jobs over HTTP.
class HelloController final : public Controller {
 public:
  HelloController(HelloService& service, BodyLimits limits);
  void registerRoutes(Router& router) override;

  Response postHello(const Request& request);
  Response postCompose(const Request& request);
  Response postRace(const Request& request);

 private:
  template <class Start>
  Response startNamed(const Request& request, Start&& start);

  HelloService& service_;
  BodyLimits limits_;
};

}  // namespace jobtrack::examples::http
