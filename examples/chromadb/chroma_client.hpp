#pragma once

// A small client for ChromaDB's HTTP API v2 (the v1 API is gone from current
// Chroma servers: they answer every /api/v1 call with "The v1 API is
// deprecated. Please use /v2 apis").
//
// Example code: it covers what jobtrack's ChromaDB example needs, not the
// whole API. The server does not compute embeddings: callers send them (see
// embedding.hpp).

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace jobtrack::examples::chroma {

/// Which header carries `ChromaDbOptions::authToken`; Chroma's token
/// authentication accepts either, depending on server configuration.
enum class ChromaAuthHeader {
  XChromaToken,         ///< `X-Chroma-Token: <token>` (Chroma's default)
  AuthorizationBearer,  ///< `Authorization: Bearer <token>`
};

/// Connection settings for ChromaDbClient. A plain value type.
struct ChromaDbOptions {
  /// `http[s]://host[:port][/prefix]`; a prefix is prepended to every API path.
  std::string baseUrl = "http://127.0.0.1:8000";
  std::string tenant = "default_tenant";
  std::string database = "default_database";
  /// Sent with every request when set, in the header chosen by authHeader.
  std::optional<std::string> authToken;
  ChromaAuthHeader authHeader = ChromaAuthHeader::XChromaToken;
  std::chrono::milliseconds connectTimeout{2000};
  /// Also used as the write timeout.
  std::chrono::milliseconds readTimeout{30000};
  /// Retries after the first attempt when Chroma is unavailable (transport
  /// error, 502, 503 or 504): a call makes at most maxRetries + 1 attempts.
  int maxRetries = 3;
  /// Wait before the first retry; doubled before each further one.
  std::chrono::milliseconds initialBackoff{100};
  /// Upper bound for a single wait between retries.
  std::chrono::milliseconds maxBackoff{5000};
};

/// What a failed call was: filled into every ChromaError.
struct ChromaErrorInfo {
  std::string method;     ///< HTTP method, e.g. "POST"
  std::string path;       ///< request path, e.g. "/api/v2/heartbeat"
  int status = 0;         ///< HTTP status; 0 when no response arrived
  std::string errorType;  ///< Chroma's "error" field, e.g. "NotFoundError"
  std::string message;    ///< Chroma's "message" field, or a transport error
};

/// Base of every error the client throws for a failed call. Thrown as itself
/// for a response the client cannot understand (e.g. invalid JSON).
class ChromaError : public std::runtime_error {
 public:
  /// Builds "Chroma METHOD PATH -> STATUS ERRORTYPE: MESSAGE".
  explicit ChromaError(ChromaErrorInfo info)
      : std::runtime_error(describe(info)), info_(std::move(info)) {}

  /// The failed request and Chroma's answer.
  [[nodiscard]] const ChromaErrorInfo& info() const noexcept { return info_; }
  /// HTTP status, 0 when no response arrived.
  [[nodiscard]] int status() const noexcept { return info_.status; }

 private:
  static std::string describe(const ChromaErrorInfo& info) {
    std::string text = "Chroma " + info.method + " " + info.path + " -> ";
    text += info.status == 0 ? std::string("no response") : std::to_string(info.status);
    if (!info.errorType.empty()) {
      text += " " + info.errorType;
    }
    if (!info.message.empty()) {
      text += ": " + info.message;
    }
    return text;
  }

  ChromaErrorInfo info_;
};

/// Chroma could not be reached (connection refused, timeout, connection
/// dropped) or answered 502/503/504, on every attempt; or the connection
/// failed in a way retrying cannot fix (e.g. TLS certificate verification),
/// after one attempt.
class ChromaUnavailableError : public ChromaError {
 public:
  using ChromaError::ChromaError;
};

/// 409: e.g. creating a collection whose name exists, without get_or_create.
class ChromaConflictError : public ChromaError {
 public:
  using ChromaError::ChromaError;
};

/// 404: the collection (or tenant, database, route) does not exist.
class ChromaNotFoundError : public ChromaError {
 public:
  using ChromaError::ChromaError;
};

/// Any other 4xx: Chroma rejected the request (validation, wrong embedding
/// dimension, authentication); Chroma's message says why.
class ChromaBadRequestError : public ChromaError {
 public:
  using ChromaError::ChromaError;
};

/// A 5xx other than 502/503/504: Chroma failed internally.
class ChromaServerError : public ChromaError {
 public:
  using ChromaError::ChromaError;
};

/// One vector; Chroma stores 32-bit floats.
using Embedding = std::vector<float>;

/// A collection as Chroma describes it.
struct ChromaCollection {
  std::string id;  ///< UUID; data calls (add, query, count) take this id
  std::string name;
  nlohmann::json metadata;                ///< object, or null when none was set
  std::optional<std::int64_t> dimension;  ///< unset until the first add
  std::string tenant;
  std::string database;
  nlohmann::json configuration;  ///< Chroma's "configuration_json"

  /// Reads Chroma's collection JSON. Throws nlohmann::json::exception when a
  /// required field (id, name) is missing or mistyped.
  static ChromaCollection fromJson(const nlohmann::json& json) {
    ChromaCollection collection;
    collection.id = json.at("id").get<std::string>();
    collection.name = json.at("name").get<std::string>();
    collection.metadata = json.value("metadata", nlohmann::json());
    if (auto it = json.find("dimension"); it != json.end() && it->is_number_integer()) {
      collection.dimension = it->get<std::int64_t>();
    }
    collection.tenant = json.value("tenant", std::string());
    collection.database = json.value("database", std::string());
    collection.configuration = json.value("configuration_json", nlohmann::json());
    return collection;
  }
};

/// Fields a query can return besides ids.
enum class ChromaInclude { Documents, Metadatas, Distances, Embeddings };

/// One hit of a query; fields not requested through ChromaInclude stay empty.
struct ChromaQueryMatch {
  std::string id;
  std::optional<float> distance;  ///< squared L2 by default: smaller is nearer
  std::optional<std::string> document;
  nlohmann::json metadata;  ///< null when absent or not requested
  std::optional<Embedding> embedding;
};

/// Hits per query embedding, in the order of the query embeddings; each list
/// is nearest first.
using ChromaQueryResults = std::vector<std::vector<ChromaQueryMatch>>;

namespace detail {

/// The parts of ChromaDbOptions::baseUrl.
struct ParsedUrl {
  std::string scheme;  ///< "http" or "https"
  std::string host;    ///< IPv6 addresses keep their brackets
  int port = 0;
  std::string basePath;  ///< "" or "/prefix" without a trailing slash
};

/// Splits `http[s]://host[:port][/path]`. Throws std::invalid_argument.
inline ParsedUrl parseUrl(std::string_view url) {
  auto fail = [&](const char* why) {
    throw std::invalid_argument("invalid Chroma URL '" + std::string(url) + "': " + why);
  };
  ParsedUrl parsed;
  const auto schemeEnd = url.find("://");
  if (schemeEnd == std::string_view::npos) {
    fail("expected http://host[:port]");
  }
  parsed.scheme = std::string(url.substr(0, schemeEnd));
  std::transform(parsed.scheme.begin(), parsed.scheme.end(), parsed.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (parsed.scheme != "http" && parsed.scheme != "https") {
    fail("scheme must be http or https");
  }
  std::string_view rest = url.substr(schemeEnd + 3);
  const auto pathStart = rest.find('/');
  std::string_view authority = rest.substr(0, pathStart);
  if (pathStart != std::string_view::npos) {
    std::string_view path = rest.substr(pathStart);
    while (!path.empty() && path.back() == '/') {
      path.remove_suffix(1);
    }
    parsed.basePath = std::string(path);
  }
  if (authority.find('@') != std::string_view::npos) {
    fail("user info is not supported; use ChromaDbOptions::authToken");
  }
  std::string_view portText;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      fail("unterminated IPv6 address");
    }
    parsed.host = std::string(authority.substr(0, close + 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        fail("unexpected text after IPv6 address");
      }
      portText = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      portText = authority.substr(colon + 1);
    }
  }
  if (parsed.host.empty() || parsed.host == "[]") {
    fail("missing host");
  }
  if (portText.empty()) {
    parsed.port = parsed.scheme == "https" ? 443 : 80;
  } else {
    int port = 0;
    for (char c : portText) {
      if (c < '0' || c > '9' || port > 65535) {
        fail("port must be a number");
      }
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) {
      fail("port out of range");
    }
    parsed.port = port;
  }
  return parsed;
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters pass).
inline std::string encodePathSegment(std::string_view segment) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(segment.size());
  for (unsigned char c : segment) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0x0F];
    }
  }
  return out;
}

