//! Criterion benches, grouped by problem size, fixed seeds:
//! `cargo bench --bench simulation`. Whole runs are paired (policy and
//! counterfactual); one step is a step of the policy variant after 20
//! untimed ones.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group};
use techdiff::run::run_pair_counts;
use techdiff::scenario::{LoadedScenario, load};
use techdiff::sim::metrics::Layout;
use techdiff::sim::{Simulation, Variant};
use techdiff::sweep::Sweep;
use techdiff::sweep::execute::execute;

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn bench_scenario(name: &str) -> LoadedScenario {
    load(&scenarios().join(format!("bench/{name}.toml")), &[]).expect("bench scenario loads")
}

fn size_group(c: &mut Criterion, name: &str) {
    let loaded = bench_scenario(name);
    let sc = &loaded.scenario;
    let layout = Layout::new(sc);
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    // One step of the policy variant, from step 21 on: the simulation is
    // advanced 20 steps untimed, then successive steps are timed (a fresh
    // simulation when the scenario runs out of steps).
    group.bench_function("one_step_policy", |b| {
        let warm = 20.min(sc.steps - 1);
        let fresh = || {
            let mut sim = Simulation::new(sc, &layout, 0, Variant::Policy);
            for _ in 0..warm {
                sim.step();
            }
            sim
        };
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut sim = fresh();
            let mut done = warm;
            for _ in 0..iters {
                if done == sc.steps {
                    sim = fresh();
                    done = warm;
                }
                let clock = Instant::now();
                black_box(sim.step());
                total += clock.elapsed();
                done += 1;
            }
            total
        })
    });
    group.bench_function("whole_paired_run", |b| {
        b.iter(|| black_box(run_pair_counts(sc, &layout, 0)))
    });
    group.finish();
}

fn small(c: &mut Criterion) {
    size_group(c, "small");
}

fn medium(c: &mut Criterion) {
    size_group(c, "medium");
    size_group(c, "medium_policy");
}

fn large(c: &mut Criterion) {
    // A whole large run takes about 20 s: ten samples take minutes.
    size_group(c, "large");
}

fn loading(c: &mut Criterion) {
    let path = scenarios().join("tightening.toml");
    c.bench_function("load_tightening", |b| {
        b.iter(|| black_box(load(&path, &[]).unwrap()))
    });
}

/// The sweep engine on 64 small runs (16 points x 4 replications):
/// `scenarios/sweeps/bench_64_small.toml`, which `techdiff bench --sweep`
/// times in alternating rounds as well.
fn sweep_engine(c: &mut Criterion) {
    let sweep = Sweep::load(&scenarios().join("sweeps/bench_64_small.toml")).unwrap();
    let mut group = c.benchmark_group("sweep_64_small_runs");
    group.sample_size(10);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |out| {
                    pool.install(|| {
                        execute(&sweep, out.path(), None, false, &|| {}, &|_| {}).unwrap()
                    })
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// The allocator of the `techdiff` binary, so that the benches measure
/// what users run.
#[global_allocator]
static ALLOCATOR: techdiff::alloc::Allocator = techdiff::alloc::Allocator;

criterion_group!(benches, small, medium, large, loading, sweep_engine);

/// `criterion_main!`, with the allocator's settings applied first.
fn main() {
    techdiff::alloc::tune();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
