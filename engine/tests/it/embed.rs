//! The embedders: the local model (real all-MiniLM-L6-v2 weights) and the
//! OpenAI-compatible client (against a stand-in server in the test).
//!
//! The local tests need the model on disk: `make model` fetches it into
//! `LocalEmbedder::default_dir()` (or set `KMT_MODEL_DIR`). A missing model
//! fails the tests with that instruction rather than skipping them, so a
//! green run always means the model was exercised.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use engine::embed::local::LocalEmbedder;
use engine::embed::remote::RemoteEmbedder;
use engine::embed::{dot, Embedder};
use engine::Error;

/// One model for all tests: loading takes a moment and the model is
/// shared across threads in production too.
fn model() -> &'static LocalEmbedder {
    static MODEL: OnceLock<LocalEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = LocalEmbedder::default_dir();
        match LocalEmbedder::load(&dir) {
            Ok(m) => m,
            Err(e) => panic!(
                "cannot load all-MiniLM-L6-v2 from {}: {e}\n\
                 run `make model` (or set KMT_MODEL_DIR to a directory holding it)",
                dir.display()
            ),
        }
    })
}

fn embed_one(text: &str) -> Vec<f32> {
    model()
        .embed(&[text])
        .expect("embed")
        .pop()
        .expect("one vector")
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= tol, "{what}: components differ by up to {worst}");
}

#[test]
fn local_model_identity() {
    let m = model();
    assert_eq!(m.model_id(), "all-MiniLM-L6-v2");
    assert_eq!(m.dim(), 384);
    assert!(m.embed(&[]).expect("empty").is_empty());
}

#[test]
fn local_paraphrase_is_closer_than_unrelated_text() {
    let q = embed_one("How do I create an index?");
    let para = embed_one("What is the way to build a new index?");
    let related = embed_one("CREATE INDEX constructs an index on the specified column of a table.");
    let unrelated = embed_one("The cat slept in the warm afternoon sun.");
    let (p, r, u) = (dot(&q, &para), dot(&q, &related), dot(&q, &unrelated));
    assert!(p > 0.6, "paraphrase similarity {p} should exceed 0.6");
    assert!(r > 0.4, "related passage similarity {r} should exceed 0.4");
    assert!(u < 0.3, "unrelated similarity {u} should stay below 0.3");
    assert!(p > u + 0.3 && r > u + 0.2, "p={p} r={r} u={u}");
}

