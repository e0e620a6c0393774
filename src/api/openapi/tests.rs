use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App, HttpResponse, ResponseError};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{query_text, serde_names, Doc};
use crate::api::error::ApiError;
use crate::api::request::Consistency;
use crate::api::{routes, ROUTES};
use crate::cluster::{ClusterView, MemberRole, MemberView};
use crate::raft::{ConsensusError, Role};
use crate::task::{EventKind, FieldChange, Priority, Status, Task, TaskId};
use crate::time::{Date, Timestamp};

/// Documented, and served by the fallback rather than a route.
const BOARD: &str = "/";

/// Where a wrong method is a 405 JSON error (elsewhere the request goes on
/// to the board's fallback), stated here apart from the code under test.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/internal/")
}

/// The segment put where a path has a parameter.
const SOME_ID: &str = "1";

fn sorted<T: Ord>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    items
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { SOME_ID } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_served() {
    let doc = Doc::load();
    let served: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(
        served.len(),
        sorted(served.clone()).len(),
        "a route is declared twice"
    );
    let documented: Vec<(String, String)> = doc
        .operations()
        .into_iter()
        .map(|(method, path, ..)| (method, path))
        .filter(|(method, path)| !(method == "GET" && path == BOARD))
        .collect();
    let served = sorted(served);
    let documented = sorted(documented);
    let missing: Vec<_> = served.iter().filter(|r| !documented.contains(r)).collect();
    let extra: Vec<_> = documented.iter().filter(|r| !served.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served but not in openapi.json: {missing:?}; in openapi.json but not served: {extra:?}"
    );
}

/// Not the table but the app it builds: each documented method reaches a
/// handler; another method is a 405 under `/api/` and `/internal/`, and
/// goes on to the fallback elsewhere. (Without the app's state, handlers
/// answer 500; the test's own fallback answers 418.)
#[actix_web::test]
async fn the_app_answers_each_documented_method_and_no_other() {
    let doc = Doc::load();
    let app = App::new()
        .configure(routes)
        .default_service(web::to(|| async { HttpResponse::ImATeapot().finish() }));
    let app = test::init_service(app).await;
    let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let paths = doc.0["paths"].as_object().expect("paths");
    for (path, item) in paths.iter().filter(|(p, _)| *p != BOARD) {
        for method in methods {
            let request = TestRequest::default()
                .method(Method::from_bytes(method.as_bytes()).expect("a method"))
                .uri(&concrete(path))
                .to_request();
            let answered = match test::call_service(&app, request).await.status() {
                StatusCode::METHOD_NOT_ALLOWED => "405",
                StatusCode::IM_A_TEAPOT => "the fallback",
                _ => "its handler",
            };
            let expected = if item.get(method.to_lowercase()).is_some() {
                "its handler"
            } else if is_api(path) {
                "405"
            } else {
                "the fallback"
            };
            assert_eq!(answered, expected, "{method} {path}");
        }
    }
}

#[test]
fn path_parameters_are_the_ones_in_the_path() {
    let doc = Doc::load();
    for (method, path, _, parameters) in doc.operations() {
        let documented: Vec<&str> = parameters
            .iter()
            .filter(|p| p["in"] == "path")
            .inspect(|p| assert_eq!(p["required"], true, "{method} {path}: {p}"))
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            sorted(documented),
            sorted(path_parameters(&path)),
            "{method} {path}: documented path parameters"
        );
    }
    for route in ROUTES {
        assert_eq!(
            (route.shape)().reads_path,
            !path_parameters(route.path).is_empty(),
            "{} {}: a handler reads web::Path exactly when its path has parameters",
            route.method,
            route.path
        );
    }
}