inline std::string includeName(ChromaInclude include) {
  switch (include) {
    case ChromaInclude::Documents:
      return "documents";
    case ChromaInclude::Metadatas:
      return "metadatas";
    case ChromaInclude::Distances:
      return "distances";
    case ChromaInclude::Embeddings:
      return "embeddings";
  }
  throw std::invalid_argument("unknown ChromaInclude value");
}

}  // namespace detail

/// Client for one Chroma server, tenant and database (HTTP API v2).
///
/// Thread safety: immutable after construction; every call opens its own
/// httplib::Client (one TCP connection per call), so any number of threads may
/// call any member function of one instance concurrently.
///
/// Errors: calls throw ChromaUnavailableError after the bounded retries
/// (ChromaDbOptions::maxRetries, exponential backoff) when Chroma cannot be
/// reached or answers 502/503/504; 4xx and other 5xx answers are never
/// retried and map to ChromaNotFoundError (404), ChromaConflictError (409),
/// ChromaBadRequestError (other 4xx) and ChromaServerError (other 5xx). A
/// request that timed out may have reached the server before it is retried:
/// add() of the same ids is harmless, but a retried createCollection() without
/// getOrCreate can then report ChromaConflictError.
class ChromaDbClient {
 public:
  /// Validates the options. Throws std::invalid_argument for a malformed
  /// baseUrl, an empty tenant or database, or negative retry settings. Does
  /// not contact the server.
  explicit ChromaDbClient(ChromaDbOptions options = {})
      : options_(std::move(options)), url_(detail::parseUrl(options_.baseUrl)) {
    if (options_.tenant.empty() || options_.database.empty()) {
      throw std::invalid_argument("Chroma tenant and database must not be empty");
    }
    if (options_.maxRetries < 0 || options_.initialBackoff.count() < 0 ||
        options_.maxBackoff.count() < 0) {
      throw std::invalid_argument("Chroma retry settings must not be negative");
    }
    collectionsPath_ = url_.basePath + "/api/v2/tenants/" +
                       detail::encodePathSegment(options_.tenant) + "/databases/" +
                       detail::encodePathSegment(options_.database) + "/collections";
  }

