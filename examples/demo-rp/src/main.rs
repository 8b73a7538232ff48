//! facegate-demo-rp: a small web application that signs people in with
//! facegate over OpenID Connect (docs/OIDC.md, "The demo relying party").
//! A home page with a "Sign in with facegate" button; after the code flow
//! (PKCE, nonce, the ID token verified through the JWKS) it shows who is
//! signed in and how they proved it (`acr`, `amr`). Configured by
//! arguments or `DEMO_RP_*` variables; the browser end-to-end test
//! (tests/e2e/oidc.test.mjs) drives it.

mod oidc;
mod web;

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use openidconnect::{ClientId, ClientSecret, IssuerUrl, RedirectUrl};

/// A demo application that signs people in with facegate.
#[derive(Debug, Parser)]
#[command(name = "facegate-demo-rp", version)]
struct Args {
    /// facegate's issuer URL (its `public_url`)
    #[arg(long, env = "DEMO_RP_ISSUER")]
    issuer: String,
    /// The client id `facegate oidc-client add` printed
    #[arg(long, env = "DEMO_RP_CLIENT_ID")]
    client_id: String,
    /// The client secret (none for a public client)
    #[arg(long, env = "DEMO_RP_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Where the demo listens
    #[arg(long, env = "DEMO_RP_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The redirect URI registered for the client (default
    /// http://LISTEN/callback)
    #[arg(long, env = "DEMO_RP_REDIRECT_URI")]
    redirect_uri: Option<String>,
    /// acr_values to ask for, e.g. urn:facegate:acr:face
    #[arg(long, env = "DEMO_RP_ACR_VALUES")]
    acr_values: Option<String>,
}

impl Args {
    fn settings(self) -> anyhow::Result<oidc::Settings> {
        let redirect = self
            .redirect_uri
            .unwrap_or_else(|| format!("http://{}/callback", self.listen));
        Ok(oidc::Settings {
            issuer: IssuerUrl::new(self.issuer).context("the issuer is not a URL")?,
            client_id: ClientId::new(self.client_id),
            client_secret: self
                .client_secret
                .filter(|s| !s.is_empty())
                .map(ClientSecret::new),
            redirect_uri: RedirectUrl::new(redirect).context("the redirect URI is not a URL")?,
            acr_values: self.acr_values.filter(|a| !a.is_empty()),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let listen = args.listen;
    let rp = oidc::Rp::new(args.settings()?)?;
    let app = web::router(rp)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!("demo-rp listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
