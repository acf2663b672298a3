//! The scenario file as the user wrote it: a serde mirror of the TOML keys of
//! MODEL.md, with every table closed to unknown keys. Nothing here is checked
//! beyond types; `super::build` turns it into a validated [`super::Scenario`].

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<String>,
    pub description: Option<String>,
    pub steps: Option<i64>,
    pub start_year: Option<i64>,
    pub seed: Option<i64>,
    pub replications: Option<i64>,
    pub world: Option<WorldFile>,
    pub network: Option<NetworkFile>,
    #[serde(default)]
    pub sector: Vec<SectorFile>,
    pub innovation: Option<InnovationFile>,
    pub diffusion: Option<DiffusionFile>,
    pub trust: Option<TrustFile>,
    pub policy: Option<PolicyFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldFile {
    /// Path of a countries CSV, relative to the scenario file.
    pub countries: Option<String>,
    #[serde(default)]
    pub country: Vec<CountryFile>,
    pub synthetic: Option<SyntheticFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryFile {
    pub code: String,
    pub name: Option<String>,
    pub bloc: Option<String>,
    pub income: Option<String>,
    pub gdp: Option<f64>,
    pub rd: Option<f64>,
    pub absorptive: Option<f64>,
    pub openness: Option<f64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub log_productivity: Option<f64>,
    pub retaliation_threshold: Option<f64>,
    pub specialization: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticFile {
    pub count: i64,
    /// Bloc label -> share of countries (normalised).
    pub blocs: Option<BTreeMap<String, f64>>,
    /// Income group -> share of countries (normalised), assigned by GDP rank.
    pub income: Option<BTreeMap<String, f64>>,
    pub gdp: Option<DistributionFile>,
    pub rd: Option<DistributionFile>,
    pub absorptive: Option<DistributionFile>,
    pub openness: Option<DistributionFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributionFile {
    /// constant | uniform | lognormal | beta
    pub distribution: String,
    pub value: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mu: Option<f64>,
    pub sigma: Option<f64>,
    pub alpha: Option<f64>,
    pub beta: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub kind: Option<String>,
    pub normalize: Option<String>,
    pub source_exponent: Option<f64>,
    pub target_exponent: Option<f64>,
    pub distance_exponent: Option<f64>,
    pub distance_offset_km: Option<f64>,
    pub file: Option<String>,
    pub symmetric: Option<bool>,
    pub p: Option<f64>,
    pub m: Option<i64>,
    pub k: Option<i64>,
    pub rewire: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorFile {
    pub name: String,
    pub sensitivity: Option<f64>,
    pub weight: Option<f64>,
    pub share: Option<f64>,
    pub step_scale: Option<f64>,
    pub reinvention: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InnovationFile {
    pub per_step: Option<f64>,
    pub frontier_growth: Option<f64>,
    pub coinvention: Option<f64>,
    pub knowledge_elasticity: Option<f64>,
    #[serde(default)]
    pub initial: Vec<InitialFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialFile {
    pub sector: String,
    pub holders: Vec<String>,
    pub quality: Option<f64>,
    pub count: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffusionFile {
    pub beta: Option<f64>,
    pub trust_exponent: Option<f64>,
    pub reinvention: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    pub same_bloc: Option<f64>,
    pub cross_bloc: Option<f64>,
    pub recovery: Option<f64>,
    pub erosion: Option<f64>,
    pub perception_noise: Option<f64>,
    pub retaliation: Option<bool>,
    pub retaliation_threshold: Option<f64>,
    pub min_trust: Option<f64>,
    pub reciprocity: Option<f64>,
    #[serde(default)]
    pub pair: Vec<TrustPairFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPairFile {
    /// The country that trusts (i in T_ij).
    pub truster: String,
    /// The country trusted (j in T_ij).
    pub trusted: String,
    pub initial: f64,
    /// Also set the reverse pair.
    pub symmetric: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub cooperation: Option<CooperationFile>,
    #[serde(default)]
    pub export_control: Vec<ExportControlFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CooperationFile {
    pub positive_list: Option<Vec<String>>,
    pub incentive: Option<f64>,
    pub prohibited_threshold: Option<f64>,
    pub transparency: Option<f64>,
    pub chilling: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportControlFile {
    pub name: Option<String>,
    #[serde(default)]
    pub controllers: Vec<String>,
    pub targets: Option<Vec<String>>,
    #[serde(default, rename = "except")]
    pub except: Vec<String>,
    #[serde(default)]
    pub sectors: BTreeMap<String, f64>,
    pub licence_rate: Option<f64>,
    pub cost: Option<f64>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub extraterritorial: Option<bool>,
    pub schedule: Option<Vec<(f64, f64)>>,
}
