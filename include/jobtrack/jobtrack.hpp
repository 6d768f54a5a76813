#pragma once

/// @file
/// The umbrella header: everything jobtrack offers.

#include "jobtrack/errors.hpp"
#include "jobtrack/executor.hpp"
#include "jobtrack/future.hpp"
#include "jobtrack/version.hpp"