#[test]
fn query_parameters_are_the_fields_the_handler_reads() {
    let doc = Doc::load();
    let operations = doc.operations();
    for route in ROUTES {
        let name = format!("{} {}", route.method, route.path);
        let (.., parameters) = operations
            .iter()
            .find(|(m, p, ..)| *m == route.method.as_str() && p == route.path)
            .unwrap_or_else(|| panic!("{name} is not documented"));
        let documented: Vec<&Value> = parameters
            .iter()
            .copied()
            .filter(|p| p["in"] == "query")
            .collect();
        let names: Vec<&str> = documented
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        let Some(query) = (route.shape)().query else {
            assert!(
                names.is_empty(),
                "{name}: documents {names:?}, reads no query"
            );
            continue;
        };
        assert_eq!(
            sorted(names),
            sorted((query.fields)()),
            "{name}: query parameters"
        );

        let sample = |skip: Option<&str>, with: Option<(&str, String)>| {
            documented
                .iter()
                .filter_map(|p| {
                    let param = p["name"].as_str()?;
                    let value = match &with {
                        Some((n, v)) if *n == param => v.clone(),
                        _ => query_text(&doc.sample(&p["schema"])),
                    };
                    (Some(param) != skip).then(|| format!("{param}={value}"))
                })
                .collect::<Vec<_>>()
                .join("&")
        };
        let full = sample(None, None);
        assert_eq!((query.parse)(&full), Ok(()), "{name}?{full}");
        for p in &documented {
            let param = p["name"].as_str().expect("a name");
            let without = sample(Some(param), None);
            let required = p["required"] == true;
            assert_eq!(
                (query.parse)(&without).is_err(),
                required,
                "{name}?{without}: `{param}` is documented as required: {required}"
            );
            let schema = doc.resolve(&p["schema"]);
            for value in schema["enum"].as_array().into_iter().flatten() {
                let with = sample(None, Some((param, query_text(value))));
                assert_eq!((query.parse)(&with), Ok(()), "{name}?{with}");
            }
            if schema["enum"].is_array() || schema["type"] == "integer" {
                let with = sample(None, Some((param, "not-a-value".into())));
                assert!((query.parse)(&with).is_err(), "{name}?{with} was accepted");
            }
        }
    }
}

#[test]
fn request_bodies_are_the_types_the_handlers_read() {
    let doc = Doc::load();
    let operations = doc.operations();
    for route in ROUTES {
        let name = format!("{} {}", route.method, route.path);
        let (_, _, operation, _) = operations
            .iter()
            .find(|(m, p, ..)| *m == route.method.as_str() && p == route.path)
            .unwrap_or_else(|| panic!("{name} is not documented"));
        let documented = &operation["requestBody"]["content"]["application/json"]["schema"];
        let Some(body) = (route.shape)().body else {
            assert!(documented.is_null(), "{name}: documents a body, reads none");
            continue;
        };
        assert!(
            !documented.is_null(),
            "{name}: reads a body, documents none"
        );
        let properties: Vec<&str> = doc
            .properties(documented)
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            sorted(properties),
            sorted((body.fields)()),
            "{name}: body fields"
        );

        let full = doc.sample(documented);
        assert_eq!((body.parse)(&full), Ok(()), "{name}: {full}");
        let required = doc.required(documented);
        for (field, schema) in doc.properties(documented) {
            let mut without = full.clone();
            without.as_object_mut().expect("an object").remove(field);
            assert_eq!(
                (body.parse)(&without).is_err(),
                required.contains(&field.as_str()),
                "{name}: without `{field}` (documented as required: {})",
                required.contains(&field.as_str())
            );
            let with = |value: Value| {
                let mut changed = full.clone();
                changed[field] = value;
                changed
            };
            if doc.resolve(schema)["nullable"] == true {
                assert_eq!(
                    (body.parse)(&with(Value::Null)),
                    Ok(()),
                    "{name}: {field} null"
                );
            }
            for value in doc.resolve(schema)["enum"].as_array().into_iter().flatten() {
                assert_eq!(
                    (body.parse)(&with(value.clone())),
                    Ok(()),
                    "{name}: {field}"
                );
            }
            if doc.resolve(schema)["enum"].is_array() {
                let bogus = with(json!("not-a-value"));
                assert!(
                    (body.parse)(&bogus).is_err(),
                    "{name}: {bogus} was accepted"
                );
            }
        }
        let mut unknown = full.clone();
        unknown["not_a_field"] = json!(1);
        let closed = doc.resolve(documented)["additionalProperties"] == false;
        assert_eq!(
            (body.parse)(&unknown).is_err(),
            closed,
            "{name}: an unknown field is refused exactly when the document says \
             additionalProperties: false"
        );
    }
}

