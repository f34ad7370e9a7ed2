// The responder's AWS calls recorded by the integration tests (GDR_IAM_RECORD, see
// tests/support/record.rs), turned into the IAM requests AWS evaluates for them, in
// the shape of cases.yaml's `calls`.
//
// A recording holds every exchange with moto (request head and body, moto's answer)
// and the local GuardDuty endpoint's operations, of every test process. Set-up and
// assertions are in it too: they are followed only for the tags they put on
// resources. The responder's own calls are told by their user agent (the function
// binary's `exec-env/AWS_Lambda_...`, the in-process responder's app name). Calls
// with assumed credentials (`ASIA...`) are the member role's, the others the
// function role's. Resource ids become the reference's ARNs in the role's example
// account; the stack's own resources (the tests' ledger table and report topic) stand
// for the example stack's. Identical requests are simulated once. The tests' ledger
// and report clients serve the set-up too, which creates the table and the topic as
// CloudFormation does for the stack: that administration is not the responder's (the
// function binary's would be judged).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const RESPONDER_AGENTS = ['app/guardduty-responder-under-test', 'exec-env/AWS_Lambda']

/** The stack's resources' administration: CloudFormation's, or set-up's and
 * assertions' (tests/organization.rs lists the tables). */
const STACK_ADMINISTRATION = [
  'dynamodb:ListTables',
  'dynamodb:CreateTable',
  'dynamodb:DescribeTable',
  'dynamodb:DescribeTimeToLive',
  'dynamodb:UpdateTimeToLive',
  'dynamodb:DescribeContinuousBackups',
  'dynamodb:UpdateContinuousBackups',
  'sns:CreateTopic',
  'sns:Subscribe',
  'sns:DeleteTopic',
  // The operator console's (`responder findings`, `archive --undo`), run with the
  // operator's credentials; the tests drive it with the verifier's client.
  'guardduty:ListFindings',
  'guardduty:UnarchiveFindings',
  // `responder history` with neither --finding nor --instance reads the whole ledger
  // (Scan) with the operator's credentials; the function only queries by key.
  'dynamodb:Scan',
]
const setUp = (action, agent) => STACK_ADMINISTRATION.includes(action) && !agent.includes('exec-env/AWS_Lambda')

const PREFIX_TYPES = [
  ['i-', 'instance'],
  ['sg-', 'security-group'],
  ['acl-', 'network-acl'],
  ['snap-', 'snapshot'],
  ['vol-', 'volume'],
  ['eni-', 'network-interface'],
  ['subnet-', 'subnet'],
  ['vpc-', 'vpc'],
  ['ami-', 'image'],
  ['lt-', 'launch-template'],
]
const typeOf = (id) => PREFIX_TYPES.find(([p]) => id.startsWith(p))?.[1]

/** Header `name` of an HTTP head, lower-cased name, or undefined. */
function header(head, name) {
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':')
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === name) return line.slice(i + 1).trim()
  }
  return undefined
}

/** Query parameters with a prefix `Name.N` as a list, in N order. */
function listOf(params, name) {
  const out = []
  for (let n = 1; params.has(`${name}.${n}`); n++) out.push(params.get(`${name}.${n}`))
  return out
}

/** `{key: value}` of `Prefix.N.Key`/`Prefix.N.Value`. */
function tagsOf(params, prefix) {
  const tags = {}
  for (let n = 1; params.has(`${prefix}.${n}.Key`); n++) {
    tags[params.get(`${prefix}.${n}.Key`)] = params.get(`${prefix}.${n}.Value`) ?? ''
  }
  return tags
}

/** The TagSpecifications of a query request: `[{type, tags}]`. */
function tagSpecs(params) {
  const out = []
  for (let n = 1; params.has(`TagSpecification.${n}.ResourceType`); n++) {
    out.push({
      type: params.get(`TagSpecification.${n}.ResourceType`),
      tags: tagsOf(params, `TagSpecification.${n}.Tag`),
    })
  }
  return out
}

/** Ids named by `<tag>...</tag>` in an XML answer. */
const idsIn = (xml, tag) => [...xml.matchAll(new RegExp(`<${tag}>([^<]+)</${tag}>`, 'g'))].map((m) => m[1])

/** Tag values that decide nothing are the same in every request (for dedup). */
function shape(tags) {
  if (!tags) return tags
  return Object.fromEntries(
    Object.entries(tags).map(([k, v]) => [k, k === 'guardduty-responder:role' || k === 'guardduty-responder:exempt' ? v : 'v']),
  )
}

