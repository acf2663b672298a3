//! Invariants over randomly drawn small scenarios (proptest): shares stay in
//! [0, 1], productivity never falls, holdings only grow, trust stays in
//! [0, 1], and the counterfactual never has regimes or retaliations.

mod common;

use proptest::prelude::*;
use techdiff::sim::metrics::Layout;
use techdiff::sim::{Simulation, Variant};

#[allow(clippy::too_many_arguments)]
fn scenario(
    count: usize,
    scope: f64,
    licence: f64,
    chilling: f64,
    transparency: f64,
    noise: f64,
    tau: f64,
    retaliation: bool,
    seed: u64,
) -> String {
    format!(
        r#"steps = 12
seed = {seed}
[world.synthetic]
count = {count}
blocs = {{ A = 0.5, B = 0.5 }}
gdp = {{ distribution = "lognormal", mu = 0.0, sigma = 1.0 }}
absorptive = {{ distribution = "uniform", min = 0.2, max = 1.0 }}
[network]
kind = "barabasi_albert"
m = 2
[[sector]]
name = "chips"
sensitivity = 0.9
[[sector]]
name = "health"
sensitivity = 0.3
[innovation]
per_step = 15
coinvention = 0.8
[trust]
cross_bloc = 0.5
perception_noise = {noise}
retaliation = {retaliation}
retaliation_threshold = 0.05
min_trust = 0.5
[policy.cooperation]
positive_list = ["health"]
incentive = 0.2
chilling = {chilling}
transparency = {transparency}
prohibited_threshold = {tau}
[[policy.export_control]]
controllers = ["bloc:A"]
sectors = {{ chips = {scope}, health = {scope} }}
licence_rate = {licence}
extraterritorial = true
schedule = [[0, 0.5], [8, 1.5]]
"#
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn outputs_stay_in_range_and_holdings_only_grow(
        count in 3usize..12,
        scope in 0.0f64..1.0,
        licence in 0.0f64..1.0,
        chilling in 0.0f64..1.0,
        transparency in 0.0f64..1.0,
        noise in 0.0f64..2.0,
        tau in 0.0f64..1.0,
        retaliation in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let text = scenario(count, scope, licence, chilling, transparency, noise, tau, retaliation, seed);
        let loaded = common::load(&text, &[]);
        let sc = &loaded.scenario;
        let layout = Layout::new(sc);
        for variant in [Variant::Policy, Variant::Counterfactual] {
            let mut sim = Simulation::new(sc, &layout, 0, variant);
            let mut prev_l = sim.log_productivity().to_vec();
            let mut prev_held = sim.held_counts().to_vec();
            for _ in 0..sc.steps {
                let rec = sim.step();
                for (s, v) in layout.series.iter().zip(&rec.values) {
                    let name = s.metric_name();
                    if name.contains("share") && !v.is_nan() {
                        prop_assert!((0.0..=1.0).contains(v), "{} = {}", name, v);
                    }
                }
                for (i, (&l, &p)) in sim.log_productivity().iter().zip(&prev_l).enumerate() {
                    prop_assert!(l >= p, "country {} productivity fell from {} to {}", i, p, l);
                }
                for (&h, &p) in sim.held_counts().iter().zip(&prev_held) {
                    prop_assert!(h >= p);
                }
                for i in 0..count {
                    for j in 0..count {
                        let t = sim.trust(i, j);
                        prop_assert!((0.0..=1.0).contains(&t));
                    }
                }
                prev_l = sim.log_productivity().to_vec();
                prev_held = sim.held_counts().to_vec();
            }
            if variant == Variant::Counterfactual {
                prop_assert!(sim.regimes().is_empty());
            }
        }
    }
}
