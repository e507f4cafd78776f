// The CPU device's thread pool: sized by the cores, DITTY_THREADS overrides.
#pragma once
#include <cstddef>
#include <functional>

namespace ditty {

// Threads that parallel_for uses (the calling thread included).
int thread_count();
// Resizes the pool (n >= 1); not to be called from inside parallel_for.
void set_thread_count(int n);

// Runs fn(begin, end) over [0, n) in chunks of at least `grain` items on the pool; the calling
// thread takes part. Chunks are contiguous and each index is covered once. Called from inside
// another parallel_for it runs inline on the calling thread.
void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

// Runs fn(part, parts) once for each part in [0, parts) with parts = thread_count(), for kernels
// that keep per-thread scratch (e.g. a dequantized tile).
void parallel_parts(const std::function<void(int, int)>& fn);

}  // namespace ditty
