//! The per-step outputs of MODEL.md section 7: which (group, metric) series a
//! scenario produces, in a fixed order, so a step's metrics are one flat
//! vector of numbers (NaN where a figure is undefined, e.g. a diffusion lag
//! before any adoption; writers leave such rows out).

use crate::model::{Income, Scenario};

/// A metric's name as written in outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    LogProductivity,
    LogProductivityGrowth,
    FrontierGap,
    AdoptionShare,
    CoinventionShare,
    ActiveRegimes,
    Controllers,
    AffectedEconomies,
    ControlledShare,
    CrossBlocAdoptionShare,
    MeanTrust,
    RetaliationsOpened,
    DiffusionLag,
    DiffusionLagWithinBloc,
    DiffusionLagCrossBloc,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::LogProductivity => "log_productivity",
            Metric::LogProductivityGrowth => "log_productivity_growth",
            Metric::FrontierGap => "frontier_gap",
            Metric::AdoptionShare => "adoption_share",
            Metric::CoinventionShare => "coinvention_share",
            Metric::ActiveRegimes => "active_regimes",
            Metric::Controllers => "controllers",
            Metric::AffectedEconomies => "affected_economies",
            Metric::ControlledShare => "controlled_share",
            Metric::CrossBlocAdoptionShare => "cross_bloc_adoption_share",
            Metric::MeanTrust => "mean_trust",
            Metric::RetaliationsOpened => "retaliations_opened",
            Metric::DiffusionLag => "diffusion_lag",
            Metric::DiffusionLagWithinBloc => "diffusion_lag_within_bloc",
            Metric::DiffusionLagCrossBloc => "diffusion_lag_cross_bloc",
        }
    }

    /// Metrics that are means over countries also come GDP-weighted.
    pub fn has_gdp_weighted(self) -> bool {
        matches!(
            self,
            Metric::LogProductivity
                | Metric::LogProductivityGrowth
                | Metric::FrontierGap
                | Metric::AdoptionShare
                | Metric::MeanTrust
        )
    }
}

/// What a group is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupKind {
    /// Countries (all, a bloc, an income group).
    Countries(Vec<usize>),
    /// All countries, restricted to the innovations of one sector.
    Sector(usize),
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub kind: GroupKind,
}

/// One output series.
#[derive(Debug, Clone)]
pub struct Series {
    pub group: usize,
    pub metric: Metric,
    pub gdp_weighted: bool,
}

impl Series {
    pub fn metric_name(&self) -> String {
        if self.gdp_weighted {
            format!("{}_gdp_weighted", self.metric.name())
        } else {
            self.metric.name().to_string()
        }
    }
}

/// The groups and series of a scenario, in output order.
#[derive(Debug, Clone)]
pub struct Layout {
    pub groups: Vec<Group>,
    pub series: Vec<Series>,
}

const COUNTRY_METRICS: [Metric; 12] = [
    Metric::LogProductivity,
    Metric::LogProductivityGrowth,
    Metric::FrontierGap,
    Metric::AdoptionShare,
    Metric::CoinventionShare,
    Metric::Controllers,
    Metric::AffectedEconomies,
    Metric::CrossBlocAdoptionShare,
    Metric::MeanTrust,
    Metric::RetaliationsOpened,
    Metric::DiffusionLag,
    Metric::DiffusionLagWithinBloc,
];

impl Layout {
    pub fn new(sc: &Scenario) -> Layout {
        let n = sc.world.len();
        let mut groups = vec![Group {
            name: "all".into(),
            kind: GroupKind::Countries((0..n).collect()),
        }];
        for (b, label) in sc.world.blocs.iter().enumerate() {
            groups.push(Group {
                name: format!("bloc:{label}"),
                kind: GroupKind::Countries(
                    (0..n)
                        .filter(|&i| sc.world.countries[i].bloc == b)
                        .collect(),
                ),
            });
        }
        for inc in Income::ALL {
            let members: Vec<usize> = (0..n)
                .filter(|&i| sc.world.countries[i].income == inc)
                .collect();
            if !members.is_empty() {
                groups.push(Group {
                    name: format!("income:{}", inc.as_str()),
                    kind: GroupKind::Countries(members),
                });
            }
        }
        for (s, sector) in sc.sectors.iter().enumerate() {
            groups.push(Group {
                name: format!("sector:{}", sector.name),
                kind: GroupKind::Sector(s),
            });
        }
        let mut series = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let metrics: Vec<Metric> = match group.kind {
                GroupKind::Countries(_) => {
                    let mut m = COUNTRY_METRICS.to_vec();
                    m.push(Metric::DiffusionLagCrossBloc);
                    if g == 0 {
                        m.insert(5, Metric::ActiveRegimes);
                        m.push(Metric::ControlledShare);
                    }
                    m
                }
                GroupKind::Sector(_) => vec![
                    Metric::AdoptionShare,
                    Metric::ControlledShare,
                    Metric::DiffusionLag,
                ],
            };
            for metric in metrics {
                series.push(Series {
                    group: g,
                    metric,
                    gdp_weighted: false,
                });
                if metric.has_gdp_weighted() && matches!(group.kind, GroupKind::Countries(_)) {
                    series.push(Series {
                        group: g,
                        metric,
                        gdp_weighted: true,
                    });
                }
            }
        }
        Layout { groups, series }
    }

    /// Position of a series, if the layout has it.
    pub fn find(&self, group: &str, metric: &str) -> Option<usize> {
        self.series
            .iter()
            .position(|s| self.groups[s.group].name == group && s.metric_name() == metric)
    }
}
