/** Step 4's effect: every node's machine configuration saved to the incident folder before anything is wiped. */
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { BackupOutput } from '../../machines/recovery-types.js';
import type { IncidentPaths } from '../journal/incident.js';
import { isLocalIoError, localDiskError, reportLocalDiskFailure } from '../journal/local-disk.js';
import { persisted, type EffectDeps } from './deps.js';
import { messageOf, unwrap } from './ledger.js';

/** Writes `configs/<node>.yaml` with mode 0600, never over an existing file (a new name instead). */
function writeConfigBackup(dir: string, node: string, yaml: string): string {
  const safe = node.replace(/[^A-Za-z0-9._-]/g, '_');
  for (let i = 1; ; i++) {
    const file = join(dir, i === 1 ? `${safe}.yaml` : `${safe}.${i}.yaml`);
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    try {
      writeSync(fd, yaml);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return file;
  }
}

/** A configuration the user put in `given/configs/<node>.yaml` (a blank node has no live one to read). */
function givenConfig(incident: IncidentPaths, node: string): string | null {
  const file = join(incident.given, 'configs', `${node}.yaml`);
  return existsSync(file) ? file : null;
}

export async function backupConfigs(deps: EffectDeps, nodes: string[], blank: string[]): Promise<BackupOutput> {
  await persisted(deps);
  const configs: BackupOutput['configs'] = [];
  for (const node of nodes) {
    try {
      const yaml = unwrap(await deps.client.machineConfig(node), 'reading the machine configuration');
      const file = writeConfigBackup(deps.incident.configs, node, yaml);
      deps.journal.append({
        kind: 'action',
        phase: 'after',
        node,
        what: 'machine configuration backed up',
        ok: true,
        result: basename(file),
      });
      configs.push({ node, file, source: 'live', error: null });
    } catch (error) {
      // this machine's disk failed, not the node: stop; an older given/ backup must never replace the live config
      if (isLocalIoError(error))
        throw reportLocalDiskFailure(
          localDiskError(error, 'backing up the machine configurations', deps.incident.configs, deps.incident.dir),
        );
      const given = givenConfig(deps.incident, node);
      configs.push({ node, file: given, source: given ? 'given' : null, error: messageOf(error) });
    }
  }
  for (const node of blank) {
    const given = givenConfig(deps.incident, node);
    configs.push({
      node,
      file: given,
      source: given ? 'given' : null,
      error: given ? null : 'no backup in given/configs',
    });
  }
  return { configs };
}
