//! The `recengine` command line: serve, migrate, import, eval, rules,
//! users. Only `serve` builds the whole application; `migrate`, `import`
//! and `users` open the database alone.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use recengine::{AppState, config::Settings, data, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Search only these settings (comma-separated env names), in the
        /// search's order; all when not given.
        #[arg(long, value_delimiter = ',')]
        knobs: Vec<String>,
        /// Rounds of the search (0: score the given settings only).
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Random validation splits averaged (seeds from 43).
        #[arg(long, default_value_t = 1)]
        seeds: u32,
        /// Stop after the validation search: no test part is read.
        #[arg(long)]
        validation_only: bool,
    },
    /// Rules and bundles: scaffold a rule, test a bundle, pack, keys, sign,
    /// verify (upload with the API or by dropping the file in RULES_DIR).
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
    /// Create a rule project: its crate (a native test included), a bundle
    /// manifest and a README with the commands.
    New {
        /// The rule's name: a-z, 0-9 and _.
        name: String,
        #[arg(long, value_enum, default_value = "filter")]
        kind: KindArg,
        /// The rule's language. Rust is the one this version supports.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// Default: ./<name with - for _>.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK as a path dependency (default: this checkout's rules-sdk,
        /// when it exists).
        #[arg(long, conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// The SDK as a git dependency (URL of a recengine repository).
        #[arg(long)]
        sdk_git: Option<String>,
    },
    /// Check a bundle (a .tar.gz, or a folder with manifest.json) as an
    /// upload would, then run it with the built-in rules over sample or given
    /// candidates and print each rule's trace. Exits 1 when the bundle is
    /// refused, a rule fails or the list is blocked.
    Test {
        bundle: PathBuf,
        /// A user as the dry run takes it: {"id", "age", "country",
        /// "favorite_categories", "favorite_tags", "purchased",
        /// "preferences"}.
        #[arg(long)]
        user_file: Option<PathBuf>,
        /// Candidates as the dry run takes them: [{"item_id", "score",
        /// "category", "tags", "features", "stats", "created_at"}, ...].
        #[arg(long)]
        items_file: Option<PathBuf>,
        /// The request context: {"country", "device", "hour_of_day",
        /// "is_weekend", "extra"}.
        #[arg(long)]
        context_file: Option<PathBuf>,
        /// Run the bundle's rules alone.
        #[arg(long)]
        without_builtins: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
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

/// A rule kind on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Filter,
    Boost,
    Rerank,
    Promote,
}

