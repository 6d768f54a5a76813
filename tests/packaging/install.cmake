# cmake -P driver for the packaging.install test (the fixture the find_package
# consumer needs): configures jobtrack the way a packager would (no tests, no
# Catch2), installs it, checks the installed tree, then moves the prefix to
# prove the package is relocatable.
#
# Inputs (-D): SOURCE_DIR WORK_DIR GENERATOR [GENERATOR_PLATFORM]
#   [GENERATOR_TOOLSET] [MAKE_PROGRAM] [CONFIG] [CONFIGURE_ARGS (list of -D
#   arguments; a ';' inside one of them is written <SEMI>)]
# Result: ${WORK_DIR}/prefix holds the installed package.
cmake_minimum_required(VERSION 3.23)

foreach(_var IN ITEMS SOURCE_DIR WORK_DIR GENERATOR)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "install.cmake: -D${_var}=... is required")
  endif()
endforeach()

set(_build "${WORK_DIR}/build")
set(_staging "${WORK_DIR}/staging")
set(_prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(_generator_args -G "${GENERATOR}")
if(GENERATOR_PLATFORM)
  list(APPEND _generator_args -A "${GENERATOR_PLATFORM}")
endif()
if(GENERATOR_TOOLSET)
  list(APPEND _generator_args -T "${GENERATOR_TOOLSET}")
endif()
if(MAKE_PROGRAM)
  list(APPEND _generator_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
# CONFIGURE_ARGS is one list; a value that is itself a list has <SEMI>.
string(REPLACE "<SEMI>" "\\;" CONFIGURE_ARGS "${CONFIGURE_ARGS}")
set(_config_args)
if(CONFIG)
  set(_config_args --config "${CONFIG}")
endif()

function(run)
  string(REPLACE ";" " " _shown "${ARGN}")
  message(STATUS "Running: ${_shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _result)
  if(NOT _result EQUAL 0)
    message(FATAL_ERROR "Command failed (${_result}): ${_shown}")
  endif()
endfunction()

run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${_build}" ${_generator_args} --no-warn-unused-cli
    -DJOBTRACK_BUILD_TESTS=OFF -DJOBTRACK_BUILD_EXAMPLES=OFF -DJOBTRACK_BUILD_BENCH=OFF
    -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON
    "-DCMAKE_INSTALL_PREFIX=${WORK_DIR}/unused-default-prefix"
    ${CONFIGURE_ARGS})
run("${CMAKE_COMMAND}" --build "${_build}" ${_config_args})
run("${CMAKE_COMMAND}" --install "${_build}" ${_config_args} --prefix "${_staging}")

# What must be there.
set(_cmakedir "${_staging}/share/cmake/jobtrack")
foreach(_file IN ITEMS
    "${_cmakedir}/jobtrackConfig.cmake"
    "${_cmakedir}/jobtrackConfigVersion.cmake"
    "${_cmakedir}/jobtrackTargets.cmake"
    "${_cmakedir}/jobtrackAsio.cmake"
    "${_staging}/include/jobtrack/jobtrack.hpp"
    "${_staging}/include/jobtrack/version.hpp")
  if(NOT EXISTS "${_file}")
    message(FATAL_ERROR "Not installed: ${_file}")
  endif()
endforeach()

# The include directory is exported outside the FILE_SET too, for consumers
# with CMake < 3.23 (see cmake/jobtrackInstall.cmake).
file(READ "${_cmakedir}/jobtrackTargets.cmake" _targets)
if(NOT _targets MATCHES "INTERFACE_INCLUDE_DIRECTORIES \"\\\$\{_IMPORT_PREFIX\}/include\"")
  message(FATAL_ERROR "jobtrackTargets.cmake sets no INTERFACE_INCLUDE_DIRECTORIES outside the FILE_SET")
endif()

# Every header of the source tree is installed, at the same relative path.
file(GLOB_RECURSE _headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/*.hpp")
foreach(_header IN LISTS _headers)
  if(NOT EXISTS "${_staging}/include/${_header}")
    message(FATAL_ERROR "Header not installed: include/${_header}")
  endif()
endforeach()

# Header-only and architecture independent: nothing under lib/.
file(GLOB _libdirs "${_staging}/lib" "${_staging}/lib64" "${_staging}/lib32")
if(_libdirs)
  message(FATAL_ERROR "A header-only install created ${_libdirs}")
endif()
# Ask the version file what find_package would, from a 32-bit project.
function(check_version requested expect_compatible)
  set(PACKAGE_FIND_VERSION "${requested}")
  string(REGEX MATCH "^[0-9]+" PACKAGE_FIND_VERSION_MAJOR "${requested}")
  set(CMAKE_SIZEOF_VOID_P 4)
  include("${_cmakedir}/jobtrackConfigVersion.cmake")
  if(PACKAGE_VERSION_UNSUITABLE)
    message(FATAL_ERROR "jobtrackConfigVersion.cmake refuses a 32-bit consumer (ARCH_INDEPENDENT missing)")
  endif()
  if(NOT PACKAGE_VERSION_COMPATIBLE STREQUAL expect_compatible)
    message(FATAL_ERROR "jobtrack ${PACKAGE_VERSION} for a request of ${requested}: "
                        "compatible=${PACKAGE_VERSION_COMPATIBLE}, expected ${expect_compatible}")
  endif()
endfunction()
file(STRINGS "${SOURCE_DIR}/include/jobtrack/version.hpp" _major REGEX "#define JOBTRACK_VERSION_MAJOR ")
string(REGEX MATCH "[0-9]+$" _major "${_major}")
math(EXPR _next_major "${_major} + 1")
check_version("${_major}" TRUE)
check_version("${_next_major}.0" FALSE)

# No absolute path of this machine's build or source tree in the package.
file(GLOB_RECURSE _installed "${_cmakedir}/*")
foreach(_file IN LISTS _installed)
  file(READ "${_file}" _text)
  foreach(_path IN ITEMS "${SOURCE_DIR}" "${WORK_DIR}")
    string(FIND "${_text}" "${_path}" _at)
    if(NOT _at EQUAL -1)
      message(FATAL_ERROR "${_file} contains the absolute path ${_path}")
    endif()
  endforeach()
endforeach()

# Relocate: the consumer uses the package from where it was moved to.
file(RENAME "${_staging}" "${_prefix}")
message(STATUS "jobtrack installed and relocated to ${_prefix}")
