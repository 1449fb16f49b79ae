//! The `recengine` command line: serve, migrate, import, eval, rules,
//! users. Only `serve` builds the whole application; `migrate`, `import`
//! and `users` open the database alone.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use recengine::{AppState, config::Settings, data, telemetry};

#[derive(Parser)]
#[command(
    name = "recengine",
    version,
    about = "Recommendation service with WebAssembly business rules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (migrations are applied first).
    Serve {
        /// Seed a deterministic demo catalogue if the database is empty.
        #[arg(long)]
        demo: bool,
        /// Listen address; defaults to HOST:PORT from the configuration.
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load a data set into the database.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Offline evaluation on MovieLens 100K (the protocols in the README),
    /// through the service's own path.
    Eval {
        /// Folder holding ml-100k.inter.
        #[arg(long, default_value = "../shared/data/ml-100k")]
        data: PathBuf,
        /// First search the model settings on a validation split of the
        /// random split's training part (what the defaults come from).
        #[arg(long)]
        tune: bool,
    },
    /// Rule bundles: pack, keys, sign, verify (upload with the API or by
    /// dropping the file in RULES_DIR).
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Manage accounts.
    Users {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// Pack DIR (manifest.json and the components it names) into a bundle.
    Pack {
        dir: PathBuf,
        /// Default: <name>-<revision>.tar.gz in the current directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make an ed25519 key pair: PREFIX.key (private, keep it secret) and
    /// PREFIX.pub; prints the BUNDLE_PUBLIC_KEYS entry.
    Keygen {
        prefix: PathBuf,
        #[arg(long, default_value = "ops")]
        key_id: String,
    },
    /// Sign BUNDLE in place with a private key.
    Sign {
        bundle: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        key_id: String,
    },
    /// Check BUNDLE: its structure, digests and (with keys) its signature.
    Verify {
        bundle: PathBuf,
        /// `id:base64,...`; default BUNDLE_PUBLIC_KEYS.
        #[arg(long)]
        keys: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create an admin (or promote the account with this email). The
    /// password is read from standard input, never from the command line,
    /// where other users of the machine could see it.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "admin")]
        username: String,
    },
}

#[derive(Subcommand)]
enum ImportSource {
    /// MovieLens 100K: a folder in the GroupLens layout (u.data, u.item,
    /// u.user) or the atomic layout (ml-100k.inter, .item, .user).
    Movielens { dir: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("recengine: {e:#}");
            std::process::exit(2);
        }
    };
    telemetry::logging::init(settings.log_level, settings.log_format);
    if settings.secret_key == recengine::config::DEV_SECRET_KEY {
        tracing::warn!(
            "SECRET_KEY is not set: using the development default (refused in production)"
        );
    }

    match cli.command {
        Command::Serve { demo, addr } => {
            let addr = addr.unwrap_or(SocketAddr::new(settings.host, settings.port));
            let state = AppState::build(settings).await?;
            if demo && data::demo::prepare(&state).await? {
                tracing::info!("demo data seeded");
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            state.start_jobs().await?;
            tracing::info!(%addr, "recengine listening");
            if demo {
                // For the person who just typed scripts/demo.sh, not for the
                // log collector: plain text on stderr, after the log line.
                eprintln!("{}", data::demo::next_steps(&state.db, addr).await?);
            }
            recengine::serve(
                listener,
                recengine::app(state.clone()),
                state.settings.http,
                shutdown_signal(),
            )
            .await?;
            state.jobs.shutdown(&state).await;
            tracing::info!("recengine stopped");
        }
        Command::Migrate => {
            let db = recengine::open_database(&settings).await?;
            recengine::auth::bootstrap::ensure_initial_admin(&db, &settings).await?;
            tracing::info!("migrations applied");
        }
        Command::Import {
            source: ImportSource::Movielens { dir },
        } => {
            // The data set keeps its ids (user 1 is MovieLens user 1), so the
            // configured initial admin is created after the import, past
            // them.
            let db = recengine::open_database(&settings).await?;
            let started = std::time::Instant::now();
            let report = data::movielens::import_dir(&db, &dir).await?;
            recengine::auth::bootstrap::ensure_initial_admin(&db, &settings).await?;
            println!(
                "imported {} users, {} items, {} interactions in {:.2} s",
                report.users,
                report.items,
                report.interactions,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Eval { data, tune } => {
            recengine::recommend::eval::run(&data, &settings, tune)?;
        }
        Command::Rules { action } => rules_command(action, &settings)?,
        Command::Users {
            action: UserAction::CreateAdmin { email, username },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let db = recengine::open_database(&settings).await?;
            recengine::auth::bootstrap::ensure_initial_admin(&db, &settings).await?;
            let admin =
                recengine::auth::bootstrap::create_admin(&db, &email, &username, password).await?;
            println!("admin {} (id {}) is ready", admin.email, admin.id);
        }
    }
    Ok(())
}

fn rules_command(action: RulesAction, settings: &Settings) -> anyhow::Result<()> {
    use recengine::rules::bundle::{format, signing};
    let fail = anyhow::Error::msg;
    match action {
        RulesAction::Pack { dir, out } => {
            let archive = format::pack_dir(&dir).map_err(fail)?;
            let bundle = format::unpack(&archive, usize::MAX)?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "{}-{}.tar.gz",
                    bundle.manifest.name, bundle.manifest.revision
                ))
            });
            std::fs::write(&out, &archive)?;
            println!(
                "{}: {} rule(s), {} bytes, sha256 {}",
                out.display(),
                bundle.manifest.rules.len(),
                archive.len(),
                bundle.digest
            );
        }
        RulesAction::Keygen { prefix, key_id } => {
            let (private, public) = signing::generate();
            let private_path = prefix.with_extension("key");
            std::fs::write(&private_path, format!("{private}\n"))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&private_path, std::fs::Permissions::from_mode(0o600))?;
            }
            std::fs::write(prefix.with_extension("pub"), format!("{public}\n"))?;
            println!("BUNDLE_PUBLIC_KEYS={key_id}:{public}");
        }
        RulesAction::Sign {
            bundle,
            key,
            key_id,
        } => {
            let archive = std::fs::read(&bundle)?;
            let unpacked = format::unpack(&archive, usize::MAX)?;
            let private = std::fs::read_to_string(&key)?;
            let signature =
                signing::sign(&unpacked.manifest_bytes, &private, &key_id).map_err(fail)?;
            std::fs::write(&bundle, format::resign(&archive, &signature).map_err(fail)?)?;
            println!("{} signed with {key_id}", bundle.display());
        }
        RulesAction::Verify { bundle, keys } => {
            let archive = std::fs::read(&bundle)?;
            let unpacked = format::unpack(&archive, settings.max_bundle_bytes)?;
            let keys = match keys {
                Some(spec) => signing::TrustedKeys::parse(&spec).map_err(fail)?,
                None => settings.bundle_public_keys.clone(),
            };
            match keys.verify(&unpacked)? {
                Some(id) => println!("{}: valid, signed by {id}", bundle.display()),
                None => println!(
                    "{}: structure and digests valid; no keys given, signature not checked",
                    bundle.display()
                ),
            }
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, let requests in flight finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
