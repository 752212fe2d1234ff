/**
 * Talos's role check (machined's RBAC table, talos-api-facts §4.4): roles come from the client certificate's
 * Organization values; a method not listed needs os:admin. Talos itself answers "not authorized".
 */
import type { PeerCertificate } from 'node:tls';
import { permissionDenied } from './rpc-error.js';

const ADMIN = 'os:admin';
const OPERATOR = 'os:operator';
const READER = 'os:reader';
const BACKUP = 'os:etcd:backup';

const METHOD_ROLES: Record<string, string[]> = {
  Reboot: [ADMIN, OPERATOR],
  EtcdSnapshot: [ADMIN, OPERATOR, BACKUP],
  EtcdMemberList: [ADMIN, OPERATOR, READER, BACKUP],
  EtcdStatus: [ADMIN, OPERATOR, READER, BACKUP],
  // siderolabs/talos internal/app/machined/pkg/system/services/machined.go@v1.14.0-rc.1:68-70,105
  EtcdAlarmList: [ADMIN, OPERATOR, READER, BACKUP],
  EtcdAlarmDisarm: [ADMIN, OPERATOR],
  EtcdDefragment: [ADMIN, OPERATOR],
  ServiceRestart: [ADMIN, OPERATOR],
  ServiceList: [ADMIN, OPERATOR, READER],
  Version: [ADMIN, OPERATOR, READER],
  Events: [ADMIN, OPERATOR, READER],
  Get: [ADMIN, OPERATOR, READER],
  List: [ADMIN, OPERATOR, READER],
  Watch: [ADMIN, OPERATOR, READER],
  // internal/app/machined/pkg/system/services/machined.go@v1.14.1:151-152
  Time: [ADMIN, OPERATOR, READER],
  TimeCheck: [ADMIN, OPERATOR, READER],
  // machined.go@v1.14.1:67
  Dmesg: [ADMIN, OPERATOR, READER],
  // machined.go@v1.14.1:89
  Logs: [ADMIN, OPERATOR, READER],
  // machined.go@v1.14.1:40
  HealthCheck: [ADMIN, OPERATOR, READER],
};

/** The roles a client certificate carries (its O= values). */
export function rolesOf(certificate: PeerCertificate | undefined): Set<string> {
  const organization = (certificate?.subject as { O?: string | string[] } | undefined)?.O;
  if (!organization) return new Set();
  return new Set(Array.isArray(organization) ? organization : [organization]);
}

export function checkRoles(method: string, roles: ReadonlySet<string>): void {
  const allowed = METHOD_ROLES[method] ?? [ADMIN];
  if (!allowed.some((role) => roles.has(role))) throw permissionDenied('not authorized');
}

export const isAdmin = (roles: ReadonlySet<string>): boolean => roles.has(ADMIN);
