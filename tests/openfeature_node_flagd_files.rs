//! The real OpenFeature Node flagd provider (@openfeature/flagd-provider, pinned
//! in tests/node/package-lock.json) in IN-PROCESS mode against a `cohortd serve`
//! on the flagd-format file of tests/support/providers.rs: the provider syncs the set
//! from cohortd's flagd.sync.v1 service and evaluates it with its own
//! @openfeature/flagd-core 4.x, whose `fractional` is the high-precision form
//! over flagKey + targetingKey (its `fractional()` picks the bucket
//! `(murmur3(bucketBy) * totalWeight) >> 32`), so cohortd runs with
//! `--flagd-fractional v2`. Every answer must equal cohortd's own offline
//! answer, before and after the file is rewritten (tests/node/flagd_inprocess.mjs).

mod support;

use std::process::Command;
use std::time::Duration;

use support::providers::{drive, tests_dir, FlagdServe};
use support::runners::installed;

#[test]
fn node_flagd_provider_in_process_on_flagd_files_matches_cohortd() {
    if installed(
        "tests/node/node_modules/@openfeature/flagd-provider",
        ".ci/setup-node.sh",
    )
    .is_none()
    {
        return;
    }
    let srv = FlagdServe::start("v2");
    let mut cmd = Command::new(std::env::var_os("COHORTD_NODE").unwrap_or_else(|| "node".into()));
    cmd.current_dir(tests_dir().join("node"))
        .arg("flagd_inprocess.mjs")
        .arg(srv.sync.port().to_string());
    drive(
        &srv,
        cmd,
        Duration::from_secs(120),
        "the Node flagd provider (in-process)",
    );
}
