//! The staff audit trail: `/admin/audit` with filters (kind, outcome,
//! user, date range) and `/admin/audit.csv` with the same filters.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use time::{Date, OffsetDateTime, Time};
use tower_sessions::Session;

use crate::domain::{AuditEvent, AuditFilter, AuditKind};
use crate::web::extract::StaffUser;
use crate::web::render::{account_label, fmt_time, render, server_error_page, PageResult};
use crate::web::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(page))
        .route("/admin/audit.csv", get(csv))
}

/// The filter form's fields (dates as YYYY-MM-DD, UTC).
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn parse_day(s: &str) -> Option<Date> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &f).ok()
}

impl AuditQuery {
    fn filter(&self, limit: i64) -> AuditFilter {
        AuditFilter {
            kind: Some(self.kind.clone()),
            outcome: Some(self.outcome.clone()),
            user: Some(self.user.clone()),
            since: parse_day(&self.from).map(|d| d.with_time(Time::MIDNIGHT).assume_utc()),
            until: parse_day(&self.to)
                .map(|d| d.with_time(Time::MIDNIGHT).assume_utc() + time::Duration::days(1)),
            limit,
        }
    }
}

async fn page(
    State(st): State<AppState>,
    session: Session,
    Query(q): Query<AuditQuery>,
    StaffUser(user): StaffUser,
) -> PageResult {
    let events = st
        .services
        .store
        .audit_events(&q.filter(500))
        .await
        .map_err(|e| server_error_page(&st, &e.into()))?;
    let ids: Vec<i64> = events
        .iter()
        .flat_map(|e| [e.actor_user_id, e.subject_user_id])
        .flatten()
        .collect();
    let names = st
        .services
        .usernames(ids)
        .await
        .map_err(|e| server_error_page(&st, &e))?;
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            let actor = e.actor_user_id.map(|id| account_label(&names, id));
            let subject = e.subject_user_id.map(|id| account_label(&names, id));
            context! { id => e.id, at => fmt_time(e.at), kind => e.kind, outcome => e.outcome,
                actor => actor, subject => subject, username => e.username,
                client_addr => e.client_addr, score => e.score.map(|s| format!("{s:.3}")), detail => e.detail }
        })
        .collect();
    let kinds: Vec<&str> = AuditKind::ALL.iter().map(AuditKind::as_str).collect();
    let csv_query = serde_urlencoded_pairs(&q);
    let q = context! { kind => q.kind, outcome => q.outcome, user => q.user, from => q.from, to => q.to };
    let extra = context! { title => "Audit trail", active => "audit", events => rows, kinds => kinds,
    q => q, csv_query => csv_query };
    Ok(render(&st, &session, Some(&user), "admin_audit.html", extra).await)
}

/// The current filters as a query string for the CSV link.
fn serde_urlencoded_pairs(q: &AuditQuery) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    [
        ("kind", &q.kind),
        ("outcome", &q.outcome),
        ("user", &q.user),
        ("from", &q.from),
        ("to", &q.to),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}", enc(v)))
    .collect::<Vec<_>>()
    .join("&")
}

/// One CSV field, quoted when needed; a leading formula character is
/// neutralised so a spreadsheet does not execute it.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The events as CSV, header first.
pub fn to_csv(events: &[AuditEvent]) -> String {
    let rfc = time::format_description::well_known::Rfc3339;
    let mut out = String::from(
        "id,at,kind,outcome,actor_user_id,subject_user_id,username,client_addr,score,detail\n",
    );
    for e in events {
        let cols = [
            e.id.to_string(),
            e.at.format(&rfc).unwrap_or_default(),
            e.kind.clone(),
            e.outcome.clone(),
            e.actor_user_id.map(|v| v.to_string()).unwrap_or_default(),
            e.subject_user_id.map(|v| v.to_string()).unwrap_or_default(),
            e.username.clone().unwrap_or_default(),
            e.client_addr.clone().unwrap_or_default(),
            e.score.map(|s| format!("{s:.4}")).unwrap_or_default(),
            e.detail.clone(),
        ];
        let line: Vec<String> = cols.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

async fn csv(
    State(st): State<AppState>,
    Query(q): Query<AuditQuery>,
    _staff: StaffUser,
) -> Response {
    match st.services.store.audit_events(&q.filter(100_000)).await {
        Ok(events) => {
            let stamp = OffsetDateTime::now_utc().unix_timestamp();
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"facegate-audit-{stamp}.csv\""),
                    ),
                ],
                to_csv(&events),
            )
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
