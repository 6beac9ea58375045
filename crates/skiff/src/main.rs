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

/// mimalloc instead of glibc's malloc: ~10% more API throughput under load (serde_json
/// values are many small allocations); see docs/benchmarks.md.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits whole arenas eagerly by default, which costs an idle server ~20 MiB of
/// resident memory. Its options are read when it initialises, in a constructor of priority
/// 101 that runs before `main`; this one (priority 100) runs first and turns that off, as
/// `MIMALLOC_ARENA_EAGER_COMMIT=0` would.
#[cfg(feature = "mimalloc")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static LEAN_ALLOCATOR: extern "C" fn() = {
    extern "C" fn lean() {
        /// `mi_option_arena_eager_commit` in mimalloc's `mi_option_e`.
        const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
        // SAFETY: only stores an integer in mimalloc's option table; nothing allocates yet.
        unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
    }
    lean
};

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
