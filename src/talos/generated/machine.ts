import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Data as _common_Data, Data__Output as _common_Data__Output } from './common/Data.js';
import type { DataResponse as _common_DataResponse, DataResponse__Output as _common_DataResponse__Output } from './common/DataResponse.js';
import type { Empty as _common_Empty, Empty__Output as _common_Empty__Output } from './common/Empty.js';
import type { EmptyResponse as _common_EmptyResponse, EmptyResponse__Output as _common_EmptyResponse__Output } from './common/EmptyResponse.js';
import type { Error as _common_Error, Error__Output as _common_Error__Output } from './common/Error.js';
import type { Metadata as _common_Metadata, Metadata__Output as _common_Metadata__Output } from './common/Metadata.js';
import type { Any as _google_protobuf_Any, Any__Output as _google_protobuf_Any__Output } from './google/protobuf/Any.js';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration.js';
import type { Empty as _google_protobuf_Empty, Empty__Output as _google_protobuf_Empty__Output } from './google/protobuf/Empty.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp.js';
import type { Status as _google_rpc_Status, Status__Output as _google_rpc_Status__Output } from './google/rpc/Status.js';
import type { AddressEvent as _machine_AddressEvent, AddressEvent__Output as _machine_AddressEvent__Output } from './machine/AddressEvent.js';
import type { ApplyConfiguration as _machine_ApplyConfiguration, ApplyConfiguration__Output as _machine_ApplyConfiguration__Output } from './machine/ApplyConfiguration.js';
import type { ApplyConfigurationRequest as _machine_ApplyConfigurationRequest, ApplyConfigurationRequest__Output as _machine_ApplyConfigurationRequest__Output } from './machine/ApplyConfigurationRequest.js';
import type { ApplyConfigurationResponse as _machine_ApplyConfigurationResponse, ApplyConfigurationResponse__Output as _machine_ApplyConfigurationResponse__Output } from './machine/ApplyConfigurationResponse.js';
import type { Bootstrap as _machine_Bootstrap, Bootstrap__Output as _machine_Bootstrap__Output } from './machine/Bootstrap.js';
import type { BootstrapRequest as _machine_BootstrapRequest, BootstrapRequest__Output as _machine_BootstrapRequest__Output } from './machine/BootstrapRequest.js';
import type { BootstrapResponse as _machine_BootstrapResponse, BootstrapResponse__Output as _machine_BootstrapResponse__Output } from './machine/BootstrapResponse.js';
import type { ConfigLoadErrorEvent as _machine_ConfigLoadErrorEvent, ConfigLoadErrorEvent__Output as _machine_ConfigLoadErrorEvent__Output } from './machine/ConfigLoadErrorEvent.js';
import type { ConfigValidationErrorEvent as _machine_ConfigValidationErrorEvent, ConfigValidationErrorEvent__Output as _machine_ConfigValidationErrorEvent__Output } from './machine/ConfigValidationErrorEvent.js';
import type { CopyRequest as _machine_CopyRequest, CopyRequest__Output as _machine_CopyRequest__Output } from './machine/CopyRequest.js';
import type { DmesgRequest as _machine_DmesgRequest, DmesgRequest__Output as _machine_DmesgRequest__Output } from './machine/DmesgRequest.js';
import type { EtcdAlarm as _machine_EtcdAlarm, EtcdAlarm__Output as _machine_EtcdAlarm__Output } from './machine/EtcdAlarm.js';
import type { EtcdAlarmDisarm as _machine_EtcdAlarmDisarm, EtcdAlarmDisarm__Output as _machine_EtcdAlarmDisarm__Output } from './machine/EtcdAlarmDisarm.js';
import type { EtcdAlarmDisarmResponse as _machine_EtcdAlarmDisarmResponse, EtcdAlarmDisarmResponse__Output as _machine_EtcdAlarmDisarmResponse__Output } from './machine/EtcdAlarmDisarmResponse.js';
import type { EtcdAlarmListResponse as _machine_EtcdAlarmListResponse, EtcdAlarmListResponse__Output as _machine_EtcdAlarmListResponse__Output } from './machine/EtcdAlarmListResponse.js';
import type { EtcdDefragment as _machine_EtcdDefragment, EtcdDefragment__Output as _machine_EtcdDefragment__Output } from './machine/EtcdDefragment.js';
import type { EtcdDefragmentResponse as _machine_EtcdDefragmentResponse, EtcdDefragmentResponse__Output as _machine_EtcdDefragmentResponse__Output } from './machine/EtcdDefragmentResponse.js';
import type { EtcdForfeitLeadership as _machine_EtcdForfeitLeadership, EtcdForfeitLeadership__Output as _machine_EtcdForfeitLeadership__Output } from './machine/EtcdForfeitLeadership.js';
import type { EtcdForfeitLeadershipRequest as _machine_EtcdForfeitLeadershipRequest, EtcdForfeitLeadershipRequest__Output as _machine_EtcdForfeitLeadershipRequest__Output } from './machine/EtcdForfeitLeadershipRequest.js';
import type { EtcdForfeitLeadershipResponse as _machine_EtcdForfeitLeadershipResponse, EtcdForfeitLeadershipResponse__Output as _machine_EtcdForfeitLeadershipResponse__Output } from './machine/EtcdForfeitLeadershipResponse.js';
import type { EtcdLeaveCluster as _machine_EtcdLeaveCluster, EtcdLeaveCluster__Output as _machine_EtcdLeaveCluster__Output } from './machine/EtcdLeaveCluster.js';
import type { EtcdLeaveClusterRequest as _machine_EtcdLeaveClusterRequest, EtcdLeaveClusterRequest__Output as _machine_EtcdLeaveClusterRequest__Output } from './machine/EtcdLeaveClusterRequest.js';
import type { EtcdLeaveClusterResponse as _machine_EtcdLeaveClusterResponse, EtcdLeaveClusterResponse__Output as _machine_EtcdLeaveClusterResponse__Output } from './machine/EtcdLeaveClusterResponse.js';
import type { EtcdMember as _machine_EtcdMember, EtcdMember__Output as _machine_EtcdMember__Output } from './machine/EtcdMember.js';
import type { EtcdMemberAlarm as _machine_EtcdMemberAlarm, EtcdMemberAlarm__Output as _machine_EtcdMemberAlarm__Output } from './machine/EtcdMemberAlarm.js';
import type { EtcdMemberListRequest as _machine_EtcdMemberListRequest, EtcdMemberListRequest__Output as _machine_EtcdMemberListRequest__Output } from './machine/EtcdMemberListRequest.js';
import type { EtcdMemberListResponse as _machine_EtcdMemberListResponse, EtcdMemberListResponse__Output as _machine_EtcdMemberListResponse__Output } from './machine/EtcdMemberListResponse.js';
import type { EtcdMemberStatus as _machine_EtcdMemberStatus, EtcdMemberStatus__Output as _machine_EtcdMemberStatus__Output } from './machine/EtcdMemberStatus.js';
import type { EtcdMembers as _machine_EtcdMembers, EtcdMembers__Output as _machine_EtcdMembers__Output } from './machine/EtcdMembers.js';
import type { EtcdRecover as _machine_EtcdRecover, EtcdRecover__Output as _machine_EtcdRecover__Output } from './machine/EtcdRecover.js';
import type { EtcdRecoverResponse as _machine_EtcdRecoverResponse, EtcdRecoverResponse__Output as _machine_EtcdRecoverResponse__Output } from './machine/EtcdRecoverResponse.js';
import type { EtcdRemoveMemberByID as _machine_EtcdRemoveMemberByID, EtcdRemoveMemberByID__Output as _machine_EtcdRemoveMemberByID__Output } from './machine/EtcdRemoveMemberByID.js';
import type { EtcdRemoveMemberByIDRequest as _machine_EtcdRemoveMemberByIDRequest, EtcdRemoveMemberByIDRequest__Output as _machine_EtcdRemoveMemberByIDRequest__Output } from './machine/EtcdRemoveMemberByIDRequest.js';
import type { EtcdRemoveMemberByIDResponse as _machine_EtcdRemoveMemberByIDResponse, EtcdRemoveMemberByIDResponse__Output as _machine_EtcdRemoveMemberByIDResponse__Output } from './machine/EtcdRemoveMemberByIDResponse.js';
import type { EtcdSnapshotRequest as _machine_EtcdSnapshotRequest, EtcdSnapshotRequest__Output as _machine_EtcdSnapshotRequest__Output } from './machine/EtcdSnapshotRequest.js';
import type { EtcdStatus as _machine_EtcdStatus, EtcdStatus__Output as _machine_EtcdStatus__Output } from './machine/EtcdStatus.js';
import type { EtcdStatusResponse as _machine_EtcdStatusResponse, EtcdStatusResponse__Output as _machine_EtcdStatusResponse__Output } from './machine/EtcdStatusResponse.js';
import type { Event as _machine_Event, Event__Output as _machine_Event__Output } from './machine/Event.js';
import type { EventsRequest as _machine_EventsRequest, EventsRequest__Output as _machine_EventsRequest__Output } from './machine/EventsRequest.js';
import type { FeaturesInfo as _machine_FeaturesInfo, FeaturesInfo__Output as _machine_FeaturesInfo__Output } from './machine/FeaturesInfo.js';
import type { LogsRequest as _machine_LogsRequest, LogsRequest__Output as _machine_LogsRequest__Output } from './machine/LogsRequest.js';
import type { MachineServiceClient as _machine_MachineServiceClient, MachineServiceDefinition as _machine_MachineServiceDefinition } from './machine/MachineService.js';
import type { MachineStatusEvent as _machine_MachineStatusEvent, MachineStatusEvent__Output as _machine_MachineStatusEvent__Output } from './machine/MachineStatusEvent.js';
import type { PhaseEvent as _machine_PhaseEvent, PhaseEvent__Output as _machine_PhaseEvent__Output } from './machine/PhaseEvent.js';
import type { PlatformInfo as _machine_PlatformInfo, PlatformInfo__Output as _machine_PlatformInfo__Output } from './machine/PlatformInfo.js';
import type { ReadRequest as _machine_ReadRequest, ReadRequest__Output as _machine_ReadRequest__Output } from './machine/ReadRequest.js';
import type { Reboot as _machine_Reboot, Reboot__Output as _machine_Reboot__Output } from './machine/Reboot.js';
import type { RebootRequest as _machine_RebootRequest, RebootRequest__Output as _machine_RebootRequest__Output } from './machine/RebootRequest.js';
import type { RebootResponse as _machine_RebootResponse, RebootResponse__Output as _machine_RebootResponse__Output } from './machine/RebootResponse.js';
import type { Reset as _machine_Reset, Reset__Output as _machine_Reset__Output } from './machine/Reset.js';
import type { ResetPartitionSpec as _machine_ResetPartitionSpec, ResetPartitionSpec__Output as _machine_ResetPartitionSpec__Output } from './machine/ResetPartitionSpec.js';
import type { ResetRequest as _machine_ResetRequest, ResetRequest__Output as _machine_ResetRequest__Output } from './machine/ResetRequest.js';
import type { ResetResponse as _machine_ResetResponse, ResetResponse__Output as _machine_ResetResponse__Output } from './machine/ResetResponse.js';
import type { RestartEvent as _machine_RestartEvent, RestartEvent__Output as _machine_RestartEvent__Output } from './machine/RestartEvent.js';
import type { SequenceEvent as _machine_SequenceEvent, SequenceEvent__Output as _machine_SequenceEvent__Output } from './machine/SequenceEvent.js';
import type { ServiceEvent as _machine_ServiceEvent, ServiceEvent__Output as _machine_ServiceEvent__Output } from './machine/ServiceEvent.js';
import type { ServiceEvents as _machine_ServiceEvents, ServiceEvents__Output as _machine_ServiceEvents__Output } from './machine/ServiceEvents.js';
import type { ServiceHealth as _machine_ServiceHealth, ServiceHealth__Output as _machine_ServiceHealth__Output } from './machine/ServiceHealth.js';
import type { ServiceInfo as _machine_ServiceInfo, ServiceInfo__Output as _machine_ServiceInfo__Output } from './machine/ServiceInfo.js';
import type { ServiceList as _machine_ServiceList, ServiceList__Output as _machine_ServiceList__Output } from './machine/ServiceList.js';
import type { ServiceListResponse as _machine_ServiceListResponse, ServiceListResponse__Output as _machine_ServiceListResponse__Output } from './machine/ServiceListResponse.js';
import type { ServiceRestart as _machine_ServiceRestart, ServiceRestart__Output as _machine_ServiceRestart__Output } from './machine/ServiceRestart.js';
import type { ServiceRestartRequest as _machine_ServiceRestartRequest, ServiceRestartRequest__Output as _machine_ServiceRestartRequest__Output } from './machine/ServiceRestartRequest.js';
import type { ServiceRestartResponse as _machine_ServiceRestartResponse, ServiceRestartResponse__Output as _machine_ServiceRestartResponse__Output } from './machine/ServiceRestartResponse.js';
import type { ServiceStateEvent as _machine_ServiceStateEvent, ServiceStateEvent__Output as _machine_ServiceStateEvent__Output } from './machine/ServiceStateEvent.js';
import type { TaskEvent as _machine_TaskEvent, TaskEvent__Output as _machine_TaskEvent__Output } from './machine/TaskEvent.js';
import type { Version as _machine_Version, Version__Output as _machine_Version__Output } from './machine/Version.js';
import type { VersionInfo as _machine_VersionInfo, VersionInfo__Output as _machine_VersionInfo__Output } from './machine/VersionInfo.js';
import type { VersionResponse as _machine_VersionResponse, VersionResponse__Output as _machine_VersionResponse__Output } from './machine/VersionResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  common: {
    Code: EnumTypeDefinition
    ContainerDriver: EnumTypeDefinition
    ContainerdNamespace: EnumTypeDefinition
    Data: MessageTypeDefinition<_common_Data, _common_Data__Output>
    DataResponse: MessageTypeDefinition<_common_DataResponse, _common_DataResponse__Output>
    Empty: MessageTypeDefinition<_common_Empty, _common_Empty__Output>
    EmptyResponse: MessageTypeDefinition<_common_EmptyResponse, _common_EmptyResponse__Output>
    Error: MessageTypeDefinition<_common_Error, _common_Error__Output>
    Metadata: MessageTypeDefinition<_common_Metadata, _common_Metadata__Output>
  }
  google: {
    protobuf: {
      Any: MessageTypeDefinition<_google_protobuf_Any, _google_protobuf_Any__Output>
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
      Empty: MessageTypeDefinition<_google_protobuf_Empty, _google_protobuf_Empty__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
    rpc: {
      Status: MessageTypeDefinition<_google_rpc_Status, _google_rpc_Status__Output>
    }
  }
  machine: {
    AddressEvent: MessageTypeDefinition<_machine_AddressEvent, _machine_AddressEvent__Output>
    ApplyConfiguration: MessageTypeDefinition<_machine_ApplyConfiguration, _machine_ApplyConfiguration__Output>
    ApplyConfigurationRequest: MessageTypeDefinition<_machine_ApplyConfigurationRequest, _machine_ApplyConfigurationRequest__Output>
    ApplyConfigurationResponse: MessageTypeDefinition<_machine_ApplyConfigurationResponse, _machine_ApplyConfigurationResponse__Output>
    Bootstrap: MessageTypeDefinition<_machine_Bootstrap, _machine_Bootstrap__Output>
    BootstrapRequest: MessageTypeDefinition<_machine_BootstrapRequest, _machine_BootstrapRequest__Output>
    BootstrapResponse: MessageTypeDefinition<_machine_BootstrapResponse, _machine_BootstrapResponse__Output>
    ConfigLoadErrorEvent: MessageTypeDefinition<_machine_ConfigLoadErrorEvent, _machine_ConfigLoadErrorEvent__Output>
    ConfigValidationErrorEvent: MessageTypeDefinition<_machine_ConfigValidationErrorEvent, _machine_ConfigValidationErrorEvent__Output>
    CopyRequest: MessageTypeDefinition<_machine_CopyRequest, _machine_CopyRequest__Output>
    DmesgRequest: MessageTypeDefinition<_machine_DmesgRequest, _machine_DmesgRequest__Output>
    EtcdAlarm: MessageTypeDefinition<_machine_EtcdAlarm, _machine_EtcdAlarm__Output>
    EtcdAlarmDisarm: MessageTypeDefinition<_machine_EtcdAlarmDisarm, _machine_EtcdAlarmDisarm__Output>
    EtcdAlarmDisarmResponse: MessageTypeDefinition<_machine_EtcdAlarmDisarmResponse, _machine_EtcdAlarmDisarmResponse__Output>
    EtcdAlarmListResponse: MessageTypeDefinition<_machine_EtcdAlarmListResponse, _machine_EtcdAlarmListResponse__Output>
    EtcdDefragment: MessageTypeDefinition<_machine_EtcdDefragment, _machine_EtcdDefragment__Output>
    EtcdDefragmentResponse: MessageTypeDefinition<_machine_EtcdDefragmentResponse, _machine_EtcdDefragmentResponse__Output>
    EtcdForfeitLeadership: MessageTypeDefinition<_machine_EtcdForfeitLeadership, _machine_EtcdForfeitLeadership__Output>
    EtcdForfeitLeadershipRequest: MessageTypeDefinition<_machine_EtcdForfeitLeadershipRequest, _machine_EtcdForfeitLeadershipRequest__Output>
    EtcdForfeitLeadershipResponse: MessageTypeDefinition<_machine_EtcdForfeitLeadershipResponse, _machine_EtcdForfeitLeadershipResponse__Output>
    EtcdLeaveCluster: MessageTypeDefinition<_machine_EtcdLeaveCluster, _machine_EtcdLeaveCluster__Output>
    EtcdLeaveClusterRequest: MessageTypeDefinition<_machine_EtcdLeaveClusterRequest, _machine_EtcdLeaveClusterRequest__Output>
    EtcdLeaveClusterResponse: MessageTypeDefinition<_machine_EtcdLeaveClusterResponse, _machine_EtcdLeaveClusterResponse__Output>
    EtcdMember: MessageTypeDefinition<_machine_EtcdMember, _machine_EtcdMember__Output>
    EtcdMemberAlarm: MessageTypeDefinition<_machine_EtcdMemberAlarm, _machine_EtcdMemberAlarm__Output>
    EtcdMemberListRequest: MessageTypeDefinition<_machine_EtcdMemberListRequest, _machine_EtcdMemberListRequest__Output>
    EtcdMemberListResponse: MessageTypeDefinition<_machine_EtcdMemberListResponse, _machine_EtcdMemberListResponse__Output>
    EtcdMemberStatus: MessageTypeDefinition<_machine_EtcdMemberStatus, _machine_EtcdMemberStatus__Output>
    EtcdMembers: MessageTypeDefinition<_machine_EtcdMembers, _machine_EtcdMembers__Output>
    EtcdRecover: MessageTypeDefinition<_machine_EtcdRecover, _machine_EtcdRecover__Output>
    EtcdRecoverResponse: MessageTypeDefinition<_machine_EtcdRecoverResponse, _machine_EtcdRecoverResponse__Output>
    EtcdRemoveMemberByID: MessageTypeDefinition<_machine_EtcdRemoveMemberByID, _machine_EtcdRemoveMemberByID__Output>
    EtcdRemoveMemberByIDRequest: MessageTypeDefinition<_machine_EtcdRemoveMemberByIDRequest, _machine_EtcdRemoveMemberByIDRequest__Output>
    EtcdRemoveMemberByIDResponse: MessageTypeDefinition<_machine_EtcdRemoveMemberByIDResponse, _machine_EtcdRemoveMemberByIDResponse__Output>
    EtcdSnapshotRequest: MessageTypeDefinition<_machine_EtcdSnapshotRequest, _machine_EtcdSnapshotRequest__Output>
    EtcdStatus: MessageTypeDefinition<_machine_EtcdStatus, _machine_EtcdStatus__Output>
    EtcdStatusResponse: MessageTypeDefinition<_machine_EtcdStatusResponse, _machine_EtcdStatusResponse__Output>
    Event: MessageTypeDefinition<_machine_Event, _machine_Event__Output>
    EventsRequest: MessageTypeDefinition<_machine_EventsRequest, _machine_EventsRequest__Output>
    FeaturesInfo: MessageTypeDefinition<_machine_FeaturesInfo, _machine_FeaturesInfo__Output>
    LogsRequest: MessageTypeDefinition<_machine_LogsRequest, _machine_LogsRequest__Output>
    MachineService: SubtypeConstructor<typeof grpc.Client, _machine_MachineServiceClient> & { service: _machine_MachineServiceDefinition }
    MachineStatusEvent: MessageTypeDefinition<_machine_MachineStatusEvent, _machine_MachineStatusEvent__Output>
    PhaseEvent: MessageTypeDefinition<_machine_PhaseEvent, _machine_PhaseEvent__Output>
    PlatformInfo: MessageTypeDefinition<_machine_PlatformInfo, _machine_PlatformInfo__Output>
    ReadRequest: MessageTypeDefinition<_machine_ReadRequest, _machine_ReadRequest__Output>
    Reboot: MessageTypeDefinition<_machine_Reboot, _machine_Reboot__Output>
    RebootRequest: MessageTypeDefinition<_machine_RebootRequest, _machine_RebootRequest__Output>
    RebootResponse: MessageTypeDefinition<_machine_RebootResponse, _machine_RebootResponse__Output>
    Reset: MessageTypeDefinition<_machine_Reset, _machine_Reset__Output>
    ResetPartitionSpec: MessageTypeDefinition<_machine_ResetPartitionSpec, _machine_ResetPartitionSpec__Output>
    ResetRequest: MessageTypeDefinition<_machine_ResetRequest, _machine_ResetRequest__Output>
    ResetResponse: MessageTypeDefinition<_machine_ResetResponse, _machine_ResetResponse__Output>
    RestartEvent: MessageTypeDefinition<_machine_RestartEvent, _machine_RestartEvent__Output>
    SequenceEvent: MessageTypeDefinition<_machine_SequenceEvent, _machine_SequenceEvent__Output>
    ServiceEvent: MessageTypeDefinition<_machine_ServiceEvent, _machine_ServiceEvent__Output>
    ServiceEvents: MessageTypeDefinition<_machine_ServiceEvents, _machine_ServiceEvents__Output>
    ServiceHealth: MessageTypeDefinition<_machine_ServiceHealth, _machine_ServiceHealth__Output>
    ServiceInfo: MessageTypeDefinition<_machine_ServiceInfo, _machine_ServiceInfo__Output>
    ServiceList: MessageTypeDefinition<_machine_ServiceList, _machine_ServiceList__Output>
    ServiceListResponse: MessageTypeDefinition<_machine_ServiceListResponse, _machine_ServiceListResponse__Output>
    ServiceRestart: MessageTypeDefinition<_machine_ServiceRestart, _machine_ServiceRestart__Output>
    ServiceRestartRequest: MessageTypeDefinition<_machine_ServiceRestartRequest, _machine_ServiceRestartRequest__Output>
    ServiceRestartResponse: MessageTypeDefinition<_machine_ServiceRestartResponse, _machine_ServiceRestartResponse__Output>
    ServiceStateEvent: MessageTypeDefinition<_machine_ServiceStateEvent, _machine_ServiceStateEvent__Output>
    TaskEvent: MessageTypeDefinition<_machine_TaskEvent, _machine_TaskEvent__Output>
    Version: MessageTypeDefinition<_machine_Version, _machine_Version__Output>
    VersionInfo: MessageTypeDefinition<_machine_VersionInfo, _machine_VersionInfo__Output>
    VersionResponse: MessageTypeDefinition<_machine_VersionResponse, _machine_VersionResponse__Output>
  }
}

