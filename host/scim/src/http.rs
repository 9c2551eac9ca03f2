//! The HTTP face of the service: routes under `/scim/v2/{connector}`, body
//! and content-type checks, and SCIM JSON answers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};

use crate::ResourceKind;
use crate::error::{ScimError, ScimType};
use crate::project::Projection;
use crate::schema::{self, LIST_SCHEMA};
use crate::service::{Context, ListQuery, ScimService, member};

type Shared = State<Arc<ScimService>>;
type Answer = Result<Response, ScimError>;

const SCIM_JSON: &str = "application/scim+json";

/// A response with a SCIM JSON body.
pub(crate) fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}

/// The routes of the SCIM service provider, every connector under
/// `/scim/v2/{connector}`. Unknown paths and connectors are answered with a
/// 404 SCIM error, unsupported methods with a 405 one.
pub fn router(service: Arc<ScimService>) -> Router {
    routes(service).fallback(unknown_path)
}

/// The SCIM routes without a fallback, to merge into a larger application
/// that has its own; answer unknown `/scim/` paths there with
/// [`not_found`].
pub fn routes(service: Arc<ScimService>) -> Router {
    let limit = service.body_limit();
    let base = "/scim/v2/{connector}";
    Router::new()
        .route(
            &format!("{base}/ServiceProviderConfig"),
            only(get(service_provider_config)),
        )
        .route(&format!("{base}/ResourceTypes"), only(get(resource_types)))
        .route(
            &format!("{base}/ResourceTypes/{{name}}"),
            only(get(resource_type)),
        )
        .route(&format!("{base}/Schemas"), only(get(schemas)))
        .route(&format!("{base}/Schemas/{{id}}"), only(get(schema_by_id)))
        .route(
            &format!("{base}/Users"),
            only(get(list_users).post(create_user)),
        )
        .route(
            &format!("{base}/Groups"),
            only(get(list_groups).post(create_group)),
        )
        .route(&format!("{base}/Users/.search"), only(post(search_users)))
        .route(&format!("{base}/Groups/.search"), only(post(search_groups)))
        .route(&format!("{base}/.search"), only(post(search_all)))
        .route(&format!("{base}/Users/{{id}}"), one(ResourceKind::User))
        .route(&format!("{base}/Groups/{{id}}"), one(ResourceKind::Group))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service)
}

fn only(route: MethodRouter<Arc<ScimService>>) -> MethodRouter<Arc<ScimService>> {
    route.fallback(method_not_allowed)
}

async fn method_not_allowed() -> ScimError {
    ScimError::MethodNotAllowed("this method is not supported here".to_owned())
}

async fn unknown_path() -> ScimError {
    not_found()
}

/// The SCIM answer for a path under `/scim/` that serves nothing.
pub fn not_found() -> ScimError {
    ScimError::NotFound("no SCIM endpoint at this path".to_owned())
}

fn one(kind: ResourceKind) -> MethodRouter<Arc<ScimService>> {
    only(
        get(
            move |s: Shared, p: Path<(String, String)>, h: HeaderMap, q: RawQuery| {
                get_one(s, p, h, q, kind)
            },
        )
        .put(
            move |s: Shared, p: Path<(String, String)>, h: HeaderMap, b| {
                replace_one(s, p, h, b, kind)
            },
        )
        .patch(
            move |s: Shared, p: Path<(String, String)>, h: HeaderMap, b| {
                patch_one(s, p, h, b, kind)
            },
        )
        .delete(move |s: Shared, p: Path<(String, String)>, h: HeaderMap| {
            delete_one(s, p, h, kind)
        }),
    )
}

fn authorize(
    service: &ScimService,
    connector: &str,
    headers: &HeaderMap,
) -> Result<Context, ScimError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    service.authorize(connector, text(header::AUTHORIZATION), text(header::HOST))
}

