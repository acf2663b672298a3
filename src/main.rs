//! The `techdiff` command: options -> scenario -> run -> export.
//! Input errors exit with code 2, output errors with 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use techdiff::error::{Error, InputError};
use techdiff::output::{self, RunFacts};
use techdiff::run::run_scenario;
use techdiff::scenario::{self, LoadedScenario};
use techdiff::sweep::Sweep;
use techdiff::sweep::execute::{Shard, execute};

/// `techdiff --version`: the crate version and the results generation
/// (`techdiff::RESULTS_GENERATION`, which a test keeps this text equal to):
/// builds of one generation give the same bytes.
const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), ", results generation 4");

#[derive(Parser)]
#[command(
    name = "techdiff",
    version,
    long_version = LONG_VERSION,
    about = "Agent-based simulator of international technology diffusion under export controls",
    long_about = "Agent-based simulator of international technology diffusion under export controls.\n\nWith no subcommand, runs the default scenario (tightening.toml, embedded) and writes its results under results/."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (default: the embedded tightening.toml) with its paired counterfactual.
    Run(RunArgs),
    /// Check scenario or sweep files without running them.
    Validate {
        /// Scenario or sweep files to check (a sweep's every design point is built).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a policy sweep: a design over scenario keys, with replications.
    Sweep(SweepArgs),
    /// Measure simulation throughput: whole paired runs of benchmark scenarios, and sweeps' speed-up with threads.
    Bench(BenchArgs),
    /// (internal) Measure one scenario in this process and print JSON.
    #[command(hide = true)]
    BenchWorker {
        scenario: PathBuf,
        #[arg(long)]
        runs: usize,
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// Draw the charts of a run or sweep folder: DIR/report.html (self-contained) and DIR/plots/*.svg.
    Report {
        /// A run folder (from `techdiff run`) or a finished sweep folder (from `techdiff sweep`).
        dir: PathBuf,
    },
    /// Combine the folders of a sharded sweep into the files one unsharded sweep writes.
    Merge {
        /// Shard folders (each from `techdiff sweep FILE --shard K/N`).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output folder (default: results/<sweep name>/<run id>-merged/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Scenario files (default: scenarios/bench/{small,medium,medium_policy,large}.toml).
    scenarios: Vec<PathBuf>,
    /// Timed runs per scenario (each a policy + counterfactual pair), or
    /// rounds per sweep (`--sweep`), after one warm-up.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = runs_arg)]
    runs: usize,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "T", value_parser = threads_arg)]
    threads: Option<usize>,
    /// Override a key of every scenario measured (as for `run`), e.g. to
    /// measure how cost scales: `--set world.synthetic.count=500`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// CSV the rows are added to (default: results/benchmarks/<date>-<host>.csv).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Also measure a sweep file's speed-up from 1 thread to T (`--threads`,
    /// default all cores; at least 2): `--runs` rounds, each timing the
    /// whole sweep at 1 thread and at T in turn, after a warm-up at each.
    /// Without SCENARIOS, only the sweeps are measured. `--set` does not
    /// apply to sweeps.
    #[arg(long = "sweep", value_name = "FILE")]
    sweeps: Vec<PathBuf>,
    /// CSV the sweep rows are added to (default:
    /// results/benchmarks/<date>-<host>-sweeps.csv).
    #[arg(long, value_name = "FILE", requires = "sweeps")]
    sweep_csv: Option<PathBuf>,
}

#[derive(Args)]
struct SweepArgs {
    /// Sweep file (TOML).
    file: PathBuf,
    /// Output folder (default: results/<sweep name>/<run id>/).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Finish an interrupted sweep in DIR: run only the missing runs.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Run only shard K of N (1-based), for a cluster's job array; combine with `techdiff merge`.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "T", value_parser = threads_arg)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Also write the report (report.html, plots/) into the folder when the sweep is complete.
    #[arg(long)]
    report: bool,
}

#[derive(Args, Default)]
struct RunArgs {
    /// Scenario file (TOML). Without it, the embedded default scenario.
    scenario: Option<PathBuf>,
    /// Number of replications (overrides the scenario's `replications`).
    #[arg(long, value_name = "N")]
    reps: Option<u32>,
    /// Master seed (overrides the scenario's `seed`).
    #[arg(long, value_name = "S", value_parser = seed_arg)]
    seed: Option<u64>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "T", value_parser = threads_arg)]
    threads: Option<usize>,
    /// Override any scenario key: `--set policy.export_control[chips].licence_rate=0.5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Output folder (default: results/<scenario name>/<run id>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// No progress bar and no summary table.
    #[arg(long)]
    quiet: bool,
    /// Also write the report (report.html, plots/) into the output folder.
    #[arg(long)]
    report: bool,
}

