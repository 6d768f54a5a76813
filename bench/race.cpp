/// @file
/// Figure 5: executeAny of a fast task and two slow cooperative ones. How
/// long do the losers keep burning CPU once the winner has returned? Next to
/// a hand-rolled race: three threads sharing one std::stop_source that the
/// winner signals itself.

#include "harness.hpp"
#include <jobtrack/jobtrack.hpp>

#include <memory>
#include <stop_token>
#include <thread>

namespace jobtrack::bench {
namespace {

/// What one loser saw: a (wall, thread CPU) pair at every stop check.
struct LoserLog {
  struct Check {
    Clock::time_point wall;
    std::chrono::nanoseconds cpu;
  };
  std::vector<Check> checks;
  Clock::time_point stopRequestedAt{};  ///< when the stop token was signalled (by whichever thread)
};

/// Busy work of `slice` thread-CPU time, then a stop check; repeated until
/// the token is signalled (or 10 000 checks, a safety net).
int loser(const std::stop_token& stop, LoserLog& log, std::chrono::microseconds slice,
          std::atomic<int>& entered) {
  log.checks.reserve(10'000);
  // Runs on the thread that requests the stop: the moment the library acted.
  std::stop_callback onStop(stop, [&log] { log.stopRequestedAt = Clock::now(); });
  entered.fetch_add(1);
  for (int i = 0; i < 10'000; ++i) {
    const auto until = threadCpuTime() + slice;
    while (threadCpuTime() < until) {
    }
    log.checks.push_back({Clock::now(), threadCpuTime()});
    if (stop.stop_requested()) break;
  }
  return 0;
}

/// The winner: once both losers run, returns after 2 ms of sleep (leaving
/// the CPU to the losers).
int winner(Clock::time_point& wonAt, const std::atomic<int>& entered) {
  waitUntil([&] { return entered.load() == 2; });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  wonAt = Clock::now();
  return 1;
}

struct AfterWin {
  std::size_t checks = 0;  ///< checks that started after the win (the one that saw stop included)
  double cpuMicros = 0;    ///< CPU burnt after the win (estimate, see below)
};

AfterWin afterWin(const LoserLog& log, Clock::time_point wonAt, std::chrono::microseconds slice) {
  AfterWin result;
  if (log.checks.empty()) return result;
  // The last check at or before the win; CPU since then, minus the part of
  // the slice that ran before the win.
  LoserLog::Check last{wonAt, log.checks.front().cpu - slice};
  for (const auto& check : log.checks) {
    if (check.wall <= wonAt) {
      last = check;
    } else {
      ++result.checks;
    }
  }
  const auto beforeWin = std::min<Clock::duration>(wonAt - last.wall, slice);
  const auto cpu = log.checks.back().cpu - last.cpu - beforeWin;
  result.cpuMicros = std::max(0.0, micros(cpu));
  return result;
}

struct Summary {
  double meanCpuMicros = 0;
  std::size_t maxChecks = 0;
  double meanChecks = 0;
  std::vector<double> propagationMicros;  ///< per loser: win until its stop was requested
};

template <class RunOne>
Summary summarise(std::size_t races, std::chrono::microseconds slice, RunOne runOne) {
  Summary summary;
  std::size_t losers = 0;
  for (std::size_t r = 0; r < races; ++r) {
    LoserLog a;
    LoserLog b;
    Clock::time_point wonAt;
    std::atomic<int> entered{0};
    runOne(a, b, wonAt, entered);
    for (const auto* log : {&a, &b}) {
      const auto after = afterWin(*log, wonAt, slice);
      summary.meanCpuMicros += after.cpuMicros;
      summary.meanChecks += static_cast<double>(after.checks);
      summary.maxChecks = std::max(summary.maxChecks, after.checks);
      summary.propagationMicros.push_back(micros(log->stopRequestedAt - wonAt));
      ++losers;
    }
  }
  summary.meanCpuMicros /= static_cast<double>(losers);
  summary.meanChecks /= static_cast<double>(losers);
  return summary;
}

}  // namespace

void figureRace(const Config& config, std::vector<Row>& rows) {
  const auto slice = config.checkEvery;
  AsyncExecutor executor(ExecutorOptions{.coreThreads = 2, .blockingThreads = 4});
  const auto ours =
      summarise(config.races, slice,
                [&](LoserLog& a, LoserLog& b, Clock::time_point& wonAt, std::atomic<int>& entered) {
                  std::atomic<int> stopped{0};
                  auto slow = [&stopped, &entered, slice](LoserLog& log) {
                    return [&stopped, &entered, &log, slice](std::stop_token stop) {
                      const int value = loser(stop, log, slice, entered);
                      stopped.fetch_add(1);
                      return value;
                    };
                  };
                  auto race = executor.executeAny(
                      [&wonAt, &entered] { return winner(wonAt, entered); }, slow(a), slow(b));
                  if (race.get() != 1)
                    throw std::runtime_error("figure 5: the fast task did not win");
                  // The losers run on, detached: wait until both have stopped before their logs go.
                  waitUntil([&] { return stopped.load() == 2; });
                });
  const auto base =
      summarise(config.races, slice,
                [&](LoserLog& a, LoserLog& b, Clock::time_point& wonAt, std::atomic<int>& entered) {
                  std::stop_source stop;
                  std::jthread fast([&] {
                    winner(wonAt, entered);
                    stop.request_stop();
                  });
                  std::jthread slowA([&] { loser(stop.get_token(), a, slice, entered); });
                  std::jthread slowB([&] { loser(stop.get_token(), b, slice, entered); });
                });

  const std::string fig = "5 race";
  const std::string context = std::to_string(config.races) + " races; a stop check every " +
                              std::to_string(slice.count()) + " us of CPU; mean checks after win " +
                              fixed(ours.meanChecks) + " (hand-rolled " + fixed(base.meanChecks) +
                              ")";
  rows.push_back(Row{fig,
                     "loser CPU after the win (mean)",
                     ours.meanCpuMicros,
                     base.meanCpuMicros,
                     "us",
                     "shared std::stop_source",
                     "",
                     {},
                     context});
  Row checks{fig,
             "loser checks after the win (max)",
             static_cast<double>(ours.maxChecks),
             static_cast<double>(base.maxChecks),
             "checks",
             "shared std::stop_source",
             "ours <= 1",
             {},
             ""};
  checks.met = ours.maxChecks <= 1;
  rows.push_back(checks);
  auto oursPropagation = ours.propagationMicros;
  auto basePropagation = base.propagationMicros;
  rows.push_back(Row{fig,
                     "win until losers' stop requested, median",
                     quantile(oursPropagation, 0.5),
                     quantile(basePropagation, 0.5),
                     "us",
                     "shared std::stop_source",
                     "",
                     {},
                     ""});
  rows.push_back(
      Row{fig,
          "win until losers' stop requested, max",
          quantile(oursPropagation, 1.0),
          quantile(basePropagation, 1.0),
          "us",
          "shared std::stop_source",
          "",
          {},
          "a max far above the median is the winner's thread being preempted, on either side"});
}

}  // namespace jobtrack::bench
