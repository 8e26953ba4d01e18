//! The deployment assets in `deploy/` checked against the code (issue 7):
//! the Grafana dashboard and Prometheus alerts use only metric names a
//! running server exports, and the Kubernetes manifests use only settings
//! the binaries accept, probe real routes and agree on images and ports.
//! Static checks: no cluster and no Prometheus run here.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use crate::harness::{Backend, TestServer};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every `kmt_*` identifier in a PromQL expression.
fn kmt_names(expr: &str, out: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            // A word inside a label value or legend (`{{route}}`) is not a
            // metric; those never start with `kmt_`, so the prefix suffices.
            if word.starts_with("kmt_") {
                out.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
}

/// Every `expr` string anywhere in a JSON document.
fn json_exprs(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Json::String(s)) => out.push(s.clone()),
                    _ => json_exprs(x, out),
                }
            }
        }
        Json::Array(a) => a.iter().for_each(|x| json_exprs(x, out)),
        _ => {}
    }
}

fn str_of<'a>(v: &'a Yaml, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Yaml::as_str)
}

/// Sample names (and histogram series names) in an exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_dashboard_and_alerts_use_real_metrics() {
    let dashboard: Json = serde_json::from_str(&read("deploy/grafana/kmt-dashboard.json")).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let ids: BTreeSet<_> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let mut exprs = Vec::new();
    json_exprs(&dashboard, &mut exprs);
    for p in panels {
        let n = p["targets"].as_array().map_or(0, Vec::len);
        assert!(n > 0, "panel {} has no query", p["title"]);
    }

    let alerts: Yaml = serde_yaml_ng::from_str(&read("deploy/prometheus/alerts.yml")).unwrap();
    let mut alert_names = BTreeSet::new();
    for g in alerts["groups"].as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            let name = str_of(r, "alert").expect("every rule is an alert");
            assert!(alert_names.insert(name.to_string()), "alert {name} twice");
            assert!(
                str_of(&r["labels"], "severity").is_some(),
                "{name}: severity"
            );
            assert!(
                str_of(&r["annotations"], "summary").is_some(),
                "{name}: summary"
            );
            exprs.push(str_of(r, "expr").expect("expr").to_string());
        }
    }
    for needed in [
        "KmtHigh5xxRatio",
        "KmtHighP99Latency",
        "KmtIndexerLagGrowing",
        "KmtReadinessDown",
        "KmtAuditUnshipped",
        "KmtDeliveriesFailing",
        "KmtEmbeddingBacklog",
    ] {
        assert!(alert_names.contains(needed), "missing alert {needed}");
    }
    let prom: Yaml = serde_yaml_ng::from_str(&read("deploy/prometheus/prometheus.yml")).unwrap();
    let files: Vec<_> = prom["rule_files"].as_sequence().unwrap().iter().collect();
    assert!(files
        .iter()
        .any(|f| f.as_str().unwrap().ends_with("alerts.yml")));

    let mut used = BTreeSet::new();
    exprs.iter().for_each(|e| kmt_names(e, &mut used));
    assert!(used.len() >= 20, "only {used:?}");

    // Traffic of every kind the series need, then scrape until the audit
    // shipper's first shipment has shown up (its age appears only then).
    let s = TestServer::start(Backend::Sqlite).await;
    let a = serde_json::json!({"title": "Wombat care", "body": "About wombats.", "category": "general", "status": "published"});
    let r = s
        .req(reqwest::Method::POST, "/v1/articles", Some("admin"))
        .json(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (code, _) = s.get_json("/v1/search?q=wombat", Some("vera")).await;
    assert_eq!(code, 200);
    let t0 = Instant::now();
    let missing = loop {
        let text = s
            .http
            .get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let have = exported(&text);
        let missing: Vec<_> = used
            .iter()
            .filter(|n| !have.contains(*n))
            .cloned()
            .collect();
        if missing.is_empty() || t0.elapsed() > Duration::from_secs(15) {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        missing.is_empty(),
        "used in deploy/ but not exported: {missing:?}"
    );
    s.stop().await;
}

/// Every `env = "NAME"` the binaries' clap structs accept.
fn accepted_env() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![repo().join("api/src"), repo().join("indexer/src")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("env = \"").skip(1) {
                    out.insert(part.split('"').next().unwrap().to_string());
                }
            }
        }
    }
    assert!(out.contains("DATABASE_URL") && out.contains("KMT_LISTEN"));
    out
}

/// The routes the API serves (`.route("/path", ...)` in app.rs).
fn routes() -> BTreeSet<String> {
    read("api/src/app.rs")
        .split(".route(\"")
        .skip(1)
        .map(|p| p.split('"').next().unwrap().to_string())
        .collect()
}