/// Reads a JSON body: the content type must be SCIM JSON or plain JSON, the
/// size within the limit, and the text valid JSON.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ScimError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ScimError::PayloadTooLarge(
            "the request body is larger than this server accepts".to_owned(),
        ),
        _ => ScimError::invalid_syntax("the request body could not be read"),
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(SCIM_JSON) && !essence.eq_ignore_ascii_case("application/json")
    {
        return Err(ScimError::UnsupportedMediaType(format!(
            "send {SCIM_JSON} or application/json, not {essence:?}"
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))
}

/// The query parameters of a list or a single read.
fn list_query(raw: Option<&str>) -> Result<ListQuery, ScimError> {
    let mut query = ListQuery::default();
    let mut attributes = Vec::new();
    let mut excluded = Vec::new();
    for (key, value) in parse_query(raw.unwrap_or_default()) {
        match key.to_ascii_lowercase().as_str() {
            "filter" => query.filter = Some(value),
            "startindex" => query.start_index = Some(integer("startIndex", &value)?),
            "count" => query.count = Some(integer("count", &value)?),
            "attributes" => attributes.push(value),
            "excludedattributes" => excluded.push(value),
            _ => {}
        }
    }
    query.projection = Projection::parse(&attributes, &excluded)?;
    Ok(query)
}

fn parse_query(raw: &str) -> Vec<(String, String)> {
    serde_urlencoded_pairs(raw)
}

/// Splits a query string into decoded pairs; `+` means a space, as in forms.
fn serde_urlencoded_pairs(raw: &str) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{raw}").parse().unwrap_or_default(),
    )
    .map(|q| q.0)
    .unwrap_or_default()
}

fn integer(name: &str, value: &str) -> Result<i64, ScimError> {
    value
        .trim()
        .parse()
        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not {value:?}")))
}

fn ok(body: &Value) -> Answer {
    Ok(scim_json(StatusCode::OK, body))
}

async fn service_provider_config(State(s): Shared, Path(c): Path<String>, h: HeaderMap) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    ok(&schema::service_provider_config(&ctx.base))
}

fn list_of(items: Vec<Value>) -> Value {
    let count = items.len();
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": count,
        "startIndex": 1,
        "itemsPerPage": count,
        "Resources": Value::Array(items),
    })
}

async fn resource_types(State(s): Shared, Path(c): Path<String>, h: HeaderMap) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    ok(&list_of(schema::resource_types(&ctx.base)))
}

async fn resource_type(
    State(s): Shared,
    Path((c, name)): Path<(String, String)>,
    h: HeaderMap,
) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    let found = schema::resource_types(&ctx.base)
        .into_iter()
        .find(|t| t.get("id").and_then(Value::as_str) == Some(name.as_str()));
    ok(&found.ok_or_else(|| ScimError::NotFound(format!("no resource type {name:?}")))?)
}

async fn schemas(State(s): Shared, Path(c): Path<String>, h: HeaderMap) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    ok(&list_of(schema::schemas(&ctx.base)))
}

async fn schema_by_id(
    State(s): Shared,
    Path((c, id)): Path<(String, String)>,
    h: HeaderMap,
) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    let found = schema::schemas(&ctx.base)
        .into_iter()
        .find(|t| t.get("id").and_then(Value::as_str) == Some(id.as_str()));
    ok(&found.ok_or_else(|| ScimError::NotFound(format!("no schema {id:?}")))?)
}

async fn list(
    s: &ScimService,
    c: &str,
    h: &HeaderMap,
    q: Option<&str>,
    kinds: &[ResourceKind],
) -> Answer {
    let ctx = authorize(s, c, h)?;
    let query = list_query(q)?;
    ok(&s.list(&ctx, kinds, &query).await?)
}

