#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace jobtrack::detail {

/// Formats `time` as ISO-8601 UTC with milliseconds: "2026-11-28T21:05:03.042Z".
inline std::string formatIsoTime(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto millis = floor<milliseconds>(time.time_since_epoch());
  const auto day = floor<days>(millis);
  const year_month_day ymd{sys_days{day}};
  const hh_mm_ss<milliseconds> clock{millis - day};
  char text[32];
  std::snprintf(
      text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
      static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
      static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return text;
}

/// Parses exactly the form formatIsoTime writes; nullopt for anything else.
inline std::optional<std::chrono::system_clock::time_point> parseIsoTime(std::string_view text) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS.mmmZ
  if (text.size() != 24) return std::nullopt;
  constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  int fields[7] = {};
  int field = 0;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] != 'd') {
      if (text[i] != shape[i]) return std::nullopt;
      ++field;
      continue;
    }
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    fields[field] = fields[field] * 10 + (text[i] - '0');
  }
  const year_month_day ymd{year{fields[0]}, month{static_cast<unsigned>(fields[1])},
                           day{static_cast<unsigned>(fields[2])}};
  if (!ymd.ok() || fields[3] > 23 || fields[4] > 59 || fields[5] > 59) return std::nullopt;
  const sys_time<milliseconds> time = sys_days{ymd} + hours{fields[3]} + minutes{fields[4]} +
                                      seconds{fields[5]} + milliseconds{fields[6]};
  // system_clock counts nanoseconds in 64 bits: about 1678-2262. Later years
  // would overflow (found by the snapshot fuzzer).
  constexpr auto earliest = time_point_cast<milliseconds>(system_clock::time_point::min());
  constexpr auto latest = time_point_cast<milliseconds>(system_clock::time_point::max());
  if (time < earliest + seconds{1} || time > latest - seconds{1}) return std::nullopt;
  return time_point_cast<system_clock::duration>(time);
}

}  // namespace jobtrack::detail
