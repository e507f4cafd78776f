#include "ditty/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ditty {
namespace {

thread_local bool inside_pool = false;

int default_threads() {
  if (const char* env = std::getenv("DITTY_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Workers sleep on a condition variable between jobs; a job hands out chunks through an atomic
// counter, so uneven chunks balance themselves. The caller returns as soon as every chunk is done,
// not when every worker has woken: on a busy machine a worker may wake late, find the job's chunks
// all taken and go back to sleep (it holds the job by shared_ptr, so that is safe).
class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    stopping_ = false;
    for (int i = 1; i < n; i++) workers_.emplace_back([this] { loop(); });
  }

  void run(size_t chunks, const std::function<void(size_t)>& body) {
    auto job = std::make_shared<Job>();
    job->body = &body;
    job->chunks = chunks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      generation_++;
    }
    wake_.notify_all();
    work(*job);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return job->done.load() == job->chunks; });
    job_.reset();
  }

 private:
  struct Job {
    const std::function<void(size_t)>* body = nullptr;
    size_t chunks = 0;
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
  };

  void work(Job& job) {
    inside_pool = true;
    for (size_t c; (c = job.next.fetch_add(1)) < job.chunks;) {
      (*job.body)(c);
      if (job.done.fetch_add(1) + 1 == job.chunks) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
    }
    inside_pool = false;
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        job = job_;
      }
      if (job) work(*job);
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::shared_ptr<Job> job_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int thread_count() { return pool().size(); }

void set_thread_count(int n) { pool().resize(std::max(1, n)); }

void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  int threads = inside_pool ? 1 : thread_count();
  if (threads == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  // a few chunks per thread so that uneven work balances
  size_t chunk = std::max(grain, (n + static_cast<size_t>(threads) * 4 - 1) / (static_cast<size_t>(threads) * 4));
  size_t chunks = (n + chunk - 1) / chunk;
  pool().run(chunks, [&](size_t c) { fn(c * chunk, std::min(n, (c + 1) * chunk)); });
}

void parallel_parts(const std::function<void(int, int)>& fn) {
  int parts = inside_pool ? 1 : thread_count();
  if (parts == 1) {
    fn(0, 1);
    return;
  }
  pool().run(static_cast<size_t>(parts), [&](size_t c) { fn(static_cast<int>(c), parts); });
}

}  // namespace ditty
