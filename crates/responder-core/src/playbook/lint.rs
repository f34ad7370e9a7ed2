//! What `validate` knows beyond the schema: finding types and type patterns against
//! the catalogue ([`crate::catalogue`]), `fields:` paths against GuardDuty's filter
//! attributes ([`crate::attributes::ATTRIBUTES`]). Each problem is a warning located at
//! its file:line:column with its field path and, when something close is known, a
//! did-you-mean; `responder validate --strict` makes warnings fail.
//!
//! They are warnings, not errors: a type newer than the catalogue is still matched,
//! and the matcher reads any path of the finding's JSON. But a type is compared
//! case-sensitively (by the matcher, and by EventBridge in the rule pattern), so
//! `Cryptocurrency:EC2/*` answers nothing; and `filter export` refuses a path that is
//! not a filter attribute.

use std::path::Path;

use globset::GlobBuilder;

use super::model::Playbook;
use super::yaml_path::{Seg, locate};
use crate::attributes::ATTRIBUTES;
use crate::catalogue::catalogue;
use crate::diagnostic::Diagnostic;
use crate::matcher::compile_glob;
use crate::matcher::criteria::Criteria;

/// Patterns longer than this get no did-you-mean (the search is quadratic).
const MAX_HINT_PATTERN: usize = 256;

/// The warnings for one playbook, `text` being its YAML (for the locations).
pub fn lint(file: &Path, text: &str, playbook: &Playbook) -> Vec<Diagnostic> {
    let catalogue = catalogue();
    let names: Vec<&str> = catalogue.iter().map(|e| e.finding_type.as_str()).collect();
    let mut out = Vec::new();
    let mut block = |criteria: &Criteria, base: &[Seg], prefix: &str| {
        for (j, pattern) in criteria.finding_types.iter().flatten().enumerate() {
            if let Some(message) = type_problem(pattern, &names) {
                let mut path = base.to_vec();
                path.extend([Seg::Key("finding_types"), Seg::Index(j)]);
                out.push(located(
                    file,
                    text,
                    &path,
                    format!("{prefix}.finding_types[{j}]"),
                    message,
                ));
            }
        }
        for key in criteria.fields.keys() {
            if let Some(message) = field_problem(key) {
                let mut path = base.to_vec();
                path.extend([Seg::Key("fields"), Seg::Key(key)]);
                out.push(located(
                    file,
                    text,
                    &path,
                    format!("{prefix}.fields.{key}"),
                    message,
                ));
            }
        }
    };
    block(&playbook.matches.value, &[Seg::Key("match")], "match");
    for (i, c) in playbook.exclude.iter().enumerate() {
        block(
            &c.value,
            &[Seg::Key("exclude"), Seg::Index(i)],
            &format!("exclude[{i}]"),
        );
    }
    out
}

fn located(file: &Path, text: &str, path: &[Seg], field: String, message: String) -> Diagnostic {
    let d = Diagnostic::error(file, message).warning().field(field);
    match locate(text, path) {
        Some(loc) => d.at(loc),
        None => d,
    }
}

fn did_you_mean(hint: Option<String>) -> String {
    hint.map(|h| format!(": did you mean {h:?}?"))
        .unwrap_or_default()
}

/// Why a `finding_types` entry answers nothing the catalogue knows, or `None`.
pub fn type_problem(pattern: &str, names: &[&str]) -> Option<String> {
    if !pattern.contains(['*', '?', '[', '{', '\\']) {
        if names.contains(&pattern) {
            return None;
        }
        return Some(format!(
            "{pattern:?} is not a finding type in the catalogue (types are matched case-sensitively){}",
            did_you_mean(closest(pattern, names.iter().copied()).map(str::to_owned))
        ));
    }
    // A pattern that does not compile is an error reported when the playbook loads.
    let matcher = compile_glob(pattern).ok()?.compile_matcher();
    if names.iter().any(|n| matcher.is_match(n)) {
        return None;
    }
    let hint = if pattern.len() > MAX_HINT_PATTERN {
        None
    } else {
        case_fix(pattern, names).or_else(|| prefix_fix(pattern, names))
    };
    Some(format!(
        "{pattern:?} matches no finding type in the catalogue (types are matched case-sensitively){}",
        did_you_mean(hint)
    ))
}