fn task() -> Task {
    Task {
        id: TaskId(Uuid::from_u128(1)),
        title: "Write the report".into(),
        description: "Figures *and* the command behind them".into(),
        status: Status::InProgress,
        position: 1.5,
        priority: Priority::High,
        assignee: Some("ada".into()),
        labels: vec!["docs".into()],
        due_date: Date::new(2026, 12, 24),
        version: 2,
        created_at: Timestamp(1_764_700_000_000),
        updated_at: Timestamp(1_764_700_060_000),
        archived: false,
        board_id: crate::task::DEFAULT_BOARD,
        column_id: None,
    }
}

fn user() -> crate::accounts::UserView {
    crate::accounts::UserView {
        id: Uuid::from_u128(4),
        username: "alice".into(),
        display_name: "Alice 😀".into(),
        role: crate::accounts::Role::Member,
        disabled: false,
    }
}

/// A membership event, with every optional field of its member.
fn comment_event() -> crate::task::Event {
    crate::task::Event {
        kind: crate::task::EventKind::CommentEdited,
        task_id: Some(task().id),
        task: None,
        comment: Some(comment()),
        notification: None,
        webhook: None,
        changes: BTreeMap::new(),
        ..event()
    }
}

fn delivery() -> crate::task::webhook::Attempt {
    crate::task::webhook::Attempt {
        seq: 12,
        attempt: 2,
        at: crate::time::Timestamp(1_795_774_512_345),
        status: Some(500),
        error: None,
        duration_ms: 31,
    }
}

/// A webhook's event: `added` (with a secret, which must not show), or
/// its delivery progress.
fn webhook_event(added: bool) -> crate::task::Event {
    use crate::task::{Progress, Webhook, WebhookChange, WebhookId};
    let webhook = Webhook {
        id: WebhookId(uuid::Uuid::from_u128(9)),
        board_id: crate::task::BoardId(uuid::Uuid::from_u128(1)),
        url: "https://hooks.example.com/x".into(),
        events: vec![crate::task::EventKind::TaskCreated],
        description: "chat".into(),
        created_at: crate::time::Timestamp(1_795_774_512_345),
        created_by: crate::accounts::Actor {
            id: "a".into(),
            name: "Ada".into(),
        },
    };
    crate::task::Event {
        kind: if added {
            crate::task::EventKind::WebhookAdded
        } else {
            crate::task::EventKind::WebhookDelivered
        },
        task_id: None,
        task: None,
        changes: BTreeMap::new(),
        webhook: Some(if added {
            WebhookChange::Added {
                webhook,
                secret: Some("f".repeat(64)),
            }
        } else {
            WebhookChange::Delivered(Progress {
                webhook_id: webhook.id,
                board_id: webhook.board_id,
                delivered_seq: 12,
                attempts: vec![delivery()],
            })
        }),
        ..event()
    }
}

fn checklist_event() -> crate::task::Event {
    use crate::task::checklist::{ChecklistChange, ChecklistItem, ItemId};
    let item = ChecklistItem {
        id: ItemId(Uuid::from_u128(9)),
        text: "Write it".into(),
        done: true,
    };
    crate::task::Event {
        kind: crate::task::EventKind::ChecklistChanged,
        task_id: Some(task().id),
        task: None,
        changes: Default::default(),
        checklist: Some(crate::task::Checklist {
            id: crate::task::ChecklistId(Uuid::from_u128(8)),
            task_id: task().id,
            board_id: task().board_id,
            title: "Checklist".into(),
            items: vec![item.clone()],
            version: 2,
            created_at: task().created_at,
            updated_at: task().updated_at,
        }),
        checklist_change: Some(ChecklistChange::ItemUpdated {
            item: item.id,
            text_from: None,
            done_from: Some(false),
            position_from: None,
        }),
        ..event()
    }
}

fn member_event() -> crate::task::Event {
    crate::task::Event {
        kind: EventKind::ClusterMemberAdded,
        task_id: None,
        task: None,
        changes: BTreeMap::new(),
        member: Some(crate::audit::MemberRecord {
            id: 4,
            change: crate::audit::MemberChange::Added,
            raft_addr: Some("127.0.0.1:7004".into()),
            url: Some("http://127.0.0.1:8004".into()),
        }),
        ..event()
    }
}

fn recovery_event() -> crate::task::Event {
    crate::task::Event {
        kind: EventKind::ClusterRecovered,
        task_id: None,
        task: None,
        changes: BTreeMap::new(),
        recovery: Some(crate::audit::RecoveryRecord {
            node_id: 1,
            previous_cluster_id: "a".into(),
            cluster_id: "a-r1".into(),
            previous_voters: vec![1, 2, 3],
            previous_learners: vec![],
            previous_last_index: 10,
            recovered_at: Timestamp(1_764_700_060_000),
        }),
        ..event()
    }
}

