// The emulator's core: fibers, the per-block scheduler, __syncthreads, mask-aware warp collectives,
// and the pool of OS threads that runs the blocks of a grid.
#include "emu.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define DITTY_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DITTY_EMU_ASAN 1
#endif
#endif
#if DITTY_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__) && !defined(DITTY_EMU_UCONTEXT)
#define DITTY_EMU_X86_64_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace ditty::cuda::emu {
bool stream_valid(cudaStream_t s);                // runtime_api.cpp
int max_dynamic_shared(const void* kernel);       // runtime_api.cpp
void set_last_error(cudaError_t e);               // runtime_api.cpp
}  // namespace ditty::cuda::emu

extern "C" [[noreturn]] void ditty_emu_fiber_main();

// ---- context switch ------------------------------------------------------------------------------
#if DITTY_EMU_X86_64_SWITCH
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the
// stack pointer in *save, loads `load` and restores the same set from there. A new fiber's stack is
// prepared so that the final `ret` enters the trampoline with a 16-byte aligned stack.
asm(R"(
  .text
  .globl ditty_emu_switch_context
  .type ditty_emu_switch_context,@function
  .p2align 4
ditty_emu_switch_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ditty_emu_switch_context,.-ditty_emu_switch_context

  .globl ditty_emu_fiber_trampoline
  .type ditty_emu_fiber_trampoline,@function
  .p2align 4
ditty_emu_fiber_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  xorl %ebp, %ebp
  call ditty_emu_fiber_main@PLT
  ud2
  .cfi_endproc
  .size ditty_emu_fiber_trampoline,.-ditty_emu_fiber_trampoline
)");
extern "C" void ditty_emu_switch_context(void** save, void* load);
extern "C" void ditty_emu_fiber_trampoline();
#endif

namespace ditty::cuda::emu {
namespace {

#if DITTY_EMU_X86_64_SWITCH
struct Context {
  void* sp = nullptr;
};
void context_init(Context& c, char* stack, std::size_t size) {
  const auto top = (reinterpret_cast<std::uintptr_t>(stack) + size) & ~std::uintptr_t{15};
  auto* sp = reinterpret_cast<std::uint64_t*>(top - 64);
  std::uint32_t mxcsr = 0;
  std::uint16_t fpucw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  sp[0] = mxcsr | (std::uint64_t{fpucw} << 32);
  for (int i = 1; i <= 6; ++i) sp[i] = 0;  // r15 r14 r13 r12 rbx rbp
  sp[7] = reinterpret_cast<std::uint64_t>(&ditty_emu_fiber_trampoline);
  c.sp = sp;
}
inline void context_switch(Context& from, Context& to) { ditty_emu_switch_context(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc;
};
void context_init(Context& c, char* stack, std::size_t size) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, reinterpret_cast<void (*)()>(&ditty_emu_fiber_main), 0);
}
inline void context_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

// ---- configuration -------------------------------------------------------------------------------
const char* const kScheduleNames[] = {"forward", "reverse", "random", "warp-ahead", "warp-ahead-reverse", nullptr};

struct Config {
  std::mutex m;
  Schedule schedule = Schedule::forward;
  std::uint64_t seed = 1;
  bool throw_on_error = false;
  unsigned threads = 0;
  std::size_t stack_bytes = 0;
  bool init = false;
};
Config& config() {
  static Config c;
  return c;
}

std::pair<Schedule, std::uint64_t> parse_schedule(const std::string& name) {
  std::string base = name;
  std::uint64_t seed = 1;
  if (const auto colon = name.find(':'); colon != std::string::npos) {
    base = name.substr(0, colon);
    const std::string s = name.substr(colon + 1);
    char* end = nullptr;
    seed = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || base != "random")
      throw std::invalid_argument("ditty cuda emulator: bad schedule '" + name + "' (only random takes a :SEED)");
  }
  for (int i = 0; kScheduleNames[i]; ++i)
    if (base == kScheduleNames[i]) return {static_cast<Schedule>(i), seed};
  throw std::invalid_argument("ditty cuda emulator: unknown schedule '" + name +
                              "' (forward, reverse, random[:SEED], warp-ahead, warp-ahead-reverse)");
}

