//! Category rules: what a submission must satisfy, who approves it, how
//! often it is reviewed, and where overdue tasks escalate.
//!
//! Rules are versioned per category; category `*` is the global default
//! used by categories without their own. A submission is checked against
//! the effective rules and every fault is reported at once.

use crate::auth::{roles, Principal};
use crate::error::{Error, FieldFault, Result};
use crate::model::{validate_name, ArticleDraft, CategoryRule, RuleSpec};
use crate::store::Store;

/// The category whose rules apply where a category has none.
pub const GLOBAL: &str = "*";
/// Fields a rule may make mandatory.
pub const MANDATORY_FIELDS: [&str; 5] = ["summary", "body", "tags", "audience", "review_due"];
/// Fields a rule may give a minimum length.
pub const LENGTH_FIELDS: [&str; 3] = ["title", "summary", "body"];

/// Checks a rule set as an admin wrote it; every fault is listed.
pub fn validate_spec(category: &str, spec: &RuleSpec) -> Result<()> {
    let mut faults = Vec::new();
    let mut fault = |field: String, message: String| faults.push(FieldFault { field, message });
    if category != GLOBAL {
        if let Err(Error::Invalid { message, .. }) = validate_name("category", category) {
            fault("category".into(), message);
        }
    }
    for (i, f) in spec.mandatory_fields.iter().enumerate() {
        if !MANDATORY_FIELDS.contains(&f.as_str()) {
            fault(
                format!("mandatory_fields[{i}]"),
                format!("{f:?} is not one of {}", MANDATORY_FIELDS.join(", ")),
            );
        }
    }
    for (f, n) in &spec.min_lengths {
        if !LENGTH_FIELDS.contains(&f.as_str()) {
            fault(
                format!("min_lengths.{f}"),
                format!("only {} have minimum lengths", LENGTH_FIELDS.join(", ")),
            );
        } else if *n > 100_000 {
            fault(format!("min_lengths.{f}"), "must be at most 100000".into());
        }
    }
    if spec.review_interval_days == Some(0) || spec.review_interval_days.is_some_and(|d| d > 3650) {
        fault(
            "review_interval_days".into(),
            "must be 1..=3650 days".into(),
        );
    }
    if let Some(r) = &spec.approver_role {
        if let Err(Error::Invalid { message, .. }) = validate_name("approver_role", r) {
            fault("approver_role".into(), message);
        }
    }
    let mut last = None;
    for (i, step) in spec.escalation.iter().enumerate() {
        if step.to_role.is_none() && step.to_user.is_none() {
            fault(
                format!("escalation[{i}]"),
                "name a role or a user to notify".into(),
            );
        }
        if last.is_some_and(|l| step.after_hours <= l) {
            fault(
                format!("escalation[{i}].after_hours"),
                "steps must come later than the one before".into(),
            );
        }
        last = Some(step.after_hours);
    }
    if faults.is_empty() {
        Ok(())
    } else {
        Err(Error::RuleViolations(faults))
    }
}

/// The rules that apply to a category: its own, else the global default,
/// else none (an empty spec).
pub async fn effective(store: &Store, category: &str) -> Result<RuleSpec> {
    check_category(category)?;
    if let Some(r) = store.get_rule(category).await? {
        return Ok(r.spec);
    }
    Ok(store
        .get_rule(GLOBAL)
        .await?
        .map(|r| r.spec)
        .unwrap_or_default())
}

/// Every version of a category's rules (`*`: the global default), oldest
/// first.
pub async fn history(store: &Store, category: &str) -> Result<Vec<CategoryRule>> {
    check_category(category)?;
    store.rule_history(category).await
}

/// A category name as rules take it: a valid name or `*`. Looking up a
/// name no category could have is a client error, not an empty answer.
fn check_category(category: &str) -> Result<()> {
    if category == GLOBAL {
        Ok(())
    } else {
        validate_name("category", category)
    }
}

/// The role that approves submissions under `spec`.
pub fn approver_role(spec: &RuleSpec) -> &str {
    spec.approver_role.as_deref().unwrap_or(roles::REVIEWER)
}

/// Every way `draft` breaks `spec`.
pub fn check(spec: &RuleSpec, draft: &ArticleDraft) -> Vec<FieldFault> {
    let mut faults = Vec::new();
    for f in &spec.mandatory_fields {
        let empty = match f.as_str() {
            "summary" => draft.summary.trim().is_empty(),
            "body" => draft.body.trim().is_empty(),
            "tags" => draft.tags.is_empty(),
            "audience" => draft.audience.is_empty(),
            "review_due" => draft.review_due.is_none(),
            _ => false,
        };
        if empty {
            faults.push(FieldFault {
                field: f.clone(),
                message: format!("is required in category {}", draft.category),
            });
        }
    }
    for (f, min) in &spec.min_lengths {
        let len = match f.as_str() {
            "title" => draft.title.chars().count(),
            "summary" => draft.summary.trim().chars().count(),
            "body" => draft.body.trim().chars().count(),
            _ => continue,
        };
        if len < *min as usize && !faults.iter().any(|x| &x.field == f) {
            faults.push(FieldFault {
                field: f.clone(),
                message: format!("must be at least {min} characters (has {len})"),
            });
        }
    }
    faults
}

/// Saves a new version of a category's rules after validating them.
pub async fn save(
    store: &Store,
    p: &Principal,
    category: &str,
    spec: RuleSpec,
) -> Result<CategoryRule> {
    validate_spec(category, &spec)?;
    store.save_rule(p, category, &spec).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EscalationStep, Status};

    fn draft() -> ArticleDraft {
        ArticleDraft {
            slug: "a".into(),
            title: "Short".into(),
            summary: " ".into(),
            body: "body".into(),
            category: "audits".into(),
            tags: vec![],
            audience: vec![],
            status: Status::Draft,
            review_due: None,
        }
    }

    #[test]
    fn every_fault_is_listed() {
        let spec = RuleSpec {
            mandatory_fields: vec!["summary".into(), "tags".into()],
            min_lengths: [("title".to_string(), 10), ("summary".to_string(), 5)].into(),
            ..Default::default()
        };
        let f: Vec<String> = check(&spec, &draft())
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(f, vec!["summary", "tags", "title"]);
    }

    #[test]
    fn specs_are_validated() {
        let bad = RuleSpec {
            mandatory_fields: vec!["colour".into()],
            review_interval_days: Some(0),
            escalation: vec![
                EscalationStep {
                    after_hours: 24,
                    to_role: Some("director".into()),
                    to_user: None,
                },
                EscalationStep {
                    after_hours: 12,
                    to_role: None,
                    to_user: None,
                },
            ],
            ..Default::default()
        };
        let Err(Error::RuleViolations(f)) = validate_spec("audits", &bad) else {
            panic!()
        };
        let fields: Vec<&str> = f.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "mandatory_fields[0]",
                "review_interval_days",
                "escalation[1]",
                "escalation[1].after_hours"
            ]
        );
        assert!(validate_spec(GLOBAL, &RuleSpec::default()).is_ok());
    }
}
