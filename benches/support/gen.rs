//! Synthetic config directories for the reload benchmarks: `n` realistic
//! experiments (targeting, traffic, weighted variants, salts, metrics) spread over
//! files of 100, the way a team with many experiments would lay them out.

/// One experiment; `tag` changes its name only (a content change that is safe).
pub fn experiment(i: usize, tag: &str) -> String {
    format!(
        r#"{{"experimentId":"exp-{i:05}","name":"Experiment {i} {tag}","status":"running","trafficAllocation":0.{t},
  "variants":[{{"key":"control","weight":2}},{{"key":"variant-a","weight":1}},{{"key":"variant-b","weight":1}}],
  "assignment":{{"strategy":"consistent_hash","hashKey":"userId","salt":"salt-{i}"}},
  "targeting":{{"include":["region:US","region:EU","accountType:free"],"exclude":["internal:true","bot:true"]}},
  "metrics":{{"primary":{{"name":"conversion_{i}","type":"conversion","direction":"increase"}}}}}}"#,
        t = 1 + i % 9
    )
}

/// A config volume's files holding `n` experiments: `part-NNN.json` of up to 100 each.
pub fn payload(n: usize, tag: &str) -> Vec<(String, String)> {
    (0..n)
        .step_by(100)
        .enumerate()
        .map(|(f, start)| {
            let items: Vec<String> = (start..(start + 100).min(n))
                .map(|i| experiment(i, tag))
                .collect();
            (
                format!("part-{f:03}.json"),
                format!("[{}]", items.join(",\n")),
            )
        })
        .collect()
}
