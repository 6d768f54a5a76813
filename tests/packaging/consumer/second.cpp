// The consumer's second translation unit: it includes the same headers as
// main.cpp, so the two object files would clash on any non-inline definition.
#include <jobtrack/jobtrack.hpp>

#include <nlohmann/json.hpp>

#include <string>

std::string describeJobtrack() {
  const nlohmann::json description = {
      {"library", "jobtrack"},           {"version", jobtrack::versionString},
      {"major", JOBTRACK_VERSION_MAJOR}, {"minor", JOBTRACK_VERSION_MINOR},
      {"patch", JOBTRACK_VERSION_PATCH},
  };
  return description.dump();
}
