// Original file: protos/machine/machine.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ApplyConfigurationRequest as _machine_ApplyConfigurationRequest, ApplyConfigurationRequest__Output as _machine_ApplyConfigurationRequest__Output } from '../machine/ApplyConfigurationRequest.js';
import type { ApplyConfigurationResponse as _machine_ApplyConfigurationResponse, ApplyConfigurationResponse__Output as _machine_ApplyConfigurationResponse__Output } from '../machine/ApplyConfigurationResponse.js';
import type { BootstrapRequest as _machine_BootstrapRequest, BootstrapRequest__Output as _machine_BootstrapRequest__Output } from '../machine/BootstrapRequest.js';
import type { BootstrapResponse as _machine_BootstrapResponse, BootstrapResponse__Output as _machine_BootstrapResponse__Output } from '../machine/BootstrapResponse.js';
import type { CopyRequest as _machine_CopyRequest, CopyRequest__Output as _machine_CopyRequest__Output } from '../machine/CopyRequest.js';
import type { Data as _common_Data, Data__Output as _common_Data__Output } from '../common/Data.js';
import type { DmesgRequest as _machine_DmesgRequest, DmesgRequest__Output as _machine_DmesgRequest__Output } from '../machine/DmesgRequest.js';
import type { Empty as _google_protobuf_Empty, Empty__Output as _google_protobuf_Empty__Output } from '../google/protobuf/Empty.js';
import type { EtcdAlarmDisarmResponse as _machine_EtcdAlarmDisarmResponse, EtcdAlarmDisarmResponse__Output as _machine_EtcdAlarmDisarmResponse__Output } from '../machine/EtcdAlarmDisarmResponse.js';
import type { EtcdAlarmListResponse as _machine_EtcdAlarmListResponse, EtcdAlarmListResponse__Output as _machine_EtcdAlarmListResponse__Output } from '../machine/EtcdAlarmListResponse.js';
import type { EtcdDefragmentResponse as _machine_EtcdDefragmentResponse, EtcdDefragmentResponse__Output as _machine_EtcdDefragmentResponse__Output } from '../machine/EtcdDefragmentResponse.js';
import type { EtcdForfeitLeadershipRequest as _machine_EtcdForfeitLeadershipRequest, EtcdForfeitLeadershipRequest__Output as _machine_EtcdForfeitLeadershipRequest__Output } from '../machine/EtcdForfeitLeadershipRequest.js';
import type { EtcdForfeitLeadershipResponse as _machine_EtcdForfeitLeadershipResponse, EtcdForfeitLeadershipResponse__Output as _machine_EtcdForfeitLeadershipResponse__Output } from '../machine/EtcdForfeitLeadershipResponse.js';
import type { EtcdLeaveClusterRequest as _machine_EtcdLeaveClusterRequest, EtcdLeaveClusterRequest__Output as _machine_EtcdLeaveClusterRequest__Output } from '../machine/EtcdLeaveClusterRequest.js';
import type { EtcdLeaveClusterResponse as _machine_EtcdLeaveClusterResponse, EtcdLeaveClusterResponse__Output as _machine_EtcdLeaveClusterResponse__Output } from '../machine/EtcdLeaveClusterResponse.js';
import type { EtcdMemberListRequest as _machine_EtcdMemberListRequest, EtcdMemberListRequest__Output as _machine_EtcdMemberListRequest__Output } from '../machine/EtcdMemberListRequest.js';
import type { EtcdMemberListResponse as _machine_EtcdMemberListResponse, EtcdMemberListResponse__Output as _machine_EtcdMemberListResponse__Output } from '../machine/EtcdMemberListResponse.js';
import type { EtcdRecoverResponse as _machine_EtcdRecoverResponse, EtcdRecoverResponse__Output as _machine_EtcdRecoverResponse__Output } from '../machine/EtcdRecoverResponse.js';
import type { EtcdRemoveMemberByIDRequest as _machine_EtcdRemoveMemberByIDRequest, EtcdRemoveMemberByIDRequest__Output as _machine_EtcdRemoveMemberByIDRequest__Output } from '../machine/EtcdRemoveMemberByIDRequest.js';
import type { EtcdRemoveMemberByIDResponse as _machine_EtcdRemoveMemberByIDResponse, EtcdRemoveMemberByIDResponse__Output as _machine_EtcdRemoveMemberByIDResponse__Output } from '../machine/EtcdRemoveMemberByIDResponse.js';
import type { EtcdSnapshotRequest as _machine_EtcdSnapshotRequest, EtcdSnapshotRequest__Output as _machine_EtcdSnapshotRequest__Output } from '../machine/EtcdSnapshotRequest.js';
import type { EtcdStatusResponse as _machine_EtcdStatusResponse, EtcdStatusResponse__Output as _machine_EtcdStatusResponse__Output } from '../machine/EtcdStatusResponse.js';
import type { Event as _machine_Event, Event__Output as _machine_Event__Output } from '../machine/Event.js';
import type { EventsRequest as _machine_EventsRequest, EventsRequest__Output as _machine_EventsRequest__Output } from '../machine/EventsRequest.js';
import type { LogsRequest as _machine_LogsRequest, LogsRequest__Output as _machine_LogsRequest__Output } from '../machine/LogsRequest.js';
import type { ReadRequest as _machine_ReadRequest, ReadRequest__Output as _machine_ReadRequest__Output } from '../machine/ReadRequest.js';
import type { RebootRequest as _machine_RebootRequest, RebootRequest__Output as _machine_RebootRequest__Output } from '../machine/RebootRequest.js';
import type { RebootResponse as _machine_RebootResponse, RebootResponse__Output as _machine_RebootResponse__Output } from '../machine/RebootResponse.js';
import type { ResetRequest as _machine_ResetRequest, ResetRequest__Output as _machine_ResetRequest__Output } from '../machine/ResetRequest.js';
import type { ResetResponse as _machine_ResetResponse, ResetResponse__Output as _machine_ResetResponse__Output } from '../machine/ResetResponse.js';
import type { ServiceListResponse as _machine_ServiceListResponse, ServiceListResponse__Output as _machine_ServiceListResponse__Output } from '../machine/ServiceListResponse.js';
import type { ServiceRestartRequest as _machine_ServiceRestartRequest, ServiceRestartRequest__Output as _machine_ServiceRestartRequest__Output } from '../machine/ServiceRestartRequest.js';
import type { ServiceRestartResponse as _machine_ServiceRestartResponse, ServiceRestartResponse__Output as _machine_ServiceRestartResponse__Output } from '../machine/ServiceRestartResponse.js';
import type { VersionResponse as _machine_VersionResponse, VersionResponse__Output as _machine_VersionResponse__Output } from '../machine/VersionResponse.js';

