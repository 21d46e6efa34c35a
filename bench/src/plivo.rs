//! Plivo, as the benchmark plays it: accepts every message at once.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use http_body_util::BodyExt;
use hyper::{Request, StatusCode, body::Incoming};
use serde_json::{Value, json};

use crate::{
    Error,
    runtime::{json_reply, serve},
};

/// Accepts every message at once, as a healthy Plivo would, and keeps the
/// latest code sent to each number for the verify runs.
#[derive(Default)]
pub struct Plivo {
    codes: Mutex<HashMap<String, String>>,
}

impl Plivo {
    pub async fn start(self: &Arc<Self>) -> Result<SocketAddr, Error> {
        let plivo = Arc::clone(self);
        serve(move |req: Request<Incoming>| {
            let plivo = Arc::clone(&plivo);
            async move {
                let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let (Some(dst), Some(text)) = (message["dst"].as_str(), message["text"].as_str()) else {
                    return json_reply(StatusCode::BAD_REQUEST, json!({"error": "src, dst and text are required"}));
                };
                if let Some(code) = text.split(|c: char| !c.is_ascii_digit()).find(|r| r.len() >= 6) {
                    plivo.codes.lock().unwrap().insert(dst.to_owned(), code.to_owned());
                }
                json_reply(
                    StatusCode::ACCEPTED,
                    json!({"api_id": "bench", "message": "message(s) queued", "message_uuid": ["bench"]}),
                )
            }
        })
        .await
    }

    pub fn code_for(&self, phone: &str) -> Option<String> {
        self.codes.lock().unwrap().get(phone).cloned()
    }
}
