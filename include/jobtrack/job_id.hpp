#pragma once

/// @file
/// JobId: the 128-bit identifier of a job (a UUID). Deliberately light: no
/// Asio, no JSON (the JSON adapters live in jobtrack/json.hpp).

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

// The primary std::hash template is declared by <string>, <string_view> and
// <optional> (they specialise it), so <functional> is not needed here.

#include "jobtrack/detail/random.hpp"

namespace jobtrack {

/// A job identifier: a UUID (RFC 9562) held as 16 bytes in network order.
/// Default-constructed, it is the nil id (all zero). New ids come from
/// generate(); ids received as text come from parse(), which accepts any
/// well-formed UUID (any version and variant, nil included), so ids made by
/// other systems, e.g. read from a shared store, can be compared with ours.
/// Ordering is by bytes, which is also the order of the to_string() texts.
/// A trivially copyable value type; distinct objects may be used from
/// different threads freely.
class JobId {
 public:
  /// The text form is 8-4-4-4-12 hex digits: 36 characters.
  static constexpr std::size_t textLength = 36;

  /// The nil id (all zero). Never throws.
  constexpr JobId() noexcept = default;

  /// The id with exactly these bytes (network order, as bytes() returns),
  /// e.g. read back from a binary store. No validation. Never throws.
  explicit constexpr JobId(const std::array<std::uint8_t, 16>& bytes) noexcept : bytes_(bytes) {}

  /// A new random UUID version 4 (version nibble 4, variant bits 10): 122
  /// bits from the OS CSPRNG, through a per-thread buffer (no system call
  /// per id; fork-safe, see detail/random.hpp). Thread-safe. Throws
  /// std::system_error if the OS random source fails.
  [[nodiscard]] static JobId generate() {
    JobId id;
    detail::fillRandomBytes(id.bytes_);
    id.bytes_[6] = static_cast<std::uint8_t>((id.bytes_[6] & 0x0Fu) | 0x40u);  // version 4
    id.bytes_[8] = static_cast<std::uint8_t>((id.bytes_[8] & 0x3Fu) | 0x80u);  // variant 10
    return id;
  }

  /// Parses the canonical text form: exactly 36 characters, hex digits
  /// (lower or upper case) in groups 8-4-4-4-12 separated by '-'. Anything
  /// else gives std::nullopt: other lengths, missing or misplaced hyphens,
  /// braces, a "urn:uuid:" prefix, whitespace, embedded NUL. Any UUID
  /// version and variant is accepted, the nil id included. Never throws.
  [[nodiscard]] static constexpr std::optional<JobId> parse(std::string_view text) noexcept {
    if (text.size() != textLength) {
      return std::nullopt;
    }
    JobId id;
    std::size_t pos = 0;
    for (std::uint8_t& byte : id.bytes_) {
      if (isHyphenPosition(pos)) {
        if (text[pos] != '-') {
          return std::nullopt;
        }
        ++pos;
      }
      const int high = hexValue(text[pos]);
      const int low = hexValue(text[pos + 1]);
      if (high < 0 || low < 0) {
        return std::nullopt;
      }
      byte = static_cast<std::uint8_t>(high * 16 + low);
      pos += 2;
    }
    return id;
  }

  /// True for the nil id (all 16 bytes zero). Never throws.
  [[nodiscard]] constexpr bool isNil() const noexcept { return *this == JobId{}; }

  /// The 16 bytes, in network order (byte 0 is the first two hex digits).
  /// Never throws.
  [[nodiscard]] constexpr const std::array<std::uint8_t, 16>& bytes() const noexcept {
    return bytes_;
  }

  /// Equality and byte-wise (= text) ordering. Never throw.
  friend constexpr bool operator==(const JobId&, const JobId&) = default;
  friend constexpr auto operator<=>(const JobId&, const JobId&) = default;

 private:
  /// Positions of the four hyphens in the text form.
  static constexpr bool isHyphenPosition(std::size_t pos) noexcept {
    return pos == 8 || pos == 13 || pos == 18 || pos == 23;
  }

  /// Value of an ASCII hex digit, or -1. Locale-independent.
  static constexpr int hexValue(char c) noexcept {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  }

  std::array<std::uint8_t, 16> bytes_{};
};

/// The canonical text form: 36 characters, lower-case hex, 8-4-4-4-12, e.g.
/// "f47ac10b-58cc-4372-a567-0e02b2c3d479". Thread-safe. Throws std::bad_alloc
/// only.
[[nodiscard]] inline std::string to_string(const JobId& id) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string text;
  text.reserve(JobId::textLength);
  for (std::size_t i = 0; i < id.bytes().size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      text += '-';
    }
    text += digits[id.bytes()[i] >> 4];
    text += digits[id.bytes()[i] & 0x0Fu];
  }
  return text;
}

/// Writes to_string(id) to the stream (honouring width and fill, like a
/// string). A template over the stream type so that this header needs only
/// <iosfwd>; any TU that has a stream object has <ostream> already.
/// Thread-safety and errors: those of the stream.
template <class CharT, class Traits>
std::basic_ostream<CharT, Traits>& operator<<(std::basic_ostream<CharT, Traits>& os,
                                              const JobId& id) {
  return os << to_string(id).c_str();
}

}  // namespace jobtrack

/// Hashes a JobId by mixing its two 64-bit halves: cheap, and good because
/// generated ids are random. Never throws.
template <>
struct std::hash<jobtrack::JobId> {
  std::size_t operator()(const jobtrack::JobId& id) const noexcept {
    std::uint64_t high = 0;
    std::uint64_t low = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      high = (high << 8) | id.bytes()[i];
      low = (low << 8) | id.bytes()[i + 8];
    }
    // Multiply by an odd constant (2^64 / golden ratio) so that ids which
    // are not random (parsed from elsewhere) still spread over all bits.
    const std::uint64_t mixed = (high ^ (low * 0x9E3779B97F4A7C15u)) * 0x9E3779B97F4A7C15u;
    return static_cast<std::size_t>(mixed ^ (mixed >> 32));
  }
};
