//! The validated model of MODEL.md: a world of countries and sectors, a contact
//! network, innovation, diffusion and trust parameters, and the policy. Every
//! invariant the simulation relies on (ranges, sizes, resolved references) is
//! established when a [`Scenario`] is built, so the core never re-checks input.

use ndarray::Array2;
use serde::Serialize;

/// World Bank income group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Income {
    High,
    UpperMiddle,
    LowerMiddle,
    Low,
}

impl Income {
    pub const ALL: [Income; 4] = [
        Income::High,
        Income::UpperMiddle,
        Income::LowerMiddle,
        Income::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Income::High => "high",
            Income::UpperMiddle => "upper_middle",
            Income::LowerMiddle => "lower_middle",
            Income::Low => "low",
        }
    }

    pub fn parse(s: &str) -> Option<Income> {
        Income::ALL.into_iter().find(|i| i.as_str() == s)
    }
}

/// A country: the agent.
#[derive(Debug, Clone, Serialize)]
pub struct Country {
    pub code: String,
    pub name: String,
    /// Index into [`World::blocs`].
    pub bloc: usize,
    pub income: Income,
    pub gdp: f64,
    pub rd: f64,
    pub absorptive: f64,
    pub openness: f64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Initial log productivity l_i(0) before initial innovations.
    pub log_productivity: f64,
    /// theta_i, the country's own retaliation threshold.
    pub retaliation_threshold: f64,
    /// Sector shares of the country's new innovations (normalised), if it
    /// overrides the world's `share`.
    pub specialization: Option<Vec<f64>>,
}

/// A technology sector.
#[derive(Debug, Clone, Serialize)]
pub struct Sector {
    pub name: String,
    /// sigma_s in `[0, 1]`.
    pub sensitivity: f64,
    /// omega_s >= 0.
    pub weight: f64,
    /// pi_s, normalised over sectors.
    pub share: f64,
    pub step_scale: f64,
    /// nu_s: the scenario default unless the sector overrides it.
    pub reinvention: f64,
}

/// Countries, their blocs and the contact network.
#[derive(Debug, Clone)]
pub struct World {
    pub countries: Vec<Country>,
    /// Bloc labels in order of first appearance.
    pub blocs: Vec<String>,
    /// w[[j, i]]: contact weight from source j to recipient i, normalised as
    /// the scenario asks. Zero on the diagonal.
    pub weights: Array2<f64>,
    /// w~[[i, j]]: i's contact share with j for co-invention, (w + w^T)
    /// row-normalised, zero on the diagonal.
    pub contact_share: Array2<f64>,
}

impl World {
    pub fn len(&self) -> usize {
        self.countries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.countries.is_empty()
    }

