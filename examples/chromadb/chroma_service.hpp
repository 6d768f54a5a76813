#pragma once

/// @file
/// ChromaDbService: ChromaDB work (create a collection, add documents in
/// batches, query by text) as tracked jobs. Each start* call returns a JobId
/// at once; the blocking Chroma calls run on the AsyncExecutor's blocking
/// pool and the outcome lands in the JobTracker<nlohmann::json>.

#include "chroma_client.hpp"
#include "embedding.hpp"
#include <jobtrack/jobtrack.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace jobtrack::examples::chroma {

/// Most documents one add job accepts.
inline constexpr std::size_t kMaxDocumentsPerJob = 10'000;
/// Most matches one query job returns.
inline constexpr std::size_t kMaxQueryResults = 100;
/// Longest embedding a request may carry.
inline constexpr std::size_t kMaxEmbeddingDimension = 65'536;

/// One document to add. Without an embedding, the service's
/// EmbeddingFunction computes one from `text`.
struct ChromaDocument {
  std::string id;                      ///< non-empty, unique within one add job
  std::string text;                    ///< stored as Chroma's "document"
  nlohmann::json metadata;             ///< null, or a flat object of string/number/boolean values
  std::optional<Embedding> embedding;  ///< the caller's own vector, if any
};

/// Settings of a ChromaDbService. A plain value type.
struct ChromaServiceOptions {
  /// How to reach Chroma (URL, tenant, database, timeouts, bounded retries).
  ChromaDbOptions client{};
  /// Records per add request; at most the server's max_batch_size (5461 on Chroma 1.0).
  std::size_t batchSize = 100;
  /// Turns text into vectors; null means HashingEmbeddingFunction().
  std::shared_ptr<const EmbeddingFunction> embedding;
};

/// Why a Chroma job failed; the tracker records ChromaJobError::what().
enum class ChromaFailure {
  Unavailable,
  Conflict,
  NotFound,
  BadRequest,
  ServerError,
  UnexpectedResponse
};

/// The failure of a Chroma job: Chroma's own message, prefixed with what it
/// means ("Chroma is unavailable: ...", "Conflict: ...", "Not found: ...").
class ChromaJobError : public std::runtime_error {
 public:
  ChromaJobError(ChromaFailure failure, const std::string& message)
      : std::runtime_error(message), failure_(failure) {}

  /// The kind of failure.
  [[nodiscard]] ChromaFailure failure() const noexcept { return failure_; }

 private:
  ChromaFailure failure_;
};

// ---- validation, shared by the service (std::invalid_argument) and the
// HTTP controller (400 problem responses). Each returns a sentence saying
// what is wrong, or nullopt when the value is fine. ----

