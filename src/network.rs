//! Contact networks (MODEL.md section 1): gravity from coordinates, edge
//! lists, and seeded synthetic graphs; normalisation; the symmetric contact
//! shares used to pick co-inventors. Pure functions of their inputs.

use ndarray::Array2;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::rng;

pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Great-circle distance (haversine) in km between two (lat, lon) in degrees.
pub fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let (s_lat, s_lon) = (
        libm::sin((lat2 - lat1) / 2.0),
        libm::sin((lon2 - lon1) / 2.0),
    );
    let h = s_lat * s_lat + libm::cos(lat1) * libm::cos(lat2) * (s_lon * s_lon);
    2.0 * EARTH_RADIUS_KM * libm::asin(h.sqrt().min(1.0))
}

/// A position drawn uniformly on the sphere: (lat, lon) in degrees.
pub fn random_position(rng: &mut ChaCha8Rng) -> (f64, f64) {
    let z = 2.0 * rng::uniform(rng) - 1.0;
    let lon = 360.0 * rng::uniform(rng) - 180.0;
    (libm::asin(z).to_degrees(), lon)
}

#[derive(Debug, Clone, Copy)]
pub struct GravityParams {
    pub source_exponent: f64,
    pub target_exponent: f64,
    pub distance_exponent: f64,
    pub distance_offset_km: f64,
}

/// w[[j, i]] = g_j^a g_i^b / (d_ji + d0)^c for j != i.
pub fn gravity(gdp: &[f64], positions: &[(f64, f64)], p: GravityParams) -> Array2<f64> {
    let n = gdp.len();
    Array2::from_shape_fn((n, n), |(j, i)| {
        if i == j {
            0.0
        } else {
            let d = great_circle_km(positions[j], positions[i]);
            libm::pow(gdp[j], p.source_exponent) * libm::pow(gdp[i], p.target_exponent)
                / libm::pow(d + p.distance_offset_km, p.distance_exponent)
        }
    })
}

/// Weights from (source, target, weight) triples; repeated rows add up,
/// self-loops are ignored, `symmetric` adds W^T.
pub fn from_edges(n: usize, edges: &[(usize, usize, f64)], symmetric: bool) -> Array2<f64> {
    let mut w = Array2::zeros((n, n));
    for &(j, i, x) in edges {
        if i != j {
            w[[j, i]] += x;
        }
    }
    if symmetric {
        let t = w.t().to_owned();
        w += &t;
    }
    w
}

/// Undirected unit-weight graph from an edge list of unordered pairs.
fn undirected(n: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Array2<f64> {
    let mut w = Array2::zeros((n, n));
    for (a, b) in pairs {
        if a != b {
            w[[a, b]] = 1.0;
            w[[b, a]] = 1.0;
        }
    }
    w
}

pub fn complete(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, n), |(j, i)| if i == j { 0.0 } else { 1.0 })
}

pub fn erdos_renyi(n: usize, p: f64, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let mut pairs = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            if rng::uniform(rng) < p {
                pairs.push((a, b));
            }
        }
    }
    undirected(n, pairs)
}

/// Barabasi-Albert preferential attachment: a complete core of m + 1 nodes,
/// then each new node links to m distinct existing nodes chosen with
/// probability proportional to degree.
pub fn barabasi_albert(n: usize, m: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let core = (m + 1).min(n);
    let mut pairs = Vec::new();
    // Every edge end once: sampling an entry is sampling by degree.
    let mut ends: Vec<usize> = Vec::new();
    for a in 0..core {
        for b in a + 1..core {
            pairs.push((a, b));
            ends.push(a);
            ends.push(b);
        }
    }
    for v in core..n {
        let mut chosen: Vec<usize> = Vec::with_capacity(m);
        while chosen.len() < m {
            let t = ends[rng.random_range(0..ends.len())];
            if !chosen.contains(&t) {
                chosen.push(t);
            }
        }
        for &t in &chosen {
            pairs.push((v, t));
            ends.push(v);
            ends.push(t);
        }
    }
    undirected(n, pairs)
}

