//! The OpenAPI 3.1 description of the JSON API, served at
//! `/api/openapi.json`. A test checks it against the router's endpoints.

use serde_json::{json, Value};

use crate::config::Config;

fn error_ref(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": schema}}})
}

fn image_body(extra: Value) -> Value {
    let mut props = json!({"image": {"type": "string", "format": "binary"}});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({"required": true, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"], "properties": props}}}})
}

fn user_ref() -> Value {
    json!({"$ref": "#/components/schemas/UserRef"})
}

/// The document of a server configured with `config` (the challenge
/// endpoints exist only when the liveness policy uses them).
pub fn document(config: &Config) -> Value {
    let mut doc = full_document();
    if !config.liveness.active() {
        if let Some(paths) = doc["paths"].as_object_mut() {
            paths.retain(|p, _| !p.starts_with("/api/face-login/challenge"));
        }
    }
    doc
}

fn full_document() -> Value {
    let csrf = json!([{"$ref": "#/components/parameters/Csrf"}]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "facegate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Face-recognition login. Cookie sessions; state-changing requests carry X-CSRF-Token from GET /api/csrf. Errors are {error, message}."
        },
        "paths": {
            "/api/csrf": {"get": {"summary": "Get the session's CSRF token",
                "responses": {"200": ok("The token", json!({"type": "object", "properties": {"csrf_token": {"type": "string"}}}))}}},
            "/api/openapi.json": {"get": {"summary": "This document",
                "responses": {"200": {"description": "OpenAPI document"}}}},
            "/api/register": {"post": {"summary": "Create an account and log in", "parameters": csrf,
                "requestBody": json_body(json!({"type": "object", "required": ["username", "email", "password"],
                    "properties": {"username": {"type": "string"}, "email": {"type": "string"}, "password": {"type": "string"}}})),
                "responses": {"201": ok("Created", user_ref()), "400": error_ref("invalid"),
                    "403": error_ref("csrf"), "409": error_ref("conflict (username or e-mail address taken)"),
                    "503": error_ref("storage_unavailable"), "507": error_ref("storage_full")}}},
            "/api/login": {"post": {"summary": "Log in with a password", "parameters": csrf,
                "requestBody": json_body(json!({"type": "object", "required": ["username", "password"],
                    "properties": {"username": {"type": "string"}, "password": {"type": "string"}}})),
                "responses": {"200": ok("Logged in; with face_required the face step must follow (second_factor mode); notice: a face was added to the account since the owner was last told",
                        json!({"allOf": [user_ref(), {"type": "object", "properties": {"face_required": {"type": "boolean"},
                            "notice": {"type": ["string", "null"]}}}]})),
                    "401": error_ref("invalid_credentials"), "403": error_ref("csrf"), "429": error_ref("rate_limited")}}},
            "/api/logout": {"post": {"summary": "Log out", "parameters": csrf,
                "responses": {"204": {"description": "Logged out"}, "403": error_ref("csrf")}}},
            "/api/me": {"get": {"summary": "The logged-in user",
                "responses": {"200": ok("The user", json!({"type": "object", "properties": {
                        "id": {"type": "integer"}, "username": {"type": "string"}, "email": {"type": "string"},
                        "faces": {"type": "integer"}, "is_staff": {"type": "boolean"}}})),
                    "401": error_ref("not_authenticated")}},
                "delete": {"summary": "Delete the account and erase all its biometric data (templates, photos, login attempts)",
                    "parameters": csrf.clone(),
                    "requestBody": json_body(json!({"type": "object", "required": ["password"],
                        "properties": {"password": {"type": "string"}}})),
                    "responses": {"204": {"description": "Deleted; the session ends"},
                        "401": error_ref("not_authenticated or invalid_credentials"), "403": error_ref("csrf")}}},
            "/api/me/export": {"get": {"summary": "Export all of the user's data: account, decrypted face templates, photos (base64 JPEG), login attempts",
                "responses": {"200": ok("The export", json!({"type": "object", "properties": {
                        "id": {"type": "integer"}, "username": {"type": "string"}, "email": {"type": "string"},
                        "faces": {"type": "array", "items": {"type": "object", "properties": {
                            "id": {"type": "integer"}, "model_id": {"type": "string"}, "quality": {"type": "number"},
                            "embedding": {"type": "array", "items": {"type": "number"}},
                            "image_jpeg_base64": {"type": "string"}}}},
                        "login_attempts": {"type": "array", "items": {"type": "object"}},
                        "probes": {"type": "array", "items": {"type": "object", "properties": {
                            "attempt_id": {"type": "integer"}, "at": {"type": "string"},
                            "image_file": {"type": "string"}}}}}})),
                    "401": error_ref("not_authenticated")}}},
            "/api/me/reauth": {"post": {"summary": "Confirm the password: the session counts as freshly authenticated for reauth_seconds (adding a face needs it)",
                "parameters": csrf.clone(),
                "requestBody": json_body(json!({"type": "object", "required": ["password"],
                    "properties": {"password": {"type": "string"}}})),
                "responses": {"204": {"description": "Confirmed"},
                    "401": error_ref("not_authenticated or invalid_credentials"), "403": error_ref("csrf"),
                    "429": error_ref("rate_limited")}}},
            "/api/me/faces": {
                "get": {"summary": "The user's enrolled faces",
                    "responses": {"200": ok("Faces", json!({"type": "object", "properties": {"faces": {"type": "array",
                            "items": {"$ref": "#/components/schemas/Face"}}}})),
                        "401": error_ref("not_authenticated")}},
                "post": {"summary": "Enrol a face photo", "parameters": csrf, "requestBody": image_body(json!({})),
                    "responses": {"201": ok("Enrolled", json!({"type": "object", "properties": {
                            "id": {"type": "integer"}, "quality": {"type": "number"}}})),
                        "401": error_ref("not_authenticated"), "413": error_ref("too_large"),
                        "403": error_ref("csrf, or reauth_required (no login or password confirmation within reauth_seconds: POST /api/me/reauth)"),
                        "409": error_ref("face_mismatch (not the person already enrolled) or face_taken (identify mode: the face logs in to another account)"),
                        "422": error_ref("no_face, multiple_faces, low_quality or invalid_image"),
                        "503": error_ref("storage_unavailable"), "507": error_ref("storage_full")}}},
            "/api/me/faces/{id}": {"delete": {"summary": "Delete one enrolled face", "parameters": [
                    {"$ref": "#/components/parameters/Csrf"},
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": {"204": {"description": "Deleted"}, "401": error_ref("not_authenticated"),
                    "403": error_ref("csrf"), "404": error_ref("not_found")}}},
            "/api/face-login": {"post": {"summary": "Log in with a face photo", "parameters": csrf,
                "requestBody": image_body(json!({"username": {"type": "string", "description": "verify mode only"}})),
                "responses": {"200": ok("Logged in", json!({"allOf": [user_ref(), {"type": "object",
                        "properties": {"score": {"type": "number"}}}]})),
                    "401": error_ref("no_face, multiple_faces, unknown, spoof (passive liveness), step_up (passive liveness unsure: try again or use the password) or challenge_required (active liveness: use the challenge)"), "403": error_ref("csrf"),
                    "413": error_ref("too_large"), "422": error_ref("invalid_image"),
                    "429": error_ref("locked or rate_limited")}}},
            "/api/face-login/challenge": {"post": {"summary": "Start a liveness challenge (single use, bound to the session)",
                "parameters": csrf,
                "responses": {"200": ok("The challenge", json!({"type": "object",
                        "required": ["challenge_id", "steps", "expires_in_ms", "min_frames"],
                        "properties": {"challenge_id": {"type": "string"},
                            "steps": {"type": "array", "items": {"type": "string", "enum": ["left", "right", "up", "center"]}},
                            "expires_in_ms": {"type": "integer"}, "min_frames": {"type": "integer"}}})),
                    "403": error_ref("csrf")}}},
            "/api/face-login/challenge/{id}/frames": {"post": {"summary": "Answer a liveness challenge and log in",
                "parameters": [{"$ref": "#/components/parameters/Csrf"},
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object",
                    "required": ["frame", "timestamps"],
                    "properties": {"frame": {"type": "array", "items": {"type": "string", "format": "binary"},
                            "description": "JPEG frames in capture order"},
                        "timestamps": {"type": "string", "description": "JSON array of capture times in ms, one per frame"},
                        "username": {"type": "string", "description": "verify mode only"}}}}}},
                "responses": {"200": ok("Logged in", json!({"allOf": [user_ref(), {"type": "object",
                        "properties": {"score": {"type": "number"}}}]})),
                    "400": error_ref("invalid"),
                    "401": error_ref("spoof, step_up (liveness unsure: a second challenge or the password), unknown, no_face, multiple_faces or expired"), "403": error_ref("csrf"),
                    "413": error_ref("too_large"), "422": error_ref("invalid_image"),
                    "429": error_ref("locked or rate_limited")}}}
        },
        "components": {
            "parameters": {"Csrf": {"name": "X-CSRF-Token", "in": "header", "required": true, "schema": {"type": "string"}}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                "UserRef": {"type": "object", "required": ["id", "username"],
                    "properties": {"id": {"type": "integer"}, "username": {"type": "string"}}},
                "Face": {"type": "object", "properties": {"id": {"type": "integer"}, "quality": {"type": "number"},
                    "created": {"type": "string", "format": "date-time"}}}
            }
        }
    })
}

/// `(METHOD, path)` pairs the document describes, sorted.
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            if let Some(item) = item.as_object() {
                for method in item.keys() {
                    ops.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    ops.sort();
    ops
}
