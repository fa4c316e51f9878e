//! Which sagas a run starts: a repeating schedule of the design's scenario rows, and the order
//! each saga carries.

use saga_protos::{
    Item, Order,
    scenario::{SCENARIOS, Scenario},
};
use std::str::FromStr;

/// Which scenarios the sagas exercise, as a repeating schedule of the design's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// `(row number 1-7, weight)`, in the order given.
    weights: Vec<(usize, u32)>,
    schedule: Vec<&'static Scenario>,
}

impl Mix {
    /// The scenario of the `i`-th saga.
    pub fn scenario(&self, i: usize) -> &'static Scenario {
        self.schedule[i % self.schedule.len()]
    }

    fn new(weights: Vec<(usize, u32)>) -> Result<Self, String> {
        if weights.iter().all(|&(_, w)| w == 0) {
            return Err("the mix needs at least one positive weight".into());
        }
        // Smooth weighted round robin: the rows interleave instead of running in blocks, so
        // any window of the run sees about the same mix.
        let total: i64 = weights.iter().map(|&(_, w)| i64::from(w)).sum();
        let mut current = vec![0i64; weights.len()];
        let mut schedule = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, &(_, w)) in current.iter_mut().zip(&weights) {
                *c += i64::from(w);
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|&(i, c)| (*c, std::cmp::Reverse(i)))
                .expect("weights are not empty");
            current[best] -= total;
            schedule.push(&SCENARIOS[weights[best].0 - 1]);
        }
        Ok(Self { weights, schedule })
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let success = SCENARIOS.len();
        match s.trim() {
            "success" => return Self::new(vec![(success, 1)]),
            "all" => return Self::new((1..=success).map(|row| (row, 1)).collect()),
            _ => {}
        }
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (row, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected ROW=WEIGHT, e.g. 7=90"))?;
            let row: usize = row
                .trim()
                .parse()
                .ok()
                .filter(|r| (1..=success).contains(r))
                .ok_or_else(|| format!("`{part}`: the row must be 1 to {success}"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| *w <= 10_000)
                .ok_or_else(|| format!("`{part}`: the weight must be 0 to 10000"))?;
            weights.push((row, weight));
        }
        if weights.is_empty() {
            return Err("expected success, all, or ROW=WEIGHT,… (e.g. 7=90,5=10)".into());
        }
        Self::new(weights)
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(row, w)| format!("{row}={w}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The order of one benchmark saga: the same shape the Python peer's load generator sends, one
/// item with a random id, so sagas do not compete for one item's stock.
pub fn bench_order(scenario: &Scenario) -> Order {
    let item = uuid::Uuid::new_v4().as_u128() % 1_000_000 + 1;
    Order {
        order_id: scenario.fresh_order_id(),
        order_date: "2018-10-19T10:50:16+08:00".into(),
        customer_id: "c1".into(),
        items: vec![Item {
            item_id: item.to_string(),
            qty: 1.0,
            description: "x".into(),
            unit_price: 1.5,
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_interleave() {
        let all: Mix = "all".parse().unwrap();
        let prefixes: Vec<&str> = (0..7).map(|i| all.scenario(i).prefix).collect();
        assert_eq!(prefixes, ["1", "11", "2", "22", "3", "33", ""]);

        let success: Mix = "success".parse().unwrap();
        assert!((0..10).all(|i| success.scenario(i).completes));

        let mix: Mix = "7=90,5=10".parse().unwrap();
        let failing = (0..100).filter(|&i| !mix.scenario(i).completes).count();
        assert_eq!(failing, 10);
        // Interleaved: the first ten sagas already include one of the rarer row.
        assert!((0..10).any(|i| mix.scenario(i).prefix == "3"));
        assert_eq!(mix.to_string(), "7=90,5=10");

        for bad in ["", "8=1", "0=1", "7", "7=x", "7=0"] {
            assert!(bad.parse::<Mix>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn bench_orders_are_valid_and_select_their_scenario() {
        for s in &SCENARIOS {
            let order = bench_order(s);
            saga_protos::validate_order(&order).unwrap();
            assert_eq!(Scenario::for_order_id(&order.order_id), s);
        }
    }
}
