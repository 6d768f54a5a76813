#pragma once

/// @file
/// Random bytes from the operating system's CSPRNG, buffered per thread so that
/// generating a JobId does not cost a system call each time.
///
/// Source: getrandom(2) on Linux; std::random_device elsewhere (libstdc++,
/// libc++ and MSVC back it with the OS source on their main platforms).
///
/// Fork safety: each thread keeps a 4096-byte buffer of unused random bytes.
/// Before the first buffer is ever filled, a pthread_atfork child handler is
/// registered (once per process image) that empties the forking thread's
/// buffer in the child, so a child process never hands out the bytes its
/// parent will also hand out. The handler does not run after vfork(2),
/// posix_spawn(3) or a raw clone(2); those children must exec, as POSIX
/// requires for vfork, or not use this library.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#if defined(__linux__) && __has_include(<sys/random.h>)
#define JOBTRACK_DETAIL_USE_GETRANDOM 1
#include <cerrno>
#include <sys/random.h>
#include <system_error>
#else
#define JOBTRACK_DETAIL_USE_GETRANDOM 0
#include <random>
#endif

#if __has_include(<pthread.h>) && !defined(_WIN32)
#define JOBTRACK_DETAIL_USE_PTHREAD_ATFORK 1
#include <pthread.h>
#include <system_error>
#else
#define JOBTRACK_DETAIL_USE_PTHREAD_ATFORK 0
#endif

namespace jobtrack::detail {

/// Name of the OS source behind fillRandomBytes(): "getrandom" on Linux,
/// "std::random_device" elsewhere. Lets tests check which generator is used.
#if JOBTRACK_DETAIL_USE_GETRANDOM
inline constexpr std::string_view randomSourceName = "getrandom";
#else
inline constexpr std::string_view randomSourceName = "std::random_device";
#endif

/// Fills `out` straight from the OS source, one request at a time (no buffer).
/// Thread-safe. Throws std::system_error if the OS source fails (on Linux:
/// getrandom(2) errors other than EINTR, e.g. ENOSYS on kernels before 3.17).
/// May block early at boot until the kernel's entropy pool is initialised.
inline void fillFromOs(std::span<std::uint8_t> out) {
#if JOBTRACK_DETAIL_USE_GETRANDOM
  while (!out.empty()) {
    // Requests over 256 bytes may be cut short by a signal: keep reading.
    const ssize_t got = ::getrandom(out.data(), out.size(), 0);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::system_error(errno, std::generic_category(), "jobtrack: getrandom failed");
    }
    out = out.subspan(static_cast<std::size_t>(got));
  }
#else
  // std::random_device uses the OS source with libstdc++ (>= 9.2 on MinGW),
  // libc++ and MSVC; it throws std::system_error-derived errors on failure.
  std::random_device device;
  using Word = std::random_device::result_type;
  while (!out.empty()) {
    const Word word = device();
    const std::size_t count = out.size() < sizeof(Word) ? out.size() : sizeof(Word);
    for (std::size_t i = 0; i < count; ++i) {
      out[i] = static_cast<std::uint8_t>(word >> (8 * i));
    }
    out = out.subspan(count);
  }
#endif
}

/// One thread's buffer of random bytes. The unused bytes are the last
/// `available` ones; bytes before them were handed out and are never reused.
struct RandomPool {
  std::array<std::uint8_t, 4096> bytes{};
  std::size_t available = 0;
};

/// The calling thread's pool. Constant-initialised (empty), so access is cheap
/// and safe from the fork handler.
inline RandomPool& threadRandomPool() noexcept {
  constinit thread_local RandomPool pool{};
  return pool;
}

/// pthread_atfork child handler: forget the unused bytes the child inherited.
/// In the child only the thread that called fork() exists, and this runs there.
inline void discardRandomPoolInChild() noexcept { threadRandomPool().available = 0; }

/// Registers discardRandomPoolInChild() with pthread_atfork, once per process
/// image (a forked child inherits the registration). Thread-safe. Throws
/// std::system_error if registration fails (then retried on the next call).
inline void ensureForkHandlerRegistered() {
#if JOBTRACK_DETAIL_USE_PTHREAD_ATFORK
  static const bool registered = [] {
    if (const int rc = ::pthread_atfork(nullptr, nullptr, &discardRandomPoolInChild); rc != 0) {
      throw std::system_error(rc, std::generic_category(), "jobtrack: pthread_atfork failed");
    }
    return true;
  }();
  static_cast<void>(registered);
#endif
}

/// Fills `out` with bytes from the OS CSPRNG, through the calling thread's
/// buffer: the OS is asked for 4096 bytes at a time, and every byte is handed
/// out at most once (also across fork(), see the file comment). Requests larger
/// than the buffer go straight to the OS. Thread-safe (the buffer is
/// thread_local); not async-signal-safe. Throws std::system_error if the OS
/// source or the fork handler registration fails; bytes already handed out are
/// then still never reused.
inline void fillRandomBytes(std::span<std::uint8_t> out) {
  ensureForkHandlerRegistered();
  RandomPool& pool = threadRandomPool();
  if (out.size() > pool.bytes.size()) {
    fillFromOs(out);
    return;
  }
  while (!out.empty()) {
    if (pool.available == 0) {
      fillFromOs(pool.bytes);
      pool.available = pool.bytes.size();
    }
    const std::size_t count = out.size() < pool.available ? out.size() : pool.available;
    const std::size_t first = pool.bytes.size() - pool.available;
    std::memcpy(out.data(), pool.bytes.data() + first, count);
    pool.available -= count;
    out = out.subspan(count);
  }
}

}  // namespace jobtrack::detail