export interface MachineServiceClient extends grpc.Client {
  ApplyConfiguration(argument: _machine_ApplyConfigurationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ApplyConfigurationResponse__Output>): grpc.ClientUnaryCall;
  ApplyConfiguration(argument: _machine_ApplyConfigurationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_ApplyConfigurationResponse__Output>): grpc.ClientUnaryCall;
  ApplyConfiguration(argument: _machine_ApplyConfigurationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ApplyConfigurationResponse__Output>): grpc.ClientUnaryCall;
  ApplyConfiguration(argument: _machine_ApplyConfigurationRequest, callback: grpc.requestCallback<_machine_ApplyConfigurationResponse__Output>): grpc.ClientUnaryCall;
  applyConfiguration(argument: _machine_ApplyConfigurationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ApplyConfigurationResponse__Output>): grpc.ClientUnaryCall;
  applyConfiguration(argument: _machine_ApplyConfigurationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_ApplyConfigurationResponse__Output>): grpc.ClientUnaryCall;
  applyConfiguration(argument: _machine_ApplyConfigurationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ApplyConfigurationResponse__Output>): grpc.ClientUnaryCall;
  applyConfiguration(argument: _machine_ApplyConfigurationRequest, callback: grpc.requestCallback<_machine_ApplyConfigurationResponse__Output>): grpc.ClientUnaryCall;
  