void ensure_config_locked(Config& c) {
  if (c.init) return;
  c.init = true;
  if (const char* s = std::getenv("DITTY_EMU_SCHEDULE"); s && *s) {
    try {
      std::tie(c.schedule, c.seed) = parse_schedule(s);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s (from DITTY_EMU_SCHEDULE)\n", e.what());
      std::abort();
    }
  }
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  c.threads = hw;
  if (const char* s = std::getenv("DITTY_EMU_THREADS"); s && *s) c.threads = std::max(1, std::atoi(s));
#if DITTY_EMU_ASAN
  std::size_t kib = 256;  // instrumented frames are larger
#else
  std::size_t kib = 64;
#endif
  if (const char* s = std::getenv("DITTY_EMU_STACK_KIB"); s && *s) kib = std::max(16, std::atoi(s));
  c.stack_bytes = kib * 1024;
}

struct Snapshot {
  Schedule schedule;
  std::uint64_t seed;
  bool throw_on_error;
  unsigned threads;
  std::size_t stack_bytes;
};
Snapshot snapshot() {
  Config& c = config();
  std::lock_guard lock(c.m);
  ensure_config_locked(c);
  return {c.schedule, c.seed, c.throw_on_error, c.threads, c.stack_bytes};
}

// ---- data structures -----------------------------------------------------------------------------
enum class State : std::uint8_t { runnable, barrier, collective, done };

struct Fiber {
  Context ctx;
  ThreadState ts{};
  State state = State::runnable;
  // the collective this lane waits in
  Op op = Op::none;
  unsigned mask = 0;
  unsigned value_size = 0;
  int arg = 0;
  int width = 0;
  std::uint64_t value = 0;
  std::uint64_t result = 0;
  // the last primitive reached, for messages
  const char* what = nullptr;
  std::source_location loc{};
  bool has_loc = false;
  char* stack = nullptr;
  std::size_t stack_size = 0;
  void* fake_stack = nullptr;
};

struct Warp {
  unsigned exists = 0;   // lanes that are threads of the block
  unsigned exited = 0;   // lanes that returned from the kernel
  unsigned pending = 0;  // lanes waiting in a collective
  unsigned runnable = 0;
};

struct Launch {
  const void* kernel;
  Thunk thunk;
  void* pack;
  dim3 grid, block;
  std::size_t shared_bytes;
  std::uint64_t nblocks;
  unsigned nthreads;
  Snapshot cfg;
  std::vector<std::uint64_t> order;  // block visiting order for the random schedule
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::string error;
};

struct Block {
  Launch* launch = nullptr;
  BlockState bs{};
  std::uint64_t linear = 0;
  Fiber* fibers = nullptr;
  unsigned n = 0;
  std::vector<Warp> warps;
  std::vector<unsigned> runnable_list, runnable_pos;
  unsigned at_barrier = 0, done = 0;
  int bar_count = 0, bar_all = 1, bar_any = 0;
  BarrierResult bar_result{};
  unsigned cursor = 0, warp_cursor = 0, lane_cursor = 0;
  std::uint64_t rng = 0;
  bool failed = false;
};

struct Stack {
  char* map = nullptr;  // guard page first, then the usable stack
  std::size_t map_size = 0;
  char* base = nullptr;
  std::size_t size = 0;
};

struct Worker {
  Context sched{};
  void* sched_fake = nullptr;
  const void* sched_bottom = nullptr;
  std::size_t sched_size = 0;
  std::vector<Stack> stacks;
  std::unique_ptr<Fiber[]> fibers;
  unsigned fibers_cap = 0;
  Block* block = nullptr;
  Fiber* current = nullptr;
  bool stacks_dirty = true;  // a block left fibers suspended mid-kernel (or the stacks are new)
  ~Worker() {
    for (auto& s : stacks) munmap(s.map, s.map_size);
  }
};

thread_local Worker tl_worker;
std::atomic<std::uint64_t> g_epoch{1};

