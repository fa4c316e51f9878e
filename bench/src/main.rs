//! `saga-bench`: start many sagas against a running server and worker; report throughput,
//! latency, the worker's CPU and memory, and check every answer. Exits 1 on any wrong answer,
//! 2 when the run cannot be made.

use clap::Parser;
use std::process::ExitCode;

/// Start many sagas against a running server and worker; report throughput, latency, the
/// worker's CPU and memory, and check every answer. Exits non-zero on any wrong answer.
#[derive(Debug, Parser)]
#[command(name = "saga-bench", version)]
struct Cli {
    #[command(flatten)]
    args: saga_bench::BenchArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    saga_bench::init_tracing();
    match saga_bench::run(&cli.args).await {
        Ok(report) => {
            if cli.args.json {
                match serde_json::to_string(&report) {
                    Ok(json) => println!("{json}"),
                    Err(error) => {
                        eprintln!("saga-bench: {error}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                print!("{}", report.render());
            }
            if report.failures == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("saga-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}
