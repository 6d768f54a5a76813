// The consumer's first translation unit. See CMakeLists.txt.

// Before any include: with clang < 15 and libstdc++, Asio 1.22 does not detect
// coroutine support, and jobtrack::jobtrack adds the definitions itself. This
// checks that they reach a consumer (they are a generator expression in the
// exported target).
#if defined(__clang__) && !defined(__apple_build_version__) && __clang_major__ < 15
#if !defined(ASIO_HAS_CO_AWAIT) || !defined(ASIO_HAS_STD_COROUTINE)
#error \
    "jobtrack::jobtrack should define ASIO_HAS_CO_AWAIT and ASIO_HAS_STD_COROUTINE for clang < 15"
#endif
#endif

#include <jobtrack/jobtrack.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cstring>
#include <iostream>
#include <string>

std::string describeJobtrack();  // second.cpp

int main() {
  // Asio's usage requirements (include path, ASIO_STANDALONE, Threads) came
  // with jobtrack::jobtrack: run one handler on an io_context.
  asio::io_context io;
  std::string line;
  asio::post(io, [&line] { line = describeJobtrack(); });
  io.run();

  std::cout << "jobtrack consumer (" << JOBTRACK_CONSUMER_MODE << "): " << line << '\n';
  if (std::strcmp(jobtrack::versionString, JOBTRACK_CONSUMER_EXPECTED_VERSION) != 0) {
    std::cerr << "expected jobtrack " << JOBTRACK_CONSUMER_EXPECTED_VERSION << ", got "
              << jobtrack::versionString << '\n';
    return 1;
  }
  return 0;
}
