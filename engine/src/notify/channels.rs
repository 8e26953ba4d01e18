//! Promotion channels of a category: webhook subscriptions that hear of
//! every published version, and an Atom feed of recent publications.
//!
//! The endpoint checks the permission (subscriptions need `rule.admin`);
//! these add the input rules. The feed shows only what the caller may
//! read, by the same rule as every read path.

use chrono::SecondsFormat;
use rand::RngCore;

use crate::auth::Principal;
use crate::error::Result;
use crate::model::{check_url, validate_name, Article, CategoryWebhook};
use crate::store::Store;

/// Most entries in a feed.
pub const FEED_ENTRIES: usize = 50;

/// Registers a webhook for `category`'s publications with a new random
/// secret (256 bits, hex), returned in the result only.
pub async fn register_webhook(
    store: &Store,
    p: &Principal,
    category: &str,
    url: &str,
) -> Result<CategoryWebhook> {
    validate_name("category", category)?;
    let url = url.trim();
    check_url("url", url)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("whsec_{}", hex::encode(bytes));
    store.create_webhook(p, category, url, &secret).await
}

/// The webhooks of `category` (no secrets).
pub async fn webhooks(store: &Store, category: &str) -> Result<Vec<CategoryWebhook>> {
    validate_name("category", category)?;
    store.list_webhooks(category).await
}

/// Deletes webhook `id` of `category`.
pub async fn delete_webhook(store: &Store, p: &Principal, category: &str, id: i64) -> Result<()> {
    validate_name("category", category)?;
    store.delete_webhook(p, category, id).await
}

/// The Atom feed (RFC 4287) of `category`'s most recently published
/// articles that `p` may read. Links are relative to the server. A
/// category that does not exist, or holds nothing readable, gives an
/// empty feed: the answer never tells whether hidden articles exist.
pub async fn feed(store: &Store, p: &Principal, category: &str) -> Result<String> {
    validate_name("category", category)?;
    let articles: Vec<Article> = store
        .recently_published(category)
        .await?
        .into_iter()
        .filter(|a| p.can_read(a))
        .take(FEED_ENTRIES)
        .collect();
    Ok(atom(category, &articles))
}

fn atom(category: &str, articles: &[Article]) -> String {
    let ts = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    // An empty feed still needs an `updated`: the epoch says "never".
    let updated = articles
        .iter()
        .map(|a| a.updated_at)
        .max()
        .unwrap_or_default();
    let cat = xml_escape(category);
    let mut x = String::with_capacity(512 + articles.len() * 512);
    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    x.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    x.push_str(&format!("  <id>urn:kmt:category:{cat}</id>\n"));
    x.push_str(&format!("  <title>KMT: {cat}</title>\n"));
    x.push_str(&format!("  <updated>{}</updated>\n", ts(updated)));
    x.push_str(&format!(
        "  <link rel=\"self\" href=\"/v1/categories/{cat}/feed.atom\"/>\n"
    ));
    x.push_str("  <author><name>KMT</name></author>\n");
    for a in articles {
        x.push_str("  <entry>\n");
        x.push_str(&format!(
            "    <id>urn:kmt:article:{}:version:{}</id>\n",
            a.id, a.version
        ));
        x.push_str(&format!("    <title>{}</title>\n", xml_escape(&a.title)));
        x.push_str(&format!(
            "    <link href=\"/v1/articles/{}\"/>\n",
            xml_escape(&a.slug)
        ));
        x.push_str(&format!("    <updated>{}</updated>\n", ts(a.updated_at)));
        if let Some(p) = a.published_at {
            x.push_str(&format!("    <published>{}</published>\n", ts(p)));
        }
        x.push_str(&format!(
            "    <author><name>{}</name></author>\n",
            xml_escape(&a.owner)
        ));
        x.push_str(&format!("    <category term=\"{cat}\"/>\n"));
        if !a.summary.is_empty() {
            x.push_str(&format!(
                "    <summary>{}</summary>\n",
                xml_escape(&a.summary)
            ));
        }
        x.push_str("  </entry>\n");
    }
    x.push_str("</feed>\n");
    x
}

/// Escapes text for XML content and attribute values, dropping characters
/// XML 1.0 does not allow at all (most C0 controls).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_forbidden_controls() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}\td"),
            "a&lt;b&gt;&amp;&quot;c&apos;\td"
        );
    }
}
