//! Reading requests: bodies, conditional and idempotency headers, auth.
//! Each turns malformed input into a 4xx before anything is proposed.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use crate::task::{validate, Idempotency};

/// Largest request body accepted; a task with the longest description fits.
pub const MAX_BODY: usize = 256 << 10;
/// How long a request body may take to arrive, all of it (the headers have
/// their own limit, in the HTTP server).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a JSON object body: the right content type and no content coding,
/// a declared length within [`MAX_BODY`] (refused before a byte is read),
/// at most [`MAX_BODY`] bytes arriving within [`BODY_TIMEOUT`], then
/// well-formed JSON, an object, with no key twice.
pub async fn json_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Value, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(
            "the request body must be JSON (Content-Type: application/json)".into(),
        ));
    }
    if let Some(coding) = req.headers().get(header::CONTENT_ENCODING) {
        let coding = coding.to_str().unwrap_or("?").trim();
        if !coding.eq_ignore_ascii_case("identity") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding `{:.40}` is not accepted: send the JSON as it is",
                coding
            )));
        }
    }
    let body = body_bytes(req, &mut payload, MAX_BODY).await?;
    parse_object(&body)
}

/// Reads a body as it is: a declared length within `limit` (refused before
/// a byte is read), at most `limit` bytes arriving within [`BODY_TIMEOUT`].
/// For a body whose exact bytes matter (a peer's proof signs them).
pub async fn body_bytes(
    req: &HttpRequest,
    payload: &mut web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge(limit));
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| ApiError::RequestTimeout(BODY_TIMEOUT))?
}

/// Parses a JSON object, refusing a duplicated key at any depth (which of
/// the two would count is a guess) and anything but an object at the top.
pub fn parse_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let value = serde_json::from_slice::<Strict>(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?
        .0;
    if !value.is_object() {
        return Err(ApiError::BadRequest(format!(
            "the body must be a JSON object, not {}",
            match value {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )));
    }
    Ok(value)
}

/// A JSON value whose objects never repeat a key.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{:.40}` appears twice",
                    key
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Deserializes `value` into `T`, naming the offending field on failure.
pub fn from_json<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::invalid(&field, e.into_inner().to_string())
    })
}

/// `If-Match: "3"` → `Some(3)`. `*` matches any existing version: `None`.
pub fn if_match(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid("If-Match", "is not ASCII"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let version = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag);
    version.parse::<u64>().map(Some).map_err(|_| {
        ApiError::invalid(
            "If-Match",
            format!("`{text}` is not a version ETag such as \"3\""),
        )
    })
}

/// The `Idempotency-Key` of a write, with a fingerprint of what the client
/// sent: method, path, body and `If-Match`, not what the server stamps.
pub fn idempotency(
    req: &HttpRequest,
    body: Option<&Value>,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    // Fault tests only (the `failpoints` build): forget the key, so that
    // client retries write twice and the duplicate checker must notice.
    if crate::crash::switch("api_ignore_idempotency_key") {
        return Ok(None);
    }
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "is not ASCII"))?
        .to_string();
    validate::idempotency_key(&key)?;
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // serde_json's Value keeps object keys sorted: one spelling per body.
    let canonical = format!(
        "{} {}\n{}\n{}",
        req.method(),
        req.path(),
        if_match,
        body.map(Value::to_string).unwrap_or_default()
    );
    Ok(Some(Idempotency {
        key,
        fingerprint: crate::db::migrate::checksum(&canonical),
    }))
}

/// `?consistency=`: linearizable (ReadIndex first, the default) or local.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    #[default]
    Linearizable,
    Local,
}

/// A page size: `limit` if given (1 to `max`, else a 400 naming it), or
/// `default`.
pub fn limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid("limit", format!("must be 1 to {max}")))
    }
}

/// A query parameter's text, trimmed; `None` when absent or blank (a
/// filter left empty in a form filters nothing).
pub fn nonempty(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn if_match_accepts_quoted_weak_and_bare_versions() {
        for (header, expected) in [
            ("\"3\"", Some(3)),
            ("W/\"4\"", Some(4)),
            ("5", Some(5)),
            ("*", None),
        ] {
            let req = TestRequest::default()
                .insert_header(("If-Match", header))
                .to_http_request();
            assert_eq!(if_match(&req).unwrap(), expected, "{header}");
        }
        let req = TestRequest::default()
            .insert_header(("If-Match", "\"abc\""))
            .to_http_request();
        assert!(matches!(if_match(&req), Err(ApiError::Invalid(_))));
        assert_eq!(
            if_match(&TestRequest::default().to_http_request()).unwrap(),
            None
        );
    }

    #[test]
    fn the_fingerprint_ignores_key_order_but_not_content() {
        let req = |body: &str| {
            let req = TestRequest::post()
                .uri("/api/tasks")
                .insert_header(("Idempotency-Key", "k"))
                .to_http_request();
            let value: Value = serde_json::from_str(body).unwrap();
            idempotency(&req, Some(&value))
                .unwrap()
                .unwrap()
                .fingerprint
        };
        assert_eq!(req(r#"{"a":1,"b":2}"#), req(r#"{"b":2,"a":1}"#));
        assert_ne!(req(r#"{"a":1}"#), req(r#"{"a":2}"#));
    }

    #[test]
    fn a_body_must_be_one_object_with_each_key_once() {
        assert!(parse_object(br#"{"title":"x","labels":["a","b"],"n":{"k":1.5}}"#).is_ok());
        for (body, says) in [
            (&br#"["arr patched"]"#[..], "an array"),
            (br#"[9,null,null,"voter"]"#, "an array"),
            (br#""x""#, "a string"),
            (
                br#"{"title":"dup-first","title":"dup-second"}"#,
                "appears twice",
            ),
            (br#"{"a":{"b":1,"b":2}}"#, "appears twice"),
            (br#"{"a":[{"k":1,"k":1}]}"#, "appears twice"),
            (br#"{"a":1,}"#, "not valid JSON"),
        ] {
            let err = parse_object(body).unwrap_err();
            assert!(
                err.to_string().contains(says),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse_object(format!("{{\"a\":{deep}}}").as_bytes()).is_err());
    }

    #[test]
    fn a_misspelled_field_is_named() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            title: String,
        }
        let err = from_json::<Body>(serde_json::json!({"title": 5})).unwrap_err();
        assert!(
            matches!(&err, ApiError::Invalid(i) if i.field == "title"),
            "{err:?}"
        );
        let err = from_json::<Body>(serde_json::json!({"title": "x", "titel": "y"})).unwrap_err();
        assert!(err.to_string().contains("titel"), "{err}");
    }
}
