// Tests for JobId, JobStatus/ErrorKind, their JSON adapters and the random
// source behind JobId::generate().

#include "jobtrack/job_id.hpp"
#include "jobtrack/job_status.hpp"
#include "jobtrack/json.hpp"

#include "catch.hpp"

#include <array>
#include <cerrno>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#define JOBTRACK_TEST_HAS_FORK 1
#include <sys/wait.h>
#include <unistd.h>
#else
#define JOBTRACK_TEST_HAS_FORK 0
#endif

using jobtrack::ErrorKind;
using jobtrack::JobId;
using jobtrack::JobStatus;

namespace {

constexpr std::string_view sampleText = "f47ac10b-58cc-4372-a567-0e02b2c3d479";

std::vector<JobId> generateIds(std::size_t count) {
  std::vector<JobId> ids;
  ids.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    ids.push_back(JobId::generate());
  }
  return ids;
}

std::uint64_t highWord(const JobId& id) {
  std::uint64_t word = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    word = (word << 8) | id.bytes()[i];
  }
  return word;
}

}  // namespace

TEST_CASE("a default JobId is the nil id", "[job_id]") {
  const JobId id;
  CHECK(id.isNil());
  CHECK(id == JobId{});
  CHECK(to_string(id) == "00000000-0000-0000-0000-000000000000");
  for (const std::uint8_t byte : id.bytes()) {
    CHECK(byte == 0);
  }
  CHECK_FALSE(JobId::generate().isNil());
  STATIC_REQUIRE(JobId{}.isNil());
}

TEST_CASE("generate() gives UUID version 4, variant 10, other bits random", "[job_id][generate]") {
  constexpr std::size_t count = 100'000;
  const std::vector<JobId> ids = generateIds(count);

  // Over 100k ids, every one of the 122 random bits is seen both set and
  // clear (a constant bit would show up with probability 2^-100000).
  std::array<std::uint8_t, 16> allAnd{};
  allAnd.fill(0xFF);
  std::array<std::uint8_t, 16> allOr{};
  std::size_t badVersion = 0;
  std::size_t badVariant = 0;
  for (const JobId& id : ids) {
    badVersion += (id.bytes()[6] >> 4) != 4 ? 1 : 0;
    badVariant += (id.bytes()[8] & 0xC0) != 0x80 ? 1 : 0;
    for (std::size_t i = 0; i < 16; ++i) {
      allAnd[i] &= id.bytes()[i];
      allOr[i] |= id.bytes()[i];
    }
  }
  CHECK(badVersion == 0);
  CHECK(badVariant == 0);
  for (std::size_t i = 0; i < 16; ++i) {
    INFO("byte " << i);
    const std::uint8_t fixedOnes = i == 6 ? 0x40 : i == 8 ? 0x80 : 0x00;
    const std::uint8_t fixedZeros = i == 6 ? 0xB0 : i == 8 ? 0x40 : 0x00;
    CHECK(allAnd[i] == fixedOnes);
    CHECK(allOr[i] == static_cast<std::uint8_t>(0xFF & ~fixedZeros));
  }

  SECTION("the text shows version 4 and variant 8, 9, a or b") {
    const std::string text = to_string(ids.front());
    CHECK(text[14] == '4');
    CHECK(std::string_view("89ab").find(text[19]) != std::string_view::npos);
  }
}