/// Why a `fields:` path is not a GuardDuty filter attribute, or `None`.
pub fn field_problem(path: &str) -> Option<String> {
    if ATTRIBUTES.contains(&path) {
        return None;
    }
    Some(format!(
        "{path:?} is not a GuardDuty filter attribute{} (the matcher reads it from the finding's JSON if it is there, but `filter export` cannot say it)",
        did_you_mean(closest(path, ATTRIBUTES.iter().copied()).map(str::to_owned))
    ))
}

/// The most generous distance at which a name is offered for a word of `n`
/// characters.
fn limit(n: usize) -> usize {
    (n / 6).max(2)
}

/// The candidate nearest to `word` (edit distance ignoring case, then with case),
/// when near enough.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .map(|c| {
            let folded = strsim::damerau_levenshtein(&lower, &c.to_lowercase());
            (folded, strsim::damerau_levenshtein(word, c), c)
        })
        .filter(|(folded, _, _)| *folded <= limit(word.chars().count()))
        .min_by_key(|(folded, exact, _)| (*folded, *exact))
        .map(|(_, _, c)| c)
}

/// A pattern that differs only in case from one matching a catalogued type: the
/// pattern with its letters as that type writes them (`*` and `?` patterns only).
fn case_fix(pattern: &str, names: &[&str]) -> Option<String> {
    if pattern.contains(['[', '{', '\\']) {
        return None;
    }
    let folded = GlobBuilder::new(pattern)
        .literal_separator(false)
        .case_insensitive(true)
        .build()
        .ok()?
        .compile_matcher();
    let name = names.iter().find(|n| folded.is_match(n))?;
    align(pattern, name)
}

/// The pattern with each literal character replaced by the character of `name` it
/// matches ignoring case; `None` when it does not match. Dynamic programming over
/// (pattern position, name position), so any number of `*` costs the same.
fn align(pattern: &str, name: &str) -> Option<String> {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = name.chars().collect();
    let same = |a: char, b: char| a.to_lowercase().eq(b.to_lowercase());
    // ok[i][j]: p[i..] matches t[j..].
    let mut ok = vec![vec![false; t.len() + 1]; p.len() + 1];
    ok[p.len()][t.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=t.len()).rev() {
            ok[i][j] = match p[i] {
                '*' => ok[i + 1][j] || (j < t.len() && ok[i][j + 1]),
                '?' => j < t.len() && ok[i + 1][j + 1],
                c => j < t.len() && same(c, t[j]) && ok[i + 1][j + 1],
            };
        }
    }
    if !ok[0][0] {
        return None;
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < p.len() {
        match p[i] {
            '*' if ok[i + 1][j] => {
                out.push('*');
                i += 1;
            }
            '*' => j += 1,
            '?' => {
                out.push('?');
                i += 1;
                j += 1;
            }
            _ => {
                out.push(t[j]);
                i += 1;
                j += 1;
            }
        }
    }
    Some(out)
}

