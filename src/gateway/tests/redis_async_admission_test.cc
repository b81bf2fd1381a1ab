// The rendezvous that turns LimitStore::admit_async() into an awaitable (async_admission.h):
// a coroutine waits for an answer given on another thread without blocking its io_context,
// and a granted reservation that no request takes is given back.
#include "gateway/async_admission.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace aifinops::gateway {
namespace {

namespace net = boost::asio;

/// A store whose admissions are answered later, by the test, from any thread; records
/// settlements. (A fake: the interaction under test is the rendezvous's, not Redis's.)
class DeferredStore final : public LimitStore {
 public:
  Admission admit(const AdmissionRequest&) override { return granted(1); }
  std::optional<Admission> admit_async(const AdmissionRequest&, AdmissionCallback done) override {
    std::lock_guard<std::mutex> lock(mutex);
    waiting.push_back(std::move(done));
    return std::nullopt;
  }
  std::vector<SoftBudgetNotice> settle(uint64_t reservation, int64_t tokens, Money cost) override {
    std::lock_guard<std::mutex> lock(mutex);
    settled.push_back({static_cast<int64_t>(reservation), tokens, cost.nanos});
    return {};
  }
  void seed_budget_spend(const std::string&, Money) override {}
  Money budget_used(const std::string&) override { return Money{}; }

  static Admission granted(uint64_t id) {
    Admission a;
    a.admitted = true;
    a.reservation = id;
    return a;
  }
  /// Answers the oldest waiting admission.
  void answer(Admission a) {
    AdmissionCallback done;
    {
      std::lock_guard<std::mutex> lock(mutex);
      done = std::move(waiting.front());
      waiting.erase(waiting.begin());
    }
    done(std::move(a));
  }
  size_t waiting_count() {
    std::lock_guard<std::mutex> lock(mutex);
    return waiting.size();
  }

  std::mutex mutex;
  std::vector<AdmissionCallback> waiting;
  std::vector<std::array<int64_t, 3>> settled;
};

/// What the server does: admit, and wait without blocking when the store is not done.
net::awaitable<Admission> admit_like_the_server(LimitStore& store) {
  AdmissionRequest request;
  request.key_id = "k";
  auto rendezvous = std::make_shared<AdmissionRendezvous>(store);
  std::optional<Admission> decided = store.admit_async(request, rendezvous->callback());
  if (!decided) decided = co_await rendezvous->wait(net::use_awaitable);
  co_return std::move(*decided);
}

TEST(AsyncAdmissionTest, AnAnswerFromAnotherThreadResumesTheCoroutineOnItsOwnThread) {
  DeferredStore store;
  net::io_context ioc;
  std::optional<Admission> got;
  std::thread::id resumed_on;
  std::atomic<int> ticks{0};
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        got = co_await admit_like_the_server(store);
        resumed_on = std::this_thread::get_id();
      },
      net::detached);
  // Another coroutine on the same thread keeps running while the admission waits.
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        net::steady_timer timer(ioc);
        while (!got) {
          ++ticks;
          timer.expires_after(std::chrono::milliseconds(1));
          co_await timer.async_wait(net::use_awaitable);
        }
      },
      net::detached);
  std::thread answerer([&] {
    while (store.waiting_count() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    store.answer(DeferredStore::granted(7));
  });
  ioc.run();  // returns only once both coroutines are done: the wait held work
  answerer.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->admitted);
  EXPECT_EQ(got->reservation, 7u);
  EXPECT_EQ(resumed_on, std::this_thread::get_id());
  EXPECT_GE(ticks.load(), 5);  // the thread was not blocked for the 30 ms
  EXPECT_TRUE(store.settled.empty());  // taken by the request: settling is its job
}

TEST(AsyncAdmissionTest, AnAnswerBeforeTheCoroutineWaitsIsNotLost) {
  DeferredStore store;
  auto rendezvous = std::make_shared<AdmissionRendezvous>(store);
  rendezvous->callback()(DeferredStore::granted(3));  // answered before anyone waits
  net::io_context ioc;
  std::optional<Admission> got;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> { got = co_await rendezvous->wait(net::use_awaitable); },
      net::detached);
  ioc.run();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->reservation, 3u);
  EXPECT_TRUE(store.settled.empty());
}

TEST(AsyncAdmissionTest, AGrantedReservationNobodyTakesIsSettledWithNothingSpent) {
  DeferredStore store;
  {
    // The server stopped: its io_context is destroyed with the resumption still queued.
    net::io_context ioc;
    net::co_spawn(
        ioc, [&]() -> net::awaitable<void> { co_await admit_like_the_server(store); },
        net::detached);
    ioc.run_one();  // up to the wait
    ASSERT_EQ(store.waiting_count(), 1u);
    store.answer(DeferredStore::granted(9));  // posted, never run
  }
  ASSERT_EQ(store.settled.size(), 1u);
  EXPECT_EQ(store.settled[0][0], 9);
  EXPECT_EQ(store.settled[0][1], 0);
  EXPECT_EQ(store.settled[0][2], 0);
  {
    // Nobody ever waited (the rendezvous dropped with its answer): the same.
    auto rendezvous = std::make_shared<AdmissionRendezvous>(store);
    rendezvous->callback()(DeferredStore::granted(10));
  }
  ASSERT_EQ(store.settled.size(), 2u);
  EXPECT_EQ(store.settled[1][0], 10);
  // A refusal holds no reservation: nothing to settle.
  {
    auto rendezvous = std::make_shared<AdmissionRendezvous>(store);
    rendezvous->callback()(Admission{});
  }
  EXPECT_EQ(store.settled.size(), 2u);
}

TEST(AsyncAdmissionTest, AStoreInMemoryDecidesAtOnceWithoutSuspending) {
  ManualClock clock;
  MemoryLimitStore store({}, clock);
  AdmissionRequest request;
  request.key_id = "k";
  bool called = false;
  std::optional<Admission> now = store.admit_async(request, [&](Admission) { called = true; });
  ASSERT_TRUE(now.has_value());
  EXPECT_TRUE(now->admitted);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace aifinops::gateway
