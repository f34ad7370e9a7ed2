//! `isolate`: every ENI of the instance into the planned quarantine group of its VPC.
//!
//! Round 1 describes the instance and looks up the responder's groups in the VPCs
//! the finding lists (the executor's prefetch runs both in parallel with the
//! verification against GuardDuty). Round 2 moves every ENI that the live describe
//! shows attached to the instance, and nothing else, while the ENIs' original groups
//! are recorded in the ledger. Then, on a first isolation, connections are cut by a
//! hop through the all-open "untrack" group when the plan names one (flows allowed by
//! all-open rules are untracked, and the move back to the rule-less quarantine group
//! ends them), and the planned connection-tracking timeouts are set.
//!
//! State is never read from tags: the original groups come from the ledger (what the
//! responder recorded), the live describe (minus the responder's own groups) and
//! GuardDuty's copy of the finding, in that order.

mod groups;
mod network_acl;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{ConnectionTrackingSpecificationRequest, SecurityGroup};
use futures::StreamExt;
use futures::stream;
use responder_core::plan::ObservedEni;
use responder_core::steps::isolate::{Planned, Timeouts};
use responder_core::tags;

use self::groups::{Kind, ensure_group, find_groups};
use crate::call::{CallError, err};
use crate::context::{Ctx, GroupLookups, Isolated, PARALLEL, Phase, StepResult};
use crate::instance::InstanceView;
use crate::report::Outcome;
use crate::tagging::write_tags;

/// Group ids by VPC.
type ByVpc = BTreeMap<String, String>;

/// Original security groups by ENI: what `release` and `relaunch` restore.
pub(crate) type OriginalGroups = BTreeMap<String, Vec<String>>;

/// How many of the VPCs a finding lists are looked up before the describe says
/// which VPCs the instance is really in: an event listing hundreds of VPCs drives
/// no more lookups than this.
pub(crate) const PREFETCH_VPCS: usize = 4;

/// How many times the move back from the all-open untrack group is tried.
const PUT_BACK_ATTEMPTS: usize = 3;

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    match isolate(ctx, a).await {
        Ok(r) | Err(r) => r,
    }
}

/// The names of the groups `isolate` looks up in each VPC.
pub(crate) fn group_names(a: &Planned) -> Vec<String> {
    let mut names = vec![a.quarantine_group.clone()];
    names.extend(a.untrack_group.clone());
    names
}

/// The VPCs a finding lists, sorted, once each, at most [`PREFETCH_VPCS`].
pub(crate) fn observed_vpcs(enis: &[ObservedEni]) -> Vec<String> {
    let set: BTreeSet<&String> = enis.iter().filter_map(|e| e.vpc_id.as_ref()).collect();
    set.into_iter().take(PREFETCH_VPCS).cloned().collect()
}

/// Looks the responder's groups up in each VPC, at most [`PARALLEL`] calls at once.
pub(crate) async fn lookup_groups(
    ec2: &aws_sdk_ec2::Client,
    vpcs: &[String],
    names: &[String],
) -> Result<GroupLookups, CallError> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let names = &names;
    let found: Vec<Result<(String, Vec<SecurityGroup>), CallError>> = stream::iter(vpcs)
        .map(|vpc| async move { Ok((vpc.clone(), find_groups(ec2, vpc, names).await?)) })
        .buffered(PARALLEL)
        .collect()
        .await;
    found.into_iter().collect()
}