/** The requests of all recordings in `dir`, deduplicated; and counts. */
export function recordedCalls(dir, cases) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'))
  const unique = new Map()
  const stats = { files: files.length, exchanges: 0, responder: 0, functionBinary: 0 }
  for (const f of files) {
    const tags = new Map() // resource id -> {key: value}
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line.trim()) continue
      let r
      try {
        r = JSON.parse(line)
      } catch {
        continue // a line cut by a killed process
      }
      stats.exchanges++
      const agent = `${header(r.head, 'user-agent') ?? ''} ${header(r.head, 'x-amz-user-agent') ?? ''}`
      const responder = RESPONDER_AGENTS.some((a) => agent.includes(a))
      const credential = /Credential=([^/]+)\/[^/]+\/([^/]+)\/([^/]+)\//.exec(header(r.head, 'authorization') ?? '')
      const role = credential?.[1].startsWith('ASIA') ? 'member' : 'function'
      let requests = []
      if (r.service === 'guardduty') {
        if (setUp(`guardduty:${r.operation}`, agent)) continue
        requests = [{ action: `guardduty:${r.operation}` }]
      } else {
        const service = credential?.[3]
        const status = Number(/^HTTP\/1\.[01] (\d+)/.exec(r.answer ?? '')?.[1] ?? 0)
        const answer = r.answer ?? ''
        const target = header(r.head, 'x-amz-target')
        if (target && service === 'dynamodb') {
          const operation = target.split('.').pop()
          if (setUp(`dynamodb:${operation}`, agent)) continue
          requests = dynamodb(operation, JSON.parse(r.body || '{}'), cases)
        } else {
          const params = new URLSearchParams(r.body ?? '')
          const action = params.get('Action')
          if (!action) continue
          if (setUp(`${service}:${action}`, agent)) continue
          if (service === 'ec2') {
            requests = ec2(action, params, answer, tags)
            if (status === 200) follow(action, params, answer, tags)
          } else requests = query(service, action, params, cases)
        }
      }
      if (!responder) continue
      stats.responder++
      if (agent.includes('exec-env/AWS_Lambda')) stats.functionBinary++
      for (const q of requests) {
        const c = { ...q, roles: [q.action.startsWith('ec2:') || q.action.startsWith('autoscaling:') || q.action.startsWith('elasticloadbalancing:') ? role : 'function'] }
        const key = JSON.stringify({
          ...c,
          requestTags: shape(c.requestTags),
          resources: Object.fromEntries(
            Object.entries(c.resources ?? {}).map(([t, s]) => [t, { ...s, id: undefined, tags: shape(s.tags), requestTags: shape(s.requestTags) }]),
          ),
        })
        if (!unique.has(key)) unique.set(key, { ...c, id: `recorded/${c.action}#${unique.size + 1}` })
      }
    }
  }
  return { calls: [...unique.values()], stats }
}

/** Tags as moto holds them after a successful EC2 call (set-up's calls included). */
function follow(action, params, answer, tags) {
  const created = {
    CreateSecurityGroup: idsIn(answer, 'groupId'),
    CreateNetworkAcl: idsIn(answer, 'networkAclId').slice(0, 1),
    CreateSnapshots: idsIn(answer, 'snapshotId'),
    CreateSnapshot: idsIn(answer, 'snapshotId'),
    CreateVolume: idsIn(answer, 'volumeId'),
    RunInstances: [...new Set(idsIn(answer, 'instanceId'))],
  }[action]
  if (created) {
    for (const spec of tagSpecs(params)) {
      for (const id of created.filter((id) => typeOf(id) === spec.type)) {
        tags.set(id, { ...(tags.get(id) ?? {}), ...spec.tags })
      }
    }
  }
  if (action === 'CreateTags' || action === 'DeleteTags') {
    const given = tagsOf(params, 'Tag')
    for (const id of listOf(params, 'ResourceId')) {
      const now = { ...(tags.get(id) ?? {}) }
      for (const [k, v] of Object.entries(given)) {
        if (action === 'CreateTags') now[k] = v
        else delete now[k]
      }
      if (action === 'DeleteTags' && Object.keys(given).length === 0) for (const k of Object.keys(now)) delete now[k]
      tags.set(id, now)
    }
  }
}

/** A resource entry for `id` with its tags as known now. */
const res = (id, tags) => ({ id, ...(tags.get(id) && Object.keys(tags.get(id)).length ? { tags: { ...tags.get(id) } } : {}) })

/** The attribute a Modify*Attribute request changes, as the query names it. */
function attributeOf(params, names) {
  if (params.get('Attribute')) return params.get('Attribute')
  for (const key of params.keys()) {
    const name = key.split('.')[0]
    if (names.includes(name)) return name
  }
  return undefined
}

