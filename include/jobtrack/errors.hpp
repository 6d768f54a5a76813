#pragma once

/// @file
/// The exceptions jobtrack itself raises. Work may throw anything; these are
/// the failures the library adds.

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace jobtrack {

/// A future that was cancelled (explicitly, or because its executor shut
/// down) completes with this error. jobtrack stores one shared instance for
/// every cancel: catch it by const reference.
class CancelledError : public std::runtime_error {
 public:
  CancelledError() : std::runtime_error("jobtrack: operation cancelled") {}
  using std::runtime_error::runtime_error;
};

/// `withTimeout` fails with this error when its duration passes first (one
/// shared instance for every timeout: catch it by const reference).
class TimeoutError : public std::runtime_error {
 public:
  TimeoutError() : std::runtime_error("jobtrack: operation timed out") {}
  using std::runtime_error::runtime_error;
};

/// Raised when work is handed to an executor that is shutting down or shut down.
class ExecutorShutdownError : public std::runtime_error {
 public:
  ExecutorShutdownError() : std::runtime_error("jobtrack: executor is shut down") {}
};

/// A `Promise` destroyed without a value or an error breaks its future with this.
class BrokenPromiseError : public std::logic_error {
 public:
  BrokenPromiseError() : std::logic_error("jobtrack: promise destroyed before it was fulfilled") {}
};

/// `executeAny` fails with this error when every alternative failed (or
/// when it was given none); it carries each failure, in input order.
class AllFailedError : public std::runtime_error {
 public:
  explicit AllFailedError(std::vector<std::exception_ptr> errors)
      : std::runtime_error(describe(errors)), errors_(std::move(errors)) {}

  /// The failure of each alternative, in the order they were given.
  [[nodiscard]] const std::vector<std::exception_ptr>& errors() const noexcept { return errors_; }

 private:
  static std::string describe(const std::vector<std::exception_ptr>& errors) {
    if (errors.empty()) return "jobtrack: executeAny was given no alternatives";
    std::string text = "jobtrack: all " + std::to_string(errors.size()) + " alternatives failed";
    const char* separator = ": ";
    for (const auto& error : errors) {
      text += separator;
      separator = "; ";
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        text += e.what();
      } catch (...) {
        text += "non-standard exception";
      }
    }
    return text;
  }

  std::vector<std::exception_ptr> errors_;
};

namespace detail {

/// The one CancelledError every cancel stores: a cancel allocates nothing.
/// Never destroyed, so threads still running at exit may use it. Sharing one
/// exception object is safe: each rethrow (from any thread) catches the same
/// object, so it must be caught by const reference and never modified.
[[nodiscard]] inline const std::exception_ptr& cancelledErrorPtr() {
  static const auto* const error =
      new std::exception_ptr(std::make_exception_ptr(CancelledError{}));
  return *error;
}

/// The one TimeoutError every `withTimeout` expiry stores (see cancelledErrorPtr).
[[nodiscard]] inline const std::exception_ptr& timeoutErrorPtr() {
  static const auto* const error = new std::exception_ptr(std::make_exception_ptr(TimeoutError{}));
  return *error;
}

}  // namespace detail

/// A readable message for any captured exception, std or not.
[[nodiscard]] inline std::string describeException(const std::exception_ptr& error) {
  if (!error) return {};
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "non-standard exception";
  }
}

}  // namespace jobtrack