TEST_CASE("generate() gives distinct, non-sequential ids", "[job_id][generate]") {
  SECTION("100k ids are all distinct") {
    constexpr std::size_t count = 100'000;
    std::unordered_set<JobId> seen;
    seen.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      seen.insert(JobId::generate());
    }
    CHECK(seen.size() == count);
  }

  SECTION("consecutive ids are not a sequence") {
    const std::vector<JobId> ids = generateIds(1000);
    std::set<std::uint64_t> differences;
    std::set<std::uint8_t> firstBytes;
    for (std::size_t i = 1; i < ids.size(); ++i) {
      differences.insert(highWord(ids[i]) - highWord(ids[i - 1]));
      firstBytes.insert(ids[i].bytes()[0]);
    }
    CHECK(differences.size() > 1);
    CHECK(firstBytes.size() > 1);
  }

  SECTION("ids from two threads are distinct (each thread has its own buffer)") {
    std::vector<JobId> fromOther;
    std::thread other([&fromOther] { fromOther = generateIds(10'000); });
    const std::vector<JobId> fromThis = generateIds(10'000);
    other.join();
    std::unordered_set<JobId> seen(fromThis.begin(), fromThis.end());
    seen.insert(fromOther.begin(), fromOther.end());
    CHECK(seen.size() == 20'000);
  }
}

TEST_CASE("the random source is the operating system's", "[job_id][random]") {
#if defined(__linux__)
  CHECK(jobtrack::detail::randomSourceName == "getrandom");
#else
  CHECK(jobtrack::detail::randomSourceName == "std::random_device");
#endif

  SECTION("requests larger than the per-thread buffer are filled") {
    std::vector<std::uint8_t> bytes(10'000, 0);
    jobtrack::detail::fillRandomBytes(bytes);
    std::set<std::uint8_t> values(bytes.begin(), bytes.end());
    CHECK(values.size() > 200);  // 10k random bytes show (nearly) all 256 values
  }

  SECTION("odd-sized requests across buffer refills never repeat bytes") {
    // 7-byte chunks straddle the 4096-byte refill boundaries.
    std::set<std::array<std::uint8_t, 7>> chunks;
    for (int i = 0; i < 3000; ++i) {
      std::array<std::uint8_t, 7> chunk{};
      jobtrack::detail::fillRandomBytes(chunk);
      chunks.insert(chunk);
    }
    CHECK(chunks.size() == 3000);
  }
}

TEST_CASE("to_string round-trips through parse", "[job_id][parse]") {
  SECTION("generated ids") {
    for (int i = 0; i < 1000; ++i) {
      const JobId id = JobId::generate();
      const std::string text = to_string(id);
      REQUIRE(text.size() == JobId::textLength);
      const std::optional<JobId> parsed = JobId::parse(text);
      REQUIRE(parsed.has_value());
      CHECK(*parsed == id);
    }
  }

  SECTION("a known id, byte by byte") {
    const std::optional<JobId> parsed = JobId::parse(sampleText);
    REQUIRE(parsed.has_value());
    const std::array<std::uint8_t, 16> expected{0xf4, 0x7a, 0xc1, 0x0b, 0x58, 0xcc, 0x43, 0x72,
                                                0xa5, 0x67, 0x0e, 0x02, 0xb2, 0xc3, 0xd4, 0x79};
    CHECK(parsed->bytes() == expected);
    CHECK(*parsed == JobId(expected));
    CHECK(to_string(*parsed) == sampleText);
  }

  SECTION("parse works at compile time") {
    constexpr std::optional<JobId> parsed = JobId::parse("00000000-0000-0000-0000-000000000001");
    STATIC_REQUIRE(parsed.has_value());
    STATIC_REQUIRE(parsed->bytes()[15] == 1);
    STATIC_REQUIRE_FALSE(JobId::parse("not an id").has_value());
  }
}

TEST_CASE("parse accepts upper case and any UUID version", "[job_id][parse]") {
  SECTION("upper case gives the same id as lower case") {
    const auto lower = JobId::parse("f47ac10b-58cc-4372-a567-0e02b2c3d479");
    const auto upper = JobId::parse("F47AC10B-58CC-4372-A567-0E02B2C3D479");
    const auto mixed = JobId::parse("F47ac10B-58Cc-4372-A567-0e02B2c3D479");
    REQUIRE(lower.has_value());
    REQUIRE(upper.has_value());
    REQUIRE(mixed.has_value());
    CHECK(*upper == *lower);
    CHECK(*mixed == *lower);
    CHECK(to_string(*upper) == "f47ac10b-58cc-4372-a567-0e02b2c3d479");
  }

  SECTION("the nil id") {
    const auto nil = JobId::parse("00000000-0000-0000-0000-000000000000");
    REQUIRE(nil.has_value());
    CHECK(nil->isNil());
  }

  SECTION("other versions and variants: v1, v7, max, a non-RFC variant") {
    for (const std::string_view text :
         {"c232ab00-9414-11ec-b3c8-9f6bdeced846", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
          "ffffffff-ffff-ffff-ffff-ffffffffffff", "12345678-1234-1234-1234-123456789abc"}) {
      CAPTURE(text);
      const auto parsed = JobId::parse(text);
      REQUIRE(parsed.has_value());
      CHECK(to_string(*parsed) == text);
    }
  }
}

TEST_CASE("parse rejects everything but the canonical 36-character form", "[job_id][parse]") {
  const std::string valid(sampleText);
  const auto withCharAt = [&valid](std::size_t pos, char c) {
    std::string text = valid;
    text[pos] = c;
    return text;
  };
  const std::vector<std::string> bad{
      "",
      valid.substr(0, 35),                              // 35 chars
      valid + "0",                                      // 37 chars
      "f47ac10b58cc4372a5670e02b2c3d479",               // no hyphens
      "f47ac10b-58cc-4372-a5670e02b2c3d479",            // hyphen missing (35 chars)
      "f47ac10-b58cc-4372-a567-0e02b2c3d479",           // hyphen misplaced
      "f47ac10b-58cc-4372-a567-0e02b2c3d47-",           // hyphen at the end
      "f47ac10b-58cc-4372-a5670-e02b2c3d479",           // hyphen shifted
      "f47ac10b:58cc:4372:a567:0e02b2c3d479",           // wrong separator
      "g47ac10b-58cc-4372-a567-0e02b2c3d479",           // 'g' is not hex
      "f47ac10b-58cc-4372-a567-0e02b2c3d47G",           // 'G' is not hex
      "{f47ac10b-58cc-4372-a567-0e02b2c3d479}",         // braces
      "{f47ac10b-58cc-4372-a567-0e02b2c3d4}",           // braces, 36 chars
      "urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479",  // URN prefix
      " f47ac10b-58cc-4372-a567-0e02b2c3d479",          // leading space
      "f47ac10b-58cc-4372-a567-0e02b2c3d479 ",          // trailing space
      " f47ac10b-58cc-4372-a567-0e02b2c3d47",           // space, 36 chars
      "f47ac10b-58cc-4372-a567-0e02b2c3d47\n",          // newline, 36 chars
      "+47ac10b-58cc-4372-a567-0e02b2c3d479",           // sign
      "0x7ac10b-58cc-4372-a567-0e02b2c3d479",           // hex prefix
      withCharAt(34, '\0'),                             // embedded NUL, 36 chars
      valid + std::string(1, '\0'),                     // trailing NUL, 37 chars
      withCharAt(0, '\xc3'),                            // non-ASCII byte
  };
  for (const std::string& text : bad) {
    CAPTURE(text, text.size());
    CHECK_FALSE(JobId::parse(text).has_value());
  }
}

TEST_CASE("JobIds order by bytes, like their text, and hash", "[job_id][compare]") {
  const JobId low = *JobId::parse("00000000-0000-0000-0000-0000000000ff");
  const JobId middle = *JobId::parse("00000000-0000-0000-0000-000000000100");
  const JobId high = *JobId::parse("ff000000-0000-0000-0000-000000000000");
  CHECK(low < middle);
  CHECK(middle < high);
  CHECK((low <=> low) == std::strong_ordering::equal);
  CHECK(low != high);

  SECTION("ordering agrees with the text ordering") {
    const std::vector<JobId> ids = generateIds(200);
    for (std::size_t i = 1; i < ids.size(); ++i) {
      CHECK((ids[i - 1] < ids[i]) == (to_string(ids[i - 1]) < to_string(ids[i])));
    }
  }

  SECTION("usable in std::set and std::map") {
    const std::set<JobId> ids{high, low, middle, low};
    REQUIRE(ids.size() == 3);
    CHECK(*ids.begin() == low);
    CHECK(*ids.rbegin() == high);
    std::map<JobId, int> byId{{high, 3}, {low, 1}};
    CHECK(byId.at(low) == 1);
  }

  SECTION("usable in std::unordered_map") {
    std::unordered_map<JobId, std::string> names;
    const JobId a = JobId::generate();
    const JobId b = JobId::generate();
    names[a] = "a";
    names[b] = "b";
    names[*JobId::parse(to_string(a))] = "a again";
    CHECK(names.size() == 2);
    CHECK(names.at(a) == "a again");
    CHECK(names.at(b) == "b");
    CHECK(std::hash<JobId>{}(a) == std::hash<JobId>{}(*JobId::parse(to_string(a))));
  }

  SECTION("ids differing in one byte hash differently") {
    std::unordered_set<std::size_t> hashes;
    for (std::uint8_t i = 0; i < 16; ++i) {
      std::array<std::uint8_t, 16> bytes{};
      bytes[i] = 1;
      hashes.insert(std::hash<JobId>{}(JobId(bytes)));
    }
    hashes.insert(std::hash<JobId>{}(JobId{}));
    CHECK(hashes.size() == 17);
  }
}

TEST_CASE("operator<< writes the canonical text", "[job_id][stream]") {
  const JobId id = *JobId::parse("F47AC10B-58CC-4372-A567-0E02B2C3D479");
  std::ostringstream out;
  out << id;
  CHECK(out.str() == sampleText);

  SECTION("width and fill apply as for a string") {
    std::ostringstream padded;
    padded.width(38);
    padded.fill('*');
    padded << id;
    CHECK(padded.str() == "**" + std::string(sampleText));
  }

  SECTION("wide streams") {
    std::wostringstream wide;
    wide << JobId{};
    CHECK(wide.str() == L"00000000-0000-0000-0000-000000000000");
  }
}

TEST_CASE("JobStatus and ErrorKind text forms", "[job_status]") {
  STATIC_REQUIRE(jobtrack::toString(JobStatus::Pending) == "PENDING");
  CHECK(jobtrack::toString(JobStatus::Running) == "RUNNING");
  CHECK(jobtrack::toString(JobStatus::Completed) == "COMPLETED");
  CHECK(jobtrack::toString(JobStatus::Failed) == "FAILED");
  CHECK(jobtrack::toString(JobStatus::Cancelled) == "CANCELLED");
  CHECK(jobtrack::toString(ErrorKind::None) == "none");
  CHECK(jobtrack::toString(ErrorKind::Exception) == "exception");
  CHECK(jobtrack::toString(ErrorKind::Timeout) == "timeout");
  CHECK(jobtrack::toString(ErrorKind::Cancelled) == "cancelled");
  CHECK(jobtrack::toString(ErrorKind::Lost) == "lost");

  SECTION("every value round-trips through its parse function") {
    for (const JobStatus status : {JobStatus::Pending, JobStatus::Running, JobStatus::Completed,
                                   JobStatus::Failed, JobStatus::Cancelled}) {
      CHECK(jobtrack::parseJobStatus(jobtrack::toString(status)) == status);
    }
    for (const ErrorKind kind : {ErrorKind::None, ErrorKind::Exception, ErrorKind::Timeout,
                                 ErrorKind::Cancelled, ErrorKind::Lost}) {
      CHECK(jobtrack::parseErrorKind(jobtrack::toString(kind)) == kind);
    }
  }

  SECTION("parsing ignores ASCII case") {
    CHECK(jobtrack::parseJobStatus("running") == JobStatus::Running);
    CHECK(jobtrack::parseJobStatus("Cancelled") == JobStatus::Cancelled);
    CHECK(jobtrack::parseErrorKind("TIMEOUT") == ErrorKind::Timeout);
    STATIC_REQUIRE(jobtrack::parseJobStatus("Failed") == JobStatus::Failed);
  }

  SECTION("parsing rejects anything else") {
    for (const std::string_view text :
         {"", "RUN", "RUNNINGG", " RUNNING", "RUNNING ", "CANCELED", "UNKNOWN", "0", "PENDING\n"}) {
      CAPTURE(text);
      CHECK_FALSE(jobtrack::parseJobStatus(text).has_value());
    }
    for (const std::string_view text : {"", "no", "timeout ", "unknown", "cancel", "error"}) {
      CAPTURE(text);
      CHECK_FALSE(jobtrack::parseErrorKind(text).has_value());
    }
  }

  SECTION("values outside the enumerations print as unknown") {
    CHECK(jobtrack::toString(static_cast<JobStatus>(42)) == "UNKNOWN");
    CHECK(jobtrack::toString(static_cast<ErrorKind>(42)) == "unknown");
  }
}

TEST_CASE("isTerminal is true for Completed, Failed and Cancelled only", "[job_status]") {
  STATIC_REQUIRE_FALSE(jobtrack::isTerminal(JobStatus::Pending));
  STATIC_REQUIRE_FALSE(jobtrack::isTerminal(JobStatus::Running));
  STATIC_REQUIRE(jobtrack::isTerminal(JobStatus::Completed));
  STATIC_REQUIRE(jobtrack::isTerminal(JobStatus::Failed));
  STATIC_REQUIRE(jobtrack::isTerminal(JobStatus::Cancelled));
}

TEST_CASE("lifecycleStage orders pending, running and every terminal state", "[job_status]") {
  STATIC_REQUIRE(jobtrack::lifecycleStage(JobStatus::Pending) == 0);
  STATIC_REQUIRE(jobtrack::lifecycleStage(JobStatus::Running) == 1);
  STATIC_REQUIRE(jobtrack::lifecycleStage(JobStatus::Completed) == 2);
  STATIC_REQUIRE(jobtrack::lifecycleStage(JobStatus::Failed) == 2);
  STATIC_REQUIRE(jobtrack::lifecycleStage(JobStatus::Cancelled) == 2);
}

TEST_CASE("JSON round-trips JobId, JobStatus and ErrorKind as strings", "[job_id][json]") {
  using nlohmann::json;

  SECTION("JobId") {
    const JobId id = JobId::generate();
    const json j = id;
    REQUIRE(j.is_string());
    CHECK(j.get<std::string>() == to_string(id));
    CHECK(j.get<JobId>() == id);
    CHECK(json::parse(j.dump()).get<JobId>() == id);
    CHECK(json(std::string(sampleText)).get<JobId>() == *JobId::parse(sampleText));
    CHECK(json("F47AC10B-58CC-4372-A567-0E02B2C3D479").get<JobId>() == *JobId::parse(sampleText));
  }

  SECTION("JobStatus") {
    const json j = JobStatus::Cancelled;
    CHECK(j == "CANCELLED");
    CHECK(j.get<JobStatus>() == JobStatus::Cancelled);
    CHECK(json("running").get<JobStatus>() == JobStatus::Running);
  }

  SECTION("ErrorKind") {
    const json j = ErrorKind::Timeout;
    CHECK(j == "timeout");
    CHECK(j.get<ErrorKind>() == ErrorKind::Timeout);
  }

  SECTION("inside an object and containers") {
    const JobId id = JobId::generate();
    const json j = {{"id", id}, {"status", JobStatus::Failed}, {"error", ErrorKind::Exception}};
    const json back = json::parse(j.dump());
    CHECK(back.at("id").get<JobId>() == id);
    CHECK(back.at("status").get<JobStatus>() == JobStatus::Failed);
    CHECK(back.at("error").get<ErrorKind>() == ErrorKind::Exception);

    const std::vector<JobId> ids = generateIds(3);
    CHECK(json(ids).get<std::vector<JobId>>() == ids);
  }
}

TEST_CASE("JSON reading rejects bad values", "[job_id][json]") {
  using nlohmann::json;

  SECTION("a non-string throws nlohmann's type_error") {
    CHECK_THROWS_AS(json(42).get<JobId>(), json::type_error);
    CHECK_THROWS_AS(json(nullptr).get<JobId>(), json::type_error);
    CHECK_THROWS_AS(json::array({1, 2}).get<JobId>(), json::type_error);
    CHECK_THROWS_AS(json(1).get<JobStatus>(), json::type_error);
    CHECK_THROWS_AS(json(true).get<ErrorKind>(), json::type_error);
  }

  SECTION("a malformed id or unknown name throws std::invalid_argument naming it") {
    CHECK_THROWS_AS(json("not-a-job-id").get<JobId>(), std::invalid_argument);
    CHECK_THROWS_AS(json("urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479").get<JobId>(),
                    std::invalid_argument);
    CHECK_THROWS_AS(json("FINISHED").get<JobStatus>(), std::invalid_argument);
    CHECK_THROWS_AS(json("").get<ErrorKind>(), std::invalid_argument);
    CHECK_THROWS_WITH(json("not-a-job-id").get<JobId>(),
                      "jobtrack: invalid job id in JSON: \"not-a-job-id\"");
    CHECK_THROWS_WITH(json("FINISHED").get<JobStatus>(),
                      "jobtrack: invalid job status in JSON: \"FINISHED\"");
    CHECK_THROWS_WITH(json("oops").get<ErrorKind>(),
                      "jobtrack: invalid error kind in JSON: \"oops\"");
  }

  SECTION("long bad values are quoted truncated") {
    CHECK_THROWS_WITH(json(std::string(1000, 'x')).get<JobId>(),
                      "jobtrack: invalid job id in JSON: \"" + std::string(64, 'x') + "\"...");
  }

  SECTION("a failed read leaves the target unchanged") {
    const JobId original = JobId::generate();
    JobId target = original;
    CHECK_THROWS(jobtrack::from_json(json("bad"), target));
    CHECK(target == original);
  }
}

#if JOBTRACK_TEST_HAS_FORK
TEST_CASE("a forked child never repeats its parent's ids", "[job_id][generate][fork]") {
  constexpr std::size_t count = 64;
  // Partly use this thread's buffer, so the child inherits unused bytes.
  static_cast<void>(generateIds(10));

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: no Catch2 here; send raw bytes, report through the exit code.
    ::close(fds[0]);
    int status = 0;
    for (std::size_t i = 0; i < count && status == 0; ++i) {
      const JobId id = JobId::generate();
      if (::write(fds[1], id.bytes().data(), id.bytes().size()) != 16) {
        status = 1;
      }
    }
    ::close(fds[1]);
    ::_exit(status);
  }

  ::close(fds[1]);
  const std::vector<JobId> parentIds = generateIds(count);
  std::vector<JobId> childIds;
  std::array<std::uint8_t, 16> bytes{};
  std::size_t filled = 0;
  for (;;) {
    const ssize_t got = ::read(fds[0], bytes.data() + filled, bytes.size() - filled);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;
    }
    filled += static_cast<std::size_t>(got);
    if (filled == bytes.size()) {
      childIds.emplace_back(bytes);
      filled = 0;
    }
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  REQUIRE(childIds.size() == count);
  std::unordered_set<JobId> all(parentIds.begin(), parentIds.end());
  all.insert(childIds.begin(), childIds.end());
  CHECK(all.size() == 2 * count);
  CHECK(childIds.front() != parentIds.front());
}
#endif
