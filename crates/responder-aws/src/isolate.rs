//! `isolate`: every ENI of the instance into the quarantine group of its VPC.
//!
//! Fast path: when the quarantine groups are known (cached from an earlier response
//! in this process), the ENIs the finding lists are moved at once, in parallel with
//! the describe of the instance: one round trip. Then any ENI the finding did not list
//! is isolated, and on a first isolation connections are cut by a hop through the
//! all-open "untrack" group (flows allowed by all-open rules are untracked, and the
//! move back to the rule-less quarantine group ends them).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    ConnectionTrackingSpecificationRequest, IpPermission, IpRange, Ipv6Range, ResourceType,
    SecurityGroup, TagSpecification, UserIdGroupPair,
};
use futures::future::join_all;
use responder_core::plan::{Action, TAG_PREFIX};
use responder_core::playbook::steps::{ConnectionTracking, ForensicsIngress};

use crate::call::{CallError, err};
use crate::executor::{Ctx, StepResult, describe};
use crate::state::{self, filter, original_groups_key, tag};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Quarantine,
    Untrack,
}

pub(crate) async fn run(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    let Action::Isolate {
        instance_id,
        network_interfaces,
        quarantine_groups,
        untrack_groups,
        connection_tracking,
        network_acl,
        forensics_ingress,
        ..
    } = action
    else {
        return StepResult::skipped("not an isolate step");
    };
    let quarantine_name = quarantine_groups
        .first()
        .map(|g| g.group_name.clone())
        .unwrap_or_else(|| responder_core::playbook::steps::DEFAULT_QUARANTINE_GROUP.to_owned());
    let untrack_name = untrack_groups.first().map(|g| g.group_name.clone());
    let ec2 = ctx.ec2().clone();
    let mut round_trips = 0u32;

    // Round 1: describe the instance and, at the same time, either move the listed
    // ENIs (groups known) or look the quarantine groups up.
    let cached: Option<Vec<(String, String)>> = network_interfaces
        .iter()
        .map(|e| {
            let vpc = e.vpc_id.clone()?;
            let gid = ctx.exec.cached_group(&vpc, &quarantine_name)?;
            Some((e.network_interface_id.clone(), gid))
        })
        .collect::<Option<Vec<_>>>()
        .filter(|v| !v.is_empty() && !ctx.dry_run);
    let mut plan_vpcs: Vec<String> = network_interfaces
        .iter()
        .filter_map(|e| e.vpc_id.clone())
        .collect();
    plan_vpcs.sort();
    plan_vpcs.dedup();
    let describe_fut = describe(&ec2, instance_id);
    let mut prefound: BTreeMap<String, Option<SecurityGroup>> = BTreeMap::new();
    let (view, fast) = match &cached {
        Some(moves) => {
            let moves_fut = join_all(
                moves
                    .iter()
                    .map(|(eni, gid)| move_eni(&ec2, eni, vec![gid.clone()], false)),
            );
            let (view, results) = futures::join!(describe_fut, moves_fut);
            (view, Some(results))
        }
        None => {
            let finds = join_all(
                plan_vpcs
                    .iter()
                    .map(|v| find_group(&ec2, v, &quarantine_name)),
            );
            let (view, found) = futures::join!(describe_fut, finds);
            for (vpc, f) in plan_vpcs.iter().zip(found) {
                match f {
                    Ok(g) => {
                        prefound.insert(vpc.clone(), g);
                    }
                    Err(e) => return StepResult::from_error(&e, false),
                }
            }
            (view, None)
        }
    };
    round_trips += 1;
    let view = match view {
        Ok(Some(v)) => v,
        Ok(None) => {
            ctx.gone = true;
            return StepResult::skipped(format!(
                "instance {instance_id} not found: nothing to isolate"
            ));
        }
        Err(e) => return StepResult::from_error(&e, false),
    };
    if view.is_terminated() {
        // Terminated by an earlier delivery of this finding, or by someone else: in
        // the second case the response has nothing to act on.
        if view.tags.get(&state::isolated_key()) != Some(&ctx.finding.id) {
            ctx.gone = true;
        }
        ctx.view = Some(view.clone());
        return StepResult::skipped(format!("instance {instance_id} is {}", view.state));
    }
    let mut fast_done: Vec<String> = Vec::new();
    if let (Some(results), Some(moves)) = (fast, &cached) {
        for (r, (eni, _)) in results.into_iter().zip(moves) {
            match r {
                Ok(()) => fast_done.push(eni.clone()),
                Err(e) => {
                    return StepResult::from_error(&e, false).note(format!("moving {eni} failed"));
                }
            }
        }
    }
    ctx.live = Some(view.clone());
    let already_isolated = view.tags.contains_key(&state::isolated_key());

    // Groups for every VPC the instance's ENIs are in.
    let mut vpcs: Vec<String> = view.enis.iter().filter_map(|e| e.vpc_id.clone()).collect();
    vpcs.sort();
    vpcs.dedup();
    let mut quarantine: BTreeMap<String, String> = BTreeMap::new();
    let mut untrack: BTreeMap<String, String> = BTreeMap::new();
    let mut created = Vec::new();
    for vpc in &vpcs {
        let found = prefound.remove(vpc);
        match ensure_group(
            ctx,
            vpc,
            &quarantine_name,
            Kind::Quarantine,
            forensics_ingress.as_ref(),
            found,
            &mut round_trips,
        )
        .await
        {
            Ok(Some((gid, new))) => {
                if new {
                    created.push(gid.clone());
                }
                quarantine.insert(vpc.clone(), gid);
            }
            Ok(None) => {
                return dry_run_isolate(ctx, &view, None).await;
            }
            Err(e) => return StepResult::from_error(&e, ctx.dry_run),
        }
    }
    if ctx.dry_run {
        let q = view
            .enis
            .first()
            .and_then(|e| e.vpc_id.as_ref())
            .and_then(|v| quarantine.get(v))
            .cloned();
        return dry_run_isolate(ctx, &view, q).await;
    }

    // Record the original groups before anything else changes them (never overwrite:
    // on a redelivery the ENIs are already in quarantine).
    let ours: Vec<&String> = quarantine.values().collect();
    let mut record = BTreeMap::new();
    for eni in &view.enis {
        let key = original_groups_key(&eni.id);
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
            groups = network_interfaces
                .iter()
                .find(|p| p.network_interface_id == eni.id)
                .map(|p| p.current_groups.clone())
                .unwrap_or_default();
        }
        if !groups.is_empty() {
            record.insert(key, state::encode_groups(&groups));
        }
    }

    // Every ENI not yet in its quarantine group alone goes there now.
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
        let results = join_all(
            pending
                .iter()
                .map(|(eni, q)| move_eni(&ec2, eni, vec![q.clone()], false)),
        )
        .await;
        round_trips += 1;
        for (r, (eni, _)) in results.into_iter().zip(&pending) {
            if let Err(e) = r {
                return StepResult::from_error(&e, false)
                    .note(format!("moving {eni} into quarantine failed"));
            }
        }
    }
    if ctx.round_trips_to_isolation.is_none() {
        ctx.round_trips_to_isolation = Some(round_trips);
        ctx.ms_to_isolation = Some(ctx.started.elapsed().as_millis() as u64);
    }
    let mut result = if nothing_moved && already_isolated {
        StepResult::already(format!(
            "every ENI of {instance_id} is already in {quarantine_name}"
        ))
    } else {
        StepResult::done(view.enis.iter().map(|e| e.id.clone()).collect())
    };

    // Cut tracked connections: untrack, then back to quarantine (first isolation only).
    if let (Some(name), false) = (&untrack_name, already_isolated) {
        let mut after = 0;
        for vpc in &vpcs {
            match ensure_group(ctx, vpc, name, Kind::Untrack, None, None, &mut after).await {
                Ok(Some((gid, new))) => {
                    if new {
                        created.push(gid.clone());
                    }
                    untrack.insert(vpc.clone(), gid);
                }
                Ok(None) => {}
                Err(e) => {
                    return StepResult::from_error(&e, false)
                        .note("ENIs are isolated; cutting connections failed");
                }
            }
        }
    }
    if !already_isolated && !untrack.is_empty() {
        let hop = |target: &BTreeMap<String, String>| {
            let ec2 = ec2.clone();
            let moves: Vec<(String, String)> = view
                .enis
                .iter()
                .filter_map(|e| Some((e.id.clone(), target.get(e.vpc_id.as_ref()?)?.clone())))
                .collect();
            async move {
                join_all(
                    moves
                        .iter()
                        .map(|(eni, g)| move_eni(&ec2, eni, vec![g.clone()], false)),
                )
                .await
            }
        };
        let cut = async {
            for r in hop(&untrack).await {
                r?;
            }
            for r in hop(&quarantine).await {
                r?;
            }
            Ok::<(), CallError>(())
        };
        if let Err(e) = cut.await {
            // Make sure no ENI is left in the open group, whatever happened.
            let _ = hop(&quarantine).await;
            return StepResult::from_error(&e, false)
                .note("cutting connections failed; ENIs put back into quarantine");
        }
        result
            .notes
            .push("tracked connections cut (untrack group hop)".to_owned());
    }
    if let Some(ct) = connection_tracking {
        let results = join_all(view.enis.iter().map(|e| conntrack(&ec2, &e.id, ct))).await;
        for r in results {
            if let Err(e) = r {
                result
                    .notes
                    .push(format!("connection tracking timeouts not set: {e}"));
            }
        }
    }
    if *network_acl {
        match deny_all_acls(ctx, &view).await {
            Ok(notes) => result.notes.extend(notes),
            Err(e) => {
                return StepResult::from_error(&e, false)
                    .note("ENIs are isolated; the network ACL failed");
            }
        }
    }
    result.resources.extend(quarantine.values().cloned());
    result
        .resources
        .extend(created.iter().map(|g| format!("created {g}")));
    record.insert(state::isolated_key(), ctx.finding.id.clone());
    if let Err(e) = state::write_tags(&ec2, std::slice::from_ref(&view.id), &record, false).await {
        result
            .notes
            .push(format!("isolation is done but its record tags failed: {e}"));
    }
    result
}

