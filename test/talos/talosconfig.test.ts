import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import {
  generateCa,
  issueClientCert,
  talosconfigYaml,
  type CertificateAuthority,
  type PemPair,
} from '../../src/talos/pki.js';
import { loadTalosconfig, parseEndpoint } from '../../src/talos/talosconfig.js';

let ca: CertificateAuthority;
let client: PemPair;
let good: string;

const tmp = () => mkdtempSync(join(tmpdir(), 'talos-dr-cfg-'));
function file(text: string): string {
  const path = join(tmp(), 'talosconfig');
  writeFileSync(path, text);
  return path;
}
/** The UserError sentence a load ends with (fails the test if it does not throw one). */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}

beforeAll(async () => {
  ca = await generateCa();
  client = await issueClientCert(ca, { roles: ['os:admin'] });
  good = talosconfigYaml({
    context: 'prod',
    endpoints: ['10.0.0.2', '10.0.0.3:50001'],
    nodes: ['10.0.0.2'],
    ca,
    client,
  });
});

describe('where the talosconfig is found', () => {
  it('prefers --talosconfig, then TALOSCONFIG, then ~/.talos/config under the given HOME', () => {
    const home = tmp();
    mkdirSync(join(home, '.talos'));
    writeFileSync(join(home, '.talos', 'config'), good);
    const fromHome = loadTalosconfig({}, { HOME: home });
    expect(fromHome.path).toBe(join(home, '.talos', 'config'));
    const envPath = file(good);
    expect(loadTalosconfig({}, { HOME: home, TALOSCONFIG: envPath }).path).toBe(envPath);
    const flagPath = file(good);
    expect(loadTalosconfig({ talosconfig: flagPath }, { HOME: home, TALOSCONFIG: envPath }).path).toBe(flagPath);
  });

  it('names the missing file and how to give one', () => {
    expect(refusal(() => loadTalosconfig({}, { HOME: tmp() }))).toMatch(
      /^No talosconfig found at .*\.talos\/config: pass one with --talosconfig FILE or set TALOSCONFIG/,
    );
    expect(refusal(() => loadTalosconfig({ talosconfig: '/nonexistent/tc' }, {}))).toBe(
      'The talosconfig given with --talosconfig does not exist: /nonexistent/tc; check the path.',
    );
    expect(refusal(() => loadTalosconfig({}, { HOME: tmp(), TALOSCONFIG: '/nonexistent/tc' }))).toMatch(
      /^No talosconfig found at \/nonexistent\/tc \(TALOSCONFIG\) nor at .*\.talos\/config: pass one/,
    );
  });

  it('skips a TALOSCONFIG that does not exist, as talosctl does, and honours an absolute TALOS_HOME', () => {
    const home = tmp();
    mkdirSync(join(home, '.talos'));
    writeFileSync(join(home, '.talos', 'config'), good);
    expect(loadTalosconfig({}, { HOME: home, TALOSCONFIG: '/nonexistent/tc' }).path).toBe(
      join(home, '.talos', 'config'),
    );
    const talosHome = tmp();
    writeFileSync(join(talosHome, 'config'), good);
    expect(loadTalosconfig({}, { HOME: home, TALOS_HOME: talosHome }).path).toBe(join(talosHome, 'config'));
    // a relative TALOS_HOME is ignored by talosctl
    expect(loadTalosconfig({}, { HOME: home, TALOS_HOME: 'relative' }).path).toBe(join(home, '.talos', 'config'));
  });
});

describe('node names', () => {
  it('refuses a node with a port before any call, as apid would refuse each ("invalid target")', () => {
    const path = file(good);
    expect(refusal(() => loadTalosconfig({ talosconfig: path, nodes: ['10.0.0.2:50000'] }, {}))).toBe(
      'The node "10.0.0.2:50000" given with -n has a port, which Talos refuses ("invalid target"): name nodes by address only (-n 10.0.0.2) and give the port with the endpoint (-e 10.0.0.2:50000).',
    );
    expect(refusal(() => loadTalosconfig({ talosconfig: path, nodes: ['[fd00::2]:50000'] }, {}))).toMatch(
      /\(-n fd00::2\)/,
    );
    expect(
      refusal(() =>
        loadTalosconfig({ talosconfig: file(good.replace(/(nodes:\n\s+- )10\.0\.0\.2/, '$1cp-1:50000')) }, {}),
      ),
    ).toMatch(/^The node "cp-1:50000" in the context "prod" of .* has a port/);
    // bare IPv6 addresses and host names are names, not ports
    const ok = loadTalosconfig({ talosconfig: path, nodes: ['fd00::2', 'cp-1.example', '10.0.0.3'] }, {});
    expect(ok.nodes).toEqual(['fd00::2', 'cp-1.example', '10.0.0.3']);
  });
});

