// Tests for detail::BlockCache and detail::RecyclingAllocator: blocks freed
// on one thread serve allocations on another, the caches stay bounded, a
// thread's blocks are released when it exits, and containers and shared
// pointers work on top of the allocator.

#include "jobtrack/detail/recycling_allocator.hpp"

#include "catch.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

using jobtrack::detail::BlockCache;
using jobtrack::detail::makeRecycled;
using jobtrack::detail::RecyclingAllocator;

namespace {

// A size no library type uses, so that these tests own their cache.
using Cache = BlockCache<4032>;
constexpr std::size_t batch = Cache::batchSize;

std::vector<void*> allocateMany(std::size_t n) {
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < n; ++i) {
    blocks.push_back(Cache::allocate());
    std::memset(blocks.back(), 0xab, 4032);  // the whole block is usable
  }
  return blocks;
}

/// Empties the depot (blocks left by an earlier test case in this process).
void drainDepot() {
  std::vector<void*> drained;
  while (Cache::depotBlocks() != 0) drained.push_back(Cache::allocate());
  for (void* block : drained) ::operator delete(block);
}

}  // namespace

TEST_CASE("blocks freed on one thread are reused by another through the depot") {
  drainDepot();
  std::vector<void*> blocks = allocateMany(4 * batch);
  const std::set<void*> allocated(blocks.begin(), blocks.end());
  REQUIRE(allocated.size() == blocks.size());

  std::size_t keptByFreer = 0;
  std::size_t inDepotWhileFreerRan = 0;
  std::thread freer([&] {
    for (void* block : blocks) Cache::deallocate(block);
    keptByFreer = Cache::threadBlocks();
    inDepotWhileFreerRan = Cache::depotBlocks();
  });
  freer.join();
  // Whole batches went to the depot; less than two stayed with the freer.
  CHECK(keptByFreer < 2 * batch);
  CHECK(inDepotWhileFreerRan + keptByFreer == 4 * batch);
  // The freeing thread exited: its own leftovers went back to the heap.
  const std::size_t inDepot = Cache::depotBlocks();
  REQUIRE(inDepot >= batch);

  std::vector<void*> again;
  for (std::size_t i = 0; i < inDepot; ++i) again.push_back(Cache::allocate());
  CHECK(Cache::depotBlocks() == 0);
  for (void* block : again) CHECK(allocated.contains(block));
  for (void* block : again) Cache::deallocate(block);
}

TEST_CASE("a thread's cache and the depot stay bounded") {
  drainDepot();
  std::size_t keptByWorker = 0;
  std::thread worker([&] {
    std::vector<void*> blocks = allocateMany(40 * batch);
    for (void* block : blocks) Cache::deallocate(block);
    keptByWorker = Cache::threadBlocks();
  });
  worker.join();
  CHECK(keptByWorker < 2 * batch);
  CHECK(Cache::depotBlocks() == Cache::depotBatches * batch);
  drainDepot();
}

TEST_CASE("threads that only allocate and threads that only free share the blocks") {
  constexpr int pairs = 2;
  constexpr int perProducer = 5000;
  std::mutex mutex;
  std::deque<int*> queue;
  int producing = pairs;
  std::atomic<int> corrupted{0};  // Catch's assertions are not thread-safe
  std::vector<std::thread> threads;
  for (int p = 0; p < pairs; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < perProducer; ++i) {
        auto* block = static_cast<int*>(Cache::allocate());
        *block = p;
        std::lock_guard lock(mutex);
        queue.push_back(block);
      }
      std::lock_guard lock(mutex);
      --producing;
    });
    threads.emplace_back([&] {
      for (;;) {
        int* block = nullptr;
        {
          std::lock_guard lock(mutex);
          if (queue.empty()) {
            if (producing == 0) return;
          } else {
            block = queue.front();
            queue.pop_front();
          }
        }
        if (block == nullptr) {
          std::this_thread::yield();
          continue;
        }
        if (*block < 0 || *block >= pairs) ++corrupted;
        Cache::deallocate(block);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(corrupted == 0);
  CHECK(Cache::depotBlocks() <= Cache::depotBatches * batch);
}

TEST_CASE("RecyclingAllocator serves containers and shared pointers") {
  using Alloc = RecyclingAllocator<std::pair<const int, std::string>>;
  std::unordered_map<int, std::string, std::hash<int>, std::equal_to<int>, Alloc> map;
  for (int i = 0; i < 1000; ++i) map.emplace(i, std::to_string(i));
  for (int i = 0; i < 1000; i += 2) map.erase(i);
  CHECK(map.size() == 500);
  CHECK(map.at(999) == "999");

  struct Counted {
    explicit Counted(std::atomic<int>& live) : live(live) { ++live; }
    ~Counted() { --live; }
    std::atomic<int>& live;
    std::array<char, 200> payload{};
  };
  std::atomic<int> live{0};
  {
    std::vector<std::shared_ptr<Counted>> pointers;
    for (int i = 0; i < 300; ++i) pointers.push_back(makeRecycled<Counted>(live));
    CHECK(live == 300);
    std::weak_ptr<Counted> weak = pointers.front();
    std::thread([moved = std::move(pointers)]() mutable { moved.clear(); }).join();
    CHECK(live == 0);
    CHECK(weak.expired());
  }
  CHECK(RecyclingAllocator<int>{} == RecyclingAllocator<double>{});
}

TEST_CASE("RecyclingAllocator honours over-aligned types") {
  struct alignas(64) CacheLine {
    std::array<char, 64> bytes{};
  };
  std::vector<std::shared_ptr<CacheLine>> lines;
  for (int i = 0; i < 100; ++i) {
    lines.push_back(makeRecycled<CacheLine>());
    CHECK(reinterpret_cast<std::uintptr_t>(lines.back().get()) % 64 == 0);
  }
  std::vector<CacheLine, RecyclingAllocator<CacheLine>> vector(10);
  CHECK(reinterpret_cast<std::uintptr_t>(vector.data()) % 64 == 0);
}

TEST_CASE("a forked child can use the caches") {
  // Forked while this process has one thread, so the child may allocate.
  std::vector<void*> blocks = allocateMany(3 * batch);
  for (void* block : blocks) Cache::deallocate(block);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The depot's lock was taken around the fork and released in the child.
    std::vector<void*> again = allocateMany(4 * batch);
    for (void* block : again) Cache::deallocate(block);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
