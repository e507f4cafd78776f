// Device buffers: typed, explicitly freed, counted. The CPU device keeps them in host memory;
// the CUDA device (native/cuda) keeps them in device memory behind the same table, through the
// DeviceMemory it registers.
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

// Byte counters of owned allocations on one device.
struct MemoryStats {
  size_t live = 0;
  size_t peak = 0;
  size_t buffers = 0;
};

// How a device other than the CPU allocates: zero-filled memory, std::runtime_error when it cannot.
struct DeviceMemory {
  void* (*allocate)(size_t bytes) = nullptr;
  void (*release)(void* p) = nullptr;
};

class BufferTable {
 public:
  // Allocates `count` elements (64-byte aligned, zero-filled) on `device`; throws std::runtime_error
  // when out of memory or when the device has no registered memory.
  int32_t alloc(DType t, size_t count, DeviceKind device = DeviceKind::Cpu);
  // A view of elements [offset, offset + count) of buffer `id` (not owning; freed separately).
  int32_t view(int32_t id, size_t offset, size_t count);
  void free(int32_t id);
  // The buffer `id`, or throws std::runtime_error naming the id when it is not alive.
  Buffer& get(int32_t id);
  MemoryStats stats(DeviceKind device = DeviceKind::Cpu) const { return stats_[static_cast<int>(device)]; }
  void reset_peak(DeviceKind device) { stats_[static_cast<int>(device)].peak = stats_[static_cast<int>(device)].live; }
  void set_device_memory(DeviceKind device, DeviceMemory memory) { memory_[static_cast<int>(device)] = memory; }

 private:
  Buffer* slot(int32_t id);
  std::vector<Buffer> slots_;
  std::vector<bool> alive_;
  std::vector<int32_t> free_ids_;
  MemoryStats stats_[2];
  DeviceMemory memory_[2];
};

BufferTable& buffers();

}  // namespace ditty
