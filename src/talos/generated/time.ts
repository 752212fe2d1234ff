import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Data as _common_Data, Data__Output as _common_Data__Output } from './common/Data.js';
import type { DataResponse as _common_DataResponse, DataResponse__Output as _common_DataResponse__Output } from './common/DataResponse.js';
import type { Empty as _common_Empty, Empty__Output as _common_Empty__Output } from './common/Empty.js';
import type { EmptyResponse as _common_EmptyResponse, EmptyResponse__Output as _common_EmptyResponse__Output } from './common/EmptyResponse.js';
import type { Error as _common_Error, Error__Output as _common_Error__Output } from './common/Error.js';
import type { Metadata as _common_Metadata, Metadata__Output as _common_Metadata__Output } from './common/Metadata.js';
import type { Any as _google_protobuf_Any, Any__Output as _google_protobuf_Any__Output } from './google/protobuf/Any.js';
import type { Empty as _google_protobuf_Empty, Empty__Output as _google_protobuf_Empty__Output } from './google/protobuf/Empty.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp.js';
import type { Status as _google_rpc_Status, Status__Output as _google_rpc_Status__Output } from './google/rpc/Status.js';
import type { Time as _time_Time, Time__Output as _time_Time__Output } from './time/Time.js';
import type { TimeRequest as _time_TimeRequest, TimeRequest__Output as _time_TimeRequest__Output } from './time/TimeRequest.js';
import type { TimeResponse as _time_TimeResponse, TimeResponse__Output as _time_TimeResponse__Output } from './time/TimeResponse.js';
import type { TimeServiceClient as _time_TimeServiceClient, TimeServiceDefinition as _time_TimeServiceDefinition } from './time/TimeService.js';

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
      Empty: MessageTypeDefinition<_google_protobuf_Empty, _google_protobuf_Empty__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
    rpc: {
      Status: MessageTypeDefinition<_google_rpc_Status, _google_rpc_Status__Output>
    }
  }
  time: {
    Time: MessageTypeDefinition<_time_Time, _time_Time__Output>
    TimeRequest: MessageTypeDefinition<_time_TimeRequest, _time_TimeRequest__Output>
    TimeResponse: MessageTypeDefinition<_time_TimeResponse, _time_TimeResponse__Output>
    TimeService: SubtypeConstructor<typeof grpc.Client, _time_TimeServiceClient> & { service: _time_TimeServiceDefinition }
  }
}

