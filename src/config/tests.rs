//! Configuration: defaults, layers, errors that name their key, StatefulSet mode.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load_from(None, env(pairs))
}

#[test]
fn defaults_make_a_single_node_cluster() {
    let s = load(&[]).unwrap();
    assert_eq!(s.node_id, 1);
    assert_eq!(s.peers, BTreeMap::from([(1, "127.0.0.1:9081".to_string())]));
    assert_eq!(s.advertise_url, "http://127.0.0.1:8081");
    assert_eq!(s.mysql_url, "mysql://root@127.0.0.1:3306/taskraft_n1");
    assert_eq!(s.data_dir, PathBuf::from("./data/n1"));
    assert_eq!(s.request_timeout, Duration::from_secs(5));
    assert_eq!(s.initial_cluster_token, "taskraft");
    assert_eq!(s.idempotency_retention, Duration::from_secs(7 * 86_400));
}

#[test]
fn the_key_retention_takes_a_number_and_a_unit() {
    for (text, expected) in [
        ("7d", Duration::from_secs(7 * 86_400)),
        ("12h", Duration::from_secs(12 * 3_600)),
        ("30m", Duration::from_secs(30 * 60)),
        ("2s", Duration::from_secs(2)),
        ("1500ms", Duration::from_millis(1_500)),
    ] {
        let s = load(&[("TASKRAFT_IDEMPOTENCY_RETENTION", text)]).unwrap();
        assert_eq!(s.idempotency_retention, expected, "{text}");
    }
    for bad in [
        "7", "d", "7 days", "-1d", "1.5h", "500ms", "0s", "99999d", "7w",
    ] {
        let err = load(&[("TASKRAFT_IDEMPOTENCY_RETENTION", bad)]).unwrap_err();
        assert_eq!(err.key, "idempotency_retention", "{bad}");
        assert!(
            err.to_string().contains("`idempotency_retention`"),
            "the message names the key: {err}"
        );
    }
}

#[test]
fn environment_variables_set_every_key() {
    let s = load(&[
        ("TASKRAFT_NODE_ID", "2"),
        ("TASKRAFT_HTTP_ADDR", "127.0.0.1:8082"),
        ("TASKRAFT_RAFT_ADDR", "127.0.0.1:9082"),
        (
            "TASKRAFT_PEERS",
            "1=127.0.0.1:9081, 2=127.0.0.1:9082,3=node-3.peers:9083",
        ),
        ("TASKRAFT_MYSQL_URL", "mysql://root:pw@db:3306/board_2"),
        ("TASKRAFT_CLUSTER_SECRET", "0123456789abcdef0123"),
        ("TASKRAFT_DATA_DIR", "/var/lib/taskraft"),
        ("TASKRAFT_TICK_MS", "100"),
        ("TASKRAFT_API_TOKEN", "12345"),
        ("TASKRAFT_LOG_FORMAT", "json"),
        ("TASKRAFT_SNAPSHOT_COUNT", "250"),
        ("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES", "0"),
        ("UNRELATED", "x"),
    ])
    .unwrap();
    assert_eq!((s.snapshot_count, s.snapshot_catchup_entries), (250, 0));
    assert_eq!(s.node_id, 2);
    assert_eq!(s.peers.len(), 3);
    assert_eq!(s.peers[&3], "node-3.peers:9083");
    assert_eq!(s.advertise_url, "http://127.0.0.1:8082");
    assert_eq!(s.tick_ms, 100);
    assert_eq!(s.api_token.as_deref(), Some("12345"));
    assert_eq!(s.log_format, LogFormat::Json);
}