/** One EC2 call as the IAM requests AWS evaluates. */
function ec2(action, params, answer, tags) {
  const a = `ec2:${action}`
  const one = (resources, extra = {}) => [{ action: a, resources, ...extra }]
  const perInstance = (name) => listOf(params, name).map((id) => ({ action: a, resources: { instance: res(id, tags) } }))
  const createdTags = (createAction, ids) =>
    tagSpecs(params).flatMap((spec) =>
      (ids.filter((id) => typeOf(id) === spec.type).length ? ids.filter((id) => typeOf(id) === spec.type) : [`${spec.type}-new`]).map(
        (id) => ({
          action: 'ec2:CreateTags',
          context: { 'ec2:CreateAction': createAction },
          requestTags: spec.tags,
          resources: { [spec.type]: { id } },
        }),
      ),
    )
  const specTags = (type) => tagSpecs(params).find((s) => s.type === type)?.tags
  switch (action) {
    case 'TerminateInstances':
    case 'StopInstances':
      return perInstance('InstanceId')
    case 'GetConsoleOutput':
    case 'DescribeInstanceAttribute':
      return one({ instance: res(params.get('InstanceId'), tags) })
    case 'ModifyInstanceAttribute': {
      const attribute = attributeOf(params, ['BlockDeviceMapping', 'DisableApiTermination', 'InstanceInitiatedShutdownBehavior', 'SourceDestCheck', 'UserData', 'InstanceType', 'GroupId'])
      const resources = { instance: res(params.get('InstanceId'), tags) }
      if (attribute === 'BlockDeviceMapping') resources.volume = { id: 'vol-of-the-instance' }
      return one(resources, { context: { 'ec2:Attribute': attribute } })
    }
    case 'ModifyNetworkInterfaceAttribute': {
      const attribute = attributeOf(params, ['SecurityGroupId', 'ConnectionTrackingSpecification', 'SourceDestCheck', 'Description', 'Attachment'])
      const groups = listOf(params, 'SecurityGroupId')
      const eni = { 'network-interface': res(params.get('NetworkInterfaceId'), tags) }
      if (!groups.length) return one(eni, { context: { 'ec2:Attribute': attribute } })
      // One request per group: each group is a resource of its own.
      return groups.map((g) => ({
        action: a,
        context: { 'ec2:Attribute': attribute },
        resources: { ...eni, 'security-group': res(g, tags) },
      }))
    }
    case 'CreateSecurityGroup': {
      const ids = idsIn(answer, 'groupId')
      return [
        ...one({ vpc: { id: params.get('VpcId') ?? 'vpc-default' }, 'security-group': { id: ids[0] ?? 'sg-new', requestTags: specTags('security-group') } }),
        ...createdTags('CreateSecurityGroup', ids),
      ]
    }
    case 'AuthorizeSecurityGroupIngress':
    case 'AuthorizeSecurityGroupEgress':
    case 'RevokeSecurityGroupIngress':
    case 'RevokeSecurityGroupEgress':
      return one({ 'security-group': res(params.get('GroupId'), tags) })
    case 'CreateNetworkAcl': {
      const ids = idsIn(answer, 'networkAclId').slice(0, 1)
      return [
        ...one({ vpc: { id: params.get('VpcId') }, 'network-acl': { id: ids[0] ?? 'acl-new', requestTags: specTags('network-acl') } }),
        ...createdTags('CreateNetworkAcl', ids),
      ]
    }
    case 'ReplaceNetworkAclAssociation':
      // The subnet is the association's, which the request names only by its id.
      return one({ 'network-acl': res(params.get('NetworkAclId'), tags), subnet: { id: 'subnet-of-the-association' } })
    case 'CreateNetworkAclEntry':
    case 'DeleteNetworkAclEntry':
    case 'ReplaceNetworkAclEntry':
      return one({ 'network-acl': res(params.get('NetworkAclId'), tags) })
    case 'CreateSnapshots': {
      const ids = idsIn(answer, 'snapshotId')
      return [
        ...one({
          instance: res(params.get('InstanceSpecification.InstanceId'), tags),
          volume: { id: 'vol-of-the-instance' },
          snapshot: { id: ids[0] ?? 'snap-new', requestTags: specTags('snapshot') },
        }),
        ...createdTags('CreateSnapshots', ids),
      ]
    }
    case 'DeleteSnapshot':
      return one({ snapshot: res(params.get('SnapshotId'), tags) })
    case 'CreateTags':
    case 'DeleteTags': {
      const given = tagsOf(params, 'Tag')
      const keys = Object.keys(given)
      return listOf(params, 'ResourceId').map((id) => ({
        action: a,
        ...(action === 'CreateTags' ? { requestTags: given } : keys.length ? { tagKeys: keys } : {}),
        resources: { [typeOf(id) ?? 'instance']: res(id, tags) },
      }))
    }
    case 'RunInstances': {
      const ids = [...new Set(idsIn(answer, 'instanceId'))]
      const groups = [...listOf(params, 'NetworkInterface.1.SecurityGroupId'), ...listOf(params, 'SecurityGroupId')]
      const resources = {
        instance: { id: ids[0] ?? 'i-new', requestTags: specTags('instance') },
        image: { id: params.get('ImageId') ?? 'ami-of-the-launch-template' },
        snapshot: { id: 'snap-of-the-image' },
        subnet: { id: params.get('NetworkInterface.1.SubnetId') ?? params.get('SubnetId') ?? 'subnet-of-the-launch-template' },
        'network-interface': { id: 'eni-new' },
        'security-group': res(groups[0] ?? 'sg-of-the-launch-template', tags),
        volume: { id: 'vol-new' },
      }
      if (params.get('KeyName')) resources['key-pair'] = { id: params.get('KeyName') }
      if (params.get('LaunchTemplate.LaunchTemplateId')) resources['launch-template'] = { id: params.get('LaunchTemplate.LaunchTemplateId') }
      const out = [...one(resources), ...createdTags('RunInstances', ids)]
      if (params.get('IamInstanceProfile.Arn') || params.get('IamInstanceProfile.Name')) out.push(passRole())
      return out
    }
    case 'AssociateIamInstanceProfile':
      return [...one({ instance: res(params.get('InstanceId'), tags) }), passRole()]
    case 'DisassociateIamInstanceProfile':
      // The request names the association, whose instance AWS authorizes.
      return one({ instance: { id: 'i-of-the-association' } })
    default:
      return one(undefined)
  }
}

