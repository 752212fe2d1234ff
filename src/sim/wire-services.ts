/**
 * The services a simulated node's listener serves, method by method: which one-node handler answers each RPC
 * (api*.ts, cosi.ts) and whether it is unary or a stream. wire-calls.ts wraps each handler in apid's proxying.
 */
import type * as grpc from '@grpc/grpc-js';
import * as api from './api.js';
import * as dmesgApi from './api-dmesg.js';
import * as etcdApi from './api-etcd.js';
import { events } from './api-events.js';
import * as healthApi from './api-health.js';
import * as logsApi from './api-logs.js';
import * as timeApi from './api-time.js';
import * as cosi from './cosi.js';
import type { SimNode } from './node.js';
import type { WireCalls, WireCluster } from './wire-calls.js';

type Implementation = grpc.UntypedServiceImplementation;

export function machineImplementation(calls: WireCalls, cluster: WireCluster, endpoint: SimNode): Implementation {
  const view = cluster.view;
  const unary = calls.unary.bind(calls, endpoint);
  const stream = calls.serverStream.bind(calls, endpoint);
  return {
    ApplyConfiguration: unary('ApplyConfiguration', (n, req) => api.applyConfiguration(n, view, req)),
    Bootstrap: unary('Bootstrap', (n, req) => api.bootstrap(n, view, req)),
    Copy: stream('Copy', (n, req, _ctx, send) => api.copy(n, req, send)),
    Dmesg: stream('Dmesg', (n, req, ctx, send) => dmesgApi.dmesg(n, req, ctx, send)),
    Logs: stream('Logs', (n, req, ctx, send) => logsApi.logs(n, req, ctx, send)),
    EtcdMemberList: unary('EtcdMemberList', (n, req, ctx) => etcdApi.etcdMemberList(n, view, req, ctx)),
    EtcdRemoveMemberByID: unary('EtcdRemoveMemberByID', (n, req, ctx) =>
      etcdApi.etcdRemoveMemberById(n, view, req, ctx),
    ),
    EtcdLeaveCluster: unary('EtcdLeaveCluster', (n, _req, ctx) => etcdApi.etcdLeaveCluster(n, view, ctx)),
    EtcdForfeitLeadership: unary('EtcdForfeitLeadership', (n, _req, ctx) =>
      etcdApi.etcdForfeitLeadership(n, view, ctx),
    ),
    EtcdRecover: calls.etcdRecover(endpoint),
    EtcdSnapshot: stream('EtcdSnapshot', (n, _req, ctx, send) => etcdApi.etcdSnapshot(n, view, ctx, send)),
    EtcdStatus: unary('EtcdStatus', (n, _req, ctx) => etcdApi.etcdStatus(n, view, ctx)),
    EtcdAlarmList: unary('EtcdAlarmList', (n, _req, ctx) => etcdApi.etcdAlarmList(n, view, ctx)),
    EtcdAlarmDisarm: unary('EtcdAlarmDisarm', (n, _req, ctx) => etcdApi.etcdAlarmDisarm(n, view, ctx)),
    EtcdDefragment: unary('EtcdDefragment', (n, _req, ctx) => etcdApi.etcdDefragment(n, view, ctx)),
    Events: stream('Events', events),
    Read: stream('Read', (n, req, _ctx, send) => api.read(n, req, send)),
    Reboot: unary('Reboot', (n) => api.reboot(n, view)),
    Reset: unary('Reset', (n, req) => api.reset(n, view, req)),
    ServiceList: unary('ServiceList', (n) => api.serviceList(n)),
    ServiceRestart: unary('ServiceRestart', (n, req) => api.serviceRestart(n, view, req)),
    Version: unary('Version', (n) => api.version(n)),
  };
}

export function clusterImplementation(calls: WireCalls, cluster: WireCluster, endpoint: SimNode): Implementation {
  // the checks reach the other nodes through the node's own apid: refused, or the maintenance TLS failure
  const deps: healthApi.HealthDeps = { view: cluster.view, reach: (target) => calls.reach(target) };
  return {
    HealthCheck: calls.serverStream(endpoint, 'HealthCheck', (n, req, ctx, send) =>
      healthApi.healthCheck(n, deps, req, ctx, send),
    ),
  };
}

export function timeImplementation(calls: WireCalls, endpoint: SimNode): Implementation {
  return {
    Time: calls.unary(endpoint, 'Time', (n) => timeApi.time(n)),
    TimeCheck: calls.unary(endpoint, 'TimeCheck', (n, req) => timeApi.timeCheck(n, req)),
  };
}

export function cosiImplementation(calls: WireCalls, cluster: WireCluster, endpoint: SimNode): Implementation {
  const view = cluster.view;
  return {
    Get: calls.unary(
      endpoint,
      'Get',
      (n, req, ctx) => [cosi.cosiGet(n, view, req, ctx)],
      (payloads) => payloads[0] ?? {},
    ),
    List: calls.serverStream(endpoint, 'List', (n, req, ctx, send) => cosi.cosiList(n, view, req, ctx, send)),
    Watch: calls.serverStream(endpoint, 'Watch', (n, req, ctx, send) => cosi.cosiWatch(n, view, req, ctx, send)),
  };
}