fn event() -> crate::task::Event {
    crate::task::Event {
        seq: 7,
        raft_index: 12,
        ordinal: 0,
        term: 3,
        event_id: Uuid::from_u128(2),
        kind: EventKind::TaskUpdated,
        task_id: Some(task().id),
        task: Some(task()),
        user: None,
        member: None,
        recovery: None,
        board: None,
        column: None,
        board_member: None,
        comment: None,
        checklist: None,
        checklist_change: None,
        notification: None,
        webhook: None,
        changes: BTreeMap::from([(
            "title".to_string(),
            FieldChange {
                from: json!("Draft"),
                to: json!("Write the report"),
            },
        )]),
        at: Timestamp(1_764_700_060_000),
        request_id: Uuid::from_u128(3),
        actor: crate::accounts::Actor {
            id: Uuid::from_u128(4).to_string(),
            name: "alice".into(),
        },
    }
}

fn cluster() -> ClusterView {
    ClusterView {
        node_id: 1,
        cluster_id: "c-1".into(),
        url: "http://127.0.0.1:8080".into(),
        role: Role::Leader,
        term: 3,
        leader_id: Some(1),
        removed: false,
        leader_url: Some("http://127.0.0.1:8080".into()),
        commit_index: 12,
        applied_index: 12,
        first_index: 1,
        last_index: 12,
        apply_error: None,
        members: vec![MemberView {
            id: 1,
            raft_addr: Some("127.0.0.1:9080".into()),
            url: Some("http://127.0.0.1:8080".into()),
            role: MemberRole::Voter,
            reachable: true,
            match_index: Some(12),
            is_leader: true,
        }],
        vote: 1,
        version: "0.1.0".into(),
        commit: "unknown".into(),
        cluster_version: "0.1.0".into(),
        lab_url: Some("http://127.0.0.1:8000".into()),
        recovery: None,
    }
}

fn notification(mention: bool) -> crate::db::notifications::Notification {
    use crate::task::NotificationKind;
    crate::db::notifications::Notification {
        id: 42,
        user_id: "u".into(),
        kind: if mention {
            NotificationKind::Mention
        } else {
            NotificationKind::Due
        },
        board_id: crate::task::BoardId(uuid::Uuid::from_u128(1)),
        task_id: TaskId(uuid::Uuid::from_u128(2)),
        comment_id: mention.then(|| crate::task::CommentId(uuid::Uuid::from_u128(3))),
        due_date: (!mention)
            .then(|| crate::time::Date::new(2026, 12, 7))
            .flatten(),
        actor: crate::accounts::Actor {
            id: "a".into(),
            name: "Ada".into(),
        },
        excerpt: "hey @u".into(),
        at: crate::time::Timestamp(1_795_774_512_345),
        read: !mention,
        task_title: mention.then(|| "Card".into()),
    }
}

fn comment() -> crate::task::Comment {
    crate::task::Comment {
        id: crate::task::CommentId(uuid::Uuid::from_u128(0xc1)),
        task_id: task().id,
        board_id: crate::task::DEFAULT_BOARD,
        author: crate::accounts::Actor {
            id: uuid::Uuid::from_u128(0xa).to_string(),
            name: "Ada".into(),
        },
        body: "Looks *good*".into(),
        version: 2,
        created_at: crate::time::Timestamp(1_767_225_600_000),
        updated_at: crate::time::Timestamp(1_767_225_600_500),
    }
}

