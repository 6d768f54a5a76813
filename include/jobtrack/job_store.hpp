#pragma once

/// @file
/// JobStore<Result>: where a JobTracker shares its jobs with other service
/// instances (e.g. RedisJobStore in jobtrack/redis_store.hpp). Without a
/// store, a tracker keeps everything in its own memory.

#include "jobtrack/job_id.hpp"
#include "jobtrack/job_snapshot.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

namespace jobtrack {

struct ListFilter;
enum class CancelResult;

/// What a store reports to the tracker it serves. Called from the store's
/// own threads; implementations must be thread-safe.
template <class Result>
class JobStoreListener {
 public:
  virtual ~JobStoreListener() = default;
  /// A job owned by another instance changed.
  virtual void onRemoteChange(const JobSnapshot<Result>& snapshot) = 0;
  /// Another instance asks to cancel `id`; returns whether this tracker owned
  /// it (and has cancelled it).
  virtual bool onCancelRequest(const JobId& id) = 0;
};

/// A shared registry of jobs behind a JobTracker. The tracker stays the
/// authority for the jobs it runs (it serves them from memory) and tells the
/// store of every change; the store answers for the jobs of other instances.
/// Every member function must be thread-safe; `save` must not block on the
/// network (it is called on the job's hot path, under the job's lock).
template <class Result>
class JobStore {
 public:
  using Snapshot = JobSnapshot<Result>;
  virtual ~JobStore() = default;

  /// Connects the store to its tracker; called once, before any other call.
  virtual void attach(std::weak_ptr<JobStoreListener<Result>> listener) = 0;
  /// Records a change of a job this instance owns (queue it; do not block).
  virtual void save(const Snapshot& snapshot) = 0;
  /// The job as the store knows it, or nullopt (unknown, expired, or the
  /// store is unreachable).
  virtual std::optional<Snapshot> load(const JobId& id) = 0;
  /// Up to `limit` jobs matching `filter`, newest first.
  virtual std::vector<Snapshot> list(std::size_t limit, const ListFilter& filter) = 0;
  /// Asks the instance owning `id` to cancel it.
  virtual CancelResult requestCancel(const JobId& id) = 0;
};

}  // namespace jobtrack