#[test]
fn local_vectors_are_unit_length() {
    let texts = [
        "a",
        "How do I create an index?",
        "",
        "Überprüfung der Datenbank — ça marche? 数据库",
    ];
    let vs = model().embed(&texts).expect("embed");
    assert_eq!(vs.len(), texts.len());
    for (t, v) in texts.iter().zip(&vs) {
        assert_eq!(v.len(), 384);
        let n = dot(v, v).sqrt();
        assert!((n - 1.0).abs() < 1e-4, "{t:?} has norm {n}");
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn local_batch_equals_one_by_one() {
    // Lengths from one token to past the truncation window, in a mixed
    // order, and more than one batch's worth: padding, length sorting and
    // order restoration must not change any vector.
    let long = "vacuum reclaims storage occupied by dead tuples ".repeat(60);
    let mut texts: Vec<String> = vec![
        "index".into(),
        long.clone(),
        "How do I create an index?".into(),
        "Point-in-time recovery replays the write-ahead log from a base backup.".into(),
        "".into(),
    ];
    for i in 0..40 {
        let words = 1 + (i * 7) % 60;
        texts.push(
            (0..words)
                .map(|w| format!("word{}", (w * 13 + i) % 50))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    texts.push(long[..200].to_string());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batch = model().embed(&refs).expect("batch");
    assert_eq!(batch.len(), texts.len());
    for (t, v) in refs.iter().zip(&batch) {
        assert_close(
            v,
            &embed_one(t),
            1e-4,
            &format!("{:?}", &t[..t.len().min(40)]),
        );
    }
    // The same texts reversed give the same vectors, reversed.
    let rev: Vec<&str> = refs.iter().rev().copied().collect();
    let back = model().embed(&rev).expect("reversed");
    for (a, b) in batch.iter().zip(back.iter().rev()) {
        assert_close(a, b, 1e-4, "reversed batch");
    }
}

/// The fused forward pass (`engine::embed::bert`) computes what candle's
/// reference BERT computes on the same weights and tokens.
#[test]
fn local_fused_forward_matches_candle_bert() {
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::bert::{BertModel, Config};
    let dir = LocalEmbedder::default_dir();
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).expect("config"))
            .expect("config json");
    let device = Device::Cpu;
    // SAFETY: the model file is not modified while the test runs.
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &device,
        )
    }
    .expect("weights");
    let reference = BertModel::load(vb, &config).expect("candle bert");
    let long = "vacuum reclaims storage occupied by dead tuples ".repeat(60);
    let texts = [
        "index",
        "How do I create an index?",
        "",
        "Point-in-time recovery replays the write-ahead log from a base backup.",
        long.as_str(),
        "Überprüfung der Datenbank — ça marche? 数据库",
    ];
    let ids = model().token_ids(&texts).expect("tokenize");
    let ours = model().embed(&texts).expect("embed");
    for ((text, ids), got) in texts.iter().zip(&ids).zip(&ours) {
        let n = ids.len();
        let t = |v: Vec<u32>| Tensor::from_vec(v, (1, n), &device).expect("tensor");
        let hidden = reference
            .forward(&t(ids.clone()), &t(vec![0; n]), Some(&t(vec![1; n])))
            .expect("forward");
        let rows: Vec<Vec<f32>> = hidden.squeeze(0).expect("squeeze").to_vec2().expect("rows");
        let mut want = vec![0.0f32; 384];
        for row in &rows {
            want.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        engine::embed::normalize(&mut want);
        let what: String = text.chars().take(30).collect();
        assert_close(got, &want, 2e-5, &what);
        assert!(dot(got, &want) > 0.999_999, "{text:?}");
        // Alone, a short text (a query) takes the f16-weight path: its
        // weights are rounded to 11 bits, nothing else changes.
        if n <= 32 {
            let alone = &model().embed(&[text]).expect("embed")[0];
            assert_close(alone, &want, 2e-4, &what);
            assert!(dot(alone, &want) > 0.999_99, "{text:?}");
        }
    }
}

#[test]
fn local_truncates_long_input() {
    let words: Vec<String> = (0..300).map(|i| format!("topic{} data", i % 37)).collect();
    let text = words.join(" ");
    assert_eq!(
        model().token_counts(&[text.as_str()]).expect("count")[0],
        256,
        "a 600-word text is cut to the 256-token window"
    );
    let v = embed_one(&text);
    assert_eq!(v.len(), 384);
    assert!((dot(&v, &v) - 1.0).abs() < 1e-4);
    // Only the window counts: extra text after it changes nothing.
    let longer = format!("{text} completely different trailing words");
    assert_close(&v, &embed_one(&longer), 1e-5, "text beyond the window");
}

#[test]
fn local_concurrent_calls_agree() {
    let texts = [
        "How do I create an index?",
        "backup and restore",
        "replication lag",
    ];
    let expected = model().embed(&texts).expect("embed");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| model().embed(&texts).expect("embed")))
            .collect();
        for h in handles {
            let got = h.join().expect("thread");
            for (a, b) in got.iter().zip(&expected) {
                assert_close(a, b, 1e-5, "concurrent call");
            }
        }
    });
}

#[test]
fn local_missing_model_says_run_make_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Err(Error::Embedding(msg)) = LocalEmbedder::load(dir.path()) else {
        panic!("loading an empty directory must fail with an embedding error");
    };
    assert!(msg.contains("make model"), "{msg}");
}

// ---- remote ----------------------------------------------------------------

const DIM: usize = 8;

/// The stand-in server's (unnormalised) vector for a text: derived from an
/// FNV-1a hash, so it is deterministic and differs between texts.
fn served_vector(text: &str, dim: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..dim)
        .map(|i| {
            h = h
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1 + i as u64);
            ((h >> 40) % 1000) as f32 + 1.0
        })
        .collect()
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    engine::embed::normalize(&mut v);
    v
}

/// What the stand-in server saw of each request: the body's `model` and
/// the `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// How the stand-in server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Vectors of `DIM`, in reverse order (clients must sort by `index`).
    Ok,
    /// Vectors of the wrong dimension.
    WrongDim,
    /// Always this status with a JSON error body.
    Status(u16),
    /// 503 to the first request, then like `Ok`.
    FirstUnavailable,
}

/// A stand-in OpenAI-compatible server on a loopback port.
struct Server {
    url: String,
    /// Input counts of the requests received, in order.
    batches: Arc<Mutex<Vec<usize>>>,
    /// Bodies' `model` fields and `Authorization` headers seen.
    seen: Seen,
}

impl Server {
    fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let (b, s) = (batches.clone(), seen.clone());
        // Detached: it blocks in accept until the test process exits.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let n = requests.fetch_add(1, Ordering::SeqCst);
                handle(stream, mode, n, &b, &s);
            }
        });
        Server { url, batches, seen }
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().expect("lock").clone()
    }
}

