/**
 * `--etcd real` from the built CLI where etcd is not installed (PATH without it): one sentence that says how to
 * install it, exit code 1, nothing started. Runs everywhere (no etcd needed).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findPackageRoot } from '../../src/paths.js';
import { realEtcdMissing } from '../../src/sim/real-etcd-tools.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
// only node itself on the PATH (a folder with a link to it): no etcd, no etcdctl
const bin = mkdtempSync(join(tmpdir(), 'talos-dr-node-only-'));
symlinkSync(process.execPath, join(bin, 'node'));
const env = { ...process.env, PATH: bin };

describe('--etcd real without etcd installed', () => {
  it('the PATH used here really has no etcd (the control for the checks below)', () => {
    expect(realEtcdMissing(env.PATH)).toMatch(/apt-get install etcd-server etcd-client/);
    expect(realEtcdMissing('/usr/bin:/bin') === null).toBe(realEtcdMissing() === null);
  });

  it('drill: one sentence naming the packages, exit code 1, no incident started', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-no-etcd-')), 'incident');
    const r = spawnSync(
      process.execPath,
      [cli, 'drill', '--scenario', 'single-node', '--autopilot', '--etcd', 'real', '--dir', dir],
      { encoding: 'utf8', env },
    );
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('apt-get install etcd-server etcd-client');
    expect(r.stdout).toBe('');
    expect(readdirSync(dirname(dir))).toEqual([]);
  });

  it('sim: the same sentence, and no ready line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'talos-dr-no-etcd-sim-'));
    const r = spawnSync(process.execPath, [cli, 'sim', '--scenario', 'lost-quorum', '--dir', dir, '--etcd', 'real'], {
      encoding: 'utf8',
      env,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('apt-get install etcd-server etcd-client');
    expect(r.stdout).not.toContain('ready');
  });

  it('an unknown --etcd value is a usage error (exit code 2) naming both choices', () => {
    const r = spawnSync(process.execPath, [cli, 'drill', '--autopilot', '--etcd', 'etcd3'], { encoding: 'utf8', env });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--etcd model (the default) or --etcd real');
  });
});
