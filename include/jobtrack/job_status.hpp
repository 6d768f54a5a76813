#pragma once

/// @file
/// JobStatus (where a job is in its life) and ErrorKind (why it did not
/// complete), with their text forms. No JSON here: see jobtrack/json.hpp.

#include <cstddef>
#include <optional>
#include <string_view>

namespace jobtrack {

/// Where a job is in its life: Pending -> Running -> one of the terminal
/// states Completed, Failed, Cancelled (a pending job may also be cancelled).
enum class JobStatus { Pending, Running, Completed, Failed, Cancelled };

/// Why a job did not complete; None while it has not failed.
enum class ErrorKind { None, Exception, Timeout, Cancelled, Lost };

/// The text form of a status: "PENDING", "RUNNING", "COMPLETED", "FAILED",
/// "CANCELLED"; "UNKNOWN" for a value outside the enumeration (which no parse
/// function accepts back). Never throws.
[[nodiscard]] constexpr std::string_view toString(JobStatus status) noexcept {
  switch (status) {
    case JobStatus::Pending:
      return "PENDING";
    case JobStatus::Running:
      return "RUNNING";
    case JobStatus::Completed:
      return "COMPLETED";
    case JobStatus::Failed:
      return "FAILED";
    case JobStatus::Cancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

/// The text form of an error kind: "none", "exception", "timeout",
/// "cancelled", "lost"; "unknown" for a value outside the enumeration (which
/// no parse function accepts back). Never throws.
[[nodiscard]] constexpr std::string_view toString(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::None:
      return "none";
    case ErrorKind::Exception:
      return "exception";
    case ErrorKind::Timeout:
      return "timeout";
    case ErrorKind::Cancelled:
      return "cancelled";
    case ErrorKind::Lost:
      return "lost";
  }
  return "unknown";
}

/// True for the states a job never leaves: Completed, Failed, Cancelled.
/// Never throws.
[[nodiscard]] constexpr bool isTerminal(JobStatus status) noexcept {
  return status == JobStatus::Completed || status == JobStatus::Failed ||
         status == JobStatus::Cancelled;
}

/// How far along its life a job in `status` is: 0 pending, 1 running, 2
/// finished (any terminal state). A job's stage never decreases, so this
/// orders two snapshots of one job. Never throws.
[[nodiscard]] constexpr int lifecycleStage(JobStatus status) noexcept {
  if (isTerminal(status)) return 2;
  return status == JobStatus::Running ? 1 : 0;
}

namespace detail {

/// ASCII case-insensitive equality (locale-independent). Never throws.
[[nodiscard]] constexpr bool equalsIgnoringAsciiCase(std::string_view a,
                                                     std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  const auto lower = [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  };
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

/// The enumerator of `Enum` (valued 0..count-1) whose toString() equals
/// `text` ignoring ASCII case, or std::nullopt. Never throws.
template <class Enum, int count>
[[nodiscard]] constexpr std::optional<Enum> parseEnumIgnoringCase(std::string_view text) noexcept {
  for (int i = 0; i < count; ++i) {
    const auto value = static_cast<Enum>(i);
    if (equalsIgnoringAsciiCase(text, toString(value))) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace detail

/// Parses a status from its text form, ignoring ASCII case ("RUNNING",
/// "running" and "Running" all give Running). Exactly the five names, no
/// surrounding whitespace; anything else gives std::nullopt. Never throws.
[[nodiscard]] constexpr std::optional<JobStatus> parseJobStatus(std::string_view text) noexcept {
  return detail::parseEnumIgnoringCase<JobStatus, 5>(text);
}

/// Parses an error kind from its text form, ignoring ASCII case ("timeout",
/// "TIMEOUT"). Exactly the five names, no surrounding whitespace; anything
/// else gives std::nullopt. Never throws.
[[nodiscard]] constexpr std::optional<ErrorKind> parseErrorKind(std::string_view text) noexcept {
  return detail::parseEnumIgnoringCase<ErrorKind, 5>(text);
}

}  // namespace jobtrack
