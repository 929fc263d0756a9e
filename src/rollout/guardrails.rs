//! Reading the guardrails on this instance: the named breakers' states, the p99 of Realtime
//! writes, and dual-path consistency (through [`consistency_percent`], the one place that
//! asks the validator).

use serde_json::json;

use super::deps::GuardrailSources;
use super::model::{GuardrailReading, Guardrails, Health};
use crate::governance::passes;
use crate::validator::Validator;

/// The dual-path consistency (matched / expected, in percent, every category together) over
/// the validator's current window; `None` while there is no reading (the validator off, or
/// nothing resolved in the window yet): a `min_consistency` guardrail then neither breaches
/// nor blocks, and reads "no data".
pub fn consistency_percent(validator: &Validator) -> Option<f64> {
    let summary = validator.summary();
    if !summary.enabled {
        return None;
    }
    summary.overall.consistency_percent
}

/// Every configured guardrail, as it reads now.
pub fn read(sources: &GuardrailSources, guardrails: &Guardrails) -> Vec<GuardrailReading> {
    let mut readings = Vec::new();
    for name in &guardrails.breaker_closed {
        let breaker_state = sources.breakers.get(name).map(|b| b.state());
        readings.push(GuardrailReading {
            guardrail: format!("breaker_closed:{name}"),
            limit: json!("closed"),
            reading: breaker_state.map(|s| json!(s.as_str())),
            health: match breaker_state {
                None => Health::NoData,
                Some(s) if passes(s) => Health::Ok,
                Some(_) => Health::Breached,
            },
        });
    }
    if let Some(floor) = guardrails.min_consistency {
        let reading = consistency_percent(&sources.validator);
        readings.push(GuardrailReading {
            guardrail: "min_consistency".into(),
            limit: json!(floor),
            reading: Some(reading.map_or(json!("no data"), |c| json!(c))),
            health: match reading {
                None => Health::NoData,
                Some(c) if c >= floor => Health::Ok,
                Some(_) => Health::Breached,
            },
        });
    }
    if let Some(ceiling) = guardrails.max_realtime_p99_ms {
        let reading = sources.realtime.status().write_latency.p99_ms;
        readings.push(GuardrailReading {
            guardrail: "max_realtime_p99_ms".into(),
            limit: json!(ceiling),
            reading: Some(reading.map_or(json!("no data"), |p| json!(p))),
            health: match reading {
                None => Health::NoData,
                Some(p) if p <= ceiling => Health::Ok,
                Some(_) => Health::Breached,
            },
        });
    }
    readings
}
