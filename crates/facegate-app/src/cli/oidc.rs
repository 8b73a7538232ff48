//! `facegate oidc-client add|list|remove` and `facegate
//! rotate-signing-key`: the operator's side of the OpenID Connect
//! provider. They open the store only (no face engine).

use super::common::{prepare_data_dir, runtime, CommonArgs};
use crate::service::oidc::clients::{register_client, remove_client, ClientSpec};
use crate::service::oidc::keys::rotate_signing_key;
use crate::store;

/// `facegate oidc-client`: register, list and remove relying parties.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcClientArgs {
    #[command(subcommand)]
    pub command: OidcClientCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum OidcClientCommand {
    /// Register a client; its secret is printed once.
    Add(AddClientArgs),
    /// List the registered clients.
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Remove a client with its tokens and consents.
    Remove {
        client_id: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct AddClientArgs {
    /// The name people see on the consent page
    #[arg(long)]
    pub name: String,
    /// An exact redirect URI (repeat for several)
    #[arg(long = "redirect-uri", required = true)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the person (repeatable)
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE required)
    #[arg(long)]
    pub public: bool,
    /// A first-party client: no consent page
    #[arg(long)]
    pub first_party: bool,
    /// The lowest acr the client accepts (e.g. urn:facegate:acr:face)
    #[arg(long)]
    pub min_acr: Option<String>,
    /// Print {"client_id": …, "client_secret": …}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `facegate rotate-signing-key`: a new ID-token signing key.
#[derive(Debug, Clone, clap::Args)]
pub struct RotateSigningKeyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

async fn open(common: &CommonArgs) -> anyhow::Result<(crate::Config, store::DynStore)> {
    let config = common.load()?;
    prepare_data_dir(&config)?;
    let store = store::open(&config).await?;
    Ok((config, store))
}

/// Runs an `oidc-client` command.
pub fn oidc_client(args: OidcClientArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        match args.command {
            OidcClientCommand::Add(a) => add(a).await,
            OidcClientCommand::List { json, common } => list(&common, json).await,
            OidcClientCommand::Remove { client_id, common } => {
                let (_, store) = open(&common).await?;
                remove_client(&store, &client_id).await?;
                println!("removed client {client_id}");
                Ok(())
            }
        }
    })
}

async fn add(a: AddClientArgs) -> anyhow::Result<()> {
    let (_, store) = open(&a.common).await?;
    let spec = ClientSpec {
        name: a.name,
        redirect_uris: a.redirect_uris,
        post_logout_redirect_uris: a.post_logout_redirect_uris,
        public: a.public,
        first_party: a.first_party,
        min_acr: a.min_acr,
    };
    let client = register_client(&store, spec).await?;
    if a.json {
        println!("{}", serde_json::to_string(&client)?);
        return Ok(());
    }
    println!("client_id:     {}", client.client_id);
    match &client.client_secret {
        Some(s) => {
            println!("client_secret: {s}");
            println!("(the secret is shown only now: keep it in the application's settings)");
        }
        None => println!("public client: no secret, PKCE (S256) required"),
    }
    Ok(())
}

async fn list(common: &CommonArgs, json: bool) -> anyhow::Result<()> {
    let (_, store) = open(common).await?;
    let clients = store.oidc_clients().await?;
    if json {
        println!("{}", serde_json::to_string(&clients)?);
        return Ok(());
    }
    for c in clients {
        let kind = if c.is_public() {
            "public"
        } else {
            "confidential"
        };
        let party = if c.first_party { ", first-party" } else { "" };
        println!("{}  {} ({kind}{party})", c.client_id, c.name);
        for uri in &c.redirect_uris {
            println!("    redirect {uri}");
        }
    }
    Ok(())
}

/// Adds a new ID-token signing key; the old one stays published until
/// its tokens expire.
pub fn rotate_signing(args: RotateSigningKeyArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let (config, store) = open(&args.common).await?;
        let kid = rotate_signing_key(&store, &config).await?;
        println!(
            "new signing key {kid}; the previous one stays in the JWKS until its tokens expire"
        );
        Ok(())
    })
}
