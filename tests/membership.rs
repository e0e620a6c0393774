//! Membership changes on a real cluster: a node joins as a learner and
//! promotes itself, a member is removed and stops, refused changes say why,
//! a node whose data was lost never comes back as a voter, and every
//! member's URL is part of the membership the log carries.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
fn a_new_node_joins_as_a_learner_catches_up_and_becomes_a_voter() {
    let mut cluster = Cluster::start(3);
    for i in 0..40 {
        assert_eq!(
            create_titled(&cluster.url(1 + i % 3), &format!("before {i}")).status,
            201
        );
    }
    let id = cluster.add_joining_node();
    assert_eq!(id, 4);
    let view = cluster.wait_membership(1, &[1, 2, 3, 4], &[], Duration::from_secs(30));
    let joined = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == 4)
        .unwrap()
        .clone();
    assert_eq!(
        joined["url"],
        cluster.url(4),
        "the cluster knows where the new node serves"
    );
    let cluster_id = view["cluster_id"].as_str().unwrap().to_string();
    let own = get(&format!("{}/api/cluster", cluster.url(4))).body;
    assert_eq!(
        own["cluster_id"],
        cluster_id.as_str(),
        "the new node belongs to the same cluster"
    );

    // It holds everything, serves linearizable reads and takes writes.
    let created = create_titled(&cluster.url(4), "written through node 4");
    assert_eq!(created.status, 201, "{:?}", created.body);
    cluster.wait_caught_up(4, Duration::from_secs(30));
    assert_eq!(
        all_tasks(&cluster.url(4), "linearizable"),
        all_tasks(&cluster.url(1), "linearizable")
    );
    assert_eq!(all_events(&cluster.url(4)), all_events(&cluster.url(2)));
    let check = cluster.rebuild_check(4);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // It survives a restart as a voter.
    cluster.kill(4);
    cluster.restart(4);
    cluster.wait_membership(4, &[1, 2, 3, 4], &[], Duration::from_secs(30));
}

#[test]
fn a_removed_member_stops_and_the_rest_carry_on() {
    let mut cluster = Cluster::start(3);
    let id = cluster.add_joining_node();
    cluster.wait_membership(1, &[1, 2, 3, 4], &[], Duration::from_secs(30));
    let leader = cluster.leader(Duration::from_secs(10));
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    // Any node takes the request; a follower forwards it to the leader.
    let removed = send(
        "DELETE",
        &format!("{}/api/cluster/members/{id}", cluster.url(follower)),
        &[],
        None,
    );
    assert_eq!(removed.status, 202, "{:?}", removed.body);
    let status = cluster
        .wait_exit(id, Duration::from_secs(15))
        .expect("the removed node stops");
    assert!(status.success(), "it exits cleanly: {status}");
    cluster.wait_membership(leader, &[1, 2, 3], &[], Duration::from_secs(10));
    assert_eq!(
        create_titled(&cluster.url(follower), "after the removal").status,
        201
    );

    // Started again without `join`, it refuses to act as a member.
    cluster.set_env(id, "TASKRAFT_JOIN", "");
    cluster.spawn(id);
    let status = cluster
        .wait_exit(id, Duration::from_secs(30))
        .expect("it refuses to start");
    assert!(!status.success());
    let log = tail(&cluster.node(id).log, 5);
    assert!(log.contains("was removed"), "it says why: {log}");

    // With `join`, it asks to be added again: a learner, then a voter.
    cluster.set_env(
        id,
        "TASKRAFT_JOIN",
        &format!("{},{}", cluster.url(1), cluster.url(2)),
    );
    cluster.restart(id);
    cluster.wait_membership(leader, &[1, 2, 3, id], &[], Duration::from_secs(30));
}

#[test]
fn membership_requests_that_cannot_apply_are_refused_with_reasons() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(10));
    let url = cluster.url(leader);
    let members = format!("{url}/api/cluster/members");
    let add = |body: serde_json::Value| send("POST", &members, &[], Some(&body));

    let existing = add(json!({"id": 2, "raft_addr": "127.0.0.1:1", "role": "learner"}));
    assert_eq!(
        (existing.status, existing.error_code()),
        (409, Some("already_member"))
    );
    let not_learner = add(json!({"id": 9, "role": "voter"}));
    assert_eq!(
        (not_learner.status, not_learner.error_code()),
        (409, Some("not_a_learner"))
    );
    let no_addr = add(json!({"id": 9, "role": "learner"}));
    assert_eq!(no_addr.status, 400);
    let unknown = send("DELETE", &format!("{members}/9"), &[], None);
    assert_eq!(unknown.status, 404);
    let itself = send("DELETE", &format!("{members}/{leader}"), &[], None);
    assert_eq!(
        (itself.status, itself.error_code()),
        (409, Some("leader_cannot_remove_itself"))
    );

    // A learner that never shows up is added, stays a learner, and goes.
    let ghost = add(
        json!({"id": 9, "raft_addr": "127.0.0.1:1", "url": "http://127.0.0.1:1", "role": "learner"}),
    );
    assert_eq!(ghost.status, 202, "{:?}", ghost.body);
    cluster.wait_membership(leader, &[1, 2, 3], &[9], Duration::from_secs(10));
    let again = add(json!({"id": 9, "raft_addr": "127.0.0.1:1", "role": "learner"}));
    assert_eq!(
        again.status, 202,
        "adding the same learner again is no change"
    );
    assert_eq!(
        create_titled(&url, "a learner does not count towards the quorum").status,
        201
    );
    assert_eq!(
        send("DELETE", &format!("{members}/9"), &[], None).status,
        202
    );
    cluster.wait_membership(leader, &[1, 2, 3], &[], Duration::from_secs(10));
}

