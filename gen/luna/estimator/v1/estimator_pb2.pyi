from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from luna.common.v1 import error_pb2 as _error_pb2
from luna.common.v1 import info_pb2 as _info_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_TYPE_UNSPECIFIED: _ClassVar[ImageType]
    IMAGE_TYPE_RAW: _ClassVar[ImageType]
    IMAGE_TYPE_FACE_WARP: _ClassVar[ImageType]
    IMAGE_TYPE_BODY_WARP: _ClassVar[ImageType]

class MultifacePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MULTIFACE_POLICY_UNSPECIFIED: _ClassVar[MultifacePolicy]
    MULTIFACE_POLICY_SINGLE: _ClassVar[MultifacePolicy]
    MULTIFACE_POLICY_ALL: _ClassVar[MultifacePolicy]
    MULTIFACE_POLICY_BEST: _ClassVar[MultifacePolicy]
IMAGE_TYPE_UNSPECIFIED: ImageType
IMAGE_TYPE_RAW: ImageType
IMAGE_TYPE_FACE_WARP: ImageType
IMAGE_TYPE_BODY_WARP: ImageType
MULTIFACE_POLICY_UNSPECIFIED: MultifacePolicy
MULTIFACE_POLICY_SINGLE: MultifacePolicy
MULTIFACE_POLICY_ALL: MultifacePolicy
MULTIFACE_POLICY_BEST: MultifacePolicy

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _info_pb2.ServiceInfo
    def __init__(self, info: _Optional[_Union[_info_pb2.ServiceInfo, _Mapping]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("data", "content_type", "filename")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    filename: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("images", "image_type", "multiface_policy", "detect_face", "detect_body", "estimations", "ignore_exif", "descriptor_version")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    MULTIFACE_POLICY_FIELD_NUMBER: _ClassVar[int]
    DETECT_FACE_FIELD_NUMBER: _ClassVar[int]
    DETECT_BODY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATIONS_FIELD_NUMBER: _ClassVar[int]
    IGNORE_EXIF_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    image_type: ImageType
    multiface_policy: MultifacePolicy
    detect_face: bool
    detect_body: bool
    estimations: _containers.RepeatedScalarFieldContainer[str]
    ignore_exif: bool
    descriptor_version: int
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., image_type: _Optional[_Union[ImageType, str]] = ..., multiface_policy: _Optional[_Union[MultifacePolicy, str]] = ..., detect_face: _Optional[bool] = ..., detect_body: _Optional[bool] = ..., estimations: _Optional[_Iterable[str]] = ..., ignore_exif: _Optional[bool] = ..., descriptor_version: _Optional[int] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class Keypoint(_message.Message):
    __slots__ = ("x", "y", "score")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    score: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class Descriptor(_message.Message):
    __slots__ = ("data", "version")
    DATA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    version: int
    def __init__(self, data: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class Face(_message.Message):
    __slots__ = ("box", "score", "landmarks5", "sample", "sample_content_type", "descriptor", "estimations", "body_index")
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS5_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    ESTIMATIONS_FIELD_NUMBER: _ClassVar[int]
    BODY_INDEX_FIELD_NUMBER: _ClassVar[int]
    box: Box
    score: float
    landmarks5: _containers.RepeatedCompositeFieldContainer[Point]
    sample: bytes
    sample_content_type: str
    descriptor: Descriptor
    estimations: _struct_pb2.Struct
    body_index: int
    def __init__(self, box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., landmarks5: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., sample: _Optional[bytes] = ..., sample_content_type: _Optional[str] = ..., descriptor: _Optional[_Union[Descriptor, _Mapping]] = ..., estimations: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., body_index: _Optional[int] = ...) -> None: ...

class Body(_message.Message):
    __slots__ = ("box", "score", "keypoints")
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    box: Box
    score: float
    keypoints: _containers.RepeatedCompositeFieldContainer[Keypoint]
    def __init__(self, box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., keypoints: _Optional[_Iterable[_Union[Keypoint, _Mapping]]] = ...) -> None: ...

class ImageDetections(_message.Message):
    __slots__ = ("image_width", "image_height", "faces", "bodies")
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    BODIES_FIELD_NUMBER: _ClassVar[int]
    image_width: int
    image_height: int
    faces: _containers.RepeatedCompositeFieldContainer[Face]
    bodies: _containers.RepeatedCompositeFieldContainer[Body]
    def __init__(self, image_width: _Optional[int] = ..., image_height: _Optional[int] = ..., faces: _Optional[_Iterable[_Union[Face, _Mapping]]] = ..., bodies: _Optional[_Iterable[_Union[Body, _Mapping]]] = ...) -> None: ...

class ImageResult(_message.Message):
    __slots__ = ("filename", "detections", "error")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    filename: str
    detections: ImageDetections
    error: _error_pb2.ErrorDetail
    def __init__(self, filename: _Optional[str] = ..., detections: _Optional[_Union[ImageDetections, _Mapping]] = ..., error: _Optional[_Union[_error_pb2.ErrorDetail, _Mapping]] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ImageResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ImageResult, _Mapping]]] = ...) -> None: ...

class Sample(_message.Message):
    __slots__ = ("data", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class ExtractRequest(_message.Message):
    __slots__ = ("samples", "descriptor_version")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    descriptor_version: int
    def __init__(self, samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ..., descriptor_version: _Optional[int] = ...) -> None: ...

class ExtractResponse(_message.Message):
    __slots__ = ("descriptors",)
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    descriptors: _containers.RepeatedCompositeFieldContainer[Descriptor]
    def __init__(self, descriptors: _Optional[_Iterable[_Union[Descriptor, _Mapping]]] = ...) -> None: ...

class EstimateRequest(_message.Message):
    __slots__ = ("samples", "estimations", "descriptor_version")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ESTIMATIONS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    estimations: _containers.RepeatedScalarFieldContainer[str]
    descriptor_version: int
    def __init__(self, samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ..., estimations: _Optional[_Iterable[str]] = ..., descriptor_version: _Optional[int] = ...) -> None: ...

class SampleEstimations(_message.Message):
    __slots__ = ("descriptor", "estimations")
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    ESTIMATIONS_FIELD_NUMBER: _ClassVar[int]
    descriptor: Descriptor
    estimations: _struct_pb2.Struct
    def __init__(self, descriptor: _Optional[_Union[Descriptor, _Mapping]] = ..., estimations: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class EstimateResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SampleEstimations]
    def __init__(self, results: _Optional[_Iterable[_Union[SampleEstimations, _Mapping]]] = ...) -> None: ...

class GetFeaturesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetFeaturesResponse(_message.Message):
    __slots__ = ("available", "unvalidated", "unavailable", "descriptor_version", "detector", "backend", "descriptor_versions")
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNVALIDATED_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    available: _containers.RepeatedScalarFieldContainer[str]
    unvalidated: _containers.RepeatedScalarFieldContainer[str]
    unavailable: _containers.RepeatedScalarFieldContainer[str]
    descriptor_version: int
    detector: str
    backend: str
    descriptor_versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, available: _Optional[_Iterable[str]] = ..., unvalidated: _Optional[_Iterable[str]] = ..., unavailable: _Optional[_Iterable[str]] = ..., descriptor_version: _Optional[int] = ..., detector: _Optional[str] = ..., backend: _Optional[str] = ..., descriptor_versions: _Optional[_Iterable[int]] = ...) -> None: ...