namespace detail {

/// At most 64 characters of untrusted text, for messages.
inline std::string quoted(std::string_view text) {
  constexpr std::size_t maxQuoted = 64;
  std::string result = "'" + std::string(text.substr(0, maxQuoted)) + "'";
  if (text.size() > maxQuoted) result += "...";
  return result;
}

inline bool isAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/// Dotted-quad IPv4 addresses, which Chroma refuses as names.
inline bool looksLikeIpv4(std::string_view name) {
  int parts = 0;
  while (true) {
    const auto dot = name.find('.');
    const std::string_view part = name.substr(0, dot);
    if (part.empty() || part.size() > 3 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(std::string(part)) > 255) {
      return false;
    }
    ++parts;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return parts == 4;
}

}  // namespace detail

/// Chroma's rules for a collection name: 3-512 characters from
/// [a-zA-Z0-9._-], starting and ending with a letter or digit, no "..", not
/// an IPv4 address. Never throws except std::bad_alloc.
[[nodiscard]] inline std::optional<std::string> collectionNameProblem(std::string_view name) {
  if (name.size() < 3 || name.size() > 512) {
    return "The collection name must be 3-512 characters long; " + detail::quoted(name) + " has " +
           std::to_string(name.size()) + ".";
  }
  for (const char c : name) {
    if (!detail::isAsciiAlnum(c) && c != '.' && c != '_' && c != '-') {
      return "The collection name may contain only letters, digits, '.', '_' and '-'; " +
             detail::quoted(name) + " does not.";
    }
  }
  if (!detail::isAsciiAlnum(name.front()) || !detail::isAsciiAlnum(name.back())) {
    return "The collection name must start and end with a letter or digit; " +
           detail::quoted(name) + " does not.";
  }
  if (name.find("..") != std::string_view::npos) {
    return "The collection name must not contain two consecutive periods (..).";
  }
  if (detail::looksLikeIpv4(name)) {
    return "The collection name must not be an IPv4 address.";
  }
  return std::nullopt;
}

/// Chroma's rule for metadata: null (none), or an object whose values are
/// strings, numbers or booleans (no null, arrays or objects). `what` names
/// the value in the message, e.g. "metadata" or "documents[3].metadata".
[[nodiscard]] inline std::optional<std::string> metadataProblem(const nlohmann::json& metadata,
                                                                const std::string& what) {
  if (metadata.is_null()) return std::nullopt;
  if (!metadata.is_object()) {
    return "The field '" + what + "' must be an object, not " + metadata.type_name() + ".";
  }
  for (const auto& [key, value] : metadata.items()) {
    if (!value.is_string() && !value.is_number() && !value.is_boolean()) {
      return "The field '" + what + "' may hold only strings, numbers and booleans; " +
             detail::quoted(key) + " is " + value.type_name() + ".";
    }
  }
  return std::nullopt;
}

/// An embedding must have 1 to kMaxEmbeddingDimension finite entries.
[[nodiscard]] inline std::optional<std::string> embeddingProblem(const Embedding& embedding,
                                                                 const std::string& what) {
  if (embedding.empty() || embedding.size() > kMaxEmbeddingDimension) {
    return "The field '" + what + "' must have 1 to " + std::to_string(kMaxEmbeddingDimension) +
           " numbers; it has " + std::to_string(embedding.size()) + ".";
  }
  if (!std::all_of(embedding.begin(), embedding.end(), [](float x) { return std::isfinite(x); })) {
    return "The field '" + what + "' must hold finite numbers.";
  }
  return std::nullopt;
}

/// Checks a whole add request: 1 to kMaxDocumentsPerJob documents, each with
/// a non-empty unique id, metadata as metadataProblem accepts, embeddings
/// (where given) valid and all of one dimension.
[[nodiscard]] inline std::optional<std::string> documentsProblem(
    const std::vector<ChromaDocument>& documents) {
  if (documents.empty() || documents.size() > kMaxDocumentsPerJob) {
    return "The field 'documents' must hold 1 to " + std::to_string(kMaxDocumentsPerJob) +
           " documents; it has " + std::to_string(documents.size()) + ".";
  }
  std::unordered_set<std::string_view> ids;
  std::optional<std::size_t> dimension;
  for (std::size_t i = 0; i < documents.size(); ++i) {
    const auto& document = documents[i];
    const std::string where = "documents[" + std::to_string(i) + "]";
    if (document.id.empty()) return "The field '" + where + ".id' must not be empty.";
    if (!ids.insert(document.id).second) {
      return "The id " + detail::quoted(document.id) + " appears more than once in 'documents'.";
    }
    if (auto problem = metadataProblem(document.metadata, where + ".metadata")) return problem;
    if (document.embedding) {
      if (auto problem = embeddingProblem(*document.embedding, where + ".embedding"))
        return problem;
      if (dimension && *dimension != document.embedding->size()) {
        return "The field '" + where + ".embedding' has " +
               std::to_string(document.embedding->size()) + " numbers, the earlier ones " +
               std::to_string(*dimension) + "; all embeddings of one request must match.";
      }
      dimension = document.embedding->size();
    }
  }
  return std::nullopt;
}

/// The number of matches a query asks for must be 1 to kMaxQueryResults.
[[nodiscard]] inline std::optional<std::string> resultCountProblem(std::size_t n) {
  if (n < 1 || n > kMaxQueryResults) {
    return "The field 'n' must be an integer from 1 to " + std::to_string(kMaxQueryResults) + ".";
  }
  return std::nullopt;
}

/// Starts ChromaDB work as tracked jobs.
///
/// Each start* call validates its arguments (std::invalid_argument, before
/// any job exists), submits a job named "chroma:<action>:<collection>" and
/// returns its id at once. The Chroma calls are blocking HTTP requests and
/// run on the executor's blocking pool. A job whose Chroma call fails ends
/// FAILED with a ChromaJobError message (Chroma's own text, prefixed with its
/// meaning); a Chroma that cannot be reached fails the job after the client's
/// bounded retries (ChromaDbOptions::maxRetries) with "Chroma is unavailable".
///
/// Thread safety: every member function may be called from any thread. The
/// jobs own what they use (client, embedding function, documents), so the
/// service may be destroyed while its jobs still run; the executor and the
/// tracker must outlive the calls that start jobs.
class ChromaDbService {
 public:
  using Tracker = JobTracker<nlohmann::json>;

