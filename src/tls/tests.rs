//! The pure parts of TLS: names, loading, reloading, and what a mutual
//! handshake refuses (in memory, over a duplex pipe).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

struct Ca(CertifiedIssuer<'static, KeyPair>);

struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    fn leaf(&self, names: &[&str], serial: u64) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        Leaf {
            cert: params.signed_by(&key, &self.0).unwrap().pem(),
            key: key.serialize_pem(),
        }
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.0.pem()).unwrap();
    }
}

impl Leaf {
    fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert.as_bytes()).unwrap()
    }

    fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert, &self.cert).unwrap();
        std::fs::write(&key, &self.key).unwrap();
        (cert, key)
    }
}

/// The leaf a certified key presents, to compare with what was written.
fn leaf_of(certified: &CertifiedKey) -> Vec<u8> {
    certified.cert[0].as_ref().to_vec()
}

#[test]
fn a_peer_certificate_must_name_the_node_it_speaks_for() {
    let ca = Ca::new("cluster");
    assert_eq!(node_name(7), "node-7");
    let three = ca.leaf(&["node-3", "127.0.0.1"], 1);
    assert!(cert_names_node(&three.der(), 3));
    assert!(!cert_names_node(&three.der(), 4), "another member's id");
    assert!(
        !cert_names_node(&three.der(), 33),
        "a prefix is not the name"
    );
    let shared = ca.leaf(&["node-1", "node-2"], 2);
    assert!(cert_names_node(&shared.der(), 1) && cert_names_node(&shared.der(), 2));
    let address_only = ca.leaf(&["127.0.0.1", "localhost"], 3);
    assert!(
        !cert_names_node(&address_only.der(), 1),
        "no node name at all"
    );
    let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    assert!(!cert_names_node(&junk, 1));
}

#[test]
fn files_that_do_not_belong_together_are_refused_with_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster");
    let (cert, _) = ca.leaf(&["node-1"], 1).write(dir.path(), "a");
    let (_, other_key) = ca.leaf(&["node-1"], 2).write(dir.path(), "b");
    let err = load_certified_key(&cert, &other_key).unwrap_err();
    assert!(err.0.contains("a.crt") && err.0.contains("b.key"), "{err}");
    let missing = load_certified_key(&dir.path().join("none.crt"), &other_key).unwrap_err();
    assert!(missing.0.contains("none.crt"), "{missing}");
    std::fs::write(dir.path().join("empty.crt"), "not pem").unwrap();
    let empty = load_roots(&dir.path().join("empty.crt")).unwrap_err();
    assert!(empty.0.contains("no certificate"), "{empty}");
}

#[test]
fn a_replaced_certificate_is_used_from_the_next_look_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster");
    let first = ca.leaf(&["localhost"], 1);
    let (cert, key) = first.write(dir.path(), "http");
    let (c, k) = (cert.clone(), key.clone());
    let watched = Watched::new("test", vec![cert.clone(), key.clone()], move || {
        load_certified_key(&c, &k)
    })
    .unwrap();
    assert_eq!(leaf_of(&watched.get()), first.der().to_vec());

    let second = ca.leaf(&["localhost"], 2);
    second.write(dir.path(), "http");
    std::thread::sleep(CHECK_EVERY + Duration::from_millis(100));
    assert_eq!(leaf_of(&watched.get()), second.der().to_vec(), "reloaded");

    // A key that does not match: the previous pair stays in use.
    std::fs::write(&key, ca.leaf(&["localhost"], 3).key).unwrap();
    std::thread::sleep(CHECK_EVERY + Duration::from_millis(100));
    assert_eq!(leaf_of(&watched.get()), second.der().to_vec(), "kept");

    // Completed (the certificate written after its key): used.
    let third = ca.leaf(&["localhost"], 4);
    third.write(dir.path(), "http");
    std::thread::sleep(CHECK_EVERY + Duration::from_millis(100));
    assert_eq!(leaf_of(&watched.get()), third.der().to_vec(), "recovered");
}

