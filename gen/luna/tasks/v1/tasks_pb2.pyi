from google.api import annotations_pb2 as _annotations_pb2
from luna.common.v1 import info_pb2 as _info_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _info_pb2.ServiceInfo
    def __init__(self, info: _Optional[_Union[_info_pb2.ServiceInfo, _Mapping]] = ...) -> None: ...