/** iam:PassRole of the instance role (an example listed role: the tests' are not). */
function passRole() {
  return { action: 'iam:PassRole', context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, resources: { role: { id: 'app-server' } } }
}

/** Auto Scaling, ELBv2, SNS and STS calls. */
function query(service, action, params, cases) {
  const a = `${service}:${action}`
  switch (a) {
    case 'autoscaling:DetachInstances':
      return [{ action: a, resources: { autoScalingGroup: { arn: `arn:aws:autoscaling:${cases.region}:\${ACCOUNT}:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/${params.get('AutoScalingGroupName')}` } } }]
    case 'elasticloadbalancing:DeregisterTargets': {
      const name = (params.get('TargetGroupArn') ?? '').split(':targetgroup/').pop()
      return [{ action: a, resources: { targetgroup: { arn: `arn:aws:elasticloadbalancing:${cases.region}:\${ACCOUNT}:targetgroup/${name}` } } }]
    }
    case 'sns:Publish':
      // The tests' topic stands for the stack's ReportTopic.
      return [{ action: a, resources: { topic: { arn: cases.resources['ReportTopic.Ref'] } } }]
    case 'sts:AssumeRole': {
      const name = (params.get('RoleArn') ?? '').split(':role/').pop()
      const role = { arn: `arn:aws:iam::${cases.accounts.member}:role/${name}`, account: cases.accounts.member }
      const context = params.get('SourceIdentity') ? { 'sts:SourceIdentity': params.get('SourceIdentity') } : {}
      const out = [{ action: a, context, resources: { role } }]
      if (params.get('SourceIdentity')) out.push({ action: 'sts:SetSourceIdentity', context, resources: { role } })
      return out
    }
    case 'sts:GetCallerIdentity':
      return [] // needs no permission
    default:
      return [{ action: a }]
  }
}

/** A DynamoDB call on the tests' ledger table, which stands for the stack's. */
function dynamodb(operation, body, cases) {
  const table = { table: { arn: cases.resources['LedgerTable.Arn'] } }
  const one = (op) => ({ action: `dynamodb:${op}`, resources: table })
  switch (operation) {
    case 'TransactWriteItems':
      return (body.TransactItems ?? []).map((item) => {
        const kind = Object.keys(item)[0]
        return one({ Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' }[kind] ?? kind)
      })
    case 'TransactGetItems':
      return [one('GetItem')]
    case 'Query':
      if (body.IndexName) {
        return [{ action: 'dynamodb:Query', resources: { ...table, index: { arn: `${cases.resources['LedgerTable.Arn']}/index/${body.IndexName}` } } }]
      }
      return [one('Query')]
    default:
      return [one(operation)]
  }
}
