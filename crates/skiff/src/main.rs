//! The `skiff` binary: wires the crates into the subcommands of DESIGN.md §2.
//! It owns argument parsing, process lifecycle (signals, exit codes) and wiring — no
//! API semantics, storage logic or certificate logic of its own.

mod agent;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skiff",
    version,
    about = "A Kubernetes-compatible cluster in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: API server and controller manager (the scheduler follows).
    Server(Box<server::ServerArgs>),
    /// Run a node agent (kubelet); `--simulate N` runs N simulated nodes in this process.
    Agent(agent::AgentArgs),
    /// Print the versions of skiff and of the Kubernetes API it serves.
    Version,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // One process-wide rustls crypto provider, for clients (kube) that use the default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::run(*args),
        Command::Agent(args) => agent::run(args),
        Command::Version => {
            println!(
                "skiff {}\nKubernetes API {}",
                env!("CARGO_PKG_VERSION"),
                skiff_apiserver::KUBE_GIT_VERSION
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
