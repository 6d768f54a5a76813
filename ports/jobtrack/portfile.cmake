# vcpkg overlay port for jobtrack, built from the checkout this port lives in:
#
#   vcpkg install jobtrack --overlay-ports=<jobtrack checkout>/ports
#
# jobtrack is not published anywhere vcpkg can download it from, so instead of
# vcpkg_from_github the source is the repository two directories up (this file
# is <checkout>/ports/jobtrack/portfile.cmake). vcpkg configures it out of
# source in its buildtrees, so the checkout is only read. Once there are
# release archives, replace the SOURCE_PATH lines with:
#
#   vcpkg_from_github(
#       OUT_SOURCE_PATH SOURCE_PATH
#       REPO <owner>/jobtrack
#       REF "v${VERSION}"
#       SHA512 0  # vcpkg prints the real hash on the first run
#       HEAD_REF main
#   )
#
# NOTE: vcpkg could not be run where this port was written; it follows vcpkg's
# documentation and its own header-only ports (nlohmann-json, asio).

set(VCPKG_BUILD_TYPE release) # header-only

get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
if(NOT EXISTS "${SOURCE_PATH}/include/jobtrack/version.hpp")
    message(FATAL_ERROR
        "The jobtrack port builds the checkout it lives in, but ${SOURCE_PATH} is not a "
        "jobtrack checkout. Use it as an overlay from the checkout: "
        "--overlay-ports=<jobtrack checkout>/ports")
endif()

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DJOBTRACK_BUILD_TESTS=OFF
        -DJOBTRACK_BUILD_EXAMPLES=OFF
        -DJOBTRACK_BUILD_BENCH=OFF
        -DJOBTRACK_INSTALL=ON
)
vcpkg_cmake_install()

# The package is installed to share/cmake/jobtrack; vcpkg wants share/jobtrack.
vcpkg_cmake_config_fixup(PACKAGE_NAME jobtrack CONFIG_PATH share/cmake/jobtrack)

# Header-only: nothing for a debug tree; the licence goes to share/jobtrack/copyright.
file(REMOVE_RECURSE
    "${CURRENT_PACKAGES_DIR}/debug"
    "${CURRENT_PACKAGES_DIR}/share/doc"
)

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
