//! Whether a review has the approvals it needs. Each approval is one person's, and one person
//! counts once: for "one per group" a person who sits in two reviewer groups approves for one of
//! them, so two groups always mean two people. Finding an assignment of people to groups is a
//! small bipartite matching (a handful of groups and approvers), done by augmenting paths.

use loupe_protocol::{Approvals, ReviewRules};

use crate::store::{DecisionRecord, ReviewRecord};

/// The [`crate::store::Tally`] the store calls under the review's lock.
pub fn is_approved(review: &ReviewRecord, decisions: &[DecisionRecord]) -> bool {
    let Ok(rules) = serde_json::from_str::<ReviewRules>(&review.rules) else {
        return false;
    };
    let approvers: Vec<Vec<String>> = decisions
        .iter()
        .filter(|decision| {
            decision.verdict == "approve" && decision.reviewer_id != review.requester_id
        })
        .map(|decision| serde_json::from_str(&decision.groups).unwrap_or_default())
        .collect();
    enough(rules.approvals, &rules.reviewer_groups, &approvers)
}

/// `approvers` holds, for each approving person, the reviewer groups they belonged to.
pub fn enough(approvals: Approvals, groups: &[String], approvers: &[Vec<String>]) -> bool {
    match approvals {
        Approvals::Count(needed) => {
            let eligible = approvers.iter().filter(|theirs| !theirs.is_empty()).count();
            eligible >= needed.max(1) as usize
        }
        Approvals::EachGroup => {
            !groups.is_empty() && matched_groups(groups, approvers) == groups.len()
        }
    }
}

/// How many groups can each get a different approver.
fn matched_groups(groups: &[String], approvers: &[Vec<String>]) -> usize {
    // For each group, the approver assigned to it.
    let mut assigned: Vec<Option<usize>> = vec![None; groups.len()];
    let mut matched = 0;
    for approver in 0..approvers.len() {
        let mut visited = vec![false; groups.len()];
        if assign(approver, groups, approvers, &mut assigned, &mut visited) {
            matched += 1;
        }
    }
    matched
}

fn assign(
    approver: usize,
    groups: &[String],
    approvers: &[Vec<String>],
    assigned: &mut [Option<usize>],
    visited: &mut [bool],
) -> bool {
    for (index, group) in groups.iter().enumerate() {
        if visited[index] || !approvers[approver].contains(group) {
            continue;
        }
        visited[index] = true;
        let free = match assigned[index] {
            None => true,
            Some(holder) => assign(holder, groups, approvers, assigned, visited),
        };
        if free {
            assigned[index] = Some(approver);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(groups: &[&[&str]]) -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|theirs| theirs.iter().map(|group| (*group).to_owned()).collect())
            .collect()
    }

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn each_group_needs_a_different_person_per_group() {
        let both = groups(&["dba", "sre"]);
        assert!(!enough(Approvals::EachGroup, &both, &people(&[])));
        assert!(!enough(Approvals::EachGroup, &both, &people(&[&["dba"]])));
        assert!(!enough(
            Approvals::EachGroup,
            &both,
            &people(&[&["dba"], &["dba"]])
        ));
        // One person in both groups covers only one of them.
        assert!(!enough(
            Approvals::EachGroup,
            &both,
            &people(&[&["dba", "sre"]])
        ));
        assert!(enough(
            Approvals::EachGroup,
            &both,
            &people(&[&["dba"], &["sre"]])
        ));
        // The first approver must move to the other group for the second to fit.
        assert!(enough(
            Approvals::EachGroup,
            &both,
            &people(&[&["dba", "sre"], &["dba"]])
        ));
    }

    #[test]
    fn a_count_needs_that_many_reviewers() {
        let one = groups(&["dba"]);
        assert!(!enough(Approvals::Count(2), &one, &people(&[&["dba"]])));
        assert!(enough(
            Approvals::Count(2),
            &one,
            &people(&[&["dba"], &["dba"]])
        ));
        // Someone who was in no reviewer group when approving does not count.
        assert!(!enough(
            Approvals::Count(2),
            &one,
            &people(&[&["dba"], &[]])
        ));
        assert!(enough(Approvals::Count(1), &one, &people(&[&["dba"]])));
    }

    #[test]
    fn no_groups_can_never_be_satisfied_one_per_group() {
        assert!(!enough(Approvals::EachGroup, &[], &people(&[&["x"]])));
    }
}