/// One of each: adding a variant fails to compile here until it is added
/// to the list, and so checked against the document.
fn every_kind_of_error() -> Vec<ApiError> {
    let errors = vec![
        ApiError::invalid("title", "must not be empty"),
        ApiError::BadRequest("the body is not valid JSON".into()),
        ApiError::Unauthorized,
        ApiError::PeerRefused("only peers may read this".into()),
        ApiError::NotFound("no task".into()),
        ApiError::Conflict {
            code: "id_taken",
            message: "in use".into(),
        },
        ApiError::VersionMismatch {
            expected: 1,
            current: Box::new(task()),
        },
        ApiError::CommentVersionMismatch {
            expected: 1,
            current: Box::new(comment()),
        },
        ApiError::ChecklistVersionMismatch {
            expected: 1,
            current: Box::new(checklist_event().checklist.expect("a checklist")),
        },
        ApiError::ColumnVersionMismatch {
            expected: 1,
            current: Box::new(
                crate::task::Catalog::default().columns_of(&crate::task::DEFAULT_BOARD)[0].clone(),
            ),
        },
        ApiError::TooLarge(crate::api::MAX_BODY),
        ApiError::UnsupportedMediaType("JSON only".into()),
        ApiError::RequestTimeout(Duration::from_secs(10)),
        ApiError::OriginNotAllowed("not this origin".into()),
        ApiError::Unprocessable {
            code: "idempotency_key_reused",
            message: "reused".into(),
        },
        ApiError::MethodNotAllowed("PUT is not allowed".into()),
        ApiError::Consensus(ConsensusError::NoLeader),
        ApiError::Consensus(ConsensusError::LeaderChanged),
        ApiError::Consensus(ConsensusError::ClusterTooOld(crate::version::TooOld {
            kind: "create_board",
            needs: crate::version::Version::new(0, 2, 0),
            cluster_version: crate::version::BASELINE,
        })),
        ApiError::WriteTimeout(ConsensusError::Timeout(Duration::from_secs(5))),
        ApiError::Storage("MySQL is down".into()),
        ApiError::BadGateway("OpenID provider: unreachable".into()),
        ApiError::Internal("corrupt row".into()),
        ApiError::Unauthenticated,
        ApiError::Forbidden("needs the admin role".into()),
        ApiError::CsrfFailed,
        ApiError::InvalidCredentials,
        ApiError::Throttled(Duration::from_secs(30)),
    ];
    for error in &errors {
        match error {
            ApiError::Invalid(_)
            | ApiError::BadRequest(_)
            | ApiError::Unauthorized
            | ApiError::Unauthenticated
            | ApiError::Forbidden(_)
            | ApiError::CsrfFailed
            | ApiError::InvalidCredentials
            | ApiError::Throttled(_)
            | ApiError::PeerRefused(_)
            | ApiError::NotFound(_)
            | ApiError::Conflict { .. }
            | ApiError::VersionMismatch { .. }
            | ApiError::CommentVersionMismatch { .. }
            | ApiError::ChecklistVersionMismatch { .. }
            | ApiError::ColumnVersionMismatch { .. }
            | ApiError::TooLarge(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::RequestTimeout(_)
            | ApiError::OriginNotAllowed(_)
            | ApiError::Unprocessable { .. }
            | ApiError::MethodNotAllowed(_)
            | ApiError::Consensus(_)
            | ApiError::WriteTimeout(_)
            | ApiError::Storage(_)
            | ApiError::BadGateway(_)
            | ApiError::Internal(_) => {}
        }
    }
    errors
}

fn error_body(error: &ApiError) -> Value {
    let body = error.error_response().into_body();
    let bytes = body
        .try_into_bytes()
        .unwrap_or_else(|_| panic!("{error:?}: the error body is not in one piece"));
    serde_json::from_slice(&bytes).expect("an error body is JSON")
}

fn assert_conforms(doc: &Doc, schema: &str, value: &Value) {
    let mut differences = Vec::new();
    doc.differences(doc.schema(schema), value, schema, &mut differences);
    assert!(
        differences.is_empty(),
        "{schema} differs from openapi.json:\n  {}\n{value:#}",
        differences.join("\n  ")
    );
}

fn import_job(ended: bool) -> crate::import::JobView {
    crate::import::JobView {
        id: uuid::Uuid::from_u128(7),
        state: if ended { "failed" } else { "running" },
        board_id: crate::task::BoardId(uuid::Uuid::from_u128(8)),
        done: 3,
        total: 10,
        cards: 6,
        error: ended.then(|| "the cluster refused a write".into()),
        started_at: crate::time::Timestamp(1_795_774_512_345),
        finished_at: ended.then_some(crate::time::Timestamp(1_795_774_513_345)),
        owner: "u".into(),
    }
}

#[test]
fn tasks_events_and_the_cluster_view_serialize_as_documented() {
    let doc = Doc::load();
    let mut bare = task();
    bare.assignee = None;
    bare.due_date = None;
    bare.labels.clear();
    for (schema, value) in [
        ("Task", serde_json::to_value(task())),
        ("Task", serde_json::to_value(bare)),
        ("Event", serde_json::to_value(event())),
        ("Event", serde_json::to_value(member_event())),
        ("Event", serde_json::to_value(recovery_event())),
        ("Event", serde_json::to_value(comment_event())),
        ("Event", serde_json::to_value(checklist_event())),
        ("Event", serde_json::to_value(webhook_event(true))),
        ("Event", serde_json::to_value(webhook_event(false))),
        ("WebhookDelivery", serde_json::to_value(delivery())),
        (
            "Webhook",
            Ok(json!({
                "id": uuid::Uuid::from_u128(9),
                "board_id": uuid::Uuid::from_u128(1),
                "url": "https://hooks.example.com/x",
                "events": ["task_created"],
                "description": "",
                "created_at": crate::time::Timestamp(1_795_774_512_345),
                "created_by": { "id": "a", "name": "Ada" },
                "delivered_seq": 12,
                "last_delivery": delivery(),
                "failing_since": crate::time::Timestamp(1_795_774_512_345),
            })),
        ),
        ("Comment", serde_json::to_value(comment())),
        ("Notification", serde_json::to_value(notification(true))),
        ("Notification", serde_json::to_value(notification(false))),
        ("Cluster", serde_json::to_value(cluster())),
        ("User", serde_json::to_value(user())),
        (
            "Session",
            Ok(json!({ "user": user(), "csrf": "c".repeat(64) })),
        ),
        ("Session", Ok(json!({ "user": user(), "csrf": null }))),
        ("ImportJob", serde_json::to_value(import_job(false))),
        ("ImportJob", serde_json::to_value(import_job(true))),
    ] {
        assert_conforms(&doc, schema, &value.expect("serializes"));
    }
    // And nothing documented that the types do not have.
    let members = &doc.schema("Cluster")["properties"]["members"]["items"];
    let changes = &doc.schema("Event")["properties"]["changes"]["additionalProperties"];
    for (at, schema, fields) in [
        ("Task", doc.schema("Task"), serde_names::<Task>()),
        (
            "Event",
            doc.schema("Event"),
            serde_names::<crate::task::Event>(),
        ),
        ("Event.changes", changes, serde_names::<FieldChange>()),
        (
            "Cluster",
            doc.schema("Cluster"),
            serde_names::<ClusterView>(),
        ),
        ("Cluster.members", members, serde_names::<MemberView>()),
        (
            "MemberChange",
            doc.schema("MemberChange"),
            serde_names::<crate::audit::MemberRecord>(),
        ),
        (
            "Recovery",
            doc.schema("Recovery"),
            serde_names::<crate::audit::RecoveryRecord>(),
        ),
    ] {
        let documented: Vec<&str> = doc.properties(schema).map(|(k, _)| k.as_str()).collect();
        assert_eq!(sorted(documented), sorted(fields), "{at}: properties");
    }
}

#[test]
fn every_error_body_is_the_documented_error() {
    let doc = Doc::load();
    let mut seen = BTreeSet::new();
    for error in every_kind_of_error() {
        let body = error_body(&error);
        assert_conforms(&doc, "Error", &body);
        seen.extend(
            body["error"]
                .as_object()
                .expect("an object")
                .keys()
                .cloned(),
        );
    }
    let documented: BTreeSet<String> = doc
        .properties(&doc.schema("Error")["properties"]["error"])
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        documented, seen,
        "the error fields documented vs. those some error has"
    );
    // Every error a route documents under /api/ and /internal/ is that JSON.
    for (method, path, operation, _) in doc.operations() {
        if !is_api(&path) {
            continue;
        }
        for (status, response) in operation["responses"].as_object().expect("responses") {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &doc.resolve(response)["content"]["application/json"]["schema"];
                assert_eq!(
                    doc.resolve(schema),
                    doc.schema("Error"),
                    "{method} {path} {status}: an error answer is the Error JSON"
                );
            }
        }
    }
}

