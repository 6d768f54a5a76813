#pragma once

/// @file
/// Recycled storage for the small objects every job allocates (its record,
/// future states, timeout bookkeeping, continuations too large to be kept
/// inline).
///
/// A job is typically created on one thread and finished on another, so its
/// objects are allocated on the first and freed on the second. With plain
/// malloc every such free takes the allocating thread's arena lock, which the
/// allocating thread needs too. Here each thread keeps the blocks it frees;
/// a thread with too many hands a batch of them to a shared depot, and a
/// thread with none takes a batch from it: one lock per 64 blocks.

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

#if __has_include(<pthread.h>) && !defined(_WIN32)
#define JOBTRACK_DETAIL_DEPOT_ATFORK 1
#include <pthread.h>
#else
#define JOBTRACK_DETAIL_DEPOT_ATFORK 0
#endif

namespace jobtrack::detail {

// Sanitizers see every allocation of their own: AddressSanitizer so that a
// use after free is reported, ThreadSanitizer so that a recycled block does
// not link unrelated objects by happens-before and hide a race.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool recycleBlocks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool recycleBlocks = false;
#else
inline constexpr bool recycleBlocks = true;
#endif
#else
inline constexpr bool recycleBlocks = true;
#endif

/// A cache of free blocks of `Size` bytes, shared by every type of that size.
/// Thread-safe. Holds at most 2 batches per thread and 16 batches in the
/// depot (64 blocks each); a thread's blocks are released when it exits.
template <std::size_t Size>
class BlockCache {
 public:
  static constexpr std::size_t batchSize = 64;
  static constexpr std::size_t depotBatches = 16;

  /// A block of `Size` bytes aligned for any fundamental type.
  [[nodiscard]] static void* allocate() {
    Local& local = localCache();
    if (local.head == nullptr && !local.exited) refill(local);
    if (FreeBlock* block = local.head) {
      local.head = block->next;
      --local.count;
      return block;
    }
    return ::operator new(Size);
  }

  /// Takes back a block from allocate(), on any thread.
  static void deallocate(void* pointer) noexcept {
    Local& local = localCache();
    if (local.exited) {
      ::operator delete(pointer);
      return;
    }
    watchExit(local);
    local.head = new (pointer) FreeBlock{local.head};
    if (++local.count == 2 * batchSize) spill(local);
  }

  /// Blocks now waiting in the depot (for tests).
  [[nodiscard]] static std::size_t depotBlocks() {
    Depot& shared = depot();
    std::lock_guard lock(shared.mutex);
    return shared.size * batchSize;
  }

  /// Blocks now cached by the calling thread (for tests).
  [[nodiscard]] static std::size_t threadBlocks() noexcept { return localCache().count; }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  static_assert(Size >= sizeof(FreeBlock));

  // Trivial, so that a thread's cache costs no guard on each use.
  struct Local {
    FreeBlock* head;
    std::size_t count;
    bool watched;  // the exit flush is registered
    bool exited;   // the exit flush ran: blocks go straight back to the heap
  };

  struct Depot {
    std::mutex mutex;
    std::array<FreeBlock*, depotBatches> batches{};  // each a list of batchSize blocks
    std::size_t size = 0;
  };

  static Local& localCache() noexcept {
    static thread_local Local local{};
    return local;
  }

  static Depot& depot() {
    // Never destroyed: threads may free blocks after static destruction began.
    static Depot* const shared = [] {
      auto* created = new Depot;
#if JOBTRACK_DETAIL_DEPOT_ATFORK
      // A child forked while another thread held the lock must not inherit
      // it locked. Registration fails only for lack of memory; the depot
      // then still works, only not across a fork.
      static_cast<void>(::pthread_atfork([] { depot().mutex.lock(); },
                                         [] { depot().mutex.unlock(); },
                                         [] { depot().mutex.unlock(); }));
#endif
      return created;
    }();
    return *shared;
  }

  static void releaseList(FreeBlock* head) noexcept {
    while (head != nullptr) {
      FreeBlock* next = head->next;
      ::operator delete(static_cast<void*>(head));
      head = next;
    }
  }

  /// Registers, once per thread, the flush that runs when the thread exits.
  static void watchExit(Local& local) noexcept {
    if (local.watched) return;
    local.watched = true;
    struct ExitFlush {
      ~ExitFlush() {
        Local& cache = localCache();
        releaseList(cache.head);
        cache.head = nullptr;
        cache.count = 0;
        cache.exited = true;
      }
    };
    static thread_local ExitFlush flush;
    (void)flush;
  }

  static void refill(Local& local) {
    Depot& shared = depot();
    {
      std::lock_guard lock(shared.mutex);
      if (shared.size == 0) return;
      local.head = shared.batches[--shared.size];
    }
    local.count = batchSize;
    watchExit(local);
  }

  /// Moves one batch from the thread's cache to the depot (or to the heap
  /// when the depot is full).
  static void spill(Local& local) noexcept {
    FreeBlock* batch = local.head;
    FreeBlock* last = batch;
    for (std::size_t i = 1; i < batchSize; ++i) last = last->next;
    local.head = last->next;
    last->next = nullptr;
    local.count -= batchSize;
    Depot& shared = depot();
    {
      std::lock_guard lock(shared.mutex);
      if (shared.size < depotBatches) {
        shared.batches[shared.size++] = batch;
        return;
      }
    }
    releaseList(batch);
  }
};

/// An allocator that takes single small objects from a BlockCache (and
/// anything else from operator new). Stateless: all instances are equal.
template <class T>
class RecyclingAllocator {
 public:
  using value_type = T;

  RecyclingAllocator() noexcept = default;
  // Implicit, as the Allocator requirements want for rebinding.
  template <class U>
  RecyclingAllocator(const RecyclingAllocator<U>& /*other*/) noexcept {}  // NOLINT

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n == 1 && cached) return static_cast<T*>(BlockCache<blockSize>::allocate());
    return std::allocator<T>{}.allocate(n);  // honours over-alignment
  }

  void deallocate(T* pointer, std::size_t n) noexcept {
    if (n == 1 && cached) {
      BlockCache<blockSize>::deallocate(pointer);
    } else {
      std::allocator<T>{}.deallocate(pointer, n);
    }
  }

  template <class U>
  friend bool operator==(const RecyclingAllocator& /*a*/, const RecyclingAllocator<U>& /*b*/) {
    return true;
  }

 private:
  // Sizes rounded up to 16 bytes, so that similar types share a cache.
  static constexpr std::size_t blockSize = (sizeof(T) + 15) / 16 * 16;
  static constexpr bool cached =
      recycleBlocks && blockSize <= 1024 && alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__;
};

/// std::make_shared with the object and its count in recycled storage.
template <class T, class... Args>
std::shared_ptr<T> makeRecycled(Args&&... args) {
  return std::allocate_shared<T>(RecyclingAllocator<T>{}, std::forward<Args>(args)...);
}

}  // namespace jobtrack::detail
