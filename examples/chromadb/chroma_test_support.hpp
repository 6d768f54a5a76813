#pragma once

// Shared by the ChromaDB tests: the server URL from the environment, and
// collection names that never clash between runs on one server.

#include "catch.hpp"

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>

namespace jobtrack::examples::chroma::testing {

/// The environment variable's value, or nullopt when unset or empty. When it
/// is missing, fails the test if CI is set and otherwise prints the skip
/// marker that CTest's SKIP_REGULAR_EXPRESSION recognises.
inline std::optional<std::string> requiredEnv(const char* name) {
  if (const char* value = std::getenv(name); value != nullptr && *value != '\0') {
    return std::string(value);
  }
  const std::string hint = std::string(name) +
                           " is not set: run the tests through scripts/with-chroma, "
                           "which starts a real Chroma server";
  if (std::getenv("CI") != nullptr) {
    FAIL(hint + " (CI is set, so a missing Chroma is a failure)");
  }
  std::cout << "SKIPPED: CHROMA tests: " << hint << std::endl;
  return std::nullopt;
}

/// A collection name unique to this process and call: `prefix-<run>-purpose-<n>`.
inline std::string uniqueName(const std::string& prefix, const std::string& purpose) {
  static const std::string runId = [] {
    std::random_device device;
    std::ostringstream out;
    out << std::hex << device() << device();
    return out.str();
  }();
  static std::atomic<int> counter{0};
  return prefix + "-" + runId + "-" + purpose + "-" + std::to_string(counter++);
}

}  // namespace jobtrack::examples::chroma::testing
