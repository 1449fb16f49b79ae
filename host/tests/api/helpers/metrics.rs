//! `/metrics` as a test reads it: scraped as the admin, parsed strictly.

use std::collections::HashMap;

use super::TestApp;

/// Parses the text format strictly enough to catch a malformed line:
/// `name{label="value",...} number`, comments, blank lines.
pub fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            assert!(
                line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

/// `/metrics` as the admin, expected as 200 and Prometheus text, parsed.
pub async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    parse(&res.text().await.unwrap())
}

/// A series' value; 0 for one not (yet) exported.
pub fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}
