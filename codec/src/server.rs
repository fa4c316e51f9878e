//! Temporal's codec server protocol over HTTP, for the Web UI, `temporal` and `tctl`.
//!
//! | request                                 | answer                                        |
//! |-----------------------------------------|-----------------------------------------------|
//! | `POST /encode`, `POST /{namespace}/encode` | `{"payloads":[…]}` encrypted with the newest key |
//! | `POST /decode`, `POST /{namespace}/decode` | `{"payloads":[…]}` decrypted (plain ones as sent) |
//! | `OPTIONS …` from an allowed origin      | the CORS preflight answer (no token needed)   |
//! | wrong or missing bearer token           | `401 Unauthorized`                            |
//! | a payload it cannot decrypt             | `400` with the reason (key id, never content) |
//!
//! Bodies are the protobuf JSON form of `temporal.api.common.v1.Payloads`: metadata values and
//! data in base64. The namespace (in the path, or the `X-Namespace` header that the Web UI and
//! the CLIs send) is accepted and logged; one key ring serves every namespace.

use crate::codec::EncryptionCodec;
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The largest request body accepted: Temporal's own limit for a payload is 2 MiB, and the UI
/// sends a page of events' payloads at once.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What a codec server needs.
#[derive(Debug, Clone)]
pub struct CodecServerConfig {
    /// The codec (its keys). A codec server without keys would decode nothing: the command
    /// refuses to start without them.
    pub codec: EncryptionCodec,
    /// When set, every encode/decode request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Origins allowed to call from a browser (the Web UI's), e.g. `http://localhost:8233`.
    pub cors_origins: Vec<String>,
}

struct AppState {
    codec: EncryptionCodec,
    token: Option<String>,
}

/// The codec server's routes, CORS and authentication included.
pub fn router(config: CodecServerConfig) -> Result<Router, String> {
    let origins = config
        .cors_origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o.trim_end_matches('/'))
                .map_err(|_| format!("`{o}` is not a valid origin for CORS"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-namespace"),
        ])
        // The Web UI may send its own credentials ("include cross-origin credentials").
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    let state = Arc::new(AppState {
        codec: config.codec,
        token: config.token.filter(|t| !t.is_empty()),
    });
    Ok(Router::new()
        .route("/encode", post(encode))
        .route("/decode", post(decode))
        .route("/{namespace}/encode", post(encode_in_namespace))
        .route("/{namespace}/decode", post(decode_in_namespace))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Outermost, so a preflight is answered before authentication asks for a token the
        // browser never sends on OPTIONS.
        .layer(cors)
        .with_state(state))
}

async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            tracing::warn!(
                path = %request.uri().path(),
                "codec request refused: missing or wrong bearer token"
            );
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a valid bearer token is required (Authorization: Bearer …)\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Encode,
    Decode,
}

async fn encode(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    body: Json<JsonPayloads>,
) -> Response {
    transform(state, namespace_header(&headers), Direction::Encode, body)
}

async fn decode(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    body: Json<JsonPayloads>,
) -> Response {
    transform(state, namespace_header(&headers), Direction::Decode, body)
}

async fn encode_in_namespace(
    state: State<Arc<AppState>>,
    Path(namespace): Path<String>,
    body: Json<JsonPayloads>,
) -> Response {
    transform(state, Some(namespace), Direction::Encode, body)
}

async fn decode_in_namespace(
    state: State<Arc<AppState>>,
    Path(namespace): Path<String>,
    body: Json<JsonPayloads>,
) -> Response {
    transform(state, Some(namespace), Direction::Decode, body)
}

fn namespace_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-namespace")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn transform(
    State(state): State<Arc<AppState>>,
    namespace: Option<String>,
    direction: Direction,
    Json(body): Json<JsonPayloads>,
) -> Response {
    let count = body.payloads.len();
    let payloads = match body.into_payloads() {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let result = match direction {
        Direction::Encode => state.codec.encrypt_all(payloads),
        Direction::Decode => state.codec.decrypt_all(payloads),
    };
    match result {
        Ok(payloads) => {
            tracing::debug!(?direction, namespace, count, "codec request");
            Json(JsonPayloads::from_payloads(payloads)).into_response()
        }
        Err(e) => {
            tracing::warn!(?direction, namespace, count, error = %e, "codec request failed");
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
    }
}

/// `temporal.api.common.v1.Payloads` in protobuf's JSON mapping.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct JsonPayloads {
    #[serde(default)]
    pub payloads: Vec<JsonPayload>,
}

/// One payload in protobuf's JSON mapping: bytes as base64.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct JsonPayload {
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub data: String,
}

