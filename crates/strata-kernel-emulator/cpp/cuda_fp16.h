// Host stand-in for CUDA's <cuda_fp16.h>: the storage type and its conversions, through the
// compiler's IEEE binary16 (_Float16: round to nearest even, as the device converts).
#pragma once
#include <stdint.h>
#include <string.h>

struct __half {
    uint16_t bits;
};

inline float __half2float(__half v) {
    _Float16 h;
    memcpy(&h, &v.bits, sizeof h);
    return (float)h;
}

inline __half __float2half(float f) {
    const _Float16 h = (_Float16)f;
    __half v;
    memcpy(&v.bits, &h, sizeof h);
    return v;
}