  Bootstrap(argument: _machine_BootstrapRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_BootstrapResponse__Output>): grpc.ClientUnaryCall;
  Bootstrap(argument: _machine_BootstrapRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_BootstrapResponse__Output>): grpc.ClientUnaryCall;
  Bootstrap(argument: _machine_BootstrapRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_BootstrapResponse__Output>): grpc.ClientUnaryCall;
  Bootstrap(argument: _machine_BootstrapRequest, callback: grpc.requestCallback<_machine_BootstrapResponse__Output>): grpc.ClientUnaryCall;
  bootstrap(argument: _machine_BootstrapRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_BootstrapResponse__Output>): grpc.ClientUnaryCall;
  bootstrap(argument: _machine_BootstrapRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_BootstrapResponse__Output>): grpc.ClientUnaryCall;
  bootstrap(argument: _machine_BootstrapRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_BootstrapResponse__Output>): grpc.ClientUnaryCall;
  bootstrap(argument: _machine_BootstrapRequest, callback: grpc.requestCallback<_machine_BootstrapResponse__Output>): grpc.ClientUnaryCall;
  
  Copy(argument: _machine_CopyRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  Copy(argument: _machine_CopyRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  copy(argument: _machine_CopyRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  copy(argument: _machine_CopyRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  
  Dmesg(argument: _machine_DmesgRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  Dmesg(argument: _machine_DmesgRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  dmesg(argument: _machine_DmesgRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  dmesg(argument: _machine_DmesgRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  
  EtcdAlarmDisarm(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdAlarmDisarmResponse__Output>): grpc.ClientUnaryCall;
  EtcdAlarmDisarm(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdAlarmDisarmResponse__Output>): grpc.ClientUnaryCall;
  EtcdAlarmDisarm(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdAlarmDisarmResponse__Output>): grpc.ClientUnaryCall;
  EtcdAlarmDisarm(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_EtcdAlarmDisarmResponse__Output>): grpc.ClientUnaryCall;
  etcdAlarmDisarm(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdAlarmDisarmResponse__Output>): grpc.ClientUnaryCall;
  etcdAlarmDisarm(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdAlarmDisarmResponse__Output>): grpc.ClientUnaryCall;
  etcdAlarmDisarm(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdAlarmDisarmResponse__Output>): grpc.ClientUnaryCall;
  etcdAlarmDisarm(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_EtcdAlarmDisarmResponse__Output>): grpc.ClientUnaryCall;
  
  EtcdAlarmList(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdAlarmListResponse__Output>): grpc.ClientUnaryCall;
  EtcdAlarmList(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdAlarmListResponse__Output>): grpc.ClientUnaryCall;
  EtcdAlarmList(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdAlarmListResponse__Output>): grpc.ClientUnaryCall;
  EtcdAlarmList(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_EtcdAlarmListResponse__Output>): grpc.ClientUnaryCall;
  etcdAlarmList(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdAlarmListResponse__Output>): grpc.ClientUnaryCall;
  etcdAlarmList(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdAlarmListResponse__Output>): grpc.ClientUnaryCall;
  etcdAlarmList(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdAlarmListResponse__Output>): grpc.ClientUnaryCall;
  etcdAlarmList(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_EtcdAlarmListResponse__Output>): grpc.ClientUnaryCall;
  
  EtcdDefragment(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdDefragmentResponse__Output>): grpc.ClientUnaryCall;
  EtcdDefragment(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdDefragmentResponse__Output>): grpc.ClientUnaryCall;
  EtcdDefragment(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdDefragmentResponse__Output>): grpc.ClientUnaryCall;
  EtcdDefragment(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_EtcdDefragmentResponse__Output>): grpc.ClientUnaryCall;
  etcdDefragment(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdDefragmentResponse__Output>): grpc.ClientUnaryCall;
  etcdDefragment(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdDefragmentResponse__Output>): grpc.ClientUnaryCall;
  etcdDefragment(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdDefragmentResponse__Output>): grpc.ClientUnaryCall;
  etcdDefragment(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_EtcdDefragmentResponse__Output>): grpc.ClientUnaryCall;
  
  EtcdForfeitLeadership(argument: _machine_EtcdForfeitLeadershipRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdForfeitLeadershipResponse__Output>): grpc.ClientUnaryCall;
  EtcdForfeitLeadership(argument: _machine_EtcdForfeitLeadershipRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdForfeitLeadershipResponse__Output>): grpc.ClientUnaryCall;
  EtcdForfeitLeadership(argument: _machine_EtcdForfeitLeadershipRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdForfeitLeadershipResponse__Output>): grpc.ClientUnaryCall;
  EtcdForfeitLeadership(argument: _machine_EtcdForfeitLeadershipRequest, callback: grpc.requestCallback<_machine_EtcdForfeitLeadershipResponse__Output>): grpc.ClientUnaryCall;
  etcdForfeitLeadership(argument: _machine_EtcdForfeitLeadershipRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdForfeitLeadershipResponse__Output>): grpc.ClientUnaryCall;
  etcdForfeitLeadership(argument: _machine_EtcdForfeitLeadershipRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdForfeitLeadershipResponse__Output>): grpc.ClientUnaryCall;
  etcdForfeitLeadership(argument: _machine_EtcdForfeitLeadershipRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdForfeitLeadershipResponse__Output>): grpc.ClientUnaryCall;
  etcdForfeitLeadership(argument: _machine_EtcdForfeitLeadershipRequest, callback: grpc.requestCallback<_machine_EtcdForfeitLeadershipResponse__Output>): grpc.ClientUnaryCall;
  
  EtcdLeaveCluster(argument: _machine_EtcdLeaveClusterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdLeaveClusterResponse__Output>): grpc.ClientUnaryCall;
  EtcdLeaveCluster(argument: _machine_EtcdLeaveClusterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdLeaveClusterResponse__Output>): grpc.ClientUnaryCall;
  EtcdLeaveCluster(argument: _machine_EtcdLeaveClusterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdLeaveClusterResponse__Output>): grpc.ClientUnaryCall;
  EtcdLeaveCluster(argument: _machine_EtcdLeaveClusterRequest, callback: grpc.requestCallback<_machine_EtcdLeaveClusterResponse__Output>): grpc.ClientUnaryCall;
  etcdLeaveCluster(argument: _machine_EtcdLeaveClusterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdLeaveClusterResponse__Output>): grpc.ClientUnaryCall;
  etcdLeaveCluster(argument: _machine_EtcdLeaveClusterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdLeaveClusterResponse__Output>): grpc.ClientUnaryCall;
  etcdLeaveCluster(argument: _machine_EtcdLeaveClusterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdLeaveClusterResponse__Output>): grpc.ClientUnaryCall;
  etcdLeaveCluster(argument: _machine_EtcdLeaveClusterRequest, callback: grpc.requestCallback<_machine_EtcdLeaveClusterResponse__Output>): grpc.ClientUnaryCall;
  
  EtcdMemberList(argument: _machine_EtcdMemberListRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdMemberListResponse__Output>): grpc.ClientUnaryCall;
  EtcdMemberList(argument: _machine_EtcdMemberListRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdMemberListResponse__Output>): grpc.ClientUnaryCall;
  EtcdMemberList(argument: _machine_EtcdMemberListRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdMemberListResponse__Output>): grpc.ClientUnaryCall;
  EtcdMemberList(argument: _machine_EtcdMemberListRequest, callback: grpc.requestCallback<_machine_EtcdMemberListResponse__Output>): grpc.ClientUnaryCall;
  etcdMemberList(argument: _machine_EtcdMemberListRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdMemberListResponse__Output>): grpc.ClientUnaryCall;
  etcdMemberList(argument: _machine_EtcdMemberListRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdMemberListResponse__Output>): grpc.ClientUnaryCall;
  etcdMemberList(argument: _machine_EtcdMemberListRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdMemberListResponse__Output>): grpc.ClientUnaryCall;
  etcdMemberList(argument: _machine_EtcdMemberListRequest, callback: grpc.requestCallback<_machine_EtcdMemberListResponse__Output>): grpc.ClientUnaryCall;
  
  EtcdRecover(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdRecoverResponse__Output>): grpc.ClientWritableStream<_common_Data>;
  EtcdRecover(metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdRecoverResponse__Output>): grpc.ClientWritableStream<_common_Data>;
  EtcdRecover(options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdRecoverResponse__Output>): grpc.ClientWritableStream<_common_Data>;
  EtcdRecover(callback: grpc.requestCallback<_machine_EtcdRecoverResponse__Output>): grpc.ClientWritableStream<_common_Data>;
  etcdRecover(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdRecoverResponse__Output>): grpc.ClientWritableStream<_common_Data>;
  etcdRecover(metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdRecoverResponse__Output>): grpc.ClientWritableStream<_common_Data>;
  etcdRecover(options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdRecoverResponse__Output>): grpc.ClientWritableStream<_common_Data>;
  etcdRecover(callback: grpc.requestCallback<_machine_EtcdRecoverResponse__Output>): grpc.ClientWritableStream<_common_Data>;
  
  EtcdRemoveMemberByID(argument: _machine_EtcdRemoveMemberByIDRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdRemoveMemberByIDResponse__Output>): grpc.ClientUnaryCall;
  EtcdRemoveMemberByID(argument: _machine_EtcdRemoveMemberByIDRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdRemoveMemberByIDResponse__Output>): grpc.ClientUnaryCall;
  EtcdRemoveMemberByID(argument: _machine_EtcdRemoveMemberByIDRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdRemoveMemberByIDResponse__Output>): grpc.ClientUnaryCall;
  EtcdRemoveMemberByID(argument: _machine_EtcdRemoveMemberByIDRequest, callback: grpc.requestCallback<_machine_EtcdRemoveMemberByIDResponse__Output>): grpc.ClientUnaryCall;
  etcdRemoveMemberById(argument: _machine_EtcdRemoveMemberByIDRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdRemoveMemberByIDResponse__Output>): grpc.ClientUnaryCall;
  etcdRemoveMemberById(argument: _machine_EtcdRemoveMemberByIDRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdRemoveMemberByIDResponse__Output>): grpc.ClientUnaryCall;
  etcdRemoveMemberById(argument: _machine_EtcdRemoveMemberByIDRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdRemoveMemberByIDResponse__Output>): grpc.ClientUnaryCall;
  etcdRemoveMemberById(argument: _machine_EtcdRemoveMemberByIDRequest, callback: grpc.requestCallback<_machine_EtcdRemoveMemberByIDResponse__Output>): grpc.ClientUnaryCall;
  
  EtcdSnapshot(argument: _machine_EtcdSnapshotRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  EtcdSnapshot(argument: _machine_EtcdSnapshotRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  etcdSnapshot(argument: _machine_EtcdSnapshotRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  etcdSnapshot(argument: _machine_EtcdSnapshotRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  
  EtcdStatus(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdStatusResponse__Output>): grpc.ClientUnaryCall;
  EtcdStatus(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdStatusResponse__Output>): grpc.ClientUnaryCall;
  EtcdStatus(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdStatusResponse__Output>): grpc.ClientUnaryCall;
  EtcdStatus(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_EtcdStatusResponse__Output>): grpc.ClientUnaryCall;
  etcdStatus(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdStatusResponse__Output>): grpc.ClientUnaryCall;
  etcdStatus(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_EtcdStatusResponse__Output>): grpc.ClientUnaryCall;
  etcdStatus(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_EtcdStatusResponse__Output>): grpc.ClientUnaryCall;
  etcdStatus(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_EtcdStatusResponse__Output>): grpc.ClientUnaryCall;
  
  Events(argument: _machine_EventsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_machine_Event__Output>;
  Events(argument: _machine_EventsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_machine_Event__Output>;
  events(argument: _machine_EventsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_machine_Event__Output>;
  events(argument: _machine_EventsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_machine_Event__Output>;
  
  Logs(argument: _machine_LogsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  Logs(argument: _machine_LogsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  logs(argument: _machine_LogsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  logs(argument: _machine_LogsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  
  Read(argument: _machine_ReadRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  Read(argument: _machine_ReadRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  read(argument: _machine_ReadRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  read(argument: _machine_ReadRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_common_Data__Output>;
  
  Reboot(argument: _machine_RebootRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_RebootResponse__Output>): grpc.ClientUnaryCall;
  Reboot(argument: _machine_RebootRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_RebootResponse__Output>): grpc.ClientUnaryCall;
  Reboot(argument: _machine_RebootRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_RebootResponse__Output>): grpc.ClientUnaryCall;
  Reboot(argument: _machine_RebootRequest, callback: grpc.requestCallback<_machine_RebootResponse__Output>): grpc.ClientUnaryCall;
  reboot(argument: _machine_RebootRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_RebootResponse__Output>): grpc.ClientUnaryCall;
  reboot(argument: _machine_RebootRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_RebootResponse__Output>): grpc.ClientUnaryCall;
  reboot(argument: _machine_RebootRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_RebootResponse__Output>): grpc.ClientUnaryCall;
  reboot(argument: _machine_RebootRequest, callback: grpc.requestCallback<_machine_RebootResponse__Output>): grpc.ClientUnaryCall;
  
  Reset(argument: _machine_ResetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ResetResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _machine_ResetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_ResetResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _machine_ResetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ResetResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _machine_ResetRequest, callback: grpc.requestCallback<_machine_ResetResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _machine_ResetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ResetResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _machine_ResetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_ResetResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _machine_ResetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ResetResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _machine_ResetRequest, callback: grpc.requestCallback<_machine_ResetResponse__Output>): grpc.ClientUnaryCall;
  
  ServiceList(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ServiceListResponse__Output>): grpc.ClientUnaryCall;
  ServiceList(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_ServiceListResponse__Output>): grpc.ClientUnaryCall;
  ServiceList(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ServiceListResponse__Output>): grpc.ClientUnaryCall;
  ServiceList(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_ServiceListResponse__Output>): grpc.ClientUnaryCall;
  serviceList(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ServiceListResponse__Output>): grpc.ClientUnaryCall;
  serviceList(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_ServiceListResponse__Output>): grpc.ClientUnaryCall;
  serviceList(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ServiceListResponse__Output>): grpc.ClientUnaryCall;
  serviceList(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_ServiceListResponse__Output>): grpc.ClientUnaryCall;
  
  ServiceRestart(argument: _machine_ServiceRestartRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ServiceRestartResponse__Output>): grpc.ClientUnaryCall;
  ServiceRestart(argument: _machine_ServiceRestartRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_ServiceRestartResponse__Output>): grpc.ClientUnaryCall;
  ServiceRestart(argument: _machine_ServiceRestartRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ServiceRestartResponse__Output>): grpc.ClientUnaryCall;
  ServiceRestart(argument: _machine_ServiceRestartRequest, callback: grpc.requestCallback<_machine_ServiceRestartResponse__Output>): grpc.ClientUnaryCall;
  serviceRestart(argument: _machine_ServiceRestartRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ServiceRestartResponse__Output>): grpc.ClientUnaryCall;
  serviceRestart(argument: _machine_ServiceRestartRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_ServiceRestartResponse__Output>): grpc.ClientUnaryCall;
  serviceRestart(argument: _machine_ServiceRestartRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_ServiceRestartResponse__Output>): grpc.ClientUnaryCall;
  serviceRestart(argument: _machine_ServiceRestartRequest, callback: grpc.requestCallback<_machine_ServiceRestartResponse__Output>): grpc.ClientUnaryCall;
  
  Version(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_VersionResponse__Output>): grpc.ClientUnaryCall;
  Version(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_VersionResponse__Output>): grpc.ClientUnaryCall;
  Version(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_VersionResponse__Output>): grpc.ClientUnaryCall;
  Version(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_VersionResponse__Output>): grpc.ClientUnaryCall;
  version(argument: _google_protobuf_Empty, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_VersionResponse__Output>): grpc.ClientUnaryCall;
  version(argument: _google_protobuf_Empty, metadata: grpc.Metadata, callback: grpc.requestCallback<_machine_VersionResponse__Output>): grpc.ClientUnaryCall;
  version(argument: _google_protobuf_Empty, options: grpc.CallOptions, callback: grpc.requestCallback<_machine_VersionResponse__Output>): grpc.ClientUnaryCall;
  version(argument: _google_protobuf_Empty, callback: grpc.requestCallback<_machine_VersionResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface MachineServiceHandlers extends grpc.UntypedServiceImplementation {
  ApplyConfiguration: grpc.handleUnaryCall<_machine_ApplyConfigurationRequest__Output, _machine_ApplyConfigurationResponse>;
  
  Bootstrap: grpc.handleUnaryCall<_machine_BootstrapRequest__Output, _machine_BootstrapResponse>;
  
  Copy: grpc.handleServerStreamingCall<_machine_CopyRequest__Output, _common_Data>;
  
  Dmesg: grpc.handleServerStreamingCall<_machine_DmesgRequest__Output, _common_Data>;
  
  EtcdAlarmDisarm: grpc.handleUnaryCall<_google_protobuf_Empty__Output, _machine_EtcdAlarmDisarmResponse>;
  
  EtcdAlarmList: grpc.handleUnaryCall<_google_protobuf_Empty__Output, _machine_EtcdAlarmListResponse>;
  
  EtcdDefragment: grpc.handleUnaryCall<_google_protobuf_Empty__Output, _machine_EtcdDefragmentResponse>;
  
  EtcdForfeitLeadership: grpc.handleUnaryCall<_machine_EtcdForfeitLeadershipRequest__Output, _machine_EtcdForfeitLeadershipResponse>;
  
  EtcdLeaveCluster: grpc.handleUnaryCall<_machine_EtcdLeaveClusterRequest__Output, _machine_EtcdLeaveClusterResponse>;
  
  EtcdMemberList: grpc.handleUnaryCall<_machine_EtcdMemberListRequest__Output, _machine_EtcdMemberListResponse>;
  
  EtcdRecover: grpc.handleClientStreamingCall<_common_Data__Output, _machine_EtcdRecoverResponse>;
  
  EtcdRemoveMemberByID: grpc.handleUnaryCall<_machine_EtcdRemoveMemberByIDRequest__Output, _machine_EtcdRemoveMemberByIDResponse>;
  
  EtcdSnapshot: grpc.handleServerStreamingCall<_machine_EtcdSnapshotRequest__Output, _common_Data>;
  
  EtcdStatus: grpc.handleUnaryCall<_google_protobuf_Empty__Output, _machine_EtcdStatusResponse>;
  
  Events: grpc.handleServerStreamingCall<_machine_EventsRequest__Output, _machine_Event>;
  
  Logs: grpc.handleServerStreamingCall<_machine_LogsRequest__Output, _common_Data>;
  
  Read: grpc.handleServerStreamingCall<_machine_ReadRequest__Output, _common_Data>;
  
  Reboot: grpc.handleUnaryCall<_machine_RebootRequest__Output, _machine_RebootResponse>;
  
  Reset: grpc.handleUnaryCall<_machine_ResetRequest__Output, _machine_ResetResponse>;
  
  ServiceList: grpc.handleUnaryCall<_google_protobuf_Empty__Output, _machine_ServiceListResponse>;
  
  ServiceRestart: grpc.handleUnaryCall<_machine_ServiceRestartRequest__Output, _machine_ServiceRestartResponse>;
  
  Version: grpc.handleUnaryCall<_google_protobuf_Empty__Output, _machine_VersionResponse>;
  
}

export interface MachineServiceDefinition extends grpc.ServiceDefinition {
  ApplyConfiguration: MethodDefinition<_machine_ApplyConfigurationRequest, _machine_ApplyConfigurationResponse, _machine_ApplyConfigurationRequest__Output, _machine_ApplyConfigurationResponse__Output>
  Bootstrap: MethodDefinition<_machine_BootstrapRequest, _machine_BootstrapResponse, _machine_BootstrapRequest__Output, _machine_BootstrapResponse__Output>
  Copy: MethodDefinition<_machine_CopyRequest, _common_Data, _machine_CopyRequest__Output, _common_Data__Output>
  Dmesg: MethodDefinition<_machine_DmesgRequest, _common_Data, _machine_DmesgRequest__Output, _common_Data__Output>
  EtcdAlarmDisarm: MethodDefinition<_google_protobuf_Empty, _machine_EtcdAlarmDisarmResponse, _google_protobuf_Empty__Output, _machine_EtcdAlarmDisarmResponse__Output>
  EtcdAlarmList: MethodDefinition<_google_protobuf_Empty, _machine_EtcdAlarmListResponse, _google_protobuf_Empty__Output, _machine_EtcdAlarmListResponse__Output>
  EtcdDefragment: MethodDefinition<_google_protobuf_Empty, _machine_EtcdDefragmentResponse, _google_protobuf_Empty__Output, _machine_EtcdDefragmentResponse__Output>
  EtcdForfeitLeadership: MethodDefinition<_machine_EtcdForfeitLeadershipRequest, _machine_EtcdForfeitLeadershipResponse, _machine_EtcdForfeitLeadershipRequest__Output, _machine_EtcdForfeitLeadershipResponse__Output>
  EtcdLeaveCluster: MethodDefinition<_machine_EtcdLeaveClusterRequest, _machine_EtcdLeaveClusterResponse, _machine_EtcdLeaveClusterRequest__Output, _machine_EtcdLeaveClusterResponse__Output>
  EtcdMemberList: MethodDefinition<_machine_EtcdMemberListRequest, _machine_EtcdMemberListResponse, _machine_EtcdMemberListRequest__Output, _machine_EtcdMemberListResponse__Output>
  EtcdRecover: MethodDefinition<_common_Data, _machine_EtcdRecoverResponse, _common_Data__Output, _machine_EtcdRecoverResponse__Output>
  EtcdRemoveMemberByID: MethodDefinition<_machine_EtcdRemoveMemberByIDRequest, _machine_EtcdRemoveMemberByIDResponse, _machine_EtcdRemoveMemberByIDRequest__Output, _machine_EtcdRemoveMemberByIDResponse__Output>
  EtcdSnapshot: MethodDefinition<_machine_EtcdSnapshotRequest, _common_Data, _machine_EtcdSnapshotRequest__Output, _common_Data__Output>
  EtcdStatus: MethodDefinition<_google_protobuf_Empty, _machine_EtcdStatusResponse, _google_protobuf_Empty__Output, _machine_EtcdStatusResponse__Output>
  Events: MethodDefinition<_machine_EventsRequest, _machine_Event, _machine_EventsRequest__Output, _machine_Event__Output>
  Logs: MethodDefinition<_machine_LogsRequest, _common_Data, _machine_LogsRequest__Output, _common_Data__Output>
  Read: MethodDefinition<_machine_ReadRequest, _common_Data, _machine_ReadRequest__Output, _common_Data__Output>
  Reboot: MethodDefinition<_machine_RebootRequest, _machine_RebootResponse, _machine_RebootRequest__Output, _machine_RebootResponse__Output>
  Reset: MethodDefinition<_machine_ResetRequest, _machine_ResetResponse, _machine_ResetRequest__Output, _machine_ResetResponse__Output>
  ServiceList: MethodDefinition<_google_protobuf_Empty, _machine_ServiceListResponse, _google_protobuf_Empty__Output, _machine_ServiceListResponse__Output>
  ServiceRestart: MethodDefinition<_machine_ServiceRestartRequest, _machine_ServiceRestartResponse, _machine_ServiceRestartRequest__Output, _machine_ServiceRestartResponse__Output>
  Version: MethodDefinition<_google_protobuf_Empty, _machine_VersionResponse, _google_protobuf_Empty__Output, _machine_VersionResponse__Output>
}
