//! A real S3-compatible server for the audit-shipping tests: `s3s-fs` (the
//! S3 protocol over hyper, objects as files under a directory) with SigV4
//! authentication, on a loopback port, started in-process.
//!
//! A thin recording layer in front of it keeps each request's method, path
//! and headers, because s3s-fs accepts Object Lock headers but does not
//! store them: the tests check what the client sent.

#![allow(dead_code)] // not every test uses every helper

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use engine::audit_ship::S3Config;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// Credentials the server accepts.
pub const ACCESS_KEY: &str = "AKIAKMTTESTKEY";
/// Secret of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "kmt-test-secret-key";

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path (bucket and key, path-style).
    pub path: String,
    /// Request headers.
    pub headers: hyper::HeaderMap,
}

/// A running server; stopped (every connection closed) on drop.
pub struct S3Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory: `<root>/<bucket>/<key>` per object.
    pub root: PathBuf,
    /// Every request received, in order.
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

impl S3Server {
    /// Starts a server over `root` with an empty `bucket`, on a free port.
    pub async fn start(root: &Path, bucket: &str) -> S3Server {
        S3Server::start_on("127.0.0.1:0".parse().unwrap(), root, bucket).await
    }

    /// Starts a server on `addr` (a port chosen earlier) over `root`,
    /// creating `bucket` if missing.
    pub async fn start_on(addr: SocketAddr, root: &Path, bucket: &str) -> S3Server {
        // An s3s-fs bucket is a directory under the root.
        std::fs::create_dir_all(root.join(bucket)).unwrap();
        let fs = s3s_fs::FileSystem::new(root).unwrap();
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set, so aborting the task closes them
            // too (a client's pooled connection must not outlive a "stop").
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (service, log) = (service.clone(), log.clone());
                let handler = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    log.lock().unwrap().push(Recorded {
                        method: req.method().to_string(),
                        path: req.uri().path().to_string(),
                        headers: req.headers().clone(),
                    });
                    hyper::service::Service::call(&service, req)
                });
                conns.spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder
                        .serve_connection(TokioIo::new(socket), handler)
                        .await;
                });
            }
        });
        S3Server {
            addr,
            root: root.to_path_buf(),
            requests,
            task,
        }
    }

    /// Client settings for `bucket` on this server.
    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        config_for(self.addr, bucket, prefix)
    }

    /// The file holding `key` of `bucket`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// The recorded `PUT`s of objects.
    pub fn puts(&self) -> Vec<Recorded> {
        let all = self.requests.lock().unwrap();
        all.iter().filter(|r| r.method == "PUT").cloned().collect()
    }
}

/// Client settings for `bucket` on a server at `addr` (running or not).
pub fn config_for(addr: SocketAddr, bucket: &str, prefix: &str) -> S3Config {
    S3Config {
        bucket: bucket.into(),
        prefix: prefix.into(),
        endpoint: Some(format!("http://{addr}")),
        region: "us-east-1".into(),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        session_token: None,
        object_lock: None,
    }
}
