/// @file
/// jobtrack_bench: what tracking costs, each figure next to its floor
/// measured in the same process run, as a ratio. See docs/benchmarks.md.

#include "harness.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <malloc.h>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bench = jobtrack::bench;

namespace {

constexpr std::string_view usage =
    "Usage: jobtrack_bench [options]\n"
    "  --smoke                 tiny sizes (a quick check that every figure runs)\n"
    "  --figures LIST          comma-separated subset of 1,2,3,4,5 (default all)\n"
    "  --tsv FILE              also write the rows to FILE, tab-separated\n"
    "  --threads N             pool size for figure 1 (default 2)\n"
    "  --throughput-jobs N     figure 1 jobs (default 1000000)\n"
    "  --async-jobs N          figure 1 std::async tasks (default 20000)\n"
    "  --tracker-keep N        figure 1 maxFinishedJobs (default 10000)\n"
    "  --inflight-jobs N       figure 2 jobs (default 1000000)\n"
    "  --hold-ms N             figure 2 minimum timer wait (default 1000)\n"
    "  --registry-jobs N       figure 3 large registry (default 1000000)\n"
    "  --registry-small N      figure 3 small registry (default 10000)\n"
    "  --lookups N             figure 3 get() samples (default 200000)\n"
    "  --list-calls N          figure 3 list(50) samples (default 2000)\n"
    "  --timeout-jobs N        figure 4 jobs (default 10000)\n"
    "  --blocking-threads N    figure 4 blocking pool size (default 32)\n"
    "  --races N               figure 5 races (default 200)\n"
    "  --check-us N            figure 5 busy work between stop checks (default 100)\n";

std::size_t number(std::string_view flag, std::string_view text) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    throw std::invalid_argument(std::string(flag) + " needs a non-negative integer, not '" +
                                std::string(text) + "'");
  }
  return value;
}

std::vector<int> figureList(std::string_view text) {
  std::vector<int> figures;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto n = number("--figures", text.substr(0, comma));
    if (n < 1 || n > 5) throw std::invalid_argument("--figures takes numbers 1 to 5");
    figures.push_back(static_cast<int>(n));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return figures;
}

void applySmoke(bench::Config& c) {
  c.throughputJobs = 2'000;
  c.asyncJobs = 200;
  c.trackerKeep = 500;
  c.inflightJobs = 2'000;
  c.hold = std::chrono::milliseconds(100);
  c.registryJobs = 3'000;
  c.registrySmall = 300;
  c.lookups = 2'000;
  c.listCalls = 50;
  c.timeoutJobs = 200;
  c.blockingThreads = 4;
  c.races = 5;
}

