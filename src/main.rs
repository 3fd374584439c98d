use std::process::ExitCode;

use ticketlab::exit::Exit;

fn main() -> ExitCode {
    let task = match ticketlab::cli::parse() {
        Ok(task) => task,
        Err(exit) => return exit.into(),
    };
    match ticketlab::app::run(task) {
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
