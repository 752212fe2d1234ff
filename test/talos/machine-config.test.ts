/**
 * Machine-config edits keep everything but the value they change (issue 12 item 5). The fixture has the shape Talos
 * 1.12+ `gen config` writes — the v1alpha1 document with its comments and 4-space indentation, then HostnameConfig —
 * plus VolumeConfig, ExtensionServiceConfig and UserVolumeConfig documents as a real cluster accumulates them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parseDocument } from 'yaml';
import {
  configDocuments,
  MachineConfigError,
  machineTypeOf,
  setV1alpha1Value,
  withControlPlaneType,
} from '../../src/talos/machine-config.js';

const fixture = readFileSync(join(import.meta.dirname, 'fixtures', 'machine-config-1.12.yaml'), 'utf8');

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(MachineConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('a multi-document machine configuration', () => {
  it('the single-document edit the recovery used breaks on it (what this module replaces)', () => {
    const doc = parseDocument(fixture);
    doc.setIn(['machine', 'type'], 'controlplane');
    expect(() => doc.toString()).toThrow();
  });

  it('lists its documents in order, the v1alpha1 one found as Talos finds it', () => {
    expect(configDocuments(fixture).map((d) => d.kind)).toEqual([
      'v1alpha1',
      'HostnameConfig',
      'VolumeConfig',
      'ExtensionServiceConfig',
      'UserVolumeConfig',
    ]);
    expect(machineTypeOf(fixture)).toBe('init');
  });

  it('init → controlplane changes that one value and keeps every other byte', () => {
    const converted = withControlPlaneType(fixture, 'of 10.5.0.2');
    expect(converted).toBe(fixture.replace('    type: init # Defines', '    type: controlplane # Defines'));
    expect(machineTypeOf(converted)).toBe('controlplane');
    // every other document is the very same text, and the whole still parses as the same number of documents
    const before = configDocuments(fixture);
    const after = configDocuments(converted);
    for (const [i, doc] of before.entries()) {
      if (doc.kind === 'v1alpha1') continue;
      const moved = after[i];
      expect(moved && converted.slice(moved.start, moved.end)).toBe(fixture.slice(doc.start, doc.end));
    }
    expect(parseAllDocuments(converted)).toHaveLength(5);
  });

  it('finds the v1alpha1 document wherever it is, with a leading ---, and a quoted value', () => {
    const [main, ...rest] = fixture.split('\n---\n');
    const reordered = `---\n${rest.join('\n---\n')}\n---\n${(main ?? '').replace('type: init', 'type: "init"')}`;
    const converted = withControlPlaneType(reordered);
    expect(converted).toBe(reordered.replace('type: "init"', 'type: controlplane'));
  });

  it("adds machine.type as the first key of machine when it is missing, in the section's own indentation", () => {
    const without = fixture.replace('    type: init # Defines the role of the machine within the cluster.\n', '');
    const converted = withControlPlaneType(without);
    expect(converted).toBe(without.replace('machine:\n    token:', 'machine:\n    type: controlplane\n    token:'));
    expect(setV1alpha1Value('version: v1alpha1\nmachine:\n  token: x\n', ['machine', 'type'], 'worker')).toBe(
      'version: v1alpha1\nmachine:\n  type: worker\n  token: x\n',
    );
  });

  it('quotes a value that would not read back as the same string', () => {
    expect(setV1alpha1Value('machine:\n    type: init\n', ['machine', 'type'], 'yes')).toBe(
      'machine:\n    type: "yes"\n',
    );
  });

  it('refuses with one sentence what it cannot edit safely', () => {
    expect(
      refusal(() => withControlPlaneType('apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n', 'of n1')),
    ).toBe(
      'The machine configuration of n1 has no v1alpha1 document (the one with machine: and cluster:); check that it is a Talos machine configuration.',
    );
    expect(refusal(() => withControlPlaneType('machine: [unclosed\n'))).toMatch(
      /^The machine configuration is not valid YAML \(.+\); check the file or read it again from the node\.$/,
    );
    expect(
      refusal(() =>
        withControlPlaneType(
          'version: v1alpha1\nmachine:\n  type: init\n---\nversion: v1alpha1\nmachine:\n  type: init\n',
        ),
      ),
    ).toMatch(/has 2 v1alpha1 documents where Talos accepts one/);
    expect(refusal(() => withControlPlaneType('version: v1alpha1\nmachine: {token: x}\n'))).toMatch(
      /has no machine section to put machine\.type in/,
    );
  });
});
