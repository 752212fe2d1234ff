/**
 * The easy-to-get-wrong field numbers (talos-api-facts §6), checked against hand-made wire bytes: a wrong number in
 * protos/ makes one of these fail.
 */
import type { MethodDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { cosiStateService, machineService } from '../../src/talos/proto.js';
import { applyRequest, copyRequest, resetRequest } from '../../src/talos/client.js';
import { etcdVolumeFromSpec, machineStageFromSpec, machineTypeFromSpec, memberIdHex } from '../../src/talos/mapping.js';

type Method = MethodDefinition<object, object, object, object>;
const machine = (name: string) => (machineService() as unknown as Record<string, Method>)[name] as Method;
const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const encode = (name: string, request: object) => machine(name).requestSerialize(request).toString('hex');
const decode = (method: Method, bytes: string) => method.responseDeserialize(hex(bytes)) as Record<string, unknown>;
/** field header + length-delimited payload */
const ld = (tag: string, payload: string) => {
  const length = payload.replace(/\s+/g, '').length / 2;
  return `${tag}${length.toString(16).padStart(2, '0')}${payload.replace(/\s+/g, '')}`;
};

describe('request encodings', () => {
  it('Reset: graceful=1, reboot=2, system_partitions_to_wipe=3 {label=1, wipe=2}, mode=5 (ALL omitted)', () => {
    // talosctl reset --graceful=false --reboot --system-labels-to-wipe=EPHEMERAL, byte for byte (facts §3.8)
    const bytes = encode('Reset', resetRequest({ graceful: false, reboot: true, labels: ['EPHEMERAL'] }));
    expect(bytes).toBe('10011a0d0a09455048454d4552414c1001');
    expect(encode('Reset', { graceful: true, mode: 'USER_DISKS' })).toBe('08012802');
  });

  it('ApplyConfiguration: data=1, mode=4 (TRY=4, STAGED=3), dry_run=5', () => {
    expect(encode('ApplyConfiguration', { data: Buffer.from('x'), mode: 'TRY', dryRun: true })).toBe('0a017820042801');
    expect(encode('ApplyConfiguration', applyRequest({ data: Buffer.from('x'), mode: 'STAGED' }))).toBe('0a01782003');
    expect(encode('ApplyConfiguration', applyRequest({ data: Buffer.from('x'), mode: 'REBOOT' }))).toBe('0a0178');
    expect(encode('ApplyConfiguration', { data: Buffer.from('x'), mode: 'NO_REBOOT' })).toBe('0a01782002');
  });

  it('Bootstrap: recover_etcd=1, recover_skip_hash_check=2', () => {
    expect(encode('Bootstrap', { recoverEtcd: true, recoverSkipHashCheck: true })).toBe('08011001');
    expect(encode('Bootstrap', { recoverSkipHashCheck: true })).toBe('1001');
  });

  it('EtcdMemberList query_local=1, EtcdRemoveMemberByID member_id=1 as a full uint64, Copy root_path=1', () => {
    expect(encode('EtcdMemberList', { queryLocal: true })).toBe('0801');
    expect(encode('EtcdRemoveMemberByID', { memberId: '18446744073709551615' })).toBe('08ffffffffffffffffff01');
    expect(encode('Copy', { rootPath: '/a' })).toBe('0a022f61');
    // the client's hand-made CopyRequest (streams skip the proto loader) equals the protos' encoding
    const long = `/var/lib/etcd/${'x'.repeat(200)}`;
    expect(copyRequest(long).toString('hex')).toBe(encode('Copy', { rootPath: long }));
    expect(encode('Reboot', { mode: 'POWERCYCLE' })).toBe('0801');
  });
});

describe('response decodings', () => {
  it('EtcdMember: id=2 (no field 1), hostname=3, peer_urls=4, client_urls=5, is_learner=6; members=3', () => {
    const member = `1005 ${ld('1a', '6370')} ${ld('22', '70')} ${ld('2a', '63')} 3001`;
    const members = `${ld('0a', ld('0a', '6e'))} ${ld('12', '6c')} ${ld('1a', member)}`;
    const response = decode(machine('EtcdMemberList'), ld('0a', members));
    expect(response).toMatchObject({
      messages: [
        {
          metadata: { hostname: 'n' },
          legacyMembers: ['l'],
          members: [{ id: '5', hostname: 'cp', peerUrls: ['p'], clientUrls: ['c'], isLearner: true }],
        },
      ],
    });
  });

  it('EtcdMemberStatus: member_id=10, storage_version=11 and 1..9 in their places', () => {
    const status = [
      ld('0a', '332e362e34'), // protocol_version=1 "3.6.4"
      '1002', // db_size=2
      '1803', // db_size_in_use=3
      '2004', // leader=4
      '2805', // raft_index=5
      '3006', // raft_term=6
      '3807', // raft_applied_index=7
      ld('42', '65'), // errors=8 "e"
      '4801', // is_learner=9
      '500a', // member_id=10
      ld('5a', '332e36'), // storage_version=11 "3.6"
    ].join('');
    const response = decode(machine('EtcdStatus'), ld('0a', ld('12', status)));
    expect(response).toMatchObject({
      messages: [
        {
          memberStatus: {
            protocolVersion: '3.6.4',
            dbSize: '2',
            dbSizeInUse: '3',
            leader: '4',
            raftIndex: '5',
            raftTerm: '6',
            raftAppliedIndex: '7',
            errors: ['e'],
            isLearner: true,
            memberId: '10',
            storageVersion: '3.6',
          },
        },
      ],
    });
  });

  it('common.Metadata: hostname=1, error=2, status=3 {code=1, message=2}; XResponse.messages=1', () => {
    const metadata = `${ld('0a', '6e')} ${ld('12', '65')} ${ld('1a', `0806 ${ld('12', '6d')}`)}`;
    const response = decode(machine('Bootstrap'), ld('0a', ld('0a', metadata)));
    expect(response).toEqual({
      messages: [{ metadata: { hostname: 'n', error: 'e', status: { code: 6, message: 'm', details: [] } } }],
    });
  });

  it('common.Data: metadata=1, bytes=2 (stream messages)', () => {
    const data = decode(machine('EtcdSnapshot'), `${ld('0a', ld('0a', '6e'))} ${ld('12', 'deadbeef')}`);
    expect(data).toMatchObject({ metadata: { hostname: 'n' }, bytes: hex('deadbeef') });
  });

  it('cosi Metadata: labels=10, annotations=11; Spec: proto_spec=1, yaml_spec=2', () => {
    const metadata = `${ld('0a', '6e73')} ${ld('52', `${ld('0a', '6b')}${ld('12', '76')}`)} ${ld('5a', `${ld('0a', '61')}${ld('12', '62')}`)}`;
    const spec = `${ld('0a', '0802')} ${ld('12', '77')}`;
    const response = decode(
      cosiStateService().Get as unknown as Method,
      ld('0a', `${ld('0a', metadata)}${ld('12', spec)}`),
    );
    expect(response).toMatchObject({
      resource: {
        metadata: { namespace: 'ns', labels: { k: 'v' }, annotations: { a: 'b' } },
        spec: { protoSpec: hex('0802'), yamlSpec: 'w' },
      },
    });
  });
});

describe('resource specs decoded by hand', () => {
  it('MachineTypeSpec machine_type=1: UNKNOWN 0, INIT 1, CONTROL_PLANE 2, WORKER 3', () => {
    const of = (bytes: string) => machineTypeFromSpec({ protoSpec: hex(bytes), yamlSpec: '' });
    expect([of(''), of('0801'), of('0802'), of('0803')]).toEqual(['unknown', 'init', 'controlplane', 'worker']);
  });

  it('VolumeStatusSpec type=16: absent means PARTITION (0), 3 means DIRECTORY', () => {
    const of = (bytes: string) => etcdVolumeFromSpec({ protoSpec: hex(bytes), yamlSpec: '' });
    expect(of('0806')).toBe('partition');
    expect(of(`0806 ${ld('12', '2f6465762f736461')} 8001 03`)).toBe('ephemeral');
  });

  it('MachineStatusSpec stage=1: RUNNING 4, RESETTING 7 (status=2 ignored); YAML by its enum text', () => {
    const of = (bytes: string) => machineStageFromSpec({ protoSpec: hex(bytes), yamlSpec: '' });
    expect([of(''), of('0804'), of(`0807 ${ld('12', '0801')}`), of('0806'), of('0809')]).toEqual([
      'unknown',
      'running',
      'resetting',
      'shutting down',
      'unknown',
    ]);
    const yaml = (text: string) => machineStageFromSpec({ protoSpec: hex(''), yamlSpec: text });
    expect(yaml('stage: resetting\nstatus:\n    ready: true\n')).toBe('resetting');
    expect(yaml('stage: shutting down\n')).toBe('shutting down');
    expect(yaml('stage: 7\n')).toBe('unknown');
  });

  it('prints member ids as talosctl does (%016x), beyond 2^53 too', () => {
    expect(memberIdHex('1')).toBe('0000000000000001');
    expect(memberIdHex('10276657743932975437')).toBe('8e9e05c52164694d');
  });
});
