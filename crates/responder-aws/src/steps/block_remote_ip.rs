//! `block-remote-ip`: deny entries for the planned addresses, inbound and outbound,
//! in the network ACL of every subnet the live instance's ENIs are in, and their
//! removal at expiry ([`expire_due`]).
//!
//! Entries are only ever added with CreateNetworkAclEntry (never Replace), under
//! rule numbers that are free and lower than the first allow entry of their
//! direction (a deny after an allow that matches is never evaluated). Each entry is
//! recorded in the ledger before it is created, so that no entry of ours lives
//! without the record that makes it expire. Expiry deletes an entry only when it is
//! still exactly ours (same number, block, deny, direction).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{NetworkAcl, NetworkAclEntry, RuleAction};
use responder_core::steps::block_remote_ip::{Cidr, Planned, never_blocked};
use responder_core::tags;
use serde::Serialize;
use serde_json::json;

use crate::call::{CallError, err};
use crate::context::{Ctx, StepResult, ledger_error};
use crate::ledger::{BlockRecord, BlockStatus, Ledger, LedgerError};
use crate::tagging::filter;

/// The lowest rule number EC2 reserves (`*`, the final deny of each family).
const RESERVED_RULE: i32 = 32767;
/// How many times a rule number taken between the describe and the create is
/// replaced by the next free one.
const NUMBER_ATTEMPTS: usize = 5;

/// One entry to create.
#[derive(Debug, Clone)]
struct Want {
    acl: String,
    egress: bool,
    cidr: String,
}

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    match block(ctx, a).await {
        Ok(r) | Err(r) => r,
    }
}