  /// Builds the client from `options.client` (throws std::invalid_argument
  /// for a malformed URL or batch size 0; does not contact Chroma).
  ChromaDbService(AsyncExecutor& executor, Tracker& tracker, ChromaServiceOptions options = {})
      : executor_(executor),
        tracker_(tracker),
        client_(std::make_shared<const ChromaDbClient>(options.client)),
        embedding_(options.embedding ? std::move(options.embedding)
                                     : std::make_shared<const HashingEmbeddingFunction>()),
        batchSize_(options.batchSize) {
    if (batchSize_ == 0) throw std::invalid_argument("ChromaDbService: batchSize must be positive");
  }

  /// The client the jobs use.
  [[nodiscard]] const ChromaDbClient& client() const noexcept { return *client_; }
  /// The embedding function the jobs use.
  [[nodiscard]] const EmbeddingFunction& embeddingFunction() const noexcept { return *embedding_; }

  /// Creates collection `name` (with `metadata`: null or a flat object; an
  /// empty object counts as none). With `getOrCreate`, an existing collection
  /// of that name is the result instead (its metadata unchanged); without,
  /// the job fails with "Conflict: ... already exists". Result: the
  /// collection as Chroma returns it ({"id", "name", "metadata",
  /// "dimension", "tenant", "database", "configuration_json"}). Throws
  /// std::invalid_argument for an invalid name or metadata.
  JobId startCreateCollectionJob(const std::string& name, nlohmann::json metadata = nullptr,
                                 bool getOrCreate = false) {
    throwIf(collectionNameProblem(name));
    throwIf(metadataProblem(metadata, "metadata"));
    if (metadata.is_object() && metadata.empty()) metadata = nullptr;  // Chroma refuses {}
    return tracker_.submit("chroma:create:" + name, [&executor = executor_, client = client_, name,
                                                     metadata = std::move(metadata),
                                                     getOrCreate](JobContext) {
      return executor.executeAsync([client, name, metadata, getOrCreate]() {
        return translateErrors(
            name, [&] { return toJson(client->createCollection(name, metadata, getOrCreate)); });
      });
    });
  }

  /// Adds `documents` to collection `collection` in batches of batchSize,
  /// computing missing embeddings with the EmbeddingFunction. Reports
  /// progress after each batch ("batch i/n", reaching 100) and stops between
  /// batches when cancelled (batches already sent stay added). Ids that
  /// already exist are left unchanged by Chroma. Result: {"added": N,
  /// "collection": name}. Throws std::invalid_argument for an invalid name
  /// or documents (see documentsProblem).
  JobId startAddDocumentsJob(const std::string& collection, std::vector<ChromaDocument> documents) {
    throwIf(collectionNameProblem(collection));
    throwIf(documentsProblem(documents));
    auto shared = std::make_shared<const std::vector<ChromaDocument>>(std::move(documents));
    return tracker_.submit("chroma:add:" + collection, [&executor = executor_, client = client_,
                                                        embedding = embedding_, collection, shared,
                                                        batchSize = batchSize_](JobContext ctx) {
      return executor.executeAsync(
          [client, embedding, collection, shared, batchSize, ctx](std::stop_token stop) {
            return translateErrors(collection, [&] {
              return addInBatches(*client, *embedding, collection, *shared, batchSize, ctx, stop);
            });
          });
    });
  }

