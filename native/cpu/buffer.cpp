#include "ditty/buffer.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace ditty {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::U8: return 1;
    case DType::I32: return 4;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::U8: return "u8";
    case DType::I32: return "i32";
  }
  return "?";
}

Buffer* BufferTable::slot(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= slots_.size() || !alive_[id]) return nullptr;
  return &slots_[id];
}

Buffer& BufferTable::get(int32_t id) {
  Buffer* b = slot(id);
  if (!b) throw std::runtime_error("buffer " + std::to_string(id) + " is not allocated (freed or never made)");
  return *b;
}

static int32_t take_id(std::vector<Buffer>& slots, std::vector<bool>& alive, std::vector<int32_t>& free_ids) {
  if (!free_ids.empty()) {
    int32_t id = free_ids.back();
    free_ids.pop_back();
    return id;
  }
  slots.emplace_back();
  alive.push_back(false);
  return static_cast<int32_t>(slots.size() - 1);
}

int32_t BufferTable::alloc(DType t, size_t count, DeviceKind device) {
  size_t bytes = count * dtype_size(t);
  size_t rounded = ((bytes + 63) / 64) * 64;
  void* p = nullptr;
  if (device == DeviceKind::Cpu) {
    p = rounded == 0 ? nullptr : std::aligned_alloc(64, rounded);
    if (rounded != 0 && p == nullptr) {
      throw std::runtime_error("out of memory allocating " + std::to_string(bytes) + " bytes");
    }
    if (p) std::memset(p, 0, rounded);
  } else {
    const DeviceMemory& m = memory_[static_cast<int>(device)];
    if (!m.allocate) throw std::runtime_error("this build of the native engine has no CUDA device");
    p = rounded == 0 ? nullptr : m.allocate(rounded);
  }
  int32_t id = take_id(slots_, alive_, free_ids_);
  slots_[id] = Buffer{p, count, t, device, -1, 0};
  alive_[id] = true;
  MemoryStats& s = stats_[static_cast<int>(device)];
  s.live += bytes;
  s.buffers++;
  if (s.live > s.peak) s.peak = s.live;
  return id;
}

int32_t BufferTable::view(int32_t id, size_t offset, size_t count) {
  Buffer& owner = get(id);
  int32_t root = owner.parent >= 0 ? owner.parent : id;
  if (offset > owner.count || count > owner.count - offset) {
    throw std::runtime_error("view [" + std::to_string(offset) + ", +" + std::to_string(count) + ") is outside buffer " +
                             std::to_string(id) + " of " + std::to_string(owner.count) + " elements");
  }
  Buffer v = owner;
  v.data = static_cast<char*>(owner.data) + offset * dtype_size(owner.dtype);
  v.count = count;
  v.parent = root;
  v.views = 0;
  int32_t vid = take_id(slots_, alive_, free_ids_);
  slots_[vid] = v;
  alive_[vid] = true;
  slots_[root].views++;
  return vid;
}

void BufferTable::free(int32_t id) {
  Buffer& b = get(id);
  if (b.parent >= 0) {
    slots_[b.parent].views--;
  } else {
    if (b.views > 0) {
      throw std::runtime_error("buffer " + std::to_string(id) + " still has " + std::to_string(b.views) + " live view(s)");
    }
    if (b.device == DeviceKind::Cpu) std::free(b.data);
    else if (b.data) memory_[static_cast<int>(b.device)].release(b.data);
    MemoryStats& s = stats_[static_cast<int>(b.device)];
    s.live -= b.bytes();
    s.buffers--;
  }
  b = Buffer{};
  alive_[id] = false;
  free_ids_.push_back(id);
}

BufferTable& buffers() {
  static BufferTable table;
  return table;
}

}  // namespace ditty
