//! The process's resident memory, from Linux's `/proc/self`: how much a
//! training took at its peak. Elsewhere the figures are simply absent.

/// Starts a new peak: Linux's high-water mark (`VmHWM`) is set back to the
/// current resident size, so the next [`peak_rss_bytes`] covers only what
/// happens from here (writing 5 to `clear_refs`, Linux 4.0+).
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The highest resident size since the process started or the last
/// [`reset_peak`].
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_peak_covers_an_allocation_and_starts_again_after_a_reset() {
        reset_peak();
        let before = peak_rss_bytes().expect("Linux reports VmHWM");
        let block = vec![1u8; 256 << 20];
        std::hint::black_box(&block);
        let during = peak_rss_bytes().unwrap();
        assert!(during >= before + (200 << 20), "{before} -> {during}");
        drop(block);
        reset_peak();
        let after = peak_rss_bytes().unwrap();
        assert!(after < during - (200 << 20), "{during} -> {after}");
    }
}