async fn block(ctx: &mut Ctx<'_>, a: &Planned) -> Result<StepResult, StepResult> {
    let mut notes: Vec<String> = a
        .skipped
        .iter()
        .map(|s| {
            format!(
                "not blocked: {} ({})",
                responder_core::text::escape(&s.address),
                s.reason
            )
        })
        .collect();
    let with_notes = |r: StepResult, notes: &[String]| {
        let mut r = r;
        r.notes.extend(notes.iter().cloned());
        r
    };
    if a.cidrs.is_empty() {
        return Err(with_notes(
            StepResult::skipped("the finding names no remote address that may be blocked"),
            &notes,
        ));
    }
    if ctx.ledger.is_none() && !ctx.dry_run {
        return Err(with_notes(
            StepResult::skipped(
                "no ledger: nothing would expire the deny entries, so none is added (the function always has one; `responder run --ledger-table`)",
            ),
            &notes,
        ));
    }
    // The subnets and VPCs of the live ENIs, never the finding's.
    let view = match ctx.view(&a.instance_id).await {
        Ok(Some(v)) => v.clone(),
        Ok(None) => {
            return Err(StepResult::skipped(format!(
                "instance {} not found: no subnet to protect",
                a.instance_id
            )));
        }
        Err(e) => return Err(StepResult::from_error(&e, false)),
    };
    let mut subnets: BTreeSet<String> = BTreeSet::new();
    let mut vpcs: BTreeSet<String> = BTreeSet::new();
    for e in &view.enis {
        subnets.extend(e.subnet_id.clone());
        vpcs.extend(e.vpc_id.clone());
    }
    if subnets.is_empty() {
        return Err(with_notes(
            StepResult::skipped(format!(
                "instance {} has no network interface in a subnet",
                a.instance_id
            )),
            &notes,
        ));
    }
    let ec2 = ctx.ec2().clone();
    let vpc_blocks = vpc_cidrs(&ec2, &vpcs)
        .await
        .map_err(|e| StepResult::from_error(&e, false))?;
    // The never-block list again, with the VPC's own blocks from the live describe.
    let mut cidrs: Vec<String> = Vec::new();
    for c in &a.cidrs {
        let Ok(cidr) = c.parse::<Cidr>() else {
            notes.push(format!(
                "not blocked: {} (not a CIDR block)",
                responder_core::text::escape(c)
            ));
            continue;
        };
        let single = cidr.prefix == if cidr.addr.is_ipv4() { 32 } else { 128 };
        let reason = if !single {
            Some("only single addresses are ever blocked".to_owned())
        } else if let Some(b) = never_blocked(cidr.addr, &a.never_block) {
            Some(format!("on the never-block list ({b})"))
        } else {
            vpc_blocks
                .iter()
                .find(|(_, b)| b.contains(cidr.addr))
                .map(|(vpc, b)| format!("in the VPC's own block {b} ({vpc})"))
        };
        match reason {
            Some(reason) => notes.push(format!("not blocked: {c} ({reason})")),
            None => cidrs.push(cidr.to_string()),
        }
    }
    if cidrs.is_empty() {
        return Err(with_notes(
            StepResult::skipped("every remote address is on the never-block list"),
            &notes,
        ));
    }
    let subnet_list: Vec<&str> = subnets.iter().map(String::as_str).collect();
    let acls = describe_acls(&ec2, "association.subnet-id", &subnet_list)
        .await
        .map_err(|e| StepResult::from_error(&e, false))?;
    // Check every ACL and direction first: with no room anywhere, nothing is created.
    let mut wants: Vec<Want> = Vec::new();
    let mut present: Vec<String> = Vec::new();
    for acl in acls.values() {
        let id = acl.network_acl_id().unwrap_or_default().to_owned();
        if is_deny_all(acl) {
            notes.push(format!(
                "network ACL {id} is the responder's deny-all ACL: nothing to add"
            ));
            continue;
        }
        for egress in [false, true] {
            let mut new_v4 = 0u32;
            let mut new_v6 = 0u32;
            for cidr in &cidrs {
                if find_deny(acl, egress, cidr).is_some() {
                    present.push(format!("{id} {} {cidr}", direction(egress)));
                    continue;
                }
                if cidr.contains(':') {
                    new_v6 += 1;
                } else {
                    new_v4 += 1;
                }
                wants.push(Want {
                    acl: id.clone(),
                    egress,
                    cidr: cidr.clone(),
                });
            }
            for (v6, new) in [(false, new_v4), (true, new_v6)] {
                let used = count_rules(acl, egress, v6);
                if new > 0 && used + new > a.entry_limit {
                    return Err(with_notes(
                        StepResult::internal(format!(
                            "network ACL {id} has {used} {} {} rules and room for {} under the limit of {}: {new} more do not fit; no entry was added and none removed",
                            if v6 { "IPv6" } else { "IPv4" },
                            direction_word(egress),
                            a.entry_limit.saturating_sub(used),
                            a.entry_limit
                        )),
                        &notes,
                    ));
                }
            }
            let needed = wants
                .iter()
                .filter(|w| w.acl == id && w.egress == egress)
                .count();
            if free_numbers(acl, egress, needed).len() < needed {
                return Err(with_notes(
                    StepResult::internal(format!(
                        "network ACL {id}: fewer than {needed} free {} rule numbers below its first allow entry ({}): a deny placed after an allow would never apply; no entry was added",
                        direction_word(egress),
                        first_allow(acl, egress).unwrap_or(RESERVED_RULE)
                    )),
                    &notes,
                ));
            }
        }
    }
    for p in &present {
        notes.push(format!("already denied: {p}"));
    }
    if wants.is_empty() {
        return Err(with_notes(
            StepResult::already("every address is already denied in every ACL"),
            &notes,
        ));
    }
    if ctx.dry_run
        && let Some(w) = wants.first()
    {
        let number = acls
            .get(&w.acl)
            .and_then(|acl| free_numbers(acl, w.egress, 1).first().copied())
            .unwrap_or(1);
        let r = ec2
            .create_network_acl_entry()
            .dry_run(true)
            .network_acl_id(&w.acl)
            .rule_number(number)
            .egress(w.egress)
            .protocol("-1")
            .rule_action(RuleAction::Deny)
            .set_cidr_block((!w.cidr.contains(':')).then(|| w.cidr.clone()))
            .set_ipv6_cidr_block(w.cidr.contains(':').then(|| w.cidr.clone()))
            .send()
            .await
            .map_err(err);
        let mut out = match r {
            // An endpoint that ignores DryRun (an emulator) created the entry: it is
            // deleted at once, since no record would ever expire it.
            Ok(_) => {
                let undo = ec2
                    .delete_network_acl_entry()
                    .network_acl_id(&w.acl)
                    .rule_number(number)
                    .egress(w.egress)
                    .send()
                    .await
                    .map_err(err);
                match undo {
                    Ok(_) => StepResult::new(crate::report::Outcome::WouldSucceed)
                        .note("the endpoint ignored DryRun and created the entry: deleted at once"),
                    Err(e) => StepResult::internal(format!(
                        "the endpoint ignored DryRun and created {} rule {number} ({}); deleting it failed: {e}",
                        w.acl,
                        direction(w.egress)
                    )),
                }
            }
            Err(e) => StepResult::from_error(&e, true),
        };
        out.notes.push(format!(
            "would deny {} entr{} ({})",
            wants.len(),
            if wants.len() == 1 { "y" } else { "ies" },
            wants
                .iter()
                .map(|w| format!("{} {} {}", w.acl, direction(w.egress), w.cidr))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Err(with_notes(out, &notes));
    }
    let Some(ledger) = ctx.ledger else {
        return Err(StepResult::internal("no ledger"));
    };
    let now = SystemTime::now();
    let expires = now + Duration::from_secs(u64::from(a.expire_after_hours) * 3600);
    let mut created: Vec<Created> = Vec::new();
    let mut acls = acls;
    // Numbers this run took: the described ACLs do not show them.
    let mut taken: BTreeSet<(String, bool, i32)> = BTreeSet::new();
    for w in &wants {
        let base = BlockRecord {
            expires,
            network_acl_id: w.acl.clone(),
            rule_number: 0,
            egress: w.egress,
            cidr: w.cidr.clone(),
            account: ctx.meta.account.clone(),
            region: ctx.meta.region.clone(),
            finding_id: ctx.finding.id.clone(),
            instance_id: a.instance_id.clone(),
            status: BlockStatus::Active,
            note: String::new(),
        };
        match create_entry(&ec2, ledger, &mut acls, &taken, base, now).await {
            Ok(c) => {
                taken.insert((c.network_acl_id.clone(), c.egress, c.rule_number));
                created.push(c)
            }
            Err(message) => {
                let mut r = StepResult::internal(message);
                r.resources = created.iter().map(Created::resource).collect();
                r.state = Some(json!({ "entries": created }));
                return Err(with_notes(r, &notes));
            }
        }
    }
    let mut r = StepResult::done(created.iter().map(Created::resource).collect());
    r.state = Some(json!({ "entries": created, "expires": crate::ledger::rfc3339_ms(expires) }));
    r.notes.push(format!(
        "{} deny entr{} added for {}; removed after {} h (at {}); they apply to every instance in the subnet",
        created.len(),
        if created.len() == 1 { "y" } else { "ies" },
        cidrs.join(", "),
        a.expire_after_hours,
        crate::ledger::rfc3339_ms(expires)
    ));
    Ok(with_notes(r, &notes))
}

/// One entry created.
#[derive(Debug, Clone, Serialize)]
struct Created {
    network_acl_id: String,
    rule_number: i32,
    egress: bool,
    cidr: String,
}

impl Created {
    fn resource(&self) -> String {
        format!(
            "{}#{}#{}#{}",
            self.network_acl_id,
            self.rule_number,
            direction(self.egress),
            self.cidr
        )
    }
}

/// Records, then creates, one entry under a free number below the first allow;
/// a number taken meanwhile is replaced by the next free one (bounded).
async fn create_entry(
    ec2: &aws_sdk_ec2::Client,
    ledger: &Ledger,
    acls: &mut BTreeMap<String, NetworkAcl>,
    taken: &BTreeSet<(String, bool, i32)>,
    base: BlockRecord,
    now: SystemTime,
) -> Result<Created, String> {
    let acl_id = base.network_acl_id.clone();
    let ledger_msg = |e: LedgerError| ledger_error(e).to_string();
    for _ in 0..NUMBER_ATTEMPTS {
        let Some(acl) = acls.get(&acl_id) else {
            return Err(format!("network ACL {acl_id} is gone"));
        };
        if find_deny(acl, base.egress, &base.cidr).is_some() {
            // A concurrent response denied it meanwhile.
            return Ok(Created {
                network_acl_id: acl_id,
                rule_number: find_deny(acl, base.egress, &base.cidr).unwrap_or(0),
                egress: base.egress,
                cidr: base.cidr,
            });
        }
        let ours: BTreeSet<i32> = taken
            .iter()
            .filter(|(a, e, _)| *a == acl_id && *e == base.egress)
            .map(|(_, _, n)| *n)
            .collect();
        let Some(number) = free_numbers(acl, base.egress, ours.len() + 1)
            .into_iter()
            .find(|n| !ours.contains(n))
        else {
            return Err(format!(
                "network ACL {acl_id}: no free {} rule number below its first allow entry",
                direction_word(base.egress)
            ));
        };
        let record = BlockRecord {
            rule_number: number,
            ..base.clone()
        };
        ledger
            .record_block_at(&record, now)
            .await
            .map_err(ledger_msg)?;
        let v6 = record.cidr.contains(':');
        let result = ec2
            .create_network_acl_entry()
            .network_acl_id(&acl_id)
            .rule_number(number)
            .egress(record.egress)
            .protocol("-1")
            .rule_action(RuleAction::Deny)
            .set_cidr_block((!v6).then(|| record.cidr.clone()))
            .set_ipv6_cidr_block(v6.then(|| record.cidr.clone()))
            .send()
            .await
            .map_err(err);
        match result {
            Ok(_) => {
                return Ok(Created {
                    network_acl_id: acl_id,
                    rule_number: number,
                    egress: record.egress,
                    cidr: record.cidr,
                });
            }
            Err(e) => {
                let taken = e.code == "NetworkAclEntryAlreadyExists";
                let note = format!("CreateNetworkAclEntry failed: {e}");
                // Whatever the error, look again: a create whose answer was lost (or
                // whose retry met its own entry as "already exists") took effect.
                let fresh = match describe_acl(ec2, &acl_id).await {
                    Ok(fresh) => fresh,
                    // Whether the entry exists is unknown: the record stays active,
                    // so that an entry made all the same expires (and the expiry
                    // marks the record superseded when there is none).
                    Err(d) => {
                        return Err(format!(
                            "{note}; describing {acl_id} then failed ({d}): the record stays, so that an entry made all the same expires"
                        ));
                    }
                };
                if let Some(acl) = &fresh
                    && holds(acl, &record)
                {
                    return Ok(Created {
                        network_acl_id: acl_id,
                        rule_number: number,
                        egress: record.egress,
                        cidr: record.cidr,
                    });
                }
                ledger
                    .end_block_at(&record, BlockStatus::NotCreated, &note, now)
                    .await
                    .map_err(ledger_msg)?;
                match fresh {
                    None => return Err(format!("network ACL {acl_id} is gone")),
                    Some(_) if !taken => return Err(note),
                    // Taken by someone else between our describe and our create:
                    // the next free number.
                    Some(acl) => {
                        acls.insert(acl_id.clone(), acl);
                    }
                }
            }
        }
    }
    Err(format!(
        "network ACL {acl_id}: rule numbers kept being taken by others ({NUMBER_ATTEMPTS} attempts); the response is retried"
    ))
}

/// True when the record's rule number holds exactly the recorded entry (deny, the
/// block, the direction): the responder's.
fn holds(acl: &NetworkAcl, b: &BlockRecord) -> bool {
    let ours = b.cidr.parse::<Cidr>().ok();
    ours.is_some()
        && entries(acl, b.egress).any(|e| {
            e.rule_number() == Some(b.rule_number)
                && e.rule_action() == Some(&RuleAction::Deny)
                && entry_cidr(e) == ours
        })
}

fn direction(egress: bool) -> &'static str {
    if egress { "out" } else { "in" }
}

fn direction_word(egress: bool) -> &'static str {
    if egress { "outbound" } else { "inbound" }
}