std::size_t page_size() {
  static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

Stack make_stack(std::size_t bytes) {
  const std::size_t page = page_size();
  bytes = (bytes + page - 1) / page * page;
  Stack s;
  // a 64 KiB guard: a frame a little larger than what is left still lands in it
  const std::size_t guard = std::max<std::size_t>(page, 64 * 1024);
  s.map_size = bytes + guard;
  void* m = mmap(nullptr, s.map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    std::fprintf(stderr, "ditty cuda emulator: cannot map a %zu-byte fiber stack\n", s.map_size);
    std::abort();
  }
  s.map = static_cast<char*>(m);
  mprotect(s.map, guard, PROT_NONE);  // overflow faults instead of corrupting the neighbour
  s.base = s.map + guard;
  s.size = bytes;
  return s;
}

std::string dim_str(const dim3& d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}
std::string dim_str(const uint3& d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}
std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string kernel_name(const void* kernel) {
  Dl_info info{};
  if (dladdr(kernel, &info) && info.dli_sname && info.dli_saddr == kernel) {
    int status = 0;
    char* d = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    std::string s = status == 0 && d ? d : info.dli_sname;
    std::free(d);
    return s;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "kernel at %p (not exported; see the function below)", kernel);
  return buf;
}

std::string where(const Fiber& f) {
  if (!f.has_loc) return "";
  return std::string(f.what ? f.what : "?") + " at " + f.loc.file_name() + ":" + std::to_string(f.loc.line()) + " in " +
         f.loc.function_name();
}

std::string context_of(const Block& b, const Fiber* f) {
  const Launch& L = *b.launch;
  std::string s = "\n  kernel " + kernel_name(L.kernel) + ", grid " + dim_str(L.grid) + ", block " + dim_str(L.block) +
                  ", schedule " + kScheduleNames[static_cast<int>(L.cfg.schedule)] + "\n  in block " +
                  dim_str(b.bs.block_idx);
  if (f) {
    s += ", thread " + dim_str(f->ts.thread_idx) + " (warp " + std::to_string(f->ts.warp) + ", lane " +
         std::to_string(f->ts.lane) + ")";
    if (f->has_loc) s += "\n  at " + where(*f);
  }
  return s;
}

// Records (or, by default, prints and aborts on) an emulator error in the current block.
void report(Block& b, const Fiber* about, const std::string& msg) {
  const std::string full = "ditty cuda emulator: " + msg + context_of(b, about);
  Launch& L = *b.launch;
  if (!L.cfg.throw_on_error) {
    std::fprintf(stderr, "%s\n", full.c_str());
    std::fflush(stderr);
    std::abort();
  }
  b.failed = true;
  std::lock_guard lock(L.m);
  if (!L.failed.exchange(true)) L.error = full;
}

void asan_enter_fiber_from_scheduler(Worker& w, Fiber& f) {
#if DITTY_EMU_ASAN
  __sanitizer_start_switch_fiber(&w.sched_fake, f.stack, f.stack_size);
#else
  (void)w;
  (void)f;
#endif
}
void asan_back_in_scheduler(Worker& w) {
#if DITTY_EMU_ASAN
  __sanitizer_finish_switch_fiber(w.sched_fake, nullptr, nullptr);
#else
  (void)w;
#endif
}

// Leaves the current fiber for the scheduler; returns when the scheduler resumes it.
void yield_fiber(Worker& w, Fiber& f, bool final) {
#if DITTY_EMU_ASAN
  __sanitizer_start_switch_fiber(final ? nullptr : &f.fake_stack, w.sched_bottom, w.sched_size);
#else
  (void)final;
#endif
  context_switch(f.ctx, w.sched);
#if DITTY_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &w.sched_bottom, &w.sched_size);
#endif
}

// A fiber that hit an error never runs again; in throwing mode the launch reports it.
[[noreturn]] void fiber_fail(Block& b, Fiber& cur, const Fiber* about, const std::string& msg) {
  report(b, about, msg);
  cur.state = State::done;
  yield_fiber(tl_worker, cur, true);
  __builtin_unreachable();
}

void set_runnable(Block& b, Fiber& f) {
  f.state = State::runnable;
  b.warps[f.ts.warp].runnable |= 1u << f.ts.lane;
  b.runnable_pos[f.ts.linear] = static_cast<unsigned>(b.runnable_list.size());
  b.runnable_list.push_back(f.ts.linear);
}
void set_blocked(Block& b, Fiber& f, State s) {
  f.state = s;
  b.warps[f.ts.warp].runnable &= ~(1u << f.ts.lane);
  const unsigned pos = b.runnable_pos[f.ts.linear];
  const unsigned last = b.runnable_list.back();
  b.runnable_list[pos] = last;
  b.runnable_pos[last] = pos;
  b.runnable_list.pop_back();
}

struct Current {
  Worker& w;
  Block& b;
  Fiber& f;
};
Current current(const char* what, std::source_location loc) {
  Worker& w = tl_worker;
  if (!w.current) outside_kernel(what, loc);
  Fiber& f = *w.current;
  f.what = what;
  f.loc = loc;
  f.has_loc = true;
  return {w, *w.block, f};
}

std::string lane_desc(const Fiber& f) {
  return "lane " + std::to_string(f.ts.lane) + " (thread " + dim_str(f.ts.thread_idx) + ")";
}
std::string collective_desc(const Fiber& f) {
  return std::string(f.what) + "(mask " + hex(f.mask) + ") at " + f.loc.file_name() + ":" + std::to_string(f.loc.line());
}

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool same_collective(const Fiber& a, const Fiber& b) {
  return a.op == b.op && a.mask == b.mask && a.width == b.width && a.value_size == b.value_size;
}

// Resolves the collective `ref` waits in once every live lane its mask names waits in the same one.
void try_resolve(Block& b, Fiber& cur, unsigned wi, const Fiber& ref) {
  Warp& wp = b.warps[wi];
  const unsigned live = wp.exists & ~wp.exited;
  const unsigned need = ref.mask & live;
  if (need == 0 || (wp.pending & need) != need) return;
  Fiber* lanes = b.fibers + wi * 32;
  for (unsigned m = need; m; m &= m - 1)
    if (!same_collective(lanes[__builtin_ctz(m)], ref)) return;  // that lane waits in another one first
  std::uint64_t ballot = 0;
  if (ref.op == Op::ballot)
    for (unsigned m = need; m; m &= m - 1) ballot |= (lanes[__builtin_ctz(m)].value != 0 ? 1ull : 0ull) << __builtin_ctz(m);
  for (unsigned m = need; m; m &= m - 1) {
    Fiber& f = lanes[__builtin_ctz(m)];
    const int lane = static_cast<int>(f.ts.lane);
    const int width = f.width;
    const int seg = lane & ~(width - 1);
    int src = lane;
    switch (f.op) {
      case Op::none:
      case Op::syncwarp: f.result = 0; continue;
      case Op::ballot: f.result = ballot; continue;
      case Op::shfl: src = seg + (f.arg & (width - 1)); break;
      case Op::shfl_up: src = f.arg >= width ? lane : lane - f.arg; if (src < seg) src = lane; break;
      case Op::shfl_down: src = f.arg >= width ? lane : lane + f.arg; if (src >= seg + width) src = lane; break;
      case Op::shfl_xor: src = lane ^ f.arg; if (src < 0 || (src & ~(width - 1)) != seg) src = lane; break;
    }
    if (src != lane) {
      if (!((f.mask >> src) & 1u))
        fiber_fail(b, cur, &f,
                   lane_desc(f) + " reads lane " + std::to_string(src) + " in " + collective_desc(f) +
                       ", but that source lane is outside the mask");
      if (!((live >> src) & 1u))
        fiber_fail(b, cur, &f,
                   lane_desc(f) + " reads lane " + std::to_string(src) + " in " + collective_desc(f) + ", but that lane " +
                       (((wp.exists >> src) & 1u) ? "has exited" : "is not a thread of the block"));
    }
    const std::uint64_t keep = f.value_size >= 8 ? ~0ull : ((1ull << (8 * f.value_size)) - 1);
    f.result = lanes[src].value & keep;
  }
  wp.pending &= ~need;
  for (unsigned m = need; m; m &= m - 1) {
    Fiber& f = lanes[__builtin_ctz(m)];
    f.op = Op::none;
    set_runnable(b, f);
  }
}

void release_barrier(Block& b) {
  b.bar_result = {b.bar_count, b.bar_all, b.bar_any};
  b.bar_count = 0;
  b.bar_all = 1;
  b.bar_any = 0;
  b.at_barrier = 0;
  for (unsigned i = 0; i < b.n; ++i)
    if (b.fibers[i].state == State::barrier) set_runnable(b, b.fibers[i]);
}

const Fiber* first_in(const Block& b, State s) {
  for (unsigned i = 0; i < b.n; ++i)
    if (b.fibers[i].state == s) return &b.fibers[i];
  return nullptr;
}

[[noreturn]] void fiber_exit(Worker& w, Block& b, Fiber& f) {
  f.has_loc = false;
  set_blocked(b, f, State::done);
  ++b.done;
  Warp& wp = b.warps[f.ts.warp];
  wp.exited |= 1u << f.ts.lane;
  if (b.at_barrier > 0) {
    const Fiber* waiting = first_in(b, State::barrier);
    fiber_fail(b, f, &f,
               "thread " + dim_str(f.ts.thread_idx) + " exited while " + std::to_string(b.at_barrier) +
                   " thread(s) of its block wait at a barrier (e.g. thread " + dim_str(waiting->ts.thread_idx) + ", " +
                   where(*waiting) + "): every thread must reach each __syncthreads");
  }
  // collectives that named this lane may now be complete without it
  for (unsigned m = wp.pending; m; m &= m - 1) {
    const Fiber& k = b.fibers[f.ts.warp * 32 + __builtin_ctz(m)];
    if (((wp.pending >> k.ts.lane) & 1u) && ((k.mask >> f.ts.lane) & 1u)) try_resolve(b, f, f.ts.warp, k);
  }
  yield_fiber(w, f, true);
  __builtin_unreachable();
}

int pick(Block& b) {
  if (b.runnable_list.empty()) return -1;
  const unsigned n = b.n;
  const unsigned nw = static_cast<unsigned>(b.warps.size());
  switch (b.launch->cfg.schedule) {
    case Schedule::forward:
      for (unsigned k = 0; k < n; ++k) {
        const unsigned i = (b.cursor + k) % n;
        if (b.fibers[i].state == State::runnable) {
          b.cursor = (i + 1) % n;
          return static_cast<int>(i);
        }
      }
      return -1;
    case Schedule::reverse:
      for (unsigned k = 0; k < n; ++k) {
        const unsigned i = (b.cursor + n - k) % n;
        if (b.fibers[i].state == State::runnable) {
          b.cursor = (i + n - 1) % n;
          return static_cast<int>(i);
        }
      }
      return -1;
    case Schedule::random:
      return static_cast<int>(b.runnable_list[splitmix(b.rng) % b.runnable_list.size()]);
    case Schedule::warp_ahead:
    case Schedule::warp_ahead_reverse: {
      const bool rev = b.launch->cfg.schedule == Schedule::warp_ahead_reverse;
      if (!b.warps[b.warp_cursor].runnable) {
        // the warp in front blocked: the next one (lowest, or highest, index with work) runs ahead
        for (unsigned k = 0; k < nw; ++k) {
          const unsigned wi = rev ? nw - 1 - k : k;
          if (b.warps[wi].runnable) {
            b.warp_cursor = wi;
            b.lane_cursor = rev ? 31 : 0;
            break;
          }
        }
      }
      const unsigned r = b.warps[b.warp_cursor].runnable;
      for (unsigned k = 0; k < 32; ++k) {
        const unsigned lane = rev ? (b.lane_cursor + 32 - k) % 32 : (b.lane_cursor + k) % 32;
        if ((r >> lane) & 1u) {
          b.lane_cursor = rev ? (lane + 31) % 32 : (lane + 1) % 32;
          return static_cast<int>(b.warp_cursor * 32 + lane);
        }
      }
      return -1;
    }
  }
  return -1;
}

// A fiber that overflows its stack faults on the guard page below it. Without ASan (which reports
// stack overflows itself) a SIGSEGV handler on an alternate stack says so in words, then lets the
// default action run. It is installed only where nobody else handles SIGSEGV.
#if !DITTY_EMU_ASAN
thread_local bool tl_altstack_ready = false;
std::once_flag g_segv_once;
bool g_segv_installed = false;

void write_str(const char* s) {
  if (write(2, s, std::strlen(s)) < 0) return;
}
void write_uint(unsigned long v) {
  char buf[24];
  int i = sizeof buf;
  buf[--i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  write_str(buf + i);
}

void on_segv(int sig, siginfo_t* info, void*) {
  const Worker& w = tl_worker;
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (const Stack& st : w.stacks) {
    const auto guard = reinterpret_cast<std::uintptr_t>(st.map);
    if (addr >= guard && addr < reinterpret_cast<std::uintptr_t>(st.base)) {
      write_str("ditty cuda emulator: a CUDA thread overflowed its ");
      write_uint(st.size / 1024);
      write_str(" KiB fiber stack (per-thread arrays too large?); set DITTY_EMU_STACK_KIB higher");
      if (w.current) {
        const ThreadState& ts = w.current->ts;
        write_str("\n  thread (");
        write_uint(ts.thread_idx.x);
        write_str(",");
        write_uint(ts.thread_idx.y);
        write_str(",");
        write_uint(ts.thread_idx.z);
        write_str(")");
      }
      write_str("\n");
      break;
    }
  }
  signal(sig, SIG_DFL);  // returning re-executes the access, which now takes the default action
}

void prepare_signal_stack() {
  if (tl_altstack_ready) return;
  tl_altstack_ready = true;
  std::call_once(g_segv_once, [] {
    struct sigaction old{};
    if (sigaction(SIGSEGV, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) return;
    struct sigaction sa{};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    g_segv_installed = sigaction(SIGSEGV, &sa, nullptr) == 0;
  });
  if (!g_segv_installed) return;
  stack_t cur{};
  if (sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return;  // the thread has one
  static constexpr std::size_t kAltSize = 64 * 1024;
  stack_t ss{};
  ss.ss_sp = new char[kAltSize];  // lives as long as the thread; tiny
  ss.ss_size = kAltSize;
  ss.ss_flags = 0;
  sigaltstack(&ss, nullptr);
}
#else
void prepare_signal_stack() {}
#endif

void run_block(Launch& L, std::uint64_t linear) {
  Worker& w = tl_worker;
  const unsigned n = L.nthreads;
  prepare_signal_stack();
  if (w.stacks.size() < n || (!w.stacks.empty() && w.stacks[0].size < L.cfg.stack_bytes)) {
    if (!w.stacks.empty() && w.stacks[0].size < L.cfg.stack_bytes) {
      for (auto& s : w.stacks) munmap(s.map, s.map_size);
      w.stacks.clear();
    }
    while (w.stacks.size() < n) w.stacks.push_back(make_stack(L.cfg.stack_bytes));
    w.stacks_dirty = true;
  }
  if (w.fibers_cap < n) {
    w.fibers = std::make_unique<Fiber[]>(n);
    w.fibers_cap = n;
  }
  Block b;
  b.launch = &L;
  b.linear = linear;
  b.bs.block_idx = {static_cast<unsigned>(linear % L.grid.x), static_cast<unsigned>((linear / L.grid.x) % L.grid.y),
                    static_cast<unsigned>(linear / (std::uint64_t{L.grid.x} * L.grid.y))};
  b.bs.block_dim = L.block;
  b.bs.grid_dim = L.grid;
  b.bs.epoch = g_epoch.fetch_add(1);
  // Exactly the launch's size, so that ASan reports an access past it; poisoned like static shared.
  std::unique_ptr<unsigned char[]> dyn(new unsigned char[L.shared_bytes]);
  std::memset(dyn.get(), 0xff, L.shared_bytes);
  b.bs.dynamic_shared = dyn.get();
  b.fibers = w.fibers.get();
  b.n = n;
  b.warps.assign((n + 31) / 32, Warp{});
  b.runnable_pos.assign(n, 0);
  b.runnable_list.clear();
  b.runnable_list.reserve(n);
  b.rng = L.cfg.seed * 0x9E3779B97F4A7C15ull + linear;
  const bool rev = L.cfg.schedule == Schedule::reverse || L.cfg.schedule == Schedule::warp_ahead_reverse;
  b.cursor = rev ? n - 1 : 0;
  b.warp_cursor = rev ? static_cast<unsigned>(b.warps.size()) - 1 : 0;
  b.lane_cursor = rev ? 31 : 0;
  for (unsigned t = 0; t < n; ++t) {
    Fiber& f = b.fibers[t];
    f = Fiber{};
    f.ts.thread_idx = {t % L.block.x, (t / L.block.x) % L.block.y, t / (L.block.x * L.block.y)};
    f.ts.linear = t;
    f.ts.warp = t / 32;
    f.ts.lane = t % 32;
    f.stack = w.stacks[t].base;
    f.stack_size = w.stacks[t].size;
#if DITTY_EMU_ASAN
    // Frames that returned left their shadow clean; only those that never return (the top few, where a
    // fiber ends) stay poisoned, unless a block was abandoned mid-kernel.
    const std::size_t span = w.stacks_dirty ? f.stack_size : std::min<std::size_t>(f.stack_size, 32 * 1024);
    ASAN_UNPOISON_MEMORY_REGION(f.stack + f.stack_size - span, span);
#endif
    context_init(f.ctx, f.stack, f.stack_size);
    b.warps[f.ts.warp].exists |= 1u << f.ts.lane;
    set_runnable(b, f);
  }
  w.block = &b;
  tl_block = &b.bs;
  while (!b.failed && b.done < n) {
    const int i = pick(b);
    if (i < 0) {
      std::string msg = "deadlock: no thread of the block can run;";
      for (unsigned t = 0, shown = 0; t < n && shown < 8; ++t) {
        const Fiber& f = b.fibers[t];
        if (f.state == State::done) continue;
        msg += "\n    thread " + dim_str(f.ts.thread_idx) + " waits in " + where(f);
        ++shown;
      }
      w.current = nullptr;
      report(b, nullptr, msg);
      break;
    }
    Fiber& f = b.fibers[i];
    w.current = &f;
    tl_thread = &f.ts;
    asan_enter_fiber_from_scheduler(w, f);
    context_switch(w.sched, f.ctx);
    asan_back_in_scheduler(w);
  }
  w.stacks_dirty = b.done < n;
  w.current = nullptr;
  w.block = nullptr;
  tl_thread = nullptr;
  tl_block = nullptr;
}

void run_blocks(Launch& L) {
  for (;;) {
    if (L.failed.load(std::memory_order_relaxed)) return;
    const std::uint64_t i = L.next.fetch_add(1);
    if (i >= L.nblocks) return;
    std::uint64_t linear = i;
    switch (L.cfg.schedule) {
      case Schedule::reverse:
      case Schedule::warp_ahead_reverse: linear = L.nblocks - 1 - i; break;
      case Schedule::random: linear = L.order[i]; break;
      default: break;
    }
    run_block(L, linear);
  }
}

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // Runs the launch on the calling thread and `helpers` pool threads.
  void run(Launch& L, unsigned helpers) {
    std::unique_lock lock(m_);
    while (threads_.size() < helpers) threads_.emplace_back([this] { loop(); });
    job_ = &L;
    wanted_ = helpers;
    ++generation_;
    lock.unlock();
    cv_.notify_all();
    run_blocks(L);
    lock.lock();
    done_cv_.wait(lock, [&] { return wanted_ == 0 && busy_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop() {
    std::uint64_t seen = 0;
    std::unique_lock lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || (generation_ != seen && wanted_ > 0); });
      if (stop_) return;
      seen = generation_;
      --wanted_;
      ++busy_;
      Launch* L = job_;
      lock.unlock();
      run_blocks(*L);
      lock.lock();
      --busy_;
      done_cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> threads_;
  Launch* job_ = nullptr;
  std::uint64_t generation_ = 0;
  unsigned wanted_ = 0, busy_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}
std::mutex g_launch_mutex;  // launches from several host threads take turns

}  // namespace

thread_local constinit ThreadState* tl_thread = nullptr;
thread_local constinit BlockState* tl_block = nullptr;

void outside_kernel(const char* what, std::source_location loc) {
  const std::string msg = std::string("ditty cuda emulator: ") + what + " used outside a kernel at " + loc.file_name() +
                          ":" + std::to_string(loc.line()) + " in " + loc.function_name();
  if (snapshot().throw_on_error) throw Error(msg);
  std::fprintf(stderr, "%s\n", msg.c_str());
  std::abort();
}

void set_schedule(const std::string& name) {
  const auto [s, seed] = parse_schedule(name);
  Config& c = config();
  std::lock_guard lock(c.m);
  ensure_config_locked(c);
  c.schedule = s;
  c.seed = seed;
}
std::string schedule_name() {
  const Snapshot s = snapshot();
  std::string name = kScheduleNames[static_cast<int>(s.schedule)];
  if (s.schedule == Schedule::random) name += ":" + std::to_string(s.seed);
  return name;
}
const char* const* schedule_names() { return kScheduleNames; }
void set_throw_on_error(bool on) {
  Config& c = config();
  std::lock_guard lock(c.m);
  ensure_config_locked(c);
  c.throw_on_error = on;
}
void set_threads(unsigned n) {
  Config& c = config();
  std::lock_guard lock(c.m);
  ensure_config_locked(c);
  c.threads = std::max(1u, n);
}
unsigned threads() { return snapshot().threads; }

unsigned live_lanes() {
  Worker& w = tl_worker;
  if (!w.current) return 0;
  const Warp& wp = w.block->warps[w.current->ts.warp];
  return wp.exists & ~wp.exited;
}

BarrierResult block_barrier(int predicate, const char* what, std::source_location loc) {
  auto [w, b, f] = current(what, loc);
  if (b.done > 0) {
    const Fiber* gone = first_in(b, State::done);
    fiber_fail(b, f, &f,
               std::string(what) + " reached after " + std::to_string(b.done) + " thread(s) of the block exited (e.g. thread " +
                   dim_str(gone->ts.thread_idx) + "): every thread must reach each __syncthreads");
  }
  const Warp& wp = b.warps[f.ts.warp];
  for (unsigned m = wp.pending; m; m &= m - 1) {
    const Fiber& k = b.fibers[f.ts.warp * 32 + __builtin_ctz(m)];
    if ((k.mask >> f.ts.lane) & 1u)
      fiber_fail(b, f, &f,
                 "lanes meet different collectives: " + lane_desc(f) + " reached " + what + " while " + lane_desc(k) +
                     " waits for it in " + collective_desc(k));
  }
  set_blocked(b, f, State::barrier);
  ++b.at_barrier;
  b.bar_count += predicate;
  b.bar_all &= predicate;
  b.bar_any |= predicate;
  if (b.at_barrier == b.n) release_barrier(b);
  yield_fiber(w, f, false);
  return b.bar_result;
}

std::uint64_t warp_collective(Op op, unsigned mask, std::uint64_t value, unsigned value_size, int arg, int width,
                              const char* what, std::source_location loc) {
  auto [w, b, f] = current(what, loc);
  f.mask = mask;  // for the messages below
  const unsigned bit = 1u << f.ts.lane;
  if (!(mask & bit))
    fiber_fail(b, f, &f, lane_desc(f) + " calls " + what + " with mask " + hex(mask) + ", which omits the lane itself");
  if (width < 1 || width > 32 || (width & (width - 1)))
    fiber_fail(b, f, &f, std::string(what) + ": width " + std::to_string(width) + " is not a power of two in [1, 32]");
  Warp& wp = b.warps[f.ts.warp];
  Fiber* lanes = b.fibers + f.ts.warp * 32;
  f.op = op;
  f.value = value;
  f.value_size = value_size;
  f.arg = arg;
  f.width = width;
  // Two lanes that wait for each other in different collectives can never both finish. (One that waits
  // for a lane busy in another collective is fine: that lane may come next; cycles are deadlocks.)
  for (unsigned m = wp.pending & mask; m; m &= m - 1) {
    const Fiber& k = lanes[__builtin_ctz(m)];
    if ((k.mask & bit) && !same_collective(k, f))
      fiber_fail(b, f, &f,
                 "lanes meet different collectives: " + lane_desc(f) + " is in " + what + "(mask " + hex(mask) +
                     ") while " + lane_desc(k) + " waits in " + collective_desc(k));
  }
  for (unsigned m = mask & wp.exists & ~wp.exited & ~bit; m; m &= m - 1) {
    const Fiber& k = lanes[__builtin_ctz(m)];
    if (k.state == State::barrier)
      fiber_fail(b, f, &f,
                 "lanes meet different collectives: " + lane_desc(f) + " is in " + what + "(mask " + hex(mask) +
                     ") while " + lane_desc(k) + ", which the mask names, waits in " + where(k));
  }
  set_blocked(b, f, State::collective);
  wp.pending |= bit;
  try_resolve(b, f, f.ts.warp, f);
  yield_fiber(w, f, false);
  return f.result;
}

void launch_impl(const void* kernel, dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream, Thunk thunk,
                 void* pack) {
  if (tl_worker.current)
    outside_kernel("a kernel launch from device code (dynamic parallelism is not emulated)", std::source_location::current());
  if (!stream_valid(stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 || threads > 1024 ||
      grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    return set_last_error(cudaErrorInvalidConfiguration);
  if (shared_bytes > static_cast<std::size_t>(max_dynamic_shared(kernel))) return set_last_error(cudaErrorInvalidValue);

  Launch L;
  L.kernel = kernel;
  L.thunk = thunk;
  L.pack = pack;
  L.grid = grid;
  L.block = block;
  L.shared_bytes = shared_bytes;
  L.nblocks = std::uint64_t{grid.x} * grid.y * grid.z;
  L.nthreads = static_cast<unsigned>(threads);
  L.cfg = snapshot();
  if (L.cfg.schedule == Schedule::random) {
    L.order.resize(L.nblocks);
    for (std::uint64_t i = 0; i < L.nblocks; ++i) L.order[i] = i;
    std::uint64_t s = L.cfg.seed;
    for (std::uint64_t i = L.nblocks; i > 1; --i) std::swap(L.order[i - 1], L.order[splitmix(s) % i]);
  }
  {
    std::lock_guard lock(g_launch_mutex);
    const auto helpers = static_cast<unsigned>(std::min<std::uint64_t>(L.cfg.threads, L.nblocks) - 1);
    if (helpers == 0)
      run_blocks(L);
    else
      pool().run(L, helpers);
  }
  if (L.failed) throw Error(L.error);
}

}  // namespace ditty::cuda::emu

using namespace ditty::cuda::emu;

extern "C" void ditty_emu_fiber_main() {
  Worker& w = tl_worker;
  Fiber& f = *w.current;
  Block& b = *w.block;
#if DITTY_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &w.sched_bottom, &w.sched_size);
#endif
  std::string escaped;
  try {
    b.launch->thunk(b.launch->pack);
  } catch (const std::exception& e) {
    escaped = e.what();
  } catch (...) {
    escaped = "(not a std::exception)";
  }
  // outside the handler: a fiber must not switch away while an exception is being handled
  if (!escaped.empty()) fiber_fail(b, f, &f, "an exception escaped the kernel: " + escaped);
  fiber_exit(w, b, f);
}