  /// The options this client was built with.
  [[nodiscard]] const ChromaDbOptions& options() const noexcept { return options_; }

  /// GET /api/v2/heartbeat: the server's clock in nanoseconds. Throws
  /// ChromaError subclasses (see the class comment).
  [[nodiscard]] std::uint64_t heartbeat() const {
    const auto body = request("GET", apiPath("/heartbeat"));
    return readField<std::uint64_t>(body, "nanosecond heartbeat", "GET", apiPath("/heartbeat"));
  }

  /// GET /api/v2/version: the server's version, e.g. "1.0.0". Throws
  /// ChromaError subclasses.
  [[nodiscard]] std::string version() const {
    const auto body = request("GET", apiPath("/version"));
    if (!body.is_string()) {
      throw unexpected("GET", apiPath("/version"), "expected a JSON string");
    }
    return body.get<std::string>();
  }

  /// GET /api/v2/pre-flight-checks: the most records one add() may carry
  /// (5461 on Chroma 1.0). Throws ChromaError subclasses.
  [[nodiscard]] std::size_t maxBatchSize() const {
    const auto path = apiPath("/pre-flight-checks");
    return readField<std::size_t>(request("GET", path), "max_batch_size", "GET", path);
  }

  /// Creates a collection. With getOrCreate, returns the existing collection
  /// of that name instead (its metadata unchanged). Throws
  /// ChromaConflictError when the name exists and getOrCreate is false,
  /// ChromaBadRequestError for an invalid name (3-512 characters from
  /// [a-zA-Z0-9._-]) or metadata, and other ChromaError subclasses.
  ChromaCollection createCollection(const std::string& name,
                                    const nlohmann::json& metadata = nullptr,
                                    bool getOrCreate = false) const {
    nlohmann::json payload = {{"name", name}, {"get_or_create", getOrCreate}};
    if (!metadata.is_null()) {
      payload["metadata"] = metadata;
    }
    return toCollection(request("POST", collectionsPath_, payload), "POST", collectionsPath_);
  }

  /// Returns the collection called name. Throws ChromaNotFoundError when there
  /// is none, other ChromaError subclasses otherwise.
  [[nodiscard]] ChromaCollection getCollection(const std::string& name) const {
    const auto path = collectionPath(name);
    return toCollection(request("GET", path), "GET", path);
  }