/// Watts-Strogatz small world: a ring where each node links to its k/2
/// nearest neighbours on each side; each edge's far end is rewired with
/// probability `rewire` to a uniformly drawn node that is neither the node
/// itself nor already linked.
// The loops write `adj[a][b]` and `adj[b][a]` together: by index.
#[allow(clippy::needless_range_loop)]
pub fn small_world(n: usize, k: usize, rewire: f64, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let mut adj = vec![vec![false; n]; n];
    let half = k / 2;
    for a in 0..n {
        for d in 1..=half {
            let b = (a + d) % n;
            adj[a][b] = true;
            adj[b][a] = true;
        }
    }
    for d in 1..=half {
        for a in 0..n {
            let b = (a + d) % n;
            if rng::uniform(rng) < rewire {
                let free = (0..n).filter(|&c| c != a && !adj[a][c]).count();
                if free == 0 || !adj[a][b] {
                    continue;
                }
                let mut pick = rng.random_range(0..free);
                let c = (0..n)
                    .filter(|&c| c != a && !adj[a][c])
                    .find(|_| {
                        let hit = pick == 0;
                        pick = pick.saturating_sub(1);
                        hit
                    })
                    .expect("free > 0");
                adj[a][b] = false;
                adj[b][a] = false;
                adj[a][c] = true;
                adj[c][a] = true;
            }
        }
    }
    Array2::from_shape_fn((n, n), |(j, i)| if adj[j][i] { 1.0 } else { 0.0 })
}

/// Scale each recipient's incoming weights (a column of w[[j, i]]) to sum to
/// one; a recipient with none keeps none.
pub fn normalize_by_recipient(w: &mut Array2<f64>) {
    for mut col in w.columns_mut() {
        let s: f64 = col.sum();
        if s > 0.0 {
            col.mapv_inplace(|x| x / s);
        }
    }
}

/// w~[[i, j]]: (w + w^T) row-normalised, zero diagonal.
pub fn contact_share(w: &Array2<f64>) -> Array2<f64> {
    let mut s = w + &w.t();
    s.diag_mut().fill(0.0);
    for mut row in s.rows_mut() {
        let t: f64 = row.sum();
        if t > 0.0 {
            row.mapv_inplace(|x| x / t);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, stream};

    #[test]
    fn haversine_known_distance() {
        // Paris - London, about 344 km.
        let d = great_circle_km((48.8566, 2.3522), (51.5074, -0.1278));
        assert!((d - 343.5).abs() < 2.0, "{d}");
        assert_eq!(great_circle_km((10.0, 10.0), (10.0, 10.0)), 0.0);
    }

    #[test]
    fn normalisation_and_shares() {
        let mut w = from_edges(
            3,
            &[(0, 1, 2.0), (2, 1, 2.0), (0, 1, 4.0), (1, 1, 9.0)],
            false,
        );
        assert_eq!(w[[0, 1]], 6.0);
        assert_eq!(w[[1, 1]], 0.0);
        normalize_by_recipient(&mut w);
        assert!((w[[0, 1]] - 0.75).abs() < 1e-15);
        assert_eq!(w.column(0).sum(), 0.0);
        let s = contact_share(&w);
        for row in s.rows() {
            let t: f64 = row.sum();
            assert!(t == 0.0 || (t - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn synthetic_graphs_are_undirected_with_expected_degrees() {
        let mut r = stream(1, 0, Purpose::World, 0, 1);
        let ba = barabasi_albert(50, 3, &mut r);
        assert_eq!(ba, ba.t());
        let edges = ba.sum() / 2.0;
        assert_eq!(edges, (3 + 3 * 47) as f64);
        let sw = small_world(30, 4, 0.2, &mut r);
        assert_eq!(sw, sw.t());
        assert_eq!(sw.sum() / 2.0, 60.0);
        let er = erdos_renyi(40, 1.0, &mut r);
        assert_eq!(er, complete(40));
    }
}