describe('contexts talosctl accepts', () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const context = (fields: string) => `context: c\ncontexts:\n  c:\n${fields}`;

  it('appends the deprecated target to the endpoints', () => {
    const text = context(
      `    endpoints: [10.0.0.2]\n    target: 10.0.0.9\n    ca: ${b64(ca.certPem)}\n    crt: ${b64(client.certPem)}\n    key: ${b64(client.keyPem)}\n`,
    );
    expect(loadTalosconfig({ talosconfig: file(text) }, {}).endpoints.map((e) => e.address)).toEqual([
      '10.0.0.2:50000',
      '10.0.0.9:50000',
    ]);
    const only = context(`    target: 10.0.0.9\n    ca: ${b64(ca.certPem)}\n`);
    expect(loadTalosconfig({ talosconfig: file(only) }, {}).endpoints.map((e) => e.address)).toEqual([
      '10.0.0.9:50000',
    ]);
  });

  it('reads a context without ca (system roots) and one without crt and key (no client certificate)', () => {
    const noCa = loadTalosconfig(
      {
        talosconfig: file(
          context(`    endpoints: [cp.example.com]\n    crt: ${b64(client.certPem)}\n    key: ${b64(client.keyPem)}\n`),
        ),
      },
      {},
    );
    expect(noCa.caPem).toBeUndefined();
    expect(noCa.certPem).toBe(client.certPem);
    const noCert = loadTalosconfig(
      { talosconfig: file(context(`    endpoints: [h]\n    ca: ${b64(ca.certPem)}\n`)) },
      {},
    );
    expect(noCert.certPem).toBeUndefined();
    expect(noCert.keyPem).toBeUndefined();
    expect(noCert.caPem).toBe(ca.certPem);
    // one of the pair without the other is still a broken file
    const half = context(`    endpoints: [h]\n    crt: ${b64(client.certPem)}\n`);
    expect(refusal(() => loadTalosconfig({ talosconfig: file(half) }, {}))).toMatch(/has no "key"/);
  });

  it('answers an Omni context with Omni\'s own restore, not "regenerate the file"', () => {
    const omni = context(
      `    endpoints: [https://acme.omni.siderolabs.io]\n    auth:\n      siderov1:\n        identity: ops@example.com\n    cluster: prod-eu\n`,
    );
    const sentence = refusal(() => loadTalosconfig({ talosconfig: file(omni) }, {}));
    expect(sentence).toMatch(
      /^The talosconfig context "c" belongs to a cluster managed by Omni, whose machines refuse/,
    );
    expect(sentence).toContain('omnictl get etcdbackup -l omni.sidero.dev/cluster=prod-eu');
    expect(sentence).toContain('restore-etcd-of-a-cluster-managed-by-cluster-templates');
    expect(sentence).not.toMatch(/regenerate/);
  });
});

