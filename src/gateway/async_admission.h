// Admission without blocking an I/O thread: LimitStore::admit_async() turned into an Asio
// awaitable for the gateway's request coroutines. Included only by server.cc (and its test).
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "gateway/limits.h"

namespace aifinops::gateway {

/// An admission decided by the store, owned until a request takes it. If nobody takes it
/// (the server stopped and its queued handlers were destroyed unrun), a granted reservation
/// is settled with nothing spent, so that a budget never stays reserved until the
/// reservation's TTL. Move-only.
class HeldAdmission {
 public:
  HeldAdmission(Admission admission, LimitStore& limits)
      : admission_(std::move(admission)), limits_(&limits) {}
  HeldAdmission(HeldAdmission&& other) noexcept
      : admission_(std::move(other.admission_)), limits_(other.limits_), taken_(other.taken_) {
    other.taken_ = true;
  }
  HeldAdmission(const HeldAdmission&) = delete;
  HeldAdmission& operator=(const HeldAdmission&) = delete;
  HeldAdmission& operator=(HeldAdmission&&) = delete;
  ~HeldAdmission() {
    if (!taken_ && admission_.admitted) limits_->settle(admission_.reservation, 0, Money{});
  }
  /// The admission; from now on, settling its reservation is the taker's job.
  Admission take() {
    taken_ = true;
    return std::move(admission_);
  }

 private:
  Admission admission_;
  LimitStore* limits_;
  bool taken_ = false;
};

/// Where an admission decided on the store's thread meets the coroutine that waits for it,
/// whichever comes first: complete() (store thread) or attach() (the coroutine's initiation).
/// The waiting handler is resumed on its own executor (the connection's strand), never on
/// the store's thread, and holds work on that executor so that its io_context keeps running
/// until it is resumed. Shared between the store's callback and the coroutine: one per
/// admission, made with std::make_shared. In the server:
///
///   auto rendezvous = std::make_shared<AdmissionRendezvous>(limits);
///   std::optional<Admission> decided = limits.admit_async(request, rendezvous->callback());
///   if (!decided) decided = co_await rendezvous->wait(net::use_awaitable);
///
/// A store in memory decides at once, so its requests never suspend. The io_context that
/// runs a waiting handler must outlive the store's answer (the gateway stops the store's
/// admitter, which answers everything queued, before it destroys the server).
class AdmissionRendezvous : public std::enable_shared_from_this<AdmissionRendezvous> {
 public:
  explicit AdmissionRendezvous(LimitStore& limits) : limits_(limits) {}

  /// The callback for LimitStore::admit_async(): keeps this rendezvous alive until called.
  LimitStore::AdmissionCallback callback() {
    return [self = shared_from_this()](Admission admission) {
      self->complete(std::move(admission));
    };
  }

  /// Waits for the admission: with net::use_awaitable, `co_await rendezvous->wait(...)`
  /// suspends the coroutine (never the thread) until complete() has run.
  template <typename CompletionToken>
  auto wait(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(Admission)>(
        [self = shared_from_this()](auto handler) { self->attach(std::move(handler)); }, token);
  }

  /// The store's side: hands the admission over (called exactly once).
  void complete(Admission admission) {
    HeldAdmission held(std::move(admission), limits_);
    std::unique_lock<std::mutex> lock(mutex_);
    if (!resume_) {
      result_.emplace(std::move(held));
      return;
    }
    auto resume = std::move(resume_);
    lock.unlock();
    resume(std::move(held));
  }

  /// The coroutine's side: `handler` is called with the admission on its associated executor.
  template <typename Handler>
  void attach(Handler handler) {
    auto executor = boost::asio::get_associated_executor(handler);
    auto work = boost::asio::make_work_guard(executor);
    // std::function needs a copyable target: the move-only handler lives behind a pointer.
    auto shared_handler = std::make_shared<Handler>(std::move(handler));
    std::function<void(HeldAdmission)> resume = [executor, work, shared_handler](
                                                    HeldAdmission held) mutable {
      auto run = [shared_handler, work, held = std::move(held)]() mutable {
        Admission admission = held.take();
        (*shared_handler)(std::move(admission));
      };
      boost::asio::post(executor, std::move(run));
    };
    std::unique_lock<std::mutex> lock(mutex_);
    if (result_) {
      HeldAdmission held = std::move(*result_);
      result_.reset();
      lock.unlock();
      resume(std::move(held));
      return;
    }
    resume_ = std::move(resume);
  }

 private:
  LimitStore& limits_;
  std::mutex mutex_;
  std::optional<HeldAdmission> result_;
  std::function<void(HeldAdmission)> resume_;
};

}  // namespace aifinops::gateway
