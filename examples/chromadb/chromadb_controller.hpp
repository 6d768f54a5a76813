#pragma once

/// @file
/// ChromaDbController: the HTTP face of ChromaDbService for the HTTP example
/// service (examples/http_server). Each POST validates its input (400
/// problem+json on bad input, before Chroma is contacted), starts a job and
/// answers 202 Accepted with `Location: /api/jobs/{id}` and `Retry-After`;
/// the job is then polled through the service's /api/jobs routes.
///
///   POST   /api/chromadb/collections                   {"name", "metadata"?, "getOrCreate"?}
///   POST   /api/chromadb/collections/{name}/documents  {"documents": [{"id", "text", "metadata"?,
///   "embedding"?}]} POST   /api/chromadb/collections/{name}/query      {"text", "n"?,
///   "embedding"?} DELETE /api/chromadb/collections/{name}
///
/// Header-only so that the http_server's targets can use it by linking
/// jobtrack::examples::chromadb; needs the http_server's src/ on the include
/// path (controller.hpp, http_types.hpp, router.hpp).

#include "chroma_service.hpp"
#include "controller.hpp"
#include "http_types.hpp"
#include "router.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace jobtrack::examples::chroma {

namespace http = ::jobtrack::examples::http;

/// Body cap of POST .../documents: a batch of up to kMaxDocumentsPerJob
/// documents does not fit the service's usual 64 KiB. The transport's own
/// cap (ServerOptions::maxBodyBytes) must be at least this large too.
inline constexpr std::size_t kDocumentsBodyLimit = 4 * 1024 * 1024;

/// `n` of a query when the request does not say.
inline constexpr std::size_t kDefaultQueryResults = 3;

/// A parsed request member, or the 400 problem to answer instead.
template <class T>
struct ParsedOrProblem {
  std::optional<T> value;
  std::optional<http::Response> error;
};

namespace detail {

template <class T>
ParsedOrProblem<T> badRequest(std::string detail) {
  return {std::nullopt, http::problem(400, std::move(detail))};
}

/// A JSON array of numbers as an Embedding.
inline ParsedOrProblem<Embedding> parseEmbedding(const nlohmann::json& json,
                                                 const std::string& what) {
  if (!json.is_array()) {
    return badRequest<Embedding>("The field '" + what + "' must be an array of numbers, not " +
                                 json.type_name() + ".");
  }
  Embedding embedding;
  embedding.reserve(json.size());
  for (const auto& value : json) {
    if (!value.is_number()) {
      return badRequest<Embedding>("The field '" + what +
                                   "' must be an array of numbers; it holds " + value.type_name() +
                                   ".");
    }
    embedding.push_back(value.get<float>());
  }
  if (auto problem = embeddingProblem(embedding, what)) return badRequest<Embedding>(*problem);
  return {std::move(embedding), std::nullopt};
}

/// Member `key` of `object` as a string: required (and non-empty) or absent.
inline ParsedOrProblem<std::string> parseString(const nlohmann::json& object,
                                                const std::string& key, const std::string& what,
                                                bool required) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (!required) return {std::string(), std::nullopt};
    return badRequest<std::string>("The field '" + what + "' is required.");
  }
  if (!it->is_string()) {
    return badRequest<std::string>("The field '" + what + "' must be a string, not " +
                                   it->type_name() + ".");
  }
  if (required && it->get_ref<const std::string&>().empty()) {
    return badRequest<std::string>("The field '" + what + "' must not be empty.");
  }
  return {it->get<std::string>(), std::nullopt};
}

}  // namespace detail

/// Reads and checks the collection name in the path (`{name}`).
[[nodiscard]] inline ParsedOrProblem<std::string> parseCollectionPathName(
    const http::Request& request) {
  const auto it = request.pathParams.find("name");
  const std::string name = it == request.pathParams.end() ? std::string() : it->second;
  if (auto problem = collectionNameProblem(name)) return detail::badRequest<std::string>(*problem);
  return {name, std::nullopt};
}