  /// Lists the database's collections, oldest first; limit and offset page
  /// through them. Throws ChromaError subclasses.
  [[nodiscard]] std::vector<ChromaCollection> listCollections(
      std::optional<std::size_t> limit = std::nullopt, std::size_t offset = 0) const {
    std::string path = collectionsPath_ + "?offset=" + std::to_string(offset);
    if (limit) {
      path += "&limit=" + std::to_string(*limit);
    }
    const auto body = request("GET", path);
    if (!body.is_array()) {
      throw unexpected("GET", path, "expected a JSON array");
    }
    std::vector<ChromaCollection> collections;
    collections.reserve(body.size());
    for (const auto& item : body) {
      collections.push_back(toCollection(item, "GET", path));
    }
    return collections;
  }

  /// Deletes the collection called name and its records. Throws
  /// ChromaNotFoundError when there is none, other ChromaError subclasses
  /// otherwise.
  void deleteCollection(const std::string& name) const { request("DELETE", collectionPath(name)); }

  /// Adds records to a collection (by id, see ChromaCollection::id).
  /// embeddings must have one entry per id; documents and metadatas may be
  /// empty (not sent) or have one entry per id (a null metadata is allowed).
  /// Ids that already exist are left unchanged. Send at most a few thousand
  /// records per call (the server's max_batch_size; 5461 on Chroma 1.0).
  /// Throws std::invalid_argument for mismatched sizes,
  /// ChromaBadRequestError e.g. for an embedding of the wrong dimension,
  /// ChromaNotFoundError for an unknown collection, other ChromaError
  /// subclasses otherwise.
  void add(const std::string& collectionId, const std::vector<std::string>& ids,
           const std::vector<Embedding>& embeddings, const std::vector<std::string>& documents = {},
           const std::vector<nlohmann::json>& metadatas = {}) const {
    if (embeddings.size() != ids.size()) {
      throw std::invalid_argument("Chroma add: need one embedding per id");
    }
    if (!documents.empty() && documents.size() != ids.size()) {
      throw std::invalid_argument("Chroma add: need one document per id, or none");
    }
    if (!metadatas.empty() && metadatas.size() != ids.size()) {
      throw std::invalid_argument("Chroma add: need one metadata per id, or none");
    }
    nlohmann::json payload = {{"ids", ids}, {"embeddings", embeddings}};
    if (!documents.empty()) {
      payload["documents"] = documents;
    }
    if (!metadatas.empty()) {
      payload["metadatas"] = metadatas;
    }
    request("POST", recordsPath(collectionId, "/add"), payload);
  }

  /// Finds the nResults records nearest to each query embedding. Throws
  /// std::invalid_argument when queryEmbeddings is empty or nResults is 0,
  /// ChromaBadRequestError e.g. for a wrong dimension, ChromaNotFoundError
  /// for an unknown collection, other ChromaError subclasses otherwise.
  [[nodiscard]] ChromaQueryResults query(const std::string& collectionId,
                                         const std::vector<Embedding>& queryEmbeddings,
                                         std::size_t nResults = 10,
                                         const std::vector<ChromaInclude>& include = {
                                             ChromaInclude::Documents, ChromaInclude::Metadatas,
                                             ChromaInclude::Distances}) const {
    if (queryEmbeddings.empty()) {
      throw std::invalid_argument("Chroma query: need at least one query embedding");
    }
    if (nResults == 0) {
      throw std::invalid_argument("Chroma query: nResults must be positive");
    }
    nlohmann::json includeNames = nlohmann::json::array();
    for (auto field : include) {
      includeNames.push_back(detail::includeName(field));
    }
    const nlohmann::json payload = {
        {"query_embeddings", queryEmbeddings}, {"n_results", nResults}, {"include", includeNames}};
    const auto path = recordsPath(collectionId, "/query");
    const auto body = request("POST", path, payload);
    try {
      return toQueryResults(body);
    } catch (const nlohmann::json::exception& error) {
      throw unexpected("POST", path, std::string("malformed query result: ") + error.what());
    }
  }

  /// Number of records in a collection. Throws ChromaNotFoundError for an
  /// unknown collection, other ChromaError subclasses otherwise.
  [[nodiscard]] std::size_t count(const std::string& collectionId) const {
    const auto path = recordsPath(collectionId, "/count");
    const auto body = request("GET", path);
    if (!body.is_number_integer() || body.get<std::int64_t>() < 0) {
      throw unexpected("GET", path, "expected a non-negative integer");
    }
    return body.get<std::size_t>();
  }

  /// Deletes the records with these ids from a collection; unknown ids are
  /// ignored. Throws ChromaNotFoundError for an unknown collection, other
  /// ChromaError subclasses otherwise.
  void deleteRecords(const std::string& collectionId, const std::vector<std::string>& ids) const {
    request("POST", recordsPath(collectionId, "/delete"), nlohmann::json{{"ids", ids}});
  }

