//! The dense inner loop of scoring, `out += w * x`, compiled twice: for
//! the baseline x86-64 the binary targets (SSE2, four lanes) and for CPUs
//! with AVX2 and FMA (eight lanes, fused), chosen at run time. Every served
//! model with dense rows (EASE, item-kNN with all neighbours) spends its
//! time here.

/// `out[i] += w * x[i]` over the shorter of the two.
// Calling a `target_feature` function is unsafe; the check before the call
// is what makes it sound.
#[allow(unsafe_code)]
pub fn axpy(out: &mut [f32], w: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { axpy_avx2(out, w, x) };
        return;
    }
    axpy_portable(out, w, x);
}

#[inline(always)]
fn axpy_portable(out: &mut [f32], w: f32, x: &[f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += w * v;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn axpy_avx2(out: &mut [f32], w: f32, x: &[f32]) {
    // The same loop; the target features let the compiler vectorise it
    // eight lanes wide with fused multiply-adds.
    for (o, v) in out.iter_mut().zip(x) {
        *o = v.mul_add(w, *o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_compute_the_same_sums() {
        let x: Vec<f32> = (0..1003).map(|i| (i as f32).sin()).collect();
        let mut fast = vec![1.0f32; 1003];
        let mut plain = vec![1.0f32; 1003];
        axpy(&mut fast, 0.5, &x);
        axpy_portable(&mut plain, 0.5, &x);
        for (a, b) in fast.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!((fast[2] - (1.0 + 0.5 * 2f32.sin())).abs() < 1e-6);
    }
}