#[test]
fn a_bad_value_names_its_key() {
    let cases = [
        ("TASKRAFT_NODE_ID", "one", "node_id"),
        ("TASKRAFT_NODE_ID", "0", "node_id"),
        ("TASKRAFT_HTTP_ADDR", "localhost", "http_addr"),
        ("TASKRAFT_SNAPSHOT_COUNT", "0", "snapshot_count"),
        (
            "TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES",
            "-1",
            "snapshot_catchup_entries",
        ),
        ("TASKRAFT_APPLY_GATHER_MS", "20000", "apply_gather_ms"),
        ("TASKRAFT_PEERS", "1=127.0.0.1", "peers"),
        ("TASKRAFT_PEERS", "1=a:1,1=b:2", "peers"),
        ("TASKRAFT_MYSQL_URL", "postgres://x/y", "mysql_url"),
        (
            "TASKRAFT_MYSQL_URL",
            "mysql://root@h:3306/bad-name",
            "mysql_url",
        ),
        ("TASKRAFT_TICK_MS", "0", "tick_ms"),
        ("TASKRAFT_ELECTION_TICK", "1", "election_tick"),
        ("TASKRAFT_LOG_FORMAT", "xml", "log_format"),
        ("TASKRAFT_JOIN", "127.0.0.1:8081", "join"),
        ("TASKRAFT_ADVERTISE_URL", "node-1:8081", "advertise_url"),
    ];
    for (var, value, key) in cases {
        let err = load(&[(var, value)]).unwrap_err();
        assert_eq!(err.key, key, "{var}={value} gave {err}");
        assert!(
            err.to_string().contains(&format!("`{key}`")),
            "the message names the key: {err}"
        );
    }
}

#[test]
fn the_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(
        &path,
        "node_id = 3\ntick_ms = 20\npeers = \"3=127.0.0.1:9083\"\n",
    )
    .unwrap();
    let s = Settings::load_from(Some(&path), env(&[("TASKRAFT_TICK_MS", "30")])).unwrap();
    assert_eq!((s.node_id, s.tick_ms), (3, 30));
}

#[test]
fn a_typo_in_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, "node-id = 3\n").unwrap();
    let err = Settings::load_from(Some(&path), HashMap::new()).unwrap_err();
    assert_eq!(err.key, "node-id");
    std::fs::write(&path, "tick_ms = \"fast\"\n").unwrap();
    let err = Settings::load_from(Some(&path), HashMap::new()).unwrap_err();
    assert_eq!(err.key, "tick_ms", "{err}");
}

#[test]
fn a_statefulset_pod_derives_its_id_peers_and_urls_from_its_name() {
    let sts = StatefulSet::derive(
        "taskraft-2",
        "taskraft-peers.prod.svc.cluster.local",
        3,
        8080,
        9080,
    )
    .unwrap();
    assert_eq!((sts.ordinal, sts.node_id, sts.initial), (2, 3, true));
    assert_eq!(
        sts.peers[&1],
        "taskraft-0.taskraft-peers.prod.svc.cluster.local:9080"
    );
    assert_eq!(sts.peers.len(), 3);
    assert_eq!(
        sts.advertise_url,
        "http://taskraft-2.taskraft-peers.prod.svc.cluster.local:8080"
    );
    assert_eq!(
        sts.raft_advertise_addr,
        "taskraft-2.taskraft-peers.prod.svc.cluster.local:9080"
    );
    assert_eq!(
        sts.peer_urls[0],
        "http://taskraft-0.taskraft-peers.prod.svc.cluster.local:8080"
    );

    let scaled = StatefulSet::derive("my-board-4", "peers", 3, 8080, 9080).unwrap();
    assert_eq!(
        (scaled.node_id, scaled.initial),
        (5, false),
        "a pod beyond the initial size joins"
    );
    assert_eq!(
        scaled.peers.len(),
        3,
        "the initial voters do not include it"
    );

    for bad in ["taskraft", "taskraft-", "-1", "taskraft-x"] {
        assert_eq!(
            StatefulSet::derive(bad, "s", 3, 1, 2).unwrap_err().key,
            "pod_name",
            "{bad}"
        );
    }
}

