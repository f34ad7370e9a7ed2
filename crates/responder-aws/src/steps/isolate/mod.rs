//! `isolate`: every ENI of the instance into the planned quarantine group of its VPC.
//!
//! Fast path: when the quarantine groups are known (cached from an earlier response
//! in this process), the ENIs the finding lists (the plan's `observed` part) are moved
//! at once, in parallel with the describe of the instance: one round trip. Then any
//! ENI the finding did not list is isolated, and on a first isolation connections are
//! cut by a hop through the all-open "untrack" group, when the plan names one (flows
//! allowed by all-open rules are untracked, and the move back to the rule-less
//! quarantine group ends them).

mod groups;
mod network_acl;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{ConnectionTrackingSpecificationRequest, SecurityGroup};
use futures::future::join_all;
use responder_core::plan::ObservedEni;
use responder_core::steps::isolate::{ConnectionTracking, Planned};
use responder_core::tags;

use self::groups::{Kind, ensure_group, find_group};
use crate::call::{CallError, err};
use crate::context::{Ctx, Phase, StepResult};
use crate::instance::{InstanceView, describe};
use crate::report::Outcome;
use crate::tagging::write_tags;

/// Group ids by VPC.
type ByVpc = BTreeMap<String, String>;

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    match isolate(ctx, a).await {
        Ok(r) | Err(r) => r,
    }
}

async fn isolate(ctx: &mut Ctx<'_>, a: &Planned) -> Phase<StepResult> {
    let mut round_trips = 0u32;
    let Located {
        view,
        fast_done,
        prefound,
    } = locate(ctx, a, &mut round_trips).await?;
    let already_isolated = view.tags.contains_key(tags::ISOLATED);
    let vpcs = view.vpcs();
    let mut created = Vec::new();
    let quarantine = ensure_quarantine(
        ctx,
        a,
        &view,
        &vpcs,
        prefound,
        &mut created,
        &mut round_trips,
    )
    .await?;
    // Recorded before anything else changes the groups.
    let record = original_groups(ctx, &view, &quarantine);
    let nothing_moved =
        move_into_quarantine(ctx, &view, &fast_done, &quarantine, &mut round_trips).await?;
    ctx.isolated_after(round_trips);

    let mut result = if nothing_moved && already_isolated {
        StepResult::already(format!(
            "every ENI of {} is already in {}",
            a.instance_id, a.quarantine_group
        ))
    } else {
        StepResult::done(view.enis.iter().map(|e| e.id.clone()).collect())
    };
    if let (Some(untrack), false) = (&a.untrack_group, already_isolated) {
        let cut = cut_connections(ctx, &view, &vpcs, untrack, &quarantine, &mut created).await?;
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
    result.resources.extend(quarantine.values().cloned());
    result
        .resources
        .extend(created.iter().map(|g| format!("created {g}")));
    result.notes.extend(write_records(ctx, &view, record).await);
    Ok(result)
}

/// What round 1 found.
struct Located {
    /// The instance as EC2 describes it now.
    view: InstanceView,
    /// ENIs the warm fast path already moved into quarantine.
    fast_done: Vec<String>,
    /// Cold start: the quarantine group looked up by name in each VPC the finding
    /// lists (`None`: not there).
    prefound: BTreeMap<String, Option<SecurityGroup>>,
}

/// Round 1: describe the instance and, at the same time, either move the listed ENIs
/// (groups known: the warm fast path) or look the quarantine groups up.
async fn locate(ctx: &mut Ctx<'_>, a: &Planned, round_trips: &mut u32) -> Phase<Located> {
    let ec2 = ctx.ec2();
    let warm = warm_moves(ctx, a);
    let describe_fut = describe(ec2, &a.instance_id);
    let mut prefound = BTreeMap::new();
    let (view, fast) = match &warm {
        Some(moves) => {
            let moves_fut = join_all(
                moves
                    .iter()
                    .map(|(eni, gid)| move_eni(ec2, eni, vec![gid.clone()], false)),
            );
            let (view, results) = futures::join!(describe_fut, moves_fut);
            (view, Some(results))
        }
        None => {
            let vpcs = observed_vpcs(ctx);
            let finds = join_all(vpcs.iter().map(|v| find_group(ec2, v, &a.quarantine_group)));
            let (view, found) = futures::join!(describe_fut, finds);
            for (vpc, f) in vpcs.iter().zip(found) {
                match f {
                    Ok(g) => {
                        prefound.insert(vpc.clone(), g);
                    }
                    Err(e) => return Err(StepResult::from_error(&e, false)),
                }
            }
            (view, None)
        }
    };
    *round_trips += 1;
    let view = match view {
        Ok(Some(v)) => v,
        Ok(None) => {
            ctx.gone = true;
            return Err(StepResult::skipped(format!(
                "instance {} not found: nothing to isolate",
                a.instance_id
            )));
        }
        Err(e) => return Err(StepResult::from_error(&e, false)),
    };
    if view.is_terminated() {
        // Terminated by an earlier delivery of this finding, or by someone else: in
        // the second case the response has nothing to act on.
        if view.tags.get(tags::ISOLATED) != Some(&ctx.finding.id) {
            ctx.gone = true;
        }
        let skipped = StepResult::skipped(format!("instance {} is {}", a.instance_id, view.state));
        ctx.view = Some(view);
        return Err(skipped);
    }
    let mut fast_done: Vec<String> = Vec::new();
    if let (Some(results), Some(moves)) = (fast, &warm) {
        for (r, (eni, _)) in results.into_iter().zip(moves) {
            match r {
                Ok(()) => fast_done.push(eni.clone()),
                Err(e) => {
                    return Err(
                        StepResult::from_error(&e, false).note(format!("moving {eni} failed"))
                    );
                }
            }
        }
    }
    ctx.live = Some(view.clone());
    Ok(Located {
        view,
        fast_done,
        prefound,
    })
}

/// The ENIs the finding lists (the plan's `observed` part).
fn observed_enis<'a>(ctx: &Ctx<'a>) -> &'a [ObservedEni] {
    ctx.observed
        .map(|o| o.network_interfaces.as_slice())
        .unwrap_or_default()
}

