//! CI negative control: a follower isolated while readers read its local
//! copy (`consistency=local`) — the linearizability checker must flag the
//! stale reads. The run passes when it does.

mod ci;

#[test]
fn stale_local_reads_from_an_isolated_follower_are_flagged() {
    ci::run_profile("stale-read");
}