impl From<KindArg> for recengine_rules_sdk::Kind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Filter => Self::Filter,
            KindArg::Boost => Self::Boost,
            KindArg::Rerank => Self::Rerank,
            KindArg::Promote => Self::Promote,
        }
    }
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
    /// A seeded synthetic shop of any size: power-law item popularity,
    /// log-normal user activity, categories, tags and the attributes the
    /// built-in rules read. Same seed and sizes, same data.
    Synthetic {
        #[arg(long, default_value_t = 10_000)]
        users: u64,
        #[arg(long, default_value_t = 10_000)]
        items: u64,
        #[arg(long, default_value_t = 1_000_000)]
        interactions: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
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
    // Only the commands that sign or check tokens use the key.
    let uses_key = matches!(cli.command, Command::Serve { .. } | Command::Users { .. });
    if uses_key && settings.secret_key == recengine::config::DEV_SECRET_KEY {
        tracing::warn!(
            "SECRET_KEY is not set: using the development default (refused in production)"
        );
    }

    match cli.command {
        Command::Serve { demo, addr } => {
            let addr = addr.unwrap_or(SocketAddr::new(settings.host, settings.port));
            let state = AppState::open(settings).await?;
            // The demo seeds and trains its small catalogue before listening;
            // any other catalogue trains while the service listens, `/ready`
            // saying `starting` and recommendations coming from popularity.
            let seeded = demo && data::demo::prepare(&state).await?;
            if seeded {
                tracing::info!("demo data seeded");
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            // Loads or trains (unless the demo just did), then follows the
            // models the fleet stores.
            state.start_models();
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
            print_import(&report, started);
        }
        Command::Import {
            source:
                ImportSource::Synthetic {
                    users,
                    items,
                    interactions,
                    seed,
                },
        } => {
            let db = recengine::open_database(&settings).await?;
            let started = std::time::Instant::now();
            let spec = data::synthetic::Spec {
                users,
                items,
                interactions,
                seed,
            };
            let report = data::synthetic::import(&db, spec).await?;
            recengine::auth::bootstrap::ensure_initial_admin(&db, &settings).await?;
            print_import(&report, started);
        }
        Command::Eval {
            data,
            tune,
            knobs,
            rounds,
            seeds,
            validation_only,
        } => {
            let search = recengine::recommend::eval::Search {
                tune: tune || validation_only,
                knobs,
                rounds,
                seeds,
                validation_only,
            };
            recengine::recommend::eval::run(&data, &settings, &search)?;
        }
        Command::Rules { action } => {
            // Rule calls block (the sandbox's WASI runs its own executor):
            // off the async workers, as in the service.
            let passed =
                tokio::task::spawn_blocking(move || rules_command(action, &settings)).await??;
            if !passed {
                std::process::exit(1);
            }
        }
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

/// Runs a `rules` action; `false` when a check it ran did not pass.
fn rules_command(action: RulesAction, settings: &Settings) -> anyhow::Result<bool> {
    use recengine::rules::{
        author::{check, scaffold},
        bundle::{format, signing},
    };
    let fail = anyhow::Error::msg;
    match action {
        RulesAction::New {
            name,
            kind,
            lang,
            dir,
            sdk_path,
            sdk_git,
        } => {
            if lang != "rust" {
                anyhow::bail!(
                    "--lang {lang}: this version scaffolds Rust rules only (rule components in \
                     other languages load all the same; see the rule-author guide)"
                );
            }
            let sdk = match (sdk_path, sdk_git) {
                (Some(path), _) => scaffold::SdkSource::Path(std::path::absolute(path)?),
                (None, Some(url)) => scaffold::SdkSource::Git(url),
                (None, None) => {
                    let checkout =
                        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules-sdk"));
                    let checkout = checkout.canonicalize().map_err(|_| {
                        anyhow::anyhow!(
                            "where is the SDK? pass --sdk-path <recengine checkout>/rules-sdk or --sdk-git <repository URL>"
                        )
                    })?;
                    scaffold::SdkSource::Path(checkout)
                }
            };
            let dir = dir.unwrap_or_else(|| PathBuf::from(name.replace('_', "-")));
            let files = scaffold::scaffold(&name, kind.into(), &dir, &sdk).map_err(fail)?;
            println!("created {} ({} files)", dir.display(), files.len());
            println!(
                "next: cd {} && cargo test --lib --target $(rustc -vV | sed -n 's/^host: //p') && cargo build --release && recengine rules test .",
                dir.display()
            );
        }
        RulesAction::Test {
            bundle,
            user_file,
            items_file,
            context_file,
            without_builtins,
            json,
        } => {
            let archive = if bundle.is_dir() {
                format::pack_dir(&bundle).map_err(fail)?
            } else {
                std::fs::read(&bundle).with_context(|| bundle.display().to_string())?
            };
            fn read<T: serde::de::DeserializeOwned>(
                path: Option<PathBuf>,
            ) -> anyhow::Result<Option<T>> {
                path.map(|p| {
                    let text = std::fs::read(&p).with_context(|| p.display().to_string())?;
                    serde_json::from_slice(&text).with_context(|| p.display().to_string())
                })
                .transpose()
            }
            let input = check::CheckInput {
                user: read(user_file)?,
                items: read(items_file)?,
                context: read(context_file)?.unwrap_or_default(),
                exclude_ids: Vec::new(),
                without_builtins,
            };
            match check::check_bundle(&archive, input, chrono::Utc::now()) {
                Ok(report) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        print!("{}", report.text());
                    }
                    return Ok(report.passed());
                }
                Err(refusal) => {
                    println!("REFUSED: {refusal}");
                    return Ok(false);
                }
            }
        }
        RulesAction::Pack { dir, out } => {
            let archive = format::pack_dir(&dir).map_err(fail)?;
            let bundle = format::unpack(&archive, format::BundleCaps::NONE)?;
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
            let unpacked = format::unpack(&archive, format::BundleCaps::NONE)?;
            let private = std::fs::read_to_string(&key)?;
            let signature =
                signing::sign(&unpacked.manifest_bytes, &private, &key_id).map_err(fail)?;
            std::fs::write(&bundle, format::resign(&archive, &signature).map_err(fail)?)?;
            println!("{} signed with {key_id}", bundle.display());
        }
        RulesAction::Verify { bundle, keys } => {
            let archive = std::fs::read(&bundle)?;
            let unpacked = format::unpack(&archive, settings.bundle_caps())?;
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
    Ok(true)
}

/// Ctrl-C or SIGTERM: stop accepting, let requests in flight finish.
/// What an import prints when it is done.
fn print_import(report: &data::movielens::ImportReport, started: std::time::Instant) {
    println!(
        "imported {} users, {} items, {} interactions in {:.2} s",
        report.users,
        report.items,
        report.interactions,
        started.elapsed().as_secs_f64()
    );
}

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