/// A dry run: the calls an isolation makes, each with DryRun=true.
async fn dry_run_isolate(
    ctx: &Ctx<'_>,
    view: &crate::executor::InstanceView,
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
            .send()
            .await
            .map_err(err);
        if let Err(e) = r {
            let outcome = e.dry_run_outcome();
            if outcome != crate::report::Outcome::WouldSucceed {
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

async fn move_eni(
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

/// Finds the group by name in the VPC or creates it, and makes its rules what they
/// must be. `Ok(None)` in a dry run when the group does not exist.
async fn ensure_group(
    ctx: &Ctx<'_>,
    vpc: &str,
    name: &str,
    kind: Kind,
    forensics: Option<&ForensicsIngress>,
    prefound: Option<Option<SecurityGroup>>,
    trips: &mut u32,
) -> Result<Option<(String, bool)>, CallError> {
    if let Some(id) = ctx.exec.cached_group(vpc, name) {
        return Ok(Some((id, false)));
    }
    let ec2 = ctx.ec2();
    let found = match prefound {
        Some(f) => f,
        None => {
            *trips += 1;
            find_group(ec2, vpc, name).await?
        }
    };
    let (group, created) = match found {
        Some(g) => (Some(g), false),
        None if ctx.dry_run => return Ok(None),
        None => {
            *trips += 1;
            let description = match kind {
                Kind::Quarantine => "guardduty-responder quarantine: no traffic in or out",
                Kind::Untrack => {
                    "guardduty-responder untrack: all traffic, used briefly to cut tracked connections"
                }
            };
            let created = ec2
                .create_security_group()
                .group_name(name)
                .description(description)
                .vpc_id(vpc)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .tags(tag(
                            &format!("{TAG_PREFIX}role"),
                            if kind == Kind::Quarantine {
                                "quarantine"
                            } else {
                                "untrack"
                            },
                        ))
                        .tags(tag("Name", name))
                        .build(),
                )
                .send()
                .await
                .map_err(err);
            match created {
                Ok(out) => {
                    let id = out.group_id().unwrap_or_default().to_owned();
                    // A new group has exactly the default egress rule.
                    let fresh = SecurityGroup::builder()
                        .group_id(&id)
                        .ip_permissions_egress(all_ipv4())
                        .build();
                    (Some(fresh), true)
                }
                // Another invocation created it first: use theirs.
                Err(e) if e.code == "InvalidGroup.Duplicate" => {
                    match find_group(ec2, vpc, name).await? {
                        Some(g) => (Some(g), false),
                        None => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    };
    let Some(group) = group else { return Ok(None) };
    let id = group.group_id().unwrap_or_default().to_owned();
    if !ctx.dry_run {
        configure(ec2, &group, kind, forensics, trips).await?;
        ctx.exec.cache_group(vpc, name, &id);
    }
    Ok(Some((id, created)))
}

fn all_ipv4() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

async fn find_group(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    name: &str,
) -> Result<Option<SecurityGroup>, CallError> {
    let out = ec2
        .describe_security_groups()
        .filters(filter("group-name", &[name]))
        .filters(filter("vpc-id", &[vpc]))
        .send()
        .await
        .map_err(err)?;
    Ok(out.security_groups().first().cloned())
}

/// Quarantine: no rules at all (forensics ingress aside). Untrack: everything open.
async fn configure(
    ec2: &aws_sdk_ec2::Client,
    group: &SecurityGroup,
    kind: Kind,
    forensics: Option<&ForensicsIngress>,
    trips: &mut u32,
) -> Result<(), CallError> {
    let id = group.group_id().unwrap_or_default();
    match kind {
        Kind::Quarantine => {
            if !group.ip_permissions_egress().is_empty() {
                *trips += 1;
                ec2.revoke_security_group_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(group.ip_permissions_egress().to_vec()))
                    .send()
                    .await
                    .map_err(err)?;
            }
            let wanted = forensics.map(forensics_rules).unwrap_or_default();
            let stray: Vec<IpPermission> = group
                .ip_permissions()
                .iter()
                .filter(|p| !wanted.contains(p))
                .cloned()
                .collect();
            if !stray.is_empty() {
                ec2.revoke_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(stray))
                    .send()
                    .await
                    .map_err(err)?;
            }
            if !wanted.is_empty() {
                ignore_duplicate(
                    ec2.authorize_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(wanted))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err),
                )?;
            }
        }
        Kind::Untrack => {
            let all = IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                .build();
            if group.ip_permissions().is_empty() {
                ignore_duplicate(
                    ec2.authorize_security_group_ingress()
                        .group_id(id)
                        .ip_permissions(all.clone())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err),
                )?;
            }
            let has_v6_egress = group.ip_permissions_egress().iter().any(|p| {
                p.ipv6_ranges()
                    .iter()
                    .any(|r| r.cidr_ipv6() == Some("::/0"))
            });
            if !has_v6_egress {
                let v6 = IpPermission::builder()
                    .ip_protocol("-1")
                    .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                    .build();
                ignore_duplicate(
                    ec2.authorize_security_group_egress()
                        .group_id(id)
                        .ip_permissions(v6)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err),
                )?;
            }
        }
    }
    Ok(())
}

fn forensics_rules(f: &ForensicsIngress) -> Vec<IpPermission> {
    f.ports
        .iter()
        .map(|port| {
            let mut p = IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(i32::from(*port))
                .to_port(i32::from(*port));
            for cidr in &f.cidrs {
                if cidr.contains(':') {
                    p = p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(cidr).build());
                } else {
                    p = p.ip_ranges(IpRange::builder().cidr_ip(cidr).build());
                }
            }
            if let Some(g) = &f.security_group_id {
                p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build());
            }
            p.build()
        })
        .collect()
}