#[test]
fn statefulset_settings_come_from_three_variables() {
    let base = [
        ("TASKRAFT_POD_NAME", "taskraft-1"),
        (
            "TASKRAFT_PEER_SERVICE",
            "taskraft-peers.ns.svc.cluster.local",
        ),
        ("TASKRAFT_INITIAL_CLUSTER_SIZE", "3"),
        ("TASKRAFT_HTTP_ADDR", "0.0.0.0:8080"),
        ("TASKRAFT_RAFT_ADDR", "0.0.0.0:9080"),
        ("TASKRAFT_CLUSTER_SECRET", "0123456789abcdef0123"),
    ];
    let s = load(&base).unwrap();
    assert_eq!(s.node_id, 2);
    assert_eq!(s.peers.len(), 3);
    assert!(s.join.is_empty(), "an initial voter bootstraps");
    assert_eq!(
        s.advertise_url,
        "http://taskraft-1.taskraft-peers.ns.svc.cluster.local:8080"
    );
    assert_eq!(s.peer_urls.len(), 3);
    assert_eq!(
        s.initial_cluster_token,
        "taskraft.taskraft-peers.ns.svc.cluster.local"
    );

    let mut joiner = base;
    joiner[0] = ("TASKRAFT_POD_NAME", "taskraft-3");
    let s = load(&joiner).unwrap();
    assert_eq!(s.node_id, 4);
    assert_eq!(
        s.join.len(),
        3,
        "a pod beyond the initial size joins through the initial ones"
    );
    assert_eq!(
        s.raft_advertise_addr,
        "taskraft-3.taskraft-peers.ns.svc.cluster.local:9080"
    );

    let err = load(&[base[0], base[1], base[5]]).unwrap_err();
    assert_eq!(err.key, "initial_cluster_size");
    let mut wrong_id = base.to_vec();
    wrong_id.push(("TASKRAFT_NODE_ID", "7"));
    assert_eq!(load(&wrong_id).unwrap_err().key, "node_id");
}

#[test]
fn a_joining_node_must_advertise_a_reachable_raft_address() {
    let err = load(&[
        ("TASKRAFT_NODE_ID", "4"),
        ("TASKRAFT_RAFT_ADDR", "0.0.0.0:9084"),
        ("TASKRAFT_JOIN", "http://127.0.0.1:8081"),
        ("TASKRAFT_CLUSTER_SECRET", "0123456789abcdef0123"),
    ])
    .unwrap_err();
    assert_eq!(err.key, "raft_advertise_addr");
    let s = load(&[
        ("TASKRAFT_NODE_ID", "4"),
        ("TASKRAFT_RAFT_ADDR", "127.0.0.1:9084"),
        ("TASKRAFT_JOIN", "http://127.0.0.1:8081"),
        ("TASKRAFT_CLUSTER_SECRET", "0123456789abcdef0123"),
    ])
    .unwrap();
    assert_eq!(s.raft_advertise_addr, "127.0.0.1:9084");
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact("mysql://root:s3cret@db:3306/x"),
        "mysql://root:***@db:3306/x"
    );
    assert_eq!(redact("mysql://root@db:3306/x"), "mysql://root@db:3306/x");
}

#[test]
fn a_cluster_of_more_than_one_node_needs_a_real_cluster_secret() {
    let three = [
        ("TASKRAFT_PEERS", "1=a:1,2=b:2,3=c:3"),
        ("TASKRAFT_RAFT_ADDR", "127.0.0.1:9081"),
    ];
    let err = load(&three).unwrap_err();
    assert_eq!(err.key, "cluster_secret");
    assert!(err.message.contains("openssl rand"), "says how: {err}");
    let joiner = load(&[("TASKRAFT_JOIN", "http://127.0.0.1:8081")]).unwrap_err();
    assert_eq!(joiner.key, "cluster_secret");
    assert!(
        load(&[]).unwrap().cluster_secrets.is_empty(),
        "one node needs none"
    );

    let with = |secret: &str| {
        let mut pairs = three.to_vec();
        pairs.push(("TASKRAFT_CLUSTER_SECRET", secret));
        load(&pairs)
    };
    assert_eq!(
        with("0123456789abcdef, fedcba9876543210fedc")
            .unwrap()
            .cluster_secrets,
        vec!["0123456789abcdef", "fedcba9876543210fedc"],
        "a list: the first proves, all are accepted"
    );
    for weak in [
        "s3cret",
        "CHANGEME-cluster-secret-placeholder",
        "0123456789abcdef,short",
    ] {
        let err = with(weak).unwrap_err();
        assert_eq!(err.key, "cluster_secret", "{weak}");
        assert!(err.message.contains("openssl rand"), "{err}");
    }
}