async fn isolate(ctx: &mut Ctx<'_>, a: &Planned) -> Phase<StepResult> {
    let mut round_trips = 0u32;
    let (view, mut lookups) = locate(ctx, a, &mut round_trips).await?;
    let vpcs = view.vpcs();
    // The live VPCs the round-1 lookup did not cover (the finding listed others).
    let missing: Vec<String> = vpcs
        .iter()
        .filter(|v| !lookups.contains_key(*v))
        .cloned()
        .collect();
    if !missing.is_empty() {
        match lookup_groups(ctx.ec2(), &missing, &group_names(a)).await {
            Ok(found) => lookups.extend(found),
            Err(e) => return Err(StepResult::from_error(&e, ctx.dry_run)),
        }
        round_trips += 1;
    }
    let mut created = Vec::new();
    let quarantine = ensure_quarantine(
        ctx,
        a,
        &view,
        &vpcs,
        &lookups,
        &mut created,
        &mut round_trips,
    )
    .await?;
    let ours = responder_groups(&lookups, &quarantine);
    let isolated = Isolated {
        original_groups: original_groups(ctx, &view, &ours).await?,
    };
    ctx.effects.isolated = Some(isolated.clone());
    let pending: Vec<(String, String)> = view
        .enis
        .iter()
        .filter_map(|e| {
            let q = quarantine.get(e.vpc_id.as_ref()?)?;
            (e.groups != [q.clone()]).then(|| (e.id.clone(), q.clone()))
        })
        .collect();
    // Round 2: the moves, and at the same time the record of what they change.
    let (moved, recorded) = futures::join!(move_all(ctx.ec2(), &pending), ctx.record(&isolated));
    if !pending.is_empty() {
        round_trips += 1;
    }
    if let Err(e) = moved {
        return Err(
            StepResult::from_error(&e, false).note("moving the ENIs into quarantine failed")
        );
    }
    ctx.isolated_after(round_trips);
    if let Err(e) = recorded {
        return Err(StepResult::from_error(&e, false).note(
            "the ENIs are isolated, but their original groups could not be recorded: the response fails so that it is retried",
        ));
    }
    let first_isolation = !pending.is_empty();
    let mut result = if first_isolation {
        StepResult::done(view.enis.iter().map(|e| e.id.clone()).collect())
    } else {
        StepResult::already(format!(
            "every ENI of {} is already in {}",
            a.instance_id, a.quarantine_group
        ))
    };
    if let (Some(untrack), true) = (&a.untrack_group, first_isolation) {
        let cut =
            cut_connections(ctx, a, &view, &lookups, untrack, &quarantine, &mut created).await?;
        result.notes.extend(cut);
    }
    if let Some(ct) = &a.connection_tracking {
        result
            .notes
            .extend(connection_tracking(ctx.ec2(), &view, ct).await);
    }
    if a.network_acl {
        match network_acl::deny_all(ctx, &view).await {
            Ok(notes) => result.notes.extend(notes),
            Err(e) => {
                return Err(StepResult::from_error(&e, false)
                    .note("ENIs are isolated; the network ACL failed"));
            }
        }
    }
    // The marker people and IAM conditions see. Not state: nothing reads it back.
    let marker = BTreeMap::from([(tags::ISOLATED.to_owned(), tags::truncate(&ctx.finding.id))]);
    if let Err(e) = write_tags(ctx.ec2(), std::slice::from_ref(&view.id), &marker, false).await {
        return Err(StepResult::from_error(&e, false)
            .note("ENIs are isolated; the isolated marker tag could not be written"));
    }
    result.resources.extend(quarantine.values().cloned());
    result
        .resources
        .extend(created.iter().map(|g| format!("created {g}")));
    Ok(result.recording(&isolated))
}

