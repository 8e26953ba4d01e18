//! The web application's pages and assets, embedded at build time from
//! `web/app/` (see `build.rs`): `/` is `index.html`, `/{page}` is
//! `{page}.html` (so `/article?id=…` is `article.html`), and every file is
//! also served as `/assets/{name}`. No files to deploy, no CDN.

use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};

use crate::error::problem;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded asset called `name`, with its content type.
fn lookup(name: &str) -> Option<(&'static [u8], &'static str)> {
    ASSETS
        .binary_search_by(|(n, _, _)| (*n).cmp(name))
        .ok()
        .map(|i| (ASSETS[i].1, ASSETS[i].2))
}

fn serve(name: &str, missing: &str) -> Response {
    match lookup(name) {
        Some((body, kind)) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        None => problem(StatusCode::NOT_FOUND, missing.into(), None),
    }
}

/// `GET /`: the search page.
pub async fn home() -> Response {
    serve("index.html", "no such page")
}

/// `GET /{page}`: another page of the application.
pub async fn page(Path(page): Path<String>) -> Response {
    if page.contains('.') || page == "index" {
        return problem(StatusCode::NOT_FOUND, "no such page".into(), None);
    }
    serve(&format!("{page}.html"), "no such page")
}

/// `GET /assets/{name}`: a script, style sheet or page.
pub async fn asset(Path(name): Path<String>) -> Response {
    serve(&name, "no such asset")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_holds_the_client_library() {
        assert!(ASSETS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(lookup("kmt-client.js").is_some());
        assert!(lookup("index.html").is_some());
        assert!(lookup("../Cargo.toml").is_none());
    }
}
