// The launcher of the host emulation (see cuda_emulation.h): runs a kernel body for every thread
// of every block, each thread a ucontext fiber on the calling OS thread.
//
// Scheduling is adversarial for missing barriers: the scheduler always resumes the lowest-numbered
// thread that can run (every other launch: the highest-numbered), which runs until it waits on a
// barrier or ends. So one side of the block runs as far ahead of the rest as the barriers allow:
// a read that a missing __syncthreads / __syncwarp should have ordered after another thread's
// write sees the old value, and the kernel's output differs from its CPU twin.
#include "cuda_emulation.h"

#include <memory>
#include <stdlib.h>
#include <ucontext.h>
#include <vector>

thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace strata_emulation {
namespace {

constexpr size_t STACK_BYTES = 256 * 1024;

// Threads of a group (block or warp) still running, how many of them wait, and a generation
// number that moves on each time they have all arrived.
struct Barrier {
    unsigned alive = 0, arrived = 0, generation = 0;
};

// An asynchronous copy to shared memory not yet made: `bytes` from `src`, then `fill` zero bytes.
struct AsyncCopy {
    void *dst;
    const void *src;
    unsigned bytes, fill;
};

struct Fiber {
    ucontext_t context;
    // Copies issued and not yet made, and where each committed batch of them ends.
    std::vector<AsyncCopy> pending;
    std::vector<size_t> batch_ends;
    std::unique_ptr<char[]> stack; // not zero-filled: pages a fiber never touches stay unmapped
    dim3 index;
    bool done = false;
    // The barrier this thread waits on and its generation then (none: runnable).
    const Barrier *waiting_on = nullptr;
    unsigned waiting_generation = 0;

    bool runnable() const {
        return !done && (waiting_on == nullptr || waiting_on->generation != waiting_generation);
    }
};

struct Block {
    void (*body)(void *) = nullptr;
    void *user = nullptr;
    ucontext_t scheduler;
    std::vector<Fiber> fibers;
    Barrier block;
    std::vector<Barrier> warps;
    std::vector<uint64_t> shuffle;
    unsigned current = 0;
    // Asynchronous copies land at once (the earliest the device may make them: a buffer still
    // being read is overwritten) or when their thread waits for them (the latest: a read before
    // the wait sees stale data); launches alternate between the two.
    bool eager_copies = false;
    // Dynamic shared memory, 128-byte aligned within `shared_storage`.
    std::vector<unsigned char> shared_storage;
    unsigned char *shared = nullptr;
    uint32_t shared_bytes = 0;
};

thread_local Block *running = nullptr;

void release_if_complete(Barrier &b) {
    if (b.arrived > 0 && b.arrived == b.alive) {
        b.arrived = 0;
        b.generation++;
    }
}

void wait(Barrier &b) {
    Block &blk = *running;
    const unsigned generation = b.generation;
    b.arrived++;
    release_if_complete(b);
    if (b.generation != generation) return; // the last to arrive goes on
    Fiber &f = blk.fibers[blk.current];
    f.waiting_on = &b;
    f.waiting_generation = generation;
    swapcontext(&f.context, &blk.scheduler); // resumed once the generation has moved on
    f.waiting_on = nullptr;
}

void fiber_main();

// Separate and not inlined: getcontext returns twice, which must not concern the launcher's loop.
__attribute__((noinline)) void start_fiber(Fiber &f, ucontext_t *scheduler) {
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = STACK_BYTES;
    f.context.uc_link = scheduler;
    makecontext(&f.context, fiber_main, 0);
}

// Marks the running thread ended and releases the barriers that no longer wait for it.
void end_thread() {
    Block &blk = *running;
    Fiber &f = blk.fibers[blk.current];
    f.done = true;
    blk.block.alive--;
    release_if_complete(blk.block);
    Barrier &w = blk.warps[blk.current / 32];
    w.alive--;
    release_if_complete(w);
}

void fiber_main() {
    Block &blk = *running;
    blk.body(blk.user);
    if (!blk.fibers[blk.current].pending.empty()) fault("a thread ended with asynchronous copies it never waited for");
    end_thread();
    // returns to the scheduler through uc_link
}

// Runs one block to its end: 0, or 1 when live threads all wait on barriers that cannot complete.
int run_block(Block &blk, unsigned threads, bool reverse) {
    unsigned live = threads;
    while (live > 0) {
        unsigned t = threads;
        for (unsigned i = 0; i < threads; i++) {
            const unsigned candidate = reverse ? threads - 1 - i : i;
            if (blk.fibers[candidate].runnable()) {
                t = candidate;
                break;
            }
        }
        if (t == threads) return 1;
        Fiber &f = blk.fibers[t];
        blk.current = t;
        threadIdx = f.index;
        swapcontext(&blk.scheduler, &f.context);
        if (f.done) live--;
    }
    return 0;
}

} // namespace

// The first broken API contract of the current launch (see fault()), or null.
static thread_local const char *first_fault = nullptr;

void fault(const char *what) {
    if (!first_fault) first_fault = what;
}

void trap() {
    fault("a thread called __trap()");
    running->fibers[running->current].pending.clear();
    end_thread();
    setcontext(&running->scheduler);
    abort(); // setcontext returns only on failure
}

unsigned char *dynamic_shared() { return running->shared; }
uint32_t dynamic_shared_size() { return running->shared_bytes; }

void sync_block() { wait(running->block); }

void make_copy(const AsyncCopy &c) {
    memcpy(c.dst, c.src, c.bytes);
    memset((char *)c.dst + c.bytes, 0, c.fill);
}

void async_copy(void *dst, const void *src, unsigned bytes, unsigned fill) {
    if (running->eager_copies)
        make_copy({dst, src, bytes, fill});
    else
        running->fibers[running->current].pending.push_back({dst, src, bytes, fill});
}

void async_commit() {
    Fiber &f = running->fibers[running->current];
    f.batch_ends.push_back(f.pending.size());
}

void async_wait_prior(size_t prior) {
    Fiber &f = running->fibers[running->current];
    if (f.batch_ends.size() <= prior) return;
    const size_t done = f.batch_ends[f.batch_ends.size() - 1 - prior];
    for (size_t i = 0; i < done; i++) make_copy(f.pending[i]);
    f.pending.erase(f.pending.begin(), f.pending.begin() + done);
    f.batch_ends.erase(f.batch_ends.begin(), f.batch_ends.end() - prior);
    for (size_t &end : f.batch_ends) end -= done;
}
void sync_warp() { wait(running->warps[running->current / 32]); }
uint64_t &shuffle_slot() { return running->shuffle[running->current]; }
uint64_t &shuffle_slot_of_lane(unsigned lane) {
    return running->shuffle[running->current / 32 * 32 + lane];
}

} // namespace strata_emulation