/// Answers one HTTP/1.1 request and closes the connection.
fn handle(stream: TcpStream, mode: Mode, n: usize, batches: &Mutex<Vec<usize>>, seen: &Seen) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || !line.starts_with("POST /v1/embeddings ") {
        respond(reader.get_mut(), 404, r#"{"error":"not found"}"#);
        return;
    }
    let (mut length, mut auth) = (0usize, None);
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let inputs: Vec<String> = req["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    batches.lock().expect("lock").push(inputs.len());
    seen.lock()
        .expect("lock")
        .push((req["model"].as_str().unwrap_or_default().to_string(), auth));
    let dim = match mode {
        Mode::Status(code) => {
            respond(
                reader.get_mut(),
                code,
                r#"{"error":{"message":"model overloaded"}}"#,
            );
            return;
        }
        Mode::FirstUnavailable if n == 0 => {
            respond(reader.get_mut(), 503, "busy");
            return;
        }
        Mode::WrongDim => DIM + 1,
        Mode::Ok | Mode::FirstUnavailable => DIM,
    };
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| {
            serde_json::json!({
                "object": "embedding",
                "index": i,
                "embedding": served_vector(t, dim),
            })
        })
        .collect();
    let answer = serde_json::json!({ "object": "list", "data": data, "model": req["model"] });
    respond(reader.get_mut(), 200, &answer.to_string());
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("text number {i}")).collect()
}

#[test]
fn remote_orders_by_index_and_normalises() {
    let server = Server::start(Mode::Ok);
    let e = RemoteEmbedder::new(&server.url, "nomic-embed", Some("sk-test".into()), DIM)
        .expect("client");
    assert_eq!(e.model_id(), "remote:nomic-embed");
    assert_eq!(e.dim(), DIM);
    assert_eq!(e.endpoint(), format!("{}/v1/embeddings", server.url));
    let ts = texts(5);
    let refs: Vec<&str> = ts.iter().map(String::as_str).collect();
    let vs = e.embed(&refs).expect("embed");
    assert_eq!(vs.len(), 5);
    for (t, v) in refs.iter().zip(&vs) {
        assert_close(v, &unit(served_vector(t, DIM)), 1e-6, t);
    }
    assert_eq!(
        server.seen.lock().expect("lock")[0],
        (
            "nomic-embed".to_string(),
            Some("Bearer sk-test".to_string())
        )
    );
    assert!(e.embed(&[]).expect("empty").is_empty());
    assert_eq!(server.batches(), vec![5], "an empty call sends nothing");
}

#[test]
fn remote_splits_large_calls_into_batches_of_64() {
    let server = Server::start(Mode::Ok);
    // The full endpoint is used as given.
    let e = RemoteEmbedder::new(&format!("{}/v1/embeddings", server.url), "m", None, DIM)
        .expect("client");
    let ts = texts(150);
    let refs: Vec<&str> = ts.iter().map(String::as_str).collect();
    let vs = e.embed(&refs).expect("embed");
    assert_eq!(server.batches(), vec![64, 64, 22]);
    assert_eq!(vs.len(), 150);
    for (t, v) in refs.iter().zip(&vs) {
        assert_close(v, &unit(served_vector(t, DIM)), 1e-6, t);
    }
    assert_eq!(
        server.seen.lock().expect("lock")[0].1,
        None,
        "no key, no header"
    );
}

#[test]
fn remote_error_status_names_status_and_body() {
    let server = Server::start(Mode::Status(400));
    let e = RemoteEmbedder::new(&server.url, "m", None, DIM).expect("client");
    let Err(Error::Embedding(msg)) = e.embed(&["x"]) else {
        panic!("a 400 must be an embedding error");
    };
    assert!(msg.contains("400"), "{msg}");
    assert!(msg.contains("model overloaded"), "{msg}");
    assert_eq!(server.batches().len(), 1, "a 4xx is not retried");

    let server = Server::start(Mode::Status(500));
    let e = RemoteEmbedder::new(&server.url, "m", None, DIM).expect("client");
    let Err(Error::Embedding(msg)) = e.embed(&["x"]) else {
        panic!("a 500 must be an embedding error");
    };
    assert!(msg.contains("500"), "{msg}");
    assert_eq!(server.batches().len(), 2, "a 5xx is retried once");
}

#[test]
fn remote_wrong_dimension_is_an_error() {
    let server = Server::start(Mode::WrongDim);
    let e = RemoteEmbedder::new(&server.url, "m", None, DIM).expect("client");
    let Err(Error::Embedding(msg)) = e.embed(&["x", "y"]) else {
        panic!("a wrong dimension must be an embedding error");
    };
    assert!(
        msg.contains("dimension 9") && msg.contains("expected 8"),
        "{msg}"
    );
}

