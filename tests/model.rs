//! Behaviour of the model (MODEL.md): exactness against a Markov chain,
//! policy identities, monotonicity under common random numbers, and the
//! individual policy mechanisms in small designed worlds.

mod common;

use std::fmt::Write;

use common::*;
use techdiff::output::{countries_csv, timeseries_csv};
use techdiff::scenario;
use techdiff::sim::Variant;

fn binomial_pmf(n: usize, p: f64) -> Vec<f64> {
    // Stable recursion over k.
    let mut pmf = vec![0.0; n + 1];
    if p <= 0.0 {
        pmf[0] = 1.0;
        return pmf;
    }
    if p >= 1.0 {
        pmf[n] = 1.0;
        return pmf;
    }
    let mut log_c = 0.0f64;
    for (k, slot) in pmf.iter_mut().enumerate() {
        if k > 0 {
            log_c += libm::log((n - k + 1) as f64) - libm::log(k as f64);
        }
        *slot = libm::exp(log_c + k as f64 * libm::log(p) + (n - k) as f64 * libm::log(1.0 - p));
    }
    pmf
}

/// Complete-graph SI (normalize none, per_step 0, one initial innovation):
/// the mean adoption share over 1000 replications matches the exact
/// expectation of the Markov chain over the number of adopters, within three
/// standard errors at every step.
#[test]
fn si_on_complete_graph_matches_markov_chain() {
    let n = 20usize;
    let (beta, nu, trust, mu) = (0.03, 0.002, 0.8f64, 0.5);
    let mut toml = String::from("steps = 25\nseed = 7\nreplications = 1000\n");
    for i in 0..n {
        writeln!(toml, "[[world.country]]\ncode = \"C{i}\"").unwrap();
    }
    writeln!(
        toml,
        r#"[network]
kind = "complete"
normalize = "none"
[innovation]
per_step = 0
[[innovation.initial]]
sector = "general"
holders = ["C0"]
quality = 1.0
[diffusion]
beta = {beta}
trust_exponent = {mu}
reinvention = {nu}
[trust]
same_bloc = {trust}"#
    )
    .unwrap();
    let loaded = load(&toml, &[]);
    let res = run(&loaded);
    let reps = loaded.scenario.replications;

    // Exact distribution of the number of holders.
    let mut dist = vec![0.0; n + 1];
    dist[1] = 1.0;
    for t in 0..=25usize {
        let (mut mean, mut second) = (0.0, 0.0);
        for (h, &p) in dist.iter().enumerate() {
            let share = h as f64 / n as f64;
            mean += p * share;
            second += p * share * share;
        }
        let se = ((second - mean * mean).max(0.0) / f64::from(reps)).sqrt();
        let sim_mean = (0..reps)
            .map(|r| series(&res, Variant::Policy, r, "all", "adoption_share")[t])
            .sum::<f64>()
            / f64::from(reps);
        if se == 0.0 {
            assert!(
                (sim_mean - mean).abs() < 1e-12,
                "step {t}: {sim_mean} vs exact {mean}"
            );
        } else {
            assert!(
                (sim_mean - mean).abs() <= 3.0 * se,
                "step {t}: simulated mean share {sim_mean:.5}, exact {mean:.5}, 3 SE = {:.5}",
                3.0 * se
            );
        }
        // One step of the chain.
        let mut next = vec![0.0; n + 1];
        for (h, &p) in dist.iter().enumerate() {
            if p == 0.0 {
                continue;
            }
            let hazard = beta * h as f64 * libm::pow(trust, mu) + nu;
            let q = 1.0 - libm::exp(-hazard);
            for (m, b) in binomial_pmf(n - h, q).into_iter().enumerate() {
                next[h + m] += p * b;
            }
        }
        dist = next;
    }
    // Both variants are the same process here (compare bits: NaN marks
    // undefined values).
    for r in 0..reps {
        let bits = |v: Variant| -> Vec<Vec<u64>> {
            res.get(v, r)
                .series
                .iter()
                .map(|s| s.values.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        assert_eq!(bits(Variant::Policy), bits(Variant::Counterfactual));
    }
}

/// A small synthetic world with three blocs and four sectors.
fn world(extra: &str) -> String {
    format!(
        r#"steps = 20
seed = 3
replications = 6
[world.synthetic]
count = 16
blocs = {{ A = 0.4, B = 0.3, C = 0.3 }}
income = {{ high = 0.3, upper_middle = 0.3, lower_middle = 0.2, low = 0.2 }}
gdp = {{ distribution = "lognormal", mu = 0.0, sigma = 1.0 }}
rd = {{ distribution = "uniform", min = 0.2, max = 2.0 }}
absorptive = {{ distribution = "uniform", min = 0.4, max = 1.0 }}
[[sector]]
name = "chips"
sensitivity = 0.9
[[sector]]
name = "ai"
sensitivity = 0.7
[[sector]]
name = "health"
sensitivity = 0.4
[[sector]]
name = "other"
sensitivity = 0.2
[innovation]
per_step = 40
coinvention = 0.4
{extra}"#
    )
}

fn outputs(toml: &str, overrides: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let loaded = load(toml, overrides);
    let res = run(&loaded);
    (
        timeseries_csv(&loaded.scenario, &res),
        countries_csv(&loaded.scenario, &res),
    )
}

const TRUST_ON: &str = r#"[trust]
cross_bloc = 0.5
perception_noise = 0.4
retaliation = true
retaliation_threshold = 0.05
min_trust = 0.55
[policy.cooperation]
chilling = 0.5
transparency = 0.0
"#;

#[test]
fn regimes_of_scope_zero_change_nothing() {
    let without = world(TRUST_ON);
    let with = world(&format!(
        r#"{TRUST_ON}
[[policy.export_control]]
name = "empty"
controllers = ["bloc:A"]
targets = ["all"]
sectors = {{ chips = 0.0, ai = 0.0, health = 0.0, other = 0.0 }}
licence_rate = 0.0
cost = 2.0
extraterritorial = true
schedule = [[0, 0.5], [10, 2.0]]
"#
    ));
    assert_eq!(outputs(&without, &[]), outputs(&with, &[]));
    // And the same regime with a positive scope does change things.
    let (ts, _) = outputs(&with, &["policy.export_control[0].sectors.chips=0.5"]);
    assert_ne!(ts, outputs(&without, &[]).0);
}

const MONOTONE_REGIME: &str = r#"[trust]
cross_bloc = 0.6
[policy.cooperation]
chilling = 0.3
[[policy.export_control]]
name = "r"
controllers = ["bloc:A"]
targets = ["all"]
sectors = { chips = 0.6, ai = 0.6 }
licence_rate = 0.3
cost = 0.5
"#;

#[test]
fn wider_scope_or_fewer_licences_never_raise_world_productivity() {
    let toml = world(MONOTONE_REGIME);
    let world_mean = |overrides: &[&str]| {
        let loaded = load(&toml, overrides);
        mean_final(&run(&loaded), Variant::Policy, "all", "log_productivity")
    };
    let mut last = f64::INFINITY;
    for scope in ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"] {
        let a = format!("policy.export_control[0].sectors.chips={scope}");
        let b = format!("policy.export_control[0].sectors.ai={scope}");
        let v = world_mean(&[&a, &b]);
        assert!(
            v <= last + 1e-12,
            "scope {scope}: mean world log productivity {v} > {last} at the smaller scope"
        );
        last = v;
    }
    let mut last = f64::INFINITY;
    for rate in ["1.0", "0.8", "0.6", "0.4", "0.2", "0.0"] {
        let a = format!("policy.export_control[0].licence_rate={rate}");
        let v = world_mean(&[&a]);
        assert!(
            v <= last + 1e-12,
            "licence rate {rate}: mean world log productivity {v} > {last} at the higher rate"
        );
        last = v;
    }
    // The extremes differ: the test would notice a policy without effect.
    let open = world_mean(&[
        "policy.export_control[0].sectors.chips=0.0",
        "policy.export_control[0].sectors.ai=0.0",
    ]);
    assert!(open > last + 1e-6);
}

#[test]
fn positive_list_sectors_are_immune() {
    // A regime on positive-list sectors only does nothing at all.
    let base = world(TRUST_ON);
    let listed = world(&format!(
        r#"{TRUST_ON}positive_list = ["health"]
[[policy.export_control]]
name = "health_only"
controllers = ["bloc:A"]
sectors = {{ health = 1.0 }}
"#
    ));
    let no_regime = world(&format!("{TRUST_ON}positive_list = [\"health\"]\n"));
    assert_eq!(outputs(&listed, &[]), outputs(&no_regime, &[]));
    // The same regime on a sector off the list does change the outcome.
    let unlisted = listed.replace(
        "positive_list = [\"health\"]",
        "positive_list = [\"other\"]",
    );
    assert_ne!(outputs(&unlisted, &[]), outputs(&base, &[]));

    // With trust out of the diffusion channel and no co-invention, a listed
    // sector diffuses exactly as in the counterfactual while a controlled
    // sector does not.
    let toml = world(
        r#"[diffusion]
trust_exponent = 0.0
[policy.cooperation]
positive_list = ["health"]
incentive = 0.5
chilling = 0.8
[[policy.export_control]]
name = "r"
controllers = ["bloc:A"]
sectors = { chips = 1.0, health = 1.0 }
licence_rate = 0.0
"#,
    );
    let loaded = load(&toml, &["innovation.coinvention=0"]);
    let res = run(&loaded);
    for r in 0..loaded.scenario.replications {
        let bits = |v: Variant| -> Vec<u64> {
            series(&res, v, r, "sector:health", "adoption_share")
                .iter()
                .map(|x| x.to_bits())
                .collect()
        };
        assert_eq!(bits(Variant::Policy), bits(Variant::Counterfactual));
        assert!(
            final_value(&res, Variant::Policy, r, "sector:chips", "adoption_share")
                < final_value(
                    &res,
                    Variant::Counterfactual,
                    r,
                    "sector:chips",
                    "adoption_share"
                )
        );
    }
}

/// Three countries: C (controller), T (target), X (third country); T hears
/// only from X, X only from C.
fn three_countries(
    dir: &std::path::Path,
    edges: &str,
    body: &str,
) -> techdiff::scenario::LoadedScenario {
    std::fs::write(
        dir.join("edges.csv"),
        format!("source,target,weight\n{edges}"),
    )
    .unwrap();
    let text = format!(
        r#"steps = 30
replications = 3
[[world.country]]
code = "C"
[[world.country]]
code = "T"
[[world.country]]
code = "X"
[network]
kind = "edges"
file = "edges.csv"
normalize = "none"
[innovation]
per_step = 0
[diffusion]
beta = 2.0
reinvention = 0.0
trust_exponent = 0.0
{body}"#
    );
    let path = dir.join("s.toml");
    std::fs::write(&path, text).unwrap();
    scenario::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn final_share(res: &techdiff::run::RunResults, country: usize) -> Vec<f64> {
    (0..res.replications)
        .map(|r| res.get(Variant::Policy, r).countries[country].adoption_share)
        .collect()
}

#[test]
fn extraterritorial_rule_reaches_re_exports_of_controllers_innovations_only() {
    let dir = tempfile::tempdir().unwrap();
    let (c, t, x) = (0, 1, 2);
    let body = |origin_first: &str, ext: bool| {
        format!(
            r#"[[innovation.initial]]
sector = "general"
holders = [{origin_first}]
quality = 1.0
[policy.cooperation]
chilling = 1.0
[[policy.export_control]]
controllers = ["C"]
targets = ["T"]
sectors = {{ general = 1.0 }}
licence_rate = 0.0
extraterritorial = {ext}
"#
        )
    };
    let edges = "C,X,1\nX,T,1\n";
    // The controller's innovation re-exported by X: blocked only with the rule.
    let res = run(&three_countries(
        dir.path(),
        edges,
        &body("\"C\", \"X\"", true),
    ));
    assert_eq!(final_share(&res, t), vec![0.0; 3]);
    let res = run(&three_countries(
        dir.path(),
        edges,
        &body("\"C\", \"X\"", false),
    ));
    assert_eq!(final_share(&res, t), vec![1.0; 3]);
    // X's own innovation passes, and the rule creates no chilling on X -> T
    // (chilling 1 with sensitivity 1 would stop it completely).
    let res = run(&three_countries(
        dir.path(),
        edges,
        &body("\"X\", \"C\"", true),
    ));
    assert_eq!(final_share(&res, t), vec![1.0; 3]);
    assert_eq!(final_share(&res, c), vec![1.0; 3]);
    let _ = x;
}

#[test]
fn chilling_falls_only_on_controller_to_target_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let (t, x) = (1, 2);
    let body = |target: &str| {
        format!(
            r#"[[sector]]
name = "chips"
sensitivity = 1.0
[[sector]]
name = "other"
sensitivity = 1.0
[[innovation.initial]]
sector = "chips"
holders = ["C"]
quality = 1.0
[[innovation.initial]]
sector = "other"
holders = ["C"]
quality = 1.0
[policy.cooperation]
chilling = 1.0
transparency = 0.0
[[policy.export_control]]
controllers = ["C"]
targets = ["{target}"]
sectors = {{ chips = 1.0 }}
licence_rate = 1.0
"#
        )
    };
    let edges = "C,T,1\nC,X,1\n";
    // T is the target: the covered chips item passes at its gate (1), the
    // uncovered item is chilled to nothing; X is not chilled.
    let res = run(&three_countries(dir.path(), edges, &body("T")));
    assert_eq!(final_share(&res, t), vec![0.5; 3]);
    assert_eq!(final_share(&res, x), vec![1.0; 3]);
    // Make X the target instead: now T gets both.
    let res = run(&three_countries(dir.path(), edges, &body("X")));
    assert_eq!(final_share(&res, t), vec![1.0; 3]);
    assert_eq!(final_share(&res, x), vec![0.5; 3]);
}

#[test]
fn full_transparency_removes_perception_noise() {
    let regime = r#"[trust]
cross_bloc = 0.5
retaliation = true
retaliation_threshold = 0.1
min_trust = 0.5
[policy.cooperation]
chilling = 0.3
[[policy.export_control]]
controllers = ["bloc:A"]
sectors = { chips = 0.5, ai = 0.3 }
licence_rate = 0.2
"#;
    let toml = world(regime);
    let run_with = |noise: &str, transparency: &str| {
        outputs(
            &toml,
            &[
                &format!("trust.perception_noise={noise}"),
                &format!("policy.cooperation.transparency={transparency}"),
            ],
        )
    };
    assert_eq!(run_with("0.8", "1.0"), run_with("0.0", "1.0"));
    assert_ne!(run_with("0.8", "0.0"), run_with("0.0", "0.0"));
}

const TWO_COUNTRIES: &str = r#"steps = 60
replications = 5
seed = 5
[[world.country]]
code = "P"
bloc = "A"
[[world.country]]
code = "Q"
bloc = "B"
[network]
kind = "complete"
[innovation]
per_step = 4
[trust]
cross_bloc = 0.5
recovery = 0.1
erosion = 1.0
retaliation = true
retaliation_threshold = 0.3
min_trust = 0.45
reciprocity = 1.0
perception_noise = 1.5
[policy.cooperation]
transparency = 0.0
[[policy.export_control]]
name = "modest"
controllers = ["P"]
targets = ["Q"]
sectors = { general = 0.2 }
licence_rate = 0.5
"#;

#[test]
fn misperception_starts_a_retaliation_chain_and_clear_signals_do_not() {
    let opened = |overrides: &[&str]| {
        let loaded = load(TWO_COUNTRIES, overrides);
        let res = run(&loaded);
        // (by P, by Q) summed over replications and steps.
        let mut totals = (0.0, 0.0);
        for r in 0..loaded.scenario.replications {
            totals.0 += series(&res, Variant::Policy, r, "bloc:A", "retaliations_opened")
                .iter()
                .sum::<f64>();
            totals.1 += series(&res, Variant::Policy, r, "bloc:B", "retaliations_opened")
                .iter()
                .sum::<f64>();
            assert_eq!(
                series(
                    &res,
                    Variant::Counterfactual,
                    r,
                    "all",
                    "retaliations_opened"
                )
                .iter()
                .sum::<f64>(),
                0.0
            );
        }
        totals
    };
    // Restrictiveness is 0.2 * (1 - 0.5) = 0.1, below the threshold 0.3: only
    // misperception can push it over. Q retaliates, then P counter-retaliates.
    let (by_p, by_q) = opened(&[]);
    assert!(by_q >= 1.0, "Q never retaliated");
    assert!(by_p >= 1.0, "P never counter-retaliated: no chain");
    assert_eq!(opened(&["trust.perception_noise=0"]), (0.0, 0.0));
    // A counter-regime that would cover nothing is no retaliation.
    assert_eq!(opened(&["trust.reciprocity=0"]), (0.0, 0.0));
}

#[test]
fn every_shipped_scenario_validates_and_runs() {
    let dir = repo().join("scenarios");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            names.push(path);
        }
    }
    names.sort();
    let expected = ["baseline", "blanket", "decoupling", "managed", "tightening"];
    for stem in expected {
        assert!(
            names.iter().any(|p| p.file_stem().unwrap() == stem),
            "scenarios/{stem}.toml is missing"
        );
    }
    for path in &names {
        let overrides = vec!["steps=4".to_string(), "replications=2".to_string()];
        let loaded = scenario::load(path, &overrides).unwrap_or_else(|e| panic!("{e}"));
        let res = techdiff::run::run_scenario(&loaded.scenario, 2, &|| {});
        let all: Vec<usize> = (0..loaded.scenario.world.len()).collect();
        let cost = techdiff::output::securitization_cost(&loaded.scenario, &res, &all, false);
        assert!(
            cost.iter().all(|c| c.is_finite()),
            "{}: cost {cost:?}",
            path.display()
        );
        if loaded.scenario.regimes.is_empty() {
            assert!(cost.iter().all(|&c| c == 0.0));
        }
    }
}