/// Most worker threads `--threads` accepts.
const MAX_THREADS: usize = 1024;

/// `--threads`: from 1 to [`MAX_THREADS`] (rayon would read 0 as one per
/// core, and a huge count would spend minutes spawning threads before
/// failing).
fn threads_arg(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(t) if (1..=MAX_THREADS).contains(&t) => Ok(t),
        _ => Err(format!("must be a whole number from 1 to {MAX_THREADS}")),
    }
}

/// `--runs`: at least 1.
fn runs_arg(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number, at least 1".into()),
    }
}

/// `--seed`: TOML's integers, and so a scenario's seed, stop at i64::MAX
/// (a larger seed would reach the scenario as a string).
fn seed_arg(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(seed) if i64::try_from(seed).is_ok() => Ok(seed),
        _ => Err(format!("must be a whole number from 0 to {}", i64::MAX)),
    }
}

/// mimalloc; see `techdiff::alloc`.
#[global_allocator]
static ALLOCATOR: techdiff::alloc::Allocator = techdiff::alloc::Allocator;

fn main() -> ExitCode {
    techdiff::alloc::tune();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        None => run(RunArgs::default()),
        Some(Command::Run(args)) => run(args),
        Some(Command::Validate { files }) => return validate(&files),
        Some(Command::Sweep(args)) => sweep(args),
        Some(Command::Report { dir }) => report(&dir),
        Some(Command::Merge { dirs, out }) => merge(&dirs, out),
        Some(Command::Bench(args)) => bench::bench(args),
        Some(Command::BenchWorker {
            scenario,
            runs,
            set,
        }) => bench::worker(&scenario, runs, &set),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A sweep with failed runs has already said so.
            if !matches!(e, Error::SomeRunsFailed(_)) {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// clap's message on one line, as every other input error: its `error:`
/// line and the help to read (its tips and usage lines dropped).
fn one_line(rendered: &str) -> String {
    // The `error:` line, with the indented lines that some messages list
    // under it (`the following required arguments were not provided:`).
    let mut lines = rendered.lines().skip_while(|l| !l.starts_with("error:"));
    let mut first = lines
        .next()
        .unwrap_or("error: the command line could not be read")
        .to_string();
    let listed: Vec<&str> = lines
        .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    if !listed.is_empty() {
        first = format!("{} {}", first, listed.join(", "));
    }
    // The subcommand given, if it is one, has its own help.
    let sub = std::env::args_os()
        .nth(1)
        .and_then(|a| a.into_string().ok())
        .filter(|a| {
            use clap::CommandFactory;
            Cli::command().get_subcommands().any(|c| c.get_name() == a)
        });
    match sub {
        Some(sub) => format!("{first} (see `techdiff {sub} --help`)"),
        None => format!("{first} (see `techdiff --help`)"),
    }
}

fn load(args: &RunArgs) -> Result<LoadedScenario, InputError> {
    let mut overrides = args.set.clone();
    if let Some(seed) = args.seed {
        overrides.push(format!("seed={seed}"));
    }
    if let Some(reps) = args.reps {
        overrides.push(format!("replications={reps}"));
    }
    match &args.scenario {
        Some(path) => scenario::load(path, &overrides),
        None => scenario::load_default(&overrides),
    }
}

/// A rayon pool of `threads` workers (default: one per core; a count
/// given is checked by [`threads_arg`]).
fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, Error> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        builder = builder.num_threads(t);
    }
    builder.build().map_err(|e| {
        InputError::new(
            "command line",
            format!("cannot start {} threads: {e}", threads.unwrap_or(0)),
        )
        .into()
    })
}

