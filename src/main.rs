use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use ticketlab::cli::Cli;
use ticketlab::exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return Exit::Usage.into();
        }
        Err(e) => {
            eprintln!("{}", ticketlab::app::one_line(&e.render().to_string()));
            return Exit::Usage.into();
        }
    };
    match ticketlab::app::run(cli.command) {
        Ok(exit) => exit.into(),
        // A reader that stopped reading (`| head`) is not an error worth a word.
        Err(e) if is_broken_pipe(&e) => Exit::Success.into(),
        Err(e) => {
            eprintln!("ticketlab: error: {e:#}");
            Exit::Failure.into()
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