/// Round 1: the instance as EC2 describes it now and the responder's groups in the
/// VPCs the finding lists. Both come from the executor's prefetch when it ran
/// (counted as one round trip); otherwise they are fetched here, in parallel.
async fn locate(
    ctx: &mut Ctx<'_>,
    a: &Planned,
    round_trips: &mut u32,
) -> Phase<(InstanceView, GroupLookups)> {
    let names = group_names(a);
    let prefetched = ctx.take_prefetched_groups(&names);
    let lookups = match prefetched {
        Some(found) if ctx.instance.view.is_some() || ctx.instance.gone => found,
        _ => {
            let vpcs = observed_vpcs(
                ctx.observed
                    .map(|o| o.network_interfaces.as_slice())
                    .unwrap_or_default(),
            );
            let ec2 = ctx.ec2();
            let (view, found) =
                futures::join!(ctx.view(&a.instance_id), lookup_groups(ec2, &vpcs, &names));
            if let Err(e) = view {
                return Err(StepResult::from_error(&e, false));
            }
            found.map_err(|e| StepResult::from_error(&e, ctx.dry_run))?
        }
    };
    *round_trips += 1;
    let view = match ctx.instance.view.clone() {
        Some(v) => v,
        None => {
            return Err(StepResult::skipped(format!(
                "instance {} not found: nothing to isolate",
                a.instance_id
            )));
        }
    };
    if view.is_terminated() {
        // Terminated by an earlier delivery of this finding (the ledger says so), or
        // by someone else: then the response has nothing to act on.
        match ctx.terminated_by_this_response().await {
            Ok(true) => {}
            Ok(false) => ctx.instance.gone = true,
            Err(e) => return Err(StepResult::from_error(&e, false)),
        }
        return Err(StepResult::skipped(format!(
            "instance {} is {}",
            a.instance_id, view.state
        )));
    }
    Ok((view, lookups))
}