impl JsonPayloads {
    pub fn into_payloads(self) -> Result<Vec<Payload>, String> {
        self.payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let bytes = |field: &str, value: &str| {
                    STANDARD
                        .decode(value)
                        .map_err(|e| format!("payloads[{i}].{field} is not base64: {e}"))
                };
                Ok(Payload {
                    metadata: p
                        .metadata
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), bytes(&format!("metadata.{k}"), v)?)))
                        .collect::<Result<_, String>>()?,
                    data: bytes("data", &p.data)?,
                    ..Default::default()
                })
            })
            .collect()
    }

    pub fn from_payloads(payloads: Vec<Payload>) -> Self {
        Self {
            payloads: payloads
                .into_iter()
                .map(|p| JsonPayload {
                    metadata: p
                        .metadata
                        .into_iter()
                        .map(|(k, v)| (k, STANDARD.encode(v)))
                        .collect(),
                    data: STANDARD.encode(p.data),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Key, KeyRing};
    use axum::body::Body;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    const UI: &str = "http://localhost:8233";

    fn app(token: Option<&str>) -> Router {
        router(CodecServerConfig {
            codec: EncryptionCodec::new(KeyRing::new(vec![Key::new("k1", &[7; 32])])),
            token: token.map(str::to_owned),
            cors_origins: vec![UI.to_owned()],
        })
        .unwrap()
    }

    fn order_payloads() -> JsonPayloads {
        JsonPayloads {
            payloads: vec![JsonPayload {
                metadata: [("encoding".to_owned(), STANDARD.encode("json/plain"))].into(),
                data: STANDARD.encode(r#"{"customer_id":"c-42"}"#),
            }],
        }
    }

    async fn call(
        app: &Router,
        path: &str,
        auth: Option<&str>,
        body: &JsonPayloads,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-namespace", "default");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let response = app
            .clone()
            .oneshot(
                request
                    .body(Body::from(serde_json::to_vec(body).unwrap()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    #[tokio::test]
    async fn encode_then_decode_gives_back_the_payloads_on_both_paths() {
        let app = app(None);
        for prefix in ["", "/default"] {
            let (status, body) =
                call(&app, &format!("{prefix}/encode"), None, &order_payloads()).await;
            assert_eq!(status, StatusCode::OK);
            let sealed: JsonPayloads = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                sealed.payloads[0].metadata["encoding"],
                STANDARD.encode("binary/encrypted")
            );
            assert!(!String::from_utf8_lossy(&body).contains(&STANDARD.encode("c-42")));
            let (status, body) = call(&app, &format!("{prefix}/decode"), None, &sealed).await;
            assert_eq!(status, StatusCode::OK);
            let opened: JsonPayloads = serde_json::from_slice(&body).unwrap();
            assert_eq!(opened, order_payloads());
        }
    }

    #[tokio::test]
    async fn a_wrong_or_missing_token_gets_401_and_the_right_one_passes() {
        let app = app(Some("s3cret"));
        let (status, _) = call(&app, "/decode", Some("Bearer wrong"), &order_payloads()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&app, "/default/encode", None, &order_payloads()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&app, "/decode", Some("Bearer s3cret"), &order_payloads()).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn the_web_uis_preflight_is_answered_without_a_token() {
        let app = app(Some("s3cret"));
        let preflight = |origin: &str| {
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/decode")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header(
                    header::ACCESS_CONTROL_REQUEST_HEADERS,
                    "content-type,x-namespace",
                )
                .body(Body::empty())
                .unwrap()
        };
        let response = app.clone().oneshot(preflight(UI)).await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], UI);
        let response = app.oneshot(preflight("http://evil.example")).await.unwrap();
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "another origin must not be allowed"
        );
    }

    #[tokio::test]
    async fn an_unknown_key_is_a_400_naming_it() {
        let other = EncryptionCodec::new(KeyRing::new(vec![Key::new("k9", &[9; 32])]));
        let sealed = JsonPayloads::from_payloads(
            other
                .encrypt_all(order_payloads().into_payloads().unwrap())
                .unwrap(),
        );
        let (status, body) = call(&app(None), "/decode", None, &sealed).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains("`k9`"));
    }
}
