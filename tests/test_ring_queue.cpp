// Tests for detail::RingQueue: first in, first out across wrap-around and
// growth; the buffer is given back once a burst drains; a popped slot holds
// nothing; a moved-from queue is empty.

#include "jobtrack/detail/ring_queue.hpp"

#include "catch.hpp"

#include <memory>
#include <utility>

using jobtrack::detail::RingQueue;

TEST_CASE("RingQueue keeps first-in-first-out order across wrap-around and growth") {
  RingQueue<int, 8> queue;
  CHECK(queue.empty());
  int pushed = 0;
  int popped = 0;
  // Leave the head mid-buffer, so the growth below copies a wrapped range.
  for (; pushed < 6; ++pushed) queue.push_back(int{pushed});
  for (; popped < 4; ++popped) {
    REQUIRE(queue.front() == popped);
    queue.pop_front();
  }
  for (; pushed < 100; ++pushed) queue.push_back(int{pushed});
  CHECK(queue.size() == 96);
  CHECK(queue.capacity() == 128);
  for (; popped < 100; ++popped) {
    REQUIRE(queue.front() == popped);
    queue.pop_front();
  }
  CHECK(queue.empty());
}

TEST_CASE("RingQueue gives a burst's buffer back as it drains, down to its minimum") {
  RingQueue<int, 8> queue;
  for (int i = 0; i < 1000; ++i) queue.push_back(int{i});
  CHECK(queue.capacity() == 1024);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(queue.front() == i);
    queue.pop_front();
    // Shrinking never goes below the minimum, nor below what is queued.
    REQUIRE(queue.capacity() >= 8);
    REQUIRE(queue.size() <= queue.capacity());
  }
  CHECK(queue.capacity() == 8);
  queue.push_back(7);  // still usable
  CHECK(queue.front() == 7);
}

TEST_CASE("RingQueue releases what a popped slot held at once") {
  RingQueue<std::shared_ptr<int>, 8> queue;
  auto value = std::make_shared<int>(1);
  queue.push_back(std::shared_ptr<int>(value));
  queue.push_back(std::make_shared<int>(2));
  CHECK(value.use_count() == 2);
  queue.pop_front();
  CHECK(value.use_count() == 1);
  CHECK(*queue.front() == 2);
}

TEST_CASE("A moved-from RingQueue is empty and usable") {
  RingQueue<int, 8> source;
  for (int i = 0; i < 20; ++i) source.push_back(int{i});
  RingQueue<int, 8> target = std::move(source);
  CHECK(source.empty());  // NOLINT(bugprone-use-after-move): the documented state
  CHECK(target.size() == 20);
  CHECK(target.front() == 0);
  source.push_back(5);
  CHECK(source.front() == 5);
  source = std::move(target);
  CHECK(source.size() == 20);
  CHECK(target.empty());  // NOLINT(bugprone-use-after-move)
}