/// The documents of an add request: "documents" must be an array of 1 to
/// kMaxDocumentsPerJob objects with a non-empty string "id" (unique), a
/// non-empty string "text", an optional flat "metadata" object and an
/// optional "embedding" (array of numbers, one dimension for all).
[[nodiscard]] inline ParsedOrProblem<std::vector<ChromaDocument>> parseDocuments(
    const nlohmann::json& body) {
  using Result = std::vector<ChromaDocument>;
  const auto it = body.find("documents");
  if (it == body.end() || it->is_null()) {
    return detail::badRequest<Result>(
        "The field 'documents' is required, e.g. {\"documents\": [{\"id\": \"d1\", \"text\": "
        "\"...\"}]}.");
  }
  if (!it->is_array()) {
    return detail::badRequest<Result>(std::string("The field 'documents' must be an array, not ") +
                                      it->type_name() + ".");
  }
  if (it->empty() || it->size() > kMaxDocumentsPerJob) {
    return detail::badRequest<Result>("The field 'documents' must hold 1 to " +
                                      std::to_string(kMaxDocumentsPerJob) + " documents; it has " +
                                      std::to_string(it->size()) + ".");
  }
  Result documents;
  documents.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& item = (*it)[i];
    const std::string where = "documents[" + std::to_string(i) + "]";
    if (!item.is_object()) {
      return detail::badRequest<Result>("The field '" + where + "' must be an object, not " +
                                        item.type_name() + ".");
    }
    ChromaDocument document;
    auto id = detail::parseString(item, "id", where + ".id", true);
    if (id.error) return {std::nullopt, std::move(id.error)};
    auto text = detail::parseString(item, "text", where + ".text", true);
    if (text.error) return {std::nullopt, std::move(text.error)};
    document.id = std::move(*id.value);
    document.text = std::move(*text.value);
    if (auto metadata = item.find("metadata"); metadata != item.end())
      document.metadata = *metadata;
    if (auto embedding = item.find("embedding"); embedding != item.end() && !embedding->is_null()) {
      auto parsed = detail::parseEmbedding(*embedding, where + ".embedding");
      if (parsed.error) return {std::nullopt, std::move(parsed.error)};
      document.embedding = std::move(parsed.value);
    }
    documents.push_back(std::move(document));
  }
  // Ids unique, metadata shape, one embedding dimension.
  if (auto problem = documentsProblem(documents)) return detail::badRequest<Result>(*problem);
  return {std::move(documents), std::nullopt};
}

/// The `n` of a query: absent gives kDefaultQueryResults; otherwise an
/// integer from 1 to kMaxQueryResults.
[[nodiscard]] inline ParsedOrProblem<std::size_t> parseResultCount(const nlohmann::json& body) {
  const auto it = body.find("n");
  if (it == body.end() || it->is_null()) return {kDefaultQueryResults, std::nullopt};
  const std::string expected = "The field 'n' must be an integer from 1 to " +
                               std::to_string(kMaxQueryResults) + ", not " + it->dump() + ".";
  // Parsed JSON holds non-negative integers as unsigned, negative ones as signed.
  if (it->is_number_unsigned()) {
    const auto n = it->get<std::uint64_t>();
    if (n >= 1 && n <= kMaxQueryResults) return {static_cast<std::size_t>(n), std::nullopt};
  } else if (it->is_number_integer()) {
    const auto n = it->get<std::int64_t>();
    if (n >= 1 && n <= static_cast<std::int64_t>(kMaxQueryResults)) {
      return {static_cast<std::size_t>(n), std::nullopt};
    }
  }
  return detail::badRequest<std::size_t>(expected);
}

/// The 202 answer for a freshly started job: {"jobId", "status"}, with
/// `Location: /api/jobs/{id}` and `Retry-After: 1`.
[[nodiscard]] inline http::Response acceptedJob(const JobId& id) {
  const std::string jobId = to_string(id);
  http::Response response = http::jsonResponse(
      202, {{"jobId", jobId}, {"status", std::string(toString(JobStatus::Pending))}});
  response.setHeader("Location", "/api/jobs/" + jobId);
  response.setHeader("Retry-After", "1");
  return response;
}

/// The ChromaDB routes. Handlers are const on the controller and safe to
/// call from any number of connection threads at once.
class ChromaDbController final : public http::Controller {
 public:
  /// `limits` caps the create and query bodies (the service's usual 64 KiB);
  /// the documents route accepts up to `documentsBodyBytes`.
  explicit ChromaDbController(std::shared_ptr<ChromaDbService> service,
                              http::BodyLimits limits = {},
                              std::size_t documentsBodyBytes = kDocumentsBodyLimit)
      : service_(std::move(service)), limits_(limits), documentsLimits_{documentsBodyBytes} {
    if (!service_) throw std::invalid_argument("ChromaDbController: service must not be null");
  }

