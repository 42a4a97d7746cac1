//! `nbfleet-local`: the local stack (`make local`). Prints one line when ready.

use nbfleet_local::stack::{self, Settings};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nbfleet-local: {e}");
            std::process::exit(2);
        }
    };
    let (stack, listener) = match stack::start(&settings).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!(
                "nbfleet-local: cannot start: {e} (is moto running at {}?)",
                settings.moto_endpoint
            );
            std::process::exit(1);
        }
    };
    println!(
        "nbfleet local stack ready on http://{} (moto {}, account {})",
        stack.addr, settings.moto_endpoint, settings.account
    );
    let runner = stack.runner.clone();
    tokio::select! {
        _ = stack::serve(stack.deps, listener) => {}
        _ = shutdown_signal() => {}
    }
    // Instances' Jupyter servers are this machine's processes: take them down with the stack.
    runner.stop_all();
    eprintln!("nbfleet-local: stopped");
}

async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
