# Install rules and the CMake package (find_package(jobtrack CONFIG)).
#
# Layout under the install prefix:
#   include/jobtrack/...                     the headers (FILE_SET HEADERS)
#   share/cmake/jobtrack/jobtrackConfig.cmake
#                        jobtrackConfigVersion.cmake
#                        jobtrackTargets.cmake  (jobtrack::jobtrack)
#                        jobtrackAsio.cmake     (finds Asio for consumers)
#
# jobtrack is header-only, so the package is architecture independent and
# lives under share/ (DATADIR), not lib/; the version file says so
# (ARCH_INDEPENDENT), which lets a 32-bit consumer use a package installed by a
# 64-bit build.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(JOBTRACK_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/jobtrack"
    CACHE STRING "Where to install jobtrack's CMake package files (relative to the prefix)")
mark_as_advanced(JOBTRACK_INSTALL_CMAKEDIR)

# INCLUDES DESTINATION as well as the FILE_SET: the exported FILE_SET is only
# read by CMake >= 3.23 (the generated file skips it for older versions), and
# a consumer of the installed package may have an older CMake (Ubuntu 22.04
# ships 3.22). INCLUDES writes a plain INTERFACE_INCLUDE_DIRECTORIES.
install(TARGETS jobtrack
  EXPORT jobtrackTargets
  FILE_SET HEADERS DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT jobtrack_Development
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

install(EXPORT jobtrackTargets
  NAMESPACE jobtrack::
  FILE jobtrackTargets.cmake
  DESTINATION "${JOBTRACK_INSTALL_CMAKEDIR}"
  COMPONENT jobtrack_Development)

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/jobtrackConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/jobtrackConfig.cmake"
  INSTALL_DESTINATION "${JOBTRACK_INSTALL_CMAKEDIR}"
  NO_SET_AND_CHECK_MACRO
  NO_CHECK_REQUIRED_COMPONENTS_MACRO)

write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/jobtrackConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)

install(FILES
  "${PROJECT_BINARY_DIR}/jobtrackConfig.cmake"
  "${PROJECT_BINARY_DIR}/jobtrackConfigVersion.cmake"
  "${CMAKE_CURRENT_LIST_DIR}/jobtrackAsio.cmake"
  DESTINATION "${JOBTRACK_INSTALL_CMAKEDIR}"
  COMPONENT jobtrack_Development)

if(EXISTS "${PROJECT_SOURCE_DIR}/LICENSE")
  install(FILES "${PROJECT_SOURCE_DIR}/LICENSE"
    DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/jobtrack"
    COMPONENT jobtrack_Development)
endif()
