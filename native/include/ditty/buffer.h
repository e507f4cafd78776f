// Device buffers: typed, explicitly freed, counted. The CPU device keeps them in host memory;
// the CUDA device (native/cuda) will keep them in device memory behind the same table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ditty {

enum class DType : int32_t { F32 = 0, BF16 = 1, U8 = 2, I32 = 3 };
enum class DeviceKind : int32_t { Cpu = 0, Cuda = 1 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

struct Buffer {
  void* data = nullptr;
  size_t count = 0;  // elements
  DType dtype = DType::F32;
  DeviceKind device = DeviceKind::Cpu;
  int32_t parent = -1;  // the owning buffer of a view, -1 for an owner
  int32_t views = 0;    // live views of this owner
  size_t bytes() const { return count * dtype_size(dtype); }
};

// Byte counters of owned allocations on the CPU device.
struct MemoryStats {
  size_t live = 0;
  size_t peak = 0;
  size_t buffers = 0;
};

class BufferTable {
 public:
  // Allocates `count` elements (64-byte aligned, zero-filled); throws std::runtime_error when out of memory.
  int32_t alloc(DType t, size_t count);
  // A view of elements [offset, offset + count) of buffer `id` (not owning; freed separately).
  int32_t view(int32_t id, size_t offset, size_t count);
  void free(int32_t id);
  // The buffer `id`, or throws std::runtime_error naming the id when it is not alive.
  Buffer& get(int32_t id);
  MemoryStats stats() const { return stats_; }
  void reset_peak() { stats_.peak = stats_.live; }

 private:
  Buffer* slot(int32_t id);
  std::vector<Buffer> slots_;
  std::vector<bool> alive_;
  std::vector<int32_t> free_ids_;
  MemoryStats stats_;
};

BufferTable& buffers();

}  // namespace ditty
