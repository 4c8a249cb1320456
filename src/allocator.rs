//! Which allocator the server binary uses, in one place.
//!
//! The choice is made by cargo feature and installed by [`server_allocator!`]
//! in each binary that must measure what the server runs: `cohortd` itself and
//! the benchmark example `reload_time`, which runs the reload in-process (a reload timed
//! under another allocator than the server's says little: most of a reload's
//! CPU is allocation, docs/benchmarks.md "Allocator"). It is not a
//! `#[global_allocator]` in this library because tests install their own
//! counting allocator (`tests/exposure_alloc.rs`, `tests/flagd_alloc.rs`) and a
//! program may have only one.
//!
//! * `jemalloc` (default): jemalloc 5.3 built from source by tikv-jemalloc-sys,
//!   symbols prefixed (`_rjem_`), so C code keeps glibc's malloc. Its settings
//!   are compiled in from `.cargo/config.toml` (one arena, a background thread
//!   that returns dirty pages after 1 s) and can be overridden at run time with
//!   `_RJEM_MALLOC_CONF`. It halves a large reload's CPU against glibc's for the
//!   same idle RSS goal (docs/benchmarks.md, "Allocator, measured again").
//! * system allocator (glibc on Linux, `--no-default-features`), with
//!   `malloc_trim` after bursts (`src/main.rs`, [`crate::transport::mem_return`]);
//! * `mimalloc` (`--no-default-features --features mimalloc`): kept to compare.

#[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
compile_error!(
    "features `jemalloc` (a default one) and `mimalloc` both choose the global allocator: \
     build with `--no-default-features --features mimalloc`"
);

#[cfg(feature = "jemalloc")]
#[doc(hidden)]
pub use tikv_jemallocator;

#[cfg(feature = "mimalloc")]
#[doc(hidden)]
pub use mimalloc;

/// Installs the allocator chosen by cargo feature as `#[global_allocator]`
/// (nothing with the default, the system allocator). Call once at the top
/// level of a binary of this package; the features are the package's, so the
/// `cfg`s below agree with this library's.
#[macro_export]
macro_rules! server_allocator {
    () => {
        #[cfg(feature = "jemalloc")]
        #[global_allocator]
        static GLOBAL: $crate::allocator::tikv_jemallocator::Jemalloc =
            $crate::allocator::tikv_jemallocator::Jemalloc;
        #[cfg(feature = "mimalloc")]
        #[global_allocator]
        static GLOBAL: $crate::allocator::mimalloc::MiMalloc =
            $crate::allocator::mimalloc::MiMalloc;
    };
}
