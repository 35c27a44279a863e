"""/6/events reads its filters by EventFilter's fields; the query names they give must stay
LUNA's (a field added to the message is not a new query parameter by accident)."""

from __future__ import annotations

from services.gateway.routes import events


def test_nullable_filters() -> None:
    assert set(events._STRING_NULLABLE) == {
        "sources",
        "stream_ids",
        "cities",
        "areas",
        "districts",
        "streets",
        "house_numbers",
        "track_ids",
        "headwear_apparent_colors",
        "sleeve_lengths",
        "upper_clothing_colors",
        "lower_garment_colors",
        "lower_garment_types",
        "shoes_apparent_colors",
    }
    assert set(events._INT_NULLABLE) == {
        "emotions",
        "masks",
        "ethnic_groups",
        "liveness",
        "deepfake",
        "apparent_gender",
        "headwear_states",
        "backpack_states",
    }


def test_list_scalar_and_time_filters() -> None:
    assert set(events._LISTS) == {
        "event_ids",
        "handler_ids",
        "face_ids",
        "external_ids",
        "tags",
        "top_similar_object_ids",
        "top_similar_external_ids",
    }
    assert events._SCALARS == {
        "user_data": "user_data",
        "top_matching_candidates_label": "top_matching_candidates_label",
        "top_similar_object_similarity__gte": "top_similar_object_similarity_gte",
        "top_similar_object_similarity__lt": "top_similar_object_similarity_lt",
        "age__gte": "age_gte",
        "age__lt": "age_lt",
        "apparent_age__gte": "apparent_age_gte",
        "apparent_age__lt": "apparent_age_lt",
        "longitude_delta": "longitude_delta",
        "latitude_delta": "latitude_delta",
    }
    assert events._TIMES == {
        "create_time__gte": "create_time_gte",
        "create_time__lt": "create_time_lt",
        "end_time__gte": "end_time_gte",
        "end_time__lt": "end_time_lt",
    }
