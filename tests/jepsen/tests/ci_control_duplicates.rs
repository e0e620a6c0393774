//! CI negative control: the failpoints binary with
//! `api_ignore_idempotency_key=1`, clients resending creates under one
//! key — the set checker must flag duplicates. The run passes when it does.

mod ci;

#[test]
fn resent_creates_without_deduplication_are_flagged_as_duplicates() {
    ci::run_profile("duplicates");
}
