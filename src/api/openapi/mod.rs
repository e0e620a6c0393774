//! Holds the hand-kept OpenAPI document, `src/api/openapi.json` (served at
//! `/openapi.json`), to the code. Tests only.
//!
//! The document is written by hand because most of what a client needs is
//! not in the handlers' types: bodies are read by `request::json_body` (size,
//! content type, repeated keys), answers are built by hand, errors are one
//! JSON map (see `error.rs`), and the prose (limits, consistency, CORS, the
//! WebSocket protocol) matters more than the shapes. What the types do say,
//! the tests in `tests.rs` check against the document, in both directions:
//!
//! - every route of [`super::ROUTES`] is an operation of the document, and
//!   every operation is a route (or the board page, which the fallback
//!   serves); the app built by [`super::routes`] answers each documented
//!   method and refuses the others;
//! - path parameters are the ones in the path; query parameters are the
//!   fields of the handler's `web::Query` type, and a query the document
//!   describes parses (each enum value, each required parameter missing);
//! - request bodies are the fields of the type the route's handler reads;
//!   a body built from the document parses, and what the document says is
//!   required, optional, closed or an enum is what serde does;
//! - tasks, events, the cluster view and every kind of error serialize to
//!   JSON that the document's schemas describe, key for key;
//! - every enum in the document lists the variants serde knows.
//!
//! Not checked: headers (handlers read them by name), which status codes a
//! route can answer, the inline shapes of list answers, and `RecentLog`
//! (private to `raft`; the lab's page reads it).

mod tests;

use std::fmt;

use actix_web::{web, Handler, HttpRequest};
use serde::de::{DeserializeOwned, Visitor};
use serde::Deserializer;
use serde_json::{json, Value};

use super::request;

/// What a handler reads from a request, as far as its types say.
pub struct Shape {
    /// The handler's `web::Query` type, if it has one.
    pub query: Option<Reader<str>>,
    /// Whether it has a `web::Path` (of the path's parameters).
    pub reads_path: bool,
    /// The JSON body it reads, as the route table names it.
    pub body: Option<Reader<Value>>,
}

/// One typed part of a request: the names serde expects, and a parse that
/// answers as the handler's own reading would.
pub struct Reader<I: ?Sized> {
    pub fields: fn() -> Vec<&'static str>,
    pub parse: fn(&I) -> Result<(), String>,
}

impl Shape {
    pub fn of<F, Args>(_handler: &F) -> Shape
    where
        F: Handler<Args>,
        Args: Extractors,
    {
        let mut shape = Shape {
            query: None,
            reads_path: false,
            body: None,
        };
        Args::describe(&mut shape);
        shape
    }

    pub fn body<T: DeserializeOwned>(mut self) -> Shape {
        self.body = Some(Reader {
            fields: serde_names::<T>,
            parse: parse_body::<T>,
        });
        self
    }
}

fn parse_body<T: DeserializeOwned>(body: &Value) -> Result<(), String> {
    request::from_json::<T>(body.clone())
        .map(drop)
        .map_err(|e| e.to_string())
}

fn parse_query<T: DeserializeOwned>(query: &str) -> Result<(), String> {
    web::Query::<T>::from_query(query)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A handler argument, as far as the document is concerned.
pub trait Extractor {
    fn describe(_shape: &mut Shape) {}
}

impl<T: DeserializeOwned> Extractor for web::Query<T> {
    fn describe(shape: &mut Shape) {
        shape.query = Some(Reader {
            fields: serde_names::<T>,
            parse: parse_query::<T>,
        });
    }
}

impl<T> Extractor for web::Path<T> {
    fn describe(shape: &mut Shape) {
        shape.reads_path = true;
    }
}

impl<T: ?Sized> Extractor for web::Data<T> {}
impl Extractor for HttpRequest {}
impl Extractor for web::Payload {}

/// A handler's arguments.
pub trait Extractors {
    fn describe(shape: &mut Shape);
}

macro_rules! extractors {
    ($($arg:ident)*) => {
        impl<$($arg: Extractor),*> Extractors for ($($arg,)*) {
            fn describe(_shape: &mut Shape) {
                $($arg::describe(_shape);)*
            }
        }
    };
}

extractors!();
extractors!(A);
extractors!(A B);
extractors!(A B C);
extractors!(A B C D);
extractors!(A B C D E);

/// The field names of a struct, or the variant names of an enum, as serde
/// spells them on the wire (renames applied): what its `Deserialize` asks
/// a deserializer for.
pub fn serde_names<T: DeserializeOwned>() -> Vec<&'static str> {
    match T::deserialize(AskNames) {
        Err(Names(names)) if !names.is_empty() => names.to_vec(),
        _ => panic!(
            "{} is neither a struct nor an enum to serde",
            std::any::type_name::<T>()
        ),
    }
}

/// A deserializer that answers every request with the names it was asked
/// for, as its error.
struct AskNames;

