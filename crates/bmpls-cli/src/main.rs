//! The `bmpls` binary: parses arguments and calls into the library crates. Kept thin on purpose.
#![forbid(unsafe_code)]

mod alerts;
mod bench;
mod carer;
mod certs;
mod client;
mod console;
mod curve;
mod demo;
mod gateway;
mod ids;
mod import;
mod ingest;
mod logs;
mod node;
mod output;
mod phonebench;
mod privacybench;
mod querybench;
mod send;
mod sim;

use clap::{Parser, Subcommand};

/// bmpls: multi-level privacy-preserving location sharing for telecare, on a BFT ledger.
#[derive(Debug, Parser)]
#[command(name = "bmpls", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole system in one process, on nothing but this binary: four validators on
    /// loopback QUIC, a patient's walk, three carers at three precisions, verified answers,
    /// the safe-zone exit, and a picture (SVG) of what each carer saw.
    ///
    /// Takes seconds and needs nothing but this binary; the cluster lives in a temporary folder
    /// unless --keep names one.
    ///
    /// Example: `bmpls demo --picture walk.svg --keep demo-cluster`
    Demo(demo::DemoArgs),
    /// Create or rotate the consortium's CA, validator keys and certificates, and genesis.
    ///
    /// Example: `bmpls certs init --out certs/local --nodes 4` (the local cluster's defaults),
    /// then `bmpls certs rotate --dir certs/local --name node2` to replace node2's TLS certificate.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Run a validator: consensus over QUIC, the sled store, the client service. Stops
    /// gracefully on SIGTERM or Ctrl-C; restarting resumes from its data folder.
    ///
    /// Logs go to stderr (RUST_LOG sets the level; default info). Addresses in the configuration
    /// are IP:port or host:port (resolved at start); paths are relative to the configuration file.
    ///
    /// Example: `bmpls node --config config/node1.toml 2> data/node1.log &`
    Node(node::NodeArgs),
    /// Show each validator's chain, height, tip and mempool depth.
    ///
    /// Asks every --node given (default: 127.0.0.1:7201 only) and prints one line per node,
    /// "unreachable" for a node that does not answer. Exits non-zero when no validator answers,
    /// so that it can serve as a health check.
    ///
    /// Example: `bmpls status --node 127.0.0.1:7201 --node 127.0.0.1:7202`
    Status(client::StatusArgs),
    /// Create and enrol a patient's keystore.
    ///
    /// `patient new` prints the patient's pseudonym (32 hex digits), which carers give to `query
    /// --patient-id`; it is also in the keystore's patient.toml.
    ///
    /// Example: `bmpls patient new --out patients/alice`, then `bmpls patient enrol --patient
    /// patients/alice --operator-key certs/local/node1/validator.key`
    #[command(subcommand)]
    Patient(client::PatientCommand),
    /// Create and enrol a carer's keystore (GP, family, telecare operator, insurer, researcher).
    ///
    /// Example: `bmpls carer new --out carers/op --role telecare`, then `bmpls carer enrol --carer
    /// carers/op --operator-key certs/local/node1/validator.key`
    #[command(subcommand)]
    Carer(carer::CarerCommand),
    /// As a patient's custodian, grant a carer one precision level over a window of days,
    /// for a validity period; the keys are wrapped to the carer with HPKE.
    ///
    /// Defaults: today's data (--days 1), usable for 30 days. Prints the grant's hash (64 hex
    /// digits) on its first line: the carer names it in `query --grant`, the custodian in `revoke`.
    ///
    /// Example: `bmpls grant --patient patients/alice --carer carers/op/carer.toml --level
    /// neighbourhood --days 1 --valid-days 30 --purpose "telecare alarm service"`
    Grant(carer::GrantArgs),
    /// As a patient's custodian, revoke a grant; nodes refuse its carer once it commits.
    ///
    /// Example: `bmpls revoke --patient patients/alice --grant "$GRANT"` (the hash `bmpls grant`
    /// printed on its first line)
    Revoke(carer::RevokeArgs),
    /// As a carer, ask the validators for a patient's records (the last one, a track, or those
    /// in a box, circle or GeoJSON polygon) at a granted level; every answer is verified against the commit
    /// certificates and Merkle proofs before it is decrypted and printed.
    ///
    /// Defaults: a track (every record) of today, up to 1000 records, as a table. --box is
    /// longitude first (west,south,east,north); --circle is latitude first (lat,lon,metres).
    ///
    /// Example: `bmpls query --carer carers/op --patient-id "$PATIENT" --grant "$GRANT" --level
    /// neighbourhood --circle 52.3731,4.8922,300 --format csv`
    Query(carer::QueryArgs),
    /// As a patient's custodian, set a safe zone for a carer's alerts: covered at the carer's
    /// level and encrypted per key epoch, so validators test records without learning it.
    ///
    /// Defaults: today only, Enter/Exit after 2 records on the other side, Missing after three
    /// 60 s intervals of silence.
    ///
    /// Example: `bmpls fence --patient patients/alice --carer carers/op/carer.toml --level
    /// neighbourhood --circle 52.3731,4.8922,500 --interval-s 600`
    Fence(alerts::FenceArgs),
    /// As a patient's custodian, remove a safe zone: its alerts stop from the block that
    /// commits the removal.
    ///
    /// Example: `bmpls unfence --patient patients/alice --fence "$FENCE"` (the hash `bmpls fence`
    /// printed)
    Unfence(carer::UnfenceArgs),
    /// As a carer, wait for geofence alerts (Enter, Exit, Missing) and print them as they
    /// commit; resumes from the last height on another validator if one stops answering.
    ///
    /// Defaults: from height 1, until interrupted (--count stops after that many alerts). On
    /// exit it prints the height to resume from (--from-height).
    ///
    /// Example: `bmpls watch --carer carers/op --node 127.0.0.1:7201 --node 127.0.0.1:7202`
    Watch(alerts::WatchArgs),
    /// As a carer (a telecare operator), serve the console: a local web page with the caseload
    /// on a map, live alarms to acknowledge, and history with GeoJSON and CSV export. It holds
    /// the carer's keys and shows only verified answers, at the granted levels.
    ///
    /// Listens on loopback only and prints the URL to open, with this start's access token.
    /// Acknowledgements are kept in console-acks.jsonl in the carer's keystore. Map tiles come
    /// from OpenStreetMap unless --tiles says otherwise (`grid` fetches nothing).
    ///
    /// Example: `bmpls console --carer carers/op --listen 127.0.0.1:8080 --node 127.0.0.1:7201
    /// --node 127.0.0.1:7202`
    Console(console::ConsoleArgs),
    /// As a patient's custodian, read the audit trail: which validator answered which carer's
    /// query about the patient, when, at which level, over which window (verified).
    ///
    /// Defaults: from height 1, at most 1000 entries.
    ///
    /// Example: `bmpls audit --patient patients/alice`
    Audit(carer::AuditArgs),
    /// Encrypt and sign one GPS fix (or every fix of an OwnTracks, GPX or GeoJSON file, with
    /// --from) with the patient's keys, queue it in the patient's outbox (synced to disk), and
    /// send the outbox; returns once the records are committed and flushed on the answering
    /// validator, or, when no validator answers, says they are queued and exits 0 (`report
    /// --flush` sends them later).
    ///
    /// Defaults: one fix at the current time with 10 m accuracy. Units: --lat/--lon in degrees,
    /// --time-ms in Unix milliseconds; in files, OwnTracks `tst` is in seconds, GPX `<time>` and
    /// GeoJSON `time` are RFC 3339 (a GeoJSON number is Unix milliseconds).
    ///
    /// Examples: `bmpls report --patient patients/alice --lat 52.3731 --lon 4.8922`;
    /// `bmpls report --patient patients/alice --from examples/walk.gpx`
    Report(client::ReportArgs),
    /// Let a phone's OwnTracks app report through the patient's keys: an HTTP endpoint for the
    /// app's HTTP mode that queues each fix in the patient's outbox (synced) before answering,
    /// and sends the outbox to the validators.
    ///
    /// Run it where the patient's keys may be (the phone, e.g. in Termux, or the custodian's
    /// home server), never on a validator. Give the app the URL http://ADDR/pub, the user and
    /// password of --auth-file, and (optionally) the encryption secret of --passphrase-file.
    ///
    /// Example: `bmpls gateway owntracks --patient patients/alice --listen 127.0.0.1:8083
    /// --auth-file patients/alice/owntracks.auth`
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// Show a patient's outbox: the records waiting to be sent and those the chain refused,
    /// with why (kept aside, never dropped).
    ///
    /// `bmpls report` queues every record here (synced to disk) before sending it; what no
    /// validator took waits for `bmpls report --flush`.
    ///
    /// Example: `bmpls outbox --patient patients/alice`
    Outbox(send::OutboxArgs),
    /// Measure the speed of bmpls components on this machine.
    ///
    /// Build with --release first; `bench query` stores a million records (minutes, and disk).
    ///
    /// Example: `target/release/bmpls bench ingest --records 20000`
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run the deterministic consensus simulator: validators over a seeded virtual network with
    /// crashes, partitions and byzantine faults, checking agreement, validity, no double signing
    /// and liveness. A failing test prints the command that replays it here.
    ///
    /// Defaults: one random scenario, seed 0.
    ///
    /// Examples: `bmpls sim --scenario n4f1_partition_heal`; `bmpls sim --scenario random --seed
    /// 749`
    Sim(sim::SimArgs),
}

