// libFuzzer target: JobId::parse and the JSON readers of JobId/JobStatus/ErrorKind.
// Whatever the input, parse either rejects it or round-trips it exactly.

#include <jobtrack/job_id.hpp>
#include <jobtrack/job_status.hpp>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const auto id = jobtrack::JobId::parse(text)) {
    std::string lower(text);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (jobtrack::to_string(*id) != lower) std::abort();
    if (jobtrack::JobId::parse(jobtrack::to_string(*id)) != id) std::abort();
  }
  if (const auto status = jobtrack::parseJobStatus(text)) {
    if (!jobtrack::parseJobStatus(jobtrack::toString(*status))) std::abort();
  }
  (void)jobtrack::parseErrorKind(text);
  return 0;
}
