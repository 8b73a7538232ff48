//! Server-rendered pages: minijinja templates embedded in the binary,
//! HTML auto-escaped.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "register.html",
        include_str!("../../templates/register.html"),
    ),
    (
        "face_login.html",
        include_str!("../../templates/face_login.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    ("profile.html", include_str!("../../templates/profile.html")),
    (
        "admin_users.html",
        include_str!("../../templates/admin_users.html"),
    ),
    (
        "admin_attempts.html",
        include_str!("../../templates/admin_attempts.html"),
    ),
    (
        "admin_audit.html",
        include_str!("../../templates/admin_audit.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "oidc_consent.html",
        include_str!("../../templates/oidc_consent.html"),
    ),
    (
        "oidc_continue.html",
        include_str!("../../templates/oidc_continue.html"),
    ),
    (
        "oidc_applications.html",
        include_str!("../../templates/oidc_applications.html"),
    ),
    (
        "admin_oidc_clients.html",
        include_str!("../../templates/admin_oidc_clients.html"),
    ),
    (
        "oidc_logout.html",
        include_str!("../../templates/oidc_logout.html"),
    ),
];

/// The template environment.
pub struct Views {
    env: Environment<'static>,
}

impl Views {
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Views { env })
    }

    /// Renders a page with status 200.
    pub fn render(&self, name: &str, ctx: Value) -> Response {
        self.render_status(StatusCode::OK, name, ctx)
    }

    pub fn render_status(&self, status: StatusCode, name: &str, ctx: Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_templates_parse() {
        let v = Views::new().unwrap();
        let html = v
            .env
            .get_template("error.html")
            .unwrap()
            .render(minijinja::context! {
                title => "Oops", message => "<b>x</b>", csrf => "t"
            });
        let html = html.unwrap();
        assert!(
            html.contains("&lt;b&gt;x&lt;") && !html.contains("<b>"),
            "auto-escaped"
        );
        assert!(!html.contains("<script>"), "no inline script");
    }
}