fn ignore_duplicate(r: Result<(), CallError>) -> Result<(), CallError> {
    match r {
        Err(e) if e.code == "InvalidPermission.Duplicate" => Ok(()),
        other => other,
    }
}

/// Opt-in: a deny-all network ACL on every subnet of the instance. It affects every
/// instance in those subnets; the report says so.
async fn deny_all_acls(
    ctx: &Ctx<'_>,
    view: &crate::executor::InstanceView,
) -> Result<Vec<String>, CallError> {
    let ec2 = ctx.ec2();
    let mut notes = Vec::new();
    let mut subnets: Vec<(String, String)> = view
        .enis
        .iter()
        .filter_map(|e| Some((e.subnet_id.clone()?, e.vpc_id.clone()?)))
        .collect();
    subnets.sort();
    subnets.dedup();
    for (subnet, vpc) in subnets {
        let current = ec2
            .describe_network_acls()
            .filters(filter("association.subnet-id", &[&subnet]))
            .send()
            .await
            .map_err(err)?;
        let Some(acl) = current.network_acls().first() else {
            continue;
        };
        if acl
            .tags()
            .iter()
            .any(|t| t.key() == Some(&format!("{TAG_PREFIX}role")) && t.value() == Some("deny-all"))
        {
            notes.push(format!(
                "subnet {subnet} already has the deny-all network ACL"
            ));
            continue;
        }
        let Some(assoc) = acl
            .associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet.as_str()))
            .and_then(|a| a.network_acl_association_id())
        else {
            continue;
        };
        // A new network ACL denies everything until entries are added.
        let new = ec2
            .create_network_acl()
            .vpc_id(&vpc)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::NetworkAcl)
                    .tags(tag(&format!("{TAG_PREFIX}role"), "deny-all"))
                    .tags(tag(
                        &format!("{TAG_PREFIX}original-acl"),
                        acl.network_acl_id().unwrap_or_default(),
                    ))
                    .tags(tag(&format!("{TAG_PREFIX}finding-id"), &ctx.finding.id))
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        let new_id = new
            .network_acl()
            .and_then(|a| a.network_acl_id())
            .unwrap_or_default()
            .to_owned();
        ec2.replace_network_acl_association()
            .association_id(assoc)
            .network_acl_id(&new_id)
            .send()
            .await
            .map_err(err)?;
        notes.push(format!(
            "network ACL {new_id} now denies all traffic for EVERY instance in subnet {subnet} (was {})",
            acl.network_acl_id().unwrap_or_default()
        ));
    }
    Ok(notes)
}

impl crate::executor::Executor {
    pub(crate) fn cached_group(&self, vpc: &str, name: &str) -> Option<String> {
        self.groups
            .lock()
            .ok()?
            .get(&(vpc.to_owned(), name.to_owned()))
            .cloned()
    }

    pub(crate) fn cache_group(&self, vpc: &str, name: &str, id: &str) {
        if let Ok(mut g) = self.groups.lock() {
            g.insert((vpc.to_owned(), name.to_owned()), id.to_owned());
        }
    }
}
