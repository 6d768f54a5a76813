#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace jobtrack::detail {

/// A FIFO queue in one circular buffer: unlike std::deque, a steady stream
/// of pushes and pops allocates nothing. (A deque allocates a block every
/// few pushes and frees it on another thread's pop: a cross-thread free that
/// takes malloc's arena lock.) The buffer doubles when full and halves when
/// three quarters are unused, down to `minCapacity`, so a burst is given
/// back once it drains.
///
/// Growing or shrinking moves every queued element, under whatever lock
/// guards the queue: linear in the queue's length, amortised over as many
/// pushes or pops.
///
/// Not thread-safe: the owner guards it. A popped slot is reset to T{} at
/// once, so it holds no resources. A moved-from queue is empty.
template <class T, std::size_t minCapacity = 64>
class RingQueue {
  static_assert(minCapacity > 0 && (minCapacity & (minCapacity - 1)) == 0,
                "minCapacity is a power of two");
  static_assert(std::is_nothrow_move_assignable_v<T>, "elements move without throwing");

 public:
  RingQueue() = default;
  RingQueue(RingQueue&& other) noexcept
      : slots_(std::move(other.slots_)),
        head_(std::exchange(other.head_, 0)),
        size_(std::exchange(other.size_, 0)) {}
  RingQueue& operator=(RingQueue&& other) noexcept {
    if (this != &other) {
      slots_ = std::move(other.slots_);
      head_ = std::exchange(other.head_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }

  /// The oldest element. Requires !empty().
  [[nodiscard]] T& front() noexcept { return slots_[head_]; }
  [[nodiscard]] const T& front() const noexcept { return slots_[head_]; }

  /// Appends `value`; if growing the buffer throws, `value` is left untouched.
  void push_back(T&& value) {
    if (size_ == slots_.size()) resize(slots_.empty() ? minCapacity : slots_.size() * 2);
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(value);
    ++size_;
  }

  /// Drops the oldest element. Requires !empty().
  void pop_front() {
    slots_[head_] = T{};
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    if (slots_.size() > minCapacity && size_ <= slots_.size() / 4) {
      try {
        resize(slots_.size() / 2);
      } catch (const std::bad_alloc&) {
        // Giving memory back is optional: keep the larger buffer.
      }
    }
  }

 private:
  void resize(std::size_t capacity) {
    std::vector<T> slots(capacity);
    for (std::size_t i = 0; i < size_; ++i) {
      slots[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    }
    slots_.swap(slots);
    head_ = 0;
  }

  std::vector<T> slots_;  // the capacity, a power of two (or empty)
  std::size_t head_ = 0;  // index of the oldest element
  std::size_t size_ = 0;
};

}  // namespace jobtrack::detail
