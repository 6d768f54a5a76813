# Finds standalone Asio and provides the imported target asio::asio.
#
# vcpkg (and newer distributions) ship an asio CMake config that defines
# asio::asio; Debian's libasio-dev ships only headers. This file is used both
# by the build tree and by the installed jobtrackConfig.cmake, so a consumer of
# the installed package finds Asio exactly as jobtrack's own build does.
include_guard(GLOBAL)

if(NOT TARGET asio::asio)
  find_package(asio CONFIG QUIET)
endif()

if(NOT TARGET asio::asio)
  find_path(JOBTRACK_ASIO_INCLUDE_DIR asio.hpp)
  if(NOT JOBTRACK_ASIO_INCLUDE_DIR)
    message(FATAL_ERROR
      "jobtrack: standalone Asio not found (asio.hpp). "
      "Install it (Debian/Ubuntu: apt-get install libasio-dev; vcpkg: asio) "
      "or set JOBTRACK_ASIO_INCLUDE_DIR.")
  endif()
  find_package(Threads REQUIRED)
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${JOBTRACK_ASIO_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
