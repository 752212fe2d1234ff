/**
 * Container-mode clusters (issue 12 item 6): the client reads Version.platform.mode off the wire, the check names the
 * container nodes with one sentence saying what to do instead, and a Reboot refused in container mode is explained.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, toPromise } from 'xstate';
import { recoveryActors } from '../../src/wizard/actors.js';
import type { EffectDeps } from '../../src/wizard/deps.js';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { describeFailure } from '../../src/talos/errors.js';
import { containerModeNodes, containerModeRefusal } from '../../src/talos/platform.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, NodeFailure, startFakeTalos, writeTalosconfig, type FakeTalos } from './fake-talos.js';

let talos: FakeTalos;
let client: GrpcTalosClient;

beforeAll(async () => {
  const pki = await makePki();
  talos = await startFakeTalos(pki, {
    unary: {
      Version: (node) => ({
        version: { tag: 'v1.12.4', sha: 'a', goVersion: 'go1.25', os: 'linux', arch: 'amd64' },
        // what `talosctl cluster create` (Docker) nodes report
        platform: node.startsWith('10.5.')
          ? { name: 'container', mode: 'container' }
          : { name: 'metal', mode: 'metal' },
      }),
      Reboot: () => {
        // siderolabs/talos: internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.12.0:126
        throw new NodeFailure(9, 'method is not supported in container mode');
      },
    },
  });
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [talos.address]) }, {}));
});

afterAll(async () => {
  client.close();
  await talos.stop();
});

describe('container mode', () => {
  it('is read from Version and named before anything destructive, with what to do instead', async () => {
    const versions = await client.version(['10.5.0.2', '10.5.0.3', '192.168.1.10']);
    expect(versions.map((v) => v.ok && v.value.platform?.mode)).toEqual(['container', 'container', 'metal']);
    expect(containerModeNodes(versions)).toEqual(['10.5.0.2', '10.5.0.3']);
    const sentence = containerModeRefusal(versions);
    expect(sentence).toMatch(/^10\.5\.0\.2, 10\.5\.0\.3 run Talos in a container/);
    expect(sentence).toMatch(/Reset stops a node without wiping its etcd data and Reboot is refused/);
    expect(sentence).toMatch(/talosctl bootstrap --recover-from=SNAPSHOT/);
    expect(containerModeRefusal(await client.version(['192.168.1.10']))).toBeNull();
  });

  it('explains a Reboot refused in container mode instead of "check the logs"', async () => {
    const result = await client.reboot('10.5.0.2');
    expect(result.ok).toBe(false);
    if (!result.ok) {
      const sentence = describeFailure('10.5.0.2', result.error, 'the reboot');
      expect(sentence).toMatch(
        /^10\.5\.0\.2 runs Talos in a container, which refuses the reboot; the wipe-based recovery/,
      );
      expect(sentence).not.toMatch(/dmesg|logs/);
    }
  });
});

describe('the wizard at Connect', () => {
  it('stops with the sentence before anything else is asked of a container-mode cluster', async () => {
    const before = talos.seen.length;
    // Connect uses only the client (no journal, incident folder or maintenance dialer yet)
    const deps = { client } as Partial<EffectDeps> as EffectDeps;
    const connect = createActor(recoveryActors(deps, { pollMs: 20, nodeBackTimeoutMs: 1000 }).connect, {
      input: { nodes: ['10.5.0.2', '10.5.0.3', '10.5.0.4'] },
    }).start();
    await expect(toPromise(connect)).rejects.toThrow(/^10\.5\.0\.2, 10\.5\.0\.3, 10\.5\.0\.4 run Talos in a container/);
    expect(talos.seen.slice(before).map((s) => s.method)).toEqual(['Version', 'Version', 'Version']);
  });
});
