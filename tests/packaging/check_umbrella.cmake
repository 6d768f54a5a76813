# cmake -P driver for the headers.umbrella test: the umbrella header
# include/jobtrack/jobtrack.hpp must include every other public header
# (include/jobtrack/*.hpp; detail/ is private).
# Input: -DINCLUDE_DIR=<source>/include
#        -DOPTIONAL_HEADERS=<list> headers (e.g. jobtrack/redis_store.hpp)
#        that need an optional dependency: the umbrella need not include them
cmake_minimum_required(VERSION 3.23)

set(_umbrella "${INCLUDE_DIR}/jobtrack/jobtrack.hpp")
if(NOT EXISTS "${_umbrella}")
  message(FATAL_ERROR "No umbrella header ${_umbrella}")
endif()
file(READ "${_umbrella}" _text)
file(GLOB _headers RELATIVE "${INCLUDE_DIR}" "${INCLUDE_DIR}/jobtrack/*.hpp")
set(_missing)
foreach(_header IN LISTS _headers)
  if(_header STREQUAL "jobtrack/jobtrack.hpp" OR _header IN_LIST OPTIONAL_HEADERS)
    continue()
  endif()
  string(REPLACE "." "\\." _re "${_header}")
  if(NOT _text MATCHES "#[ \t]*include[ \t]*[<\"]${_re}[>\"]")
    list(APPEND _missing "${_header}")
  endif()
endforeach()
if(_missing)
  string(REPLACE ";" ", " _missing "${_missing}")
  message(FATAL_ERROR "jobtrack/jobtrack.hpp does not include: ${_missing}")
endif()
list(LENGTH _headers _count)
message(STATUS "jobtrack/jobtrack.hpp includes all ${_count} public headers (itself counted)")