/// The VPCs of the ENIs the finding lists, sorted, once each.
fn observed_vpcs(ctx: &Ctx<'_>) -> Vec<String> {
    let mut vpcs: Vec<String> = observed_enis(ctx)
        .iter()
        .filter_map(|e| e.vpc_id.clone())
        .collect();
    vpcs.sort();
    vpcs.dedup();
    vpcs
}

/// The warm fast path: `(ENI, quarantine group)` for every ENI the finding lists,
/// when every one of their VPCs' quarantine groups is cached (never in a dry run).
fn warm_moves(ctx: &Ctx<'_>, a: &Planned) -> Option<Vec<(String, String)>> {
    observed_enis(ctx)
        .iter()
        .map(|e| {
            let vpc = e.vpc_id.as_deref()?;
            let gid = ctx.groups.get(vpc, &a.quarantine_group)?;
            Some((e.network_interface_id.clone(), gid))
        })
        .collect::<Option<Vec<_>>>()
        .filter(|v| !v.is_empty() && !ctx.dry_run)
}

/// The quarantine group of every VPC the instance's ENIs are in, found or created
/// with exactly its rules. A dry run ends here with the answers of the calls an
/// isolation makes.
async fn ensure_quarantine(
    ctx: &Ctx<'_>,
    a: &Planned,
    view: &InstanceView,
    vpcs: &[String],
    mut prefound: BTreeMap<String, Option<SecurityGroup>>,
    created: &mut Vec<String>,
    round_trips: &mut u32,
) -> Phase<ByVpc> {
    let mut quarantine = ByVpc::new();
    for vpc in vpcs {
        let found = prefound.remove(vpc);
        let ensured = ensure_group(
            ctx,
            vpc,
            &a.quarantine_group,
            Kind::Quarantine,
            a.forensics_ingress.as_ref(),
            found,
            round_trips,
        )
        .await;
        match ensured {
            Ok(Some((gid, new))) => {
                if new {
                    created.push(gid.clone());
                }
                quarantine.insert(vpc.clone(), gid);
            }
            Ok(None) => return Err(dry_run_isolate(ctx, view, None).await),
            Err(e) => return Err(StepResult::from_error(&e, ctx.dry_run)),
        }
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

/// The record tags of every ENI's groups before isolation, for `release` (never
/// overwritten: on a redelivery the ENIs are already in quarantine).
fn original_groups(
    ctx: &Ctx<'_>,
    view: &InstanceView,
    quarantine: &ByVpc,
) -> BTreeMap<String, String> {
    let ours: Vec<&String> = quarantine.values().collect();
    let mut record = BTreeMap::new();
    for eni in &view.enis {
        let key = tags::original_groups(&eni.id);
        if view.tags.contains_key(&key) {
            continue;
        }
        let mut groups: Vec<String> = eni
            .groups
            .iter()
            .filter(|g| !ours.contains(g))
            .cloned()
            .collect();
        if groups.is_empty() {
            // The describe raced with the fast path: take the groups at detection time.
            groups = observed_enis(ctx)
                .iter()
                .find(|p| p.network_interface_id == eni.id)
                .map(|p| p.security_groups.clone())
                .unwrap_or_default();
        }
        if !groups.is_empty() {
            record.insert(key, tags::encode_groups(&groups));
        }
    }
    record
}

/// Every ENI not yet in its quarantine group alone goes there now. True when none
/// had to move (and the fast path moved none either).
async fn move_into_quarantine(
    ctx: &Ctx<'_>,
    view: &InstanceView,
    fast_done: &[String],
    quarantine: &ByVpc,
    round_trips: &mut u32,
) -> Phase<bool> {
    let pending: Vec<(String, String)> = view
        .enis
        .iter()
        .filter(|e| !fast_done.contains(&e.id))
        .filter_map(|e| {
            let q = quarantine.get(e.vpc_id.as_ref()?)?;
            (e.groups != [q.clone()]).then(|| (e.id.clone(), q.clone()))
        })
        .collect();
    let nothing_moved = pending.is_empty() && fast_done.is_empty();
    if !pending.is_empty() {
        let ec2 = ctx.ec2();
        let results = join_all(
            pending
                .iter()
                .map(|(eni, q)| move_eni(ec2, eni, vec![q.clone()], false)),
        )
        .await;
        *round_trips += 1;
        for (r, (eni, _)) in results.into_iter().zip(&pending) {
            if let Err(e) = r {
                return Err(StepResult::from_error(&e, false)
                    .note(format!("moving {eni} into quarantine failed")));
            }
        }
    }
    Ok(nothing_moved)
}

/// Cuts tracked connections (first isolation only): every ENI into the untrack group
/// of its VPC, then back to quarantine. Not counted in the round trips to isolation:
/// the ENIs are isolated already.
async fn cut_connections(
    ctx: &Ctx<'_>,
    view: &InstanceView,
    vpcs: &[String],
    untrack_group: &str,
    quarantine: &ByVpc,
    created: &mut Vec<String>,
) -> Phase<Option<String>> {
    let mut untrack = ByVpc::new();
    let mut after = 0;
    for vpc in vpcs {
        match ensure_group(
            ctx,
            vpc,
            untrack_group,
            Kind::Untrack,
            None,
            None,
            &mut after,
        )
        .await
        {
            Ok(Some((gid, new))) => {
                if new {
                    created.push(gid.clone());
                }
                untrack.insert(vpc.clone(), gid);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(StepResult::from_error(&e, false)
                    .note("ENIs are isolated; cutting connections failed"));
            }
        }
    }
    if untrack.is_empty() {
        return Ok(None);
    }
    let ec2 = ctx.ec2();
    let cut = async {
        move_all(ec2, view, &untrack).await?;
        move_all(ec2, view, quarantine).await
    };
    if let Err(e) = cut.await {
        // Make sure no ENI is left in the open group, whatever happened.
        let _ = move_all(ec2, view, quarantine).await;
        return Err(StepResult::from_error(&e, false)
            .note("cutting connections failed; ENIs put back into quarantine"));
    }
    Ok(Some(
        "tracked connections cut (untrack group hop)".to_owned(),
    ))
}

/// Every ENI into the group of its VPC, in parallel; the first error, once all ended.
async fn move_all(
    ec2: &aws_sdk_ec2::Client,
    view: &InstanceView,
    target: &ByVpc,
) -> Result<(), CallError> {
    let moves: Vec<(String, String)> = view
        .enis
        .iter()
        .filter_map(|e| Some((e.id.clone(), target.get(e.vpc_id.as_ref()?)?.clone())))
        .collect();
    let results = join_all(
        moves
            .iter()
            .map(|(eni, g)| move_eni(ec2, eni, vec![g.clone()], false)),
    )
    .await;
    results.into_iter().collect()
}

/// The planned idle timeouts on every ENI; a failure is a note, not a failed step.
async fn connection_tracking(
    ec2: &aws_sdk_ec2::Client,
    view: &InstanceView,
    ct: &ConnectionTracking,
) -> Vec<String> {
    join_all(view.enis.iter().map(|e| conntrack(ec2, &e.id, ct)))
        .await
        .into_iter()
        .filter_map(Result::err)
        .map(|e| format!("connection tracking timeouts not set: {e}"))
        .collect()
}

/// The record tags and the `isolated` marker; a failure is a note.
async fn write_records(
    ctx: &Ctx<'_>,
    view: &InstanceView,
    mut record: BTreeMap<String, String>,
) -> Option<String> {
    record.insert(tags::ISOLATED.to_owned(), ctx.finding.id.clone());
    write_tags(ctx.ec2(), std::slice::from_ref(&view.id), &record, false)
        .await
        .err()
        .map(|e| format!("isolation is done but its record tags failed: {e}"))
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

async fn conntrack(
    ec2: &aws_sdk_ec2::Client,
    eni: &str,
    ct: &ConnectionTracking,
) -> Result<(), CallError> {
    let spec = ConnectionTrackingSpecificationRequest::builder()
        .set_tcp_established_timeout(ct.tcp_established_timeout.map(|v| v as i32))
        .set_udp_timeout(ct.udp_timeout.map(|v| v as i32))
        .set_udp_stream_timeout(ct.udp_stream_timeout.map(|v| v as i32))
        .build();
    ec2.modify_network_interface_attribute()
        .network_interface_id(eni)
        .connection_tracking_specification(spec)
        .send()
        .await
        .map(|_| ())
        .map_err(err)
}