 private:
  [[nodiscard]] std::string apiPath(std::string_view suffix) const {
    return url_.basePath + "/api/v2" + std::string(suffix);
  }

  [[nodiscard]] std::string collectionPath(const std::string& name) const {
    return collectionsPath_ + "/" + detail::encodePathSegment(name);
  }

  [[nodiscard]] std::string recordsPath(const std::string& collectionId,
                                        std::string_view action) const {
    return collectionPath(collectionId) + std::string(action);
  }

  [[nodiscard]] httplib::Headers headers() const {
    httplib::Headers headers{{"Accept", "application/json"}};
    if (options_.authToken) {
      if (options_.authHeader == ChromaAuthHeader::XChromaToken) {
        headers.emplace("X-Chroma-Token", *options_.authToken);
      } else {
        headers.emplace("Authorization", "Bearer " + *options_.authToken);
      }
    }
    return headers;
  }

  [[nodiscard]] httplib::Client makeHttpClient() const {
    httplib::Client client(url_.scheme + "://" + url_.host + ":" + std::to_string(url_.port));
    const auto connect =
        std::chrono::duration_cast<std::chrono::microseconds>(options_.connectTimeout);
    const auto read = std::chrono::duration_cast<std::chrono::microseconds>(options_.readTimeout);
    client.set_connection_timeout(static_cast<time_t>(connect.count() / 1'000'000),
                                  static_cast<time_t>(connect.count() % 1'000'000));
    client.set_read_timeout(static_cast<time_t>(read.count() / 1'000'000),
                            static_cast<time_t>(read.count() % 1'000'000));
    client.set_write_timeout(static_cast<time_t>(read.count() / 1'000'000),
                             static_cast<time_t>(read.count() % 1'000'000));
    client.set_keep_alive(false);
    return client;
  }

  static httplib::Result send(httplib::Client& client, const std::string& method,
                              const std::string& path, const httplib::Headers& headers,
                              const std::string* body) {
    if (method == "GET") {
      return client.Get(path, headers);
    }
    if (method == "DELETE") {
      return client.Delete(path, headers);
    }
    return client.Post(path, headers, body ? *body : std::string(), "application/json");
  }

  static bool isUnavailableStatus(int status) {
    return status == 502 || status == 503 || status == 504;
  }

  /// Transport failures worth another attempt: the server may be starting,
  /// restarting or overloaded.
  static bool isTransientTransportError(httplib::Error error) {
    switch (error) {
      case httplib::Error::Connection:
      case httplib::Error::ConnectionTimeout:
      case httplib::Error::Read:
      case httplib::Error::Write:
      case httplib::Error::SSLConnection:
        return true;
      default:
        return false;
    }
  }

  /// Sends one request with retries and returns the parsed JSON body (null
  /// for an empty body); throws the matching ChromaError.
  nlohmann::json request(const std::string& method, const std::string& path,
                         const std::optional<nlohmann::json>& payload = std::nullopt) const {
    const std::optional<std::string> body =
        payload ? std::optional<std::string>(payload->dump()) : std::nullopt;
    const auto requestHeaders = headers();
    auto backoff = options_.initialBackoff;
    ChromaErrorInfo lastFailure{method, path, 0, "", ""};
    const int attempts = options_.maxRetries + 1;
    for (int attempt = 1; attempt <= attempts; ++attempt) {
      if (attempt > 1) {
        std::this_thread::sleep_for(std::min(backoff, options_.maxBackoff));
        backoff = std::min(backoff * 2, options_.maxBackoff);
      }
      auto client = makeHttpClient();
      auto result = send(client, method, path, requestHeaders, body ? &*body : nullptr);
      if (!result) {
        lastFailure.status = 0;
        lastFailure.errorType = "";
        lastFailure.message = httplib::to_string(result.error()) + " (" + options_.baseUrl + ")";
        if (!isTransientTransportError(result.error())) {
          // E.g. certificate verification: trying again cannot help.
          throw ChromaUnavailableError(std::move(lastFailure));
        }
        continue;
      }
      const int status = result->status;
      if (status >= 200 && status < 300) {
        return parseBody(result->body, method, path);
      }
      auto info = errorInfo(method, path, status, result->body);
      if (isUnavailableStatus(status)) {
        lastFailure = std::move(info);
        continue;
      }
      throwFor(std::move(info));
    }
    lastFailure.message +=
        ", gave up after " + std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s");
    throw ChromaUnavailableError(std::move(lastFailure));
  }