#[test]
fn cors_origins_are_origins_and_never_a_wildcard() {
    let s = load(&[(
        "TASKRAFT_CORS_ORIGINS",
        "https://Board.Example.com, http://localhost:3000/",
    )])
    .unwrap();
    assert_eq!(
        s.cors_origins,
        vec!["https://board.example.com", "http://localhost:3000"]
    );
    for bad in [
        "*",
        "https://*.example.com",
        "board.example.com",
        "https://a.b/path",
        "ftp://x",
    ] {
        assert_eq!(
            load(&[("TASKRAFT_CORS_ORIGINS", bad)]).unwrap_err().key,
            "cors_origins",
            "{bad}"
        );
    }
}

#[test]
fn member_urls_are_http_short_and_plain() {
    assert!(check_http_url("http://10.0.0.1:8080").is_ok());
    assert!(check_http_url("https://taskraft-0.taskraft-peers.ns.svc:8080/").is_ok());
    let long = format!("http://{}", "a".repeat(MAX_URL_LEN));
    for bad in [
        "ftp://x",
        "http://",
        "http://:80",
        "http://a b",
        "http://user:pw@host",
        "http://host/\"<script>",
        "javascript:alert(1)",
        long.as_str(),
    ] {
        assert!(check_http_url(bad).is_err(), "{bad:.60}");
    }
    assert_eq!(
        load(&[("TASKRAFT_ADVERTISE_URL", long.as_str())])
            .unwrap_err()
            .key,
        "advertise_url"
    );
    let s = load(&[("TASKRAFT_MAX_CONNECTIONS", "100")]).unwrap();
    assert_eq!(
        (s.max_connections, s.max_connections_per_address),
        (100, 100)
    );
    assert_eq!(
        load(&[("TASKRAFT_MAX_CONNECTIONS_PER_ADDRESS", "9000")])
            .unwrap_err()
            .key,
        "max_connections_per_address"
    );
}

#[test]
fn placeholders_are_refused_naming_their_key() {
    for placeholder in [
        "CHANGEME-cluster-secret-placeholder",
        "changeme0mysql0password0placeholder",
        "ChangeMe_please_0123456789",
        "change-me-0123456789abcdef",
        "REPLACE_ME_0123456789abcdef",
        "<your-secret-here-0123456789>",
        "${CLUSTER_SECRET_0123456789}",
        "xxxxxxxxxxxxxxxxxxxx",
        "password",
        "secret",
    ] {
        assert!(is_placeholder(placeholder), "{placeholder}");
    }
    for real in [
        "3f1c0d5e9a7b2c4d6e8f0a1b2c3d4e5f",
        "the-token-of-this-test",
        "pw",
        "q8Z0kU2mXc7RrT1v",
    ] {
        assert!(!is_placeholder(real), "{real}");
    }

    let peers = ("TASKRAFT_PEERS", "1=a:1,2=b:2,3=c:3");
    let raft = ("TASKRAFT_RAFT_ADDR", "127.0.0.1:9081");
    let err = load(&[
        peers,
        raft,
        ("TASKRAFT_CLUSTER_SECRET", "ChangeMe-0123456789abcdef"),
    ])
    .unwrap_err();
    assert_eq!(err.key, "cluster_secret");
    let err = load(&[
        peers,
        raft,
        (
            "TASKRAFT_CLUSTER_SECRET",
            "0123456789abcdef0123, CHANGEME-the-new-one",
        ),
    ])
    .unwrap_err();
    assert_eq!(err.key, "cluster_secret", "any secret of the list");
    let err = load(&[("TASKRAFT_API_TOKEN", "CHANGEME-api-token-placeholder")]).unwrap_err();
    assert_eq!(err.key, "api_token");
    assert!(err.to_string().contains("TASKRAFT_API_TOKEN"), "{err}");
    let err = load(&[(
        "TASKRAFT_MYSQL_URL",
        "mysql://taskraft:CHANGEME0mysql0password0placeholder@127.0.0.1:3306/taskraft",
    )])
    .unwrap_err();
    assert_eq!(err.key, "mysql_url");
    assert!(!err.message.contains("CHANGEME0mysql"), "redacted: {err}");
    let err = load(&[(
        "TASKRAFT_MYSQL_MIGRATE_URL",
        "mysql://m:changeme@127.0.0.1:3306/taskraft",
    )])
    .unwrap_err();
    assert_eq!(err.key, "mysql_migrate_url");
    assert!(load(&[("TASKRAFT_MYSQL_URL", "mysql://u:pw@127.0.0.1:3306/t")]).is_ok());
}

