from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AccountScope(_message.Message):
    __slots__ = ("account_id", "see_all", "filter_account_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SEE_ALL_FIELD_NUMBER: _ClassVar[int]
    FILTER_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    see_all: bool
    filter_account_id: str
    def __init__(self, account_id: _Optional[str] = ..., see_all: _Optional[bool] = ..., filter_account_id: _Optional[str] = ...) -> None: ...
