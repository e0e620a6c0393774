//! Disaster recovery on real processes: two of three nodes are lost with
//! their data; `taskraft recover --force-new-cluster` makes the survivor
//! the only voter, keeping every write it had; the lost members come back
//! under their old ids with empty data (as StatefulSet pods with new
//! volumes do), join it, and the cluster of three serves writes.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::*;
use serde_json::Value;

/// Drops node `id`'s database, as if its volume was lost.
fn drop_database(cluster: &Cluster, id: u64) {
    let url = cluster.mysql_url(id);
    let (base, name) = url.rsplit_once('/').expect("a database in the url");
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(base)
            .await
            .expect("the MySQL server answers");
        conn.query_drop(format!("DROP DATABASE `{name}`"))
            .await
            .expect("the database is dropped");
        conn.disconnect().await.expect("disconnects");
    });
}

fn view(cluster: &Cluster, id: u64) -> Value {
    get(&format!("{}/api/cluster", cluster.url(id))).body
}

fn titles(url: &str) -> Vec<String> {
    let mut titles: Vec<String> = all_tasks(url, "linearizable")
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles
}

fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_survivor_of_a_lost_majority_is_recovered_and_new_members_join_it() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(30));
    let survivor = (1..=3).find(|n| *n != leader).unwrap();
    let other = (1..=3).find(|n| *n != leader && *n != survivor).unwrap();
    let mut acked = Vec::new();
    for i in 0..20u64 {
        let title = format!("before {i}");
        let r = create_titled(&cluster.url(1 + i % 3), &title);
        assert_eq!(r.status, 201, "{:?}", r.body);
        acked.push(title);
    }
    cluster.wait_caught_up(survivor, Duration::from_secs(30));
    // With the third node paused, every write the leader acknowledges is
    // in the survivor's log; the last ones may lie past its commit index
    // when the leader dies.
    cluster.pause(other);
    for i in 0..10 {
        let title = format!("last {i}");
        let r = create_titled(&cluster.url(leader), &title);
        assert_eq!(r.status, 201, "{:?}", r.body);
        acked.push(title);
    }
    let cluster_id = view(&cluster, survivor)["cluster_id"]
        .as_str()
        .unwrap()
        .to_string();
    for lost in [leader, other] {
        cluster.kill(lost);
        std::fs::remove_dir_all(&cluster.node(lost).data_dir).unwrap();
        drop_database(&cluster, lost);
    }

    // It refuses while the node runs, and without --force-new-cluster.
    let running = cluster.run_as(survivor, &["recover", "--force-new-cluster"]);
    assert!(!running.status.success());
    assert!(
        output_text(&running).contains("stop it first"),
        "{}",
        output_text(&running)
    );
    cluster.terminate(survivor, Duration::from_secs(60));
    let unforced = cluster.run_as(survivor, &["recover"]);
    assert!(!unforced.status.success());
    assert!(output_text(&unforced).contains("--force-new-cluster"));
    // A lost node's empty data_dir has nothing to recover.
    let empty = cluster.run_as(leader, &["recover", "--force-new-cluster"]);
    assert!(!empty.status.success());
    assert!(
        output_text(&empty).contains("nothing to recover"),
        "{}",
        output_text(&empty)
    );

    let recovered = cluster.run_as(survivor, &["recover", "--force-new-cluster"]);
    assert!(
        recovered.status.success(),
        "{}\n{}",
        output_text(&recovered),
        cluster.log_tails()
    );
    assert!(output_text(&recovered).contains("only voter"));

    // Alone, it leads, holds every acknowledged write once, and takes writes.
    cluster.restart(survivor);
    assert_eq!(cluster.leader(Duration::from_secs(30)), survivor);
    let alone = cluster.wait_membership(survivor, &[survivor], &[], Duration::from_secs(30));
    let new_id = alone["cluster_id"].as_str().unwrap();
    assert_ne!(new_id, cluster_id, "a lost member's old data is refused");
    assert_eq!(
        new_id.split('.').next(),
        cluster_id.split('.').next(),
        "the same cluster, recovered"
    );
    // The recovery is on record: when, what it dropped, the old id.
    let recovery = &alone["recovery"];
    assert_eq!(recovery["previous_voters"], serde_json::json!([1, 2, 3]));
    assert_eq!(recovery["previous_cluster_id"], cluster_id.as_str());
    assert_eq!(recovery["node_id"], survivor);
    let mut want = acked.clone();
    want.sort();
    assert_eq!(titles(&cluster.url(survivor)), want);
    let seqs = seqs(&all_events(&cluster.url(survivor)));
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let r = create_titled(&cluster.url(survivor), "written alone");
    assert_eq!(r.status, 201, "{:?}", r.body);
    want.push("written alone".into());

    // The recovery is an event too, written once however often the
    // recovered node starts (it proposes the record at each start).
    let recoveries = |cluster: &Cluster| -> Vec<Value> {
        all_events(&cluster.url(survivor))
            .into_iter()
            .filter(|e| e["kind"] == "cluster_recovered")
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while recoveries(&cluster).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no cluster_recovered event"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.restart(survivor);
    cluster.leader(Duration::from_secs(30));
    let r = create_titled(&cluster.url(survivor), "after a second start");
    assert_eq!(r.status, 201, "{:?}", r.body);
    want.push("after a second start".into());
    std::thread::sleep(Duration::from_secs(2));
    let recorded = recoveries(&cluster);
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    let event = &recorded[0]["recovery"];
    assert_eq!(event["cluster_id"], new_id);
    assert_eq!(event["previous_cluster_id"], cluster_id.as_str());
    assert_eq!(event["previous_voters"], serde_json::json!([1, 2, 3]));
    assert_eq!(recorded[0]["actor"]["id"], "system");

    // The lost members come back under their ids with empty data, and join.
    for lost in [leader, other] {
        cluster.set_env(lost, "TASKRAFT_JOIN", &cluster.url(survivor));
        cluster.restart(lost);
    }
    let mut all = vec![1, 2, 3];
    all.sort();
    cluster.wait_membership(survivor, &all, &[], Duration::from_secs(60));
    for (i, id) in [leader, other, survivor].into_iter().enumerate() {
        let title = format!("after {i}");
        let r = create_titled(&cluster.url(id), &title);
        assert_eq!(r.status, 201, "{:?}", r.body);
        want.push(title);
    }
    want.sort();
    let events = all_events(&cluster.url(survivor));
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(60));
        assert_eq!(titles(&cluster.url(id)), want, "node {id}");
        assert_eq!(all_events(&cluster.url(id)), events, "node {id}");
        let check = cluster.rebuild_check(id);
        assert!(check.status.success(), "node {id}: {}", output_text(&check));
        assert_eq!(
            view(&cluster, id)["cluster_id"].as_str(),
            Some(new_id),
            "node {id}"
        );
    }
}
