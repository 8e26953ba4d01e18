//! Temporary: measures suggestion-map build time at 100k articles.
use chrono::Utc;
use engine::auth::Principal;
use engine::model::{Article, Status};
use engine::search::SearchIndex;
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let zipf = std::env::args().nth(2).as_deref() == Some("zipf");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let vocab: Vec<String> = (0..300_000)
        .map(|_| {
            let len = rng.random_range(3..12);
            (0..len)
                .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
                .collect()
        })
        .collect();
    let pick = |rng: &mut rand::rngs::StdRng| {
        let u: f64 = rng.random();
        if zipf { vocab[((u * (vocab.len() as f64).ln()).exp() as usize).min(vocab.len() - 1)].clone() } else { vocab[((u * u * u) * vocab.len() as f64) as usize].clone() }
    };
    let index = SearchIndex::in_memory().unwrap();
    let mut up = index.new_generation(2).unwrap();
    let t = Utc::now();
    let t0 = Instant::now();
    for i in 0..n {
        if i == 20_000 { eprintln!("stop"); }
        let title: Vec<String> = (0..rng.random_range(3..8))
            .map(|_| pick(&mut rng))
            .collect();
        let body: Vec<String> = (0..100).map(|_| pick(&mut rng)).collect();
        let a = Article {
            id: i as i64 + 1,
            slug: format!("a-{i}"),
            title: title.join(" "),
            summary: String::new(),
            body: body.join(" "),
            category: "c".into(),
            tags: vec![],
            audience: vec!["public".into()],
            status: Status::Published,
            owner: "x".into(),
            version: 1,
            created_at: t,
            updated_at: t,
            published_at: Some(t),
            review_due: None,
        };
        up.upsert(&a).unwrap();
    }
    up.commit(1).unwrap();
    index.publish(&up).unwrap();
    eprintln!(
        "indexed {n} in {:?}, docs {}",
        t0.elapsed(),
        index.num_docs()
    );
    let anon = Principal::anonymous();
    let cpu = || { let st = std::fs::read_to_string("/proc/self/stat").unwrap(); let f: Vec<&str> = st.rsplit(')').next().unwrap().split_whitespace().collect(); (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0 };
    let c1 = cpu();
    let t1 = Instant::now();
    let s = index.suggest(&anon, "ab", 8).unwrap();
    eprintln!(
        "first suggest (builds maps): {:?} -> {}",
        t1.elapsed(),
        s.len()
    );
    for q in ["ab", "a", "abcdefgh", "qwertyuiop", "zzzz", "mn", "abc abd"] {
        let t2 = Instant::now();
        let s = index.suggest(&anon, q, 8).unwrap();
        eprintln!("suggest {q:?}: {:?} -> {}", t2.elapsed(), s.len());
    }
    let mut up2 = index.new_generation(1).unwrap(); return;
    for i in 0..100 {
        let a = Article { id: (n + i) as i64 + 1, slug: format!("b-{i}"), title: format!("fresh title {i}"), summary: String::new(), body: "fresh body words".into(), category: "c".into(), tags: vec![], audience: vec!["public".into()], status: Status::Published, owner: "x".into(), version: 1, created_at: t, updated_at: t, published_at: Some(t), review_due: None };
        up2.upsert(&a).unwrap();
    }
    up2.commit(2).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let t4 = Instant::now();
    let s = index.suggest(&anon, "fresh", 8).unwrap();
    eprintln!("suggest after a commit (incremental rebuild): {:?} -> {:?}", t4.elapsed(), s.iter().map(|x| &x.text).collect::<Vec<_>>());
    let t3 = Instant::now();
    let d = index.did_you_mean(&anon, "qwertyuiopas zzzzzq").unwrap();
    eprintln!("did_you_mean: {:?} -> {d:?}", t3.elapsed());
}