#[test]
fn every_enum_lists_the_variants_serde_knows() {
    let doc = Doc::load();
    for (pointer, variants) in [
        ("/components/schemas/Status", serde_names::<Status>()),
        ("/components/schemas/Priority", serde_names::<Priority>()),
        (
            "/components/parameters/Consistency/schema",
            serde_names::<Consistency>(),
        ),
        (
            "/components/schemas/Event/properties/kind",
            serde_names::<EventKind>(),
        ),
        (
            "/components/schemas/Cluster/properties/role",
            serde_names::<Role>(),
        ),
        (
            "/components/schemas/Role",
            serde_names::<crate::accounts::Role>(),
        ),
        (
            "/components/schemas/MemberRequest/properties/role",
            serde_names::<MemberRole>(),
        ),
        (
            "/components/schemas/Cluster/properties/members/items/properties/role",
            serde_names::<MemberRole>(),
        ),
    ] {
        let documented = doc
            .0
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer}"))["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{pointer} is not an enum"))
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>();
        assert_eq!(sorted(documented), sorted(variants), "{pointer}");
    }
}

/// A schema added to the document must be added to a test above.
#[test]
fn every_named_schema_is_held_to_a_type() {
    let doc = Doc::load();
    let held = [
        "Status",             // every_enum_lists_the_variants_serde_knows
        "Priority",           // every_enum_lists_the_variants_serde_knows
        "Task",               // ..._serialize_as_documented
        "Event",              // ..._serialize_as_documented
        "Cluster",            // ..._serialize_as_documented
        "Error",              // every_error_body_is_the_documented_error
        "NewTask",            // request_bodies_... (POST /api/tasks)
        "TaskPatch",          // request_bodies_... (PATCH /api/tasks/{id})
        "MemberRequest",      // request_bodies_... (POST /api/cluster/members)
        "RecentLog",          // not held: private to raft (see the module doc)
        "Actor",              // ..._serialize_as_documented (in Event)
        "Role",               // every_enum_lists_the_variants_serde_knows
        "User",               // ..._serialize_as_documented
        "Session",            // ..._serialize_as_documented
        "Login",              // request_bodies_... (POST /api/session)
        "NewUser",            // request_bodies_... (POST /api/users)
        "UserPatch",          // request_bodies_... (PATCH /api/users/{id})
        "NewToken",           // request_bodies_... (POST /api/tokens)
        "CreatedToken",       // not held: built as JSON in api::auth
        "TokenInfo",          // not held: built as JSON in api::auth
        "MemberChange",       // ..._serialize_as_documented (in Event)
        "Recovery",           // ..._serialize_as_documented (in Event)
        "BoardRole",          // every_enum_lists_the_variants_serde_knows
        "BoardRecord",        // ..._serialize_as_documented (in Event)
        "Column",             // ..._serialize_as_documented (in Event)
        "BoardMember",        // ..._serialize_as_documented (in Event)
        "Board",              // not held: built as JSON in api::boards
        "NewBoard",           // request_bodies_... (POST /api/boards)
        "BoardPatch",         // request_bodies_... (PATCH /api/boards/{id})
        "BoardMemberRole",    // request_bodies_... (PUT …/members/{user_id})
        "NewColumn",          // request_bodies_... (POST /api/boards/{id}/columns)
        "ColumnPatch",        // request_bodies_... (PATCH /api/columns/{id})
        "PresenceSummary",    // request_bodies_... (POST /internal/presence)
        "ImportJob",          // ..._serialize_as_documented
        "Comment",            // ..._serialize_as_documented (and in Event)
        "CommentBody",        // request_bodies_... (POST/PATCH comments)
        "Checklist",          // ..._serialize_as_documented (and in Event)
        "ChecklistItem",      // ..._serialize_as_documented (in Checklist)
        "ChecklistChange",    // ..._serialize_as_documented (in Event)
        "ChecklistTitle",     // request_bodies_... (POST/PATCH checklists)
        "ChecklistItemBody",  // request_bodies_... (POST …/items)
        "ChecklistItemPatch", // request_bodies_... (PATCH /api/checklist-items/{id})
        "Notification",       // ..._serialize_as_documented
        "NotificationsRead",  // request_bodies_... (POST /api/notifications/read)
        "Webhook",            // ..._serialize_as_documented (as api::webhooks builds it)
        "WebhookDelivery",    // ..._serialize_as_documented (and in Event)
        "NewWebhook",         // request_bodies_... (POST /api/boards/{id}/webhooks)
    ];
    let named = doc.0["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
        .map(String::as_str);
    assert_eq!(sorted(named), sorted(held));
}