/// Node 1 accepting node 2 over an in-memory pipe: what the acceptor's
/// handshake says, as the refusal metric would label it.
async fn accept_from(server: &PeerTls, client: Arc<ClientConfig>) -> Result<(), &'static str> {
    let (a, b) = tokio::io::duplex(64 << 10);
    let acceptor = tokio_rustls::TlsAcceptor::from(server.configs().server.clone());
    let connector = tokio_rustls::TlsConnector::from(client);
    let name = ServerName::try_from(node_name(1)).unwrap();
    let dial = tokio::spawn(async move {
        let mut stream = connector.connect(name, b).await?;
        stream.write_all(b"hello").await?;
        stream.flush().await?;
        // Under TLS 1.3 a refused client certificate shows on the read.
        let mut byte = [0u8; 1];
        let _ = stream.read(&mut byte).await;
        Ok::<_, std::io::Error>(())
    });
    let accepted = match acceptor.accept(a).await {
        Ok(mut stream) => {
            let mut got = [0u8; 5];
            stream.read_exact(&mut got).await.map_err(|_| "read")?;
            assert_eq!(&got, b"hello");
            Ok(())
        }
        Err(e) => Err(handshake_reason(&e)),
    };
    let _ = dial.await;
    accepted
}

fn peer_tls(dir: &Path, ca: &Ca, name: &str, names: &[&str]) -> PeerTls {
    let ca_file = dir.join(format!("{name}-ca.crt"));
    ca.write(&ca_file);
    let (cert, key) = ca.leaf(names, 9).write(dir, name);
    PeerTls::new(PeerTlsFiles {
        ca: ca_file,
        cert,
        key,
    })
    .unwrap()
}

#[tokio::test]
async fn mutual_tls_refuses_another_ca_and_no_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Ca::new("cluster");
    let one = peer_tls(dir.path(), &cluster, "one", &["node-1"]);
    let two = peer_tls(dir.path(), &cluster, "two", &["node-2"]);
    assert_eq!(
        accept_from(&one, two.configs().client.clone()).await,
        Ok(())
    );

    let stranger = peer_tls(dir.path(), &Ca::new("elsewhere"), "x", &["node-2"]);
    // The stranger trusts our CA, so only our side can refuse it.
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cluster.0.pem().as_bytes()).unwrap())
        .unwrap();
    let (cert, key) = (dir.path().join("x.crt"), dir.path().join("x.key"));
    let stranger_client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(load_certs(&cert).unwrap(), load_key(&key).unwrap())
        .unwrap();
    drop(stranger);
    assert_eq!(
        accept_from(&one, Arc::new(stranger_client)).await,
        Err("bad_cert")
    );

    let anonymous = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert_eq!(
        accept_from(&one, Arc::new(anonymous)).await,
        Err("no_client_cert")
    );
}

#[tokio::test]
async fn the_dialer_refuses_an_acceptor_that_is_not_the_node_it_dials() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Ca::new("cluster");
    // Node 1's address answered by a holder of node 3's certificate.
    let impostor = peer_tls(dir.path(), &cluster, "three", &["node-3"]);
    let two = peer_tls(dir.path(), &cluster, "two", &["node-2"]);
    let (a, b) = tokio::io::duplex(64 << 10);
    let acceptor = tokio_rustls::TlsAcceptor::from(impostor.configs().server.clone());
    tokio::spawn(async move {
        let _ = acceptor.accept(a).await;
    });
    let connector = tokio_rustls::TlsConnector::from(two.configs().client.clone());
    let Err(err) = connector
        .connect(ServerName::try_from(node_name(1)).unwrap(), b)
        .await
    else {
        panic!("node 3's certificate was taken for node 1's");
    };
    assert_eq!(handshake_reason(&err), "bad_cert", "{err}");
}
