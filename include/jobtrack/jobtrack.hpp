#pragma once

/// @file
/// The umbrella header: everything jobtrack offers.

#include "jobtrack/errors.hpp"
#include "jobtrack/executor.hpp"
#include "jobtrack/future.hpp"
#include "jobtrack/job_id.hpp"
#include "jobtrack/job_snapshot.hpp"
#include "jobtrack/job_status.hpp"
#include "jobtrack/job_store.hpp"
#include "jobtrack/job_tracker.hpp"
#include "jobtrack/json.hpp"
#include "jobtrack/version.hpp"