#[test]
fn remote_retries_once_after_503() {
    let server = Server::start(Mode::FirstUnavailable);
    let e = RemoteEmbedder::new(&server.url, "m", None, DIM).expect("client");
    let vs = e
        .embed(&["alpha", "beta"])
        .expect("second attempt succeeds");
    assert_close(&vs[1], &unit(served_vector("beta", DIM)), 1e-6, "beta");
    assert_eq!(server.batches(), vec![2, 2]);
}

#[test]
fn remote_unreachable_server_is_an_error() {
    // Bind then drop: nothing listens on the port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let e =
        RemoteEmbedder::new(&format!("http://127.0.0.1:{port}"), "m", None, DIM).expect("client");
    let Err(Error::Embedding(msg)) = e.embed(&["x"]) else {
        panic!("a refused connection must be an embedding error");
    };
    assert!(msg.contains("after one retry"), "{msg}");
}

#[test]
fn remote_rejects_bad_configuration() {
    assert!(RemoteEmbedder::new("not a url", "m", None, 8).is_err());
    assert!(RemoteEmbedder::new("http://127.0.0.1:1", "", None, 8).is_err());
    assert!(RemoteEmbedder::new("http://127.0.0.1:1", "m", None, 0).is_err());
}

// --- The static embedder (distilled from the local model) ---

/// One static embedder for all tests. The first run distills it from the
/// model (about a minute) and caches the table in the model directory;
/// later runs read the cache.
fn static_model() -> &'static engine::embed::static_model::StaticEmbedder {
    use engine::embed::static_model::StaticEmbedder;
    static MODEL: OnceLock<StaticEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = LocalEmbedder::default_dir();
        match StaticEmbedder::load_or_distill(&dir, |_, _| {}) {
            Ok(m) => m,
            Err(e) => panic!(
                "cannot load or distill the static embedder from {}: {e}\n\
                 run `make model` (or set KMT_MODEL_DIR to a directory holding it)",
                dir.display()
            ),
        }
    })
}

fn static_one(text: &str) -> Vec<f32> {
    static_model()
        .embed(&[text])
        .expect("embed")
        .pop()
        .expect("one vector")
}

#[test]
fn static_model_identity() {
    let m = static_model();
    assert!(m.model_id().starts_with("all-MiniLM-L6-v2-static"));
    assert_eq!(m.dim(), engine::embed::static_model::PCA_DIMS);
    assert!(m.embed(&[]).expect("empty").is_empty());
}

#[test]
fn static_vectors_are_unit_length() {
    let texts = [
        "a",
        "How do I create an index?",
        "",
        "[CLS]",
        "☃☃☃",
        &"word ".repeat(2000),
    ];
    let vs = static_model().embed(&texts).expect("embed");
    assert_eq!(vs.len(), texts.len());
    for (t, v) in texts.iter().zip(&vs) {
        assert_eq!(v.len(), static_model().dim());
        let norm = dot(v, v).sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "{:?}: norm {norm}",
            &t[..t.len().min(20)]
        );
    }
    // One text per call and many per call agree.
    for (t, v) in texts.iter().zip(&vs) {
        assert_close(&static_one(t), v, 1e-6, "batch vs single");
    }
}

#[test]
fn static_paraphrase_is_closer_than_unrelated_text() {
    let q = static_one("How do I create an index?");
    let para = static_one("What is the way to build a new index?");
    let related =
        static_one("CREATE INDEX constructs an index on the specified column of a table.");
    let unrelated = static_one("The cat slept in the warm afternoon sun.");
    let (p, r, u) = (dot(&q, &para), dot(&q, &related), dot(&q, &unrelated));
    assert!(p > u + 0.2, "paraphrase {p} should beat unrelated {u}");
    assert!(r > u + 0.1, "related {r} should beat unrelated {u}");
}

#[test]
fn static_is_much_faster_than_the_model_per_query() {
    let queries: Vec<String> = (0..50)
        .map(|i| format!("how do I configure replication for database number {i}"))
        .collect();
    let (fast, slow) = (static_model(), model());
    // Warm both (first calls fault in weights and grow the allocator).
    fast.embed(&[queries[0].as_str()]).expect("embed");
    slow.embed(&[queries[0].as_str()]).expect("embed");
    let time = |m: &dyn Embedder| {
        let t = std::time::Instant::now();
        for q in &queries {
            m.embed(&[q.as_str()]).expect("embed");
        }
        t.elapsed()
    };
    let (s, l) = (time(fast), time(slow));
    assert!(
        l >= s * 5,
        "static {s:?} should be at least 5× faster than the model {l:?} on 50 queries"
    );
}
