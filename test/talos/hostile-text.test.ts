/**
 * A node that lies (issue 18 item 10): what a node says reaches the operator's terminal, the journal and the report.
 * Escape sequences in an error message or a member's name could clear the screen, recolour it or hide a warning
 * behind a carriage return. The client hands on only one safe, bounded line of whatever the node sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { describeFailure } from '../../src/talos/errors.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, NodeFailure, startFakeTalos, writeTalosconfig, type FakeTalos } from './fake-talos.js';

const HOSTILE = '\u001b[2J\u001b[H\u001b]0;owned\u0007all good\rnothing to see\u001b[31m\u202e\u0000';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let talos: FakeTalos;
let client: GrpcTalosClient;

beforeAll(async () => {
  const pki = await makePki();
  talos = await startFakeTalos(pki, {
    unary: {
      Version: () => {
        throw new NodeFailure(13, `${HOSTILE}${'x'.repeat(100_000)}`);
      },
      EtcdMemberList: () => ({
        members: [{ id: '7', hostname: HOSTILE, peerUrls: [`https://${HOSTILE}:2380`], isLearner: false }],
      }),
    },
  });
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [talos.address]) }, {}));
});

afterAll(async () => {
  client?.close();
  await talos?.stop();
});

describe('text a node controls', () => {
  it('an error message arrives as one bounded line without escape sequences', async () => {
    const [answer] = await client.version(['10.5.0.2']);
    expect(answer?.ok).toBe(false);
    if (answer?.ok !== false) return;
    expect(answer.error.message).toContain('all good nothing to see');
    expect(answer.error.message).not.toMatch(CONTROL);
    expect(answer.error.message.length).toBeLessThanOrEqual(1000);
    expect(describeFailure('10.5.0.2', answer.error)).not.toMatch(CONTROL);
  });

  it("a member's name and URLs arrive without escape sequences", async () => {
    const [answer] = await client.etcdMemberList(['10.5.0.2'], true);
    expect(answer?.ok).toBe(true);
    if (answer?.ok !== true) return;
    const [member] = answer.value;
    expect(member?.hostname).toBe('all good nothing to see');
    expect(member?.peerUrls.join(' ')).not.toMatch(CONTROL);
  });
});
