//! Every CUDA kernel's source, run on the CPU by the emulator, against its CPU twin: the same
//! checks (`strata_kernels::conformance`) as the `gpu_*` tests run on a GPU.
use strata_kernel_emulator as emulated;
use strata_kernels::conformance;

#[test]
fn lens_stats_kernel_matches_cpu_twin() {
    conformance::lens_stats(emulated::lens_stats);
}

#[test]
fn scatter_patches_kernel_matches_cpu_twin() {
    conformance::scatter_patches(emulated::scatter_patches);
}

#[test]
fn gated_act_kernel_matches_cpu_twin() {
    conformance::gated_act(emulated::gated_act);
}

#[test]
fn masked_softmax_kernel_matches_cpu_twin() {
    conformance::masked_softmax(emulated::masked_softmax);
}

#[test]
fn row_norm_kernel_matches_cpu_twin() {
    conformance::row_norm(emulated::row_norm);
}

#[test]
fn split_heads_kernel_matches_cpu_twin() {
    conformance::split_heads(emulated::split_heads);
}

#[test]
fn fused_attention_kernel_matches_cpu_twin() {
    conformance::fused_attention(emulated::fused_attention);
}