/// Every YAML document of every manifest in `deploy/k8s`, with its file.
fn manifests() -> Vec<(String, Yaml)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.ends_with(".yaml"), "{name}: manifests end in .yaml");
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !v.is_null() {
                out.push((name.clone(), v));
            }
        }
    }
    out
}

#[test]
fn issue_7_k8s_manifests_are_consistent() {
    let accepted = accepted_env();
    let routes = routes();
    let docs = manifests();
    let kind = |v: &Yaml| str_of(v, "kind").unwrap_or("").to_string();
    let by_kind = |k: &str| -> Vec<&Yaml> {
        docs.iter()
            .map(|(_, v)| v)
            .filter(|v| kind(v) == k)
            .collect()
    };
    for k in [
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ] {
        assert!(!by_kind(k).is_empty(), "no {k}");
    }
    let ns = str_of(&by_kind("Namespace")[0]["metadata"], "name")
        .unwrap()
        .to_string();
    let kustomize = by_kind("Kustomization");
    let listed: BTreeSet<_> = kustomize[0]["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    for (file, v) in &docs {
        if kind(v) == "Kustomization" {
            continue;
        }
        assert!(listed.contains(file), "{file} not in kustomization.yaml");
        if kind(v) != "Namespace" {
            assert_eq!(
                str_of(&v["metadata"], "namespace"),
                Some(ns.as_str()),
                "{file}"
            );
        }
    }

    // Settings: every name is one the binaries accept; values are strings.
    let mut config: HashMap<String, String> = HashMap::new();
    for cm in by_kind("ConfigMap") {
        for (k, v) in cm["data"].as_mapping().unwrap() {
            let k = k.as_str().unwrap();
            assert!(
                accepted.contains(k),
                "ConfigMap sets {k}, which no binary reads"
            );
            let v = v.as_str().unwrap_or_else(|| panic!("{k}: quote the value"));
            config.insert(k.to_string(), v.to_string());
        }
    }
    for s in by_kind("Secret") {
        for (k, _) in s["stringData"].as_mapping().unwrap() {
            let k = k.as_str().unwrap();
            assert!(
                accepted.contains(k),
                "Secret sets {k}, which no binary reads"
            );
        }
    }
    let listen_port: u64 = config["KMT_LISTEN"]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let config_names: BTreeSet<_> = by_kind("ConfigMap")
        .iter()
        .chain(by_kind("Secret").iter())
        .map(|v| str_of(&v["metadata"], "name").unwrap().to_string())
        .collect();

    let mut images = BTreeSet::new();
    let mut deployments = HashMap::new();
    for d in by_kind("Deployment") {
        let name = str_of(&d["metadata"], "name").unwrap().to_string();
        let pod = &d["spec"]["template"];
        let labels = pod["metadata"]["labels"].as_mapping().unwrap().clone();
        for (k, v) in d["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
            assert_eq!(labels.get(k), Some(v), "{name}: selector matches the pod");
        }
        let spec = &pod["spec"];
        assert_eq!(
            spec["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{name}"
        );
        let volumes: BTreeSet<_> = spec["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| str_of(v, "name").unwrap().to_string())
            .collect();
        let init = spec["initContainers"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        let main = spec["containers"].as_sequence().unwrap().clone();
        for (i, c) in init.iter().chain(main.iter()).enumerate() {
            let cname = format!("{name}/{}", str_of(c, "name").unwrap());
            images.insert(str_of(c, "image").unwrap().to_string());
            assert_eq!(
                c["securityContext"]["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{cname}"
            );
            for e in c["env"].as_sequence().cloned().unwrap_or_default() {
                let k = str_of(&e, "name").unwrap();
                assert!(
                    accepted.contains(k),
                    "{cname}: env {k} is read by no binary"
                );
            }
            for from in c["envFrom"].as_sequence().unwrap() {
                let r = from
                    .get("configMapRef")
                    .or_else(|| from.get("secretRef"))
                    .unwrap();
                assert!(
                    config_names.contains(str_of(r, "name").unwrap()),
                    "{cname}: envFrom"
                );
            }
            for m in c["volumeMounts"].as_sequence().unwrap() {
                assert!(
                    volumes.contains(str_of(m, "name").unwrap()),
                    "{cname}: volume"
                );
                if str_of(m, "name") == Some("index") {
                    assert_eq!(
                        str_of(m, "mountPath"),
                        Some(config["KMT_INDEX_DIR"].as_str())
                    );
                }
            }
            if i < init.len() {
                continue;
            }
            for r in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    assert!(
                        c["resources"][r][res].as_str().is_some(),
                        "{cname}: {r}.{res}"
                    );
                }
            }
            let ports: HashMap<String, u64> = c["ports"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    (
                        str_of(p, "name").unwrap().to_string(),
                        p["containerPort"].as_u64().unwrap(),
                    )
                })
                .collect();
            for port in ports.values() {
                assert_eq!(
                    *port, listen_port,
                    "{cname}: containerPort is KMT_LISTEN's port"
                );
            }
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let Some(get) = c.get(probe).map(|p| &p["httpGet"]) else {
                    continue;
                };
                let path = str_of(get, "path").unwrap();
                assert!(
                    routes.contains(path),
                    "{cname}: {probe} {path} is not a route"
                );
                let port = str_of(get, "port").unwrap();
                assert!(ports.contains_key(port), "{cname}: {probe} port {port}");
            }
            if name == "kmt-api" {
                assert_eq!(
                    str_of(&c["readinessProbe"]["httpGet"], "path"),
                    Some("/readyz")
                );
                assert_eq!(
                    str_of(&c["livenessProbe"]["httpGet"], "path"),
                    Some("/healthz")
                );
                assert!(c.get("startupProbe").is_some(), "{cname}: startup probe");
            }
        }
        let replicas = d["spec"]["replicas"].as_u64().unwrap();
        deployments.insert(name, (labels, replicas, main));
    }
    assert_eq!(images.len(), 1, "one image for every container: {images:?}");
    let (api_labels, api_replicas, api_containers) = &deployments["kmt-api"];
    assert!(*api_replicas >= 2);
    assert!(deployments.contains_key("kmt-indexer"));
    let indexer = &deployments["kmt-indexer"].2[0];
    assert_eq!(indexer["command"][0].as_str(), Some("kmt-indexer"));
    assert!(
        read("Dockerfile").contains("kmt-indexer"),
        "the image carries kmt-indexer"
    );

    let matches = |sel: &Yaml, labels: &serde_yaml_ng::Mapping| {
        sel.as_mapping()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    };
    for s in by_kind("Service") {
        assert!(
            matches(&s["spec"]["selector"], api_labels),
            "service selects the API"
        );
        for p in s["spec"]["ports"].as_sequence().unwrap() {
            let target = str_of(p, "targetPort").unwrap();
            let named = api_containers[0]["ports"].as_sequence().unwrap();
            assert!(
                named.iter().any(|n| str_of(n, "name") == Some(target)),
                "targetPort"
            );
        }
    }
    for h in by_kind("HorizontalPodAutoscaler") {
        let target = str_of(&h["spec"]["scaleTargetRef"], "name").unwrap();
        assert!(deployments.contains_key(target), "HPA targets {target}");
        assert!(h["spec"]["minReplicas"].as_u64().unwrap() >= 2);
        let cpu = h["spec"]["metrics"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| str_of(&m["resource"], "name") == Some("cpu"));
        assert!(cpu, "HPA scales on CPU");
    }
    for p in by_kind("PodDisruptionBudget") {
        let sel = &p["spec"]["selector"]["matchLabels"];
        assert!(
            deployments.values().any(|(l, _, _)| matches(sel, l)),
            "PDB selects a deployment"
        );
    }

    // The compose file's settings are real too.
    let compose: Yaml = serde_yaml_ng::from_str(&read("deploy/docker-compose.yml")).unwrap();
    // The stack the operations issue asks for: an S3-compatible store, one
    // indexer, two API replicas behind a proxy that checks readiness, and
    // Prometheus.
    let services = &compose["services"];
    for svc in ["postgres", "s3", "indexer", "api", "proxy", "prometheus"] {
        assert!(
            services.get(svc).is_some(),
            "compose has no {svc:?} service"
        );
    }
    assert_eq!(services["api"]["deploy"]["replicas"].as_u64(), Some(2));
    let haproxy = read("deploy/haproxy/haproxy.cfg");
    assert!(
        haproxy.contains("option httpchk GET /readyz"),
        "the proxy checks /readyz"
    );
    for (svc, var) in [
        ("indexer", "KMT_SNAPSHOT_S3_BUCKET"),
        ("indexer", "KMT_AUDIT_S3_BUCKET"),
        ("api", "KMT_SNAPSHOT_S3_BUCKET"),
        ("api", "KMT_SHUTDOWN_DRAIN_SECS"),
    ] {
        assert!(
            services[svc]["environment"].get(var).is_some(),
            "compose {svc:?} sets no {var}"
        );
    }
    for (svc, s) in compose["services"].as_mapping().unwrap() {
        let image = str_of(s, "image").unwrap_or("");
        if !image.starts_with("kmt") {
            continue;
        }
        for (k, _) in s["environment"].as_mapping().cloned().unwrap_or_default() {
            let k = k.as_str().unwrap();
            assert!(
                accepted.contains(k),
                "compose {svc:?} sets {k}, read by no binary"
            );
        }
    }
}