describe('reading a context', () => {
  it('reads the current context: endpoints with default ports, nodes, PEMs with the key label rewritten', () => {
    const config = loadTalosconfig({ talosconfig: file(good) }, {});
    expect(config.contextName).toBe('prod');
    expect(config.endpoints.map((e) => e.address)).toEqual(['10.0.0.2:50000', '10.0.0.3:50001']);
    expect(config.nodes).toEqual(['10.0.0.2']);
    expect(config.caPem).toBe(ca.certPem);
    expect(config.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(config.clientCertNotAfter?.getTime()).toBeGreaterThan(Date.now());
  });

  it('lets -e, -n, --context and TALOS_DR_SERVER_NAME override it', () => {
    const two = talosconfigYaml({ context: 'a', endpoints: ['1.1.1.1'], ca, client }).replace(
      /^contexts:\n/m,
      `contexts:\n  b:\n    endpoints: [2.2.2.2]\n    ca: ${Buffer.from(ca.certPem).toString('base64')}\n    crt: ${Buffer.from(client.certPem).toString('base64')}\n    key: ${Buffer.from(client.keyPem).toString('base64')}\n`,
    );
    const path = file(two);
    expect(loadTalosconfig({ talosconfig: path }, {}).endpoints[0]?.address).toBe('1.1.1.1:50000');
    expect(loadTalosconfig({ talosconfig: path, context: 'b' }, {}).endpoints[0]?.address).toBe('2.2.2.2:50000');
    const config = loadTalosconfig(
      { talosconfig: path, endpoints: ['[::1]:7000'], nodes: ['n1', 'n2'] },
      { TALOS_DR_SERVER_NAME: ' node-1.example ' },
    );
    expect(config.endpoints).toEqual([{ host: '::1', port: 7000, address: '[::1]:7000' }]);
    expect(config.nodes).toEqual(['n1', 'n2']);
    expect(config.serverName).toBe('node-1.example');
  });

  it('names the contexts that exist when the one asked for does not', () => {
    expect(refusal(() => loadTalosconfig({ talosconfig: file(good), context: 'staging' }, {}))).toMatch(
      /has no context "staging" \(given with --context\); it has: "prod"\. Use --context to pick one\.$/,
    );
  });

  it('refuses malformed YAML, a document that is not a talosconfig, and no current context', () => {
    expect(refusal(() => loadTalosconfig({ talosconfig: file('context: [unclosed\n') }, {}))).toMatch(
      /is not valid YAML/,
    );
    expect(refusal(() => loadTalosconfig({ talosconfig: file('just a string\n') }, {}))).toMatch(
      /does not look like a talosconfig/,
    );
    expect(refusal(() => loadTalosconfig({ talosconfig: file(good.replace('context: prod\n', '')) }, {}))).toMatch(
      /names no current context; choose one with --context \(it has: "prod"\)/,
    );
  });

  it('refuses a context without endpoints and says how to give them', () => {
    const none = talosconfigYaml({ context: 'x', endpoints: [], ca, client });
    expect(refusal(() => loadTalosconfig({ talosconfig: file(none) }, {}))).toMatch(
      /has no endpoints: pass them with -e/,
    );
  });

  it('refuses missing, non-base64, non-PEM and mismatched certificate fields, naming the field', () => {
    const withField = (field: string, value: string) =>
      good.replace(new RegExp(`(\\n\\s+${field}: )\\S+`), `$1${value}`);
    expect(refusal(() => loadTalosconfig({ talosconfig: file(withField('crt', '"***"')) }, {}))).toMatch(
      /"crt" that is not base64/,
    );
    const notPem = Buffer.from('hello').toString('base64');
    expect(refusal(() => loadTalosconfig({ talosconfig: file(withField('ca', notPem)) }, {}))).toMatch(
      /"ca" that is not a PEM certificate/,
    );
    const brokenPem = Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n').toString('base64');
    expect(refusal(() => loadTalosconfig({ talosconfig: file(withField('ca', brokenPem)) }, {}))).toMatch(
      /"ca" certificate that cannot be read/,
    );
    expect(refusal(() => loadTalosconfig({ talosconfig: file(good.replace(/\n\s+key: \S+/, '')) }, {}))).toMatch(
      /has no "key"/,
    );
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const other = await issueClientCert(ca, { roles: ['os:admin'] });
    const mixed = talosconfigYaml({
      context: 'm',
      endpoints: ['h'],
      ca,
      client: { certPem: client.certPem, keyPem: other.keyPem },
    });
    expect(refusal(() => loadTalosconfig({ talosconfig: file(mixed) }, {}))).toMatch(
      /"key" that does not belong to its "crt"/,
    );
  });
});

describe('endpoint forms', () => {
  it.each([
    ['10.0.0.2', '10.0.0.2:50000'],
    ['10.0.0.2:6443', '10.0.0.2:6443'],
    ['cp.example.com', 'cp.example.com:50000'],
    ['https://cp.example.com', 'cp.example.com:443'],
    ['https://cp.example.com:8443', 'cp.example.com:8443'],
    ['[::1]:50001', '[::1]:50001'],
    ['[fd00::2]', '[fd00::2]:50000'],
    ['fd00::2', '[fd00::2]:50000'],
    ['https://[fd00::2]:9000', '[fd00::2]:9000'],
  ])('%s → %s', (text, address) => {
    expect(parseEndpoint(text).address).toBe(address);
  });

  it.each(['', 'h:0', 'h:99999', 'h:port', 'http://h', '[zz]:1', 'a b'])('refuses "%s" with a sentence', (text) => {
    expect(refusal(() => parseEndpoint(text))).toMatch(/^The endpoint ".*" is not usable \(.+\); write it as host/);
  });
});
