// Original file: protos/cosi/resource.proto

import type { LabelTermOperation as _cosi_resource_LabelTermOperation, LabelTermOperation__Output as _cosi_resource_LabelTermOperation__Output } from '../../cosi/resource/LabelTermOperation.js';

export interface LabelTerm {
  'key'?: (string);
  'op'?: (_cosi_resource_LabelTermOperation);
  'value'?: (string)[];
  'invert'?: (boolean);
}

export interface LabelTerm__Output {
  'key': (string);
  'op': (_cosi_resource_LabelTermOperation__Output);
  'value': (string)[];
  'invert': (boolean);
}
