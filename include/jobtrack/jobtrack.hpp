#pragma once

/// @file
/// The umbrella header: everything jobtrack offers.

#include "jobtrack/version.hpp"
