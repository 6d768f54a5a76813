#pragma once

/// @file
/// JobSnapshot<Result>: a copy of one job's state at one moment, and its JSON.

#include "jobtrack/detail/iso_time.hpp"
#include "jobtrack/job_id.hpp"
#include "jobtrack/job_status.hpp"
#include "jobtrack/json.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace jobtrack {

/// One job as it was when the snapshot was taken. A plain value: copying or
/// keeping it never touches the tracker.
template <class Result>
struct JobSnapshot {
  using Clock = std::chrono::system_clock;

  JobId id;
  std::string name;
  JobStatus status = JobStatus::Pending;
  int progress = 0;                  ///< 0-100; 100 once completed
  std::string message;               ///< the last progress message
  std::optional<Result> result;      ///< set when Completed
  std::optional<std::string> error;  ///< set when Failed or Cancelled
  ErrorKind errorKind = ErrorKind::None;
  Clock::time_point createdAt{};
  std::optional<Clock::time_point> startedAt;    ///< when the work first ran
  std::optional<Clock::time_point> completedAt;  ///< when it reached a terminal state

  friend bool operator==(const JobSnapshot&, const JobSnapshot&) = default;
};

namespace detail {

inline nlohmann::json optionalTime(
    const std::optional<std::chrono::system_clock::time_point>& time) {
  return time ? nlohmann::json(formatIsoTime(*time)) : nlohmann::json(nullptr);
}

inline std::optional<std::chrono::system_clock::time_point> readOptionalTime(
    const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  const auto time = parseIsoTime(it->get<std::string>());
  if (!time) throw invalidJsonValue(key, it->get<std::string>());
  return time;
}

}  // namespace detail

/// Writes `{"jobId","name","status","progress","message","result","error",
/// "errorKind","createdAt","startedAt","completedAt"}`; times are ISO-8601
/// UTC with milliseconds, absent values are null.
template <class Result>
void to_json(nlohmann::json& j, const JobSnapshot<Result>& s) {
  j = nlohmann::json{
      {"jobId", s.id},
      {"name", s.name},
      {"status", s.status},
      {"progress", s.progress},
      {"message", s.message},
      {"result", s.result ? nlohmann::json(*s.result) : nlohmann::json(nullptr)},
      {"error", s.error ? nlohmann::json(*s.error) : nlohmann::json(nullptr)},
      {"errorKind",
       s.errorKind == ErrorKind::None ? nlohmann::json(nullptr) : nlohmann::json(s.errorKind)},
      {"createdAt", detail::formatIsoTime(s.createdAt)},
      {"startedAt", detail::optionalTime(s.startedAt)},
      {"completedAt", detail::optionalTime(s.completedAt)},
  };
}

/// Reads what to_json writes. "jobId", "status" and "createdAt" are
/// required; the rest may be missing or null. Throws
/// nlohmann::json::exception for wrong JSON types and std::invalid_argument
/// for malformed ids, statuses, kinds, times or a progress that is not an
/// integer within 0-100.
template <class Result>
void from_json(const nlohmann::json& j, JobSnapshot<Result>& s) {
  if (!j.is_object()) throw std::invalid_argument("jobtrack: a job snapshot must be a JSON object");
  JobSnapshot<Result> read;
  read.id = j.at("jobId").get<JobId>();
  read.status = j.at("status").get<JobStatus>();
  if (auto it = j.find("name"); it != j.end() && !it->is_null()) read.name = it->get<std::string>();
  if (auto it = j.find("progress"); it != j.end() && !it->is_null()) {
    // An integer 0-100 only: get<int>() would accept 50.5 or true, wrap a
    // large unsigned value, and convert an out-of-range float undefinedly.
    const bool inRange = (it->is_number_unsigned() && it->get<std::uint64_t>() <= 100) ||
                         (it->is_number_integer() && !it->is_number_unsigned() &&
                          it->get<std::int64_t>() >= 0 && it->get<std::int64_t>() <= 100);
    if (!inRange) throw std::invalid_argument("jobtrack: progress must be an integer within 0-100");
    read.progress = it->get<int>();
  }
  if (auto it = j.find("message"); it != j.end() && !it->is_null())
    read.message = it->get<std::string>();
  if (auto it = j.find("result"); it != j.end() && !it->is_null()) read.result = it->get<Result>();
  if (auto it = j.find("error"); it != j.end() && !it->is_null())
    read.error = it->get<std::string>();
  if (auto it = j.find("errorKind"); it != j.end() && !it->is_null())
    read.errorKind = it->get<ErrorKind>();
  const auto created = detail::parseIsoTime(j.at("createdAt").get<std::string>());
  if (!created) throw detail::invalidJsonValue("createdAt", j.at("createdAt").get<std::string>());
  read.createdAt = *created;
  read.startedAt = detail::readOptionalTime(j, "startedAt");
  read.completedAt = detail::readOptionalTime(j, "completedAt");
  s = std::move(read);
}

}  // namespace jobtrack