  /// Adds the four routes (see the file comment).
  void registerRoutes(http::Router& router) override {
    router.add("POST", "/api/chromadb/collections",
               [this](const http::Request& r) { return postCollection(r); });
    router.add("POST", "/api/chromadb/collections/{name}/documents",
               [this](const http::Request& r) { return postDocuments(r); });
    router.add("POST", "/api/chromadb/collections/{name}/query",
               [this](const http::Request& r) { return postQuery(r); });
    router.add("DELETE", "/api/chromadb/collections/{name}",
               [this](const http::Request& r) { return deleteCollection(r); });
  }

  /// POST /api/chromadb/collections {"name", "metadata"?, "getOrCreate"?}.
  [[nodiscard]] http::Response postCollection(const http::Request& request) const {
    auto body = http::readJsonBody(request, limits_);
    if (body.error) return std::move(*body.error);
    auto name = detail::parseString(*body.value, "name", "name", true);
    if (name.error) return std::move(*name.error);
    if (auto problem = collectionNameProblem(*name.value)) return http::problem(400, *problem);
    nlohmann::json metadata = body.value->value("metadata", nlohmann::json());
    if (auto problem = metadataProblem(metadata, "metadata")) return http::problem(400, *problem);
    bool getOrCreate = false;
    if (auto it = body.value->find("getOrCreate"); it != body.value->end() && !it->is_null()) {
      if (!it->is_boolean()) {
        return http::problem(400, std::string("The field 'getOrCreate' must be a boolean, not ") +
                                      it->type_name() + ".");
      }
      getOrCreate = it->get<bool>();
    }
    return start(
        [&] { return service_->startCreateCollectionJob(*name.value, metadata, getOrCreate); });
  }

  /// POST /api/chromadb/collections/{name}/documents {"documents": [...]}.
  [[nodiscard]] http::Response postDocuments(const http::Request& request) const {
    auto name = parseCollectionPathName(request);
    if (name.error) return std::move(*name.error);
    auto body = http::readJsonBody(request, documentsLimits_);
    if (body.error) return std::move(*body.error);
    auto documents = parseDocuments(*body.value);
    if (documents.error) return std::move(*documents.error);
    return start(
        [&] { return service_->startAddDocumentsJob(*name.value, std::move(*documents.value)); });
  }

  /// POST /api/chromadb/collections/{name}/query {"text", "n"?, "embedding"?}.
  [[nodiscard]] http::Response postQuery(const http::Request& request) const {
    auto name = parseCollectionPathName(request);
    if (name.error) return std::move(*name.error);
    auto body = http::readJsonBody(request, limits_);
    if (body.error) return std::move(*body.error);
    std::optional<Embedding> embedding;
    if (auto it = body.value->find("embedding"); it != body.value->end() && !it->is_null()) {
      auto parsed = detail::parseEmbedding(*it, "embedding");
      if (parsed.error) return std::move(*parsed.error);
      embedding = std::move(parsed.value);
    }
    // The text is what gets embedded, so it may be left out only when an embedding is given.
    auto text = detail::parseString(*body.value, "text", "text", !embedding);
    if (text.error) return std::move(*text.error);
    auto n = parseResultCount(*body.value);
    if (n.error) return std::move(*n.error);
    return start([&] {
      return service_->startQueryJob(*name.value, *text.value, *n.value, std::move(embedding));
    });
  }

  /// DELETE /api/chromadb/collections/{name}: a job deleting the collection.
  [[nodiscard]] http::Response deleteCollection(const http::Request& request) const {
    auto name = parseCollectionPathName(request);
    if (name.error) return std::move(*name.error);
    return start([&] { return service_->startDeleteCollectionJob(*name.value); });
  }

 private:
  /// 202 for the job `submit` starts; 400 if the service still refuses the
  /// input (it validates again).
  template <class Submit>
  static http::Response start(Submit&& submit) {
    try {
      return acceptedJob(submit());
    } catch (const std::invalid_argument& e) {
      return http::problem(400, e.what());
    }
  }

  std::shared_ptr<ChromaDbService> service_;
  http::BodyLimits limits_;
  http::BodyLimits documentsLimits_;
};

}  // namespace jobtrack::examples::chroma