async fn list_users(
    State(s): Shared,
    Path(c): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Answer {
    list(&s, &c, &h, q.as_deref(), &[ResourceKind::User]).await
}

async fn list_groups(
    State(s): Shared,
    Path(c): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Answer {
    list(&s, &c, &h, q.as_deref(), &[ResourceKind::Group]).await
}

/// A search request body (RFC 7644 §3.4.3) turned into a list query.
fn search_query(body: &Value) -> Result<ListQuery, ScimError> {
    let map = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a search request must be a JSON object"))?;
    // A member of the wrong type is refused rather than ignored: an
    // ignored filter would answer with every resource.
    let strings = |name: &str| -> Result<Vec<String>, ScimError> {
        let wrong = || ScimError::invalid_value(format!("{name} must be a list of strings"));
        match member(map, name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
                .collect(),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(_) => Err(wrong()),
        }
    };
    let int = |name: &str| -> Result<Option<i64>, ScimError> {
        match member(map, name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| ScimError::invalid_value(format!("{name} must be an integer"))),
        }
    };
    let filter = match member(map, "filter") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            return Err(ScimError::bad(
                ScimType::InvalidFilter,
                "filter must be a string",
            ));
        }
    };
    Ok(ListQuery {
        filter,
        start_index: int("startIndex")?,
        count: int("count")?,
        projection: Projection::parse(&strings("attributes")?, &strings("excludedAttributes")?)?,
    })
}

async fn search(
    s: &ScimService,
    c: &str,
    h: &HeaderMap,
    b: Result<Bytes, BytesRejection>,
    kinds: &[ResourceKind],
) -> Answer {
    let ctx = authorize(s, c, h)?;
    let query = search_query(&json_body(h, b)?)?;
    ok(&s.list(&ctx, kinds, &query).await?)
}

async fn search_users(
    State(s): Shared,
    Path(c): Path<String>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    search(&s, &c, &h, b, &[ResourceKind::User]).await
}

async fn search_groups(
    State(s): Shared,
    Path(c): Path<String>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    search(&s, &c, &h, b, &[ResourceKind::Group]).await
}

async fn search_all(
    State(s): Shared,
    Path(c): Path<String>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    search(&s, &c, &h, b, &[ResourceKind::User, ResourceKind::Group]).await
}

fn created(body: &Value) -> Response {
    let mut response = scim_json(StatusCode::CREATED, body);
    let location = body.pointer("/meta/location").and_then(Value::as_str);
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn create(
    s: &ScimService,
    c: &str,
    h: &HeaderMap,
    b: Result<Bytes, BytesRejection>,
    kind: ResourceKind,
) -> Answer {
    let ctx = authorize(s, c, h)?;
    let body = json_body(h, b)?;
    Ok(created(&s.create(&ctx, kind, body).await?))
}

async fn create_user(
    State(s): Shared,
    Path(c): Path<String>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    create(&s, &c, &h, b, ResourceKind::User).await
}

async fn create_group(
    State(s): Shared,
    Path(c): Path<String>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    create(&s, &c, &h, b, ResourceKind::Group).await
}

async fn get_one(
    State(s): Shared,
    Path((c, id)): Path<(String, String)>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    kind: ResourceKind,
) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    let query = list_query(q.as_deref())?;
    let mut found = s.get(&ctx, kind, &id).await?;
    query.projection.apply(kind, &mut found);
    ok(&found)
}

async fn replace_one(
    State(s): Shared,
    Path((c, id)): Path<(String, String)>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
    kind: ResourceKind,
) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    let body = json_body(&h, b)?;
    ok(&s.replace(&ctx, kind, &id, body).await?)
}

async fn patch_one(
    State(s): Shared,
    Path((c, id)): Path<(String, String)>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
    kind: ResourceKind,
) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    let body = json_body(&h, b)?;
    let patched = s.patch(&ctx, kind, &id, &body).await?;
    // Entra expects 204 for groups; a user is answered with its new state,
    // which Okta reads back.
    match kind {
        ResourceKind::Group => Ok(StatusCode::NO_CONTENT.into_response()),
        ResourceKind::User => ok(&patched),
    }
}

async fn delete_one(
    State(s): Shared,
    Path((c, id)): Path<(String, String)>,
    h: HeaderMap,
    kind: ResourceKind,
) -> Answer {
    let ctx = authorize(&s, &c, &h)?;
    s.delete(&ctx, kind, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
