#include "controller.hpp"

#include <algorithm>
#include <cctype>

namespace jobtrack::examples::http {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

}  // namespace

bool isJsonContentType(std::string_view contentType) {
  const auto semicolon = contentType.find(';');
  if (lower(trim(contentType.substr(0, semicolon))) != "application/json") return false;
  std::string_view params =
      semicolon == std::string_view::npos ? std::string_view{} : contentType.substr(semicolon + 1);
  while (!params.empty()) {
    const auto next = params.find(';');
    const std::string_view param = trim(params.substr(0, next));
    params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
    const auto equals = param.find('=');
    if (equals == std::string_view::npos) continue;
    if (lower(trim(param.substr(0, equals))) != "charset") continue;
    std::string_view value = trim(param.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    if (const std::string charset = lower(value); charset != "utf-8" && charset != "utf8")
      return false;
  }
  return true;
}

JsonBody readJsonBody(const Request& request, const BodyLimits& limits, bool allowEmpty) {
  if (request.body.size() > limits.maxBytes) {
    return {
        std::nullopt,
        problem(413, "The request body is " + std::to_string(request.body.size()) +
                         " bytes; at most " + std::to_string(limits.maxBytes) + " are accepted.")};
  }
  if (allowEmpty && request.body.empty()) return {nlohmann::json::object(), std::nullopt};
  const auto contentType = request.header("Content-Type");
  if (!contentType) {
    return {std::nullopt,
            problem(415, "The request has no Content-Type; send 'application/json'.")};
  }
  if (!isJsonContentType(*contentType)) {
    return {std::nullopt, problem(415, "The Content-Type '" + *contentType +
                                           "' is not supported; send 'application/json' (UTF-8).")};
  }
  if (request.body.empty()) {
    return {std::nullopt, problem(400, "The request body is empty; send a JSON object.")};
  }
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(request.body);
  } catch (const nlohmann::json::parse_error& e) {
    return {std::nullopt,
            problem(400, std::string("The request body is not valid JSON: ") + e.what())};
  }
  if (!value.is_object()) {
    return {std::nullopt, problem(400, std::string("The request body must be a JSON object, not ") +
                                           value.type_name() + ".")};
  }
  return {std::move(value), std::nullopt};
}

}  // namespace jobtrack::examples::http