bench::Config parse(int argc, char** argv) {
  bench::Config c;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  // --smoke first, so explicit sizes given with it still win.
  for (auto arg : args) {
    if (arg == "--smoke") applySmoke(c);
  }
  std::map<std::string_view, std::size_t*> sizes{
      {"--threads", &c.threads},
      {"--throughput-jobs", &c.throughputJobs},
      {"--async-jobs", &c.asyncJobs},
      {"--tracker-keep", &c.trackerKeep},
      {"--inflight-jobs", &c.inflightJobs},
      {"--registry-jobs", &c.registryJobs},
      {"--registry-small", &c.registrySmall},
      {"--lookups", &c.lookups},
      {"--list-calls", &c.listCalls},
      {"--timeout-jobs", &c.timeoutJobs},
      {"--blocking-threads", &c.blockingThreads},
      {"--races", &c.races},
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto flag = args[i];
    if (flag == "--smoke") continue;
    if (flag == "--help" || flag == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (i + 1 >= args.size())
      throw std::invalid_argument("unknown flag or missing value: " + std::string(flag));
    const auto value = args[++i];
    if (auto it = sizes.find(flag); it != sizes.end()) {
      *it->second = number(flag, value);
    } else if (flag == "--figures") {
      c.figures = figureList(value);
    } else if (flag == "--tsv") {
      c.tsvPath = std::string(value);
    } else if (flag == "--hold-ms") {
      c.hold = std::chrono::milliseconds(number(flag, value));
    } else if (flag == "--check-us") {
      c.checkEvery = std::chrono::microseconds(number(flag, value));
    } else {
      throw std::invalid_argument("unknown flag: " + std::string(flag));
    }
  }
  if (c.threads == 0 || c.blockingThreads < 4)
    throw std::invalid_argument("--threads >= 1, --blocking-threads >= 4");
  return c;
}

std::string formatValue(double v) {
  char buffer[64];
  if (v != 0 && (v >= 1e6 || v < 0.01)) {
    std::snprintf(buffer, sizeof buffer, "%.3g", v);
  } else if (v >= 1000) {
    std::snprintf(buffer, sizeof buffer, "%.0f", v);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3g", v);
  }
  return buffer;
}

std::string metText(const bench::Row& row) {
  if (!row.met) return "-";
  return *row.met ? "yes" : "NO";
}

void printTable(const std::vector<bench::Row>& rows) {
  std::printf("%-14s %-44s %12s %12s %-12s %-26s %8s  %-26s %s\n", "figure", "metric", "ours",
              "baseline", "unit", "baseline is", "ratio", "goal", "met?");
  for (const auto& row : rows) {
    std::printf("%-14s %-44s %12s %12s %-12s %-26s %8s  %-26s %s\n", row.figure.c_str(),
                row.metric.c_str(), formatValue(row.ours).c_str(),
                formatValue(row.baseline).c_str(), row.unit.c_str(), row.baselineName.c_str(),
                row.baseline != 0 ? formatValue(row.ratio()).c_str() : "-",
                row.goal.empty() ? "-" : row.goal.c_str(), metText(row).c_str());
    if (!row.note.empty()) std::printf("%-14s   note: %s\n", "", row.note.c_str());
  }
}

void writeTsv(const std::string& path, const std::vector<bench::Row>& rows) {
  std::ofstream out(path);
  out << "figure\tmetric\tours\tbaseline\tunit\tbaseline_is\tratio\tgoal\tmet\tnote\n";
  for (const auto& row : rows) {
    out << row.figure << '\t' << row.metric << '\t' << row.ours << '\t' << row.baseline << '\t'
        << row.unit << '\t' << row.baselineName << '\t'
        << (row.baseline != 0 ? formatValue(row.ratio()) : "-") << '\t'
        << (row.goal.empty() ? "-" : row.goal) << '\t' << metText(row) << '\t' << row.note << '\n';
  }
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto config = parse(argc, argv);
    std::vector<bench::Row> rows;
    // Figure 2 forks its measuring children: run it first, while this
    // process has no threads and a fresh heap, whatever order was asked.
    std::vector<int> order = config.figures;
    std::stable_partition(order.begin(), order.end(), [](int f) { return f == 2; });
    std::map<int, std::vector<bench::Row>> byFigure;
    for (int figure : order) {
      std::fprintf(stderr, "jobtrack_bench: figure %d...\n", figure);
      malloc_trim(0);
      auto& out = byFigure[figure];
      switch (figure) {
        case 1:
          bench::figureThroughput(config, out);
          break;
        case 2:
          bench::figureMemory(config, out);
          break;
        case 3:
          bench::figureRegistry(config, out);
          break;
        case 4:
          bench::figureTimers(config, out);
          break;
        case 5:
          bench::figureRace(config, out);
          break;
        default:
          break;
      }
    }
    for (auto& [figure, figureRows] : byFigure)
      rows.insert(rows.end(), figureRows.begin(), figureRows.end());
    printTable(rows);
    if (!config.tsvPath.empty()) writeTsv(config.tsvPath, rows);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "jobtrack_bench: %s\n", e.what());
    return 2;
  }
}