#[test]
fn a_node_whose_data_was_lost_never_comes_back_as_a_voter() {
    let mut cluster = Cluster::start(3);
    create_titled(&cluster.url(1), "something committed");
    cluster.kill(3);
    std::fs::remove_dir_all(&cluster.node(3).data_dir).unwrap();

    // Its MySQL still says it applied entries its (empty) log lacks.
    cluster.spawn(3);
    let status = cluster
        .wait_exit(3, Duration::from_secs(30))
        .expect("it refuses to start");
    assert!(!status.success());
    assert!(tail(&cluster.node(3).log, 5).contains("refusing to start"));

    // Told to join, it learns it is still a member, and refuses too.
    let urls = format!("{},{}", cluster.url(1), cluster.url(2));
    cluster.set_env(3, "TASKRAFT_JOIN", &urls);
    cluster.spawn(3);
    let status = cluster
        .wait_exit(3, Duration::from_secs(30))
        .expect("it refuses to start");
    assert!(!status.success());
    let log = tail(&cluster.node(3).log, 5);
    assert!(
        log.contains("already a member") || log.contains("refusing"),
        "{log}"
    );
    let leader = cluster.leader(Duration::from_secs(10));
    assert_eq!(
        create_titled(&cluster.url(leader), "the others carry on").status,
        201
    );
}

#[test]
fn leadership_can_be_handed_over_through_any_node() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(10));
    let target = (1..=3).find(|n| *n != leader).unwrap();
    let asked = (1..=3).find(|n| *n != leader && *n != target).unwrap();
    let r = send(
        "POST",
        &format!("{}/api/cluster/leader", cluster.url(asked)),
        &[],
        Some(&json!({ "to": target })),
    );
    assert_eq!(
        r.status, 202,
        "a follower forwards the request: {:?}",
        r.body
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cluster.leader(Duration::from_secs(10)) != target {
        assert!(
            std::time::Instant::now() < deadline,
            "node {target} never took over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = send(
        "POST",
        &format!("{}/api/cluster/leader", cluster.url(target)),
        &[],
        Some(&json!({ "to": 9 })),
    );
    assert_eq!(
        (refused.status, refused.error_code()),
        (409, Some("cannot_transfer"))
    );
}

#[test]
fn peers_without_the_cluster_secret_are_refused() {
    let mut cluster =
        Cluster::start_with(3, &[("TASKRAFT_CLUSTER_SECRET", "s3cret-of-this-cluster")]);
    assert_eq!(
        create_titled(&cluster.url(1), "behind a secret").status,
        201
    );
    let leader = cluster.leader(Duration::from_secs(10));
    let outsider = (1..=3).find(|n| *n != leader).unwrap();
    cluster.kill(outsider);
    cluster.set_env(outsider, "TASKRAFT_CLUSTER_SECRET", "a guess at the secret");
    cluster.spawn(outsider);
    std::thread::sleep(Duration::from_secs(4));
    let view = get(&format!("{}/api/cluster", cluster.url(outsider))).body;
    assert!(
        view["leader_id"].is_null(),
        "it never hears from the leader: {view}"
    );
    assert_eq!(
        get(&format!("{}/readyz", cluster.url(outsider))).status,
        503
    );
    let log = tail(&cluster.node(outsider).log, 200);
    assert!(
        log.contains("refused a peer connection"),
        "it refuses the others, and says so"
    );
    let leader_log = tail(&cluster.node(leader).log, 200);
    assert!(
        leader_log.contains("does not know the cluster secret"),
        "and they refuse it"
    );
    assert_eq!(
        create_titled(&cluster.url(leader), "the two others go on").status,
        201
    );
}

/// The URL node `on`'s `/api/cluster` names for each member.
fn member_urls(cluster: &Cluster, on: u64) -> BTreeMap<u64, Option<String>> {
    let view = get(&format!("{}/api/cluster", cluster.url(on))).body;
    view["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m["id"].as_u64()?, m["url"].as_str().map(str::to_string))))
        .collect()
}

/// Waits until node `on` names `want` as the members' URLs.
fn wait_member_urls(cluster: &Cluster, on: u64, want: &BTreeMap<u64, Option<String>>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = member_urls(cluster, on);
        if &seen == want {
            return;
        }
        if Instant::now() > deadline {
            panic!("node {on} names the members' URLs {seen:?}, wanted {want:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_restarted_member_knows_every_members_url_from_the_log() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(10));
    let followers: Vec<u64> = (1..=3).filter(|n| *n != leader).collect();
    let (restarted, other) = (followers[0], followers[1]);
    let mut want: BTreeMap<u64, Option<String>> =
        (1..=3).map(|id| (id, Some(cluster.url(id)))).collect();

    // A follower restarts. The other follower never dials it (followers do
    // not talk to each other), so only the log can tell it that URL.
    cluster.kill(restarted);
    cluster.restart(restarted);
    wait_member_urls(&cluster, restarted, &want);

    // Even with that member down: the URL is in the log, not in a hello.
    cluster.kill(other);
    cluster.kill(restarted);
    cluster.restart(restarted);
    wait_member_urls(&cluster, restarted, &want);
    cluster.restart(other);

    // A member that comes back under another URL has it recorded for all.
    let moved = format!("http://localhost:{}", cluster.node(restarted).http_port);
    cluster.kill(restarted);
    cluster.set_env(restarted, "TASKRAFT_ADVERTISE_URL", &moved);
    cluster.restart(restarted);
    want.insert(restarted, Some(moved));
    for id in 1..=3 {
        wait_member_urls(&cluster, id, &want);
    }
}
