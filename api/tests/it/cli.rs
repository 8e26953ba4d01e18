//! The `kmt` binary end to end: `demo`, and CLI commands against the data
//! directory of a running `kmt serve`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn kmt() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmt"));
    c.env_remove("DATABASE_URL").env("RUST_LOG", "warn");
    c
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads stdout lines until one contains `marker`; returns all lines read.
fn read_until(child: &mut Child, marker: &str) -> Vec<String> {
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("reading stdout");
        let done = line.contains(marker);
        lines.push(line);
        if done {
            return lines;
        }
    }
    panic!("process ended before printing {marker:?}: {lines:?}");
}

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut r = c.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn wait_ready(base: &str) -> Value {
    let t0 = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status() == 200 {
                return r.json().await.unwrap();
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "server not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `kmt demo` loads the sample corpus, prints its URL and accounts, and each
/// account sees what its roles allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_sample_corpus_with_role_aware_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = kmt()
        .args(["demo", "--port", "0", "--data"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_until(&mut child, "Stop with Ctrl-C");
    let _guard = Running(child);
    let base = lines
        .iter()
        .find_map(|l| l.split("running at ").nth(1))
        .expect("demo prints its URL")
        .trim_end_matches('/')
        .to_string();
    wait_ready(&base).await;
    let accounts: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo-accounts.json")).unwrap(),
    )
    .unwrap();
    let token = |name: &str| {
        accounts.iter().find(|a| a["username"] == name).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for a in &accounts {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(a["token"].as_str().unwrap())),
            "token of {} printed",
            a["username"]
        );
    }
    // "Larkspur" appears only in an article for hearing officers.
    let url = format!("{base}/v1/search?q=larkspur&facets=category");
    let (_, v) = get(&url, Some(&token("harry"))).await;
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["hits"][0]["slug"], "conducting-an-informal-hearing");
    for who in ["vera", "alice"] {
        let (_, v) = get(&url, Some(&token(who))).await;
        assert_eq!(v["total"], 0, "{who}: {v}");
    }
    let (_, v) = get(&url, None).await;
    assert_eq!(v["total"], 0);
    // Anonymous visitors see the public articles only.
    let (_, v) = get(&format!("{base}/v1/search?q=&limit=100"), None).await;
    assert!(v["total"].as_u64().unwrap() >= 3, "{v}");
    let (_, all) = get(
        &format!("{base}/v1/search?q=&limit=1"),
        Some(&token("vera")),
    )
    .await;
    assert!(all["total"].as_u64().unwrap() > v["total"].as_u64().unwrap());
    let (code, _) = get(&format!("{base}/"), None).await;
    assert_eq!(code, 200);
    // The printed demo passwords sign in.
    assert!(lines.iter().any(|l| l.contains("password kmt-demo-harry")));
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/session"))
        .json(&serde_json::json!({"username": "harry", "password": "kmt-demo-harry"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// CLI commands work while a server runs on the same data: an import shows
/// up in the server's search, and `kmt reindex` makes the server rebuild and
/// swap its index while it keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_work_while_a_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let ok = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(kmt()
        .arg("--data")
        .arg(data)
        .args(["user", "add", "ops", "--role", "admin"]));
    let token = ok(kmt()
        .arg("--data")
        .arg(data)
        .args(["token", "create", "ops"]))
    .trim()
    .to_string();
    assert!(token.starts_with("kmt_"));
    let mut child = kmt()
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The bound address is logged; read it from stderr, and keep draining
    // stderr so the server never blocks on a full pipe.
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("addr=").nth(1) {
                let _ = tx.send(format!(
                    "http://{}",
                    rest.split_whitespace().next().unwrap_or("")
                ));
            }
            if line.contains("ERROR") || line.contains("WARN") {
                eprintln!("server: {line}");
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let _guard = Running(child);
    assert!(!base.is_empty(), "serve logged no address");
    wait_ready(&base).await;

    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/articles");
    let out = ok(kmt().arg("--data").arg(data).args(["import", corpus]));
    assert!(out.contains("created"), "{out}");
    let t0 = Instant::now();
    loop {
        let (_, v) = get(&format!("{base}/v1/search?q=&limit=1"), Some(&token)).await;
        if v["total"].as_u64().unwrap_or(0) >= 60 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "import not visible to the server: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, before) = get(&format!("{base}/readyz"), None).await;
    let out = ok(kmt().arg("--data").arg(data).arg("reindex"));
    assert!(out.contains("reindex requested"), "{out}");
    // Queries keep being answered, with the same results, until the new
    // generation is live.
    let t0 = Instant::now();
    loop {
        let (code, v) = get(&format!("{base}/v1/search?q=penalty&limit=1"), Some(&token)).await;
        assert_eq!(code, 200);
        assert!(v["total"].as_u64().unwrap() > 0);
        let (_, r) = get(&format!("{base}/readyz"), None).await;
        if r["index_generation"].as_u64() > before["index_generation"].as_u64() {
            assert_eq!(r["index_documents"], before["index_documents"]);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no rebuild: {r}");
    }
    // The container health check talks to the running server.
    let addr = base.trim_start_matches("http://").to_string();
    ok(kmt().args(["healthcheck", "--addr", &addr]));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    assert!(!kmt()
        .args(["healthcheck", "--addr", &closed])
        .output()
        .unwrap()
        .status
        .success());
    let users = ok(kmt().arg("--data").arg(data).args(["user", "list"]));
    assert!(users.contains("ops\tadmin"), "{users}");
    // Custom groups are defined and listed from the CLI too.
    ok(kmt().arg("--data").arg(data).args([
        "role",
        "add-group",
        "appeals_unit",
        "--description",
        "hearing officers",
    ]));
    let roles = ok(kmt().arg("--data").arg(data).args(["role", "list"]));
    assert!(roles.contains("appeals_unit\tgroup"), "{roles}");
    assert!(roles.contains("admin\trole\tarticle.read"), "{roles}");
    // Bad input to the CLI is a clear error, not a panic.
    let out = kmt()
        .arg("--data")
        .arg(data)
        .args(["import", "/nonexistent/file.jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.jsonl"));
}

/// A server whose log pipe is closed keeps serving and indexing (the log
/// subscriber used to panic on the failed write, killing the follower).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_log_pipe_does_not_stop_indexing() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = kmt()
        .arg("--data")
        .arg(dir.path())
        .args(["serve", "--port", &port.to_string()])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // close the read end: every log write now fails
    let _guard = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/articles");
    let out = kmt()
        .arg("--data")
        .arg(dir.path())
        .args(["import", corpus])
        .output()
        .unwrap();
    assert!(out.status.success());
    let t0 = Instant::now();
    loop {
        let (_, v) = get(&format!("{base}/readyz"), None).await;
        if v["index_documents"].as_u64().unwrap_or(0) >= 60 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "indexing stopped: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