#[derive(Debug)]
struct Names(&'static [&'static str]);

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Names {}

impl serde::de::Error for Names {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Names(&[])
    }
}

impl<'de> Deserializer<'de> for AskNames {
    type Error = Names;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Names> {
        Err(Names(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Names> {
        Err(Names(fields))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Names> {
        Err(Names(variants))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

/// The document, as served.
pub struct Doc(pub Value);

impl Doc {
    pub fn load() -> Doc {
        Doc(serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json is JSON"))
    }

    /// Follows `$ref`s to what they name.
    pub fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(target) = value.get("$ref").and_then(Value::as_str) {
            let pointer = target
                .strip_prefix('#')
                .expect("a $ref within the document");
            value = self
                .0
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{target} names nothing"));
        }
        value
    }

    pub fn schema(&self, name: &str) -> &Value {
        &self.0["components"]["schemas"][name]
    }

    /// Every operation: (METHOD, path, operation, its parameters resolved,
    /// the path's own included).
    pub fn operations(&self) -> Vec<(String, String, &Value, Vec<&Value>)> {
        let mut out = Vec::new();
        let paths = self.0["paths"].as_object().expect("paths");
        for (path, item) in paths {
            let shared = item["parameters"].as_array().into_iter().flatten();
            for (method, operation) in item.as_object().expect("a path item") {
                if method == "parameters" {
                    continue;
                }
                let own = operation["parameters"].as_array().into_iter().flatten();
                let parameters = shared.clone().chain(own).map(|p| self.resolve(p));
                out.push((
                    method.to_uppercase(),
                    path.clone(),
                    operation,
                    parameters.collect(),
                ));
            }
        }
        out
    }

    /// A value the schema describes: every property, the first enum value,
    /// the least number allowed.
    pub fn sample(&self, schema: &Value) -> Value {
        let schema = self.resolve(schema);
        if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
            return first.clone();
        }
        match schema["type"].as_str() {
            Some("string") => json!(match schema["format"].as_str() {
                Some("uuid") => "0192f0c4-6f1e-7c55-9d5e-3f6a1b2c3d4e",
                Some("date") => "2026-12-24",
                Some("date-time") => "2026-12-03T10:00:00.000Z",
                _ => "x",
            }),
            Some("integer") => json!(schema["minimum"].as_u64().unwrap_or(1)),
            Some("number") => json!(1.5),
            Some("boolean") => json!(true),
            Some("array") => json!([self.sample(&schema["items"])]),
            _ => Value::Object(
                self.properties(schema)
                    .map(|(name, property)| (name.clone(), self.sample(property)))
                    .collect(),
            ),
        }
    }

    pub fn properties<'a>(
        &'a self,
        schema: &'a Value,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.resolve(schema)["properties"]
            .as_object()
            .into_iter()
            .flatten()
    }

    pub fn required<'a>(&'a self, schema: &'a Value) -> Vec<&'a str> {
        self.resolve(schema)["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }

    /// Where `value` is not what `schema` describes. Strict: an object key
    /// the schema does not name is a difference too.
    pub fn differences(&self, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let schema = self.resolve(schema);
        let anything = schema.as_object().is_some_and(|s| s.is_empty());
        if value.is_null() {
            if !anything && schema["nullable"] != json!(true) {
                out.push(format!("{at} is null, which is not documented as nullable"));
            }
            return;
        }
        if let Some(values) = schema["enum"].as_array() {
            if !values.contains(value) {
                out.push(format!("{at} is {value}, not one of {values:?}"));
            }
        }
        let kind = match schema["type"].as_str() {
            Some(kind) => kind,
            None if schema.get("properties").is_some() => "object",
            None => return,
        };
        let fits = match kind {
            "string" => value.as_str().is_some_and(|s| self.in_format(schema, s)),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("{at}: the document has a type `{other}`"),
        };
        if !fits {
            out.push(format!("{at} is {value}, not a {kind} as documented"));
            return;
        }
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                self.differences(&schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
        if let Value::Object(map) = value {
            for name in self.required(schema) {
                if !map.contains_key(name) {
                    out.push(format!("{at}.{name} is required but absent"));
                }
            }
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            for (name, field) in map {
                let at = format!("{at}.{name}");
                match (schema["properties"].get(name), extra) {
                    (Some(property), _) | (None, Some(property)) => {
                        self.differences(property, field, &at, out)
                    }
                    (None, None) => out.push(format!("{at} is not documented")),
                }
            }
        }
    }

    fn in_format(&self, schema: &Value, text: &str) -> bool {
        match schema["format"].as_str() {
            Some("uuid") => uuid::Uuid::parse_str(text).is_ok(),
            Some("date") => crate::time::Date::parse(text).is_some(),
            Some("date-time") => crate::time::Timestamp::parse(text).is_some(),
            _ => true,
        }
    }
}

/// A value as it stands in a query string.
pub fn query_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