  /// Finds the `n` documents of `collection` nearest to `text` (embedded
  /// with the EmbeddingFunction), or to `embedding` when given. Result:
  /// {"collection": name, "matches": [{"id", "text", "distance",
  /// "metadata"}]}, nearest first (distance: Chroma's, squared L2 by
  /// default). Throws std::invalid_argument for an invalid name, n outside
  /// 1..kMaxQueryResults, or an invalid embedding.
  JobId startQueryJob(const std::string& collection, const std::string& text, std::size_t n,
                      std::optional<Embedding> embedding = std::nullopt) {
    throwIf(collectionNameProblem(collection));
    throwIf(resultCountProblem(n));
    if (embedding) throwIf(embeddingProblem(*embedding, "embedding"));
    return tracker_.submit(
        "chroma:query:" + collection,
        [&executor = executor_, client = client_, embedder = embedding_, collection, text, n,
         embedding = std::move(embedding)](JobContext) {
          return executor.executeAsync([client, embedder, collection, text, n, embedding]() {
            return translateErrors(collection, [&] {
              const auto id = client->getCollection(collection).id;
              const Embedding vector = embedding ? *embedding : embedder->embed(text);
              return toJson(collection, client->query(id, {vector}, n));
            });
          });
        });
  }

  /// Counts the records of `collection`. Result: {"collection": name,
  /// "count": N}. Throws std::invalid_argument for an invalid name.
  JobId startCountJob(const std::string& collection) {
    throwIf(collectionNameProblem(collection));
    return tracker_.submit("chroma:count:" + collection, [&executor = executor_, client = client_,
                                                          collection](JobContext) {
      return executor.executeAsync([client, collection]() {
        return translateErrors(collection, [&] {
          const auto id = client->getCollection(collection).id;
          return nlohmann::json{{"collection", collection}, {"count", client->count(id)}};
        });
      });
    });
  }

  /// Deletes `collection` and its records. Result: {"deleted": name}.
  /// Throws std::invalid_argument for an invalid name.
  JobId startDeleteCollectionJob(const std::string& collection) {
    throwIf(collectionNameProblem(collection));
    return tracker_.submit("chroma:delete:" + collection,
                           [&executor = executor_, client = client_, collection](JobContext) {
                             return executor.executeAsync([client, collection]() {
                               return translateErrors(collection, [&] {
                                 client->deleteCollection(collection);
                                 return nlohmann::json{{"deleted", collection}};
                               });
                             });
                           });
  }

 private:
  static void throwIf(const std::optional<std::string>& problem) {
    if (problem) throw std::invalid_argument(*problem);
  }

  /// Runs `work`, turning the client's errors into ChromaJobErrors whose
  /// message says what happened; other exceptions pass unchanged.
  template <class Work>
  static nlohmann::json translateErrors(const std::string& collection, Work&& work) {
    try {
      return work();
    } catch (const ChromaUnavailableError& e) {
      throw ChromaJobError(ChromaFailure::Unavailable,
                           std::string("Chroma is unavailable: ") + e.what());
    } catch (const ChromaConflictError& e) {
      throw ChromaJobError(ChromaFailure::Conflict, "Conflict: a collection named '" + collection +
                                                        "' already exists (" + e.what() + ")");
    } catch (const ChromaNotFoundError& e) {
      throw ChromaJobError(ChromaFailure::NotFound, "Not found: there is no collection named '" +
                                                        collection + "' (" + e.what() + ")");
    } catch (const ChromaBadRequestError& e) {
      throw ChromaJobError(
          ChromaFailure::BadRequest,
          std::string("Bad request: Chroma rejected the request (") + e.what() + ")");
    } catch (const ChromaServerError& e) {
      throw ChromaJobError(ChromaFailure::ServerError,
                           std::string("Chroma server error: ") + e.what());
    } catch (const ChromaError& e) {
      throw ChromaJobError(ChromaFailure::UnexpectedResponse,
                           std::string("Unexpected answer from Chroma: ") + e.what());
    }
  }

