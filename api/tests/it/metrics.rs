//! `GET /metrics`: the Prometheus exposition after some traffic, parsed and
//! checked for the values it must report and for well-formed histograms.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::harness::{Backend, TestServer};

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, k: &str) -> &str {
        self.labels.get(k).map_or("", String::as_str)
    }
}

/// Parses the text exposition format (sample lines; comments skipped, but
/// each `# TYPE` is returned by family name).
fn parse(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let old = types.insert(name.to_string(), kind.to_string());
            assert!(old.is_none(), "family {name} declared twice");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, mut rest) = match line.find(['{', ' ']) {
            Some(i) => (&line[..i], &line[i..]),
            None => panic!("bad line {line:?}"),
        };
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices();
            let mut key = String::new();
            let end = loop {
                let (i, c) = chars.next().expect("unterminated labels");
                match c {
                    '}' => break i,
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|x| x.1), Some('"'), "{line}");
                        let mut v = String::new();
                        loop {
                            match chars.next().expect("unterminated value").1 {
                                '"' => break,
                                '\\' => match chars.next().expect("bad escape").1 {
                                    'n' => v.push('\n'),
                                    c @ ('\\' | '"') => v.push(c),
                                    c => panic!("bad escape \\{c} in {line}"),
                                },
                                c => v.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), v);
                    }
                    c => key.push(c),
                }
            };
            rest = &r[end + 1..];
        }
        let value = rest.trim();
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (samples, types)
}

/// A series' labels other than `le`, and its (le, cumulative count) buckets.
type Buckets = BTreeMap<Vec<(String, String)>, Vec<(f64, f64)>>;

/// The single unlabelled sample `name`.
fn value(samples: &[Sample], name: &str) -> f64 {
    let v: Vec<_> = samples.iter().filter(|s| s.name == name).collect();
    assert_eq!(v.len(), 1, "{name}: {v:?}");
    v[0].value
}

/// Checks every series of every histogram family: cumulative buckets in
/// ascending `le` order, non-decreasing, ending in `+Inf` equal to `_count`,
/// with a `_sum`. Returns the number of series checked.
fn check_histograms(samples: &[Sample], types: &HashMap<String, String>) -> usize {
    let mut checked = 0;
    for (family, _) in types.iter().filter(|(_, k)| *k == "histogram") {
        // Series by their labels other than `le`.
        let mut series = Buckets::new();
        for s in samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let le = s.labels["le"].as_str();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let key = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            series.entry(key).or_default().push((le, s.value));
        }
        assert!(!series.is_empty(), "histogram {family} has no buckets");
        for (key, buckets) in series {
            let ctx = format!("{family}{key:?}");
            for w in buckets.windows(2) {
                assert!(w[0].0 < w[1].0, "{ctx}: le not ascending: {buckets:?}");
                assert!(w[0].1 <= w[1].1, "{ctx}: buckets decrease: {buckets:?}");
            }
            let (le, inf) = *buckets.last().unwrap();
            assert_eq!(le, f64::INFINITY, "{ctx}: no +Inf bucket");
            let same = |s: &&Sample| {
                s.labels.len() == key.len() && key.iter().all(|(k, v)| s.labels.get(k) == Some(v))
            };
            let one = |suffix: &str| {
                let v: Vec<_> = samples
                    .iter()
                    .filter(|s| s.name == format!("{family}{suffix}"))
                    .filter(same)
                    .collect();
                assert_eq!(v.len(), 1, "{ctx}: {suffix} lines: {v:?}");
                v[0].value
            };
            assert_eq!(inf, one("_count"), "{ctx}: +Inf bucket != _count");
            assert!(one("_sum") >= 0.0, "{ctx}: negative _sum");
            checked += 1;
        }
    }
    checked
}

async fn scrape(s: &TestServer) -> (Vec<Sample>, HashMap<String, String>) {
    let r = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse(&r.text().await.unwrap())
}