/// A CA and a leaf for `names`, written to `dir`: (ca, cert, key).
fn tls_files(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.crt"),
        dir.join("node.crt"),
        dir.join("node.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[test]
fn tls_keys_come_in_sets_that_load() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path(), &["node-1", "127.0.0.1"]);
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let plain = load(&[]).unwrap();
    assert_eq!((plain.tls.clone(), plain.peer_tls.clone()), (None, None));

    let s = load(&[
        ("TASKRAFT_TLS_CERT_FILE", cert),
        ("TASKRAFT_TLS_KEY_FILE", key),
    ])
    .unwrap();
    assert_eq!(
        s.tls,
        Some(HttpTlsFiles {
            cert: cert.into(),
            key: key.into()
        })
    );
    assert_eq!(
        s.advertise_url, "https://127.0.0.1:8081",
        "https by default"
    );
    assert_eq!(
        load(&[("TASKRAFT_TLS_CERT_FILE", cert)]).unwrap_err().key,
        "tls_key_file"
    );
    assert_eq!(
        load(&[("TASKRAFT_TLS_KEY_FILE", key)]).unwrap_err().key,
        "tls_cert_file"
    );
    let err = load(&[
        ("TASKRAFT_TLS_CERT_FILE", ca),
        ("TASKRAFT_TLS_KEY_FILE", key),
    ])
    .unwrap_err();
    assert_eq!(
        err.key, "tls_cert_file",
        "a key that is not the certificate's: {err}"
    );

    let peer = [
        ("TASKRAFT_PEER_TLS_CA_FILE", ca),
        ("TASKRAFT_PEER_TLS_CERT_FILE", cert),
        ("TASKRAFT_PEER_TLS_KEY_FILE", key),
    ];
    let s = load(&peer).unwrap();
    assert_eq!(
        s.peer_tls,
        Some(crate::tls::PeerTlsFiles {
            ca: ca.into(),
            cert: cert.into(),
            key: key.into()
        })
    );
    assert_eq!(s.advertise_url, "http://127.0.0.1:8081", "peer TLS alone");
    for missing in 0..3 {
        let mut partial = peer.to_vec();
        let (gone, _) = partial.remove(missing);
        let err = load(&partial).unwrap_err();
        assert_eq!(
            format!("TASKRAFT_{}", err.key.to_uppercase()),
            gone,
            "{err}"
        );
    }
    let nowhere = dir.path().join("nowhere.crt");
    let err = load(&[
        ("TASKRAFT_PEER_TLS_CA_FILE", nowhere.to_str().unwrap()),
        peer[1],
        peer[2],
    ])
    .unwrap_err();
    assert_eq!(err.key, "peer_tls_ca_file");
    assert!(err.message.contains("nowhere.crt"), "{err}");
}