    pub fn index_of(&self, code: &str) -> Option<usize> {
        self.countries.iter().position(|c| c.code == code)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InitialInnovation {
    pub sector: usize,
    /// Country indices; the first is the origin.
    pub holders: Vec<usize>,
    pub quality: f64,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct InnovationParams {
    pub per_step: f64,
    pub frontier_growth: f64,
    pub coinvention: f64,
    pub knowledge_elasticity: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffusionParams {
    pub beta: f64,
    pub trust_exponent: f64,
    pub reinvention: f64,
}

#[derive(Debug, Clone)]
pub struct TrustParams {
    pub recovery: f64,
    pub erosion: f64,
    pub perception_noise: f64,
    pub retaliation: bool,
    pub min_trust: f64,
    pub reciprocity: f64,
    /// T0[[i, j]]: i's initial (and resting) trust in j.
    pub initial: Array2<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cooperation {
    /// Per sector: on the positive list.
    pub positive_list: Vec<bool>,
    pub incentive: f64,
    pub prohibited_threshold: f64,
    pub transparency: f64,
    pub chilling: f64,
}

impl Cooperation {
    /// U = 1 - transparency.
    pub fn uncertainty(&self) -> f64 {
        1.0 - self.transparency
    }
}

/// An export-control regime with its selectors resolved to countries.
#[derive(Debug, Clone, Serialize)]
pub struct ExportControl {
    pub name: String,
    /// Per country: is a controller.
    pub controllers: Vec<bool>,
    /// Per country: is a target (selected, not excepted, not a controller:
    /// a regime never covers a transfer to one of its own controllers).
    pub targets: Vec<bool>,
    /// (sector index, base scope r in `[0, 1]`), sorted by sector.
    pub sectors: Vec<(usize, f64)>,
    pub licence_rate: f64,
    pub cost: f64,
    pub start: u32,
    /// Last active step (inclusive); `None` means never ends.
    pub end: Option<u32>,
    pub extraterritorial: bool,
    /// (step, multiplier) pairs, sorted by step; empty means multiplier 1.
    pub schedule: Vec<(f64, f64)>,
}

impl ExportControl {
    /// The gate a covered transfer passes with: l / (1 + c).
    pub fn gate(&self) -> f64 {
        self.licence_rate / (1.0 + self.cost)
    }

    pub fn is_active(&self, step: u32) -> bool {
        step >= self.start && self.end.is_none_or(|e| step <= e)
    }

    /// The schedule multiplier at `step`: linear between points, flat outside.
    pub fn multiplier(&self, step: u32) -> f64 {
        let s = &self.schedule;
        if s.is_empty() {
            return 1.0;
        }
        let t = f64::from(step);
        if t <= s[0].0 {
            return s[0].1;
        }
        if t >= s[s.len() - 1].0 {
            return s[s.len() - 1].1;
        }
        let k = s.partition_point(|p| p.0 <= t);
        let (t0, m0) = s[k - 1];
        let (t1, m1) = s[k];
        m0 + (m1 - m0) * (t - t0) / (t1 - t0)
    }

    /// Base scope times schedule, clamped to `[0, 1]`, before the prohibited zone
    /// and the positive list.
    pub fn scheduled_scope(&self, base: f64, step: u32) -> f64 {
        (base * self.multiplier(step)).clamp(0.0, 1.0)
    }
}

/// A validated scenario: everything the simulation needs.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub steps: u32,
    pub start_year: i64,
    pub seed: u64,
    pub replications: u32,
    pub world: World,
    pub sectors: Vec<Sector>,
    pub innovation: InnovationParams,
    pub initial: Vec<InitialInnovation>,
    pub diffusion: DiffusionParams,
    pub trust: TrustParams,
    pub cooperation: Cooperation,
    pub regimes: Vec<ExportControl>,
}

impl Scenario {
    /// Is sector `s` controllable at all: inside the prohibited zone and not on
    /// the positive list.
    pub fn controllable(&self, s: usize) -> bool {
        self.sectors[s].sensitivity >= self.cooperation.prohibited_threshold
            && !self.cooperation.positive_list[s]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regime(schedule: Vec<(f64, f64)>) -> ExportControl {
        ExportControl {
            name: "r".into(),
            controllers: vec![true, false],
            targets: vec![false, true],
            sectors: vec![(0, 0.5)],
            licence_rate: 0.2,
            cost: 1.0,
            start: 2,
            end: Some(4),
            extraterritorial: false,
            schedule,
        }
    }

    #[test]
    fn schedule_is_linear_inside_and_flat_outside() {
        let r = regime(vec![(0.0, 0.5), (10.0, 1.5)]);
        assert_eq!(r.multiplier(0), 0.5);
        assert!((r.multiplier(5) - 1.0).abs() < 1e-12);
        assert_eq!(r.multiplier(20), 1.5);
        assert_eq!(r.scheduled_scope(0.8, 20), 1.0);
        assert_eq!(regime(vec![]).multiplier(7), 1.0);
    }

    #[test]
    fn activity_is_inclusive() {
        let r = regime(vec![]);
        assert!(!r.is_active(1));
        assert!(r.is_active(2) && r.is_active(4));
        assert!(!r.is_active(5));
        assert!((r.gate() - 0.1).abs() < 1e-15);
    }
}
