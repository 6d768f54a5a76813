# The optional target jobtrack::redis: RedisJobStore (jobtrack/redis_store.hpp)
# over hiredis. Defined only when hiredis is found; jobtrack::jobtrack never
# needs it.
#
# hiredis is found as vcpkg (and hiredis >= 1.0 built with CMake) ship it, a
# CMake config with the target hiredis::hiredis, else through pkg-config
# (Debian's libhiredis-dev), wrapped in an imported hiredis::hiredis.
#
# Used both by jobtrack's build (include(cmake/jobtrackRedis.cmake) in the
# top-level CMakeLists.txt) and, installed beside jobtrackConfig.cmake, by
# consumers of the installed package (JOBTRACK_REDIS_FROM_PACKAGE_CONFIG set):
# then it only finds hiredis and loads jobtrackRedisTargets.cmake.

if(NOT TARGET hiredis::hiredis)
  find_package(hiredis CONFIG QUIET)
endif()
if(NOT TARGET hiredis::hiredis)
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(JOBTRACK_HIREDIS QUIET IMPORTED_TARGET hiredis)
    if(TARGET PkgConfig::JOBTRACK_HIREDIS)
      add_library(hiredis::hiredis INTERFACE IMPORTED)
      set_target_properties(hiredis::hiredis PROPERTIES
        INTERFACE_LINK_LIBRARIES PkgConfig::JOBTRACK_HIREDIS)
    endif()
  endif()
endif()

if(JOBTRACK_REDIS_FROM_PACKAGE_CONFIG)
  if(TARGET hiredis::hiredis AND NOT TARGET jobtrack::redis
     AND EXISTS "${CMAKE_CURRENT_LIST_DIR}/jobtrackRedisTargets.cmake")
    include("${CMAKE_CURRENT_LIST_DIR}/jobtrackRedisTargets.cmake")
  endif()
  return()
endif()

if(NOT TARGET hiredis::hiredis)
  message(STATUS "jobtrack: hiredis not found: no jobtrack::redis (RedisJobStore)")
  return()
endif()
message(STATUS "jobtrack: hiredis found: jobtrack::redis (RedisJobStore) available")

add_library(jobtrack_redis INTERFACE)
add_library(jobtrack::redis ALIAS jobtrack_redis)
set_target_properties(jobtrack_redis PROPERTIES EXPORT_NAME redis)
target_link_libraries(jobtrack_redis INTERFACE jobtrack::jobtrack hiredis::hiredis)

if(JOBTRACK_INSTALL AND DEFINED JOBTRACK_INSTALL_CMAKEDIR)
  # The headers are installed with jobtrack::jobtrack (its FILE_SET holds
  # them all); this adds the target and the finder.
  install(TARGETS jobtrack_redis EXPORT jobtrackRedisTargets COMPONENT jobtrack_Development)
  install(EXPORT jobtrackRedisTargets
    NAMESPACE jobtrack::
    FILE jobtrackRedisTargets.cmake
    DESTINATION "${JOBTRACK_INSTALL_CMAKEDIR}"
    COMPONENT jobtrack_Development)
  install(FILES "${CMAKE_CURRENT_LIST_DIR}/jobtrackRedis.cmake"
    DESTINATION "${JOBTRACK_INSTALL_CMAKEDIR}"
    COMPONENT jobtrack_Development)
endif()
