// libFuzzer target: JSON snapshot parsing (from_json of JobSnapshot, JobId,
// JobStatus). Bad input must end in an exception, never a crash; a snapshot
// that parses must survive a to_json/from_json round trip unchanged.

#include <jobtrack/job_snapshot.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, false);
  if (json.is_discarded()) return 0;
  try {
    const auto snapshot = json.get<jobtrack::JobSnapshot<nlohmann::json>>();
    const nlohmann::json written = snapshot;
    const auto reread = written.get<jobtrack::JobSnapshot<nlohmann::json>>();
    if (!(reread == snapshot)) std::abort();
  } catch (const nlohmann::json::exception&) {
  } catch (const std::invalid_argument&) {
  }
  try {
    (void)json.get<jobtrack::JobStatus>();
  } catch (const nlohmann::json::exception&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
