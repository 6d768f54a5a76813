#include "hello_controller.hpp"

#include <algorithm>

namespace jobtrack::examples::http {

namespace {

/// Code points in valid UTF-8 (the JSON parser has already validated it).
std::size_t codePoints(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool isBlank(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

}  // namespace

NameOrProblem validateName(const nlohmann::json& body) {
  const auto it = body.find("name");
  if (it == body.end() || it->is_null()) {
    return {std::nullopt, problem(400, "The field 'name' is required, e.g. {\"name\": \"john\"}.")};
  }
  if (!it->is_string()) {
    return {std::nullopt, problem(400, std::string("The field 'name' must be a string, not ") +
                                           it->type_name() + ".")};
  }
  const auto& name = it->get_ref<const std::string&>();
  if (name.empty() || isBlank(name)) {
    return {std::nullopt, problem(400, "The field 'name' must not be empty.")};
  }
  if (const std::size_t length = codePoints(name); length > kMaxNameLength) {
    return {std::nullopt, problem(400, "The field 'name' is " + std::to_string(length) +
                                           " characters long; at most " +
                                           std::to_string(kMaxNameLength) + " are allowed.")};
  }
  return {name, std::nullopt};
}

Response acceptedResponse(const JobId& id) {
  const std::string jobId = to_string(id);
  Response response =
      jsonResponse(202, {{"jobId", jobId}, {"status", std::string(toString(JobStatus::Pending))}});
  response.setHeader("Location", "/api/jobs/" + jobId);
  response.setHeader("Retry-After", "1");
  return response;
}

HelloController::HelloController(HelloService& service, BodyLimits limits)
    : service_(service), limits_(limits) {}

void HelloController::registerRoutes(Router& router) {
  router.add("POST", "/api/hello", [this](const Request& r) { return postHello(r); });
  router.add("POST", "/api/hello/compose", [this](const Request& r) { return postCompose(r); });
  router.add("POST", "/api/hello/race", [this](const Request& r) { return postRace(r); });
}

template <class Start>
Response HelloController::startNamed(const Request& request, Start&& start) {
  JsonBody body = readJsonBody(request, limits_);
  if (body.error) return std::move(*body.error);
  NameOrProblem name = validateName(*body.value);
  if (name.error) return std::move(*name.error);
  return acceptedResponse(start(*name.name));
}

Response HelloController::postHello(const Request& request) {
  return startNamed(request,
                    [this](const std::string& name) { return service_.startHelloJob(name); });
}

Response HelloController::postCompose(const Request& request) {
  return startNamed(
      request, [this](const std::string& name) { return service_.startComposeHelloJob(name); });
}

Response HelloController::postRace(const Request& request) {
  // The race takes no input; an empty body is fine, anything else must be a JSON object.
  JsonBody body = readJsonBody(request, limits_, /*allowEmpty=*/true);
  if (body.error) return std::move(*body.error);
  return acceptedResponse(service_.startRaceJob());
}

}  // namespace jobtrack::examples::http
