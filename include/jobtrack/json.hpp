#pragma once

/// @file
/// nlohmann::json adapters for jobtrack's value types, kept apart so that
/// job_id.hpp and job_status.hpp do not pull in nlohmann/json. Found by ADL:
/// `json j = id;`, `j.get<JobId>()`, `j.get<JobStatus>()` just work.
///
/// Text forms: JobId -> its canonical lower-case string, JobStatus ->
/// "PENDING"..., ErrorKind -> "none"... Reading accepts what the parse
/// functions accept (upper-case ids, any-case names).
///
/// Errors, the same for the three types when reading:
/// - a JSON value that is not a string: nlohmann::json::type_error (302, "type
///   must be string"), as nlohmann's own from_json functions throw;
/// - a string that is not a valid id/name: std::invalid_argument, whose
///   message names the type and quotes the (first 64 chars of the) value.

#include "jobtrack/job_id.hpp"
#include "jobtrack/job_status.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace jobtrack {

namespace detail {

/// The std::invalid_argument thrown for a string `text` that is not a valid
/// `what`. Quotes at most 64 characters of untrusted input. Never throws
/// except std::bad_alloc.
[[nodiscard]] inline std::invalid_argument invalidJsonValue(std::string_view what,
                                                            std::string_view text) {
  constexpr std::size_t maxQuoted = 64;
  std::string message = "jobtrack: invalid ";
  message += what;
  message += " in JSON: \"";
  message += text.substr(0, maxQuoted);
  message += text.size() > maxQuoted ? "\"..." : "\"";
  return std::invalid_argument(message);
}

}  // namespace detail

/// Writes the id as its canonical string. Throws std::bad_alloc only.
inline void to_json(nlohmann::json& j, const JobId& id) { j = to_string(id); }

/// Reads an id from a string (JobId::parse rules). Throws
/// nlohmann::json::type_error if `j` is not a string, std::invalid_argument
/// if it is not a well-formed id. On throw, `id` is unchanged.
inline void from_json(const nlohmann::json& j, JobId& id) {
  const std::string text = j.get<std::string>();
  const std::optional<JobId> parsed = JobId::parse(text);
  if (!parsed) {
    throw detail::invalidJsonValue("job id", text);
  }
  id = *parsed;
}

/// Writes the status as "PENDING", "RUNNING", ... Throws std::bad_alloc only.
inline void to_json(nlohmann::json& j, JobStatus status) { j = std::string(toString(status)); }

/// Reads a status (parseJobStatus rules: the five names, any case). Throws
/// nlohmann::json::type_error if `j` is not a string, std::invalid_argument
/// for an unknown name. On throw, `status` is unchanged.
inline void from_json(const nlohmann::json& j, JobStatus& status) {
  const std::string text = j.get<std::string>();
  const std::optional<JobStatus> parsed = parseJobStatus(text);
  if (!parsed) {
    throw detail::invalidJsonValue("job status", text);
  }
  status = *parsed;
}

/// Writes the error kind as "none", "exception", ... Throws std::bad_alloc only.
inline void to_json(nlohmann::json& j, ErrorKind kind) { j = std::string(toString(kind)); }

/// Reads an error kind (parseErrorKind rules: the five names, any case).
/// Throws nlohmann::json::type_error if `j` is not a string,
/// std::invalid_argument for an unknown name. On throw, `kind` is unchanged.
inline void from_json(const nlohmann::json& j, ErrorKind& kind) {
  const std::string text = j.get<std::string>();
  const std::optional<ErrorKind> parsed = parseErrorKind(text);
  if (!parsed) {
    throw detail::invalidJsonValue("error kind", text);
  }
  kind = *parsed;
}

}  // namespace jobtrack
