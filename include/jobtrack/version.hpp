#pragma once

/// @file
/// The library version, defined once; CMake reads it from here.

#define JOBTRACK_VERSION_MAJOR 0
#define JOBTRACK_VERSION_MINOR 1
#define JOBTRACK_VERSION_PATCH 0

namespace jobtrack {

/// The library version as "MAJOR.MINOR.PATCH".
inline constexpr const char* versionString = "0.1.0";

}  // namespace jobtrack