/// A pattern whose literal start is misspelt: that start replaced by the nearest
/// start of a catalogued type, when the result matches some type.
fn prefix_fix(pattern: &str, names: &[&str]) -> Option<String> {
    let cut = pattern.find(['*', '?', '[', '{', '\\'])?;
    let (lit, rest) = pattern.split_at(cut);
    let n = lit.chars().count();
    if n == 0 {
        return None;
    }
    let lower = lit.to_lowercase();
    let mut candidates: Vec<(usize, String)> = Vec::new();
    for name in names {
        for (len, _) in name.char_indices().chain([(name.len(), ' ')]) {
            let count = name[..len].chars().count();
            if count + 3 < n || count > n + 3 {
                continue;
            }
            let d = strsim::damerau_levenshtein(&lower, &name[..len].to_lowercase());
            if d <= limit(n) {
                candidates.push((d, format!("{}{rest}", &name[..len])));
            }
        }
    }
    candidates.sort();
    candidates.dedup();
    candidates.into_iter().map(|(_, c)| c).find(|c| {
        compile_glob(c)
            .map(|g| g.compile_matcher())
            .is_ok_and(|m| names.iter().any(|n| m.is_match(n)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::load_str;

    fn names() -> Vec<String> {
        catalogue().into_iter().map(|e| e.finding_type).collect()
    }

    fn problem(pattern: &str) -> Option<String> {
        let names = names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        type_problem(pattern, &names)
    }

    #[test]
    fn catalogued_types_and_matching_patterns_pass() {
        assert_eq!(problem("UnauthorizedAccess:EC2/SSHBruteForce"), None);
        assert_eq!(problem("CryptoCurrency:EC2/*"), None);
        assert_eq!(problem("*!DNS"), None);
        assert_eq!(problem("*"), None);
        assert_eq!(field_problem("service.action.actionType"), None);
    }

    #[test]
    fn typos_get_a_did_you_mean() {
        assert_eq!(
            problem("UnauthorizedAcess:EC2/SSHBruteForce").unwrap(),
            "\"UnauthorizedAcess:EC2/SSHBruteForce\" is not a finding type in the catalogue (types are matched case-sensitively): did you mean \"UnauthorizedAccess:EC2/SSHBruteForce\"?"
        );
        assert!(
            problem("Cryptocurrency:EC2/*")
                .unwrap()
                .ends_with("did you mean \"CryptoCurrency:EC2/*\"?")
        );
        assert!(
            problem("cryptocurrency:ec2/*!dns")
                .unwrap()
                .ends_with("did you mean \"CryptoCurrency:EC2/*!DNS\"?")
        );
        assert!(
            problem("Cryptocurency:EC2/*")
                .unwrap()
                .ends_with("did you mean \"CryptoCurrency:EC2/*\"?")
        );
        assert!(
            problem("backdoor:EC2/C&CActivity.B")
                .unwrap()
                .ends_with("did you mean \"Backdoor:EC2/C&CActivity.B\"?")
        );
        let far = problem("Nothing:Like/This*").unwrap();
        assert!(far.contains("matches no finding type"), "{far}");
        assert!(!far.contains("did you mean"), "{far}");
        assert!(
            field_problem("service.action.networkConnectionAction.remotePortDetails.prot")
                .unwrap()
                .contains(
                    "did you mean \"service.action.networkConnectionAction.remotePortDetails.port\"?"
                )
        );
        assert!(field_problem("service.count").is_some());
    }

    #[test]
    fn warnings_are_located_with_their_field_path() {
        let text = "name: t\nmatch:\n  finding_types:\n    - 'CryptoCurrency:EC2/*'\n    - 'Cryptocurrency:Runtime/*'\n  fields:\n    service.action.actionTyp: {eq: DNS_REQUEST}\nexclude:\n  - finding_types: 'UnauthorizedAcess:EC2/SSHBruteForce'\nsteps:\n  - notify: {}\n";
        let p = load_str(Path::new("t.yaml"), text).unwrap();
        let shown: Vec<String> = lint(Path::new("t.yaml"), text, &p.playbook)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(shown[0].starts_with("t.yaml:5:7: warning: match.finding_types[1]: \"Cryptocurrency:Runtime/*\" matches no finding type"), "{}", shown[0]);
        assert!(shown[1].starts_with("t.yaml:7:5: warning: match.fields.service.action.actionTyp: \"service.action.actionTyp\" is not a GuardDuty filter attribute: did you mean \"service.action.actionType\"?"), "{}", shown[1]);
        assert!(
            shown[2].starts_with("t.yaml:9:20: warning: exclude[0].finding_types[0]: "),
            "{}",
            shown[2]
        );
    }

    #[test]
    fn hostile_patterns_end_quickly() {
        let p = format!("{}b", "*a".repeat(100));
        assert!(problem(&p).is_some());
    }
}