/// Searches for `q` as vera; returns the total.
async fn search(s: &TestServer, q: &str) -> u64 {
    let (code, v) = s.get_json(&format!("/v1/search?q={q}"), Some("vera")).await;
    assert_eq!(code, 200, "{v}");
    v["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_requests_search_and_index_state() {
    let s = TestServer::start(Backend::Sqlite).await;

    // Ready right after start: nothing left to index.
    let (samples, _) = scrape(&s).await;
    // Notification series exist from the start (issue 4), by channel.
    let deliveries: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "kmt_deliveries_total")
        .collect();
    assert_eq!(deliveries.len(), 9, "3 channels x sent/retried/failed");
    assert!(deliveries
        .iter()
        .any(|s| s.labels.get("channel").map(String::as_str) == Some("email")));
    assert_eq!(value(&samples, "kmt_escalations_total"), 0.0);
    assert_eq!(value(&samples, "kmt_indexer_ready"), 1.0);
    assert_eq!(value(&samples, "kmt_indexer_lag"), 0.0);

    let mut ids = Vec::new();
    for (i, word) in ["numbat", "bilby", "dunnart"].iter().enumerate() {
        let r = s
            .req(Method::POST, "/v1/articles", Some("admin"))
            .json(&json!({
                "slug": format!("metric-{i}"), "title": format!("The {word} levy"),
                "summary": "short", "body": format!("About the {word} levy."),
                "category": "collections", "tags": ["levy"], "status": "published"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let a: serde_json::Value = r.json().await.unwrap();
        ids.push(a["id"].as_i64().unwrap());
    }

    // Every search made counts; poll until all three are indexed.
    let mut searches = 0;
    let t0 = Instant::now();
    loop {
        searches += 1;
        if search(&s, "levy").await == 3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "articles not indexed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(search(&s, "numbat").await, 1);
    assert_eq!(search(&s, "wallaby").await, 0);
    searches += 2;

    // A matched route with a raw id (200 and 404), and an unknown path.
    let (code, _) = s
        .get_json(&format!("/v1/articles/{}", ids[0]), Some("vera"))
        .await;
    assert_eq!(code, 200);
    let (code, _) = s.get_json("/v1/articles/987654", Some("vera")).await;
    assert_eq!(code, 404);
    let (code, _) = s.get_json("/v1/no-such-endpoint", Some("vera")).await;
    assert_eq!(code, 404);

    // Let the follower settle: the checkpoint moves a moment before the
    // batch counters, so wait for all of them rather than for lag 0 alone.
    let t0 = Instant::now();
    let (samples, types) = loop {
        let (samples, types) = scrape(&s).await;
        let settled = value(&samples, "kmt_indexer_lag") == 0.0
            && value(&samples, "kmt_index_documents") == 3.0
            && value(&samples, "kmt_indexer_batches_total") >= 1.0
            && value(&samples, "kmt_indexer_batches_total")
                == value(&samples, "kmt_indexer_batch_duration_seconds_count");
        if settled {
            break (samples, types);
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "follower lags");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let requests = |route: &str, method: &str, status: &str| -> f64 {
        samples
            .iter()
            .filter(|x| x.name == "kmt_http_requests_total")
            .filter(|x| {
                x.label("route") == route
                    && x.label("method") == method
                    && x.label("status") == status
            })
            .map(|x| x.value)
            .sum()
    };
    assert!(
        requests("/v1/search", "GET", "200") >= searches as f64,
        "{searches} searches"
    );
    assert_eq!(requests("/v1/articles", "POST", "201"), 3.0);
    assert_eq!(requests("/v1/articles/{id}", "GET", "200"), 1.0);
    assert_eq!(requests("/v1/articles/{id}", "GET", "404"), 1.0);
    assert_eq!(requests("unmatched", "GET", "404"), 1.0);

    // Route labels are templates only: no raw ids, no unknown paths.
    for x in samples.iter().filter(|x| x.labels.contains_key("route")) {
        let route = x.label("route");
        assert!(
            route == "unmatched" || route.starts_with('/'),
            "route {route:?}"
        );
        assert!(!route.contains("no-such-endpoint"), "raw path {route:?}");
        assert!(!route.contains("987654"), "raw id in {route:?}");
        for id in &ids {
            assert!(
                !route.split('/').any(|seg| seg == id.to_string()),
                "raw id in {route:?}"
            );
        }
    }

    // Every histogram series is well formed; HTTP, search, stages and
    // batches are all there.
    assert!(check_histograms(&samples, &types) >= 8);
    for family in [
        "kmt_http_request_duration_seconds",
        "kmt_search_duration_seconds",
        "kmt_search_hits",
        "kmt_search_stage_seconds",
        "kmt_indexer_batch_duration_seconds",
    ] {
        assert_eq!(types.get(family).map(String::as_str), Some("histogram"));
    }
    let count = |name: &str, label: (&str, &str)| -> f64 {
        samples
            .iter()
            .find(|x| x.name == name && x.label(label.0) == label.1)
            .unwrap_or_else(|| panic!("{name} {label:?} missing"))
            .value
    };
    assert!(
        count("kmt_search_duration_seconds_count", ("mode", "lexical")) >= searches as f64,
        "search durations"
    );
    for stage in ["parse", "search", "facets", "snippets"] {
        assert!(count("kmt_search_stage_seconds_count", ("stage", stage)) >= searches as f64);
    }
    assert!(value(&samples, "kmt_search_hits_count") >= searches as f64);
    assert!(
        count(
            "kmt_http_request_duration_seconds_count",
            ("route", "/v1/search")
        ) >= searches as f64
    );

    // Index and follower state.
    assert_eq!(value(&samples, "kmt_index_documents"), 3.0);
    assert!(value(&samples, "kmt_index_generation") >= 1.0);
    assert!(value(&samples, "kmt_index_size_bytes") > 0.0);
    assert_eq!(value(&samples, "kmt_indexer_lag"), 0.0);
    assert_eq!(value(&samples, "kmt_indexer_ready"), 1.0);
    let checkpoint = value(&samples, "kmt_indexer_checkpoint");
    assert!(checkpoint >= 3.0, "checkpoint {checkpoint}");
    assert_eq!(checkpoint, value(&samples, "kmt_indexer_head"));
    let batches = value(&samples, "kmt_indexer_batches_total");
    assert!(batches >= 1.0);
    assert_eq!(
        value(&samples, "kmt_indexer_batch_duration_seconds_count"),
        batches
    );
    assert_eq!(value(&samples, "kmt_indexer_rebuilds_total"), 0.0);

    s.stop().await;
}

#[test]
fn the_parser_unescapes_label_values() {
    let (samples, types) =
        parse("# HELP m x\n# TYPE m counter\nm{a=\"q\\\"\\\\\\n,}\",b=\"\"} 2\nn 1.5\n");
    assert_eq!(types["m"], "counter");
    assert_eq!(samples[0].label("a"), "q\"\\\n,}");
    assert_eq!(samples[0].label("b"), "");
    assert_eq!(samples[0].value, 2.0);
    assert_eq!(samples[1].name, "n");
    assert_eq!(samples[1].value, 1.5);
}

/// Issue 7's list, series by series, after traffic: request latency per
/// route and status, search latency by mode, hits per query, index
/// documents and size, indexer lag and batch times, embedding queue,
/// escalations sent, audit rows not yet shipped, snapshot age — each with
/// a value that agrees with what the test did and with the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_every_listed_series_after_traffic() {
    use engine::auth::Principal;
    use engine::model::{ArticleDraft, RuleSpec, Status};

    use crate::harness::TestStore;

    // Before the server starts: a review task overdue by years in a
    // category with a one-step escalation path, so the scheduler's first
    // run (at start) escalates it exactly once.
    let ts = TestStore::new(Backend::Sqlite).await;
    let system = Principal::system();
    for (name, roles) in [
        ("admin", vec!["admin"]),
        ("alice", vec!["author"]),
        ("rex", vec!["reviewer"]),
    ] {
        let roles: Vec<String> = roles.into_iter().map(String::from).collect();
        ts.store
            .create_user(&system, name, name, &roles)
            .await
            .unwrap();
    }
    let spec: RuleSpec =
        serde_json::from_value(json!({"escalation": [{"after_hours": 24, "to_role": "reviewer"}]}))
            .unwrap();
    ts.store
        .save_rule(&system, "collections", &spec)
        .await
        .unwrap();
    let alice = ts.store.get_user("alice").await.unwrap().unwrap();
    let alice = Principal {
        user_id: Some(alice.id),
        username: alice.username.clone(),
        roles: alice.roles.clone(),
    };
    let draft = ArticleDraft {
        slug: "lien-release".into(),
        title: "Releasing a lien".into(),
        summary: "- release the lien".into(),
        body: "Body text long enough to be an article about liens.".into(),
        category: "collections".into(),
        tags: vec!["lien".into()],
        audience: vec![],
        status: Status::Draft,
        review_due: None,
    };
    ts.store.create_article(&alice, draft).await.unwrap();
    engine::workflow::submit(&ts.store, &alice, "lien-release")
        .await
        .unwrap();
    // Same text format, year 2000: overdue whatever today is.
    ts.raw_sql("UPDATE tasks SET due_at = '2000' || substr(due_at, 5) WHERE due_at IS NOT NULL")
        .await;

    let snapshots = ts.dir.path().join("snapshots");
    let s = TestServer::start_on_with(
        ts,
        &["admin", "alice", "rex"],
        indexer::embedder::EmbedArgs::default(),
        move |o| {
            o.snapshot = Some(indexer::snapshot::SnapshotConfig {
                target: engine::audit_ship::TargetConfig::Dir(snapshots),
                interval: Some(Duration::from_millis(200)),
                keep: 2,
            });
        },
    )
    .await;

    for (i, word) in ["numbat", "bilby", "dunnart"].iter().enumerate() {
        let (code, v) = s
            .call(
                Method::POST,
                "/v1/articles",
                "admin",
                Some(json!({
                    "slug": format!("metric-{i}"), "title": format!("The {word} levy"),
                    "summary": "- short", "body": format!("About the {word} levy and how to collect it."),
                    "category": "collections", "tags": ["levy"], "status": "published"
                })),
            )
            .await;
        assert_eq!(code, 201, "{v}");
    }
    // A refused write, for a 4xx latency series.
    let (code, _) = s
        .call(
            Method::POST,
            "/v1/articles",
            "admin",
            Some(json!({"title": 5})),
        )
        .await;
    assert_eq!(code, 400);

    // Wait until words and vectors are indexed, then search in each mode.
    let articles = s.ts.store.count_articles().await.unwrap() as f64;
    let t0 = Instant::now();
    loop {
        let (samples, _) = scrape(&s).await;
        if value(&samples, "kmt_index_documents") == articles
            && value(&samples, "kmt_indexer_lag") == 0.0
            && value(&samples, "kmt_vector_articles") == articles
            && value(&samples, "kmt_embedding_queue") == 0.0
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "not indexed and embedded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut totals = Vec::new();
    let mut by_mode = HashMap::<&str, u32>::new();
    for (mode, q) in [
        ("lexical", "levy"),
        ("lexical", "numbat"),
        ("lexical", "wallaby"),
        ("semantic", "collecting a levy"),
        ("hybrid", "bilby levy"),
        ("hybrid", "dunnart"),
    ] {
        let (code, v) = s
            .get_json(&format!("/v1/search?q={q}&mode={mode}"), Some("admin"))
            .await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["mode"], mode, "{v}");
        totals.push(v["total"].as_f64().unwrap());
        *by_mode.entry(mode).or_default() += 1;
    }
    assert_eq!(totals[0], 3.0);
    assert_eq!(totals[2], 0.0);

    // Settle: batches counted, audit shipped, a snapshot published.
    let store = s.ts.store.clone();
    let last_audit = move || {
        let store = store.clone();
        async move {
            store
                .list_audit(&engine::store::AuditFilter {
                    after_id: 0,
                    limit: 100_000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .last()
                .map_or(0, |a| a.id) as f64
        }
    };
    let t0 = Instant::now();
    let (samples, types) = loop {
        let (samples, types) = scrape(&s).await;
        let has = |n: &str| samples.iter().any(|x| x.name == n);
        let settled = value(&samples, "kmt_indexer_batches_total")
            == value(&samples, "kmt_indexer_batch_duration_seconds_count")
            && value(&samples, "kmt_audit_unshipped_rows") == 0.0
            && value(&samples, "kmt_audit_shipped_through_id") == last_audit().await
            && has("kmt_snapshot_age_seconds")
            && value(&samples, "kmt_snapshot_seq") == value(&samples, "kmt_indexer_checkpoint");
        if settled {
            break (samples, types);
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(check_histograms(&samples, &types) >= 10);
    let one = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let v: Vec<_> = samples
            .iter()
            .filter(|x| x.name == name && labels.iter().all(|(k, v)| x.label(k) == *v))
            .collect();
        assert_eq!(v.len(), 1, "{name} {labels:?}: {v:?}");
        v[0].value
    };

    // Request latency per route and status (class), beside exact counts.
    let posts = [("route", "/v1/articles"), ("method", "POST")];
    assert_eq!(
        one(
            "kmt_http_requests_total",
            &[posts[0], posts[1], ("status", "201")]
        ),
        3.0
    );
    assert_eq!(
        one(
            "kmt_http_requests_total",
            &[posts[0], posts[1], ("status", "400")]
        ),
        1.0
    );
    assert_eq!(
        one(
            "kmt_http_request_duration_seconds_count",
            &[posts[0], posts[1], ("status", "2xx")]
        ),
        3.0
    );
    assert_eq!(
        one(
            "kmt_http_request_duration_seconds_count",
            &[posts[0], posts[1], ("status", "4xx")]
        ),
        1.0
    );
    assert!(
        one(
            "kmt_http_request_duration_seconds_sum",
            &[posts[0], posts[1], ("status", "2xx")]
        ) > 0.0
    );

    // Search latency by mode; hits per query sum to the totals answered.
    for mode in ["lexical", "semantic", "hybrid"] {
        let n = one("kmt_search_duration_seconds_count", &[("mode", mode)]);
        assert_eq!(n, f64::from(by_mode[mode]), "{mode}");
        assert!(one("kmt_search_duration_seconds_sum", &[("mode", mode)]) > 0.0);
    }
    assert_eq!(
        value(&samples, "kmt_search_hits_count"),
        totals.len() as f64
    );
    assert_eq!(
        value(&samples, "kmt_search_hits_sum"),
        totals.iter().sum::<f64>()
    );
    // A search that found nothing lands in the le="0" bucket.
    assert!(one("kmt_search_hits_bucket", &[("le", "0")]) >= 1.0);

    // Index documents and size.
    assert_eq!(value(&samples, "kmt_index_documents"), articles);
    assert!(value(&samples, "kmt_index_size_bytes") > 1_000.0);

    // Indexer lag and batch times: caught up with the store's outbox.
    let head = s.ts.store.outbox_head().await.unwrap() as f64;
    assert_eq!(value(&samples, "kmt_indexer_head"), head);
    assert_eq!(value(&samples, "kmt_indexer_checkpoint"), head);
    assert_eq!(value(&samples, "kmt_indexer_lag"), 0.0);
    let batches = value(&samples, "kmt_indexer_batches_total");
    assert!(batches >= 1.0);
    assert_eq!(
        value(&samples, "kmt_indexer_batch_duration_seconds_count"),
        batches
    );
    assert!(value(&samples, "kmt_indexer_batch_duration_seconds_sum") > 0.0);

    // Embedding queue: drained, every article embedded by the model.
    assert_eq!(value(&samples, "kmt_semantic_enabled"), 1.0);
    assert_eq!(value(&samples, "kmt_embedding_queue"), 0.0);
    assert_eq!(value(&samples, "kmt_vector_articles"), articles);
    let embedded = one("kmt_embedded_articles_total", &[("source", "computed")])
        + one("kmt_embedded_articles_total", &[("source", "reused")]);
    assert!(embedded >= articles, "{embedded} embedded");
    assert!(value(&samples, "kmt_embedded_passages_total") >= articles);

    // Escalations sent: the one overdue task, once.
    assert_eq!(value(&samples, "kmt_escalations_total"), 1.0);

    // Audit rows not yet shipped: none, everything through the last row.
    assert_eq!(value(&samples, "kmt_audit_unshipped_rows"), 0.0);
    assert_eq!(
        value(&samples, "kmt_audit_shipped_through_id"),
        last_audit().await
    );
    let age = value(&samples, "kmt_audit_last_shipment_age_seconds");
    assert!((0.0..30.0).contains(&age), "audit shipment age {age}");

    // Snapshot age: published by this process, of the current checkpoint.
    let age = value(&samples, "kmt_snapshot_age_seconds");
    assert!((0.0..30.0).contains(&age), "snapshot age {age}");
    assert_eq!(value(&samples, "kmt_snapshot_seq"), head);

    s.stop().await;
}