#[test]
fn under_tls_a_statefulset_derives_https_urls() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = tls_files(dir.path(), &["localhost"]);
    let s = load(&[
        ("TASKRAFT_POD_NAME", "taskraft-3"),
        ("TASKRAFT_PEER_SERVICE", "taskraft-peers"),
        ("TASKRAFT_INITIAL_CLUSTER_SIZE", "3"),
        ("TASKRAFT_CLUSTER_SECRET", "0123456789abcdef0123"),
        ("TASKRAFT_TLS_CERT_FILE", cert.to_str().unwrap()),
        ("TASKRAFT_TLS_KEY_FILE", key.to_str().unwrap()),
    ])
    .unwrap();
    assert!(
        s.advertise_url.starts_with("https://taskraft-3."),
        "{}",
        s.advertise_url
    );
    assert!(!s.join.is_empty());
    for url in s.join.iter().chain(&s.peer_urls) {
        assert!(url.starts_with("https://"), "{url}");
    }
}

#[test]
fn auth_is_on_by_default_and_the_bootstrap_admin_is_a_real_name_and_password() {
    let s = load(&[]).unwrap();
    assert!(s.auth, "serve runs with accounts unless told otherwise");
    assert_eq!(s.bootstrap_admin, None);
    assert!(!load(&[("TASKRAFT_AUTH", "off")]).unwrap().auth);
    let err = load(&[("TASKRAFT_AUTH", "maybe")]).unwrap_err();
    assert_eq!(err.key, "auth");
    let s = load(&[("TASKRAFT_BOOTSTRAP_ADMIN", "Root:pass:with:colons")]).unwrap();
    assert_eq!(
        s.bootstrap_admin,
        Some(("root".to_string(), "pass:with:colons".to_string()))
    );
    for bad in [
        "no-colon",
        "root:short",
        "bad name:long-enough",
        ":long-enough",
        "admin:CHANGEME-admin-password-placeholder",
    ] {
        let err = load(&[("TASKRAFT_BOOTSTRAP_ADMIN", bad)]).unwrap_err();
        assert_eq!(err.key, "bootstrap_admin", "{bad}");
        assert!(
            !err.to_string().contains("long-enough"),
            "the password is not echoed: {err}"
        );
    }
}

#[test]
fn metrics_addr_is_an_address_of_its_own() {
    assert_eq!(load(&[]).unwrap().metrics_addr, None);
    let s = load(&[("TASKRAFT_METRICS_ADDR", "0.0.0.0:9090")]).unwrap();
    assert_eq!(s.metrics_addr, Some("0.0.0.0:9090".parse().unwrap()));
    for bad in ["9090", "localhost:9090", "127.0.0.1:8081", "127.0.0.1:9081"] {
        assert_eq!(
            load(&[("TASKRAFT_METRICS_ADDR", bad)]).unwrap_err().key,
            "metrics_addr",
            "{bad}"
        );
    }
}

#[test]
fn the_proxy_header_comes_with_the_addresses_it_is_believed_from() {
    assert_eq!(load(&[]).unwrap().auth_proxy, None);
    let s = load(&[
        ("TASKRAFT_AUTH_PROXY_HEADER", "X-Forwarded-User"),
        ("TASKRAFT_AUTH_PROXY_TRUSTED", "10.0.0.0/8, 127.0.0.1"),
    ])
    .unwrap();
    let proxy = s.auth_proxy.unwrap();
    assert_eq!(proxy.header, "x-forwarded-user");
    assert_eq!(proxy.trusted.len(), 2);
    for (pairs, key) in [
        (
            vec![("TASKRAFT_AUTH_PROXY_HEADER", "X-Forwarded-User")],
            "auth_proxy_trusted",
        ),
        (
            vec![("TASKRAFT_AUTH_PROXY_TRUSTED", "10.0.0.0/8")],
            "auth_proxy_header",
        ),
        (
            vec![
                ("TASKRAFT_AUTH_PROXY_HEADER", "X-Forwarded-User"),
                ("TASKRAFT_AUTH_PROXY_TRUSTED", "10.0.0.0/33"),
            ],
            "auth_proxy_trusted",
        ),
        (
            vec![
                ("TASKRAFT_AUTH_PROXY_HEADER", "Authorization"),
                ("TASKRAFT_AUTH_PROXY_TRUSTED", "10.0.0.1"),
            ],
            "auth_proxy_header",
        ),
        (
            vec![
                ("TASKRAFT_AUTH_PROXY_HEADER", "bad header"),
                ("TASKRAFT_AUTH_PROXY_TRUSTED", "10.0.0.1"),
            ],
            "auth_proxy_header",
        ),
    ] {
        assert_eq!(load(&pairs).unwrap_err().key, key, "{pairs:?}");
    }
}