  static nlohmann::json addInBatches(const ChromaDbClient& client,
                                     const EmbeddingFunction& embedder,
                                     const std::string& collection,
                                     const std::vector<ChromaDocument>& documents,
                                     std::size_t batchSize, const JobContext& ctx,
                                     const std::stop_token& stop) {
    auto stopRequested = [&] { return stop.stop_requested() || ctx.stopRequested(); };
    const std::size_t batches = (documents.size() + batchSize - 1) / batchSize;
    ctx.reportProgress(0, "batch 0/" + std::to_string(batches));
    const std::string collectionId = client.getCollection(collection).id;
    const bool anyMetadata = std::any_of(documents.begin(), documents.end(),
                                         [](const auto& d) { return !d.metadata.is_null(); });
    for (std::size_t batch = 0; batch < batches; ++batch) {
      if (stopRequested()) throw CancelledError();
      const std::size_t begin = batch * batchSize;
      const std::size_t end = std::min(begin + batchSize, documents.size());
      std::vector<std::string> ids;
      std::vector<std::string> texts;
      std::vector<nlohmann::json> metadatas;
      std::vector<Embedding> embeddings;
      for (std::size_t i = begin; i < end; ++i) {
        const auto& document = documents[i];
        ids.push_back(document.id);
        texts.push_back(document.text);
        // An empty object means none: Chroma stores it as null anyway.
        const bool none = document.metadata.is_null() || document.metadata.empty();
        if (anyMetadata) metadatas.push_back(none ? nlohmann::json() : document.metadata);
        embeddings.push_back(document.embedding ? *document.embedding
                                                : embedder.embed(document.text));
      }
      // Embedding may take a while: look again before sending.
      if (stopRequested()) throw CancelledError();
      client.add(collectionId, ids, embeddings, texts, metadatas);
      const auto done = batch + 1;
      ctx.reportProgress(static_cast<int>(done * 100 / batches),
                         "batch " + std::to_string(done) + "/" + std::to_string(batches));
    }
    return {{"added", documents.size()}, {"collection", collection}};
  }

  static nlohmann::json toJson(const ChromaCollection& collection) {
    return {{"id", collection.id},
            {"name", collection.name},
            {"metadata", collection.metadata},
            {"dimension",
             collection.dimension ? nlohmann::json(*collection.dimension) : nlohmann::json()},
            {"tenant", collection.tenant},
            {"database", collection.database},
            {"configuration_json", collection.configuration}};
  }

  static nlohmann::json toJson(const std::string& collection, const ChromaQueryResults& results) {
    nlohmann::json matches = nlohmann::json::array();
    if (!results.empty()) {
      for (const auto& match : results.front()) {
        matches.push_back(
            {{"id", match.id},
             {"text", match.document ? nlohmann::json(*match.document) : nlohmann::json()},
             {"distance", match.distance ? nlohmann::json(*match.distance) : nlohmann::json()},
             {"metadata", match.metadata}});
      }
    }
    return {{"collection", collection}, {"matches", std::move(matches)}};
  }

  AsyncExecutor& executor_;
  Tracker& tracker_;
  std::shared_ptr<const ChromaDbClient> client_;
  std::shared_ptr<const EmbeddingFunction> embedding_;
  std::size_t batchSize_;
};

}  // namespace jobtrack::examples::chroma
