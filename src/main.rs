use clap::Parser;

use myelin::cli::{self, Cli, Command, ServeArgs};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => myelin::startup::serve_blocking(args.config.as_deref()),
        Command::Train(args) => cli::train(args),
        Command::Predict(args) => cli::predict(args),
        Command::Eval(args) => cli::eval(args),
        Command::Export(args) => cli::export(args),
        Command::Healthcheck(args) => cli::healthcheck(args),
        Command::Openapi => {
            println!("{}", myelin::api::openapi_json());
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::error_message(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