using namespace strata_emulation;

// The most dynamic shared memory a block may ask for (compute capability 9.0: 227 KB).
constexpr uint32_t MAX_SHARED_BYTES = 227 * 1024;

// Runs `body(user)` as every thread of a `grid` x `block` launch with `shared_bytes` of dynamic
// shared memory per block. Returns 0, 1 when the threads of a block deadlock on a barrier, 2 for
// an empty or oversized launch, 3 when a thread broke an API contract or trapped
// (strata_emulate_fault says which).
extern "C" int strata_emulate_launch(const uint32_t grid[3], const uint32_t block[3], uint32_t shared_bytes,
                                     void (*body)(void *), void *user) {
    const unsigned threads = block[0] * block[1] * block[2];
    if (threads == 0 || threads > 1024 || grid[0] * grid[1] * grid[2] == 0 || shared_bytes > MAX_SHARED_BYTES)
        return 2;
    // Every other launch on this OS thread favours the highest-numbered threads instead; every
    // other pair of launches makes asynchronous copies at once.
    static thread_local unsigned launches = 0;
    const bool reverse = launches % 2 == 1;
    Block blk;
    blk.eager_copies = launches++ / 2 % 2 == 1;
    blk.body = body;
    blk.user = user;
    blk.fibers.resize(threads);
    for (Fiber &f : blk.fibers) f.stack.reset(new char[STACK_BYTES]);
    blk.shuffle.resize((threads + 31) / 32 * 32);
    blk.shared_storage.resize(shared_bytes + 128);
    blk.shared = blk.shared_storage.data() + (128 - (uintptr_t)blk.shared_storage.data() % 128) % 128;
    blk.shared_bytes = shared_bytes;
    Block *outer = running;
    running = &blk;
    first_fault = nullptr;
    const dim3 saved_grid = gridDim, saved_block = blockDim, saved_index = blockIdx;
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    int status = 0;
    for (unsigned bz = 0; bz < grid[2] && status == 0; bz++)
        for (unsigned by = 0; by < grid[1] && status == 0; by++)
            for (unsigned bx = 0; bx < grid[0] && status == 0; bx++) {
                blockIdx = {bx, by, bz};
                blk.block = {threads, 0, 0};
                blk.warps.assign((threads + 31) / 32, Barrier{});
                memset(blk.shared, 0xff, shared_bytes);
                for (unsigned t = 0; t < threads; t++) {
                    Fiber &f = blk.fibers[t];
                    f.index = {t % block[0], t / block[0] % block[1], t / (block[0] * block[1])};
                    f.done = false;
                    f.waiting_on = nullptr;
                    f.pending.clear();
                    f.batch_ends.clear();
                    blk.warps[t / 32].alive++;
                    start_fiber(f, &blk.scheduler);
                }
                status = run_block(blk, threads, reverse);
            }
    gridDim = saved_grid;
    blockDim = saved_block;
    blockIdx = saved_index;
    running = outer;
    return first_fault ? 3 : status; // a trap leaves the rest of its block waiting: report the trap
}

// What the last launch that returned 3 broke.
extern "C" const char *strata_emulate_fault() { return first_fault ? first_fault : ""; }