fn run(args: RunArgs) -> Result<(), Error> {
    let loaded = load(&args)?;
    let sc = &loaded.scenario;
    let pool = thread_pool(args.threads)?;
    let threads = pool.current_num_threads();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| output::default_run_dir(sc));
    output::check_run_dir(&out_dir)?;

    let total_steps = u64::from(sc.replications) * 2 * (u64::from(sc.steps) + 1);
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(total_steps), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} steps ({percent}%), ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!(
        "{}: {} replications x 2 variants",
        sc.name, sc.replications
    ));
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let clock = Instant::now();
    let results = pool.install(|| run_scenario(sc, sc.replications, &|| bar.inc(1)));
    let wall = clock.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let facts = RunFacts {
        origin: loaded.origin.clone(),
        overrides: args.set.clone(),
        replications: sc.replications,
        threads,
        wall_time_seconds: wall,
        started_at,
        command_line: std::env::args().collect(),
    };
    output::write_run(&out_dir, sc, &loaded.table, &results, &facts)?;
    if !args.quiet {
        println!(
            "{} ({} countries, {} steps, {} replications, seed {}): {:.2} s on {} threads",
            sc.name,
            sc.world.len(),
            sc.steps,
            sc.replications,
            sc.seed,
            wall,
            threads
        );
        println!("{}", output::summary_table(sc, &results));
        println!(
            "Securitization cost: 100 x (counterfactual - policy) final log productivity, mean over the group's countries."
        );
    }
    println!("results written to {}", out_dir.display());
    if args.report {
        report(&out_dir)?;
    }
    Ok(())
}

