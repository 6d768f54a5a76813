# Installs the browser test's npm dependencies (package.json next to this
# file) into DIR, a folder of the build tree: run by CTest as a fixture.
# Usage: cmake -DNPM=<npm> -DDIR=<dir> -DPACKAGE_JSON=<file> -P npm_install.cmake
file(MAKE_DIRECTORY "${DIR}")
file(READ "${PACKAGE_JSON}" _wanted)
set(_installed_marker "${DIR}/.installed-package.json")
if(EXISTS "${_installed_marker}" AND EXISTS "${DIR}/node_modules/playwright-core/package.json")
  file(READ "${_installed_marker}" _installed)
  if(_installed STREQUAL _wanted)
    message(STATUS "npm dependencies already installed in ${DIR}")
    return()
  endif()
endif()
configure_file("${PACKAGE_JSON}" "${DIR}/package.json" COPYONLY)
execute_process(
  COMMAND "${NPM}" install --no-audit --no-fund --no-package-lock --loglevel=error
  WORKING_DIRECTORY "${DIR}"
  RESULT_VARIABLE _result)
if(NOT _result EQUAL 0)
  message(FATAL_ERROR "npm install in ${DIR} failed (${_result})")
endif()
file(WRITE "${_installed_marker}" "${_wanted}")