/// The quarantine group of every VPC the instance's ENIs are in, found or created,
/// checked as the responder's and with exactly its rules (at most [`PARALLEL`] VPCs
/// at once). A dry run ends here with the answers of the calls an isolation makes.
async fn ensure_quarantine(
    ctx: &Ctx<'_>,
    a: &Planned,
    view: &InstanceView,
    vpcs: &[String],
    lookups: &GroupLookups,
    created: &mut Vec<String>,
    round_trips: &mut u32,
) -> Phase<ByVpc> {
    let none = Vec::new();
    type Ensured = (String, Result<Option<(String, bool)>, CallError>);
    let ensured: Vec<Ensured> = stream::iter(vpcs)
        .map(|vpc| {
            let found = lookups.get(vpc).unwrap_or(&none);
            async move {
                let r = ensure_group(
                    ctx,
                    vpc,
                    &a.quarantine_group,
                    Kind::Quarantine,
                    a.forensics_ingress.as_ref(),
                    found,
                )
                .await;
                (vpc.clone(), r)
            }
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    let mut quarantine = ByVpc::new();
    let mut any_created = false;
    for (vpc, r) in ensured {
        match r {
            Ok(Some((gid, new))) => {
                if new {
                    any_created = true;
                    created.push(gid.clone());
                }
                quarantine.insert(vpc, gid);
            }
            Ok(None) => return Err(dry_run_isolate(ctx, view, None).await),
            Err(e) => return Err(StepResult::from_error(&e, ctx.dry_run)),
        }
    }
    if any_created {
        *round_trips += 1;
    }
    if ctx.dry_run {
        let q = view
            .enis
            .first()
            .and_then(|e| e.vpc_id.as_ref())
            .and_then(|v| quarantine.get(v))
            .cloned();
        return Err(dry_run_isolate(ctx, view, q).await);
    }
    Ok(quarantine)
}

/// The ids of the responder's own groups (quarantine and untrack, by their marker):
/// an ENI in one of them is there because of a response, never by its configuration.
fn responder_groups(lookups: &GroupLookups, quarantine: &ByVpc) -> BTreeSet<String> {
    let mut ours: BTreeSet<String> = quarantine.values().cloned().collect();
    for g in lookups.values().flatten() {
        if (groups::is_ours(g, Kind::Quarantine) || groups::is_ours(g, Kind::Untrack))
            && let Some(id) = g.group_id()
        {
            ours.insert(id.to_owned());
        }
    }
    ours
}

/// The groups each ENI had before any response: its live groups that are not the
/// responder's, else what the ledger recorded for this instance (the ENI is already
/// in a responder group: an earlier response, or a retry after a failed put-back),
/// else the groups GuardDuty's copy of the finding lists. Never a tag.
async fn original_groups(
    ctx: &Ctx<'_>,
    view: &InstanceView,
    ours: &BTreeSet<String>,
) -> Phase<OriginalGroups> {
    let recorded = ctx
        .recorded::<Isolated>(&view.id)
        .await
        .map_err(|e| StepResult::from_error(&e, false).note("reading the ledger failed"))?
        .map(|i| i.original_groups)
        .unwrap_or_default();
    let observed = ctx
        .observed
        .map(|o| o.network_interfaces.as_slice())
        .unwrap_or_default();
    let mut original = OriginalGroups::new();
    for eni in &view.enis {
        let live: Vec<String> = eni
            .groups
            .iter()
            .filter(|g| !ours.contains(*g))
            .cloned()
            .collect();
        let groups = if !live.is_empty() {
            live
        } else if let Some(g) = recorded.get(&eni.id) {
            g.clone()
        } else {
            observed
                .iter()
                .find(|o| o.network_interface_id == eni.id)
                .map(|o| {
                    o.security_groups
                        .iter()
                        .filter(|g| !ours.contains(*g))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        if !groups.is_empty() {
            original.insert(eni.id.clone(), groups);
        }
    }
    Ok(original)
}

/// Cuts tracked connections (first isolation only): every ENI into the untrack group
/// of its VPC, then back to quarantine. Not counted in the round trips to isolation:
/// the ENIs are isolated already. When the move back fails it is tried again, and a
/// failure says which ENIs may still be in the all-open group.
async fn cut_connections(
    ctx: &Ctx<'_>,
    a: &Planned,
    view: &InstanceView,
    lookups: &GroupLookups,
    untrack_group: &str,
    quarantine: &ByVpc,
    created: &mut Vec<String>,
) -> Phase<Option<String>> {
    let none = Vec::new();
    let mut untrack = ByVpc::new();
    for vpc in quarantine.keys() {
        let found = lookups.get(vpc).unwrap_or(&none);
        match ensure_group(ctx, vpc, untrack_group, Kind::Untrack, None, found).await {
            Ok(Some((gid, new))) => {
                if new {
                    created.push(gid.clone());
                }
                untrack.insert(vpc.clone(), gid);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(StepResult::from_error(&e, false)
                    .note("ENIs are isolated; cutting connections failed (they were not moved)"));
            }
        }
    }
    if untrack.is_empty() {
        return Ok(None);
    }
    let ec2 = ctx.ec2();
    let hop = moves(view, &untrack);
    let back = moves(view, quarantine);
    let out = move_all(ec2, &hop).await;
    // Whatever happened to the hop, every ENI goes back to quarantine.
    let mut last = Ok(());
    for _ in 0..PUT_BACK_ATTEMPTS {
        last = move_all(ec2, &back).await;
        if last.is_ok() {
            break;
        }
    }
    match (out, last) {
        (Ok(()), Ok(())) => Ok(Some(
            "tracked connections cut (untrack group hop)".to_owned(),
        )),
        (Err(e), Ok(())) => Err(StepResult::from_error(&e, false)
            .note("cutting connections failed; every ENI is back in quarantine")),
        (_, Err(e)) => Err(StepResult::from_error(&e, false).note(format!(
            "ENIs of {} may still be in the all-open untrack group {}: moving them back to {} failed {PUT_BACK_ATTEMPTS} times. The response fails and is retried; a retry moves them into quarantine first",
            a.instance_id,
            untrack.values().cloned().collect::<Vec<_>>().join(", "),
            a.quarantine_group
        ))),
    }
}

/// `(ENI, group)` for every live ENI whose VPC has a group in `target`.
fn moves(view: &InstanceView, target: &ByVpc) -> Vec<(String, String)> {
    view.enis
        .iter()
        .filter_map(|e| Some((e.id.clone(), target.get(e.vpc_id.as_ref()?)?.clone())))
        .collect()
}

/// Every move, at most [`PARALLEL`] at once; the first error, once all ended.
async fn move_all(ec2: &aws_sdk_ec2::Client, moves: &[(String, String)]) -> Result<(), CallError> {
    let results: Vec<Result<(), CallError>> = stream::iter(moves)
        .map(|(eni, g)| move_eni(ec2, eni, vec![g.clone()], false))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The planned idle timeouts on every ENI (by default the minimums, so a tracked flow
/// the moves did not end expires once idle that long); a failure is a note, not a
/// failed step: the ENIs are isolated already.
async fn connection_tracking(
    ec2: &aws_sdk_ec2::Client,
    view: &InstanceView,
    ct: &Timeouts,
) -> Vec<String> {
    let results: Vec<Result<(), CallError>> = stream::iter(&view.enis)
        .map(|e| conntrack(ec2, &e.id, ct))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    results
        .into_iter()
        .filter_map(Result::err)
        .map(|e| format!("connection tracking timeouts not set: {e}"))
        .collect()
}

/// A dry run: the calls an isolation makes, each with DryRun=true.
async fn dry_run_isolate(
    ctx: &Ctx<'_>,
    view: &InstanceView,
    quarantine: Option<String>,
) -> StepResult {
    let ec2 = ctx.ec2();
    let Some(eni) = view.enis.first() else {
        return StepResult::skipped("the instance has no network interface");
    };
    let mut notes = Vec::new();
    if quarantine.is_none() {
        let r = ec2
            .create_security_group()
            .dry_run(true)
            .group_name("guardduty-responder-dry-run")
            .description("dry run")
            .set_vpc_id(eni.vpc_id.clone())
            .tag_specifications(groups::creation_tags(
                "guardduty-responder-dry-run",
                Kind::Quarantine,
            ))
            .send()
            .await
            .map_err(err);
        if let Err(e) = r {
            let outcome = e.dry_run_outcome();
            if outcome != Outcome::WouldSucceed {
                return StepResult::new(outcome).note("CreateSecurityGroup");
            }
        }
        notes.push(
            "CreateSecurityGroup would succeed (the quarantine group does not exist yet)"
                .to_owned(),
        );
    }
    let groups = quarantine
        .map(|q| vec![q])
        .unwrap_or_else(|| eni.groups.clone());
    let mut result = match move_eni(ec2, &eni.id, groups, true).await {
        Ok(()) => StepResult::skipped("DryRun call unexpectedly succeeded"),
        Err(e) => StepResult::new(e.dry_run_outcome()),
    };
    result.notes = notes;
    result.notes.push(format!(
        "ModifyNetworkInterfaceAttribute checked on {} of {} ENI(s)",
        1,
        view.enis.len()
    ));
    result
}

/// Sets an ENI's security groups (isolation, the untrack hop, and `release`).
pub(super) async fn move_eni(
    ec2: &aws_sdk_ec2::Client,
    eni: &str,
    groups: Vec<String>,
    dry_run: bool,
) -> Result<(), CallError> {
    let mut req = ec2
        .modify_network_interface_attribute()
        .network_interface_id(eni)
        .dry_run(dry_run);
    for g in groups {
        req = req.groups(g);
    }
    req.send().await.map(|_| ()).map_err(err)
}

/// One ENI's idle timeouts, all three as planned. (The plan's values are within
/// EC2's ranges, far below `i32::MAX`; a value that did not fit would be sent as the
/// largest `i32` and refused by EC2, a note.)
async fn conntrack(ec2: &aws_sdk_ec2::Client, eni: &str, ct: &Timeouts) -> Result<(), CallError> {
    let secs = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let spec = ConnectionTrackingSpecificationRequest::builder()
        .tcp_established_timeout(secs(ct.tcp_established_timeout))
        .udp_timeout(secs(ct.udp_timeout))
        .udp_stream_timeout(secs(ct.udp_stream_timeout))
        .build();
    ec2.modify_network_interface_attribute()
        .network_interface_id(eni)
        .connection_tracking_specification(spec)
        .send()
        .await
        .map(|_| ())
        .map_err(err)
}
