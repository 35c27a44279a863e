from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorDetail(_message.Message):
    __slots__ = ("error_code", "desc", "detail", "http_status")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    DESC_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    error_code: int
    desc: str
    detail: str
    http_status: int
    def __init__(self, error_code: _Optional[int] = ..., desc: _Optional[str] = ..., detail: _Optional[str] = ..., http_status: _Optional[int] = ...) -> None: ...
