//! Usage turned into ratings the models can learn from.
//!
//! An explicit star rating always wins: the pair's rating is the stars and
//! its weight is 1. Without stars, the pair gets an *implicit* rating on
//! the same 1–5 scale from how much the user engaged:
//!
//! ```text
//! e      = ln(1 + views) + 0.5·ln(1 + clicks) + ln(1 + dwell_seconds / 30)
//! rating = clamp(2.5 + e + h, 1, 5)     h = +1 helpful, -1.5 not helpful, 0 none
//! weight = clamp(0.2 + 0.15·e, 0.2, 0.6)
//! ```
//!
//! So one bare view (e ≈ 0.69) reads as a lukewarm 3.2 with little weight,
//! a few views with minutes of reading approach 5, and a "not helpful"
//! pulls the pair down. The weight scales the pair's error in SGD: an
//! implicit rating never counts more than 0.6 of an explicit one, because
//! opening an article is weaker evidence than saying what it was worth.
//! Logarithms keep a user who reloads a page fifty times from dominating.

use crate::model::Interaction;

/// A rating derived from one (user, article) pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Implicit {
    /// On the 1–5 scale.
    pub rating: f32,
    /// Sample weight in training (explicit = 1).
    pub weight: f32,
    /// Whether the rating is the user's stars.
    pub explicit: bool,
}

/// Engagement score `e` of the formula in the module docs.
pub fn engagement(views: i64, clicks: i64, dwell_ms: i64) -> f32 {
    let v = views.max(0) as f32;
    let c = clicks.max(0) as f32;
    let d = dwell_ms.max(0) as f32 / 1000.0;
    v.ln_1p() + 0.5 * c.ln_1p() + (d / 30.0).ln_1p()
}

/// The rating and weight of one interaction (see the module docs).
pub fn rating_of(i: &Interaction) -> Implicit {
    if let Some(stars) = i.stars {
        return Implicit {
            rating: stars.clamp(1, 5) as f32,
            weight: 1.0,
            explicit: true,
        };
    }
    let e = engagement(i.views, i.clicks, i.dwell_ms);
    let h = match i.helpful {
        Some(true) => 1.0,
        Some(false) => -1.5,
        None => 0.0,
    };
    Implicit {
        rating: (2.5 + e + h).clamp(1.0, 5.0),
        weight: (0.2 + 0.15 * e).clamp(0.2, 0.6),
        explicit: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn pair(views: i64, dwell_ms: i64, stars: Option<i32>, helpful: Option<bool>) -> Interaction {
        Interaction {
            user_id: 1,
            article_id: 1,
            views,
            clicks: 0,
            dwell_ms,
            stars,
            helpful,
            last_at: Utc::now(),
        }
    }

    #[test]
    fn stars_dominate_and_engagement_raises_implicit_ratings() {
        assert_eq!(rating_of(&pair(50, 9_000_000, Some(1), None)).rating, 1.0);
        assert_eq!(rating_of(&pair(0, 0, Some(4), None)).weight, 1.0);
        let glance = rating_of(&pair(1, 0, None, None));
        let read = rating_of(&pair(3, 240_000, None, None));
        assert!(glance.rating < read.rating && glance.weight < read.weight);
        assert!(read.weight <= 0.6 && !read.explicit);
        let disliked = rating_of(&pair(3, 240_000, None, Some(false)));
        assert!(disliked.rating < read.rating);
    }
}