/// Write DIR/report.html and DIR/plots/*.svg.
fn report(dir: &std::path::Path) -> Result<(), Error> {
    let clock = Instant::now();
    let written = techdiff::report::write_report(dir)?;
    let kind = match written.kind {
        techdiff::report::Kind::Run => "run",
        techdiff::report::Kind::Sweep => "sweep",
    };
    println!(
        "{kind} report written to {} ({} charts, also in {}) in {:.2} s",
        written.html.display(),
        written.plots.len(),
        dir.join("plots").display(),
        clock.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Check every file; print one line per file. Exit code 2 if any is invalid.
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        let checked = if is_sweep_file(f) {
            validate_sweep(f)
        } else {
            scenario::load(f, &[]).map(|s| {
                format!(
                    "{} countries, {} sectors, {} regimes, {} steps",
                    s.scenario.world.len(),
                    s.scenario.sectors.len(),
                    s.scenario.regimes.len(),
                    s.scenario.steps
                )
            })
        };
        match checked {
            Ok(summary) => println!("{}: ok ({summary})", f.display()),
            Err(e) => {
                eprintln!("error: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// A sweep file names its base scenario with a top-level `scenario` key,
/// which no scenario file has. A file that cannot be read or parsed is
/// left to the scenario loader, whose message says why.
fn is_sweep_file(f: &std::path::Path) -> bool {
    std::fs::read_to_string(f)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("scenario"))
}

/// Check a sweep file as `techdiff sweep` does before it runs, and build
/// every design point's scenario: a point whose values the scenario
/// refuses would run as a failed run, so it is reported here (the first
/// one, and how many).
fn validate_sweep(f: &std::path::Path) -> Result<String, InputError> {
    let spec = Sweep::load(f)?;
    let failing: Vec<(usize, InputError)> = (0..spec.points.len())
        .filter_map(|p| spec.scenario_at(p).err().map(|e| (p, e)))
        .collect();
    if let Some((p, e)) = failing.first() {
        return Err(InputError::new(
            f.display().to_string(),
            format!(
                "{} of {} design points would fail (each run recorded as failed); the first, point {p}: {e}",
                failing.len(),
                spec.points.len()
            ),
        ));
    }
    let params = spec.params.len();
    Ok(format!(
        "sweep: design `{}`, {params} parameter{}, {} points x {} replications = {} runs, scenario {}",
        spec.design.name(),
        if params == 1 { "" } else { "s" },
        spec.points.len(),
        spec.replications,
        spec.runs(),
        spec.scenario_file
    ))
}

fn sweep_bar(quiet: bool, name: &str) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} runs, {per_sec}, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

fn sweep(args: SweepArgs) -> Result<(), Error> {
    let spec = Sweep::load(&args.file)?;
    if let Some(out) = &args.out {
        output::check_out_folder(out)?;
    }
    let pool = thread_pool(args.threads)?;
    let resume = args.resume.is_some();
    let dir = match (&args.resume, &args.out) {
        (Some(d), _) | (None, Some(d)) => d.clone(),
        (None, None) => output::default_dir(
            &spec.name,
            spec.seed,
            args.shard.map(|s| format!("shard{}of{}", s.index, s.count)),
        ),
    };
    let bar = sweep_bar(args.quiet, &spec.name);
    let clock = Instant::now();
    let outcome = pool.install(|| {
        execute(&spec, &dir, args.shard, resume, &|| bar.inc(1), &|n| {
            bar.set_length(n as u64)
        })
    })?;
    bar.finish_and_clear();
    let wall = clock.elapsed().as_secs_f64();
    println!(
        "{}: {} design points x {} replications ({} design); ran {} runs in {:.2} s ({:.1} runs/s) on {} threads",
        spec.name,
        spec.points.len(),
        spec.replications,
        spec.design.name(),
        outcome.ran,
        wall,
        outcome.ran as f64 / wall.max(1e-9),
        pool.current_num_threads()
    );
    if outcome.finished {
        println!("results written to {}", outcome.dir.display());
        if args.report {
            report(&outcome.dir)?;
        }
    } else {
        println!(
            "shard written to {}; combine all shards with `techdiff merge DIR...`",
            outcome.dir.display()
        );
        if args.report {
            println!(
                "no report for a shard (--report): run `techdiff report DIR` on the merged folder"
            );
        }
    }
    if outcome.failed_total > 0 {
        eprintln!(
            "warning: {} runs failed; see failures.csv",
            outcome.failed_total
        );
        return Err(Error::SomeRunsFailed(outcome.failed_total));
    }
    Ok(())
}

fn merge(dirs: &[PathBuf], out: Option<PathBuf>) -> Result<(), Error> {
    let out = match out {
        Some(o) => {
            output::check_out_folder(&o)?;
            o
        }
        None => {
            let m = dirs[0].join("manifest.json");
            let text = std::fs::read_to_string(&m).map_err(|e| {
                InputError::new(
                    m.display().to_string(),
                    format!("cannot read the sweep manifest: {e}"),
                )
            })?;
            let name = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["sweep_name"].as_str().map(str::to_string))
                .unwrap_or_else(|| "sweep".into());
            output::default_dir(&name, 0, Some("merged".into()))
        }
    };
    let failed = techdiff::sweep::execute::merge(dirs, &out)?;
    println!("merged {} folders into {}", dirs.len(), out.display());
    if failed > 0 {
        eprintln!("warning: {failed} runs failed; see failures.csv");
        return Err(Error::SomeRunsFailed(failed));
    }
    Ok(())
}

/// `techdiff bench`: each scenario is measured in a child process
/// (`bench-worker`) so that its peak resident memory is its own.
mod bench {
    use super::*;
    use techdiff::run::{WorkCounts, run_pair_counts};
    use techdiff::sim::metrics::Layout;

    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Measured {
        pub scenario: String,
        pub countries: usize,
        pub steps: u32,
        /// Innovations in existence at the end of one variant's run.
        pub innovations: u64,
        pub threads: usize,
        /// Wall time of each timed run.
        pub seconds: Vec<f64>,
        /// CPU time of each timed run, every thread's, user and system
        /// together and system alone; None where the platform does not
        /// report it.
        pub cpu_seconds: Option<Vec<f64>>,
        pub system_seconds: Option<Vec<f64>>,
        pub counts: WorkCounts,
        /// None where the platform does not report it.
        pub peak_rss_mib: Option<f64>,
    }

    /// The value of the first `key: value` line of a /proc file (Linux),
    /// trimmed.
    fn proc_field(file: &str, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(file).ok()?;
        let (_, value) = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == key)?;
        Some(value.trim().to_string())
    }

    /// What the kernel has counted for this process so far (`getrusage`;
    /// None where there is no such call).
    struct Usage {
        /// CPU time of every thread, exited ones included, in
        /// microseconds (the kernel's unit here).
        user_us: i64,
        system_us: i64,
        /// Peak resident set size, in MiB.
        peak_rss_mib: f64,
    }

    #[cfg(unix)]
    fn usage() -> Option<Usage> {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` fills the whole `rusage` it is given, or
        // returns -1 and leaves it (zeroed, a valid value) as it was.
        let u = unsafe {
            if libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) != 0 {
                return None;
            }
            u.assume_init()
        };
        // `time_t` and `suseconds_t` are i64 here, narrower elsewhere
        // (macOS's `suseconds_t` is i32).
        #[allow(clippy::useless_conversion)]
        let us = |t: libc::timeval| i64::from(t.tv_sec) * 1_000_000 + i64::from(t.tv_usec);
        // `ru_maxrss` is in bytes on macOS, in KiB elsewhere.
        let kib = if cfg!(target_os = "macos") {
            u.ru_maxrss as f64 / 1024.0
        } else {
            u.ru_maxrss as f64
        };
        Some(Usage {
            user_us: us(u.ru_utime),
            system_us: us(u.ru_stime),
            peak_rss_mib: kib / 1024.0,
        })
    }

    #[cfg(not(unix))]
    fn usage() -> Option<Usage> {
        None
    }

    pub fn worker(path: &std::path::Path, runs: usize, set: &[String]) -> Result<(), Error> {
        let loaded = scenario::load(path, set)?;
        let sc = &loaded.scenario;
        let layout = Layout::new(sc);
        let counts = run_pair_counts(sc, &layout, 0); // warm-up, and the work figures
        let mut seconds = Vec::with_capacity(runs);
        let mut cpu = Some((Vec::with_capacity(runs), Vec::with_capacity(runs)));
        for _ in 0..runs {
            let before = usage();
            let clock = Instant::now();
            let again = run_pair_counts(sc, &layout, 0);
            seconds.push(clock.elapsed().as_secs_f64());
            let after = usage();
            cpu = cpu.zip(before.zip(after)).map(|((mut c, mut s), (b, a))| {
                let system = a.system_us - b.system_us;
                c.push((a.user_us - b.user_us + system) as f64 / 1e6);
                s.push(system as f64 / 1e6);
                (c, s)
            });
            assert_eq!(again, counts, "a fixed seed does the same work every time");
        }
        let (cpu_seconds, system_seconds) = cpu.unzip();
        let m = Measured {
            scenario: sc.name.clone(),
            countries: sc.world.len(),
            steps: sc.steps,
            innovations: counts.innovations / 2,
            threads: rayon::current_num_threads(),
            seconds,
            cpu_seconds,
            system_seconds,
            counts,
            peak_rss_mib: usage().map(|u| u.peak_rss_mib),
        };
        println!("{}", serde_json::to_string(&m).expect("serialisable"));
        Ok(())
    }

    /// The bench CSV's columns.
    const HEADER: [&str; 26] = [
        "scenario",
        "file",
        "settings",
        "countries",
        "innovations",
        "steps",
        "runs",
        "median_seconds",
        "min_seconds",
        "max_seconds",
        "median_cpu_seconds",
        "median_system_seconds",
        "cores_busy",
        "steps_per_second",
        "adoptions_per_second",
        "country_innovation_steps_per_second",
        "adoptions",
        "country_innovation_steps",
        "peak_rss_mib",
        "threads",
        "build",
        "measured_at",
        "git_revision",
        "cpu",
        "run_seconds",
        "run_cpu_seconds",
    ];

    /// The rows already in the bench CSV at `path` (none if there is no
    /// file), which must have the columns `columns` ([`HEADER`] or
    /// [`SWEEP_HEADER`]).
    fn earlier_rows(
        path: &std::path::Path,
        columns: &[&str],
    ) -> Result<Vec<csv::StringRecord>, Error> {
        let shown = path.display().to_string();
        let mut reader = match csv::Reader::from_path(path) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(InputError::new(&shown, format!("cannot read it: {e}")).into()),
        };
        let refuse = |what: String| -> Error {
            InputError::new(
                &shown,
                format!("{what}; `techdiff bench` adds its rows to an earlier bench CSV with the same columns: name another file with --csv, or move this one away"),
            )
            .into()
        };
        let header = reader
            .headers()
            .map_err(|e| refuse(format!("not a bench CSV ({e})")))?;
        if header.is_empty() {
            return Ok(Vec::new()); // an empty file
        }
        if header.iter().ne(columns.iter().copied()) {
            return Err(refuse(
                "its columns are not this version's bench CSV columns".into(),
            ));
        }
        reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refuse(format!("not a bench CSV ({e})")))
    }

    /// The CPU's model name (Linux), for the log: the machine matters as
    /// much as the code.
    fn cpu_model() -> String {
        proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into())
    }

    /// Each run's figure, space-separated.
    fn joined(v: &[f64]) -> String {
        v.iter().map(f64::to_string).collect::<Vec<_>>().join(" ")
    }

    fn median(v: &[f64]) -> f64 {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        }
    }

    pub fn bench(args: BenchArgs) -> Result<(), Error> {
        // `--runs` and `--threads` are checked as they are read (the
        // workers take the thread count from RAYON_NUM_THREADS, where 0
        // would mean every core).
        let scenarios = if args.scenarios.is_empty() && args.sweeps.is_empty() {
            ["small", "medium", "medium_policy", "large"]
                .iter()
                .map(|s| PathBuf::from(format!("scenarios/bench/{s}.toml")))
                .collect()
        } else {
            args.scenarios.clone()
        };
        // Check every file and the command line before measuring anything.
        for s in &scenarios {
            scenario::load(s, &args.set)?;
        }
        let sweeps = args
            .sweeps
            .iter()
            .map(|p| Sweep::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        let many = args.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        if !sweeps.is_empty() && many < 2 {
            return Err(InputError::new(
                "command line",
                format!(
                    "--sweep measures the speed-up from 1 thread to --threads T, so T must be at least 2 (it is {many}{})",
                    if args.threads.is_none() {
                        ", the cores of this machine: pass --threads 2"
                    } else {
                        ""
                    }
                ),
            )
            .into());
        }
        if scenarios.is_empty() && args.csv.is_some() {
            return Err(InputError::new(
                "command line",
                "--csv takes the scenarios' rows, and no scenario is measured: name the sweeps' CSV with --sweep-csv",
            )
            .into());
        }
        let dated = |suffix: &str| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "unknown-host".into());
            PathBuf::from("results/benchmarks").join(format!(
                "{}-{host}{suffix}.csv",
                chrono::Utc::now().format("%Y-%m-%d")
            ))
        };
        let path = args.csv.clone().unwrap_or_else(|| dated(""));
        let sweep_path = args.sweep_csv.clone().unwrap_or_else(|| dated("-sweeps"));
        // Each CSV is a log: each run of the command adds its rows to those
        // already in the file (today's, on this host, by default). An
        // existing file must have the same columns: checked before
        // measuring, and read again when the rows are added.
        let logs = [
            (!scenarios.is_empty(), "--csv", &path, &HEADER[..]),
            (
                !sweeps.is_empty(),
                "--sweep-csv",
                &sweep_path,
                &SWEEP_HEADER[..],
            ),
        ];
        for (used, flag, path, columns) in logs {
            if !used {
                continue;
            }
            if path.is_dir() {
                return Err(InputError::new(
                    "command line",
                    format!("{flag} {} is a folder; name a file", path.display()),
                )
                .into());
            }
            earlier_rows(path, columns)?;
        }
        let measured_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if !scenarios.is_empty() {
            bench_scenarios(&args, &scenarios, &path, &measured_at)?;
        }
        if !sweeps.is_empty() {
            bench_sweeps(&args, &sweeps, many, &sweep_path, &measured_at)?;
        }
        Ok(())
    }

    /// Whole paired runs of each scenario, each measured in a worker
    /// process of its own (`bench-worker`): a table, and a row each added
    /// to the CSV at `path`.
    fn bench_scenarios(
        args: &BenchArgs,
        scenarios: &[PathBuf],
        path: &std::path::Path,
        measured_at: &str,
    ) -> Result<(), Error> {
        let exe = std::env::current_exe().map_err(|e| Error::output("techdiff executable", e))?;
        let mut rows = Vec::new();
        for s in scenarios {
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("bench-worker")
                .arg(s)
                .arg("--runs")
                .arg(args.runs.to_string());
            for kv in &args.set {
                cmd.arg(format!("--set={kv}"));
            }
            if let Some(t) = args.threads {
                cmd.env("RAYON_NUM_THREADS", t.to_string());
            }
            eprintln!("measuring {} ({} runs)...", s.display(), args.runs);
            let out = cmd.output().map_err(|e| Error::output(&exe, e))?;
            if !out.status.success() {
                return Err(InputError::new(
                    s.display().to_string(),
                    format!(
                        "benchmark run failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                )
                .into());
            }
            let m: Measured = serde_json::from_slice(&out.stdout).map_err(|e| {
                InputError::new(
                    s.display().to_string(),
                    format!("unreadable benchmark result: {e}"),
                )
            })?;
            rows.push((s.display().to_string(), m));
        }
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
        table.set_header(vec![
            "scenario",
            "countries",
            "innovations",
            "median s",
            "min s",
            "max s",
            "CPU s",
            "cores busy",
            "steps/s",
            "adoptions/s",
            "country-innovation-steps/s",
            "peak MiB",
            "threads",
        ]);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(HEADER).expect("memory");
        let earlier = earlier_rows(path, &HEADER)?;
        for row in &earlier {
            w.write_record(row).expect("memory");
        }
        let cpu = cpu_model();
        let build = build_kind();
        for (file, m) in &rows {
            let med = median(&m.seconds);
            let min = m.seconds.iter().copied().fold(f64::INFINITY, f64::min);
            let max = m.seconds.iter().copied().fold(0.0, f64::max);
            let per = |x: u64| x as f64 / med;
            // CPU time per run, and how many cores it kept busy (each
            // run's CPU over its wall time): fewer cores busy means a core
            // waited; more CPU for the same run means the work itself went
            // slower (on a shared virtual machine, time the host gave to
            // others included).
            let cpu_med = m.cpu_seconds.as_deref().map(median);
            let system_med = m.system_seconds.as_deref().map(median);
            let busy = m.cpu_seconds.as_deref().map(|c| {
                let ratios: Vec<f64> = c.iter().zip(&m.seconds).map(|(c, w)| c / w).collect();
                median(&ratios)
            });
            let shown = |x: Option<f64>, f: fn(f64) -> String| x.map_or("n/a".into(), f);
            let cell = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
            table.add_row(vec![
                m.scenario.clone(),
                m.countries.to_string(),
                m.innovations.to_string(),
                format!("{med:.3}"),
                format!("{min:.3}"),
                format!("{max:.3}"),
                shown(cpu_med, |x| format!("{x:.3}")),
                shown(busy, |x| format!("{x:.2}")),
                format!("{:.0}", per(m.counts.steps)),
                format!("{:.3e}", per(m.counts.adoptions)),
                format!("{:.3e}", per(m.counts.country_innovation_steps)),
                shown(m.peak_rss_mib, |x| format!("{x:.0}")),
                m.threads.to_string(),
            ]);
            let record = [
                m.scenario.clone(),
                file.clone(),
                args.set.join(" "),
                m.countries.to_string(),
                m.innovations.to_string(),
                m.steps.to_string(),
                m.seconds.len().to_string(),
                med.to_string(),
                min.to_string(),
                max.to_string(),
                cell(cpu_med),
                cell(system_med),
                cell(busy),
                per(m.counts.steps).to_string(),
                per(m.counts.adoptions).to_string(),
                per(m.counts.country_innovation_steps).to_string(),
                m.counts.adoptions.to_string(),
                m.counts.country_innovation_steps.to_string(),
                cell(m.peak_rss_mib),
                m.threads.to_string(),
            ]
            .into_iter()
            .chain(provenance(build, measured_at, &cpu))
            .chain([
                joined(&m.seconds),
                m.cpu_seconds.as_deref().map(joined).unwrap_or_default(),
            ]);
            w.write_record(record).expect("memory");
        }
        println!("{table}");
        println!(
            "Whole paired runs (policy + counterfactual), median of {} after a warm-up; {build} build{}.",
            args.runs,
            not_for_timing(build)
        );
        add_to_log(path, w, rows.len(), earlier.len())
    }

    /// The CSV logs' columns on what measured: the build, when, the git
    /// revision and the CPU.
    fn provenance(build: &str, measured_at: &str, cpu: &str) -> [String; 4] {
        [
            build.to_string(),
            measured_at.to_string(),
            option_env!("TECHDIFF_GIT_REVISION")
                .unwrap_or("")
                .to_string(),
            cpu.to_string(),
        ]
    }

    /// What the tables' footnote adds after the build's name.
    fn not_for_timing(build: &str) -> &'static str {
        if build == "release" {
            ""
        } else {
            " (not for timing: use `cargo run --release -- bench`)"
        }
    }

    /// Replace the CSV log at `path` with `w`'s rows (the `earlier` ones
    /// and `added` new ones), and say so.
    fn add_to_log(
        path: &std::path::Path,
        w: csv::Writer<Vec<u8>>,
        added: usize,
        earlier: usize,
    ) -> Result<(), Error> {
        output::write_atomic(path, &w.into_inner().expect("memory"))?;
        println!(
            "{added} row{} added to {} ({earlier} before)",
            if added == 1 { "" } else { "s" },
            path.display(),
        );
        Ok(())
    }

    /// Timings of a debug build (debug assertions and the self-checks on,
    /// e.g. under `cargo test`) are not comparable: the tables and the
    /// CSVs say which build ran.
    fn build_kind() -> &'static str {
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    }

    /// The sweep bench CSV's columns.
    const SWEEP_HEADER: [&str; 17] = [
        "sweep",
        "file",
        "runs",
        "rounds",
        "threads",
        "median_seconds_1_thread",
        "median_seconds_threads",
        "speedup_median",
        "speedup_min",
        "speedup_max",
        "runs_per_second",
        "build",
        "measured_at",
        "git_revision",
        "cpu",
        "round_seconds_1_thread",
        "round_seconds_threads",
    ];

    /// One whole execution of `sweep` in `pool`, into a temporary folder
    /// (removed after): its wall time in seconds.
    fn time_sweep(sweep: &Sweep, pool: &rayon::ThreadPool) -> Result<f64, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::output(std::env::temp_dir(), e))?;
        let clock = Instant::now();
        let outcome = pool.install(|| execute(sweep, dir.path(), None, false, &|| {}, &|_| {}))?;
        let seconds = clock.elapsed().as_secs_f64();
        if outcome.failed_total > 0 {
            return Err(InputError::new(
                &sweep.file,
                format!(
                    "{} of its runs failed, so its time is not the engine's: benchmark a sweep whose runs all succeed",
                    outcome.failed_total
                ),
            )
            .into());
        }
        Ok(seconds)
    }

    /// Each sweep's speed-up from 1 thread to `many`: after a warm-up at
    /// each count, `args.runs` rounds, each timing the whole sweep at both
    /// counts in turn (the order swapped every round), so that a change in
    /// the machine's speed falls on both; the speed-up of a round is its
    /// one-thread time over its `many`-thread time. A table, and a row
    /// each added to the CSV at `path`.
    fn bench_sweeps(
        args: &BenchArgs,
        sweeps: &[Sweep],
        many: usize,
        path: &std::path::Path,
        measured_at: &str,
    ) -> Result<(), Error> {
        let (one, several) = (thread_pool(Some(1))?, thread_pool(Some(many))?);
        let mut rows = Vec::new();
        for sweep in sweeps {
            eprintln!(
                "measuring sweep {} ({} runs at 1 and {many} threads, {} rounds)...",
                sweep.file,
                sweep.runs(),
                args.runs
            );
            time_sweep(sweep, &one)?;
            time_sweep(sweep, &several)?;
            let (mut t1, mut tn) = (Vec::new(), Vec::new());
            for round in 0..args.runs {
                if round % 2 == 0 {
                    t1.push(time_sweep(sweep, &one)?);
                    tn.push(time_sweep(sweep, &several)?);
                } else {
                    tn.push(time_sweep(sweep, &several)?);
                    t1.push(time_sweep(sweep, &one)?);
                }
            }
            rows.push((sweep, t1, tn));
        }
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
        table.set_header(vec![
            "sweep".to_string(),
            "runs".to_string(),
            "rounds".to_string(),
            "1 thread s".to_string(),
            format!("{many} threads s"),
            "speed-up".to_string(),
            "min".to_string(),
            "max".to_string(),
            "runs/s".to_string(),
        ]);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(SWEEP_HEADER).expect("memory");
        let earlier = earlier_rows(path, &SWEEP_HEADER)?;
        for row in &earlier {
            w.write_record(row).expect("memory");
        }
        let (cpu, build) = (cpu_model(), build_kind());
        for (sweep, t1, tn) in &rows {
            let ratios: Vec<f64> = t1.iter().zip(tn).map(|(a, b)| a / b).collect();
            let (m1, mn, speedup) = (median(t1), median(tn), median(&ratios));
            let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ratios.iter().copied().fold(0.0, f64::max);
            let per_second = sweep.runs() as f64 / mn;
            table.add_row(vec![
                sweep.name.clone(),
                sweep.runs().to_string(),
                t1.len().to_string(),
                format!("{m1:.3}"),
                format!("{mn:.3}"),
                format!("{speedup:.2}x"),
                format!("{min:.2}x"),
                format!("{max:.2}x"),
                format!("{per_second:.1}"),
            ]);
            let record = [
                sweep.name.clone(),
                sweep.file.clone(),
                sweep.runs().to_string(),
                t1.len().to_string(),
                many.to_string(),
                m1.to_string(),
                mn.to_string(),
                speedup.to_string(),
                min.to_string(),
                max.to_string(),
                per_second.to_string(),
            ]
            .into_iter()
            .chain(provenance(build, measured_at, &cpu))
            .chain([joined(t1), joined(tn)]);
            w.write_record(record).expect("memory");
        }
        println!("{table}");
        println!(
            "Whole sweeps (every run, policy and counterfactual, and the sweep's files), medians of {} alternating round{} after a warm-up at each thread count; speed-up: the median of the rounds' ratios; {build} build{}.",
            args.runs,
            if args.runs == 1 { "" } else { "s" },
            not_for_timing(build)
        );
        add_to_log(path, w, rows.len(), earlier.len())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_long_version_names_this_results_generation() {
        let generation = format!(", results generation {}", techdiff::RESULTS_GENERATION);
        assert!(
            super::LONG_VERSION.ends_with(&generation),
            "{}",
            super::LONG_VERSION
        );
    }
}