  static nlohmann::json parseBody(const std::string& text, const std::string& method,
                                  const std::string& path) {
    if (text.empty()) {
      return nullptr;
    }
    auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      throw unexpected(method, path, "response is not JSON: " + text.substr(0, 200));
    }
    return json;
  }

  /// Reads Chroma's error body {"error": TYPE, "message": TEXT}; falls back
  /// to the raw body when it is not that shape.
  static ChromaErrorInfo errorInfo(const std::string& method, const std::string& path, int status,
                                   const std::string& text) {
    ChromaErrorInfo info{method, path, status, "", ""};
    const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_object()) {
      if (auto it = json.find("error"); it != json.end() && it->is_string()) {
        info.errorType = it->get<std::string>();
      }
      if (auto it = json.find("message"); it != json.end() && it->is_string()) {
        info.message = it->get<std::string>();
      }
    }
    if (info.errorType.empty() && info.message.empty()) {
      info.message = text.substr(0, 200);
    }
    return info;
  }

  [[noreturn]] static void throwFor(ChromaErrorInfo info) {
    const int status = info.status;
    if (status == 404) {
      throw ChromaNotFoundError(std::move(info));
    }
    if (status == 409) {
      throw ChromaConflictError(std::move(info));
    }
    if (status >= 400 && status < 500) {
      throw ChromaBadRequestError(std::move(info));
    }
    if (status >= 500) {
      throw ChromaServerError(std::move(info));
    }
    // 1xx/3xx: not something this API answers.
    throw ChromaError(std::move(info));
  }

  static ChromaError unexpected(const std::string& method, const std::string& path,
                                std::string message) {
    return ChromaError(
        ChromaErrorInfo{method, path, 200, "UnexpectedResponse", std::move(message)});
  }

  template <typename T>
  static T readField(const nlohmann::json& body, const char* key, const std::string& method,
                     const std::string& path) {
    try {
      return body.at(key).get<T>();
    } catch (const nlohmann::json::exception& error) {
      throw unexpected(method, path,
                       std::string("missing or mistyped '") + key + "': " + error.what());
    }
  }

  static ChromaCollection toCollection(const nlohmann::json& body, const std::string& method,
                                       const std::string& path) {
    try {
      return ChromaCollection::fromJson(body);
    } catch (const nlohmann::json::exception& error) {
      throw unexpected(method, path, std::string("malformed collection: ") + error.what());
    }
  }

  /// Chroma answers column-wise ({"ids": [[...]], "distances": [[...]], ...},
  /// one inner list per query embedding, null for fields not included); this
  /// turns it into one ChromaQueryMatch per hit.
  static ChromaQueryResults toQueryResults(const nlohmann::json& body) {
    const auto& ids = body.at("ids");
    auto column = [&](const char* key) -> const nlohmann::json* {
      auto it = body.find(key);
      return it != body.end() && it->is_array() ? &*it : nullptr;
    };
    const auto* distances = column("distances");
    const auto* documents = column("documents");
    const auto* metadatas = column("metadatas");
    const auto* embeddings = column("embeddings");

    ChromaQueryResults results;
    results.reserve(ids.size());
    for (std::size_t q = 0; q < ids.size(); ++q) {
      std::vector<ChromaQueryMatch> matches;
      matches.reserve(ids[q].size());
      for (std::size_t i = 0; i < ids[q].size(); ++i) {
        ChromaQueryMatch match;
        match.id = ids[q][i].get<std::string>();
        if (distances && !(*distances)[q].is_null() && !(*distances)[q][i].is_null()) {
          match.distance = (*distances)[q][i].get<float>();
        }
        if (documents && !(*documents)[q].is_null() && !(*documents)[q][i].is_null()) {
          match.document = (*documents)[q][i].get<std::string>();
        }
        if (metadatas && !(*metadatas)[q].is_null()) {
          match.metadata = (*metadatas)[q][i];
        }
        if (embeddings && !(*embeddings)[q].is_null() && !(*embeddings)[q][i].is_null()) {
          match.embedding = (*embeddings)[q][i].get<Embedding>();
        }
        matches.push_back(std::move(match));
      }
      results.push_back(std::move(matches));
    }
    return results;
  }

  ChromaDbOptions options_;
  detail::ParsedUrl url_;
  std::string collectionsPath_;
};

}  // namespace jobtrack::examples::chroma