fn is_deny_all(acl: &NetworkAcl) -> bool {
    acl.tags()
        .iter()
        .any(|t| t.key() == Some(tags::ROLE) && t.value() == Some("deny-all"))
}

fn entries(acl: &NetworkAcl, egress: bool) -> impl Iterator<Item = &NetworkAclEntry> {
    acl.entries()
        .iter()
        .filter(move |e| e.egress() == Some(egress))
}

fn entry_cidr(e: &NetworkAclEntry) -> Option<Cidr> {
    e.cidr_block()
        .or(e.ipv6_cidr_block())
        .and_then(|c| c.parse::<Cidr>().ok())
}

/// The rule number of a deny entry for exactly this block in this direction.
fn find_deny(acl: &NetworkAcl, egress: bool, cidr: &str) -> Option<i32> {
    let want = cidr.parse::<Cidr>().ok()?;
    entries(acl, egress)
        .find(|e| e.rule_action() == Some(&RuleAction::Deny) && entry_cidr(e) == Some(want))
        .and_then(NetworkAclEntry::rule_number)
}

/// Rules of a direction and family, the reserved final ones not counted.
fn count_rules(acl: &NetworkAcl, egress: bool, v6: bool) -> u32 {
    let n = entries(acl, egress)
        .filter(|e| e.rule_number().is_some_and(|n| n < RESERVED_RULE))
        .filter(|e| e.ipv6_cidr_block().is_some() == v6)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The lowest-numbered allow entry of a direction.
fn first_allow(acl: &NetworkAcl, egress: bool) -> Option<i32> {
    entries(acl, egress)
        .filter(|e| e.rule_action() == Some(&RuleAction::Allow))
        .filter_map(NetworkAclEntry::rule_number)
        .min()
}

/// Up to `n` free rule numbers below the first allow entry of the direction,
/// highest first (next to the rules they precede, leaving low numbers to people).
fn free_numbers(acl: &NetworkAcl, egress: bool, n: usize) -> Vec<i32> {
    let used: BTreeSet<i32> = entries(acl, egress)
        .filter_map(NetworkAclEntry::rule_number)
        .collect();
    let top = first_allow(acl, egress).unwrap_or(RESERVED_RULE);
    (1..top)
        .rev()
        .filter(|k| !used.contains(k))
        .take(n)
        .collect()
}

/// One network ACL by id (`None` when it is gone).
async fn describe_acl(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Option<NetworkAcl>, CallError> {
    match ec2
        .describe_network_acls()
        .network_acl_ids(id)
        .send()
        .await
        .map_err(err)
    {
        Ok(out) => Ok(out.network_acls().first().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Network ACLs matching the filter, by id.
async fn describe_acls(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    values: &[&str],
) -> Result<BTreeMap<String, NetworkAcl>, CallError> {
    let out = ec2
        .describe_network_acls()
        .filters(filter(name, values))
        .send()
        .await
        .map_err(err)?;
    Ok(out
        .network_acls()
        .iter()
        .filter_map(|a| Some((a.network_acl_id()?.to_owned(), a.clone())))
        .collect())
}

/// Every IPv4 and IPv6 block of the VPCs, with the VPC's id.
async fn vpc_cidrs(
    ec2: &aws_sdk_ec2::Client,
    vpcs: &BTreeSet<String>,
) -> Result<Vec<(String, Cidr)>, CallError> {
    if vpcs.is_empty() {
        return Ok(Vec::new());
    }
    let out = ec2
        .describe_vpcs()
        .set_vpc_ids(Some(vpcs.iter().cloned().collect()))
        .send()
        .await
        .map_err(err)?;
    let mut blocks = Vec::new();
    for v in out.vpcs() {
        let id = v.vpc_id().unwrap_or_default().to_owned();
        let v4 = v.cidr_block().into_iter().chain(
            v.cidr_block_association_set()
                .iter()
                .filter_map(|a| a.cidr_block()),
        );
        let v6 = v
            .ipv6_cidr_block_association_set()
            .iter()
            .filter_map(|a| a.ipv6_cidr_block());
        for c in v4.chain(v6) {
            if let Ok(c) = c.parse::<Cidr>() {
                blocks.push((id.clone(), c));
            }
        }
    }
    Ok(blocks)
}

/// What the expiry did with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expired {
    /// The record as it was due.
    pub block: BlockRecord,
    /// Removed, superseded, or failed (left active: the next run tries again).
    pub outcome: ExpiryOutcome,
    /// For people.
    pub detail: String,
}

/// How the expiry of one record ended: the record's end ([`BlockStatus::Removed`] or
/// [`BlockStatus::Superseded`]), or a failure that left it active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpiryOutcome {
    /// The entry was still exactly ours and is deleted; the record is `removed`.
    Removed,
    /// The number held nothing or another entry (left as it is); the record is
    /// `superseded`.
    Superseded,
    /// A call failed: the record stays active and the next run tries again.
    Failed,
}

impl ExpiryOutcome {
    /// The serialized form: `removed`, `superseded`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryOutcome::Removed => "removed",
            ExpiryOutcome::Superseded => "superseded",
            ExpiryOutcome::Failed => "failed",
        }
    }

    /// The outcome of a record ended with `status`.
    fn ended(status: BlockStatus) -> ExpiryOutcome {
        if status == BlockStatus::Removed {
            ExpiryOutcome::Removed
        } else {
            ExpiryOutcome::Superseded
        }
    }
}

impl std::fmt::Display for ExpiryOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Removes the deny entries due at `now`: each one re-described, deleted only when
/// the rule number still holds exactly our entry (same block, deny, direction),
/// else left and its record marked superseded. `clients_for` gives the EC2 client of
/// the record's account and region (the member role's for another account), or why
/// there is none. An error only when the ledger cannot be read.
pub(crate) async fn expire_due<F, Fut>(
    ledger: &Ledger,
    now: SystemTime,
    clients_for: F,
) -> Result<Vec<Expired>, LedgerError>
where
    F: Fn(BlockRecord) -> Fut,
    Fut: std::future::Future<Output = Result<aws_sdk_ec2::Client, String>>,
{
    let due = ledger.due_blocks(now).await?;
    let mut out = Vec::with_capacity(due.len());
    for block in due {
        let (outcome, detail) = match clients_for(block.clone()).await {
            Err(why) => (
                ExpiryOutcome::Failed,
                format!("no clients for the record's account: {why}"),
            ),
            Ok(ec2) => expire_one(&ec2, ledger, &block, now).await,
        };
        out.push(Expired {
            block,
            outcome,
            detail,
        });
    }
    Ok(out)
}

async fn expire_one(
    ec2: &aws_sdk_ec2::Client,
    ledger: &Ledger,
    b: &BlockRecord,
    now: SystemTime,
) -> (ExpiryOutcome, String) {
    let what = format!(
        "{} rule {} {} {}",
        b.network_acl_id,
        b.rule_number,
        direction(b.egress),
        b.cidr
    );
    let acl = match describe_acl(ec2, &b.network_acl_id).await {
        Ok(found) => found,
        Err(e) => {
            return (
                ExpiryOutcome::Failed,
                format!("{what}: describe failed: {e}"),
            );
        }
    };
    let end = |status: BlockStatus, note: String| async move {
        match ledger.end_block_at(b, status, &note, now).await {
            Ok(_) => (ExpiryOutcome::ended(status), note),
            Err(e) => (
                ExpiryOutcome::Failed,
                format!("{note}; the ledger could not be updated: {e}"),
            ),
        }
    };
    let Some(acl) = acl else {
        return end(
            BlockStatus::Superseded,
            format!("{what}: the network ACL is gone"),
        )
        .await;
    };
    let entry = entries(&acl, b.egress).find(|e| e.rule_number() == Some(b.rule_number));
    let ours = b.cidr.parse::<Cidr>().ok();
    match entry {
        None => {
            end(
                BlockStatus::Superseded,
                format!("{what}: no entry at that number any more (removed by someone else)"),
            )
            .await
        }
        Some(e)
            if e.rule_action() != Some(&RuleAction::Deny)
                || entry_cidr(e) != ours
                || ours.is_none() =>
        {
            end(
                BlockStatus::Superseded,
                format!(
                    "{what}: the number now holds another entry ({} {}): left as it is",
                    e.rule_action().map(|a| a.as_str()).unwrap_or("?"),
                    e.cidr_block().or(e.ipv6_cidr_block()).unwrap_or("?")
                ),
            )
            .await
        }
        Some(_) => {
            let r = ec2
                .delete_network_acl_entry()
                .network_acl_id(&b.network_acl_id)
                .rule_number(b.rule_number)
                .egress(b.egress)
                .send()
                .await
                .map_err(err);
            match r {
                Ok(_) => end(BlockStatus::Removed, format!("{what}: expired and removed")).await,
                Err(e) if e.is_not_found() => {
                    end(
                        BlockStatus::Superseded,
                        format!("{what}: already removed ({e})"),
                    )
                    .await
                }
                Err(e) => (ExpiryOutcome::Failed, format!("{what}: delete failed: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `responder expire --format json` and the function's scheduled answer print
    /// these words: the typed outcome serializes as the strings did.
    #[test]
    fn expiry_outcomes_serialize_as_before() {
        for (o, text) in [
            (ExpiryOutcome::Removed, "removed"),
            (ExpiryOutcome::Superseded, "superseded"),
            (ExpiryOutcome::Failed, "failed"),
        ] {
            assert_eq!(
                serde_json::to_string(&o).unwrap_or_default(),
                format!("\"{text}\"")
            );
            assert_eq!(o.to_string(), text);
        }
        assert_eq!(
            ExpiryOutcome::ended(BlockStatus::Removed),
            ExpiryOutcome::Removed
        );
        assert_eq!(
            ExpiryOutcome::ended(BlockStatus::Superseded),
            ExpiryOutcome::Superseded
        );
    }
}
