# Finds standalone Asio and provides the imported target asio::asio.
#
# vcpkg (and newer distributions) ship an asio CMake config that defines
# asio::asio; Debian's libasio-dev ships only headers. This file is used both
# by the build tree and by the installed jobtrackConfig.cmake, so a consumer of
# the installed package finds Asio exactly as jobtrack's own build does.
#
# No include_guard(GLOBAL) on purpose: imported targets are visible only in the
# directory that created them (and below), so a consumer that calls
# find_package(jobtrack) in two sibling directories needs asio::asio created in
# each. Everything below is idempotent instead.
#
# When included from jobtrackConfig.cmake (JOBTRACK_ASIO_FROM_PACKAGE_CONFIG is
# set) a missing Asio is reported through jobtrack_FOUND/NOT_FOUND_MESSAGE by
# the config file rather than a fatal error here, so that
# find_package(jobtrack QUIET) stays quiet and non-fatal.

if(NOT TARGET asio::asio)
  find_package(asio CONFIG QUIET)
endif()

if(NOT TARGET asio::asio)
  find_path(JOBTRACK_ASIO_INCLUDE_DIR asio.hpp
            DOC "Directory holding standalone Asio's asio.hpp")
  if(NOT JOBTRACK_ASIO_INCLUDE_DIR)
    if(JOBTRACK_ASIO_FROM_PACKAGE_CONFIG)
      return()
    endif()
    message(FATAL_ERROR
      "jobtrack: standalone Asio not found (asio.hpp). "
      "Install it (Debian/Ubuntu: apt-get install libasio-dev; vcpkg: asio) "
      "or set JOBTRACK_ASIO_INCLUDE_DIR.")
  endif()
  if(NOT TARGET Threads::Threads)
    find_package(Threads REQUIRED)
  endif()
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${JOBTRACK_ASIO_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
