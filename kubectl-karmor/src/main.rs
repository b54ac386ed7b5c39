//! `kubectl karmor`: the kubectl plugin binary. Analysis lives in `karmor-analyzer`; this
//! crate parses arguments, loads data and renders answers.

mod cli;
mod commands;
mod data;
mod render;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Observe(args) => commands::observe::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Bundle(cmd) => commands::bundle::run(cmd),
        Command::Validate(args) => commands::validate::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Recommend(args) => commands::recommend::run(args),
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "kubectl-karmor",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
