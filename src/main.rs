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
        Err(e) => {
            eprintln!("ticketlab: error: {e:#}");
            Exit::Failure.into()
        }
    }
}
