// Host stand-in for the CUDA language features strata's kernels use, force-included before each
// kernels/*.cu when it is compiled as C++ for the CPU (see build.rs). Every CUDA thread of a block
// is a fiber on the launching OS thread; __syncthreads and the warp shuffles are real barriers
// between those fibers (launch.cpp), so a kernel's indexing, reductions and synchronisation run
// as written. Not emulated: the memory model (no data race detection), the warp's lock-step
// execution beyond the shuffles, and CUDA's math-library rounding (host libm is used).
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Shared memory: one instance per OS thread; a launch runs all its fibers on one OS thread and
// its blocks one after another, so each block sees its own (launches on other threads, too).
#define __shared__ static thread_local
// Dynamic shared memory: the launch's (strata_emulate_launch's shared_bytes), fresh for each block
// and filled with 0xff bytes (NaN in every float type), as the device leaves it uninitialised.
#define STRATA_EMULATION 1
#define DYNAMIC_SHARED(T, name) T *name = reinterpret_cast<T *>(strata_emulation::dynamic_shared())

struct uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

extern thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace strata_emulation {
// The calling fiber waits until every live thread of its block (or warp) has arrived.
void sync_block();
void sync_warp();
// Records that the calling thread broke a CUDA API contract the host would let pass (the launch
// then fails with `what`); the thread goes on.
void fault(const char *what);
// Ends the calling thread and fails the launch, as __trap() aborts a kernel on the device.
[[noreturn]] void trap();
// The block's dynamic shared memory and its size in bytes.
unsigned char *dynamic_shared();
uint32_t dynamic_shared_size();
// Asynchronous copies to shared memory (cuda_pipeline_primitives.h): made at once in some launches,
// in others only when the thread waits for their batch (launch.cpp).
void async_copy(void *dst, const void *src, unsigned bytes, unsigned fill);
void async_commit();
void async_wait_prior(size_t prior);
// This thread's slot in the block's shuffle buffer, and the slot of `lane` in its warp.
uint64_t &shuffle_slot();
uint64_t &shuffle_slot_of_lane(unsigned lane);
} // namespace strata_emulation

inline void __syncthreads() { strata_emulation::sync_block(); }
inline uint32_t dynamic_shared_bytes() { return strata_emulation::dynamic_shared_size(); }
[[noreturn]] inline void __trap() { strata_emulation::trap(); }
inline void __syncwarp(unsigned /*mask*/ = 0xffffffffu) { strata_emulation::sync_warp(); }

inline unsigned strata_emulation_lane() {
    return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32;
}

template <typename T> T __shfl_xor_sync(unsigned /*mask*/, T v, int lane_mask, int width = 32) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffles move up to 8 bytes");
    (void)width;
    memcpy(&strata_emulation::shuffle_slot(), &v, sizeof(T));
    strata_emulation::sync_warp();
    T r;
    memcpy(&r, &strata_emulation::shuffle_slot_of_lane(strata_emulation_lane() ^ (unsigned)lane_mask), sizeof(T));
    strata_emulation::sync_warp(); // nobody overwrites a slot before every lane has read it
    return r;
}

// Whether `predicate` holds on any live lane of the warp.
inline bool __any_sync(unsigned /*mask*/, bool predicate) {
    strata_emulation::shuffle_slot() = predicate;
    strata_emulation::sync_warp();
    bool any = false;
    for (unsigned lane = 0; lane < 32; lane++) any |= strata_emulation::shuffle_slot_of_lane(lane) != 0;
    strata_emulation::sync_warp();
    return any;
}

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); } // the device's is approximate (ex2.approx)
inline float normcdff(float x) { return 0.5f * erfcf(-x * (float)M_SQRT1_2); }
