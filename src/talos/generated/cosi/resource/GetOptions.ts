// Original file: protos/cosi/state.proto


export interface GetOptions {
}

export interface GetOptions__Output {
}