#[test]
fn openid_connect_needs_all_four_keys_and_a_real_secret() {
    let all = [
        ("TASKRAFT_OIDC_ISSUER", "https://id.example.com/"),
        ("TASKRAFT_OIDC_CLIENT_ID", "taskraft"),
        ("TASKRAFT_OIDC_CLIENT_SECRET", "a-real-client-secret-123"),
        (
            "TASKRAFT_OIDC_REDIRECT_URL",
            "https://board.example.com/auth/oidc/callback",
        ),
    ];
    assert_eq!(load(&[]).unwrap().oidc, None);
    let oidc = load(&all).unwrap().oidc.unwrap();
    assert_eq!(oidc.issuer, "https://id.example.com");
    assert_eq!(oidc.default_role, crate::accounts::Role::Viewer);
    let mut with_role = all.to_vec();
    with_role.push(("TASKRAFT_OIDC_DEFAULT_ROLE", "member"));
    assert_eq!(
        load(&with_role).unwrap().oidc.unwrap().default_role,
        crate::accounts::Role::Member
    );
    for (i, (key, _)) in all.iter().enumerate() {
        let mut missing = all.to_vec();
        missing.remove(i);
        let expected = key.trim_start_matches("TASKRAFT_").to_lowercase();
        assert_eq!(load(&missing).unwrap_err().key, expected);
    }
    for (key, bad) in [
        ("TASKRAFT_OIDC_CLIENT_SECRET", "CHANGEME-client-secret"),
        ("TASKRAFT_OIDC_DEFAULT_ROLE", "god"),
        (
            "TASKRAFT_OIDC_REDIRECT_URL",
            "https://board.example.com/elsewhere",
        ),
        ("TASKRAFT_OIDC_ISSUER", "ftp://id.example.com"),
    ] {
        let mut pairs = all.to_vec();
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, bad));
        assert_eq!(
            load(&pairs).unwrap_err().key,
            key.trim_start_matches("TASKRAFT_").to_lowercase(),
            "{bad}"
        );
    }
    assert_eq!(
        load(&[("TASKRAFT_OIDC_DEFAULT_ROLE", "member")])
            .unwrap_err()
            .key,
        "oidc_issuer"
    );
}

#[test]
fn webhooks_reach_no_private_address_unless_allowed_and_retry_up_to_a_minute() {
    let s = load(&[]).unwrap();
    assert!(
        !s.webhook_allow_private,
        "nothing leaves for the cluster's networks by default"
    );
    assert_eq!(s.webhook_retry_max, std::time::Duration::from_secs(60));
    let s = load(&[
        ("TASKRAFT_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("TASKRAFT_WEBHOOK_RETRY_MAX", "5s"),
    ])
    .unwrap();
    assert!(s.webhook_allow_private);
    assert_eq!(s.webhook_retry_max, std::time::Duration::from_secs(5));
    assert_eq!(
        load(&[("TASKRAFT_WEBHOOK_ALLOW_PRIVATE", "yes")])
            .unwrap_err()
            .key,
        "webhook_allow_private"
    );
    assert_eq!(
        load(&[("TASKRAFT_WEBHOOK_RETRY_MAX", "0s")])
            .unwrap_err()
            .key,
        "webhook_retry_max"
    );
}
