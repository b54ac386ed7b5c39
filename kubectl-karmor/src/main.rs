//! `kubectl karmor`: the kubectl plugin binary. Analysis lives in `karmor-analyzer`; this
//! crate parses arguments, loads data and renders answers.

mod cli;
mod commands;
mod data;
mod progress;
use kubectl_karmor::render;
mod scope;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Observe(args) => commands::observe::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Bundle(cmd) => commands::bundle::run(cmd),
        Command::Validate(args) => commands::validate::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::Archive(args) => commands::archive::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Recommend(args) => commands::recommend::run(args),
        Command::Coverage(args) => commands::coverage::run(args),
        // diff's status says whether something is new (1), so its errors exit 2.
        Command::Diff(args) => {
            return commands::diff::run(args).unwrap_or_else(|e| {
                eprintln!("error: {}", error_chain(&e));
                ExitCode::from(2)
            })
        }
        Command::Completion(args) => match (args.install_kubectl_plugin, args.shell) {
            (Some(dir), _) => commands::complete::install(dir),
            (None, Some(shell)) => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "kubectl-karmor",
                    &mut std::io::stdout(),
                );
                Ok(ExitCode::SUCCESS)
            }
            (None, None) => Err(anyhow::anyhow!(
                "give a shell (bash, zsh, fish, ...) or --install-kubectl-plugin"
            )),
        },
        Command::Complete { words } => commands::complete::run(&words),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Gives SIGPIPE back its default action (the Rust runtime ignores it before `main`).
///
/// When the reader of our output goes away (`| head`, `| grep -m1`, quitting `less`), the next
/// write to that pipe then ends the process quietly by SIGPIPE, as it ends kubectl (Go dies by
/// SIGPIPE on a broken standard output) and coreutils (`yes | head -1`): the shell reports
/// status 141, which `set -o pipefail` scripts already expect from those tools. Ignored, the
/// signal turns into an `EPIPE` error on every `print!`, which panics ("failed printing to
/// stdout") with exit status 101. This is the one writing layer every command, output format,
/// clap's help and the completion scripts go through. Sockets are not affected: the standard
/// library and tokio send with `MSG_NOSIGNAL`, so a peer closing a connection stays an error.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; setting a signal's
    // disposition to SIG_DFL has no other precondition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes joined by `: `, leaving out a cause the text before already
/// quotes (library errors often name their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io)
            .context("/b: no such file")
            .context("cannot read /b");
        assert_eq!(error_chain(&e), "cannot read /b: /b: no such file");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
