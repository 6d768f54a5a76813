#include "http_types.hpp"

#include <algorithm>
#include <cctype>

namespace jobtrack::examples::http {

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const noexcept {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) <
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::optional<std::string> Request::header(std::string_view name) const {
  if (auto it = headers.find(name); it != headers.end()) return it->second;
  return std::nullopt;
}

std::optional<std::string> Request::queryParam(const std::string& name) const {
  if (auto it = query.find(name); it != query.end()) return it->second;
  return std::nullopt;
}

void Response::setHeader(const std::string& name, std::string value) {
  headers.erase(name);
  headers.emplace(name, std::move(value));
}

std::optional<std::string> Response::header(std::string_view name) const {
  if (auto it = headers.find(name); it != headers.end()) return it->second;
  return std::nullopt;
}

Response jsonResponse(int status, const nlohmann::json& value) {
  Response response;
  response.status = status;
  response.contentType = "application/json";
  // Replace invalid UTF-8 instead of throwing: names come from clients.
  response.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

std::string_view reasonPhrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

Response problem(int status, std::string detail, nlohmann::json extensions) {
  nlohmann::json body = std::move(extensions);
  if (!body.is_object()) body = nlohmann::json::object();
  body["type"] = "about:blank";  // RFC 9457 §4.2.1: the status code says it all
  body["title"] = std::string(reasonPhrase(status));
  body["status"] = status;
  body["detail"] = std::move(detail);
  Response response = jsonResponse(status, body);
  response.contentType = std::string(kProblemJson);
  return response;
}

}  // namespace jobtrack::examples::http
