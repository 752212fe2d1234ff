/**
 * Whether the real etcd tools are there (`--etcd real`): tiny and dependency-free, so a command can check before it
 * loads the simulator.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export type EtcdBackendKind = 'model' | 'real';

export const REAL_ETCD_INSTALL_HINT =
  'Drills on real etcd need the etcd and etcdctl programs, which are not installed; install them with "apt-get install etcd-server etcd-client" (or drop --etcd real to use the built-in model).';

function onPath(binary: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, binary)));
}

/** null when etcd and etcdctl are both on the PATH, otherwise the one sentence that says how to install them. */
export function realEtcdMissing(path?: string): string | null {
  return onPath('etcd', path) && onPath('etcdctl', path) ? null : REAL_ETCD_INSTALL_HINT;
}

/**
 * The etcd programs real members run. By default Debian's etcd and etcdctl on the PATH. TALOS_DR_ETCD_BIN_DIR names a
 * folder with upstream's etcd and etcdutl (e.g. 3.7, as Talos 1.14 runs; scripts/build-peers.sh builds them): then
 * members run that etcd, and restores and offline status go through its etcdutl (etcdctl lost them in 3.6); etcdctl
 * from the PATH still does the online calls (snapshot save, member add), which every v3 server answers.
 */
export function etcdPrograms(): { etcd: string; etcdutl: string | null } {
  const dir = process.env.TALOS_DR_ETCD_BIN_DIR;
  if (dir && existsSync(join(dir, 'etcd')) && existsSync(join(dir, 'etcdutl'))) {
    return { etcd: join(dir, 'etcd'), etcdutl: join(dir, 'etcdutl') };
  }
  return { etcd: 'etcd', etcdutl: null };
}

/** Parses `--etcd model|real`; undefined means the built-in model. */
export function parseEtcdKind(value: string | undefined): EtcdBackendKind | null {
  if (value === undefined || value === 'model') return 'model';
  if (value === 'real') return 'real';
  return null;
}