/// Logs to stderr (see `logs.rs`).
pub(crate) fn init_logs() {
    logs::init();
}

fn main() -> std::process::ExitCode {
    quiet_broken_pipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A user's mistake is one line, without a backtrace even under RUST_BACKTRACE=1 (which
        // many shells set): the backtrace says where bmpls noticed, not what to do.
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each said once: a cause whose text the line already
/// holds is left out (libraries often repeat their source's message in their own).
pub(crate) fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Makes a closed stdout (`bmpls … | head -1`) end the program quietly, as SIGPIPE would in a
/// C program: Rust ignores SIGPIPE, so `println!` panics on a broken pipe, and restoring the
/// signal's default takes unsafe code, which this crate forbids.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Certs(command) => certs::run(command),
        Command::Node(args) => node::run(args),
        Command::Status(args) => client::status(args),
        Command::Patient(command) => client::patient(command),
        Command::Report(args) => client::report(args),
        Command::Outbox(args) => send::show(args),
        Command::Gateway(command) => gateway::run(command),
        Command::Carer(command) => carer::carer(command),
        Command::Grant(args) => carer::grant(args),
        Command::Revoke(args) => carer::revoke(args),
        Command::Query(args) => carer::query(args),
        Command::Audit(args) => carer::audit(args),
        Command::Fence(args) => alerts::fence(args),
        Command::Unfence(args) => carer::unfence(args),
        Command::Watch(args) => alerts::watch(args),
        Command::Console(args) => console::run(args),
        Command::Bench(command) => bench::run(command),
        Command::Sim(args) => sim::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command's help has an example: top-level ones in their long description, nested
    /// ones (`certs init`, `patient new`…) after their options.
    #[test]
    fn every_command_has_an_example_in_its_help() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for command in cli.get_subcommands() {
            let about = command
                .get_long_about()
                .or(command.get_about())
                .map(ToString::to_string)
                .unwrap_or_default();
            if !about.contains("Example") {
                missing.push(command.get_name().to_string());
            }
            for nested in command.get_subcommands() {
                let after = nested
                    .get_after_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if !after.starts_with("Example") {
                    missing.push(format!("{} {}", command.get_name(), nested.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "no example in: {missing:?}");
    }

    #[test]
    fn status_help_says_it_asks_every_node() {
        let mut cli = Cli::command();
        let status = cli.find_subcommand_mut("status").expect("status");
        let help = status.render_long_help().to_string();
        assert!(!help.contains("fail over"), "{help}");
        assert!(help.contains("each is asked"), "{help}");
    }
}
