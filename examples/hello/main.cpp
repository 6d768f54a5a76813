// The terminal demo: the seed's HelloService jobs, submitted at once and
// polled while they run, with a live progress bar per job.
//
//   hello_demo [--fast]
//
// --fast scales every duration down (CTest runs it that way). Exits 0 when
// every job ended as the seed design says it should, 1 otherwise.

#include "hello_service.hpp"
#include <jobtrack/jobtrack.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using jobtrack::JobId;
using jobtrack::JobStatus;
using Snapshot = jobtrack::JobSnapshot<nlohmann::json>;

struct Expectation {
  JobStatus status;
  nlohmann::json result;  // checked when status is Completed
};

std::string bar(int percent, int width) {
  const int filled = percent * width / 100;
  return std::string(static_cast<std::size_t>(filled), '#') +
         std::string(static_cast<std::size_t>(width - filled), '-');
}

std::string line(const Snapshot& s) {
  char text[160];
  std::snprintf(
      text, sizeof text, "%-14s %-10s [%s] %3d%%  %s", s.name.c_str(),
      std::string(jobtrack::toString(s.status)).c_str(), bar(s.progress, 30).c_str(), s.progress,
      s.error ? s.error->c_str() : (s.result ? s.result->dump().c_str() : s.message.c_str()));
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  double timeScale = 1.0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--fast") {
      timeScale = 0.05;
    } else {
      std::cerr << "usage: hello_demo [--fast]\n";
      return 2;
    }
  }
  const bool terminal = isatty(STDOUT_FILENO) != 0;

  jobtrack::AsyncExecutor executor;
  jobtrack::JobTracker<> tracker(executor);
  jobtrack::examples::HelloService hello(executor, tracker, timeScale);

  // In submission order, with what the seed design says each should give.
  const std::vector<std::pair<JobId, Expectation>> jobs = {
      {hello.startHelloJob("john"), {JobStatus::Completed, "Hello, John!"}},
      {hello.startComposeHelloJob("john"), {JobStatus::Completed, "hello John (composed)"}},
      {hello.startRaceJob(), {JobStatus::Completed, "Fast hello"}},
      {hello.startAllJob(),
       {JobStatus::Completed, {"Hello, Ada!", "Hello, Alan!", "Hello, Grace!"}}},
      {hello.startTimeoutJob(), {JobStatus::Failed, nullptr}},
      {hello.startFallbackJob(), {JobStatus::Completed, "Fallback hello"}},
  };
  std::cout << "Submitted " << jobs.size() << " jobs; polling until they finish.\n" << std::flush;

  const auto pollInterval = std::chrono::milliseconds(terminal ? 100 : 20);
  std::map<JobId, std::pair<JobStatus, int>> lastShown;
  bool drawn = false;
  for (;;) {
    bool allDone = true;
    std::vector<Snapshot> snapshots;
    for (const auto& [id, expected] : jobs) {
      auto snapshot = hello.getJob(id);
      if (!snapshot) {
        std::cerr << "job " << id << " vanished\n";
        return 1;
      }
      allDone = allDone && jobtrack::isTerminal(snapshot->status);
      snapshots.push_back(std::move(*snapshot));
    }
    if (terminal) {
      // Redraw the block of bars in place.
      if (drawn) std::cout << "\x1b[" << snapshots.size() << "A";
      for (const auto& s : snapshots) std::cout << "\x1b[2K" << line(s) << "\n";
      drawn = true;
    } else {
      // Plain lines, one per status or progress-decile change.
      for (const auto& s : snapshots) {
        const auto shown = std::make_pair(s.status, s.progress / 10);
        if (lastShown[s.id] != shown) {
          lastShown[s.id] = shown;
          std::cout << line(s) << "\n";
        }
      }
    }
    std::cout << std::flush;
    if (allDone) break;
    std::this_thread::sleep_for(pollInterval);
  }

  std::cout << "\nFinal snapshots:\n";
  bool asExpected = true;
  for (const auto& [id, expected] : jobs) {
    const auto snapshot = *hello.getJob(id);
    std::cout << nlohmann::json(snapshot).dump(2) << "\n";
    const bool ok = snapshot.status == expected.status &&
                    (expected.status != JobStatus::Completed || snapshot.result == expected.result);
    if (!ok) {
      std::cerr << "unexpected outcome for " << snapshot.name << "\n";
      asExpected = false;
    }
  }
  const auto stats = executor.stats();
  std::cout << "\nExecutor: " << stats.submitted << " tasks, " << stats.completed << " completed, "
            << stats.failed << " failed, " << stats.cancelled
            << " cancelled (race losers and the timed-out task)\n";
  std::cout << (asExpected ? "All jobs ended as expected.\n"
                           : "Some jobs did not end as expected.\n");
  return asExpected ? 0 : 1;
}
