//! CI profile: the `pause` and `databases` nemesis families (one node
//! or every node's MariaDB at once) against a real 3-node cluster, each
//! node with its own MariaDB, for 45 s with a fixed seed (see
//! `harness::profile`). Passes when every check passes and the run met
//! its floors; the report is under `target/jepsen/ci-pause-*/`.

mod ci;

#[test]
fn a_cluster_under_the_pause_nemesis_stays_correct() {
    ci::run_profile("pause");
}
